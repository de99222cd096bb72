"""Rate limits (GCRA), counted alone or with the posts a request inserts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine

from ..errors import RateLimited, ValidationError
from ..models import (
    LogEvent,
    Post,
    utcnow,
)
from . import tables as t
from ._sql import Query, Rows
from .database import Database
from .media import media_kept
from .posts import insert_args, insert_rows
from .writers import Combiner

_TAT = Rows([t.rate_limits.c.tat])
_RATE_TAT = sa.select(*_TAT.columns).where(t.rate_limits.c.key == sa.bindparam("k"))
_RATE_READ = Query(_RATE_TAT)
_RATE_READ_LOCKED = Query(_RATE_TAT.with_for_update())
#: PostgreSQL: a row to lock, even for the first request
_RATE_CLAIM = Query(postgresql.insert(t.rate_limits).values(
    key=sa.bindparam("k"), tat=sa.bindparam("n")).on_conflict_do_nothing())
_RATE_INSERT = Query(t.rate_limits.insert(), ["key", "tat"])
_RATE_UPDATE = Query(t.rate_limits.update().where(t.rate_limits.c.key == sa.bindparam("k"))
                      .values(tat=sa.bindparam("new_tat")))


class Limits(Database):
    """Rate limits."""

    def __init__(self, engine: Engine | str, **kw: Any) -> None:
        super().__init__(engine, **kw)
        self._post_groups: Combiner[_CountedInsert, tuple[int, float]] = Combiner(
            self._write_counted)

    def _stored_tat(self, c: Connection | Any, key: str, now: datetime) -> datetime | None:
        """The key's stored theoretical arrival time, if any, in ``c``'s transaction; on
        PostgreSQL its row is locked until the transaction ends (made first if need be:
        a first request locks a row too)."""
        if self.is_postgres:
            self._run(c, _RATE_CLAIM, {"k": key, "n": now})
            rows = self._run(c, _RATE_READ_LOCKED, {"k": key})
        else:
            rows = self._run(c, _RATE_READ, {"k": key})
        return _TAT.values(rows[0])[0] if rows else None

    def hit_rate_limit(self, key: str, limit: int, period: timedelta,
                       now: datetime | None = None, *, conn: Connection | None = None,
                       cost: int = 1) -> tuple[int, float]:
        """Count ``cost`` (one request by default) against ``limit`` per ``period`` for
        ``key`` (GCRA, so the allowance refills smoothly); all of it or nothing. Returns
        (remaining, seconds until full); raises :class:`~chat33_core.errors.RateLimited`.
        Atomic across processes and machines: the row is locked (PostgreSQL) or the write
        lock is held (SQLite). With ``conn`` (a :meth:`begin` transaction) the count is
        part of that transaction: it holds only if the transaction commits."""
        if conn is None:
            with self._begin_driver() as c:
                return self._count(c, key, limit, period, now, cost)
        return self._count(conn, key, limit, period, now, cost)

    def _count(self, c: Connection | Any, key: str, limit: int, period: timedelta,
               now: datetime | None, cost: int = 1) -> tuple[int, float]:
        now = now or utcnow()
        tat = self._stored_tat(c, key, now)
        if tat is None:
            tat = now
            self._run(c, _RATE_INSERT, {"key": key, "tat": now})
        new_tat, remaining, reset = _gcra(tat, now, limit, period, cost)
        self._run(c, _RATE_UPDATE, {"k": key, "new_tat": new_tat})
        return remaining, reset

    def hit_rate_limits(self, hits: Sequence[tuple[str, int, timedelta]],
                        now: datetime | None = None) -> list[tuple[int, float]]:
        """:meth:`hit_rate_limit` for each of ``hits`` (key, limit, period), in one
        transaction: all of them are counted or none is. Returns (remaining, seconds
        until full) for each; raises :class:`LimitReached` for the first that does not
        fit, which says which one it was."""
        with self._begin_driver() as c:
            counts = []
            for index, (key, limit, period) in enumerate(hits):
                try:
                    counts.append(self._count(c, key, limit, period, now))
                except RateLimited as exc:
                    raise LimitReached(index, exc) from None
            return counts

    def give_back_rate_limit(self, key: str, limit: int, period: timedelta,
                             now: datetime | None = None) -> None:
        """Undo one request that :meth:`hit_rate_limit` counted for ``key`` (a sign-in
        counted before its password was checked, and the password was right)."""
        now = now or utcnow()
        with self._begin_driver() as c:
            tat = self._stored_tat(c, key, now)
            if tat is not None:
                self._run(c, _RATE_UPDATE, {"k": key, "new_tat": max(now, tat - period / limit)})

    def add_posts_counted(self, key: str, limit: int, period: timedelta,
                          posts: Sequence[Post], logs: Sequence[LogEvent] = ()
                          ) -> tuple[int, float]:
        """:meth:`hit_rate_limit` and :meth:`add_posts` in one transaction, counting one
        per post (a post to two accounts counts 2, a thread each of its parts): the posts
        are inserted only if all of them fit the limit, and a request whose insert fails
        does not use the allowance. Returns (remaining, seconds until full).

        Concurrent callers in this process share transactions (group commit): one of
        them counts everybody's requests in arrival order, with one read and one write
        per rate-limit key, and inserts all the posts with one statement, so a busy API
        holds the database's write lock (SQLite) or the rate-limit row (PostgreSQL) once
        per group instead of once per request. If the shared transaction fails, each
        request is tried alone and gets its own outcome."""
        result = self._post_groups.submit(_CountedInsert(
            key, limit, period, insert_args(self.engine.dialect, posts, logs),
            cost=max(1, len(posts)),
            media_ids=tuple(dict.fromkeys(m for p in posts for m in p.media_ids))))
        assert result is not None  # every request waits for its own outcome
        return result

    def _write_counted(self, group: Sequence[_CountedInsert]) -> None:
        try:
            now = utcnow()
            with self._begin_driver() as c:
                tats: dict[str, tuple[datetime, bool]] = {}
                for key in dict.fromkeys(r.key for r in group):
                    tat = self._stored_tat(c, key, now)
                    tats[key] = (tat, True) if tat is not None else (now, False)
                start = dict(tats)
                accepted = []
                for r in group:
                    try:
                        self._media_kept(c, r)
                    except ValidationError as exc:
                        r.error = exc
                        continue
                    tat, stored = tats[r.key]
                    try:
                        new_tat, remaining, reset = _gcra(tat, now, r.limit, r.period,
                                                          r.cost)
                    except RateLimited as exc:
                        r.error = exc
                        continue
                    tats[r.key] = (new_tat, stored)
                    r.result = (remaining, reset)
                    accepted.append(r)
                for key, (tat, stored) in tats.items():
                    if tats[key] == start[key]:
                        continue
                    if stored:
                        self._run(c, _RATE_UPDATE, {"k": key, "new_tat": tat})
                    else:
                        self._run(c, _RATE_INSERT, {"key": key, "tat": tat})
                insert_rows(c, self.engine.dialect,
                            ([p for r in accepted for p in r.rows[0]],
                             [e for r in accepted for e in r.rows[1]]))
        except Exception as exc:
            if len(group) == 1:
                group[0].result, group[0].error = None, exc
                return
            # one request broke the shared transaction: each alone, with its own outcome
            for r in group:
                r.result, r.error = None, None
                try:
                    with self._begin_driver() as c:
                        self._media_kept(c, r)
                        r.result = self._count(c, r.key, r.limit, r.period, None, r.cost)
                        insert_rows(c, self.engine.dialect, r.rows)
                except Exception as alone:
                    r.result, r.error = None, alone

    def _media_kept(self, c: Any, r: _CountedInsert) -> None:
        """The media the request's posts use is all still there (:func:`media_kept`)."""
        media_kept(self, c, r.media_ids)


class LimitReached(RateLimited):
    """The RateLimited of :meth:`Limits.hit_rate_limits`: ``index`` is the place in
    ``hits`` of the limit that was reached."""

    def __init__(self, index: int, refused: RateLimited) -> None:
        super().__init__(refused.message, retry_after=refused.retry_after,
                         limit=refused.limit, remaining=refused.remaining,
                         reset_after=refused.reset_after)
        self.index = index


@attrs.define(eq=False)
class _CountedInsert:
    """One request of :meth:`Store.add_posts_counted`, and its outcome."""

    key: str
    limit: int
    period: timedelta
    #: the driver's parameters for the posts and the logs (posts.insert_args)
    rows: tuple[list[Any], list[Any]]
    #: what the request counts against the limit (its number of posts)
    cost: int = 1
    #: the media assets the posts use (each must still be there)
    media_ids: tuple[str, ...] = ()
    result: tuple[int, float] | None = None
    error: BaseException | None = None
    detached: bool = False


def _gcra(tat: datetime, now: datetime, limit: int, period: timedelta, cost: int = 1
          ) -> tuple[datetime, int, float]:
    """``cost`` against ``limit`` per ``period`` (GCRA) with the key's theoretical
    arrival time ``tat``: (the new tat, remaining, seconds until full), or RateLimited
    when not all of ``cost`` fits now."""
    interval = period / limit
    tat = max(tat, now)
    new_tat = tat + interval * cost
    allow_at = new_tat - period
    if allow_at > now:
        left = max(0, int((period - (tat - now)) / interval))
        reset = (tat - now).total_seconds()
        if cost > limit:
            raise RateLimited(
                f"this request counts {cost} against the rate limit of {limit} per "
                f"{human_period(period)}, more than it ever allows: send fewer at once",
                retry_after=reset, limit=limit, remaining=left, reset_after=reset)
        retry = (allow_at - now).total_seconds()
        counts = "" if cost == 1 else f" (this request counts {cost}, {left} left)"
        raise RateLimited(
            f"rate limit of {limit} per {human_period(period)} reached{counts}; retry in "
            f"{math.ceil(retry)} s", retry_after=retry, limit=limit, remaining=left,
            reset_after=reset)
    remaining = int((period - (new_tat - now)) / interval)
    return new_tat, max(0, remaining), (new_tat - now).total_seconds()


def human_period(period: timedelta) -> str:
    """``hour``, ``2 hours``, ``day``, ``90 s``: a period as limits are worded."""
    seconds = int(period.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            n = seconds // size
            return unit if n == 1 else f"{n} {unit}s"
    return f"{seconds} s"
