"""Storage URLs read before they are opened: what may be printed of them, and whether they can work.

:func:`redact` is the one way a storage URL (or text made from one) is shown. It
needs no parser to agree with it: a password with an unescaped ``@`` or ``/``, a
URL missing its ``//``, secrets in the query (``?password=``, percent-encoded
names) are all hidden, and when it cannot tell a user from a password it hides
everything between the scheme and the host.

:func:`check` refuses, before anything is opened or created, a URL that cannot
work for what the command does with it (``mode``):

* ``read`` (show, export, extrapolate, plot): the file must exist and hold a study
  database or journal; nothing is created.
* ``write`` (worker, verify): the same, and writable.
* ``create`` (run): an existing file must be writable and of the right kind; a new
  one must go into an existing, writable folder (only the default
  ``results/<study>/`` folder is made by ``run``).

>>> redact("postgres:hunter2@db:5432/search")
'postgres:***@db:5432/search'
>>> redact("postgresql://me:pa@ss@db/search?sslmode=require&pass%77ord=x")
'postgresql://me:***@db/search?sslmode=require&pass%77ord=***'
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote_plus

from ..errors import ScaleSearchError

MODES = ("read", "write", "create")
EXPECTED = "expected sqlite:///PATH, journal:PATH or postgresql://USER:PASSWORD@HOST/DB"
SQLITE_HEADER = b"SQLite format 3\x00"
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):(.*)", re.S)
_SECRET_NAME = re.compile(r"pass|pwd|secret|token|key|auth|cred", re.I)
_HOSTPORT = re.compile(r"(\[[0-9A-Fa-f:.]*\]|[^:\[\]@/]*)(:\d*)?")


def _is_file_scheme(scheme: str) -> bool:
    return scheme.lower() == "journal" or scheme.lower().startswith("sqlite")


def redact(url: str) -> str:
    """`url` with its password and secret query values replaced by ***; paths, hosts and users kept."""
    m = _SCHEME.fullmatch(url)
    if not m:
        return "***" + url[url.rindex("@"):] if "@" in url else url
    scheme, rest = m.groups()
    rest, q, query = rest.partition("?")
    query = q + _redact_query(query) if q else ""
    if _is_file_scheme(scheme) and (rest.startswith("///") or not rest.startswith("//")) and "@" not in rest:
        return f"{scheme}:{rest}{query}"  # a path: nothing in it is a secret
    prefix = "//" if rest.startswith("//") else ""
    body = rest[len(prefix):]
    if "@" in body:
        userinfo, host = body.rsplit("@", 1)
        user, colon, _ = userinfo.partition(":")
        # Only "user:password@" after "//" is unambiguous; anything else may be (part of) a password.
        plain = prefix and not set("@/") & set(user)
        shown = (f"{user}:***" if colon else user) if plain else "***"
        return f"{scheme}:{prefix}{shown}@{host}{query}"
    if not prefix:  # "postgresql:secret": no host to keep
        return f"{scheme}:***{query}" if body else f"{scheme}:{query}"
    authority, slash, path = body.partition("/")
    if not _HOSTPORT.fullmatch(authority):  # "user:secret/db": a port that is no number
        authority = "***"
    return f"{scheme}://{authority}{slash}{path}{query}"


def _redact_query(query: str) -> str:
    parts = re.split(r"([&;])", query)
    for i, part in enumerate(parts):
        name, eq, value = part.partition("=")
        if eq and (_SECRET_NAME.search(unquote_plus(name)) or re.search(r"pass\w*\s*=", unquote_plus(value), re.I)):
            parts[i] = f"{name}=***"
    return "".join(parts)


def password(url: str) -> str | None:
    """The password of a well-formed ``scheme://user:password@host`` URL, percent-decoded; else None."""
    m = _SCHEME.fullmatch(url)
    if not m or not m.group(2).startswith("//"):
        return None
    body = m.group(2)[2:].partition("?")[0]
    if body.count("@") != 1:
        return None
    user, colon, secret = body.split("@")[0].partition(":")
    return unquote_plus(secret) if colon and secret else None


def check(url: str, mode: str) -> str:
    """`url` if it can work for `mode` (see the module docstring); a one-line error naming the problem otherwise."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if not url.strip():
        raise ScaleSearchError(f"--storage is empty: {EXPECTED}")
    m = _SCHEME.fullmatch(url)
    if not m or len(m.group(1)) == 1:  # "C:/x" is a Windows path, not a URL
        raise ScaleSearchError(f"storage {redact(url)!r} is not a URL: {EXPECTED}")
    scheme, rest = m.group(1).lower(), m.group(2)
    if scheme == "journal":
        _check_journal(Path(rest).expanduser() if rest else None, mode, url)
    elif scheme.startswith("sqlite"):
        _check_sqlite(rest, mode, url)
    else:
        _check_server(scheme, rest, url)
    return url


def _check_server(scheme: str, rest: str, url: str) -> None:
    shown = redact(url)
    if not rest.startswith("//"):
        raise ScaleSearchError(f"storage {shown}: the // after '{scheme}:' is missing; expected "
                               f"{scheme}://USER:PASSWORD@HOST/DB")
    body = rest[2:].partition("?")[0]
    if body.count("@") > 1:
        raise ScaleSearchError(f"storage {shown}: more than one '@'; write an '@' in a user or password as %40")
    userinfo, _, hostpath = body.rpartition("@")
    if "/" in userinfo:
        raise ScaleSearchError(f"storage {shown}: a '/' before the '@'; write a '/' in a user or password as %2F")
    if not _HOSTPORT.fullmatch(hostpath.partition("/")[0]):
        raise ScaleSearchError(f"storage {shown}: the host must be HOST or HOST:PORT with a numeric port")


def _check_sqlite(rest: str, mode: str, url: str) -> None:
    if rest in ("", "//", "///:memory:"):
        if mode != "create":
            raise ScaleSearchError(f"storage {redact(url)}: an in-memory database holds no study; give sqlite:///PATH")
        return
    if not rest.startswith("///"):
        raise ScaleSearchError(f"storage {redact(url)}: expected sqlite:///PATH (three slashes, then the file)")
    path = Path(rest[3:].partition("?")[0])
    if not str(path):
        raise ScaleSearchError(f"storage {redact(url)}: no file after sqlite:///")
    _check_file(path, mode, url, "SQLite database")
    if path.exists() and path.stat().st_size == 0 and mode != "create":
        raise ScaleSearchError(f"storage {redact(url)}: {path} is empty, not a study database")
    if path.exists() and path.stat().st_size and _header(path) != SQLITE_HEADER:
        raise ScaleSearchError(f"storage {redact(url)}: {path} is not an SQLite database")


def _check_journal(path: Path | None, mode: str, url: str) -> None:
    if path is None:
        raise ScaleSearchError(f"storage {redact(url)}: no file after journal:; expected journal:PATH")
    _check_file(path, mode, url, "journal file")


def _check_file(path: Path, mode: str, url: str, kind: str) -> None:
    """An existing regular file readable (and writable unless `mode` is read), or a new one in a writable folder."""
    shown = redact(url)
    if path.is_dir():
        raise ScaleSearchError(f"storage {shown}: {path} is a folder, not a {kind}")
    if path.exists():
        if not path.is_file():
            raise ScaleSearchError(f"storage {shown}: {path} is not a regular file")
        need = os.R_OK | (0 if mode == "read" else os.W_OK)
        if not os.access(path, need):
            raise ScaleSearchError(f"storage {shown}: {path} is not {'readable' if mode == 'read' else 'writable'}")
        return
    if mode != "create":
        raise ScaleSearchError(f"storage {shown}: {path} does not exist")
    folder = path.parent
    if not folder.is_dir():
        raise ScaleSearchError(f"storage {shown}: folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ScaleSearchError(f"storage {shown}: folder {folder} is not writable")


def _header(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(len(SQLITE_HEADER))
    except OSError:
        return b""
