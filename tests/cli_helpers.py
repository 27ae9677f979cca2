"""Run the real console entry point in-process and capture what a user sees."""
from __future__ import annotations

from dataclasses import dataclass

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
