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

import optuna
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
    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    try:
        return RDBStorage(url, engine_kwargs=kwargs, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
                          failed_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY))
    except ImportError as exc:
        raise ScaleSearchError(f"storage {redact(url)}: missing driver ({exc.name}); for PostgreSQL run pip install 'scalesearch[postgres]'") from None
    except Exception as exc:  # SQLAlchemy/driver errors: say what failed without the password
        detail = " ".join(str(getattr(exc, "orig", None) or exc).split())
        if url in detail:
            detail = detail.replace(url, redact(url))
        raise ScaleSearchError(f"cannot open storage {redact(url)}: {_scrub(detail, url)[:300]}") from None


def _scrub(text: str, url: str) -> str:
    """Remove the password of `url` from a driver's message, wherever it appears."""
    try:
        from sqlalchemy.engine import make_url

        password = make_url(url).password
    except Exception:
        password = None
    return text.replace(password, "***") if password else text
