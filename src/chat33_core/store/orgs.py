"""Organizations and their webhook secrets, users and their sessions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs
import sqlalchemy as sa

from ..errors import Conflict, NotFound
from ..models import (
    Organization,
    User,
    utcnow,
)
from . import tables as t
from ._sql import execute
from .database import Database


class Orgs(Database):
    """Organizations, webhook secrets, users and sessions."""

    def add_org(self, org: Organization, webhook_secret_enc: str | None = None) -> Organization:
        with self.begin() as c:
            execute(c, t.organizations.insert().values(
                id=org.id, name=org.name, created_at=org.created_at,
                webhook_secret_enc=webhook_secret_enc))
        return org

    def get_org(self, org_id: str) -> Organization:
        with self.read() as c:
            row = execute(c, sa.select(t.organizations).where(t.organizations.c.id == org_id)
                            ).mapping()
        if row is None:
            raise NotFound(f"organization {org_id} not found")
        return Organization(id=row["id"], name=row["name"], created_at=row["created_at"])

    def find_org_by_name(self, name: str) -> Organization | None:
        """The organization called ``name``, in any case ("acme" finds "Acme"); an exact
        match first, then the oldest."""
        orgs = t.organizations
        with self.read() as c:
            row = execute(c, sa.select(orgs).where(sa.func.lower(orgs.c.name) == name.lower())
                            .order_by((orgs.c.name != name), orgs.c.created_at)
                            ).mapping()
        return None if row is None else Organization(id=row["id"], name=row["name"],
                                                      created_at=row["created_at"])

    def webhook_secrets_enc(self, org_id: str, now: datetime
                            ) -> tuple[str | None, list[tuple[str, datetime]]]:
        """The organization's current webhook secret (encrypted; None before its first
        use) and the retired ones still in their grace period at ``now``, as
        (encrypted secret, expiry), latest expiry first."""
        o, r = t.organizations, t.retired_webhook_secrets
        with self.read() as c:
            current = execute(c, sa.select(o.c.webhook_secret_enc)
                                .where(o.c.id == org_id)).scalar()
            rows = execute(c, sa.select(r.c.secret_enc, r.c.expires_at)
                             .where(r.c.org_id == org_id, r.c.expires_at > now)
                             .order_by(r.c.expires_at.desc(), r.c.id.desc())).rows
        return current, [(secret, expires) for secret, expires in rows]

    def replace_webhook_secret_enc(self, org_id: str, value: str, *,
                                   keep_until: datetime | None, now: datetime) -> None:
        """Make ``value`` the organization's webhook secret. With ``keep_until`` (after
        ``now``), the secret it replaces keeps signing until then, and so do the retired
        ones still in their grace period; without, every older secret ends at once."""
        o, r = t.organizations, t.retired_webhook_secrets
        with self.begin() as c:
            q = sa.select(o.c.webhook_secret_enc).where(o.c.id == org_id)
            row = execute(c, q.with_for_update() if self.is_postgres else q).first()
            if row is None:
                raise NotFound(f"organization {org_id} not found")
            keep = keep_until is not None and keep_until > now
            execute(c, r.delete().where(r.c.org_id == org_id, *(
                [r.c.expires_at <= now] if keep else [])))
            if keep and row[0] is not None:
                execute(c, r.insert().values(org_id=org_id, secret_enc=row[0],
                                            expires_at=keep_until, created_at=now))
            execute(c, o.update().where(o.c.id == org_id).values(webhook_secret_enc=value))

    def add_user(self, user: User) -> User:
        try:
            with self.begin() as c:
                execute(c, t.users.insert().values(**attrs.asdict(user)))
        except Conflict:
            raise Conflict(f"a user with the email {user.email!r} already exists") from None
        return user

    def find_user_by_email(self, email: str) -> User | None:
        with self.read() as c:
            row = execute(c, sa.select(t.users).where(t.users.c.email == email.lower())
                            ).mapping()
        return None if row is None else User(**row)

    def list_users(self, org_id: str | None = None) -> list[User]:
        """Users, oldest first; of one organization when ``org_id`` is given."""
        q = sa.select(t.users)
        if org_id is not None:
            q = q.where(t.users.c.org_id == org_id)
        with self.read() as c:
            rows = execute(c, q.order_by(t.users.c.created_at, t.users.c.id)).mappings()
            return [User(**r) for r in rows]

    def set_user_password(self, user_id: str, password_hash: str) -> int:
        """Replace the user's password hash and end every session of the user (they
        sign in again with the new password); returns the number of sessions ended."""
        with self.begin() as c:
            if not execute(c, t.users.update().where(t.users.c.id == user_id)
                             .values(password_hash=password_hash)).rowcount:
                raise NotFound("user not found")
            return int(execute(c, t.sessions.delete()
                                 .where(t.sessions.c.user_id == user_id)).rowcount)

    def get_user(self, user_id: str) -> User:
        with self.read() as c:
            row = execute(c, sa.select(t.users).where(t.users.c.id == user_id)).mapping()
        if row is None:
            raise NotFound("user not found")
        return User(**row)

    # --- sessions -------------------------------------------------------------------

    def add_session(self, session_hash: str, user_id: str, csrf_hash: str,
                    expires_at: datetime) -> None:
        with self.begin() as c:
            execute(c, t.sessions.insert().values(id=session_hash, user_id=user_id,
                                                 csrf_hash=csrf_hash, expires_at=expires_at,
                                                 created_at=utcnow()))

    def get_session(self, session_hash: str) -> dict[str, Any] | None:
        with self.read() as c:
            row = execute(c, sa.select(t.sessions).where(t.sessions.c.id == session_hash)
                            ).mapping()
        return None if row is None else dict(row)

    def delete_session(self, session_hash: str) -> None:
        with self.begin() as c:
            execute(c, t.sessions.delete().where(t.sessions.c.id == session_hash))

