"""Claiming due posts with a lease, for one worker: the worker's view of the queue the
store keeps (:mod:`chat33_core.store.leases`, where its SQL and its rules are).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from ..models import Post, utcnow
from ..store import Store
from ..store.leases import Claim, LeaseLost


class Queue:
    """Claim, heartbeat, release and finish for one worker (``owner``)."""

    def __init__(self, store: Store, owner: str, lease_s: float = 60.0) -> None:
        self.store = store
        self.owner = owner
        self.lease = timedelta(seconds=lease_s)

    # --- claiming ------------------------------------------------------------------

    def claim(self, limit: int, now: datetime | None = None, *,
              check_due: bool = True, details: bool = True) -> list[Claim]:
        """Lease up to ``limit`` due posts (oldest due first) and mark them PUBLISHING,
        together with their thread followers. Writes an ``attempt_started`` log per post
        in the same transaction, and reads the posts' checkpoints and accounts there.

        With ``check_due`` (an idle poll) a read first makes sure something is due, so
        that polling takes no write lock; a worker working off a backlog skips it.
        Without ``details`` the checkpoints and accounts are not read (the benchmark's
        bare claim loop)."""
        if limit <= 0:
            return []
        now = now or utcnow()
        if check_due and not self.store.anything_due(now):
            return []  # an idle poll takes no write lock
        return self.store.claim_due(self.owner, limit, now, now + self.lease,
                                    details=details)

    def anything_due(self, now: datetime) -> bool:
        return self.store.anything_due(now)

    def next_due(self, now: datetime | None = None) -> datetime | None:
        """When the next post becomes due (a scheduled time, a backoff, a lease expiry);
        None if nothing is waiting."""
        return self.store.next_due(now or utcnow())

    # --- leases ----------------------------------------------------------------------

    def heartbeat(self, ids: Iterable[str], now: datetime | None = None) -> int:
        """Extend this worker's lease on ``ids``; returns how many it still holds."""
        ids = list(ids)
        if not ids:
            return 0
        now = now or utcnow()
        return self.store.set_leases(self.owner, ids, now + self.lease)

    def release(self, ids: Iterable[str], settle_s: float = 0.0) -> int:
        """Give up the lease on ``ids`` (shutdown): the posts stay PUBLISHING with a lease
        that expires in ``settle_s``, so the next worker takes them over from their
        checkpoints once requests this worker abandoned mid-flight have had time to land
        on the platform (the next worker's lookups then see them)."""
        ids = list(ids)
        if not ids:
            return 0
        expires = utcnow() + timedelta(seconds=settle_s) if settle_s > 0 else (
            utcnow() - timedelta(seconds=1))
        return self.store.set_leases(self.owner, ids, expires)

    # --- finishing -------------------------------------------------------------------

    def finish(self, post: Post, now: datetime) -> None:
        """Store ``post``'s new state if this worker still holds its lease; else
        :class:`LeaseLost`."""
        self.store.finish(self.owner, post, now)


__all__ = ["Claim", "LeaseLost", "Queue"]
