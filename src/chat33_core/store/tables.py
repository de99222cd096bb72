"""The database schema, in SQLAlchemy Core. Alembic migrations are made from it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator

metadata = sa.MetaData(naming_convention={
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every engine (SQLite keeps no offset, so store naive UTC)."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)

    def bind_processor(self, dialect: Any) -> Any:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        # SQLite: straight to the text SQLAlchemy stores (YYYY-MM-DD HH:MM:SS.ffffff),
        # which isoformat writes in one call instead of a %-format of seven fields
        def process(value: datetime | None) -> str | None:
            if value is None:
                return None
            if value.tzinfo is UTC:  # the usual case: the text less its "+00:00"
                return value.isoformat(" ", "microseconds")[:-6]
            if value.tzinfo is None:
                raise ValueError("naive datetime given to the store")
            return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")

        return process


def _id() -> sa.Column[str]:
    return sa.Column("id", sa.String(64), primary_key=True)


def _created() -> sa.Column[datetime]:
    return sa.Column("created_at", UTCDateTime(), nullable=False)


organizations = sa.Table(
    "organizations", metadata, _id(),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    # encrypted with the secret key; signs this organization's webhooks
    sa.Column("webhook_secret_enc", sa.Text, nullable=True),
    _created(),
)

# the secrets a rotation replaced, which still sign deliveries (beside the current one)
# until ``expires_at``: receivers switch to the new secret within that grace period
retired_webhook_secrets = sa.Table(
    "retired_webhook_secrets", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("org_id", sa.String(64), sa.ForeignKey("organizations.id"), nullable=False),
    # encrypted with the secret key, as organizations.webhook_secret_enc
    sa.Column("secret_enc", sa.Text, nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    _created(),  # when it was retired
    sa.Index("ix_retired_webhook_secrets_org", "org_id", "expires_at"),
)

users = sa.Table(
    "users", metadata, _id(),
    sa.Column("org_id", sa.String(64), sa.ForeignKey("organizations.id"), nullable=False),
    sa.Column("email", sa.String(320), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(200), nullable=False),
    _created(),
)

api_keys = sa.Table(
    "api_keys", metadata, _id(),
    sa.Column("org_id", sa.String(64), sa.ForeignKey("organizations.id"), nullable=False),
    sa.Column("user_id", sa.String(64), sa.ForeignKey("users.id"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("key_prefix", sa.String(16), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("scopes", sa.JSON, nullable=False),
    sa.Column("last_used_at", UTCDateTime(), nullable=True),
    sa.Column("expires_at", UTCDateTime(), nullable=True),
    sa.Column("is_active", sa.Boolean, nullable=False, default=True),
    _created(),
    sa.Index("ix_api_keys_org", "org_id"),
)

sessions = sa.Table(
    "sessions", metadata,
    # sha256 of the cookie value; the raw value lives only in the browser
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.String(64), sa.ForeignKey("users.id"), nullable=False),
    sa.Column("csrf_hash", sa.String(64), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    _created(),
)

accounts = sa.Table(
    "accounts", metadata, _id(),
    sa.Column("org_id", sa.String(64), sa.ForeignKey("organizations.id"), nullable=False),
    sa.Column("platform", sa.String(40), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("username", sa.String(200), nullable=True),
    sa.Column("external_id", sa.String(200), nullable=True),
    sa.Column("is_active", sa.Boolean, nullable=False, default=True),
    sa.Column("needs_reconnect", sa.Boolean, nullable=False, default=False),
    sa.Column("metadata", sa.JSON, nullable=False),
    # Fernet token of the JSON credentials (never stored in the clear)
    sa.Column("credentials_enc", sa.Text, nullable=True),
    _created(),
    sa.Index("ix_accounts_org", "org_id", "platform"),
)

posts = sa.Table(
    "posts", metadata, _id(),
    sa.Column("org_id", sa.String(64), sa.ForeignKey("organizations.id"), nullable=False),
    sa.Column("account_id", sa.String(64), sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("platform", sa.String(40), nullable=False),
    sa.Column("account_name", sa.String(200), nullable=False),
    sa.Column("created_by", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("text", sa.Text, nullable=True),
    sa.Column("media_urls", sa.JSON, nullable=False),
    sa.Column("media_ids", sa.JSON, nullable=False),
    sa.Column("media_type", sa.String(16), nullable=True),
    sa.Column("cover_image_url", sa.Text, nullable=True),
    sa.Column("platform_config", sa.JSON, nullable=False),
    sa.Column("callback_url", sa.Text, nullable=True),
    sa.Column("scheduled_at", UTCDateTime(), nullable=True),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("group_id", sa.String(64), nullable=True),
    sa.Column("thread_id", sa.String(64), nullable=True),
    sa.Column("thread_position", sa.Integer, nullable=False, default=0),
    sa.Column("publish_with_head", sa.Boolean, nullable=False, default=False),
    sa.Column("published_at", UTCDateTime(), nullable=True),
    sa.Column("external_post_id", sa.String(200), nullable=True),
    sa.Column("external_post_url", sa.Text, nullable=True),
    sa.Column("error_message", sa.Text, nullable=True),
    sa.Column("retry_count", sa.Integer, nullable=False, default=0),
    # when the worker may take it: max(scheduled_at, backoff); null = now
    sa.Column("next_attempt_at", UTCDateTime(), nullable=True),
    sa.Column("lease_owner", sa.String(100), nullable=True),
    sa.Column("lease_expires_at", UTCDateTime(), nullable=True),
    _created(),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Index("ix_posts_org_created", "org_id", "created_at"),
    sa.Index("ix_posts_due", "status", "next_attempt_at"),
    # partial (migration 0003): most posts have no thread and are not published yet, and
    # a row outside an index costs its insert nothing there
    sa.Index("ix_posts_account_published", "account_id", "published_at",
             sqlite_where=sa.text("published_at IS NOT NULL"),
             postgresql_where=sa.text("published_at IS NOT NULL")),
    sa.Index("ix_posts_thread", "thread_id", "thread_position",
             sqlite_where=sa.text("thread_id IS NOT NULL"),
             postgresql_where=sa.text("thread_id IS NOT NULL")),
)
#: an account's line (migration 0008): the claim reads each account's head from it
#: (store/leases.py), so its cost follows the number of accounts, not the backlog
sa.Index("ix_posts_account_line", posts.c.account_id, posts.c.status,
         sa.func.coalesce(posts.c.scheduled_at, posts.c.created_at), posts.c.id)

media_assets = sa.Table(
    "media_assets", metadata, _id(),
    sa.Column("org_id", sa.String(64), sa.ForeignKey("organizations.id"), nullable=False),
    sa.Column("name", sa.String(300), nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("content_type", sa.String(100), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("source_url", sa.Text, nullable=True),
    sa.Column("info", sa.JSON, nullable=False),
    _created(),
    sa.Index("ix_media_org_url", "org_id", "url"),
)

#: direct uploads (``POST /media/presign``) until they are completed into media_assets
media_uploads = sa.Table(
    "media_uploads", metadata, _id(),
    sa.Column("org_id", sa.String(64), sa.ForeignKey("organizations.id"), nullable=False),
    sa.Column("name", sa.String(300), nullable=False),
    sa.Column("filename", sa.String(200), nullable=False),
    sa.Column("content_type", sa.String(100), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    #: sha256 of the token of the API's own PUT route (the token itself is not kept)
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("completed_at", UTCDateTime, nullable=True),
    _created(),
)

post_logs = sa.Table(
    "post_logs", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("post_id", sa.String(64), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False, default=0),
    sa.Column("event", sa.String(60), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
    _created(),
    sa.Index("ix_post_logs_post", "post_id", "id"),
)

checkpoints = sa.Table(
    "checkpoints", metadata,
    sa.Column("post_id", sa.String(64), primary_key=True),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

rate_limits = sa.Table(
    "rate_limits", metadata,
    # GCRA: one row per key holding the theoretical arrival time
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("tat", UTCDateTime(), nullable=False),
)

# the platforms' request and quota windows (chat33_core.platforms.RateLimit), one row per
# limit and scope (the app, or one account), shared by every worker
platform_limits = sa.Table(
    "platform_limits", metadata,
    # "<platform>:<limit name>:app" or "<platform>:<limit name>:<account id>"
    sa.Column("key", sa.String(300), primary_key=True),
    sa.Column("used", sa.Integer, nullable=False),
    # when the current window closes (the count starts again from 0)
    sa.Column("resets_at", UTCDateTime(), nullable=False),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries", metadata, _id(),
    sa.Column("org_id", sa.String(64), nullable=False),
    sa.Column("post_id", sa.String(64), nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # pending, delivered, failed
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("lease_owner", sa.String(100), nullable=True),
    sa.Column("lease_expires_at", UTCDateTime(), nullable=True),
    sa.Column("delivered_at", UTCDateTime(), nullable=True),
    _created(),
    sa.Index("ix_webhooks_due", "status", "next_attempt_at"),
)

oauth_connections = sa.Table(
    # one attempt to connect (or reconnect) accounts by OAuth; see chat33_core.connecting
    "oauth_connections", metadata, _id(),
    sa.Column("org_id", sa.String(64), sa.ForeignKey("organizations.id"), nullable=False),
    sa.Column("user_id", sa.String(64), nullable=True),
    # the CSRF hash of the browser session that started it (None: an API key did)
    sa.Column("session_binding", sa.String(64), nullable=True),
    sa.Column("platform", sa.String(40), nullable=False),
    # sha256 of the state: the raw value travels only through the browser
    sa.Column("state_hash", sa.String(64), nullable=False, unique=True),
    # Fernet token of the PKCE code verifier
    sa.Column("verifier_enc", sa.Text, nullable=False),
    sa.Column("return_url", sa.Text, nullable=True),
    sa.Column("reconnect_account_id", sa.String(64), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    # what the grant may publish as, public facts only
    sa.Column("targets", sa.JSON, nullable=False),
    # Fernet token of the targets' credentials, kept until one is selected
    sa.Column("targets_enc", sa.Text, nullable=True),
    sa.Column("account_ids", sa.JSON, nullable=False),
    sa.Column("error_code", sa.String(64), nullable=True),
    sa.Column("error_message", sa.Text, nullable=True),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.Column("used_at", UTCDateTime(), nullable=True),
    _created(),
    sa.Index("ix_oauth_connections_org", "org_id", "created_at"),
)
