"""Every file scalesearch writes: whole or not at all, and a refused write is one line with exit 2."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from cli_helpers import assert_user_error, run_cli, tiny_space
from scalesearch import files
from scalesearch.errors import ScaleSearchError


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("outputs")
    (root / "tiny.toml").write_text(tiny_space(budget=1.5, tolerance=0.05, gamma_max=1.2, epochs=2))
    with pytest.raises(SystemExit) as done:
        from scalesearch.cli import main

        main(["run", "--base", "tiny-mbconv", "--space", str(root / "tiny.toml"), "--data", "synthetic:64",
              "--device", "cpu", "--results-dir", str(root / "results"), "--study", "tiny"])
    assert done.value.code == 0
    return {"root": root, "dir": str(root / "results")}


def blocked(root: Path) -> list[str]:
    """Paths no process can write: procfs, a file standing where a folder should be, /dev/null as a folder."""
    (root / "afile.png").write_bytes(b"not a folder")
    return ["/proc/1/coef.json", "/proc/self/x/coef.yaml", str(root / "afile.png" / "x.yaml"), "/dev/null/c.toml"]


def test_export_to_unwritable_paths_is_one_line(capsys, study) -> None:
    for path in blocked(study["root"]):
        r = run_cli(capsys, "export", "tiny", "--results-dir", study["dir"], "-o", path)
        assert_user_error(r, "cannot write", path)
        if "afile.png" in path:
            assert f"a file is in the way: {study['root'] / 'afile.png'}" in r.err
    assert (study["root"] / "afile.png").read_bytes() == b"not a folder"


def test_plot_to_unwritable_folders_is_one_line(capsys, study) -> None:
    for folder in ["/proc/1/plots", str(study["root"] / "afile.png" / "plots"), "/dev/null/plots"]:
        (study["root"] / "afile.png").write_bytes(b"not a folder")
        r = run_cli(capsys, "plot", "tiny", "--results-dir", study["dir"], "-o", folder)
        assert_user_error(r, folder)


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path) -> None:
    target = tmp_path / "out.json"
    files.write_text(target, "old")
    with pytest.raises(RuntimeError):
        with files.atomic(target) as tmp:
            tmp.write_text("half of the new")
            raise RuntimeError("renderer crashed")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["out.json"]
    files.write_text(target, "new")
    assert target.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["out.json"]
    assert target.stat().st_mode & 0o777 == 0o666 & ~files._UMASK  # an ordinary file, not mkstemp's 0600


def test_make_folder_names_the_file_in_the_way(tmp_path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(ScaleSearchError, match=r"cannot write to .*f/g/h: a file is in the way: .*f$"):
        files.make_folder(tmp_path / "f" / "g" / "h")


def test_special_files_are_written_through_not_replaced(tmp_path) -> None:
    """Renaming over /dev/null would replace the device itself when run as root."""
    files.write_text("/dev/null", "discarded")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    with pytest.raises(ScaleSearchError, match="cannot write /dev/full: No space left on device"):
        files.write_text("/dev/full", "x" * 100_000)
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_a_link_keeps_pointing_at_the_file_written(tmp_path) -> None:
    (tmp_path / "real.json").write_text("old")
    (tmp_path / "link.json").symlink_to(tmp_path / "real.json")
    files.write_text(tmp_path / "link.json", "new")
    assert (tmp_path / "link.json").is_symlink() and (tmp_path / "real.json").read_text() == "new"
