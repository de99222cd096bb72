"""The platforms' limit windows in the store, shared by every worker process.

Each row counts the units used in one window of one limit for one scope and says when
the window closes. A reservation takes several limits at once, all or nothing, in one
transaction: on PostgreSQL the rows are locked (``FOR UPDATE``, in key order, so two
workers never wait on each other in a cycle); on SQLite the store's write transaction
runs alone. So N workers together never spend more than a window allows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import attrs
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from . import tables as t
from ._sql import Query, execute
from .database import Database

L = t.platform_limits


@attrs.frozen
class Ask:
    """``cost`` units of the window ``key`` (``units`` per window); ``opens_until`` is
    when a window opened now would close."""

    key: str
    units: int
    cost: int
    opens_until: datetime


@attrs.frozen
class Blocked:
    """An ask that does not fit: its window has ``used`` of ``units`` until
    ``resets_at``."""

    key: str
    used: int
    units: int
    resets_at: datetime


def _insert_missing(dialect: str) -> sa.Executable:
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(L)
    return insert.on_conflict_do_nothing(index_elements=[L.c.key])


_INSERTS = {name: Query(_insert_missing(name)) for name in ("postgresql", "sqlite")}
_KEYS: sa.BindParameter[list[str]] = sa.bindparam("b_keys", expanding=True)
_WINDOWS = (sa.select(L.c.key, L.c.used, L.c.resets_at).where(L.c.key.in_(_KEYS))
            .order_by(L.c.key))
_ROWS = Query(_WINDOWS)
_ROWS_LOCKED = Query(_WINDOWS.with_for_update())
_SET = Query(L.update().where(L.c.key == sa.bindparam("b_key")).values(
    used=sa.bindparam("b_used"), resets_at=sa.bindparam("b_resets_at")))


def _rows(c: Connection, store: Database, keys: Sequence[str], now: datetime
          ) -> dict[str, tuple[int, datetime]]:
    """The windows of ``keys`` (created closed where missing), locked for this
    transaction: key -> (used, resets_at)."""
    execute(c, _INSERTS[c.dialect.name], [{"key": k, "used": 0, "resets_at": now}
                                         for k in keys])
    rows = execute(c, _ROWS_LOCKED if store.is_postgres else _ROWS, {"b_keys": list(keys)})
    return {key: (int(used), resets_at) for key, used, resets_at in rows}


def reserve(store: Database, asks: Sequence[Ask], now: datetime) -> list[Blocked]:
    """Spend every ask's cost if all of them fit in their windows; else spend nothing
    and return those that do not fit. A closed window opens again (from 0) first."""
    if not asks:
        return []
    with store.begin() as c:
        current = _rows(c, store, sorted({a.key for a in asks}), now)
        state: dict[str, tuple[int, datetime]] = {}
        blocked = []
        for ask in asks:
            used, resets_at = state.get(ask.key) or current[ask.key]
            if resets_at <= now:  # the window closed: a new one opens now
                used, resets_at = 0, ask.opens_until
            cost = min(ask.cost, ask.units)  # one publish never waits for ever
            if used >= ask.units or used + cost > ask.units:
                blocked.append(Blocked(ask.key, used, ask.units, resets_at))
            state[ask.key] = (used + cost, resets_at)
        if blocked:
            return blocked
        execute(c, _SET, [{"b_key": k, "b_used": used, "b_resets_at": resets_at}
                         for k, (used, resets_at) in state.items()])
    return []


def report(store: Database, key: str, units: int, now: datetime, *, opens_until: datetime,
           remaining: int | None, resets_at: datetime | None) -> None:
    """What the platform says of a window: at least ``units - remaining`` are used (the
    reservations of other workers not yet seen by the platform are kept), and it closes
    at ``resets_at``."""
    with store.begin() as c:
        used, closes = _rows(c, store, [key], now)[key]
        if closes <= now:
            used, closes = 0, opens_until
        if remaining is not None:
            used = max(used, units - max(0, remaining))
        if resets_at is not None and resets_at > now:
            closes = resets_at
        execute(c, _SET, {"b_key": key, "b_used": used, "b_resets_at": closes})


def windows(store: Database, keys: Sequence[str]) -> dict[str, tuple[int, datetime]]:
    """The stored windows of ``keys``: key -> (used, resets_at)."""
    with store.read() as c:
        return {key: (int(used), resets_at)
                for key, used, resets_at in execute(c, _ROWS, {"b_keys": list(keys)})}
