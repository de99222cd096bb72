"""The ``oauth_connections`` table on SQLite and PostgreSQL: its migration both ways, and
a ``state`` that can be claimed once only, even by racing callbacks."""

from __future__ import annotations

import threading
from datetime import timedelta

import sqlalchemy as sa

from chat33_core.models import Connection, Organization, new_id, utcnow
from chat33_core.store import Store

from .test_store import _alembic


def test_the_migration_goes_both_ways(empty_db_url: str) -> None:
    fresh = Store(empty_db_url)
    try:
        fresh.migrate()
        assert "oauth_connections" in sa.inspect(fresh.engine).get_table_names()
        _alembic(fresh, "downgrade", "0004_webhook_secret_rotation")
        assert "oauth_connections" not in sa.inspect(fresh.engine).get_table_names()
        _alembic(fresh, "upgrade", "head")
        assert "oauth_connections" in sa.inspect(fresh.engine).get_table_names()
    finally:
        fresh.dispose()


def test_a_state_is_claimed_once_by_racing_callbacks(store: Store) -> None:
    org = store.add_org(Organization.new("Acme"))
    connections = store
    connection = connections.add_connection(Connection(
        id=new_id("conn"), org_id=org.id, platform="x", status="pending",
        expires_at=utcnow() + timedelta(minutes=10)), state_hash="a" * 64,
        verifier_enc="enc", session_binding=None)
    found = connections.connection_by_state("a" * 64)
    assert found is not None and found[0].id == connection.id
    assert found[1] == {"verifier_enc": "enc", "session_binding": None}
    assert connections.connection_by_state("b" * 64) is None
    wins: list[bool] = []
    start = threading.Barrier(4)

    def claim() -> None:
        start.wait()
        wins.append(connections.claim_connection(connection.id, utcnow()))

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(wins) == [False, False, False, True]
