"""OAuth connections: the ``oauth_connections`` rows and the accounts a grant creates or
updates (see :mod:`chat33_core.connecting`).

A connection is found by the sha256 of its ``state`` and claimed once: the claim is a
single ``UPDATE ... WHERE used_at IS NULL``, so two callbacks racing with one ``state``
cannot both go on.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ..errors import NotFound
from ..models import Account, Connection, PostStatus, utcnow
from . import tables as t
from ._sql import execute
from .database import Database

_PUBLIC = [c for c in t.oauth_connections.c
           if c.name not in ("state_hash", "verifier_enc", "targets_enc", "session_binding")]
_ACCOUNT = [c for c in t.accounts.c if c.name != "credentials_enc"]
#: how the worker's message of a post waiting for its account's reconnection begins
WAITING_PREFIX = "waiting for the account to be reconnected"


def _connection(row: Any) -> Connection:
    return Connection(**{c.name: row[c.name] for c in _PUBLIC})


class Connections(Database):
    """``oauth_connections`` and the accounts they make."""

    def add_connection(self, connection: Connection, *, state_hash: str, verifier_enc: str,
            session_binding: str | None) -> Connection:
        values = {c.name: getattr(connection, c.name) for c in _PUBLIC}
        with self.begin() as c:
            execute(c, t.oauth_connections.insert().values(
                **values, state_hash=state_hash, verifier_enc=verifier_enc,
                session_binding=session_binding))
        return connection

    def get_connection(self, connection_id: str, org_id: str) -> Connection:
        q = sa.select(*_PUBLIC).where(t.oauth_connections.c.id == connection_id,
                                      t.oauth_connections.c.org_id == org_id)
        with self.read() as c:
            row = execute(c, q).mapping()
        if row is None:
            raise NotFound(f"connection {connection_id} not found")
        return _connection(row)

    def connection_by_state(self, state_hash: str) -> tuple[Connection, dict[str, Any]] | None:
        """The connection of a ``state`` and its secrets (``verifier_enc``,
        ``session_binding``), or None."""
        oc = t.oauth_connections.c
        q = sa.select(*_PUBLIC, oc.verifier_enc, oc.session_binding).where(
            oc.state_hash == state_hash)
        with self.read() as c:
            row = execute(c, q).mapping()
        if row is None:
            return None
        return _connection(row), {"verifier_enc": row["verifier_enc"],
                                  "session_binding": row["session_binding"]}

    def claim_connection(self, connection_id: str, now: datetime) -> bool:
        """Mark the connection's ``state`` used; False when it already was."""
        oc = t.oauth_connections.c
        with self.begin() as c:
            return bool(execute(c, t.oauth_connections.update().where(
                oc.id == connection_id, oc.used_at.is_(None)).values(used_at=now)).rowcount)

    def update_connection(self, connection_id: str, **values: Any) -> None:
        """Set ``status``, ``targets``, ``targets_enc``, ``account_ids``, ``error_code``,
        ``error_message``..."""
        with self.begin() as c:
            execute(c, t.oauth_connections.update()
                      .where(t.oauth_connections.c.id == connection_id).values(**values))

    def connection_targets_enc(self, connection_id: str) -> str | None:
        with self.read() as c:
            found: str | None = execute(c, sa.select(t.oauth_connections.c.targets_enc).where(
                t.oauth_connections.c.id == connection_id)).scalar()
        return found

    def select_connection_once(self, connection_id: str) -> bool:
        """Move a ``select`` connection on (to ``connecting``); False when another
        request did first or it is not waiting for a selection."""
        oc = t.oauth_connections.c
        with self.begin() as c:
            return bool(execute(c, t.oauth_connections.update().where(
                oc.id == connection_id, oc.status == "select").values(
                status="connecting")).rowcount)

    # --- the accounts a grant connects ------------------------------------------------

    def find_account_by_external_id(self, org_id: str, platform: str, external_id: str
                                    ) -> Account | None:
        """The organization's account of that platform identity: the active one, else
        the latest removed one (connecting it again brings it back)."""
        a = t.accounts.c
        q = (sa.select(*_ACCOUNT).where(a.org_id == org_id, a.platform == platform,
                                        a.external_id == external_id)
             .order_by(a.is_active.desc(), a.created_at.desc()).limit(1))
        with self.read() as c:
            row = execute(c, q).mapping()
        return None if row is None else Account(**row)

    def save_connected_accounts(self, new: Sequence[tuple[Account, str]],
                      updated: Sequence[tuple[Account, str]]) -> None:
        """Insert ``new`` and update ``updated`` accounts with their encrypted
        credentials, in one transaction: an update makes the account active again,
        with ``needs_reconnect`` cleared."""
        with self.begin() as c:
            for account, enc in new:
                execute(c, t.accounts.insert().values(
                    **{col.name: getattr(account, col.name) for col in _ACCOUNT},
                    credentials_enc=enc))
            for account, enc in updated:
                execute(c, t.accounts.update().where(t.accounts.c.id == account.id).values(
                    name=account.name, username=account.username,
                    metadata=account.metadata, is_active=True, needs_reconnect=False,
                    credentials_enc=enc))
            release_waiting(c, [a.id for a, _ in updated])

    def release_waiting_posts(self, account_ids: Sequence[str]) -> None:
        with self.begin() as c:
            release_waiting(c, account_ids)


def release_waiting(conn: Any, account_ids: Sequence[str]) -> int:
    """Make the QUEUED posts that wait for these accounts' reconnection due now."""
    if not account_ids:
        return 0
    p = t.posts.c
    return int(execute(conn, t.posts.update().where(
        p.account_id.in_(list(account_ids)), p.status == PostStatus.QUEUED.value,
        p.error_message.like(WAITING_PREFIX + "%")).values(
        next_attempt_at=utcnow(), error_message=None)).rowcount)


__all__ = ["WAITING_PREFIX", "Connections", "release_waiting"]
