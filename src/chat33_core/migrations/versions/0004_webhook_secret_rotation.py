"""retired webhook secrets: old secrets keep signing deliveries for a grace period

A rotation moves the organization's current secret (``organizations.webhook_secret_enc``)
into ``retired_webhook_secrets`` with the instant it stops being used; until then every
delivery carries a signature with it as well as with the new secret (Standard Webhooks
allows several space-separated ``v1,<sig>`` entries), so receivers can switch secrets
without losing a delivery. Downgrading drops the table: only the current secret signs.

Revision ID: 0004_webhook_secret_rotation
Revises: 0003_partial_post_indexes
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import chat33_core.store.tables

revision = "0004_webhook_secret_rotation"
down_revision = "0003_partial_post_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "retired_webhook_secrets",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("secret_enc", sa.Text(), nullable=False),
        sa.Column("expires_at", chat33_core.store.tables.UTCDateTime(), nullable=False),
        sa.Column("created_at", chat33_core.store.tables.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"],
                                name=op.f("fk_retired_webhook_secrets_org_id_organizations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retired_webhook_secrets")),
    )
    op.create_index("ix_retired_webhook_secrets_org", "retired_webhook_secrets",
                    ["org_id", "expires_at"])


def downgrade() -> None:
    op.drop_index("ix_retired_webhook_secrets_org", table_name="retired_webhook_secrets")
    op.drop_table("retired_webhook_secrets")
