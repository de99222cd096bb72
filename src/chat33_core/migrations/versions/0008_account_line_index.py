"""an index on each account's line of posts, for the fair claim

``ix_posts_account_line`` (account_id, status, coalesce(scheduled_at, created_at), id):
the claim finds the head of each account's line by reading this index from the account's
first post on and stopping at the first due one, instead of reading every due post, so a
claim costs the same with 1,000 or 50,000 posts due (docs/architecture.md, "Fair
claiming").

Revision ID: 0008_account_line_index
Revises: 0007_platform_limits
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_account_line_index"
down_revision = "0007_platform_limits"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_posts_account_line", "posts", [
        "account_id", "status", sa.text("coalesce(scheduled_at, created_at)"), "id"])


def downgrade() -> None:
    op.drop_index("ix_posts_account_line", table_name="posts")
