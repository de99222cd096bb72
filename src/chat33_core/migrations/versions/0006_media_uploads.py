"""direct media uploads: the pending uploads of ``POST /media/presign``

Revision ID: 0006_media_uploads
Revises: 0005_oauth_connections
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import chat33_core.store.tables

revision = "0006_media_uploads"
down_revision = "0005_oauth_connections"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "media_uploads",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", chat33_core.store.tables.UTCDateTime(), nullable=False),
        sa.Column("completed_at", chat33_core.store.tables.UTCDateTime(), nullable=True),
        sa.Column("created_at", chat33_core.store.tables.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"],
                                name=op.f("fk_media_uploads_org_id_organizations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_media_uploads")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_media_uploads_token_hash")),
    )


def downgrade() -> None:
    op.drop_table("media_uploads")
