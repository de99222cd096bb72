"""API keys: the key every request presents, read with the accounts it names."""

from __future__ import annotations

import functools
import logging
import sqlite3
from collections.abc import Sequence
from datetime import datetime

import attrs
import sqlalchemy as sa

from ..errors import NotFound
from ..models import (
    Account,
    ApiKey,
)
from . import tables as t
from ._sql import Interned, Query, Rows, execute
from .accounts import JOINED_ACCOUNTS, account_of
from .database import Database

log = logging.getLogger(__name__)


_API_KEYS = Rows(list(t.api_keys.c))
_FIND_API_KEY = Query(sa.select(*_API_KEYS.columns).where(
    t.api_keys.c.key_hash == sa.bindparam("key_hash")))
_api_key_of = Interned(lambda row: ApiKey(**_API_KEYS.mapping(row)))


@functools.cache
def _find_api_key_with_accounts(n: int) -> Query:
    """An API key by its hash, with the accounts of its organization among ``n`` ids
    (id0, id1...): a row per account found, or one row with no account."""
    accounts = t.accounts
    joined = t.api_keys.outerjoin(accounts, sa.and_(
        accounts.c.org_id == t.api_keys.c.org_id,
        accounts.c.id.in_([sa.bindparam(f"id{i}") for i in range(n)])))
    return Query(sa.select(*_API_KEYS.columns, *JOINED_ACCOUNTS.columns)
                  .select_from(joined).where(t.api_keys.c.key_hash == sa.bindparam("key_hash")))


_TOUCH_KEY = Query(t.api_keys.update().where(t.api_keys.c.id == sa.bindparam("k"))
                    .values(last_used_at=sa.bindparam("when")))


class Keys(Database):
    """API keys."""

    def add_api_key(self, key: ApiKey) -> ApiKey:
        with self.begin() as c:
            execute(c, t.api_keys.insert().values(**attrs.asdict(key)))
        return key

    def find_api_key_by_hash(self, key_hash: str) -> ApiKey | None:
        rows = self._fetch(_FIND_API_KEY, {"key_hash": key_hash})
        return _api_key_of(rows[0]) if rows else None

    def find_api_key_with_accounts(self, key_hash: str, account_ids: Sequence[str]
                                   ) -> tuple[ApiKey | None, dict[str, Account]]:
        """:meth:`find_api_key_by_hash` and :meth:`get_accounts` for the key's
        organization in one query (a request that names its accounts reads them with
        its key). No key: (None, {})."""
        ids = list(dict.fromkeys(account_ids))
        if not ids:
            return self.find_api_key_by_hash(key_hash), {}
        params = {f"id{i}": account_id for i, account_id in enumerate(ids)}
        params["key_hash"] = key_hash
        rows = self._fetch(_find_api_key_with_accounts(len(ids)), params)
        if not rows:
            return None, {}
        split = len(_API_KEYS.names)
        key = _api_key_of(rows[0][:split])
        accounts = [account_of(row[split:]) for row in rows if row[split] is not None]
        return key, {a.id: a for a in accounts}

    def list_api_keys(self, org_id: str, user_id: str | None = None) -> list[ApiKey]:
        q = sa.select(t.api_keys).where(t.api_keys.c.org_id == org_id)
        if user_id is not None:
            q = q.where(t.api_keys.c.user_id == user_id)
        with self.read() as c:
            rows = execute(c, q.order_by(t.api_keys.c.created_at, t.api_keys.c.id)).mappings()
            return [ApiKey(**r) for r in rows]

    def get_api_key(self, key_id: str) -> ApiKey:
        with self.read() as c:
            row = execute(c, sa.select(t.api_keys).where(t.api_keys.c.id == key_id)
                          ).mapping()
        if row is None:
            raise NotFound(f"API key {key_id} not found")
        return ApiKey(**row)

    def revoke_api_key(self, org_id: str, key_id: str) -> ApiKey:
        with self.begin() as c:
            n = execute(c, t.api_keys.update()
                          .where(t.api_keys.c.id == key_id, t.api_keys.c.org_id == org_id)
                          .values(is_active=False)).rowcount
            if not n:
                raise NotFound(f"API key {key_id} not found")
            row = execute(c, sa.select(t.api_keys).where(t.api_keys.c.id == key_id)
                          ).mappings()[0]
        return ApiKey(**row)

    def touch_api_key(self, key_id: str, when: datetime) -> None:
        """Note when a key was last used: bookkeeping, so on SQLite it waits only
        ``QUICK_TIMEOUT_S`` for the write lock and is skipped (logged) when the database
        is locked, rather than holding a read request for the full busy timeout."""
        if self._readers is None:
            with self.begin() as c:
                self._run(c, _TOUCH_KEY, {"k": key_id, "when": when})
            return
        try:
            with self._quick_write() as c:
                self._run(c, _TOUCH_KEY, {"k": key_id, "when": when})
        except sqlite3.OperationalError as exc:
            log.warning("API key %s: last use not recorded (%s)", key_id, exc)

