"""The one way scalesearch writes a file: whole or not at all, and OS errors as one line.

Every output (tables, coefficient files, plots) is written to a temporary file in
the target's folder and renamed over the target, so a reader never sees half a
file and a failed write leaves the old file as it was. Anything the operating
system refuses (a read-only folder, /proc, a file where a folder should be, a
full disk) becomes a :class:`ScaleSearchError` naming the path: the CLI prints
it as one line and exits with code 2.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> write_text(folder / "a" / "b.txt", "hello")
>>> (folder / "a" / "b.txt").read_text()
'hello'
>>> write_text(folder / "a" / "b.txt" / "c.txt", "x")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
scalesearch.errors.ScaleSearchError: cannot write .../a/b.txt/c.txt: a file is in the way: .../a/b.txt
"""
from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import ScaleSearchError

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

_UMASK = os.umask(0o022)  # read once: os.umask can only be read by setting it
os.umask(_UMASK)


@contextlib.contextmanager
def atomic(path: str | Path) -> Iterator[Path]:
    """Yields a temporary path beside `path`; when the block ends without error it replaces `path`.

    The caller writes the whole file to the yielded path (e.g. ``fig.savefig(tmp)``).
    """
    path = Path(path)
    if path.is_symlink():  # write the file the link points to; the link stays
        path = Path(os.path.realpath(path))
    if path.exists() and not path.is_file() and not path.is_dir():
        # /dev/null, /dev/stdout, a FIFO: renaming over it would replace the device itself (as root)
        with _as_one_line(path):
            yield path
        return
    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Same folder as the target, so os.replace is a rename on one file system.
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        tmp = Path(name)
        yield tmp
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs are ordinary files
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise ScaleSearchError(f"cannot write {path}: {describe(exc, path)}") from None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_all(paths: list[Path]) -> Iterator[list[Path]]:
    """Temporary paths beside each of `paths`: when the block ends without error all replace their targets, else none.

    A set of outputs (a run's tables, a study's figures) is then either all new or all as it was.
    """
    for path in map(Path, paths):  # the one thing a rename cannot overcome, checked before any is renamed
        if path.is_dir() and not path.is_symlink():
            raise ScaleSearchError(f"cannot write {path}: a folder is in the way")
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(atomic(path)) for path in paths]


def write_texts(texts: dict[Path, str]) -> None:
    """Several UTF-8 files, all or none (:func:`atomic_all`)."""
    with atomic_all(list(texts)) as tmps:
        for tmp, text in zip(tmps, texts.values()):
            tmp.write_text(text, encoding="utf-8")


@contextlib.contextmanager
def _as_one_line(path: Path) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise ScaleSearchError(f"cannot write {path}: {describe(exc, path)}") from None


def write_text(path: str | Path, text: str) -> None:
    """`text` (UTF-8) to `path`, atomically; missing folders are made."""
    with atomic(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic(path) as tmp:
        tmp.write_bytes(data)


def make_folder(folder: str | Path) -> Path:
    """`folder` and its parents, or a one-line error saying why not."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ScaleSearchError(f"cannot write to {folder}: {describe(exc, folder)}") from None
    return folder


def describe(exc: OSError, path: Path) -> str:
    """Why the OS refused, in words; a file standing where a folder is needed is named."""
    if exc.errno in (errno.EEXIST, errno.ENOTDIR):
        blocker = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
        if blocker is not None:
            return f"a file is in the way: {blocker}"
    return exc.strerror or str(exc)


def read_toml(path: Path, where: str | None = None) -> dict:
    """A TOML file as a dict; unreadable or invalid files are one line naming `where` (default the path)."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ScaleSearchError(f"{where or path}: not a valid TOML file ({exc})") from None


def toml_text(data: dict) -> str:
    """`data` as TOML text (None values left out, as TOML has no null)."""
    import tomli_w

    return tomli_w.dumps({k: v for k, v in data.items() if v is not None})
