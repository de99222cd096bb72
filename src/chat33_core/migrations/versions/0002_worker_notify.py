"""worker wake-up: NOTIFY chat33_posts when a post becomes QUEUED (PostgreSQL only)

Workers LISTEN on the channel so a post created (or re-queued) by any process on any
machine starts within milliseconds instead of at the next poll. SQLite has no
notifications: its workers poll briefly instead. No table changes.

Revision ID: 0002_worker_notify
Revises: 0001
"""
from __future__ import annotations

from alembic import op

revision = "0002_worker_notify"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("""
        CREATE OR REPLACE FUNCTION chat33_notify_posts() RETURNS trigger AS $$
        BEGIN
            -- one empty payload: PostgreSQL folds repeats within a transaction into one
            PERFORM pg_notify('chat33_posts', '');
            RETURN NULL;
        END;
        $$ LANGUAGE plpgsql
    """)
    op.execute("""
        CREATE TRIGGER chat33_posts_queued
        AFTER INSERT OR UPDATE OF status, next_attempt_at, scheduled_at ON posts
        FOR EACH ROW WHEN (NEW.status = 'QUEUED')
        EXECUTE FUNCTION chat33_notify_posts()
    """)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS chat33_posts_queued ON posts")
    op.execute("DROP FUNCTION IF EXISTS chat33_notify_posts()")
