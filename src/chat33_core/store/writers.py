"""Turns for SQLite's one writer: threads and processes queue instead of polling.

SQLite lets one connection write at a time; the others wait in its busy handler, which
sleeps in growing steps (1, 2, 5, 10 ... up to 100 ms) and retries, so under load a
writer often sleeps long after the lock came free, and later arrivals overtake it.
:class:`WriteTurns` makes writers of one database wait their turn on locks that wake
them at once: a re-entrant mutex for the threads of a process, then an exclusive
``flock`` on a file next to the database (``<database>-writers``) for the processes on
the machine. Without ``fcntl`` (Windows) or a database file (``:memory:``), the mutex
alone. SQLite's own locking still decides; this only orders the waiting.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

_TURNS: dict[str, WriteTurns] = {}
_TURNS_LOCK = threading.Lock()


class WriteTurns:
    """The write turns of one SQLite database file, in this process."""

    def __init__(self, database: str | None) -> None:
        self.mutex = threading.RLock()
        self.path: str | None = None
        if database and database != ":memory:" and not database.startswith("file:") and fcntl:
            self.path = database + "-writers"
        self._fd = -1
        self._pid = -1
        self._depth = 0

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Hold the turn (nested turns of a thread are free)."""
        with self.mutex:
            if self._depth == 0 and self.path is not None:
                fcntl.flock(self._file(), fcntl.LOCK_EX)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self.path is not None:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _file(self) -> int:
        # opened per process: a descriptor inherited through fork shares its flock with
        # the parent, so it would not exclude the parent's writers
        if self._pid != os.getpid():
            assert self.path is not None
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            self._pid = os.getpid()
        return self._fd


def _after_fork_in_child() -> None:
    # a turn held by another thread of the parent is not this process's: start afresh
    for turns in _TURNS.values():
        turns.mutex = threading.RLock()
        turns._depth = 0
        if turns._fd >= 0:
            os.close(turns._fd)
        turns._fd = turns._pid = -1


os.register_at_fork(after_in_child=_after_fork_in_child)


def write_turns(database: str | None) -> WriteTurns:
    """The process's :class:`WriteTurns` for ``database`` (a file path), shared by every
    Store on that file."""
    key = os.path.abspath(database) if database and database != ":memory:" else ""
    with _TURNS_LOCK:
        turns = _TURNS.get(key)
        if turns is None:
            turns = _TURNS[key] = WriteTurns(database)
        return turns


__all__ = ["WriteTurns", "write_turns"]
