from __future__ import annotations

import math
import re
import warnings
from fractions import Fraction

import optuna
import pytest

from scalesearch.arch import load_base
from scalesearch.errors import ScaleSearchError
from scalesearch.space import Candidate, assess, candidate_spec, feasible_grid, grid, require_feasible, resolution_for, within
from scalesearch.space import suggest
from scalesearch.space import ProxySettings, Range, known_spaces, load_space, parse_budget, space_toml

PAPER = Candidate(1.2, 1.1, 1.15)

MINIMAL = """
[alpha]
min = 1.0
max = 1.4
step = 0.1
[beta]
min = 1.0
max = 1.3
step = 0.1
[gamma]
min = 1.0
max = 1.4
step = 0.1
"""


@pytest.fixture(scope="module")
def b0():
    return load_base("b0")


def write(tmp_path, text: str, name: str = "space.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


# ----------------------------------------------------------------- budget


@pytest.mark.parametrize("text, value", [("2x", 2.0), ("2X", 2.0), ("2", 2.0), ("1.5x", 1.5), (" 3x ", 3.0), (2.5, 2.5), (4, 4.0)])
def test_parse_budget(text, value):
    assert parse_budget(text) == value


@pytest.mark.parametrize("text", ["abc", "", "x", "1", "1x", "0.5x", "-2x", "nan", "inf", "2xx", True])
def test_parse_budget_rejects(text):
    with pytest.raises(ScaleSearchError, match="budget must be a number > 1 such as 2x") as err:
        parse_budget(text)
    assert "\n" not in str(err.value)


def test_parse_budget_message_quotes_the_input():
    with pytest.raises(ScaleSearchError, match=r"got 'abc'$"):
        parse_budget("abc")


# ---------------------------------------------------------------- loading


def test_shipped_spaces_load():
    names = known_spaces()
    assert {"default", "paper", "nni"} <= set(names)
    for name in names:
        space = load_space(name)
        assert space.name == name and space.description and space.source
        assert space.path.endswith(f"{name}.toml")


def test_default_space_settings():
    space = load_space()
    assert space.name == "default"
    assert (space.constraint, space.sampler, space.pruner, space.budget, space.tolerance) == ("measured", "grid", "none", 2.0, 0.05)
    assert space.proxy == ProxySettings()  # the file spells out the defaults
    assert space.proxy.resolution == "auto" and space.proxy.optimizer == "adamw" and space.proxy.score == "loss"
    assert (space.contenders, space.phi2, space.time) == (6, 2, 600.0)  # the file spells out the rounds and time too


def test_paper_and_nni_are_nominal():
    paper, nni = load_space("paper"), load_space("nni")
    assert paper.constraint == nni.constraint == "nominal"
    assert (paper.alpha, paper.beta, paper.gamma) == (Range(1.0, 1.4, 0.05), Range(1.0, 1.3, 0.05), Range(1.0, 1.4, 0.05))
    assert (nni.alpha, nni.beta, nni.gamma) == (Range(1.0, 2.0, 0.1), Range(1.0, 1.5, 0.1), Range(1.0, 1.5, 0.1))


def test_minimal_file_gets_defaults(tmp_path):
    space = load_space(write(tmp_path, MINIMAL))
    assert space.name == "space"
    assert (space.budget, space.tolerance, space.constraint, space.sampler, space.trials, space.pruner) == (2.0, 0.05, "measured", "grid", 30, "none")
    assert space.proxy == ProxySettings()


def test_range_min_defaults_to_one(tmp_path):
    space = load_space(write(tmp_path, MINIMAL.replace("min = 1.0\nmax = 1.4\nstep = 0.1\n[beta]", "max = 1.4\nstep = 0.1\n[beta]")))
    assert space.alpha == Range(1.0, 1.4, 0.1)


def test_budget_may_be_written_with_x(tmp_path):
    assert load_space(write(tmp_path, 'budget = "3x"\n' + MINIMAL)).budget == 3.0


@pytest.mark.parametrize(
    "prefix, key, expected",
    [
        ("budgett = 2.0\n", "budgett", "unknown key"),
        ("[search]\nsamplers = 'grid'\n", "search.samplers", "unknown key"),
        ("[proxy]\nepoch = 3\n", "proxy.epoch", "unknown key"),
        ("[proxy]\nepochs = 'three'\n", "proxy.epochs", "must be an integer >= 1 and <= 1,000, got 'three'"),
        ("[proxy]\nepochs = 2.5\n", "proxy.epochs", "must be an integer >= 1"),
        ("[proxy]\nepochs = 0\n", "proxy.epochs", "must be an integer >= 1 and <= 1,000, got 0"),
        ("[proxy]\nlr = 0\n", "proxy.lr", "must be a number > 0"),
        ("[proxy]\nmomentum = 1.0\n", "proxy.momentum", "must be a number >= 0 and < 1"),
        ("[proxy]\nema = 1\n", "proxy.ema", "must be a number >= 0 and < 1"),
        ("[proxy]\noptimizer = 'adam'\n", "proxy.optimizer", "one of 'sgd', 'adamw', 'rmsprop'"),
        ("[proxy]\nschedule = 'linear'\n", "proxy.schedule", "one of 'cosine'"),
        ("[proxy]\nlr_scaling = 'mup'\n", "proxy.lr_scaling", "one of 'none', 'width'"),
        ("[proxy]\noptimizer = 'sgd'\nlr_scaling = 'width'\n", "proxy.lr_scaling", "with optimizer \"sgd\""),
        ("[proxy]\nepochs = 2\nwarmup_epochs = 2\n", "proxy.warmup_epochs", "< proxy.epochs (2)"),
        ("[proxy]\nresolution = 4\n", "proxy.resolution", "must be an integer from 8 to 4096"),
        ("[proxy]\nseeds = true\n", "proxy.seeds", "must be an integer >= 1 and <= 100, got True"),
        ("budget = 'abc'\n", "budget", "must be a number > 1"),
        ("budget = 1.0\n", "budget", "must be a number > 1"),
        ("tolerance = 0\n", "tolerance", "must be a number > 0 and < 1"),
        ("description = 3\n", "description", "must be a string"),
        ("constraint = 'flops'\n", "constraint", "one of 'measured', 'nominal'"),
        ("[search]\nsampler = 'bayes'\n", "search.sampler", "one of 'grid', 'tpe', 'random', 'qmc', 'cmaes'"),
        ("[search]\npruner = 'asha'\n", "search.pruner", "one of 'none', 'median', 'sha', 'hyperband'"),
        ("[search]\ntrials = 0\n", "search.trials", "must be an integer >= 1"),
        ("proxy = 3\n", "proxy", "must be a table"),
    ],
)
def test_bad_values_name_file_and_key(tmp_path, prefix, key, expected):
    # Top-level keys must come before the first table, so prefix goes last for tables only.
    text = prefix + MINIMAL if not prefix.startswith("[") else MINIMAL + prefix
    path = write(tmp_path, text, "bad.toml")
    with pytest.raises(ScaleSearchError) as err:
        load_space(path)
    message = str(err.value)
    assert "bad.toml" in message and key in message and expected in message, message
    assert "\n" not in message


@pytest.mark.parametrize(
    "old, new, key, expected",
    [
        ("max = 1.4\nstep = 0.1\n[beta]", "max = 0.9\nstep = 0.1\n[beta]", "alpha.max", "must be a number >= alpha.min (1)"),
        ("max = 1.3\nstep = 0.1", "max = 1.3\nstep = 0", "beta.step", "must be a number > 0, got 0"),
        ("max = 1.4\nstep = 0.1\n", "max = 1.4\nstep = -0.1\n", "gamma.step", "must be a number > 0"),
        ("max = 1.3\nstep = 0.1", "max = 1.3\nstep = '0.1'", "beta.step", "got '0.1'"),
        ("max = 1.3\nstep = 0.1", "max = 1.3", "beta.step", "missing key"),
        ("[gamma]\nmin = 1.0\nmax = 1.4\nstep = 0.1\n", "", "[gamma]", "missing section"),
        ("max = 1.4\nstep = 0.1\n", "max = 1.4\nstep = 0.00001\n", "grid points", "use larger steps"),
    ],
)
def test_bad_ranges_name_file_and_key(tmp_path, old, new, key, expected):
    text = MINIMAL[::-1].replace(old[::-1], new[::-1], 1)[::-1]  # replace the last occurrence
    assert text != MINIMAL
    with pytest.raises(ScaleSearchError) as err:
        load_space(write(tmp_path, text, "ranges.toml"))
    message = str(err.value)
    assert "ranges.toml" in message and key in message and expected in message, message


def test_toml_syntax_error_names_file(tmp_path):
    with pytest.raises(ScaleSearchError, match=r"broken\.toml: not a valid TOML file"):
        load_space(write(tmp_path, "budget = = 2\n" + MINIMAL, "broken.toml"))


def test_unknown_space_lists_known_ones():
    with pytest.raises(ScaleSearchError, match=r"unknown search space 'nope': choose one of default, nni, paper"):
        load_space("nope")
    with pytest.raises(ScaleSearchError, match="unknown search space"):
        load_space("missing/file.toml")


# -------------------------------------------------------------- overrides


def test_with_overrides():
    space = load_space()
    changed = space.with_overrides(epochs=4, budget="3x", constraint="nominal", sampler="tpe", trials=12, lr=None)
    assert (changed.proxy.epochs, changed.budget, changed.constraint, changed.sampler, changed.trials) == (4, 3.0, "nominal", "tpe", 12)
    assert changed.proxy.lr == space.proxy.lr and changed.name == space.name and changed.path == space.path
    assert space.proxy.epochs == 2  # frozen: the original is untouched
    assert space.with_overrides() == space
    assert space.with_overrides(alpha=Range(1.0, 1.2, 0.1)).alpha.values() == (1.0, 1.1, 1.2)


@pytest.mark.parametrize(
    "changes, key",
    [
        ({"epochs": 0}, "proxy.epochs"),
        ({"constraint": "flops"}, "constraint"),
        ({"budget": 0.5}, "budget"),
        ({"pruner": "asha"}, "search.pruner"),
        ({"alpha": Range(1.4, 1.0, 0.1)}, "alpha.max"),
        ({"warmup_epochs": 5}, "proxy.warmup_epochs"),
        ({"optimizer": "sgd", "lr_scaling": "width"}, "proxy.lr_scaling"),
    ],
)
def test_with_overrides_validates(changes, key):
    with pytest.raises(ScaleSearchError) as err:
        load_space().with_overrides(**changes)
    assert key in str(err.value) and "'default'" in str(err.value)


def test_with_overrides_rejects_unknown_setting():
    with pytest.raises(ScaleSearchError, match="unknown search-space setting 'epoch'"):
        load_space().with_overrides(epoch=2)


# ------------------------------------------------------------------ grid


def test_range_values_inclusive():
    assert Range(1.0, 1.4, 0.05).values() == (1.0, 1.05, 1.1, 1.15, 1.2, 1.25, 1.3, 1.35, 1.4)
    assert Range(1.0, 2.0, 0.1).values()[-1] == 2.0 and len(Range(1.0, 2.0, 0.1).values()) == 11
    assert Range(1.0, 1.45, 0.1).values() == (1.0, 1.1, 1.2, 1.3, 1.4)
    assert Range(1.2, 1.2, 0.1).values() == (1.2,)


def test_grid_is_full_product_in_order():
    space = load_space("paper")
    points = grid(space)
    assert len(points) == 9 * 7 * 9
    assert points == sorted(points, key=lambda c: (c.alpha, c.beta, c.gamma))
    assert PAPER in points


def test_resolution_rounds_half_up():
    assert resolution_for(224, 1.15) == 258  # 257.6
    assert resolution_for(32, 1.15) == 37  # 36.8
    assert resolution_for(73, 0.5) == 37 and round(73 * 0.5) == 36  # 36.5: half up, not to even
    assert resolution_for(224, 1.0) == 224


def test_candidate_spec(b0):
    spec = candidate_spec(b0, PAPER)
    assert spec.resolution == 258
    assert (round(spec.width_mult, 6), round(spec.depth_mult, 6)) == (1.1, 1.2)
    assert [s.repeats for s in spec.stages] == [2, 3, 3, 4, 4, 5, 2]
    assert candidate_spec(b0, PAPER, resolution=37).resolution == 37


def test_assess_paper_point(b0):
    # DESIGN.md: 1.92 nominal, 2.57x B0 at 224 px, 4.0x at 32 px.
    a = assess(b0, PAPER, proxy_resolution=32)
    assert a.nominal == pytest.approx(1.92, abs=0.01)
    assert a.measured_target == pytest.approx(2.57, abs=0.01)
    assert (a.target_resolution, a.proxy_resolution) == (258, 37)
    assert a.macs_target == pytest.approx(2.57 * 385_814_752, rel=0.01)
    # The 4.0x at 32 px holds with the 1000-class classifier, like the 224 px figure.
    full = assess(b0, PAPER, proxy_resolution=32, num_classes=1000)
    assert full.measured_proxy == pytest.approx(4.0, abs=0.1)
    # With the proxy's 10 classes the base's classifier share shrinks and the ratio is 4.43.
    assert a.measured_proxy == pytest.approx(4.43, abs=0.01)
    assert a.params < full.params


def test_within(b0):
    a = assess(b0, PAPER, proxy_resolution=32)
    assert within(a, 2.0, 0.05, "nominal") and not within(a, 2.0, 0.03, "nominal")
    assert not within(a, 2.0, 0.05, "measured") and within(a, 2.5, 0.05, "measured")
    # The boundary is inclusive despite binary floats: 1.9 / 2 - 1 == -0.050000000000000044.
    assert within(assess(b0, Candidate(1.9, 1.0, 1.0), 32), 2.0, 0.05, "nominal")
    with pytest.raises(ScaleSearchError, match="constraint must be one of"):
        within(a, 2.0, 0.05, "flops")


def test_default_space_has_20_to_30_feasible_points(b0):
    space = load_space()
    report = feasible_grid(space, b0)
    assert 20 <= len(report.feasible) <= 30
    assert report.feasible_measured == len(report.feasible) and report.closest == []
    assert all(within(a, 2.0, 0.05, "measured") for a in report.feasible)
    keys = [(a.candidate.alpha, a.candidate.beta, a.candidate.gamma) for a in report.feasible]
    assert keys == sorted(keys)
    require_feasible(report, space)  # no error


def test_feasible_counts_agree_with_brute_force(b0):
    space = load_space("paper")
    report = feasible_grid(space, b0)
    every = [assess(b0, c, 32) for c in grid(space)]
    assert report.total == len(every)
    assert report.feasible_nominal == sum(abs(a.nominal / 2 - 1) <= 0.05 + 1e-9 for a in every) == len(report.feasible)
    assert report.feasible_measured == sum(abs(a.measured_target / 2 - 1) <= 0.05 + 1e-9 for a in every)


def test_nni_count_matches_brute_force(b0):
    space = load_space("nni")
    report = feasible_grid(space, b0)
    lattice = [
        (a, b, g)
        for a in map(Fraction, ("1.0", "1.1", "1.2", "1.3", "1.4", "1.5", "1.6", "1.7", "1.8", "1.9", "2.0"))
        for b in map(Fraction, ("1.0", "1.1", "1.2", "1.3", "1.4", "1.5"))
        for g in map(Fraction, ("1.0", "1.1", "1.2", "1.3", "1.4", "1.5"))
    ]
    assert report.total == len(lattice)
    inclusive = [p for p in lattice if abs(p[0] * p[1] ** 2 * p[2] ** 2 - 2) <= Fraction(1, 10)]
    strict = [p for p in lattice if abs(p[0] * p[1] ** 2 * p[2] ** 2 - 2) < Fraction(1, 10)]
    assert report.feasible_nominal == len(inclusive) == 21
    # NNI's tuner keeps |product - 2| < 0.1; the one difference is (1.9, 1, 1), exactly on the boundary.
    assert len(strict) == 20
    assert set(inclusive) - set(strict) == {(Fraction("1.9"), 1, 1)}


def test_infeasible_space_lists_closest_points(b0, tmp_path):
    space = load_space(write(tmp_path, MINIMAL.replace("max = 1.4", "max = 1.1").replace("max = 1.3", "max = 1.1"), "tight.toml"))
    report = feasible_grid(space, b0)
    assert report.feasible == [] and len(report.closest) == 5
    with pytest.raises(ScaleSearchError) as err:
        require_feasible(report, space)
    message = str(err.value)
    assert message.startswith("no point of search space 'tight' is within 5% of budget 2x (measured); closest: (α=")
    assert message.count("(α=") == 5 and "\n" not in message
    costs = [float(x) for x in re.findall(r"→ ([0-9.]+)x", message)]
    assert len(costs) == 5
    assert costs == sorted(costs, key=lambda c: abs(c / 2 - 1))  # nearest first


# ---------------------------------------------------------- manifold sampling


@pytest.mark.parametrize("constraint", ["measured", "nominal"])
@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_suggest_only_returns_feasible_candidates(b0, constraint, sampler):
    space = load_space().with_overrides(constraint=constraint, sampler=sampler)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    chosen = optuna.samplers.RandomSampler(seed=1) if sampler == "random" else optuna.samplers.TPESampler(seed=1)
    study = optuna.create_study(sampler=chosen)
    seen = []

    def objective(trial):
        c = suggest(trial, space, b0)
        seen.append(c)
        assert (trial.user_attrs["alpha"], trial.user_attrs["beta"], trial.user_attrs["gamma"]) == (c.alpha, c.beta, c.gamma)
        return c.alpha + c.beta

    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # e.g. Optuna adjusting a range that is not a multiple of step
        study.optimize(objective, n_trials=30)
    assert len(seen) == 30 and all(t.state.name == "COMPLETE" for t in study.trials)
    for c in seen:
        assert within(assess(b0, c, 32), space.budget, space.tolerance, constraint), c
        assert space.gamma.min <= c.gamma <= space.gamma.max
        assert c.alpha in space.alpha.values() and c.beta in space.beta.values()
    assert len(set(seen)) > 3


def test_suggest_measured_gamma_lands_on_a_pixel(b0):
    space = load_space()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(10):
        c = suggest(study.ask(), space, b0)
        res = resolution_for(b0.resolution, c.gamma)
        assert math.isclose(res / b0.resolution, c.gamma, abs_tol=1e-4)


def test_suggest_with_no_feasible_pair(b0):
    space = load_space().with_overrides(budget=10.0)
    study = optuna.create_study()
    with pytest.raises(ScaleSearchError, match="no \\(α, β\\) pair of search space 'default' reaches budget 10x"):
        suggest(study.ask(), space, b0)


def test_device_tables_replace_proxy_settings_on_that_device_only(tmp_path):
    path = tmp_path / "dev.toml"
    path.write_text(MINIMAL + "[proxy]\nepochs = 2\nseeds = 1\n[proxy.cuda]\nepochs = 4\nmax_seeds = 64\n[proxy.cpu]\ntrain = 600\n")
    space = load_space(path)
    assert (space.proxy.epochs, space.proxy.max_seeds, space.proxy.train) == (2, 32, 1200)
    gpu, cpu = space.for_device("cuda"), space.for_device("cpu")
    assert (gpu.proxy.epochs, gpu.proxy.max_seeds, gpu.proxy.train) == (4, 64, 1200)
    assert (cpu.proxy.epochs, cpu.proxy.max_seeds, cpu.proxy.train) == (2, 32, 600)
    assert space.for_device("mps") == space  # no table: the [proxy] settings
    assert gpu.with_overrides(epochs=1).proxy.epochs == 1  # options given on the command line still win
    back = tmp_path / "back.toml"
    back.write_text(space_toml(space))  # what scalesearch.run writes for a space object keeps the tables
    assert load_space(back).device_proxy == space.device_proxy


@pytest.mark.parametrize("table, message", [
    ("[proxy.cuda]\nepochs = 0\n", "proxy.cuda.epochs must be an integer >= 1 and <= 1,000, got 0"),
    ("[proxy.cuda]\nepoch = 3\n", "unknown key 'proxy.cuda.epoch'"),
    ("[proxy]\ncuda = 3\n", "cuda must be a table"),
])
def test_bad_device_tables_are_one_line(tmp_path, table, message):
    path = tmp_path / "bad.toml"
    path.write_text(MINIMAL + table)
    with pytest.raises(ScaleSearchError, match=re.escape(message)):
        load_space(path)


def test_the_shipped_default_races_more_seeds_on_a_gpu_and_a_run_keeps_the_kind_it_started_with(tmp_path):
    from scalesearch.search import RunOptions, prepare

    space = load_space("default")
    assert space.for_device("cuda").proxy.max_seeds > space.for_device("cpu").proxy.max_seeds
    plan = prepare(RunOptions(base="tiny-mbconv", data="synthetic:64", device="cpu", results_dir=str(tmp_path)))
    assert plan.options.proxy_for == "cpu" and plan.space.proxy.max_seeds == 32
    assert plan.config()["options"]["proxy_for"] == "cpu"  # recorded: workers rebuild the same proxy
    joined = prepare(RunOptions(base="tiny-mbconv", data="synthetic:64", device="cpu", results_dir=str(tmp_path),
                                proxy_for="cuda"))  # a study created on a GPU, joined by a CPU worker
    assert joined.space.proxy.max_seeds == 64 and joined.space.proxy.seeds == 2
