"""oauth connections: attempts to connect accounts by OAuth 2

One row per attempt (``POST /accounts/connect`` or ``/accounts/{id}/reconnect``): the
hash of its ``state``, the encrypted PKCE verifier, the organization (and browser
session) it is bound to, its expiry, and what it ended as. Downgrading drops the table.

Revision ID: 0005_oauth_connections
Revises: 0004_webhook_secret_rotation
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import chat33_core.store.tables

revision = "0005_oauth_connections"
down_revision = "0004_webhook_secret_rotation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oauth_connections",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=True),
        sa.Column("session_binding", sa.String(length=64), nullable=True),
        sa.Column("platform", sa.String(length=40), nullable=False),
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("verifier_enc", sa.Text(), nullable=False),
        sa.Column("return_url", sa.Text(), nullable=True),
        sa.Column("reconnect_account_id", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("targets", sa.JSON(), nullable=False),
        sa.Column("targets_enc", sa.Text(), nullable=True),
        sa.Column("account_ids", sa.JSON(), nullable=False),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("expires_at", chat33_core.store.tables.UTCDateTime(), nullable=False),
        sa.Column("used_at", chat33_core.store.tables.UTCDateTime(), nullable=True),
        sa.Column("created_at", chat33_core.store.tables.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"],
                                name=op.f("fk_oauth_connections_org_id_organizations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_connections")),
        sa.UniqueConstraint("state_hash", name=op.f("uq_oauth_connections_state_hash")),
    )
    op.create_index("ix_oauth_connections_org", "oauth_connections",
                    ["org_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_oauth_connections_org", table_name="oauth_connections")
    op.drop_table("oauth_connections")
