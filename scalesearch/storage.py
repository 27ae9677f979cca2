"""Where studies live: Optuna storages with heartbeats, and URLs safe to print.

* ``sqlite:///results/<study>/study.db`` (default): one machine, a few workers.
* ``journal:PATH``: Optuna's journal file; one machine, many workers, no server.
* ``postgresql://user:pass@host/db``: many machines; needs ``pip install 'scalesearch[postgres]'``.

RDB storages send a heartbeat every :data:`HEARTBEAT_S` seconds from each
running trial; a trial silent for :data:`GRACE_S` is failed and re-queued once
per retry (up to :data:`MAX_RETRY`), linked to the original by Optuna's
``failed_trial`` / ``retry_history`` system attributes.
"""
from __future__ import annotations

import os
import random
import time
import warnings
from importlib.util import find_spec

import optuna
import sqlalchemy
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

from .errors import ScaleSearchError

HEARTBEAT_S = int(os.environ.get("SCALESEARCH_HEARTBEAT_S", "10"))
GRACE_S = int(os.environ.get("SCALESEARCH_GRACE_S", "60"))
MAX_RETRY = 3


def redact(url: str) -> str:
    """The URL with any password replaced by ***."""
    if "://" not in url:
        return url
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not an SQLAlchemy URL: hide everything between '://' and '@'
        scheme, _, rest = url.partition("://")
        return f"{scheme}://***@{rest.split('@', 1)[1]}" if "@" in rest else url


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """An Optuna storage for `url`; unreachable or misconfigured storage is a one-line error."""
    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        return JournalStorage(JournalFileBackend(url[len("journal:"):]))
    if "://" not in url:
        raise ScaleSearchError(f"storage {url!r} is not a URL: expected sqlite:///PATH, postgresql://USER@HOST/DB or journal:PATH")
    sqlite = url.startswith("sqlite")
    # sqlite3 then leaves BEGIN to us (see _serialize_sqlite); a server that does not answer fails in 10 s.
    connect_args = {"timeout": 60, "isolation_level": None} if sqlite else {"connect_timeout": 10}
    kwargs = {"connect_args": connect_args} | ({} if sqlite else {"pool_pre_ping": True})
    try:
        storage = _rdb_storage(_with_driver(url), kwargs)
    except ImportError as exc:
        missing = getattr(exc.__cause__, "name", None) or exc.name or "driver"
        hint = "; for PostgreSQL run pip install 'scalesearch[postgres]'" if url.startswith("postgres") else ""
        raise ScaleSearchError(f"storage {redact(url)}: missing driver ({missing}){hint}") from None
    except Exception as exc:  # SQLAlchemy/driver errors: say what failed without the password
        detail = " ".join(str(getattr(exc, "orig", None) or exc).split())
        if url in detail:
            detail = detail.replace(url, redact(url))
        raise ScaleSearchError(f"cannot open storage {redact(url)}: {_scrub(detail, url)[:300]}") from None
    if sqlite:
        _serialize_sqlite(storage)
    return storage


def _rdb_storage(url: str, engine_kwargs: dict) -> RDBStorage:
    """Optuna's RDB storage with heartbeats; a dead worker's trial is queued again (up to MAX_RETRY times).

    Processes that start together on a fresh database race to create Optuna's tables;
    the losers get "already exists" or a duplicate key and try again, finding the tables made.
    """
    for attempt in range(3):
        try:
            with warnings.catch_warnings():
                # Heartbeats and the retry callback are "experimental" in Optuna since 2.8; they are the
                # documented way to re-run a dead worker's trial, so users need not see the warnings.
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RDBStorage(url, engine_kwargs=engine_kwargs, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
                                  heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY))
        except sqlalchemy.exc.DBAPIError as exc:
            if attempt == 2 or not any(m in str(exc.orig) for m in ("already exists", "duplicate key", "UNIQUE constraint")):
                raise
            time.sleep(0.5 + random.random())


def _with_driver(url: str) -> str:
    """SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3; the [postgres] extra installs psycopg2."""
    scheme, _, rest = url.partition("://")
    if scheme == "postgresql" and not find_spec("psycopg") and find_spec("psycopg2"):
        return f"postgresql+psycopg2://{rest}"
    return url


def _serialize_sqlite(storage: RDBStorage) -> None:
    """Make each SQLite transaction take the write lock when it begins.

    Python's sqlite3 does not BEGIN before a SELECT, so two workers can both read a
    trial as WAITING and both start it: Optuna's pop (read the state, then set it to
    RUNNING) is only atomic under ``BEGIN IMMEDIATE``. The lock is held for a few
    milliseconds per transaction; the 60 s busy timeout absorbs a few workers' waits.
    """
    sqlalchemy.event.listen(storage.engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))


def _scrub(text: str, url: str) -> str:
    """Remove the password of `url` from a driver's message, wherever it appears."""
    try:
        from sqlalchemy.engine import make_url

        password = make_url(url).password
    except Exception:
        password = None
    return text.replace(password, "***") if password else text
