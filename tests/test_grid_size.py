"""Search spaces with too many grid points are refused from arithmetic, before any value is made."""
from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest

from cli_helpers import assert_user_error, run_cli
from scalesearch.errors import ScaleSearchError
from scalesearch.space._space import MAX_GRID_POINTS
from scalesearch.space import Range, load_space

SPACE = """
[alpha]
min = 1.0
max = 1.2
step = {alpha}
[beta]
min = 1.0
max = 1.3
step = {beta}
[gamma]
min = 1.0
max = 1.1
step = 0.05
"""


def space_file(tmp_path: Path, alpha: str = "0.1", beta: str = "0.05") -> Path:
    path = tmp_path / "space.toml"
    path.write_text(SPACE.format(alpha=alpha, beta=beta))
    return path


@pytest.mark.parametrize("alpha,beta", [("0.1", "1e-9"), ("1e-7", "0.05"), ("1e-3", "1e-3"), ("0.1", "1e-300"),
                                        ("0.1", "5e-324"), ("1e-200", "1e-200")])
def test_tiny_step_is_refused_at_once_in_bounded_memory(tmp_path, alpha, beta) -> None:
    path = space_file(tmp_path, alpha, beta)
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(ScaleSearchError, match=f"more than the limit of {MAX_GRID_POINTS:,}") as info:
        load_space(path)
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert seconds < 0.5 and peak < 2_000_000, (seconds, peak)
    assert "MAX_GRID_POINTS" in str(info.value) and "larger step" in str(info.value)


def test_cli_says_which_step_in_one_line(capsys, tmp_path) -> None:
    r = run_cli(capsys, "run", "--base", "tiny-mbconv", "--space", space_file(tmp_path, beta="1e-9"),
                "--results-dir", tmp_path / "results")
    assert_user_error(r, "grid points", "beta.step", "1e-09", "100,000")
    assert not (tmp_path / "results").exists()


def test_counts_agree_with_values() -> None:
    for r in (Range(1.0, 1.3, 0.05), Range(1.0, 1.0, 0.1), Range(1.0, 1.15, 0.05), Range(1.0, 2.0, 0.3)):
        assert r.count() == len(r.values())
    assert Range(1.0, 1.15, 0.05).values() == (1.0, 1.05, 1.1, 1.15)
    with pytest.raises(ScaleSearchError, match="larger step"):
        Range(1.0, 2.0, 1e-12).values()


def test_largest_allowed_grid_loads(tmp_path) -> None:
    # 5 × 100 × 3 = 1,500 points: well inside the limit
    assert load_space(space_file(tmp_path, "0.05", "0.003")).alpha.count() == 5
