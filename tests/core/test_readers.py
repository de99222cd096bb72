"""SQLite's per-request reads run on connections kept aside (store.readers)."""

from __future__ import annotations

import os
import sqlite3
import threading
from typing import Any

import pytest
import sqlalchemy as sa

from chat33_core.errors import StoreUnavailable
from chat33_core.models import ApiKey, Organization, User
from chat33_core.store import Store
from chat33_core.store._sql import Query as _Query
from chat33_core.store.readers import Readers

_rate_rows = _Query(sa.text("SELECT key FROM rate_limits ORDER BY key"))


def _key(store: Store) -> ApiKey:
    org = store.add_org(Organization(id="org_r", name="Readers"))
    user = store.add_user(User(id="usr_r", org_id=org.id, email="r@example.com",
                               password_hash="x"))
    return store.add_api_key(ApiKey(id="key_r", org_id=org.id, user_id=user.id, name="k",
                                    key_prefix="c33_abc", key_hash="h" * 64,
                                    scopes=["posts:read"]))


def _readers(store: Store) -> Readers:
    assert store._readers is not None
    return store._readers


def _idle(readers: Readers) -> Any:
    """The connection the next read will use (looked at, left in the list)."""
    conn = readers.take()
    readers.give(conn)
    return conn


def test_reads_reuse_one_connection_and_see_every_commit(sqlite_store: Store) -> None:
    key = _key(sqlite_store)
    assert sqlite_store.find_api_key_by_hash(key.key_hash) == key
    readers = _readers(sqlite_store)
    first = _idle(readers)
    for _ in range(5):
        assert sqlite_store.find_api_key_by_hash(key.key_hash) == key
    assert len(readers) == 1 and readers.take() is first
    readers.give(first)
    sqlite_store.revoke_api_key(key.org_id, key.id)  # written elsewhere, seen at once
    found = sqlite_store.find_api_key_by_hash(key.key_hash)
    assert found is not None and not found.is_active


def test_many_threads_read_at_once_beyond_the_pools_size(sqlite_store: Store) -> None:
    key = _key(sqlite_store)
    n = 24  # SQLAlchemy's pool allows 5 + 10 overflow; kept readers are not counted
    start = threading.Barrier(n)
    held: list[object] = []
    found: list[bool] = []
    lock = threading.Lock()
    readers = _readers(sqlite_store)

    def read() -> None:
        conn = readers.take()  # everybody holds one at the same time
        start.wait(10)
        with lock:
            held.append(conn)
        readers.give(conn)
        ok = sqlite_store.find_api_key_by_hash(key.key_hash) == key
        with lock:
            found.append(ok)

    threads = [threading.Thread(target=read) for _ in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert found == [True] * n
    assert len({id(c) for c in held}) == n and len(readers) == n


def test_a_failed_statement_closes_its_connection(sqlite_store: Store) -> None:
    readers = _readers(sqlite_store)
    conn = _idle(readers)
    broken = _Query(sa.text("SELECT * FROM no_such_table"))
    with pytest.raises(StoreUnavailable, match="cannot be reached") as caught:
        sqlite_store._fetch(broken, {})
    assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
    assert "no_such_table" in caught.value.reason
    assert len(readers) == 0
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        conn.execute("SELECT 1")


def test_dispose_closes_the_idle_connections(sqlite_store: Store) -> None:
    key = _key(sqlite_store)
    sqlite_store.find_api_key_by_hash(key.key_hash)
    readers = _readers(sqlite_store)
    conn = _idle(readers)
    sqlite_store.dispose()
    assert len(readers) == 0
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        conn.execute("SELECT 1")
    assert sqlite_store.find_api_key_by_hash(key.key_hash) == key  # new ones after


def test_a_forked_child_reads_on_connections_of_its_own(sqlite_store: Store) -> None:
    key = _key(sqlite_store)
    sqlite_store.find_api_key_by_hash(key.key_hash)
    readers = _readers(sqlite_store)
    parents = _idle(readers)
    answer, report = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        ok = sqlite_store.find_api_key_by_hash(key.key_hash) == key
        mine = readers.take()
        os.write(report, b"1" if ok and mine is not parents else b"0")
        os._exit(0)
    assert os.read(answer, 1) == b"1", "the child used its parent's connection"
    os.waitpid(pid, 0)
    os.close(answer)
    os.close(report)
    assert readers.take() is parents  # the parent's stays the parent's


def test_postgresql_reads_use_the_pool(store: Store) -> None:
    assert (store._readers is None) == store.is_postgres


def test_writes_keep_their_connection_through_a_refusal_and_roll_it_back(
        sqlite_store: Store) -> None:
    from datetime import timedelta

    from chat33_core.errors import RateLimited

    readers = _readers(sqlite_store)
    assert sqlite_store.hit_rate_limit("k", 1, timedelta(hours=1)) == (0, 3600.0)
    kept = len(readers)
    assert kept == 1  # the write's connection went back to the list
    with pytest.raises(RateLimited):
        sqlite_store.hit_rate_limit("k", 1, timedelta(hours=1))
    assert len(readers) == kept  # refused: rolled back and kept
    conn = readers.take()
    assert conn.in_transaction is False
    readers.give(conn)
    with pytest.raises(RuntimeError, match="mid-write"), sqlite_store._begin_driver() as c:
        c.execute("INSERT INTO rate_limits (key, tat) VALUES ('other', '2026-01-01')")
        raise RuntimeError("mid-write")
    assert sqlite_store._fetch(_rate_rows, {}) == [("k",)]  # rolled back
    assert len(readers) == kept


def test_a_write_whose_commit_fails_closes_its_connection(sqlite_store: Store) -> None:
    readers = _readers(sqlite_store)
    with pytest.raises(sqlite3.IntegrityError), sqlite_store._begin_driver() as c:
        # checked at commit: a deferred foreign key that points nowhere
        c.execute("PRAGMA defer_foreign_keys=ON")
        c.execute("INSERT INTO api_keys (id, org_id, user_id, name, key_prefix, "
                  "key_hash, scopes, is_active, created_at) VALUES ('k', 'no org', "
                  "'no user', 'n', 'p', 'h', '[]', 1, '2026-01-01 00:00:00.000000')")
    assert len(readers) == 0
    assert sqlite_store._fetch(_rate_rows, {}) == []  # and the store goes on
