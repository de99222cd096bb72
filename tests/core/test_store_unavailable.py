"""The store turns "the database cannot be used right now" into StoreUnavailable, whose
text holds no SQL; other database errors stay what they are."""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import attrs
import psycopg
import pytest
import sqlalchemy as sa

from chat33_core.errors import Conflict, StoreUnavailable, TransientError
from chat33_core.models import Organization
from chat33_core.store import Store
from chat33_core.store import tables as t
from chat33_core.store.unavailable import behind, safe_text


def test_an_unreachable_sqlite_file_is_store_unavailable(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'missing' / 'dir' / 'x.db'}")
    try:
        with pytest.raises(StoreUnavailable) as caught:
            store.ping()
        with pytest.raises(StoreUnavailable), store.read() as c:
            c.execute(sa.text("SELECT 1"))
    finally:
        store.dispose()
    assert caught.value.message == StoreUnavailable.MESSAGE
    assert "unable to open database file" in caught.value.reason
    # the driver's error is kept for the logs (SQLite's readiness runs on the driver)
    assert isinstance(caught.value.__cause__, sa.exc.OperationalError | sqlite3.OperationalError)


@pytest.fixture
def pg_store(pg_session_schema: str) -> Iterator[Store]:
    store = Store(pg_session_schema)
    yield store
    store.dispose()


@pytest.mark.postgres
def test_a_terminated_backend_is_store_unavailable_without_sql(pg_store: Store) -> None:
    store = pg_store
    org = store.add_org(Organization.new(f"Acme {secrets.token_hex(4)}"))
    with store.read() as c:  # a pooled connection, then its backend killed
        pid = c.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
    url = store.engine.url.render_as_string(hide_password=False).replace("+psycopg", "")
    with psycopg.connect(url, autocommit=True) as killer:
        killer.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
    with pytest.raises(StoreUnavailable) as caught, store.read() as c:
        c.execute(sa.select(t.organizations.c.id).where(t.organizations.c.id == org.id)).all()
    text = f"{caught.value.message} {caught.value.reason} {caught.value}"
    assert "SELECT" not in text and org.id not in text  # no statement, no parameter
    assert "terminat" in caught.value.reason
    assert caught.value.http_status == 503 and caught.value.code == "SERVICE_UNAVAILABLE"
    # the pool replaced the dead connection: the next transaction works
    assert store.get_org(org.id).id == org.id


def test_an_integrity_error_is_a_conflict_not_store_unavailable(store: Store) -> None:
    org = store.add_org(Organization.new("Acme"))
    with pytest.raises(Conflict) as caught:
        store.add_org(attrs.evolve(org, name="again"))
    assert caught.value.message == (
        "organizations (id): a row with the same value already exists")


def test_safe_text_names_database_errors_and_never_quotes_them() -> None:
    sql_error = sa.exc.OperationalError("UPDATE posts SET x=%(x)s", {"x": "secret"},
                                        Exception("server closed the connection"))
    assert safe_text(sql_error) == StoreUnavailable.MESSAGE
    integrity = sa.exc.IntegrityError("INSERT INTO posts VALUES (%(x)s)", {"x": "secret"},
                                      Exception("duplicate key"))
    assert safe_text(integrity) == "a database error (IntegrityError)"
    assert safe_text(ValueError("bad value")) == "ValueError: bad value"
    # a plugin that wraps a failed checkpoint save in an error of its own
    try:
        try:
            raise StoreUnavailable(reason="x")
        except StoreUnavailable as exc:
            raise TransientError("could not save: UPDATE checkpoints ...") from exc
    except TransientError as wrapped:
        assert behind(wrapped) is not None
        assert safe_text(wrapped) == StoreUnavailable.MESSAGE
    assert behind(TransientError("the platform said no")) is None


def test_a_plugin_rule_failing_on_a_database_error_does_not_quote_it() -> None:
    from chat33_core.errors import PluginError
    from chat33_core.validation import _call_plugin

    def rules() -> list[object]:
        raise sa.exc.ProgrammingError("SELECT secret FROM t WHERE k = %(k)s", {"k": "tok"},
                                      Exception("relation t does not exist"))

    with pytest.raises(PluginError) as caught:
        _call_plugin("echo", "rules", rules)
    assert caught.value.message == ("the echo plugin's rules failed: a database error "
                                    "(ProgrammingError)")
