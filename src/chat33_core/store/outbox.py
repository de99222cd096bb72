"""The webhook outbox: deliveries waiting to be sent, leased to the worker sending them.

A delivery is written in the transaction that settles its post (see
:meth:`.leases.Leases.write_results`), so a post's final state and its webhook land
together or not at all. The payload is the caller's (:mod:`chat33_core.webhooks` owns
its format).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..models import LogEvent, Post, new_id
from . import tables as t
from ._sql import execute
from .database import Database
from .posts import insert_logs

W = t.webhook_deliveries


def insert_deliveries(c: Connection, hooks: Sequence[tuple[Post, Mapping[str, Any]]],
                      now: datetime) -> list[str]:
    """Add a delivery for each (post, payload) whose post has a ``callback_url``, due
    ``now``, in ``c``'s transaction; returns their ids (also their ``webhook-id``)."""
    rows: list[dict[str, Any]] = [{"id": new_id("msg"), "org_id": post.org_id, "post_id": post.id,
             "url": post.callback_url, "payload": dict(payload), "status": "pending",
             "attempts": 0, "next_attempt_at": now, "created_at": now}
            for post, payload in hooks if post.callback_url]
    if rows:
        execute(c, W.insert(), rows)
    return [str(r["id"]) for r in rows]


class Outbox(Database):
    """Webhook deliveries."""

    def claim_deliveries(self, owner: str, limit: int, now: datetime, expires: datetime
                         ) -> list[dict[str, Any]]:
        """Lease up to ``limit`` due deliveries (pending, due, and not leased by a live
        worker) to ``owner`` until ``expires``. Rows are locked with SKIP LOCKED on
        PostgreSQL; nothing due, no write lock taken."""
        q = (sa.select(W.c.id).where(
            W.c.status == "pending", W.c.next_attempt_at <= now,
            sa.or_(W.c.lease_expires_at.is_(None), W.c.lease_expires_at < now))
            .order_by(W.c.next_attempt_at).limit(limit))
        with self.read() as c:
            if execute(c, q.limit(1)).first() is None:
                return []
        with self.begin() as c:
            if self.is_postgres:
                q = q.with_for_update(skip_locked=True)
            ids = list(execute(c, q).scalars())
            if not ids:
                return []
            execute(c, W.update().where(W.c.id.in_(ids)).values(
                lease_owner=owner, lease_expires_at=expires))
            rows = execute(c, sa.select(W).where(W.c.id.in_(ids))).mappings()
        return [dict(r) for r in rows]

    def next_delivery_due(self) -> datetime | None:
        with self.read() as c:
            due: datetime | None = execute(c, sa.select(sa.func.min(W.c.next_attempt_at))
                                           .where(W.c.status == "pending")).scalar()
        return due

    def record_delivery(self, owner: str, delivery_id: str, values: Mapping[str, Any],
                        log: LogEvent) -> bool:
        """Store a delivery attempt's outcome (``values`` of its columns) and ``log``, if
        ``owner`` still holds the delivery's lease; True if stored."""
        with self.begin() as c:
            n = execute(c, W.update().where(W.c.id == delivery_id, W.c.lease_owner == owner)
                          .values(**values)).rowcount
            if n:
                insert_logs(c, self.engine.dialect, [log])
        return bool(n)


__all__ = ["Outbox", "insert_deliveries"]
