"""Posts, their logs and their checkpoints."""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from ..errors import Conflict, NotFound
from ..models import (
    LogEvent,
    MediaType,
    Post,
    PostStatus,
    utcnow,
)
from . import tables as t
from ._sql import Query, Rows, execute, run_args
from .database import Database
from .media import media_kept


def row_to_post(row: Any) -> Post:
    """A ``posts`` row as a Post."""
    data = dict(row)
    data["status"] = PostStatus(data["status"])
    data["media_type"] = MediaType(data["media_type"]) if data["media_type"] else None
    return Post(**data)


class PostReader(Rows):
    """``posts`` rows as tuples of chosen columns, or (all of them) as Posts, made
    positionally: the table's columns and the model's fields are the same names in the
    same order (a test keeps them so)."""

    def __init__(self, names: Sequence[str]) -> None:
        super().__init__([t.posts.c[name] for name in names])

    def post(self, row: Sequence[Any]) -> Post:
        values = self.values(row)
        values[_STATUS_AT] = STATUSES[values[_STATUS_AT]]
        media_type = values[_MEDIA_TYPE_AT]
        values[_MEDIA_TYPE_AT] = MEDIA_TYPES[media_type] if media_type else None
        return Post(*values)


@functools.cache
def reader(names: tuple[str, ...]) -> PostReader:
    return PostReader(names)


POST_COLUMNS = tuple(c.name for c in t.posts.c)
_STATUS_AT = POST_COLUMNS.index("status")
_MEDIA_TYPE_AT = POST_COLUMNS.index("media_type")
POSTS = reader(POST_COLUMNS)
STATUSES = {s.value: s for s in PostStatus}
MEDIA_TYPES = {m.value: m for m in MediaType}

LOG_COLUMNS = tuple(c.name for c in t.post_logs.c if c.name != "id")
INSERT_POSTS = Query(t.posts.insert(), POST_COLUMNS)
INSERT_LOGS = Query(t.post_logs.insert(), LOG_COLUMNS)
#: Post attributes stored as their enum's value
ENUM_VALUES: Mapping[str, Callable[[Any], Any]] = {
    "status": operator.attrgetter("value"), "media_type": operator.attrgetter("value")}
NOTHING: Mapping[str, Callable[[Any], Any]] = {}


#: a FAILED post back in the queue (:meth:`Posts.requeue_posts`)
_REQUEUE = Query(t.posts.update().where(
    t.posts.c.id == sa.bindparam("post_id"), t.posts.c.status == sa.bindparam("from_status"),
).values(status=sa.bindparam("to_status"), retry_count=sa.literal_column("0"),
         error_message=sa.null(), next_attempt_at=sa.null(), lease_owner=sa.null(),
         lease_expires_at=sa.null(), updated_at=sa.bindparam("now")
         ).returning(t.posts.c.id))


def post_values(post: Post) -> dict[str, Any]:
    values = attrs.asdict(post, recurse=False)
    values["status"] = post.status.value
    values["media_type"] = post.media_type.value if post.media_type else None
    return values


def insert_args(dialect: sa.Dialect, posts: Sequence[Post], logs: Sequence[LogEvent]
                ) -> tuple[list[Any], list[Any]]:
    """The driver's parameters for inserting ``posts`` and ``logs``: prepared before
    the write transaction, so that it holds its locks for the statements only."""
    insert_posts = INSERT_POSTS.compiled(dialect)
    insert_logs = INSERT_LOGS.compiled(dialect)
    return ([insert_posts.args_of(p, POST_COLUMNS, ENUM_VALUES) for p in posts],
            [insert_logs.args_of(e, LOG_COLUMNS, NOTHING) for e in logs])


def insert_rows(conn: Connection | Any, dialect: sa.Dialect,
                args: tuple[list[Any], list[Any]]) -> None:
    """Insert the rows of :func:`insert_args` in ``conn``'s transaction."""
    posts, logs = args
    if posts:
        run_args(conn, INSERT_POSTS.compiled(dialect).sql, posts)
    if logs:
        run_args(conn, INSERT_LOGS.compiled(dialect).sql, logs)


def insert_logs(conn: Connection | Any, dialect: sa.Dialect, events: Sequence[LogEvent]
                ) -> None:
    """Insert log events in ``conn``'s transaction: the one way logs are written."""
    if events:
        insert_rows(conn, dialect, ([], insert_args(dialect, (), events)[1]))


class Posts(Database):
    """Posts, logs and checkpoints."""

    def add_posts(self, posts: Sequence[Post], logs: Sequence[LogEvent] = (), *,
                  conn: Connection | None = None) -> list[Post]:
        """Insert ``posts`` (and their first log events) in one transaction (``conn``'s,
        when given)."""
        if posts:
            args = insert_args(self.engine.dialect, posts, logs)
            if conn is None:
                with self.begin() as c:
                    insert_rows(c, self.engine.dialect, args)
            else:
                insert_rows(conn, self.engine.dialect, args)
        return list(posts)

    def get_post(self, post_id: str, org_id: str | None = None) -> Post:
        q = sa.select(t.posts).where(t.posts.c.id == post_id)
        if org_id is not None:
            q = q.where(t.posts.c.org_id == org_id)
        with self.read() as c:
            row = execute(c, q).mapping()
        if row is None:
            raise NotFound(f"post {post_id} not found")
        return row_to_post(row)

    def thread_posts(self, thread_id: str) -> list[Post]:
        with self.read() as c:
            rows = execute(c, sa.select(t.posts).where(t.posts.c.thread_id == thread_id)
                             .order_by(t.posts.c.thread_position)).mappings()
            return [row_to_post(r) for r in rows]

    def save_post(self, post: Post, *, expect_status: PostStatus | None = None,
                  conn: Connection | None = None, new_media: Sequence[str] = ()) -> Post:
        """Write ``post``; with ``expect_status``, only if the stored status is still that
        (compare-and-set), else :class:`~chat33_core.errors.Conflict`. ``new_media``: the
        media ids the post now uses, checked to be still there in the same transaction
        (:func:`.media.media_kept`; ValidationError when one was deleted meanwhile)."""
        post = attrs.evolve(post, updated_at=utcnow())
        values = post_values(post)
        values.pop("id")
        q = t.posts.update().where(t.posts.c.id == post.id)
        if expect_status is not None:
            q = q.where(t.posts.c.status == expect_status.value)
        if conn is None:
            with self.begin() as c:
                media_kept(self, c, new_media)
                n = execute(c, q.values(**values)).rowcount
        else:
            media_kept(self, conn, new_media)
            n = execute(conn, q.values(**values)).rowcount
        if not n:
            raise Conflict(f"post {post.id} changed meanwhile; reload it and try again")
        return post

    def requeue_posts(self, post_ids: Sequence[str], logs: Sequence[LogEvent], *,
                      expect_status: PostStatus, status: PostStatus, now: datetime
                      ) -> None:
        """Put the posts ``post_ids`` back to ``status``, due now with their attempts
        counted from zero (no error, no lease, ``updated_at`` = ``now``), and add
        ``logs``: in one transaction, all of them or none. Only posts whose stored
        status is still ``expect_status``, else :class:`~chat33_core.errors.Conflict`."""
        log_args = insert_args(self.engine.dialect, (), logs)
        with self._begin_driver() as c:
            for post_id in post_ids:
                if not self._run(c, _REQUEUE, {
                        "post_id": post_id, "from_status": expect_status.value,
                        "to_status": status.value, "now": now}):
                    raise Conflict(f"post {post_id} changed meanwhile; reload it and try "
                                   "again")
            insert_rows(c, self.engine.dialect, log_args)

    def delete_post(self, post_id: str, *, expect_status: PostStatus) -> None:
        with self.begin() as c:
            n = execute(c, t.posts.delete().where(t.posts.c.id == post_id,
                                                 t.posts.c.status == expect_status.value)
                          ).rowcount
            if not n:
                raise Conflict(f"post {post_id} changed meanwhile; reload it and try again")
            execute(c, t.post_logs.delete().where(t.post_logs.c.post_id == post_id))
            execute(c, t.checkpoints.delete().where(t.checkpoints.c.post_id == post_id))

    def count_posts_by_status(self, account_id: str) -> dict[str, int]:
        """The account's posts, counted by status (statuses it has none of left out)."""
        p = t.posts
        with self.read() as c:
            rows = execute(c, sa.select(p.c.status, sa.func.count()).where(
                p.c.account_id == account_id).group_by(p.c.status).order_by(p.c.status))
            return {status: int(n) for status, n in rows}

    # --- logs -------------------------------------------------------------------------

    def add_log(self, event: LogEvent, conn: Connection | None = None) -> None:
        if conn is not None:
            insert_logs(conn, self.engine.dialect, [event])
            return
        with self.begin() as c:
            insert_logs(c, self.engine.dialect, [event])

    def list_logs(self, post_id: str) -> list[LogEvent]:
        with self.read() as c:
            rows = execute(c, sa.select(t.post_logs).where(t.post_logs.c.post_id == post_id)
                             .order_by(t.post_logs.c.id)).mappings()
            return [LogEvent(**r) for r in rows]

    # --- checkpoints ------------------------------------------------------------------

    def load_checkpoint(self, post_id: str) -> dict[str, Any]:
        with self.read() as c:
            value = execute(c, sa.select(t.checkpoints.c.data)
                              .where(t.checkpoints.c.post_id == post_id)).scalar()
        return dict(value or {})


def _upsert(dialect: str) -> sa.Executable:
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(t.checkpoints)
    return insert.on_conflict_do_update(
        index_elements=[t.checkpoints.c.post_id],
        set_={"data": insert.excluded.data, "updated_at": insert.excluded.updated_at})


#: one statement per dialect, built once (building and cache-keying a statement per
#: call costs more than running it)
_UPSERTS = {name: Query(_upsert(name)) for name in ("postgresql", "sqlite")}


def save_checkpoints(conn: Connection, rows: Mapping[str, Mapping[str, Any]],
                     now: datetime) -> None:
    """Insert or replace the checkpoints of several posts (by post id), in one statement:
    the one way checkpoints are saved."""
    execute(conn, _UPSERTS[conn.dialect.name],
                 [{"post_id": pid, "data": dict(data), "updated_at": now}
                  for pid, data in rows.items()])
