"""The worker's queue: due posts claimed with a lease, leases kept and given up, an
attempt's results written while the lease is held, and the counts of the daily caps.

A post is *due* when it is QUEUED, its ``next_attempt_at`` (and ``scheduled_at``) is
past, and it is not a thread follower published with its head. A PUBLISHING post
whose lease expired (its worker died) is due too: the new owner resumes it from the
plugin's checkpoints.

Claims are atomic across processes and machines: on PostgreSQL the candidate rows are
locked with ``FOR UPDATE SKIP LOCKED`` (workers never wait for, nor take, each other's
rows); on SQLite the write transaction is ``BEGIN IMMEDIATE``, so the select-and-update
runs alone and is short.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..models import Account, LogEvent, Post, PostStatus
from ..states import Actor, can, transition
from . import tables as t
from ._sql import Query, execute
from .accounts import ACCOUNTS_WITH_CREDENTIALS, with_credentials
from .claims import (
    ANY_DUE,
    IDS,
    NOW,
    PICK,
    PICK_PG,
    PUBLISHING,
    QUEUED,
    WINDOW,
    P,
    due_clause,
    one_per_account,
)
from .database import Database
from .outbox import insert_deliveries
from .posts import insert_logs, row_to_post, save_checkpoints

#: the statuses a thread follower moves to PUBLISHING from with its head (claimed in one
#: statement, not read first): those the state machine lets the worker move (QUEUED),
#: and PUBLISHING itself (a takeover, which changes no status)
_JOINS_HEAD = sorted([PUBLISHING] + [s.value for s in PostStatus
                                     if can(s, PostStatus.PUBLISHING, Actor.WORKER)])


class LeaseLost(Exception):
    """Another worker owns the post now; this worker's result is not written."""


@attrs.frozen
class Claim:
    """A claimed post with the thread followers published with it (in order)."""

    post: Post
    followers: tuple[Post, ...] = ()
    #: the worker whose lease had expired, when this claim is a takeover
    taken_over_from: str | None = None
    #: the post's checkpoint row as it was at claim time (read in the claim transaction)
    checkpoint: dict[str, Any] | None = None
    #: the post's account and its encrypted credentials, read in the claim transaction
    #: (one read per batch); None when not read (the publisher reads it then)
    account: Account | None = None
    credentials_enc: str | None = None

    @property
    def ids(self) -> list[str]:
        return [self.post.id, *(f.id for f in self.followers)]


_LEASE = {"status": sa.bindparam("b_status"), "lease_owner": sa.bindparam("b_owner"),
          "lease_expires_at": sa.bindparam("b_expires"), "updated_at": NOW}
_TAKE = Query(P.update().where(P.c.id.in_(IDS)).values(_LEASE))
_ROWS = Query(sa.select(P).where(P.c.id.in_(IDS)))
_CHECKPOINTS = Query(sa.select(t.checkpoints.c.post_id, t.checkpoints.c.data)
                     .where(t.checkpoints.c.post_id.in_(IDS)))
_ACCOUNTS = Query(ACCOUNTS_WITH_CREDENTIALS.where(t.accounts.c.id.in_(IDS)))
#: extend a worker's lease on the posts named, only where it still holds it
_FENCE = Query(P.update().where(
    P.c.id.in_(IDS), P.c.status == PUBLISHING,
    P.c.lease_owner == sa.bindparam("b_owner")).values(
    lease_expires_at=sa.bindparam("b_expires")))
_DROP = Query(t.checkpoints.delete().where(t.checkpoints.c.post_id.in_(IDS)))
#: a claimed post's new state, only while this worker holds its lease
_FINISH = Query(P.update().where(
    P.c.id == sa.bindparam("b_id"), P.c.status == PUBLISHING,
    P.c.lease_owner == sa.bindparam("b_owner")).values(
    {P.c[k]: sa.bindparam("b_" + k) for k in (
        "status", "published_at", "external_post_id", "external_post_url", "error_message",
        "retry_count", "next_attempt_at", "lease_owner", "lease_expires_at", "updated_at")}))


def _finish_params(post: Post, owner: str, now: datetime) -> dict[str, Any]:
    """The parameters of :data:`_FINISH` storing ``post``'s new state."""
    return {"b_id": post.id, "b_owner": owner, "b_status": post.status.value,
            "b_published_at": post.published_at, "b_external_post_id": post.external_post_id,
            "b_external_post_url": post.external_post_url,
            "b_error_message": post.error_message, "b_retry_count": post.retry_count,
            "b_next_attempt_at": post.next_attempt_at, "b_lease_owner": post.lease_owner,
            "b_lease_expires_at": post.lease_expires_at, "b_updated_at": now}


class Leases(Database):
    """The worker's side of the posts table."""

    def claim_due(self, owner: str, limit: int, now: datetime, expires: datetime, *,
                  details: bool = True) -> list[Claim]:
        """Lease up to ``limit`` due posts (fairly: :data:`.claims.PICK`) to ``owner`` until
        ``expires`` and mark them PUBLISHING, together with their thread followers, in
        one transaction, which writes an ``attempt_started`` log per post and, with
        ``details``, reads the posts' checkpoints and accounts."""
        with self.begin() as c:
            picked = execute(c, PICK_PG if self.is_postgres else PICK,
                               {"b_now": now, "b_limit": limit,
                                "b_window": limit * WINDOW}).mappings()
            if picked and self.is_postgres:
                picked = one_per_account(c, picked, now)
            if not picked:
                return []
            ids = [r["id"] for r in picked]
            previous = {r["id"]: r["lease_owner"] for r in picked if r["status"] == PUBLISHING}
            for row in picked:
                if row["status"] != PUBLISHING:  # a takeover keeps its status
                    transition(PostStatus(row["status"]), PostStatus.PUBLISHING, Actor.WORKER)
            threads = [r["thread_id"] for r in picked if r["thread_id"]]
            lease = {"status": PUBLISHING, "lease_owner": owner,
                     "lease_expires_at": expires, "updated_at": now}
            execute(c, _TAKE, {"b_ids": ids, "b_status": PUBLISHING, "b_owner": owner,
                              "b_expires": expires, "b_now": now})
            if threads:
                # followers move with their head; a cancelled or edited-to-draft one stays
                execute(c, P.update().where(
                    P.c.thread_id.in_(threads), P.c.publish_with_head.is_(True),
                    P.c.status.in_(_JOINS_HEAD)).values(**lease))
                rows = execute(c, sa.select(P).where(sa.or_(
                    P.c.id.in_(ids),
                    sa.and_(P.c.thread_id.in_(threads), P.c.publish_with_head.is_(True),
                            P.c.lease_owner == owner, P.c.status == PUBLISHING))
                )).mappings()
            else:
                rows = execute(c, _ROWS, {"b_ids": ids}).mappings()
            posts = [row_to_post(r) for r in rows]
            wanted = set(ids)
            saved: dict[str, dict[str, Any]] = {}
            accounts: dict[str, tuple[Account, str | None]] = {}
            if details:
                saved = {post_id: dict(data or {})
                         for post_id, data in execute(c, _CHECKPOINTS, {"b_ids": ids})}
                for r in execute(c, _ACCOUNTS, {"b_ids": sorted(
                        {p.account_id for p in posts if p.id in wanted})}):
                    found = with_credentials(r)
                    accounts[found[0].id] = found
            claims = []
            by_thread: dict[str, list[Post]] = {}
            for p in posts:
                if p.publish_with_head and p.thread_id:
                    by_thread.setdefault(p.thread_id, []).append(p)
            for p in posts:
                if p.id not in wanted:
                    continue
                followers = sorted(by_thread.get(p.thread_id or "", []),
                                   key=lambda f: f.thread_position) if p.thread_id else []
                account, enc = accounts.get(p.account_id) or (None, None)
                claims.append(Claim(post=p, followers=tuple(followers),
                                    taken_over_from=previous.get(p.id),
                                    checkpoint=saved.get(p.id, {}) if details else None,
                                    account=account, credentials_enc=enc))
            logs = []
            for cl in claims:
                attempt = cl.post.retry_count + 1
                message = f"attempt {attempt} started by worker {owner}"
                if cl.taken_over_from:
                    message += (f" (taking over from worker {cl.taken_over_from}, whose lease "
                                "expired; resuming from its checkpoints)")
                logs.append(LogEvent(
                    id=None, post_id=cl.post.id, attempt=attempt, event="attempt_started",
                    message=message, created_at=now,
                    data={"worker": owner, **({"takenOverFrom": cl.taken_over_from}
                                              if cl.taken_over_from else {})}))
            insert_logs(c, self.engine.dialect, logs)
        order = {pid: i for i, pid in enumerate(ids)}
        return sorted(claims, key=lambda cl: order[cl.post.id])

    def anything_due(self, now: datetime) -> bool:
        with self.read() as c:
            return execute(c, ANY_DUE, {"b_now": now}).first() is not None

    def next_due(self, now: datetime) -> datetime | None:
        """When the next post becomes due (a scheduled time, a backoff, a lease expiry):
        ``now`` when one is due at once; None if nothing is waiting."""
        effective = sa.case(
            (P.c.scheduled_at.is_(None), P.c.next_attempt_at),
            (sa.or_(P.c.next_attempt_at.is_(None), P.c.next_attempt_at < P.c.scheduled_at),
             P.c.scheduled_at),
            else_=P.c.next_attempt_at)
        with self.read() as c:
            queued_null = execute(c, sa.select(P.c.id).where(
                P.c.status == QUEUED, P.c.publish_with_head.is_(False),
                P.c.next_attempt_at.is_(None), P.c.scheduled_at.is_(None)).limit(1)).first()
            if queued_null is not None:
                return now
            first = execute(c, sa.select(sa.func.min(effective)).where(
                P.c.status == QUEUED, P.c.publish_with_head.is_(False))).scalar()
            lease = execute(c, sa.select(sa.func.min(P.c.lease_expires_at)).where(
                P.c.status == PUBLISHING, P.c.publish_with_head.is_(False))).scalar()
        found = [d for d in (first, lease) if d is not None]
        return min(found) if found else None

    def queue_depth(self, now: datetime) -> dict[str, int]:
        """The queue's depth (``chat33_queue_posts``): ``due`` posts (claimable now, an
        expired lease included) and ``leased`` ones (PUBLISHING under a live lease)."""
        with self.read() as c:
            due = execute(c, sa.select(sa.func.count()).select_from(P).where(due_clause(now))
                            ).scalar()
            leased = execute(c, sa.select(sa.func.count()).select_from(P).where(
                P.c.status == PUBLISHING, P.c.lease_expires_at >= now)).scalar()
        return {"due": int(due), "leased": int(leased)}

    def set_leases(self, owner: str, ids: Sequence[str], expires: datetime) -> int:
        """Make ``owner``'s leases on ``ids`` expire at ``expires`` (a heartbeat, or a
        release at shutdown); returns how many it still holds."""
        with self.begin() as c:
            return int(execute(c, _FENCE, {"b_ids": list(ids), "b_owner": owner,
                                          "b_expires": expires}).rowcount)

    def finish(self, owner: str, post: Post, now: datetime) -> None:
        """Store ``post``'s new state if ``owner`` still holds its lease; else
        :class:`LeaseLost`."""
        self.write_results(owner, now, finish=[post])

    def write_results(self, owner: str, now: datetime, *, fence: Sequence[str] = (),
                      expires: datetime | None = None,
                      checkpoints: Mapping[str, Mapping[str, Any]] | None = None,
                      finish: Sequence[Post] = (), logs: Sequence[LogEvent] = (),
                      hooks: Sequence[tuple[Post, Mapping[str, Any]]] = (),
                      reconnect: Collection[str] = (),
                      drop_checkpoints: Sequence[str] = ()) -> None:
        """What attempts of ``owner`` write at a durable point, in one transaction:
        extend the leases on ``fence`` to ``expires``, store ``checkpoints`` (by post
        id), the new states of the ``finish`` posts, their ``logs``, a webhook delivery
        for each of the ``hooks`` (post, payload) whose post has a callback URL, mark
        the ``reconnect`` accounts, and delete the checkpoints of ``drop_checkpoints``. Raises
        :class:`LeaseLost` (nothing written) when ``owner`` no longer holds a lease of
        ``fence`` or ``finish``."""
        with self.begin() as c:
            self._write_results(c, owner, now, fence, expires, checkpoints or {}, finish,
                                logs, hooks, reconnect, drop_checkpoints)

    def _write_results(self, c: Connection, owner: str, now: datetime,
                       fence: Sequence[str], expires: datetime | None,
                       checkpoints: Mapping[str, Mapping[str, Any]],
                       finish: Sequence[Post], logs: Sequence[LogEvent],
                       hooks: Sequence[tuple[Post, Mapping[str, Any]]],
                       reconnect: Collection[str],
                       drop: Sequence[str]) -> None:
        if fence:
            n = execute(c, _FENCE, {"b_ids": list(fence), "b_owner": owner,
                                   "b_expires": expires}).rowcount
            if n != len(fence):
                raise LeaseLost(f"post {fence[0] if len(fence) == 1 else 'of ' + str(fence)} "
                                f"is no longer leased by {owner}")
        if checkpoints:
            save_checkpoints(c, checkpoints, now)
        if finish:
            n = execute(c, _FINISH, [_finish_params(p, owner, now) for p in finish]).rowcount
            if n != len(finish):
                raise LeaseLost(f"post {finish[0].id if len(finish) == 1 else 'of a group'} "
                                f"is no longer leased by {owner}")
        insert_logs(c, self.engine.dialect, logs)
        insert_deliveries(c, hooks, now)
        if reconnect:
            execute(c, t.accounts.update().where(t.accounts.c.id.in_(sorted(reconnect)))
                      .values(needs_reconnect=True))
        if drop:
            execute(c, _DROP, {"b_ids": list(drop)})

    def unclaim(self, owner: str, ids: Sequence[str], now: datetime,
                log: LogEvent) -> bool:
        """Put ``owner``'s claimed posts ``ids``, never started, back in the queue as
        they were, with ``log``; False when it no longer holds any of them."""
        with self.begin() as c:
            n = execute(c, P.update().where(
                P.c.id.in_(list(ids)), P.c.lease_owner == owner,
                P.c.status == PUBLISHING).values(
                    status=QUEUED, lease_owner=None, lease_expires_at=None,
                    updated_at=now)).rowcount
            if n:
                insert_logs(c, self.engine.dialect, [log])
        return bool(n)

    def cap_counts(self, account_id: str, since: datetime, own_ids: Collection[str],
                   owner: str | None) -> tuple[int, int, datetime | None]:
        """For a daily cap: the account's posts published since ``since`` (cancelled
        after publishing included), those being published now (``own_ids`` and, with
        ``owner``, that worker's leased posts left out), and the oldest publication of
        the window."""
        published = sa.and_(P.c.account_id == account_id, P.c.published_at >= since,
                            P.c.status.in_([PostStatus.PUBLISHED.value,
                                            PostStatus.CANCELLED.value]))
        with self.read() as c:
            used = int(execute(c, sa.select(sa.func.count()).select_from(P).where(published)
                                 ).scalar())
            in_flight = int(execute(c, sa.select(sa.func.count()).select_from(P).where(
                P.c.account_id == account_id, P.c.status == PUBLISHING,
                P.c.id.not_in(list(own_ids)) if own_ids else sa.true(),
                sa.or_(P.c.lease_owner.is_(None), P.c.lease_owner != owner)
                if owner else sa.true())).scalar())
            oldest = execute(c, sa.select(sa.func.min(P.c.published_at)).where(published)
                               ).scalar()
        return used, in_flight, oldest


__all__ = ["Claim", "LeaseLost", "Leases"]
