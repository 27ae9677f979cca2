"""The benchmarks' own arithmetic (the benchmarks themselves are scripts, not tests)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from benchmarks.end_to_end import ceiling


def trial(key: tuple, curve: list, macs: float = 1.0) -> SimpleNamespace:
    return SimpleNamespace(user_attrs={"alpha": key[0], "beta": key[1], "gamma": key[2], "val_acc": curve, "macs_proxy": macs})


def test_ceiling_stops_each_candidate_at_the_first_epoch_below_all_of_the_top_3():
    top = [trial((1, 1, k), [0.5, 0.6, 0.9 - k / 10]) for k in (1, 2, 3)]  # floors: 0.5 after epoch 1, 0.6 after 2
    late_bloomer = trial((2, 1, 1), [0.5, 0.55, 0.1])  # level after epoch 1, below after 2: stops at 2
    weak = trial((3, 1, 1), [0.4, 0.9, 0.9], macs=2.0)  # below after epoch 1, whatever comes later: stops at 1
    diverged = trial((4, 1, 1), [0.7])  # failed after one epoch, above the floor: counts the one epoch it trained
    never = SimpleNamespace(user_attrs={"alpha": 5, "beta": 1, "gamma": 1, "macs_proxy": 1.0})  # failed before any
    trials = [*top, late_bloomer, weak, diverged, never]
    epochs, tmacs = ceiling(trials, trials, [(1, 1, 1), (1, 1, 2), (1, 1, 3)], epochs=3, images=10**12)
    assert epochs == 3 * 3 + 2 + 1 + 1
    assert tmacs == 3 * 3 + 2 + 2.0 + 1


def test_no_ceiling_without_three_complete_candidates():
    trials = [trial((1, 1, 1), [0.5, 0.6]), trial((1, 1, 2), [0.4])]
    assert ceiling(trials, trials, [(1, 1, 1)], epochs=2, images=1) is None


def test_the_planted_grating_fades_with_the_side_the_proxy_sees():
    """What makes resolution the right answer on the planted folder: the antialiased resize keeps little
    of the grating at γ = 1 (77 px), more at γ = 1.25 and most at γ = 1.4."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from benchmarks.planted import SIDE, texture_image

    def kept(side: int) -> float:
        energies = []
        for seed in range(8):
            pair = [np.asarray(texture_image(np.random.default_rng(seed), True, g), np.float32) for g in (False, True)]
            x = torch.tensor(np.stack(pair))[:, None]
            small = F.interpolate(x, size=(side, side), mode="bilinear", antialias=True)
            energies.append(float((small[1] - small[0]).pow(2).mean() / (x[1] - x[0]).pow(2).mean()))
        return float(np.median(energies))

    at = {side: kept(side) for side in (77, 96, 108, SIDE)}
    assert at[77] < 0.5 * at[96] < at[96] < at[108] < at[SIDE]


def test_the_allocation_simulation_runs_the_race_on_the_default_grid_within_its_budget():
    import numpy as np

    from benchmarks import allocation

    cands = allocation.grid()
    true = allocation.truth(cands, np.random.default_rng(0), 1.0)
    assert len(cands) == 24 and len(true) == 19
    for rule in allocation.RULES:
        fit, verdict, spent = allocation.simulate(cands, true, np.random.default_rng(1), rule, budget=30)
        assert spent <= 30 and len(fit.table) == 19 and verdict is not None
    fit, _, spent = allocation.simulate(cands, true, np.random.default_rng(1), "uniform", budget=38)
    assert spent == 38 and set(fit.table["seeds"]) == {2}  # every network once more, nothing else
    row = allocation.replicate(cands, 0, "uniform", 38, 1.0)
    assert 0 < row["winner's P(best)"] <= 1 and row["winner is the true best"] in (0, 0.5, 1)
    assert 1 <= row["set size"] <= 19 and row["trainings"] == 38


def test_the_proxy_design_report_keeps_its_main_table_paired_and_adds_the_six_seed_one():
    """Designs trained on more seeds do not change the main table's rows (the first PAIRED seeds, paired for all);
    those trained on every seed get their own table, and a tilt planted in one design shows in its slope."""
    import numpy as np
    import pandas as pd

    from benchmarks import proxy_design as pd_bench

    rng = np.random.default_rng(0)
    nets = [(1.0 + i / 10, 1.0 + i / 20, 1.0, blocks, width, side)  # depth, width and side vary independently
            for i, (blocks, width, side) in enumerate((b, w, x) for b in (16, 20) for w in (30, 40) for x in (77, 85))]
    rows = []
    for design, seeds, tilt in ((pd_bench.DEFAULT, pd_bench.SEEDS, 0.2), ("lr 0.008 (twice the default's)", pd_bench.SEEDS, 0.0),
                                ("4 epochs", pd_bench.SEEDS[:pd_bench.PAIRED], 0.1)):
        for s in seeds:
            for a, b, g, blocks, width, side in nets:
                score = tilt * np.log(width) + 0.01 * s + 0.01 * rng.standard_normal()
                rows.append({"design": design, "alpha": a, "beta": b, "gamma": g, "seed": s, "side": side, "score": score,
                             "acc": 0.5, "cpu_s": 10.0, "depth_blocks": blocks, "width_channels": width})
    runs = pd.DataFrame(rows)
    text = pd_bench.report(runs)
    main, six = text.split("The designs trained on all")
    assert "| 4 epochs | 3 |" in main and f"| {pd_bench.DEFAULT} | 3 |" in main
    assert f"| {pd_bench.DEFAULT} | 6 |" in six and "4 epochs" not in six
    slope = {r[0]: float(r[8]) for r in pd_bench.rows_on(runs, pd_bench.SEEDS)[0]}
    assert abs(slope[pd_bench.DEFAULT] - 0.2) < 0.05 and abs(slope["lr 0.008 (twice the default's)"]) < 0.05


def test_the_scores_of_one_run_match_their_definitions_and_the_calibrated_one_ignores_confidence():
    """Loss, top-1 and Brier as defined; the loss at a cross-fitted temperature is the same whatever the
    logits' scale, while the plain loss rewards or punishes confidence alone."""
    import numpy as np
    from scipy import special

    from benchmarks import scores as sc

    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 600)
    logits = rng.standard_normal((600, 10))
    logits[np.arange(600), y] += 1.5  # a network that has learned something
    got = sc.scores(logits, y)
    p = special.softmax(logits, axis=1)
    assert np.isclose(got["loss"], np.mean(np.log(p[np.arange(600), y])))
    assert np.isclose(got["acc"], np.mean(p.argmax(1) == y))
    assert np.isclose(got["brier"], -np.mean(np.sum((p - np.eye(10)[y]) ** 2, axis=1)))
    sharper = sc.scores(3 * logits, y)
    assert abs(sharper["calibrated"] - got["calibrated"]) < 1e-3
    assert abs(sharper["loss"] - got["loss"]) > 0.1 and sharper["acc"] == got["acc"]
    assert got["calibrated"] >= got["loss"] - 0.01  # a fitted temperature can only help, up to the cross-fit
    assert abs(sc.fitted_temperature(3 * logits, y) / sc.fitted_temperature(logits, y) - 3) < 0.01


class Stop(Exception):
    """Raised by a stand-in for `search.run` once it has recorded the options it was given."""


def recording_run(monkeypatch, module, tmp_path) -> list[dict]:
    """Replace `module`'s `search.run` by one that records its options and raises Stop; run in `tmp_path`."""
    seen = []

    def fake_run(base, **kw):
        seen.append(kw)
        raise Stop

    monkeypatch.setattr(module.search, "run", fake_run)
    monkeypatch.chdir(tmp_path)
    return seen


def test_the_calibration_passes_set_options_to_the_run_and_keeps_their_runs_apart(tmp_path, monkeypatch):
    from benchmarks import calibration, common

    seen = recording_run(monkeypatch, calibration, tmp_path)
    with pytest.raises(Stop):
        calibration.run(quick=True, seeds=(7,), changes={"lr_scaling": "width", "lr": 0.008})
    assert seen[0]["lr_scaling"] == "width" and seen[0]["lr"] == 0.008 and seen[0]["time"] == "90s"
    assert "lr-0.008-lr_scaling-width" in seen[0]["results_dir"] and "default-seed7" in seen[0]["space"]
    assert "seed = 7" in (tmp_path / seen[0]["space"]).read_text()
    assert [common.option_value(v) for v in ("3", "0.008", "width")] == [3, 0.008, "width"]


def test_the_planted_check_trains_with_the_searchs_changed_options(tmp_path, monkeypatch):
    """`planted --set`: the search gets the options in its own folder, and the longer check trains under them too."""
    from benchmarks import planted

    seen = recording_run(monkeypatch, planted, tmp_path)
    changes = {"lr_scaling": "width", "lr": 0.008}
    with pytest.raises(Stop):
        planted.run(quick=True, changes=changes)
    assert seen[0]["lr_scaling"] == "width" and seen[0]["lr"] == 0.008 and seen[0]["time"] == "90s"
    assert seen[0]["results_dir"].endswith("lr-0.008-lr_scaling-width")
    trained = []

    def fake_train(spec, data, settings, side, seed, reference):
        trained.append((settings, reference))
        return SimpleNamespace(val_loss=[0.5], final_acc=0.9, seconds=1.0)

    monkeypatch.setattr(planted.proxy, "train", fake_train)
    root = tmp_path / "bench-results/planted-quick/texture"
    assert planted.train_long(root, planted.Candidate(1, 1.2, 1), 0, True, "cpu", changes)["loss"] == 0.5
    settings, reference = trained[0]
    assert (settings.lr_scaling, settings.lr, settings.epochs) == ("width", 0.008, 2) and reference is not None
