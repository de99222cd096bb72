"""Turns for SQLite's one writer: threads and processes queue instead of polling.

SQLite lets one connection write at a time; the others wait in its busy handler, which
sleeps in growing steps (1, 2, 5, 10 ... up to 100 ms) and retries, so under load a
writer often sleeps long after the lock came free, and later arrivals overtake it.
:class:`WriteTurns` makes writers of one database wait their turn on locks that wake
them at once: a re-entrant mutex for the threads of a process, then an exclusive
``flock`` on a file next to the database (``<database>-writers``) for the processes on
the machine. Without ``fcntl`` (Windows) or a database file (``:memory:``), the mutex
alone. SQLite's own locking still decides; this only orders the waiting.

:class:`Combiner` goes further for writes that many threads make alike (group commit):
the first waiting thread writes everybody's in one transaction.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, Protocol, TypeVar

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

_TURNS: dict[str, WriteTurns] = {}
_TURNS_LOCK = threading.Lock()
#: every WriteTurns of the process, for the at-fork hook (also those made directly)
_EVERY: weakref.WeakSet[WriteTurns] = weakref.WeakSet()


class WriteTurns:
    """The write turns of one SQLite database file, in this process."""

    def __init__(self, database: str | None) -> None:
        self.mutex = threading.RLock()
        self.path: str | None = None
        if database and database != ":memory:" and not database.startswith("file:") and fcntl:
            self.path = database + "-writers"
        self._fd = -1
        self._depth = 0
        self._writes = 0
        self._checkpointing = False
        _EVERY.add(self)

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

    def wrote(self, every: int) -> bool:
        """Count a finished write; True when the caller is to checkpoint now (every
        ``every`` writes, one thread at a time, and never inside a turn). The caller
        calls :meth:`checkpointed` when done."""
        with self.mutex:
            self._writes += 1
            if self._writes < every or self._checkpointing or self._depth:
                return False
            self._writes = 0
            self._checkpointing = True
            return True

    def checkpointed(self) -> None:
        with self.mutex:
            self._checkpointing = False

    def _file(self) -> int:
        # opened per process: a descriptor inherited through fork shares its flock with
        # the parent, so it would not exclude the parent's writers (the at-fork hook
        # forgets the parent's; no getpid call, a system call, on every turn)
        if self._fd < 0:
            assert self.path is not None
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        return self._fd


def _after_fork_in_child() -> None:
    # a turn held by another thread of the parent is not this process's: start afresh
    for turns in list(_EVERY):
        turns.mutex = threading.RLock()
        turns._depth = 0
        if turns._fd >= 0:
            os.close(turns._fd)
        turns._fd = -1


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


class Outcome(Protocol):
    """An item handed to a :class:`Combiner`: its writer sets ``result`` or ``error``;
    the combiner sets ``detached`` when the item's thread did not wait for it."""

    result: Any
    error: BaseException | None
    detached: bool


T = TypeVar("T", bound=Outcome)
R = TypeVar("R")


class Combiner(Generic[T, R]):
    """Group commit for the threads of a process.

    ``submit`` hands an item over. The first thread to find nobody writing leads: it
    takes every item pending, writes them with ``write`` (one transaction; it sets each
    item's ``result`` or ``error``), wakes their threads, and goes on while items keep
    coming in; then it steps down. A thread that waits gets its own item's outcome; one
    that does not wait (``wait=False``) returns at once when somebody is writing, and
    ``write`` sees its item marked ``detached`` (its errors are nobody's to raise)."""

    def __init__(self, write: Callable[[list[T]], None]) -> None:
        self._write = write
        self._cond = threading.Condition()
        self._pending: list[T] = []
        self._done: set[int] = set()
        self._leading = False

    def submit(self, item: T, *, wait: bool = True) -> R | None:
        with self._cond:
            self._pending.append(item)
            while id(item) not in self._done and self._leading:
                if not wait:
                    item.detached = True
                    return None
                self._cond.wait()
            lead = id(item) not in self._done
            if lead:
                self._leading = True
        if lead:
            self._drain()
        with self._cond:
            self._done.discard(id(item))
        if item.error is not None:
            raise item.error
        result: R = item.result
        return result

    def _drain(self) -> None:
        while True:
            with self._cond:
                group, self._pending = self._pending, []
                if not group:
                    self._leading = False
                    self._cond.notify_all()
                    return
            try:
                self._write(group)
            finally:
                with self._cond:
                    # a detached item's thread never comes back for it
                    self._done.update(id(i) for i in group if not i.detached)
                    self._cond.notify_all()


__all__ = ["Combiner", "WriteTurns", "write_turns"]
