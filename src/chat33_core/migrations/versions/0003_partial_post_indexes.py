"""partial indexes on posts for columns that most posts leave empty

``ix_posts_thread`` (thread_id, thread_position) and ``ix_posts_account_published``
(account_id, published_at) now index only the rows that have a thread or a publication
time: the queries that use them (a thread's posts; an account's posts published since
an instant) name such rows only. A new post without a thread changes two index pages
fewer when it is inserted, on SQLite and on PostgreSQL alike.

Revision ID: 0003_partial_post_indexes
Revises: 0002_worker_notify
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_partial_post_indexes"
down_revision = "0002_worker_notify"
branch_labels = None
depends_on = None

_PARTIAL = {
    "ix_posts_thread": (["thread_id", "thread_position"], "thread_id IS NOT NULL"),
    "ix_posts_account_published": (["account_id", "published_at"],
                                   "published_at IS NOT NULL"),
}


def upgrade() -> None:
    for name, (columns, where) in _PARTIAL.items():
        op.drop_index(name, table_name="posts")
        op.create_index(name, "posts", columns, sqlite_where=sa.text(where),
                        postgresql_where=sa.text(where))


def downgrade() -> None:
    for name, (columns, _) in _PARTIAL.items():
        op.drop_index(name, table_name="posts")
        op.create_index(name, "posts", columns)
