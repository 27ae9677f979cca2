"""Storage URLs shown without their password, and calls that wait out a lost database connection."""
from __future__ import annotations

import logging

import optuna
import pytest
import sqlalchemy

from scalesearch.search import _storage as storage
from scalesearch.errors import ScaleSearchError


@pytest.mark.parametrize("url,shown", [
    ("postgresql://search:p@dbhost/scalesearch", "postgresql://search:***@dbhost/scalesearch"),
    ("postgresql://search:s%40cret@dbhost:5433/db", "postgresql://search:***@dbhost:5433/db"),
    ("postgresql://search@dbhost/db?password=zz&sslmode=require", "postgresql://search@dbhost/db?password=***&sslmode=require"),
    ("postgresql://dbhost/db", "postgresql://dbhost/db"),
    ("sqlite:///results/x/study.db", "sqlite:///results/x/study.db"),
    ("journal:/tmp/p.log", "journal:/tmp/p.log"),
])
def test_redact_replaces_the_password_field_only(url, shown) -> None:
    assert storage.redact(url) == shown


def test_short_password_leaves_other_text_alone() -> None:
    url = "postgresql://postgres:p@127.0.0.1/postgres"
    message = "Can't load plugin: sqlalchemy.dialects:postgresqlx; password=p; see postgresql://postgres:p@127.0.0.1/postgres"
    scrubbed = storage._scrub(message, url)
    assert scrubbed == ("Can't load plugin: sqlalchemy.dialects:postgresqlx; password=***; "
                        "see postgresql://postgres:***@127.0.0.1/postgres")


def test_bad_scheme_message_is_not_mangled(capsys) -> None:
    from cli_helpers import assert_user_error, run_cli

    r = run_cli(capsys, "show", "--storage", "postgresqlx://postgres:p@127.0.0.1/db", "--study", "x")
    assert_user_error(r, "cannot open storage", "postgresqlx://postgres:***@127.0.0.1/db", "plugin")
    assert "***lugin" not in r.err and ":p@" not in r.err


def lost() -> optuna.exceptions.StorageInternalError:
    """What Optuna raises when the server went away under a query."""
    cause = sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))
    exc = optuna.exceptions.StorageInternalError("An exception is raised during the commit.")
    exc.__cause__ = cause
    return exc


class Session:
    removed = 0

    def remove(self) -> None:
        self.removed += 1


def test_retry_waits_out_a_lost_connection(monkeypatch, caplog) -> None:
    monkeypatch.setattr(storage.time, "sleep", lambda s: None)
    calls = iter([lost(), lost(), "trials"])

    def call():
        result = next(calls)
        if isinstance(result, Exception):
            raise result
        return result

    session = Session()
    with caplog.at_level(logging.WARNING, logger="scalesearch.search._storage"):
        assert storage._retry(call, "postgresql://u:***@h/db", session) == "trials"
    assert session.removed == 2
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == ["lost the connection to postgresql://u:***@h/db",
                                                                         "reconnected to postgresql://u:***@h/db after 0 s"]


def test_retry_gives_up_in_one_line(monkeypatch) -> None:
    clock = iter(range(0, 10_000, 7))  # every look at the clock: 7 s later
    monkeypatch.setattr(storage.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(storage.time, "sleep", lambda s: None)
    monkeypatch.setattr(storage, "RETRY_S", 30.0)

    def call():
        raise lost()

    with pytest.raises(ScaleSearchError, match=r"lost the connection to the storage postgresql://u:\*\*\*@h/db for 30 s "
                                               r"\(SCALESEARCH_DB_RETRY_S\): server closed the connection"):
        storage._retry(call, "postgresql://u:***@h/db", Session())


def test_refused_queries_are_not_retried() -> None:
    def call():
        exc = optuna.exceptions.StorageInternalError("bad value")
        exc.__cause__ = sqlalchemy.exc.DataError("INSERT", {}, Exception("value too long"))
        raise exc

    with pytest.raises(optuna.exceptions.StorageInternalError):
        storage._retry(call, "postgresql://h/db", Session())
