"""Group commit: the writes of a worker's concurrent attempts, in shared transactions.

Every attempt writes at least twice (a checkpoint before a platform call, the final
state with its logs and outbox row). Written one transaction each, the transactions'
own cost (a connection, ``BEGIN IMMEDIATE``, ``COMMIT``; a round trip each on
PostgreSQL) outweighs the statements. :class:`GroupCommit` lets the publishing threads
of one worker share them: a thread hands its :class:`Writes` over and waits until they
are durable, as with its own transaction; the first waiting thread leads and commits
everything handed over meanwhile in one transaction, with one statement per kind of
write (``executemany``).

A write that is not allowed (the post's lease is gone: :class:`~.queue.LeaseLost`)
or fails must not take the others down with it: when a shared transaction fails, it is
rolled back and each thread's writes are retried alone, so every thread gets exactly
the outcome its own transaction would have had.

A database that cannot be used right now (:class:`~chat33_core.errors.StoreUnavailable`:
a terminated connection, a restart) is not a verdict on anybody's writes: the same
transaction is tried again after a growing pause, for up to ``retry_s``. Meanwhile the
posts stay leased, and :meth:`GroupCommit.unwritten` names them so that the worker's
heartbeat keeps their leases, also for writes whose thread has moved on. Every write is
fenced by the lease, so trying again after a commit whose answer was lost does no harm:
a final state that did land makes the retry find the post no longer leased, and write
nothing.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

import attrs

from .. import webhooks
from ..errors import StoreUnavailable
from ..models import LogEvent, Post, utcnow
from ..store import Store
from ..store.writers import Combiner
from .queue import LeaseLost

log = logging.getLogger(__name__)
_T = TypeVar("_T")

#: the first pause before a write the database refused is tried again, and the longest
#: (seconds; each pause is drawn from its upper half, so workers do not retry in step)
RETRY_FIRST_S = 0.05
RETRY_MAX_S = 2.0


@attrs.define(eq=False)
class Writes:
    """What one attempt writes at one durable point.

    * ``fence`` — post ids whose lease this worker must still hold (it is extended);
    * ``checkpoints`` — checkpoint rows to store, by post id;
    * ``finish`` — posts' new states (written only while the lease is held);
    * ``logs``, ``hooks`` (posts whose webhook delivery goes in the outbox),
      ``reconnect`` (account ids to mark), ``drop_checkpoints`` (post ids).
    """

    fence: list[str] = attrs.Factory(list)
    checkpoints: dict[str, dict[str, Any]] = attrs.Factory(dict)
    finish: list[Post] = attrs.Factory(list)
    logs: list[LogEvent] = attrs.Factory(list)
    hooks: list[Post] = attrs.Factory(list)
    reconnect: list[str] = attrs.Factory(list)
    drop_checkpoints: list[str] = attrs.Factory(list)
    #: called once the writes are durable (by whichever thread committed them)
    after: list[Callable[[Writes], None]] = attrs.Factory(list)
    #: set by the committer: webhook deliveries added
    hooks_added: int = 0
    #: the outcome (see :class:`~chat33_core.store.writers.Combiner`)
    result: None = None
    error: BaseException | None = None
    detached: bool = False


class GroupCommit:
    """Commits :class:`Writes` of many threads together (see the module's docstring)."""

    def __init__(self, store: Store, owner: str, lease: timedelta, *,
                 retry_s: float | None = None) -> None:
        self.store = store
        self.owner = owner
        self.lease = lease
        #: how long a transaction is tried again while the database is unavailable (half
        #: the lease by default; the heartbeat keeps the posts' leases meanwhile)
        self.retry_s = retry_s if retry_s is not None else lease.total_seconds() / 2
        self._combiner: Combiner[Writes, None] = Combiner(self._write)
        #: transactions committed, the writes in them, writes refused after their thread
        #: left (lease lost, database error), transactions tried again because the
        #: database was unavailable (for the curious and the tests)
        self.transactions = 0
        self.written = 0
        self.dropped = 0
        self.retried = 0
        #: post ids of writes the database refused and that wait to be tried again
        #: (see :meth:`unwritten`)
        self._unwritten: Counter[str] = Counter()
        self._unwritten_lock = threading.Lock()

    def commit(self, writes: Writes, *, wait: bool = True) -> None:
        """Make ``writes`` durable, with whatever else is pending.

        With ``wait`` it returns once they are durable and raises what their own
        transaction would have raised (:class:`~.queue.LeaseLost`, a database error).
        Without, it returns at once when another thread is committing (that thread
        writes them next, runs their ``after`` callbacks, and logs a failure): a final
        state needs no waiting, since a worker that dies before it is written leaves its
        post leased, and the next owner resumes it from its checkpoints. Either way, a
        thread that finds nobody committing commits, until nothing is pending
        (:class:`~chat33_core.store.writers.Combiner`)."""
        self._combiner.submit(writes, wait=wait)

    def unwritten(self) -> list[str]:
        """The posts whose writes the database refused and that wait to be tried again
        (their threads may have moved on): their leases must be kept. Only these: the
        heartbeat would otherwise lock the rows that every commit is writing."""
        with self._unwritten_lock:
            return list(self._unwritten)

    def _write(self, group: list[Writes]) -> None:
        self._run(group)
        for w in group:
            if w.error is None:
                for callback in w.after:
                    try:
                        callback(w)
                    except Exception:
                        log.exception("a callback after a commit failed")
            elif w.detached:
                # its thread is gone: say what happened (the post stays leased; the next
                # owner resumes it from its checkpoints)
                self.dropped += 1
                ids = [p.id for p in w.finish] or w.fence
                if isinstance(w.error, LeaseLost):
                    log.warning("%s", w.error)
                else:
                    reason = (w.error.reason if isinstance(w.error, StoreUnavailable)
                              else type(w.error).__name__)
                    log.error("the result of post(s) %s was not written (%s); the post is "
                              "resumed from its checkpoints after its lease expires",
                              ", ".join(ids), reason)

    def _run(self, group: Sequence[Writes]) -> None:
        try:
            self._transaction(group)
            self.written += len(group)
            return
        except StoreUnavailable as exc:
            for w in group:  # alone, each would have met the same database
                w.error = exc
            return
        except Exception as exc:
            if len(group) == 1:
                group[0].error = exc
                return
        # one of them failed the shared transaction: each alone, with its own outcome
        for w in group:
            try:
                self._transaction([w])
                self.written += 1
            except Exception as exc:
                w.error = exc

    def _transaction(self, group: Sequence[Writes]) -> None:
        """``group``'s writes in one transaction, tried again with growing pauses while
        the database is unavailable, for up to :attr:`retry_s`."""
        def once() -> None:
            self._apply(group, utcnow())
            self.transactions += 1

        ids = sorted({pid for w in group for pid in _ids(w)})
        waiting = False

        def again() -> str:
            nonlocal waiting
            self.retried += 1
            if not waiting:
                waiting = True
                with self._unwritten_lock:
                    self._unwritten.update(ids)
            return "the writes of post(s) " + ", ".join(ids)

        try:
            retrying(once, self.retry_s, again)
        finally:
            if waiting:
                with self._unwritten_lock:
                    self._unwritten.subtract(ids)
                    for pid in ids:
                        if self._unwritten[pid] <= 0:
                            del self._unwritten[pid]

    def _apply(self, group: Sequence[Writes], now: datetime) -> None:
        self.store.write_results(
            self.owner, now, fence=[pid for w in group for pid in w.fence],
            expires=now + self.lease,
            checkpoints={pid: data for w in group for pid, data in w.checkpoints.items()},
            finish=[p for w in group for p in w.finish],
            logs=[e for w in group for e in w.logs],
            hooks=[(p, webhooks.payload_for(p)) for w in group for p in w.hooks],
            reconnect={a for w in group for a in w.reconnect},
            drop_checkpoints=[pid for w in group for pid in w.drop_checkpoints])
        for w in group:
            w.hooks_added = sum(1 for p in w.hooks if p.callback_url)


def retrying(attempt: Callable[[], _T], within_s: float, what: Callable[[], str]) -> _T:
    """``attempt()``, called again after the :func:`pauses` while it raises
    :class:`StoreUnavailable`, for up to ``within_s``; then that error is raised.
    ``what()`` names what is tried again, in the warning logged each time."""
    waits: Iterator[float] | None = None
    while True:
        try:
            return attempt()
        except StoreUnavailable as exc:
            waits = waits or pauses(within_s)
            pause = next(waits, None)
            if pause is None:
                raise
            log.warning("the database refused %s (%s); trying again in %.2f s", what(),
                        exc.reason, pause)
            time.sleep(pause)


def pauses(within_s: float) -> Iterator[float]:
    """The pauses (seconds) between tries of something the database refused for now:
    from :data:`RETRY_FIRST_S` doubling up to :data:`RETRY_MAX_S`, each drawn from its
    upper half (so workers do not retry in step), for up to ``within_s`` in all from the
    first one asked for."""
    deadline = time.monotonic() + within_s
    pause = RETRY_FIRST_S
    while time.monotonic() + pause / 2 <= deadline:
        yield random.uniform(pause / 2, pause)
        pause = min(pause * 2, RETRY_MAX_S)


def _ids(writes: Writes) -> list[str]:
    """The posts whose lease ``writes`` need."""
    return [*writes.fence, *(p.id for p in writes.finish)]
