from __future__ import annotations

import pytest

from cli_helpers import assert_user_error, run_cli


def test_info_b0(capsys):
    r = run_cli(capsys, "info", "--base", "b0")
    assert r.code == 0
    assert "5.29 M params" in r.out and "0.386 GMACs" in r.out and "224 px" in r.out


def test_info_family(capsys):
    r = run_cli(capsys, "info", "--phi", "0..2")
    assert r.out.count("px") == 3 and "256 px" in r.out and "296 px" in r.out


def test_info_verify_counts_with_fvcore(capsys):
    r = run_cli(capsys, "info", "--base", "tiny-mbconv", "--verify")
    assert r.code == 0 and "fvcore: conv+linear" in r.out


def test_bases_lists_presets_and_example(capsys):
    r = run_cli(capsys, "bases")
    for name in ("b0", "b7", "b8", "l2", "tiny-mbconv"):
        assert name in r.out


@pytest.mark.parametrize("args, fragments", [
    (["info", "--base", "b9"], ["unknown base 'b9'", "b0, b1"]),
    (["info", "--width", "0"], ["--width must be > 0"]),
    (["info", "--depth", "-1.5"], ["--depth must be > 0"]),
    (["info", "--resolution", "7"], ["--resolution must be >= 8"]),
    (["info", "--width", "abc"], ["--width", "number"]),
    (["info", "--phi", "x..y"], ["--phi must be a number or a range"]),
    (["info", "--phi", "1", "--width", "2"], ["either --phi or --width"]),
    (["info", "--base", "missing.toml"], ["unknown base 'missing.toml'"]),
    (["frobnicate"], ["No such command"]),
])
def test_bad_input_is_one_line_exit_2(capsys, args, fragments):
    assert_user_error(run_cli(capsys, *args), *fragments)
