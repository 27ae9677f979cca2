"""Planted answers: an image folder whose right scaling direction is known by construction.

:func:`texture_folder` writes SIDE px grey images in 4 classes: (a bright blob in the top or the
bottom half) × (a faint fine grating, or none), over a smooth random field and pixel noise. The
blob shows at any side. The grating's period (PERIOD px, random angle and phase) lies beyond
what the default proxy's 77 px at γ = 1 can show: the antialiased resize averages most of it
away, and keeps more of it the larger the side. So at a fixed budget more resolution pays and
more width or depth cannot make up for it: the right answer is the largest γ. SIDE is the side
the default search decodes folders at (77 px × 1.4²), so the network sees the generated pixels.

:func:`run` generates the folder, runs the main job on it (``scalesearch run --base b0 --budget
2x --data FOLDER``), and then checks the answer independently of the tool: the winner, the
runner-up and the best network of each other direction (the widest, the deepest) are trained at
LONG× the proxy's images × epochs on VERIFY_SEEDS seeds. The planted answer holds when the
winner beats the widest and the deepest in every seed.

    .venv/bin/python -m benchmarks --only planted [--quick]

The folder, the search and the long runs stay in ``bench-results/planted*/``; the same command
resumes the search and retrains only the long runs. ``python -m benchmarks.planted --set lr_scaling=width``
runs the search and its check with changed run options (the search in a folder named for them).
"""
from __future__ import annotations

import sys
import time
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

import optuna

from scalesearch import search
from scalesearch.arch import load_base
from scalesearch.data import DeviceData, load_data, subset
from scalesearch.data import _folder as folder_io
from scalesearch.proxy import _train as proxy
from scalesearch.results import _ranking as results
from scalesearch.space import Candidate, ProxySettings, at_base_width, candidate_spec, load_space, resolution_for
from scalesearch.stats import _race as race

from .common import changes_folder, console, machine_line, run_changes, section, table

SIDE = 151
PERIOD = (2.5, 3.5)  # px at SIDE: under 2 px (beyond the pixels) at 77 px, 1.8-2.5 px at 108 px
AMPLITUDE, NOISE, BLOB = 16.0, 16.0, 60.0  # grey levels: the grating sits at the noise's level
LONG = 4  # the check trains 2x the images for 2x the epochs
VERIFY_SEEDS = (1000, 1001)
optuna.logging.set_verbosity(optuna.logging.WARNING)


def texture_image(rng: np.random.Generator, top: bool, grating: bool, side: int = SIDE) -> Image.Image:
    field = Image.fromarray(rng.integers(90, 166, (6, 6), np.uint8)).resize((side, side), Image.Resampling.BICUBIC)
    pixels = np.asarray(field, np.float32) + rng.normal(0, NOISE, (side, side))
    yy, xx = np.mgrid[:side, :side]
    cy, cx = side * (0.3 if top else 0.7), side * rng.uniform(0.3, 0.7)  # top/bottom: flips are left-right
    pixels += BLOB * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * (side / 6) ** 2))
    if grating:
        angle, period = rng.uniform(0, np.pi), rng.uniform(*PERIOD) * side / SIDE
        phase = (xx * np.cos(angle) + yy * np.sin(angle)) / period + rng.uniform(0, 1)
        pixels += AMPLITUDE * np.sin(2 * np.pi * phase)
    return Image.fromarray(pixels.clip(0, 255).astype(np.uint8), "L")


def texture_folder(root: Path, per_class: int, seed: int = 0, side: int = SIDE) -> Path:
    """`per_class` PNGs in each of 4 class folders under `root` (kept when already complete)."""
    classes = [("top-plain", True, False), ("top-grating", True, True),
               ("bottom-plain", False, False), ("bottom-grating", False, True)]
    if all(len(list((root / name).glob("*.png"))) == per_class for name, _, _ in classes):
        return root
    rng = np.random.default_rng(seed)
    for name, top, grating in classes:
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            texture_image(rng, top, grating, side).save(root / name / f"{i:04d}.png")
    return root


def search_folder(root: Path, out: Path, quick: bool, device: str, changes: dict | None = None
                  ) -> tuple[pd.DataFrame, race.Verdict, float]:
    """The main job on `root` (resumed when `out` holds it), with `changes` to its run options: its trials,
    verdict and wall time."""
    extra = {**({"train": 256, "val": 128, "epochs": 1, "time": "90s"} if quick else {}), **(changes or {})}
    start = time.monotonic()  # as `scalesearch run` trains it: one worker process per core on the CPU
    study = search.run("tiny-mbconv" if quick else "b0", data=str(root), device=device, results_dir=str(out), **extra).study
    trials = results.trials_frame(study)
    return trials, results.study_verdict(study, trials), time.monotonic() - start


def contenders(trials: pd.DataFrame, verdict: race.Verdict) -> dict[str, Candidate]:
    """The winner, the runner-up and the best-fitted of the widest and of the deepest networks."""
    ranked = results.ranking(trials)
    ranked = ranked[ranked["phi"] == 1].drop_duplicates("score_fit")  # twins share one fit
    pick = lambda r: Candidate(float(r.alpha), float(r.beta), float(r.gamma))
    rows = list(ranked.itertuples())
    out = {"winner": Candidate(*verdict.winner), "runner-up": pick(rows[1])}
    out["widest"] = pick(max(rows, key=lambda r: (r.beta, r.score_fit)))
    out["deepest"] = pick(max(rows, key=lambda r: (r.alpha, r.score_fit)))
    return out


def train_long(root: Path, c: Candidate, seed: int, quick: bool, device: str, changes: dict | None = None) -> dict:
    """`c` trained at LONG× the default proxy's images × epochs (with the search's changes to the proxy,
    such as its rate) on `root`, scored on the same val images."""
    base = load_base("tiny-mbconv" if quick else "b0")
    proxy_keys = {f.name for f in fields(ProxySettings)}
    settings = load_space("default").with_overrides(**{k: v for k, v in (changes or {}).items() if k in proxy_keys}).proxy
    train, epochs = (256, 2) if quick else (2 * settings.train, 2 * settings.epochs)
    settings = replace(settings, train=train, epochs=epochs, val=128 if quick else settings.val)
    side = resolution_for(77, c.gamma)
    ds = load_data(str(root), side=SIDE, val=settings.val, seed=0, report=folder_io.Report())
    data = DeviceData(subset(ds, min(train, len(ds.train_y)), None, seed), torch.device(device))
    r = proxy.train(candidate_spec(base, c, side, settings.width), data, settings, side, seed,
                    reference=at_base_width(base, c, side, settings.width))
    return {"loss": r.val_loss[-1], "acc": r.final_acc, "seconds": r.seconds}


def verify(root: Path, picks: dict[str, Candidate], quick: bool, device: str, changes: dict | None = None
           ) -> tuple[list, bool]:
    rows, loss, done = [], {}, {}
    for seed in VERIFY_SEEDS:
        for role, c in picks.items():
            if (c, seed) not in done:  # the widest or the deepest may be the winner
                done[c, seed] = train_long(root, c, seed, quick, device, changes)
            r = done[c, seed]
            loss[role, seed] = r["loss"]
            console.log(f"long run, seed {seed}, {role} ({c.alpha:g}, {c.beta:g}, {c.gamma:g}): "
                        f"val loss {r['loss']:.3f}, top-1 {r['acc']:.1%}, {r['seconds']:.0f} s")
            rows.append([seed, role, f"({c.alpha:g}, {c.beta:g}, {c.gamma:g})", f"{r['loss']:.4f}",
                         f"{100 * r['acc']:.1f}", f"{r['seconds']:.0f}"])
    holds = all(loss["winner", s] < loss[other, s] for s in VERIFY_SEEDS for other in ("widest", "deepest")
                if picks[other] != picks["winner"])
    return rows, holds


def run(quick: bool = False, device: str = "cpu", changes: dict | None = None) -> str:
    """The search and its check on the texture folder; `changes`: run options for both (e.g. the rate's rule)."""
    out = Path("bench-results") / ("planted-quick" if quick else "planted")
    console.log(machine_line(device))
    root = texture_folder(out / "texture", 40 if quick else 1200, side=64 if quick else SIDE)
    trials, v, seconds = search_folder(root, out / changes_folder(changes), quick, device, changes)
    picks = contenders(trials, v)
    rows, holds = verify(root, picks, quick, device, changes)
    largest = max(trials.loc[trials["phi"] == 1, "gamma"])
    body = (f"The main job on the texture folder: winner (α, β, γ) = ({', '.join(f'{x:g}' for x in v.winner)}), "
            f"{v.words}, 95% set of {v.networks} network(s), {seconds:.0f} s wall. The planted answer is the largest γ "
            f"({largest:g}): {'found' if v.winner[2] == largest else 'NOT found'}.\n\n"
            + table(["seed", "network", "(α, β, γ)", f"val loss after {LONG}x training (nats)", "val top-1 (%)", "s"], rows)
            + f"\n\nChecked by longer training: the winner beats the widest and the deepest network in every seed: "
              f"{'yes' if holds else 'NO'}.")
    title = "Planted answer: fine texture, where resolution pays" + (" (quick)" if quick else "")
    changed = ", ".join(f"{k} = {v}" for k, v in sorted((changes or {}).items()))
    return section(title + (f", with {changed}" if changed else ""), device, body)


if __name__ == "__main__":  # python -m benchmarks.planted [--set KEY=VALUE ...]: run options changed
    print(run(changes=run_changes(sys.argv[1:])[0] or None))

__all__ = ["run", "texture_folder", "texture_image", "contenders", "verify"]
