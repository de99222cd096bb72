"""SQLite connections kept aside for the per-request reads.

The API's hot reads (an API key, a post's accounts, a page of posts) are single
statements in autocommit mode. Taking a connection from SQLAlchemy's pool and handing it
back, with its reset, costs about as much as SQLite takes to run such a statement; a list
of idle connections costs a pop and an append.
"""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy.engine import Engine


class Readers:
    """A free list of driver connections for single-statement reads on SQLite.

    The connections come from the engine's pool and are detached from it, so they are
    made with the engine's settings and connect hooks but count against no pool limit;
    the list holds at most as many as ever read at once. :meth:`close` closes the idle
    ones. A forked child does not use its parent's: it starts an empty list.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._idle: list[Any] = []
        self._pid = os.getpid()

    def take(self) -> Any:
        """An idle connection, or a new one."""
        if self._pid != os.getpid():
            self._idle, self._pid = [], os.getpid()
        try:
            return self._idle.pop()  # atomic: no lock needed between threads
        except IndexError:
            fairy = self._engine.raw_connection()
            conn = fairy.driver_connection
            fairy.detach()
            return conn

    def give(self, conn: Any) -> None:
        """Hand back a connection taken from :meth:`take`, with no statement open."""
        self._idle.append(conn)

    def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def __len__(self) -> int:
        return len(self._idle)


__all__ = ["Readers"]
