"""platform limits: the platforms' request and quota windows, shared by every worker

One row per declared limit and scope (``<platform>:<limit>:app`` or
``<platform>:<limit>:<account id>``): the units used in the current window and when it
closes. Downgrading drops the table: the counts start again from nothing.

Revision ID: 0007_platform_limits
Revises: 0006_media_uploads
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import chat33_core.store.tables

revision = "0007_platform_limits"
down_revision = "0006_media_uploads"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "platform_limits",
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.Column("resets_at", chat33_core.store.tables.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_platform_limits")),
    )


def downgrade() -> None:
    op.drop_table("platform_limits")
