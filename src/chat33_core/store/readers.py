"""SQLite connections kept aside for the hot paths, outside SQLAlchemy's pool.

The API's hot reads (an API key, a post's accounts, a page of posts) are single
statements in autocommit mode, and its hot write (counting a request and inserting its
posts) is one short transaction. Taking a connection from SQLAlchemy's pool and handing
it back, with its reset, costs about as much as SQLite takes to run such a statement;
a list of idle connections costs a pop and an append.

The connections come from the engine's pool and are detached from it, so they are made
with the engine's settings and connect hooks but count against no pool limit. A forked
child does not touch its parent's: it keeps them unclosed (closing a parent's SQLite
connection in a child can release the child's own file locks) and makes its own.
"""

from __future__ import annotations

import os
import weakref
from typing import Any

from sqlalchemy.engine import Engine

_KEPT: weakref.WeakSet[Readers] = weakref.WeakSet()
#: connections of a parent process, never used nor closed in this one
_ORPHANS: list[Any] = []


class Readers:
    """A free list of driver connections, for one engine."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._idle: list[Any] = []
        _KEPT.add(self)

    def take(self) -> Any:
        """An idle connection, or a new one."""
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

    def _forget(self) -> None:
        _ORPHANS.extend(self._idle)
        self._idle = []


def _after_fork_in_child() -> None:
    for kept in list(_KEPT):
        kept._forget()


os.register_at_fork(after_in_child=_after_fork_in_child)


__all__ = ["Readers"]
