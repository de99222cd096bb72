"""The claim's statements: which due posts a claim takes, fairly (docs/architecture.md,
"Fair claiming"), built once (building a statement costs more than running it on
SQLite, and the claim runs for every batch). :class:`.leases.Leases` runs them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..models import PostStatus
from . import tables as t
from ._sql import Query, execute

P = t.posts
QUEUED = PostStatus.QUEUED.value
PUBLISHING = PostStatus.PUBLISHING.value


def due_clause(now: datetime | sa.BindParameter[datetime]) -> sa.ColumnElement[bool]:
    queued = sa.and_(
        P.c.status == QUEUED,
        P.c.publish_with_head.is_(False),
        sa.or_(P.c.next_attempt_at.is_(None), P.c.next_attempt_at <= now),
        sa.or_(P.c.scheduled_at.is_(None), P.c.scheduled_at <= now),
    )
    expired = sa.and_(P.c.status == PUBLISHING, P.c.publish_with_head.is_(False),
                      P.c.lease_expires_at < now)
    return sa.or_(queued, expired)


NOW = sa.bindparam("b_now", type_=P.c.next_attempt_at.type)
IDS: sa.BindParameter[list[str]] = sa.bindparam("b_ids", expanding=True)

#: a post's place in its account's line: its scheduled time (creation time if none)
_LINE = sa.func.coalesce(P.c.scheduled_at, P.c.created_at)
_EARLIER = P.alias("earlier")


def _busy(now: datetime | sa.BindParameter[datetime]) -> sa.Select[tuple[str]]:
    """Accounts with a post being published now (a live lease): they wait their turn."""
    return sa.select(P.c.account_id).where(P.c.status == PUBLISHING,
                                           P.c.lease_expires_at >= now)


def claimable_clause(now: datetime | sa.BindParameter[datetime]) -> sa.ColumnElement[bool]:
    """Due, its account publishing nothing now, and no earlier part of its thread still
    to publish."""
    earlier_pending = sa.exists().where(
        _EARLIER.c.thread_id == P.c.thread_id,
        _EARLIER.c.thread_position < P.c.thread_position,
        _EARLIER.c.status.in_([QUEUED, PUBLISHING]))
    return sa.and_(due_clause(now), P.c.account_id.not_in(_busy(now)),
                   sa.or_(P.c.thread_id.is_(None), ~earlier_pending))


#: a post's place in line for the claim: a takeover (its lease expired) first
_PLACE = sa.case((P.c.status == PUBLISHING,
                  sa.literal(datetime(1970, 1, 1, tzinfo=UTC), P.c.created_at.type)),
                 else_=_LINE)
_ACC = t.accounts
_CAND = P.alias("candidate")


def _head_of_account() -> sa.ColumnElement[str]:
    """The head of the line of the account of the enclosing query's ``accounts`` row: a
    post of it to take over (lowest id), else its first queued due post (by place in
    line, then id). Both read ``ix_posts_account_line`` from the account's first post on
    and stop at the first that qualifies, so the claim's cost follows the number of
    accounts, not the backlog."""
    c, e = _CAND.c, _EARLIER.c
    takeover = (sa.select(c.id).where(
        c.account_id == _ACC.c.id, c.status == PUBLISHING, c.publish_with_head.is_(False),
        c.lease_expires_at < NOW).order_by(c.id).limit(1).scalar_subquery())
    line = sa.func.coalesce(c.scheduled_at, c.created_at)
    earlier_pending = sa.exists().where(
        e.thread_id == c.thread_id, e.thread_position < c.thread_position,
        e.status.in_([QUEUED, PUBLISHING]))
    queued = (sa.select(c.id).where(
        c.account_id == _ACC.c.id, c.status == QUEUED, line <= NOW,
        c.publish_with_head.is_(False),
        sa.or_(c.next_attempt_at.is_(None), c.next_attempt_at <= NOW),
        sa.or_(c.scheduled_at.is_(None), c.scheduled_at <= NOW),
        sa.or_(c.thread_id.is_(None), ~earlier_pending))
        .order_by(line, c.id).limit(1).scalar_subquery())
    return sa.func.coalesce(takeover, queued)


_LIVE = P.alias("live")
#: the head of each account's line (one row per account, read through the index); an
#: account with a post being published now has none. Materialized: PostgreSQL would
#: otherwise inline it and look each head up once per use
_HEAD = (sa.select(_ACC.c.org_id, _head_of_account().label("id")).select_from(_ACC)
         .where(~sa.exists().where(_LIVE.c.account_id == _ACC.c.id,
                                   _LIVE.c.status == PUBLISHING,
                                   _LIVE.c.lease_expires_at >= NOW))
         .cte("head").prefix_with("MATERIALIZED", dialect="postgresql"))
#: each head's place in line, read by its id (a lookup per head, not a join with posts)
_LINED = (sa.select(_HEAD.c.id, _HEAD.c.org_id, sa.select(_PLACE).where(
    P.c.id == _HEAD.c.id).scalar_subquery().label("line"))
    .where(_HEAD.c.id.is_not(None)).subquery("lined"))
#: the heads ranked within their organization
_HEADS = (sa.select(
    _LINED.c.id, _LINED.c.line,
    sa.func.row_number().over(partition_by=_LINED.c.org_id, order_by=(
        _LINED.c.line, _LINED.c.id)).label("in_org")).subquery("heads"))
#: round-robin over organizations: every organization's first head, oldest first, then
#: every organization's second head... The first ``b_window`` of them (a few batches'
#: worth) are joined with ``posts`` to be locked: a lookup each, however long the backlog;
#: the window leaves room for the heads that concurrent claims hold locked (skipped)
_RANKED = (sa.select(_HEADS).order_by(_HEADS.c.in_org, _HEADS.c.line, _HEADS.c.id)
           .limit(sa.bindparam("b_window")).subquery("ranked"))
_PICK = (sa.select(P.c.id, P.c.lease_owner, P.c.status, P.c.thread_id, P.c.account_id)
         .join(_RANKED, _RANKED.c.id == P.c.id)
         .where(due_clause(NOW))
         .order_by(_RANKED.c.in_org, _RANKED.c.line, _RANKED.c.id)
         .limit(sa.bindparam("b_limit")))
#: how many batches' worth of heads a claim considers (see :data:`PICK`)
WINDOW = 8
PICK = Query(_PICK)
PICK_PG = Query(_PICK.with_for_update(of=P, skip_locked=True))
#: PostgreSQL: the picked posts' accounts, locked so that two claims running at once
#: never both start a post of one account; then, read afresh, those whose post another
#: claim started meanwhile
_LOCK_ACCOUNTS = Query(
    sa.select(t.accounts.c.id).where(t.accounts.c.id.in_(IDS))
    .order_by(t.accounts.c.id).with_for_update(key_share=True, skip_locked=True))
_STILL_BUSY = Query(_busy(NOW).where(P.c.account_id.in_(IDS)).distinct())
#: whether any post can be claimed now
ANY_DUE = Query(sa.select(P.c.id).where(claimable_clause(NOW)).limit(1))


def one_per_account(c: Connection, picked: Sequence[Any], now: datetime) -> list[Any]:
    """The picks whose accounts this claim could lock and that no concurrent claim has
    started a post of (PostgreSQL; SQLite's claims run one at a time)."""
    wanted = sorted({r["account_id"] for r in picked})
    locked = set(execute(c, _LOCK_ACCOUNTS, {"b_ids": wanted}).scalars())
    busy = set(execute(c, _STILL_BUSY, {"b_ids": wanted, "b_now": now}).scalars())
    return [r for r in picked if r["account_id"] in locked and r["account_id"] not in busy]
