"""Where studies live: Optuna storages with heartbeats, and URLs safe to print.

* ``sqlite:///results/<study>/study.db`` (default): one machine, a few workers.
* ``journal:PATH``: Optuna's journal file; one machine, many workers, no server.
* ``postgresql://user:pass@host/db``: many machines; needs ``pip install 'scalesearch[postgres]'``.

RDB storages send a heartbeat every :data:`HEARTBEAT_S` seconds from each
running trial; a trial silent for :data:`GRACE_S` is failed and re-queued once
per retry (up to :data:`MAX_RETRY`), linked to the original by Optuna's
``failed_trial`` / ``retry_history`` system attributes.

A database server that goes away for a while (a restart, a failover) is waited
for: every storage call on a server storage is retried with backoff for up to
:data:`RETRY_S` seconds (``SCALESEARCH_DB_RETRY_S``), so workers, the `run
--workers` supervisor and heartbeats carry on through it; after that the call
fails with one line. Only lost connections are retried, never a refused query.
"""
from __future__ import annotations

import functools
import logging
import os
import random
import re
import threading
import time
import warnings
from importlib.util import find_spec
from urllib.parse import quote

import optuna
import sqlalchemy
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

from ..errors import ScaleSearchError
from ._urls import check, password, redact

ENV = "SCALESEARCH_STORAGE"  # every command's --storage default: keeps a password out of `ps`
HEARTBEAT_S = int(os.environ.get("SCALESEARCH_HEARTBEAT_S", "10"))
GRACE_S = int(os.environ.get("SCALESEARCH_GRACE_S", "60"))
MAX_RETRY = 3
RETRY_S = float(os.environ.get("SCALESEARCH_DB_RETRY_S", "120"))
log = logging.getLogger(__name__)


def open_storage(url: str, mode: str = "create") -> optuna.storages.BaseStorage:
    """An Optuna storage for `url`, checked first (:func:`scalesearch.search.check`); failures are one line.

    `mode` ``read`` opens a file storage read-only: it creates, grows and queues nothing.
    """
    check(url, mode)
    if url.startswith("journal:"):
        return _journal(url, mode)
    sqlite = url.startswith("sqlite")
    # sqlite3 then leaves BEGIN to us (see _serialize_sqlite); a server that does not answer fails in 10 s.
    connect_args = {"timeout": 60, "isolation_level": None} if sqlite else {"connect_timeout": 10}
    kwargs = {"connect_args": connect_args} | ({} if sqlite else {"pool_pre_ping": True})
    if mode == "read" and sqlite:  # a read creates nothing: no file, no tables, no version row
        kwargs = {"creator": _read_only_sqlite(url)}
    elif mode == "read" and url.startswith("postgres"):
        connect_args["options"] = "-c default_transaction_read_only=on"
    try:
        storage = _rdb_storage(_with_driver(url), kwargs, read_only=mode == "read")
    except ImportError as exc:
        missing = getattr(exc.__cause__, "name", None) or exc.name or "driver"
        hint = "; for PostgreSQL run pip install 'scalesearch[postgres]'" if url.startswith("postgres") else ""
        raise ScaleSearchError(f"storage {redact(url)}: missing driver ({missing}){hint}") from None
    except Exception as exc:  # SQLAlchemy/driver errors: say what failed without the password
        if isinstance(exc, optuna.exceptions.StorageInternalError) and exc.__cause__:  # Optuna < 5 wraps them
            exc = exc.__cause__
        detail = " ".join(str(getattr(exc, "orig", None) or exc).split())
        if mode == "read" and any(m in detail for m in ("readonly database", "read-only transaction")):
            detail = "it holds no Optuna study (reading would have to create its tables)"
        raise ScaleSearchError(f"cannot open storage {redact(url)}: {_scrub(detail, url)[:300]}") from None
    if sqlite and mode != "read":
        _serialize_sqlite(storage)
    elif not sqlite:
        storage.shown = redact(url)  # as the user wrote it, without the driver name added
    return storage


def has_heartbeats(url: str) -> bool:
    """Whether the storage :func:`open_storage` opens for `url` sends heartbeats: every RDB one does, a journal none."""
    return not url.startswith("journal:")


def _journal(url: str, mode: str) -> optuna.storages.BaseStorage:
    """A journal file storage; a file that is not an Optuna journal (garbage, truncated) is one line."""
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    path = url[len("journal:"):]
    try:
        storage = JournalStorage(JournalFileBackend(path))
        # Private, kept: no public call tells a file that replayed no log line (not a journal) from an empty one.
        if storage._replay_result.log_number_read == 0 and os.path.getsize(path) > 0:  # bytes, but no log line
            raise ValueError("no log line")
        return storage
    except (ValueError, KeyError, TypeError, AttributeError, IndexError):  # UnicodeDecodeError is a ValueError
        raise ScaleSearchError(f"storage {redact(url)}: not an Optuna journal file (a line is not a journal entry)") from None
    except OSError as exc:
        raise ScaleSearchError(f"storage {redact(url)}: {exc.strerror or exc}") from None


def _read_only_sqlite(url: str):
    """A connection factory opening the database file read-only: a read never creates or grows it."""
    import sqlite3
    from urllib.parse import quote

    path = url.split(":///", 1)[1].partition("?")[0]
    return lambda: sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True, timeout=60, check_same_thread=False)


def _rdb_storage(url: str, engine_kwargs: dict, read_only: bool = False) -> RDBStorage:
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
                cls = RDBStorage if url.startswith("sqlite") else ResilientStorage
                return cls(url, engine_kwargs=engine_kwargs, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
                           heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY),
                           skip_table_creation=read_only)
        except sqlalchemy.exc.DBAPIError as exc:
            if attempt == 2 or not any(m in str(exc.orig) for m in ("already exists", "duplicate key", "UNIQUE constraint")):
                raise
            time.sleep(0.5 + random.random())


class ResilientStorage(RDBStorage):
    """An RDB storage whose calls wait for a lost database server (see the module docstring).

    Every method that talks to the database is wrapped (below the class); a call
    made inside another wrapped call leaves the retrying to the outer one, so one
    operation is retried as a whole and waits at most RETRY_S. Heartbeats never
    raise: a missed beat is a warning, the next one tries again.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        _quiet_fallback()

    def record_heartbeat(self, trial_id: int) -> None:
        try:
            _retrying(RDBStorage.record_heartbeat)(self, trial_id)
        except ScaleSearchError as exc:  # in Optuna's heartbeat thread: a traceback there helps no one
            log.warning("heartbeat of trial %d missed: %s", trial_id, exc)


_local = threading.local()  # per thread: already inside a retried call?


def _retrying(method):
    @functools.wraps(method)
    def call(self: RDBStorage, *args, **kwargs):
        if getattr(_local, "busy", False):
            return method(self, *args, **kwargs)
        _local.busy = True
        try:
            shown = getattr(self, "shown", None) or redact(self.url)
            return _retry(lambda: method(self, *args, **kwargs), shown, self.scoped_session)
        finally:
            _local.busy = False
    return call


def _retry(call, where: str, session):
    """`call()`, again after 0.5, 1, 2, 4, 8, 8 … s while the connection is lost, for up to RETRY_S."""
    deadline, delay, lost_since = time.monotonic() + RETRY_S, 0.5, None
    while True:
        try:
            result = call()
        except (optuna.exceptions.StorageInternalError, sqlalchemy.exc.SQLAlchemyError) as exc:
            cause = exc.__cause__ if isinstance(exc, optuna.exceptions.StorageInternalError) else exc
            if not connection_lost(cause):
                raise
            session.remove()  # the thread's session may hold the broken transaction: start afresh
            detail = " ".join(str(getattr(cause, "orig", None) or cause).split())[:200]
            if lost_since is None:
                lost_since = time.monotonic()
                log.warning("lost the connection to %s (%s); retrying for up to %g s", where, detail, RETRY_S)
            if time.monotonic() + delay > deadline:
                raise ScaleSearchError(f"lost the connection to the storage {where} for {RETRY_S:g} s "
                                       f"(SCALESEARCH_DB_RETRY_S): {detail}") from None
            time.sleep(delay)
            delay = min(2 * delay, 8.0)
            continue
        if lost_since is not None:
            log.warning("reconnected to %s after %.0f s", where, time.monotonic() - lost_since)
        return result


def connection_lost(exc: BaseException | None) -> bool:
    """A dropped or refused connection (server restarting, network gone), not a refused query."""
    # PendingRollbackError: a query on the session after the connection broke (Optuna's fallback query does that).
    return (isinstance(exc, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError,
                             sqlalchemy.exc.PendingRollbackError))
            or bool(getattr(exc, "connection_invalidated", False)))


_LOST = ("server closed the connection", "terminating connection", "connection to server", "could not connect",
         "Connection refused", "the database system is")


def _quiet_fallback() -> None:
    """Drop Optuna's warning that a trials query failed and it falls back to a slower one, when the cause is a
    lost connection: it prints the whole SQL (hundreds of lines), and the retry here covers the loss."""
    logger = logging.getLogger("optuna.storages._rdb.storage")  # the logger's name, the only handle on its warnings
    if not any(getattr(f, "scalesearch", False) for f in logger.filters):
        def keep(record: logging.LogRecord) -> bool:
            text = record.getMessage()
            return "slower alternative" not in text or not any(m in text for m in _LOST)

        keep.scalesearch = True  # type: ignore[attr-defined]
        logger.addFilter(keep)


# Public calls and the private ones Optuna's cache calls directly on its backend.
for _name in ("create_new_study", "delete_study", "set_study_user_attr", "set_study_system_attr",
              "get_study_id_from_name", "get_study_name_from_id", "get_study_directions", "get_study_user_attrs",
              "get_study_system_attrs", "get_all_studies", "create_new_trial", "_create_new_trial", "set_trial_param",
              "_set_trial_param", "get_trial_param", "set_trial_state_values", "set_trial_intermediate_value",
              "set_trial_user_attr", "set_trial_system_attr", "get_trial_id_from_study_id_trial_number", "get_trial",
              "get_all_trials", "_get_trials", "get_best_trial", "_get_best_trial_id", "_get_stale_trial_ids"):
    if hasattr(RDBStorage, _name):
        setattr(ResilientStorage, _name, _retrying(getattr(RDBStorage, _name)))


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
    """A driver's message with the URL's secrets removed: the URL itself, ':PASSWORD@' and 'password=VALUE'.

    Only those shapes: replacing the password wherever it occurs would turn "plugin" into "***lugin"
    for the password "p", and so hint at it.
    """
    text = text.replace(url, redact(url))
    secret = password(url)
    if secret:
        for shown in {secret, quote(secret, safe="")}:
            text = text.replace(f":{shown}@", ":***@")
    return re.sub(r"(password\s*=\s*)('[^']*'|\"[^\"]*\"|[^\s&;,]+)", r"\1***", text, flags=re.IGNORECASE)
