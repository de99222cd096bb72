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

from chat33_core.store import _sql
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
    the statement would run. Yields a counter object with ``fired``."""
    postgres = env.store.is_postgres
    killer = psycopg.connect(plain_url(env), autocommit=True) if postgres else None
    lock = threading.Lock()

    class Fired:
        left = times
        fired = 0

    state = Fired()

    run = _sql._cursor_run

    def fault_first(conn: Any, sql: str, args: Any) -> Any:
        if match(sql) and when():
            with lock:
                fire = state.left > 0
                if fire:
                    state.left -= 1
                    state.fired += 1
            if fire and killer is not None:
                driver = (conn.connection.driver_connection
                          if isinstance(conn, sa.engine.Connection) else conn)
                # waits (up to 5 s) until the backend is gone
                killer.execute("SELECT pg_terminate_backend(%s, 5000)",
                               (driver.info.backend_pid,))
            elif fire:
                raise sqlite3.OperationalError("disk I/O error")
        return run(conn, sql, args)

    # every statement of the store runs through this one function of its private layer
    _sql._cursor_run = fault_first
    try:
        yield state
    finally:
        _sql._cursor_run = run
        if killer is not None:
            killer.close()


def sql_in_messages(env: Env) -> list[str]:
    """Every post ``errorMessage`` and log message that quotes SQL or a driver error."""
    with env.store.read() as c:
        texts = [m for m in c.execute(sa.select(t.posts.c.error_message)).scalars() if m]
        texts += list(c.execute(sa.select(t.post_logs.c.message)).scalars())
    return [m for m in texts if any(k in m for k in SQL_MARKERS)]
