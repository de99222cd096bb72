"""Real database faults for the worker tests: statements that fail the way a terminated
PostgreSQL backend or a failing SQLite file makes them fail, and the check that no SQL
reached a post's ``errorMessage`` or its logs."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import sqlalchemy as sa

from chat33_core.store import tables as t

from .conftest import Env

#: what SQLAlchemy's and the drivers' error text carries, and chat33's own texts never
SQL_MARKERS = ("[SQL:", "[parameters:", "sqlalche.me", "UPDATE posts", "INSERT INTO",
               "SELECT ", "psycopg", "OperationalError", "Traceback")


def plain_url(env: Env) -> str:
    """The store's PostgreSQL URL as libpq takes it."""
    url = env.store.engine.url.render_as_string(hide_password=False)
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@contextmanager
def failing(env: Env, match: Callable[[str], bool], *, times: int = 1,
            when: Callable[[], bool] = lambda: True) -> Iterator[Any]:
    """Make the next ``times`` statements of the store for which ``match(sql)`` and
    ``when()`` hold fail for real: on PostgreSQL the statement's backend is terminated
    just before the statement is sent (the driver then raises what it raises for a
    terminated backend); on SQLite the driver's own ``OperationalError`` is raised where
    the statement would run (SQLAlchemy wraps it as it wraps any driver error). Yields
    a counter object with ``fired``."""
    engine = env.store.engine
    postgres = env.store.is_postgres
    killer = psycopg.connect(plain_url(env), autocommit=True) if postgres else None
    lock = threading.Lock()

    class Fired:
        left = times
        fired = 0

    state = Fired()

    def before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
               executemany: bool) -> None:
        if not match(statement) or not when():
            return
        with lock:
            if state.left <= 0:
                return
            state.left -= 1
            state.fired += 1
            if killer is not None:
                pid = conn.connection.driver_connection.info.backend_pid
                # waits (up to 5 s) until the backend is gone
                killer.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
                return
        raise sqlite3.OperationalError("disk I/O error")

    sa.event.listen(engine, "before_cursor_execute", before)
    try:
        yield state
    finally:
        sa.event.remove(engine, "before_cursor_execute", before)
        if killer is not None:
            killer.close()


def sql_in_messages(env: Env) -> list[str]:
    """Every post ``errorMessage`` and log message that quotes SQL or a driver error."""
    with env.store.read() as c:
        texts = [m for m in c.execute(sa.select(t.posts.c.error_message)).scalars() if m]
        texts += list(c.execute(sa.select(t.post_logs.c.message)).scalars())
    return [m for m in texts if any(k in m for k in SQL_MARKERS)]
