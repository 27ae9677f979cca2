"""What the package reads ships inside it, so a regular (non-editable) install runs from any directory.

The install itself is checked by .ci/run (a wheel in a fresh venv, a tiny search from an empty directory).
"""
from __future__ import annotations

import fnmatch
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

import pytest

import scalesearch
from scalesearch import arch, data, space
from cli_helpers import assert_user_error, run_cli

PACKAGE = Path(scalesearch.__file__).resolve().parent
ROOT = PACKAGE.parent


def setuptools_config() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["tool"]["setuptools"]


def package_folder(name: str) -> Path:
    """Where setuptools takes package `name` from: its package-dir entry, else its dotted path."""
    mapped = setuptools_config().get("package-dir", {}).get(name)
    return (ROOT / mapped if mapped else ROOT.joinpath(*name.split("."))).resolve()


@pytest.mark.parametrize("path", [space.SPACES_DIR, arch.BASES_DIR, data.EMBEDDED, PACKAGE / "results" / "schema"])
def test_data_files_are_package_data_of_a_listed_package(path):
    path = Path(path).resolve()
    config = setuptools_config()
    files = [p for p in (path.rglob("*") if path.is_dir() else [path]) if p.is_file() and p.suffix != ".py"]
    assert files
    for f in files:
        owners = [name for name in config["packages"] if f.is_relative_to(package_folder(name))]
        assert owners, f"{f} is in no package: a wheel would not carry it"
        owner = max(owners, key=len)
        rel = str(f.relative_to(package_folder(owner)))
        assert any(fnmatch.fnmatch(rel, pat) for pat in config["package-data"].get(owner, [])), f"{rel} is not package data"


def test_every_subpackage_is_listed_for_setuptools():
    found = {"scalesearch", *("scalesearch." + p.parent.name for p in PACKAGE.glob("*/__init__.py"))}
    assert found | {"scalesearch.search_spaces"} == set(setuptools_config()["packages"])


def test_shipped_spaces_are_found_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert space.known_spaces() == ["default", "nni", "paper"]
    assert space.load_space("default").name == "default"


def test_spaces_command_lists_names_and_descriptions(capsys):
    result = run_cli(capsys, "spaces")
    assert result.code == 0, result
    for name in space.known_spaces():
        assert name in result.out and space.load_space(name).description[:40] in result.out


def test_unknown_space_names_the_real_choices(capsys, tmp_path):
    assert_user_error(run_cli(capsys, "run", "--space", "nope", "--data", "synthetic:64"),
                      "unknown search space 'nope'", "choose one of default, nni, paper", "scalesearch spaces")
    assert_user_error(run_cli(capsys, "run", "--space", str(tmp_path / "gone.toml"), "--data", "synthetic:64"),
                      "(no such file)")
