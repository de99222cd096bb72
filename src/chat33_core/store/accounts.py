"""Social accounts and their encrypted credentials."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..errors import NotFound
from ..models import (
    Account,
    LogEvent,
    PostStatus,
    utcnow,
)
from . import tables as t
from ._sql import Interned, Query, Rows, execute
from .database import Database
from .posts import insert_logs

ACCOUNT_COLUMNS = [col for col in t.accounts.c if col.name != "credentials_enc"]
ACCOUNTS = Rows(ACCOUNT_COLUMNS)
JOINED_ACCOUNTS = Rows(ACCOUNT_COLUMNS, label_prefix="account_")
account_of = Interned(lambda row: Account(**ACCOUNTS.mapping(row)))


@functools.cache
def _get_accounts(n: int) -> Query:
    """The accounts of an organization among ``n`` ids (bound as id0, id1...)."""
    return Query(sa.select(*ACCOUNTS.columns).where(
        t.accounts.c.id.in_([sa.bindparam(f"id{i}") for i in range(n)]),
        t.accounts.c.org_id == sa.bindparam("org_id")))


@functools.cache
def _list_accounts(by_platform: bool, active_only: bool) -> Query:
    """An organization's accounts, oldest first (``org_id``; ``platform`` when
    ``by_platform``)."""
    q = sa.select(*ACCOUNTS.columns).where(t.accounts.c.org_id == sa.bindparam("org_id"))
    if by_platform:
        q = q.where(t.accounts.c.platform == sa.bindparam("platform"))
    if active_only:
        q = q.where(t.accounts.c.is_active.is_(True))
    return Query(q.order_by(t.accounts.c.created_at, t.accounts.c.id))


_GET_ACCOUNT = {by_org: Query(sa.select(*ACCOUNTS.columns).where(
    t.accounts.c.id == sa.bindparam("id"),
    *([t.accounts.c.org_id == sa.bindparam("org_id")] if by_org else [])))
    for by_org in (False, True)}
#: an account's columns and then its encrypted credentials (see with_credentials)
ACCOUNTS_WITH_CREDENTIALS = sa.select(*ACCOUNTS.columns, t.accounts.c.credentials_enc)
_WITH_CREDENTIALS = Query(ACCOUNTS_WITH_CREDENTIALS.where(
    t.accounts.c.id == sa.bindparam("id")))


def with_credentials(row: Sequence[Any]) -> tuple[Account, str | None]:
    """A row of :data:`ACCOUNTS_WITH_CREDENTIALS` as (account, encrypted credentials)."""
    return account_of(row[:-1]), row[-1]
_CREDENTIALS_OF = sa.select(t.accounts.c.credentials_enc).where(
    t.accounts.c.id == sa.bindparam("id"))
_CREDENTIALS = Query(_CREDENTIALS_OF)
_CREDENTIALS_LOCKED = Query(_CREDENTIALS_OF.with_for_update())


def _replace_credentials(c: Connection, account_id: str, value: str,
                         expected: str | None) -> bool:
    q = t.accounts.update().where(t.accounts.c.id == account_id)
    if expected is not None:
        q = q.where(t.accounts.c.credentials_enc == expected)
    return bool(execute(c, q.values(credentials_enc=value, needs_reconnect=False)).rowcount)


@attrs.define
class HeldCredentials:
    """An account's encrypted credentials as :meth:`Accounts.credentials_held` read
    them (None: the account has none, or is gone)."""

    _store: Accounts
    account_id: str
    current: str | None
    _conn: Connection | None = None

    def replace(self, value: str) -> bool:
        """Store ``value`` if the stored credentials are still :attr:`current`; True if
        stored."""
        if self._conn is not None:
            return _replace_credentials(self._conn, self.account_id, value, self.current)
        return self._store.set_account_credentials_enc(self.account_id, value,
                                                       expected=self.current)


class Accounts(Database):
    """Accounts."""

    def add_account(self, account: Account, credentials_enc: str | None) -> Account:
        with self.begin() as c:
            execute(c, t.accounts.insert().values(**attrs.asdict(account),
                                                 credentials_enc=credentials_enc))
        return account

    def get_account(self, account_id: str, org_id: str | None = None) -> Account:
        rows = self._fetch(_GET_ACCOUNT[org_id is not None],
                           {"id": account_id, "org_id": org_id})
        if not rows:
            raise NotFound(f"account {account_id} not found")
        return account_of(rows[0])  # type: ignore[no-any-return]

    def account_with_credentials(self, account_id: str) -> tuple[Account, str | None]:
        """The account and its encrypted credentials, in one read."""
        rows = self._fetch(_WITH_CREDENTIALS, {"id": account_id})
        if not rows:
            raise NotFound(f"account {account_id} not found")
        return with_credentials(rows[0])

    @contextmanager
    def credentials_held(self, account_id: str) -> Iterator[HeldCredentials]:
        """The account's encrypted credentials, held for a refresh: on PostgreSQL the
        account row stays locked (across machines) until the block ends, and
        :meth:`HeldCredentials.replace` writes in that transaction; on SQLite, where
        holding the database's only write lock during an HTTP call would stall every
        writer, they are read, and replaced compare-and-set in a transaction of its
        own."""
        if not self.is_postgres:
            held = HeldCredentials(self, account_id, self.account_credentials_enc(account_id))
            yield held
            return
        with self.begin() as c:
            current = execute(c, _CREDENTIALS_LOCKED, {"id": account_id}).scalar()
            yield HeldCredentials(self, account_id, current, c)

    def get_accounts(self, account_ids: Sequence[str], org_id: str) -> dict[str, Account]:
        """The accounts of ``org_id`` among ``account_ids``, by id, in one query (ids of
        other organizations and unknown ids are simply absent)."""
        if not account_ids:
            return {}
        ids = list(dict.fromkeys(account_ids))
        params = {f"id{i}": account_id for i, account_id in enumerate(ids)}
        params["org_id"] = org_id
        accounts = [account_of(r) for r in self._fetch(_get_accounts(len(ids)), params)]
        return {a.id: a for a in accounts}

    def list_accounts(self, org_id: str, platform: str | None = None,
                      active_only: bool = False) -> list[Account]:
        params = {"org_id": org_id, "platform": platform or None}
        rows = self._fetch(_list_accounts(bool(platform), active_only), params)
        return [account_of(r) for r in rows]

    def account_credentials_enc(self, account_id: str) -> str | None:
        with self.read() as c:
            found: str | None = execute(c, _CREDENTIALS, {"id": account_id}).scalar()
        return found

    def set_account_credentials_enc(self, account_id: str, value: str,
                                    expected: str | None = None) -> bool:
        """Replace the credentials; with ``expected``, only if they are still those (a
        rotating refresh token must not be overwritten by a stale writer)."""
        with self.begin() as c:
            return _replace_credentials(c, account_id, value, expected)

    def rename_account(self, org_id: str, account_id: str, name: str) -> Account:
        with self.begin() as c:
            if not execute(c, t.accounts.update().where(
                    t.accounts.c.id == account_id, t.accounts.c.org_id == org_id)
                    .values(name=name)).rowcount:
                raise NotFound(f"account {account_id} not found")
        return self.get_account(account_id, org_id=org_id)

    def remove_account(self, org_id: str, account_id: str, *, cancel_as: PostStatus,
                       reason: str) -> tuple[Account, list[str]]:
        """Deactivate the account and forget its credentials; its QUEUED posts take the
        status ``cancel_as`` with a log saying ``reason``; other posts (published ones
        included) stay as they are. One transaction. Returns the account and the ids of
        the posts cancelled (those still QUEUED when it ran: a post a worker has just
        claimed is left to it)."""
        a, p = t.accounts, t.posts
        now = utcnow()
        with self.begin() as c:
            if not execute(c, a.update().where(a.c.id == account_id, a.c.org_id == org_id)
                             .values(is_active=False, credentials_enc=None,
                                     needs_reconnect=False)).rowcount:
                raise NotFound(f"account {account_id} not found")
            cancelled = list(execute(c,
                p.update().where(p.c.account_id == account_id, p.c.org_id == org_id,
                                 p.c.status == PostStatus.QUEUED.value)
                .values(status=cancel_as.value, next_attempt_at=None, updated_at=now)
                .returning(p.c.id)).scalars())
            insert_logs(c, self.engine.dialect, [
                LogEvent(id=None, post_id=post_id, event="cancelled", message=reason,
                         created_at=now) for post_id in cancelled])
        return self.get_account(account_id, org_id=org_id), sorted(cancelled)

