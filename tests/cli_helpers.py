"""Run the real console entry point in-process and capture what a user sees."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest

from scalesearch.cli import main


@dataclass
class Result:
    code: int
    out: str
    err: str


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> Result:
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    captured = capsys.readouterr()
    return Result(int(exit_info.value.code or 0), captured.out, captured.err)


def assert_user_error(result: Result, *fragments: str) -> None:
    """Exit 2, exactly one line on stderr, no traceback, and the line says what is wrong."""
    assert result.code == 2, result
    lines = result.err.rstrip("\n").splitlines()
    assert len(lines) == 1 and lines[0].startswith("scalesearch: error: "), result.err
    assert "Traceback" not in result.err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def tiny_space(budget: float = 2.0, tolerance: float = 0.1, gamma_max: float = 1.4, epochs: int = 2) -> str:
    """A search-space file for tiny-mbconv proxies of a few hundred thousand MACs (nominal constraint)."""
    return f"""
description = "tiny test space"
source = "tests"
budget = {budget}
tolerance = {tolerance}
constraint = "nominal"
[alpha]
min = 1.0
max = 1.4
step = 0.2
[beta]
min = 1.0
max = 1.2
step = 0.1
[gamma]
min = 1.0
max = {gamma_max}
step = 0.1
[search]
phi2 = 0
[proxy]
resolution = 16
width = 1.0
epochs = {epochs}
train = 64
val = 32
batch_size = 32
seeds = 1
max_seeds = 1
score = "acc"
"""


def study_of(results: Path) -> optuna.Study:
    """The one study a run wrote under the results folder `results` (SQLite)."""
    (db,) = results.glob("*/study.db")
    return optuna.load_study(study_name=db.parent.name, storage=f"sqlite:///{db}")
