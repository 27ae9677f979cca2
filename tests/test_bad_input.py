"""The failures of issue 24, each one line with exit 2 and nothing written; redaction, limits, all-or-none
outputs and the bounded family timing, on known cases (tests/test_promise.py checks the same promise on generated ones)."""
from __future__ import annotations

import hashlib
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from cli_helpers import assert_user_error, run_cli

from scalesearch.arch import _latency as latency
from scalesearch.arch import _model as model
from scalesearch.arch import load_base
from scalesearch.arch import network_cost
from scalesearch.errors import ScaleSearchError
from scalesearch.search import time_family
from scalesearch.arch import Latency, Meter
from scalesearch.results import write_set
from scalesearch.search._urls import check
from scalesearch.search import redact


def listing(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


@pytest.mark.parametrize("url, shown", [
    ("postgres:Hunter2x@host:5999/db", "postgres:***@host:5999/db"),
    ("postgresql://user:pa@ss@host/db", "postgresql://user:***@host/db"),
    ("postgresql://user:pa/ss@host/db", "postgresql://user:***@host/db"),
    ("postgresql://pa@ss@host/db", "postgresql://***@host/db"),
    ("postgresql://user:secret/db", "postgresql://***/db"),
    ("postgresql:secret", "postgresql:***"),
    ("postgresql://u@h/db?pass%77ord=x&sslmode=require", "postgresql://u@h/db?pass%77ord=***&sslmode=require"),
    ("mysql://u:p@h/d?passwd=1;token=2", "mysql://u:***@h/d?passwd=***;token=***"),
    ("sqlite:///home/me/study.db", "sqlite:///home/me/study.db"),
    ("journal:results/x.log", "journal:results/x.log"),
])
def test_redaction_hides_what_could_be_a_password(url, shown):
    assert redact(url) == shown


@pytest.mark.parametrize("url, mode, fragment", [
    ("", "read", "--storage is empty"),
    ("journal:", "read", "no file after journal:"),
    ("journal:/nonexistent/dir/x.log", "read", "does not exist"),
    ("journal:/nonexistent/dir/x.log", "create", "folder /nonexistent/dir does not exist"),
    ("journal:.", "create", "is a folder"),
    ("sqlite:///typo.db", "read", "typo.db does not exist"),
    ("sqlite://", "read", "in-memory"),
    ("postgres:Hunter2x@host:5999/db", "read", "the // after 'postgres:' is missing"),
    ("postgresql://user:pa@ss@host/db", "read", "more than one '@'"),
    ("postgresql://user:pa@host:port/db", "read", "numeric port"),
])
def test_storage_urls_are_checked_before_opening(tmp_path, monkeypatch, url, mode, fragment):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ScaleSearchError, match=fragment.replace("(", r"\(")) as e:
        check(url, mode)
    assert "Hunter2x" not in str(e.value) and "pa@ss" not in str(e.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args, fragments", [
    (["show", "--storage", "journal:/nonexistent/dir/x.log"], ["does not exist"]),
    (["worker", "--study", "x", "--storage", "journal:/nonexistent/dir/x.log"], ["does not exist"]),
    (["run", "--storage", "journal:/nonexistent/dir/x.log"], ["folder /nonexistent/dir does not exist"]),
    (["show", "--storage", "journal:folder"], ["is a folder"]),
    (["show", "--storage", "journal:"], ["no file after journal:"]),
    (["show", "--storage", "journal:garbage.log"], ["not an Optuna journal file"]),
    (["run", "--storage", "journal:garbage.log", "--base", "tiny-mbconv", "--data", "synthetic:64"], ["not an Optuna journal"]),
    (["show", "--storage", "sqlite:///typo.db", "--study", "x"], ["typo.db does not exist"]),
    (["show", "--storage", "sqlite:///study.db"], ["study.db is empty"]),
    (["show", "--storage", "postgres:Hunter2x@host:5999/db"], ["postgres:***@host"]),
    (["show", "--storage", "postgresql://user:pa@ss@host/db"], ["postgresql://user:***@host/db"]),
    (["extrapolate", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15", "--phi", "nan"], ["--phi must be a finite number"]),
    (["extrapolate", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15", "--phi", "inf"], ["got inf"]),
    (["extrapolate", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15", "--phi", "0..100000000"], ["from 0 to 16"]),
    (["info", "--phi", "99"], ["from 0 to 16, got 99"]),
    (["info", "--phi", "-1"], ["from 0 to 16, got -1"]),
    (["extrapolate", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15", "--phi", "-1"], ["from 0 to 16, got -1"]),
    (["info", "--phi", "0..7:0.0001"], ["more than 100 members"]),
    (["info", "--base", "huge.toml"], ["r must be at most 100"]),
    (["info", "--base", "kernel.toml"], ["k must be at most 31"]),
    (["run", "--proxy-resolution", "100000"], ["--proxy-resolution must be >= 8 and <= 4096"]),
    (["run", "--study", ""], ["--study must not be empty"]),
    (["export", "-o", ""], ["-o must not be empty"]),
    (["verify", "--device", "tpu"], ["unknown device 'tpu'"]),
    (["verify", "--phi", "99"], ["from 0 to 16"]),
])
def test_each_failure_of_issue_24_is_one_line_and_writes_nothing(capsys, tmp_path, monkeypatch, args, fragments):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder").mkdir()
    (tmp_path / "garbage.log").write_bytes(bytes(range(256)))
    (tmp_path / "study.db").write_bytes(b"")
    block = '"r1_k3_s11_e1_i8_o16"'
    (tmp_path / "huge.toml").write_text('resolution = 32\nstem = 8\nhead = 64\nblocks = ["r100000000_k3_s11_e1_i8_o16"]\n')
    (tmp_path / "kernel.toml").write_text(f'resolution = 32\nstem = 8\nhead = 64\nblocks = ["r1_k99999_s11_e1_i8_o16", {block}]\n')
    before = listing(tmp_path)
    r = run_cli(capsys, *args)
    assert_user_error(r, *fragments)
    assert "Hunter2x" not in r.err and "pa@ss" not in r.err and "ss@host" not in r.err
    assert listing(tmp_path) == before


def test_run_refuses_a_proxy_that_cannot_fit_before_creating_the_study(capsys, tmp_path):
    r = run_cli(capsys, "run", "--base", "tiny-mbconv", "--data", "synthetic:64", "--proxy-resolution", "4096",
                "--device", "cpu", "--results-dir", tmp_path / "results")
    assert_user_error(r, "training the largest proxy", "GiB", "--proxy-resolution")
    assert not (tmp_path / "results").exists()


def test_a_results_set_is_written_whole_or_not_at_all(tmp_path):
    (tmp_path / "trials.csv").write_text("old\n")
    (tmp_path / "ranking.csv").mkdir()  # cannot be replaced by a file
    frame = pd.DataFrame({"a": [1]})
    with pytest.raises(ScaleSearchError, match="ranking.csv: a folder is in the way"):
        write_set(tmp_path, frame, frame, {"coefficients.json": "{}\n"})
    assert (tmp_path / "trials.csv").read_text() == "old\n" and not (tmp_path / "coefficients.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ranking.csv", "trials.csv"]  # no temporary file left


def test_family_timing_skips_members_over_the_limit_and_reports_progress(monkeypatch):
    """Latency := MACs × 10 ns, so the limit falls between members; every timed member reports a line with an ETA."""
    def fake(net, side, in_channels, device, cond, min_run_time, warmup):
        return Latency(network_cost(net.spec, side).macs * 1e-8, 0.0, 5, cond)

    monkeypatch.setattr(latency, "time_network", fake)
    monkeypatch.setattr(model, "build", lambda spec, num_classes=1000, in_channels=3: SimpleNamespace(spec=spec))
    lines: list[str] = []
    b0 = load_base("b0")
    timed = time_family(b0, 1.2, 1.1, 1.15, list(range(8)), Meter("cpu"), limit_s=20.0, report=lines.append)
    n = len(timed.rows)
    assert 0 < n < 8 and [r["phi"] for r in timed.rows] == list(range(n))  # the small members, in order
    assert [s["phi"] for s in timed.skipped] == list(range(n, 8)) and all(s["estimated_s"] > 20 for s in timed.skipped)
    assert all(r["latency_s"] <= 20 for r in timed.rows) and timed.rows[0]["latency_ratio"] == 1
    plan, progress = lines[-n - 1], lines[-n:]
    assert "not timed" in plan and "extrapolate STUDY --latency" in plan
    assert all(f"({i} of {n};" in line and "s left)" in line for i, line in enumerate(progress, 1))


def test_tiny_images_blown_up_are_warned_about(tmp_path, monkeypatch):
    from PIL import Image

    from scalesearch.data import Report, load_folder

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for c in "ab":
        (tmp_path / "data" / c).mkdir(parents=True)
        for i in range(6):
            Image.new("RGB", (1, 1), (255 * (c == "a"), i, 0)).save(tmp_path / "data" / c / f"{i}.png")
    notes: list[str] = []
    report = Report()
    report.note = notes.append
    load_folder(tmp_path / "data", 151, 8, 2, 0, report)
    assert any("WARNING: upscaled 151× to 151 px" in n for n in notes)
