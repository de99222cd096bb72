"""Platform limits shared by every worker: what a plugin declares in
``PlatformBase.rate_limits`` (:class:`~chat33_core.platforms.RateLimit`), counted in the
store (:mod:`chat33_core.store.platform_limits`).

The counts live in the database every worker already shares, not in Redis: a
reservation is one short transaction on rows no other part of chat33 touches, the
deployment needs no second service to be correct, and one implementation runs (and is
tested) on both engines. Limits are per minute, per 15 minutes or per day: a handful of
row updates per publish, far below what the claims already write.
"""

from __future__ import annotations

import logging
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import attrs

from ..models import Account, utcnow
from ..platforms import LimitReport, PlatformBase, RateLimit
from ..store import Store
from ..store import platform_limits as stored

log = logging.getLogger(__name__)


@attrs.frozen
class LimitWait:
    """A publish that would go over a limit: when its window opens, and why."""

    until: datetime
    message: str
    limits: tuple[str, ...]


def window_key(platform: PlatformBase, limit: RateLimit, account: Account) -> str:
    scope = "app" if limit.per == "app" else account.id
    return f"{platform.name}:{limit.name}:{scope}"


def window_end(limit: RateLimit, now: datetime) -> datetime:
    """When a window of ``limit`` opened at ``now`` closes."""
    if limit.resets_in is None:
        return now + limit.window
    zone = ZoneInfo(limit.resets_in)
    local = now.astimezone(zone)
    midnight = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=zone)
    return midnight.astimezone(now.tzinfo)


def _describe(platform: PlatformBase, limit: RateLimit) -> str:
    what = limit.description or limit.name
    scope = "for the app" if limit.per == "app" else "for this channel"
    return f"{platform.display_name or platform.name}'s limit of {limit.units} {what} {scope}"


class SharedLimits:
    """Reservations against a platform's declared limits, for one worker process."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def reserve(self, platform: PlatformBase, account: Account, items: int = 1,
                now: datetime | None = None) -> LimitWait | None:
        """Spend what one publish of ``items`` items costs in each of the platform's
        limits, or, if any would go over, spend nothing and say until when to wait."""
        if not platform.rate_limits:
            return None
        now = now or utcnow()
        by_key = {window_key(platform, lim, account): lim for lim in platform.rate_limits}
        asks = [stored.Ask(key, lim.units, lim.cost * (items if lim.per_item else 1),
                           window_end(lim, now)) for key, lim in by_key.items()]
        blocked = stored.reserve(self.store, asks, now)
        if not blocked:
            return None
        until = max(b.resets_at for b in blocked)
        reasons = "; ".join(
            f"{_describe(platform, by_key[b.key])} is used up ({b.used} of {b.units} until "
            f"{b.resets_at.isoformat(timespec='seconds')})" for b in blocked)
        return LimitWait(until=until, limits=tuple(by_key[b.key].name for b in blocked),
                         message=f"waiting for the platform's limit: {reasons}; "
                         f"next try at {until.isoformat(timespec='seconds')}")

    def reporter(self, platform: PlatformBase, account: Account) -> LimitReport:
        """``ctx.limits`` of a publish: the platform's own numbers for a declared limit."""
        declared = {lim.name: lim for lim in platform.rate_limits}

        def report(name: str, *, remaining: int | None = None,
                   resets_at: datetime | None = None) -> None:
            limit = declared.get(name)
            if limit is None:
                log.warning("the %s plugin reported an undeclared limit %r", platform.name,
                            name)
                return
            now = utcnow()
            stored.report(self.store, window_key(platform, limit, account), limit.units,
                          now, opens_until=window_end(limit, now), remaining=remaining,
                          resets_at=resets_at)

        return report
