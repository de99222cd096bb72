"""Per-channel daily caps over a rolling 24 hours.

A platform declares its cap in ``limits.daily_cap`` (Facebook 50, TikTok 20, YouTube 6,
X from its plugin; Instagram's 100 a day is a shared ``RateLimit``). A post that would go
over its channel's cap is *deferred*, never failed: it goes back to the queue until the
oldest post of the window leaves it. Posts being published right now by other workers
count too, so concurrent workers cannot overshoot the cap together.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import attrs

from ..models import utcnow
from ..platforms import PlatformBase
from ..store import Store

WINDOW = timedelta(hours=24)


@attrs.frozen
class CapDecision:
    """Over the cap: when to try again, and why (for the post's log)."""

    until: datetime
    message: str
    used: int
    cap: int


def check_cap(store: Store, platform: PlatformBase, account_id: str, own_ids: Collection[str],
              now: datetime, needed: int = 1, *, owner: str | None = None,
              own_in_flight: int = 0) -> CapDecision | None:
    """None if ``needed`` more posts fit in the channel's rolling 24 h cap, else when
    to retry. ``own_ids`` (the post and its thread) are not counted as in flight. With
    ``owner``, that worker's leased posts are not counted from the database (claimed is
    not started); the worker passes how many it has really started as ``own_in_flight``."""
    cap = platform.limits.daily_cap
    if cap is None:
        return None
    used, in_flight, oldest = store.cap_counts(account_id, now - WINDOW, own_ids, owner)
    in_flight += own_in_flight
    name = platform.display_name or platform.name
    if used + needed > cap:
        # the window frees a slot when its oldest post is 24 h old
        until = (oldest + WINDOW) if oldest is not None else now + WINDOW
        until = max(until, now + timedelta(seconds=1))
        return CapDecision(until=until, used=used, cap=cap, message=(
            f"deferred: {used} of {name}'s daily cap of {cap} posts used on this channel "
            f"in the last 24 h; next try at {until.isoformat(timespec='seconds')}"))
    if used + in_flight + needed > cap:
        # others are publishing the last slots now; look again shortly
        until = now + timedelta(seconds=random.uniform(2.0, 5.0))
        return CapDecision(until=until, used=used + in_flight, cap=cap, message=(
            f"deferred: {used} published and {in_flight} being published of {name}'s "
            f"daily cap of {cap} posts on this channel; trying again shortly"))
    return None


class CapGate:
    """One worker's side of the caps: one check at a time per channel in this process,
    counting the posts it has started on that channel and not finished yet."""

    def __init__(self, store: Store, owner: str) -> None:
        self.store = store
        self.owner = owner
        self._in_flight: Counter[str] = Counter()
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    @contextmanager
    def started(self, platform: PlatformBase, account_id: str,
                ids: Collection[str]) -> Iterator[CapDecision | None]:
        """Yields None when the posts ``ids`` fit in the channel's cap (they count as in
        flight until the block ends), else the :class:`CapDecision` to defer them."""
        with self._guard:
            lock = self._locks.setdefault(account_id, threading.Lock())
        with lock:
            decision = check_cap(self.store, platform, account_id, ids, utcnow(),
                                 needed=len(ids), owner=self.owner,
                                 own_in_flight=self._in_flight[account_id])
            if decision is None:
                self._in_flight[account_id] += len(ids)
        if decision is not None:
            yield decision
            return
        try:
            yield None
        finally:
            with lock:
                self._in_flight[account_id] -= len(ids)
