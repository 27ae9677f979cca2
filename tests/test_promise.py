"""The CLI's promise, checked on generated input (Hypothesis): every invocation exits 0 or 2 within 20 s, prints
no traceback and no password; with exit 2 it prints one line and leaves the directory and the study as they were.

Option values, storage URLs, --phi texts, search-space and base TOML files are generated. Nothing trains: the
read-only commands run on a study made once; `run`, `verify` and `worker` always get at least one bad input.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import os
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from scalesearch.cli import main

SPACE = """
budget = 1.2
tolerance = 0.5
constraint = "nominal"
[alpha]
min = 1.0
max = 1.2
step = 0.2
[beta]
min = 1.0
max = 1.0
step = 0.1
[gamma]
min = 1.0
max = 1.0
step = 0.1
[search]
phi2 = 0
[proxy]
width = 1.0
max_seeds = 1
score = "acc"
"""
SECRET = "Zq9xSecret"  # the password in every generated server URL: it must never be printed
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                    database=None)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """A folder with one tiny finished study (two candidates, one seed each), a 0-byte db, garbage and a folder."""
    root = tmp_path_factory.mktemp("promise")
    (root / "space.toml").write_text(SPACE)
    code, _, err = cli(root, "run", "--base", "tiny-mbconv", "--space", "space.toml", "--data", "synthetic:64",
                       "--epochs", "1", "--train", "64", "--val", "32", "--seeds", "1", "--proxy-resolution", "16",
                       "--batch-size", "32", "--device", "cpu", "--study", "tiny")
    assert code == 0, err
    (root / "empty.db").write_bytes(b"")
    (root / "garbage.log").write_bytes(bytes(range(256)) * 3)
    (root / "folder").mkdir()
    return root


def cli(cwd: Path, *args: str) -> tuple[int, str, str]:
    """The real entry point in-process, in `cwd`: (exit code, stdout, stderr)."""
    out, err, old = io.StringIO(), io.StringIO(), os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main([str(a) for a in args])
                code = 0
            except SystemExit as e:
                code = int(e.code or 0)
    finally:
        os.chdir(old)
    return code, out.getvalue(), err.getvalue()


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder` with a digest of its bytes (folders too, so a new empty one shows)."""
    return {str(p.relative_to(folder)): (hashlib.sha1(p.read_bytes()).hexdigest() if p.is_file() else "dir")
            for p in sorted(folder.rglob("*"))}


def check(root: Path, *args: str, outputs: tuple[str, ...] = ()) -> int:
    """Run and assert the promise; `outputs` are paths (relative to `root`) a successful command may write."""
    before = snapshot(root)
    start = time.monotonic()
    code, out, err = cli(root, *args)
    assert time.monotonic() - start < 20, args
    assert code in (0, 2), (args, code, err)
    assert "Traceback" not in err + out, (args, err)
    assert SECRET not in err + out, (args, err)
    after = snapshot(root)
    event(f"{args[0]} exit {code}")  # --hypothesis-show-statistics: how often each command succeeded
    if code == 2:
        lines = err.rstrip("\n").splitlines()
        assert len(lines) == 1 and lines[0].startswith("scalesearch: error: "), (args, err)
        assert after == before, (args, set(after.items()) ^ set(before.items()))
    else:
        changed = {k for k in set(after) | set(before) if after.get(k) != before.get(k)}
        assert all(any(k.startswith(o) for o in outputs) for k in changed), (args, changed)
    return code


# --- values -------------------------------------------------------------------------------------------------

def number_text() -> st.SearchStrategy[str]:
    return st.one_of(st.integers(-10, 10**12).map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr),
                     st.sampled_from(["nan", "inf", "-inf", "1e400", "0", "-0", "", " ", "2x", "abc", "1_000"]))


def phi_text() -> st.SearchStrategy[str]:
    small = st.one_of(st.integers(-3, 20).map(str), number_text())
    return st.one_of(small, st.builds(lambda a, b: f"{a}..{b}", small, small),
                     st.builds(lambda a, b, s: f"{a}..{b}:{s}", small, small, number_text()))


def storage_url() -> st.SearchStrategy[str]:
    paths = st.sampled_from(["", "folder", "empty.db", "garbage.log", "missing.db", "/nonexistent/dir/x.log",
                             "results/tiny/study.db", "folder/new.log"])
    userinfo = st.sampled_from([f"me:{SECRET}", f"me:{SECRET}@x", f"me:{SECRET}/x", f"{SECRET}", f"me:{SECRET}%40y"])
    server = st.builds(lambda scheme, sep, user, query: f"{scheme}:{sep}{user}@127.0.0.1:1/db{query}",
                       st.sampled_from(["postgresql", "postgres", "mysql"]), st.sampled_from(["//", "", "/"]), userinfo,
                       st.sampled_from(["", f"?password={SECRET}", f"?pass%77ord={SECRET}&sslmode=disable"]))
    # After "//" a bare name before "@" is unambiguously the user, which is shown like the host (README, Storage URLs).
    server = server.filter(lambda url: f"//{SECRET}@" not in url)
    return st.one_of(paths.map(lambda p: f"journal:{p}"), paths.map(lambda p: f"sqlite:///{p}"), server,
                     st.sampled_from(["", " ", "sqlite://", "sqlite:///:memory:", "C:/x.db", "nonsense"]))


def option(name: str, values: st.SearchStrategy[str]) -> st.SearchStrategy[list[str]]:
    """[] (option left out) or [name, value]."""
    return st.one_of(st.just([]), values.map(lambda v: [name, v]))


def options(*pairs: tuple[str, st.SearchStrategy[str]]) -> st.SearchStrategy[list[str]]:
    return st.tuples(*(option(n, v) for n, v in pairs)).map(lambda parts: [x for p in parts for x in p])


FORMATS = st.sampled_from(["table", "csv", "json", "markdown", "yaml", "toml", "python", "", "xml"])
DEVICES = st.sampled_from(["auto", "cpu", "cuda", "cuda:7", "tpu", "", "cpu:0", "-1"])


# --- read-only commands on a real study ---------------------------------------------------------------------

@SETTINGS
@given(st.one_of(
    options(("--format", FORMATS), ("--top", number_text()), ("--sort", st.sampled_from(["rank", "params:desc", "x", "rank:up"])),
            ("--storage", storage_url()), ("--study", st.sampled_from(["tiny", "", "nope"]))).map(lambda o: ["show", *o]),
    options(("--format", FORMATS), ("-o", st.sampled_from(["-", "", "folder", "out/c.json", "c.yaml", "/proc/x"])),
            ("--storage", storage_url())).map(lambda o: ["export", "tiny", *o]),
    options(("--phi", phi_text()), ("--format", FORMATS), ("--storage", storage_url())).map(lambda o: ["extrapolate", "tiny", *o]),
    options(("--alpha", number_text()), ("--beta", number_text()), ("--gamma", number_text()), ("--phi", phi_text()),
            ("--base", st.sampled_from(["b0", "tiny-mbconv", "nope", "space.toml"]))).map(lambda o: ["extrapolate", *o]),
    options(("--phi", phi_text()), ("--width", number_text()), ("--depth", number_text()), ("--resolution", number_text()),
            ("--num-classes", number_text())).map(lambda o: ["info", *o]),
))
def test_reading_commands_keep_the_promise(root, args):
    folder = [] if args[0] == "info" else ["--results-dir", "results"]
    check(root, *args, *folder, outputs=("out", "c.yaml", "results/tiny/coefficients"))


@SETTINGS
@given(storage_url(), st.sampled_from(["show", "export", "extrapolate", "plot", "agree"]))
def test_storage_urls_are_checked_and_never_leak_a_password(root, url, command):
    outputs = ("results/tiny/coefficients", "results/tiny/plots")
    which = ["tiny", "tiny"] if command == "agree" else ["--study", "tiny"]  # agree names its two studies
    check(root, command, *(["-o", "-"] if command == "export" else []), "--storage", url, *which, outputs=outputs)


@settings(SETTINGS, max_examples=8)
@given(options(("--phi", phi_text()), ("-o", st.sampled_from(["figs", "", "space.toml"])), ("--storage", storage_url())))
def test_plot_writes_all_figures_or_none(root, args):
    if check(root, "plot", "tiny", *args, "--results-dir", "results", outputs=("figs", "results/tiny/plots")) == 0:
        folder = root / (args[args.index("-o") + 1] if "-o" in args else "results/tiny/plots")
        assert len(list(folder.glob("*.png"))) == 3 and len(list(folder.glob("*.svg"))) == 3


# --- commands that train, always with at least one bad input ------------------------------------------------

BAD_LIST = [["--phi", "nan"], ["--phi", "99"], ["--device", "tpu"], ["--device", "cuda:7"], ["--top", "0"],
            ["--storage", "journal:/nonexistent/dir/x.log"], ["--storage", "journal:folder"],
            ["--storage", "journal:garbage.log"], ["--storage", "sqlite:///empty.db"],
            ["--storage", f"postgres:{SECRET}@127.0.0.1:1/db"]]
BAD = st.sampled_from(BAD_LIST)


@SETTINGS
@given(BAD, options(("--phi", phi_text()), ("--top", number_text()), ("--device", DEVICES)))
def test_verify_refuses_before_queueing(root, bad, args):
    assert check(root, "verify", "tiny", *args, *bad, "--results-dir", "results") == 2


@SETTINGS
@given(st.sampled_from([b for b in BAD_LIST if b[0] in ("--device", "--storage")]), options(("--device", DEVICES)))
def test_worker_refuses_bad_input(root, bad, args):
    storage = [] if bad[0] == "--storage" else ["--storage", "sqlite:///results/tiny/study.db"]
    assert check(root, "worker", "--study", "tiny", *storage, *args, *bad) == 2


RUN_BAD = st.sampled_from([["--proxy-resolution", "100000"], ["--batch-size", "0"], ["--batch-size", "100000"],
                           ["--study", ""], ["--epochs", "0"], ["--lr", "-1"], ["--budget", "nan"], ["--device", "tpu"],
                           ["--storage", "journal:/nonexistent/dir/x.log"], ["--storage", "journal:garbage.log"],
                           ["--storage", "sqlite:///folder/missing/x.db"], ["--data", "synthetic:5"]])


@SETTINGS
@given(RUN_BAD, options(("--epochs", number_text()), ("--train", number_text()), ("--proxy-resolution", number_text()),
                        ("--batch-size", number_text()), ("--lr", number_text()), ("--tolerance", number_text()),
                        ("--storage", storage_url())))
def test_run_refuses_bad_options_before_creating_anything(root, bad, args):
    assert check(root, "run", "--base", "tiny-mbconv", "--space", "space.toml", "--device", "cpu", *args, *bad) == 2


# --- generated search spaces and bases ----------------------------------------------------------------------

def toml_value() -> st.SearchStrategy[str]:
    return st.one_of(st.integers(-10**12, 10**12).map(str), st.sampled_from(["nan", "inf", "-inf", "true", "0.0", "1e300"]),
                     st.floats(-1e6, 1e6, allow_nan=False).map(repr), st.sampled_from(['"auto"', '"2x"', '""', "[1, 2]"]))


def space_toml() -> st.SearchStrategy[str]:
    axis = st.fixed_dictionaries({"min": toml_value(), "max": toml_value(), "step": toml_value()})
    proxy = st.dictionaries(st.sampled_from(["resolution", "epochs", "train", "batch_size", "seeds", "max_seeds", "width",
                                             "lr", "nonsense"]), toml_value(), max_size=4)
    top = st.dictionaries(st.sampled_from(["budget", "tolerance", "constraint"]), toml_value(), max_size=2)

    def text(t, a, b, g, p):
        body = "".join(f"{k} = {v}\n" for k, v in t.items())
        for name, table in (("alpha", a), ("beta", b), ("gamma", g), ("proxy", p)):
            body += f"[{name}]\n" + "".join(f"{k} = {v}\n" for k, v in table.items())
        return body
    return st.builds(text, top, axis, axis, axis, proxy)


def base_toml() -> st.SearchStrategy[str]:
    n = st.integers(-1, 10**9)
    block = st.builds(lambda r, k, e, o: f'"r{r}_k{k}_s11_e{e}_i16_o{o}"', n, n, n, n)
    return st.builds(lambda res, stem, head, blocks, width: f"resolution = {res}\nstem = {stem}\nhead = {head}\n"
                     f"width = {width}\nblocks = [\"r1_k3_s11_e1_i{stem}_o16\", {', '.join(blocks)}]\n",
                     toml_value(), n, n, st.lists(block, min_size=1, max_size=3), toml_value())


@SETTINGS
@given(space_toml())
def test_generated_spaces_are_one_line_or_accepted(root, text):
    (root / "gen-space.toml").write_text(text)
    # synthetic:5 is always refused, after the space is read and checked: nothing can train
    assert check(root, "run", "--base", "tiny-mbconv", "--space", "gen-space.toml", "--data", "synthetic:5") == 2


@SETTINGS
@given(base_toml(), phi_text())
def test_generated_bases_are_one_line_or_shown(root, text, phi):
    (root / "gen-base.toml").write_text(text)
    check(root, "info", "--base", "gen-base.toml", "--phi", phi)
    assert check(root, "run", "--base", "gen-base.toml", "--space", "space.toml", "--data", "synthetic:5") == 2
