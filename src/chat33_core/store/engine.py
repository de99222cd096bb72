"""The engine chat33 runs on: SQLite in WAL mode, or PostgreSQL through psycopg 3."""

from __future__ import annotations

import json
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

#: a pooled PostgreSQL connection idle this long is checked before it is used again
PING_IDLE_S = 10.0
#: SQLite: the WAL is checkpointed after this many write transactions of a process...
CHECKPOINT_EVERY = 100
#: ...and, should that fall behind, by the committing writer at this many pages
WAL_BACKSTOP_PAGES = 10_000
#: SQLite: how long a statement waits for a lock another connection holds
BUSY_TIMEOUT_S = 30.0
#: ...and how long the readiness check and the bookkeeping writes of reads wait: a
#: locked database must not hold them for the 30 s a real write may wait
QUICK_TIMEOUT_S = 1.0


def make_engine(url: str, *, ping_idle_s: float = PING_IDLE_S, **kw: Any) -> Engine:
    """An engine configured for chat33: SQLite in WAL mode with foreign keys and a busy
    timeout; PostgreSQL through psycopg 3 (``postgresql+psycopg://``), whose pooled
    connections are pinged before use when they sat idle ``ping_idle_s`` or longer."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        kw.setdefault("json_serializer", _json_text)
        engine = sa.create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S,
                                                     "check_same_thread": False}, **kw)

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _: Any) -> None:
            # Python's sqlite3 starts transactions lazily; take control so BEGIN IMMEDIATE works
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            cur.execute("PRAGMA synchronous=NORMAL")
            # checkpoints run outside the write turns (Store.begin); this is a backstop
            cur.execute(f"PRAGMA wal_autocheckpoint={WAL_BACKSTOP_PAGES}")
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            # a write lock up front: no deadlocks between readers upgrading to writers
            readonly = conn.get_execution_options().get("chat33_readonly", False)
            # on the DBAPI connection: a statement through SQLAlchemy costs several times
            # what SQLite takes to begin
            conn.connection.driver_connection.execute(  # type: ignore[union-attr]
                "BEGIN" if readonly else "BEGIN IMMEDIATE")

        return engine
    engine = sa.create_engine(url, **kw)
    _ping_when_idle(engine, ping_idle_s)
    return engine


def _json_text(value: Any) -> str:
    """SQLite's JSON columns: :func:`json.dumps`, with the empty list and object (most
    posts' media and settings) written without it."""
    if value == [] and type(value) is list:
        return "[]"
    if value == {} and type(value) is dict:
        return "{}"
    return json.dumps(value)


def _ping_when_idle(engine: Engine, idle_s: float) -> None:
    """Check a pooled connection before use only when it sat idle ``idle_s`` or longer
    (a server restart, an idle timeout or a network drop happens to idle connections): a
    dead one is replaced before anyone uses it. SQLAlchemy's ``pool_pre_ping`` does it on
    every checkout, a round trip per transaction (a third of a busy API's requests' time
    on loopback); a connection handed back moments ago needs none."""

    @sa.event.listens_for(engine, "checkin")
    def _checkin(dbapi_conn: Any, record: Any) -> None:
        record.info["chat33_idle_since"] = time.monotonic()

    @sa.event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn: Any, record: Any, proxy: Any) -> None:
        since = record.info.get("chat33_idle_since")
        if since is None or time.monotonic() - since < idle_s:
            return  # just made, or just used
        try:
            cursor = dbapi_conn.cursor()
            try:
                cursor.execute("SELECT 1")
            finally:
                cursor.close()
            dbapi_conn.rollback()  # the ping's implicit transaction
        except Exception as exc:
            # the pool drops this connection and checks out another (a fresh one)
            raise sa.exc.DisconnectionError(f"a pooled connection is gone: {exc}") from exc
