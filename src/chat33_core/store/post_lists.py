"""Pages of posts: the filters, the sort orders and the page rendered as JSON."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import attrs
import sqlalchemy as sa

from ..models import (
    Page,
    PostSort,
)
from . import tables as t
from ._sql import Query
from .database import Database
from .posts import POSTS, reader

#: when a post is meant to go out: its schedule, or its creation for a post published on
#: the next worker tick (the ``from``/``to`` filters and the ``scheduledAt`` sort)
_WHEN = sa.func.coalesce(t.posts.c.scheduled_at, t.posts.c.created_at)
#: the label of _WHEN in the JSON page's subquery, which PostgreSQL's aggregate orders by
_WHEN_LABEL = "chat33_when"


def _post_order(sort: PostSort) -> tuple[Any, ...]:
    """ORDER BY of a post list: the sort's instant, then a thread's items in order."""
    key = _WHEN if sort.by_schedule else t.posts.c.created_at
    return (key.desc() if sort.descending else key.asc(), t.posts.c.thread_position,
            t.posts.c.id)


@functools.cache
def _list_statements(status: bool, platform: bool, account: bool, since: bool, until: bool,
                     sort: PostSort, names: tuple[str, ...]) -> tuple[Query, Query]:
    """(count, page of ``names`` with the count) for the filters in use; values are bound
    by name: org_id, status, platform, account_id, since, until, limit, offset."""
    where = _list_where(status, platform, account, since, until)
    count = sa.select(sa.func.count()).select_from(t.posts).where(*where)
    # the page and the total in one statement (an uncorrelated subquery runs once;
    # cheaper than count(*) OVER (), which reads every matching row in full)
    page = (sa.select(*reader(names).columns, count.scalar_subquery().label("total"))
            .where(*where).order_by(*_post_order(sort))
            .limit(sa.bindparam("limit")).offset(sa.bindparam("offset")))
    return Query(count), Query(page)


def _list_where(status: bool, platform: bool, account: bool, since: bool = False,
                until: bool = False) -> list[Any]:
    where = [t.posts.c.org_id == sa.bindparam("org_id")]
    if status:
        where.append(t.posts.c.status == sa.bindparam("status"))
    if platform:
        where.append(t.posts.c.platform == sa.bindparam("platform"))
    if account:
        where.append(t.posts.c.account_id == sa.bindparam("account_id"))
    # from inclusive, to exclusive: consecutive windows never count a post twice
    if since:
        where.append(sa.bindparam("since", type_=t.UTCDateTime()) <= _WHEN)
    if until:
        where.append(sa.bindparam("until", type_=t.UTCDateTime()) > _WHEN)
    return where


@functools.cache
def _json_page_statement(dialect: str, status: bool, platform: bool, account: bool,
                         since: bool, until: bool, sort: PostSort,
                         fields: tuple[tuple[str, str], ...]) -> Query:
    """One row, (the page as a JSON array of objects of ``fields``, the total), written
    by SQLite or PostgreSQL; parameters as :func:`_list_statements`'."""
    where = _list_where(status, platform, account, since, until)
    names = tuple(dict.fromkeys([*(name for _, name in fields), *_ORDER_NAMES]))
    sqlite = dialect == "sqlite"
    selected = [(sa.type_coerce(t.posts.c[name], sa.String()) if sqlite else t.posts.c[name])
                .label(name) for name in names]
    if sort.by_schedule:
        selected.append(_WHEN.label(_WHEN_LABEL))
    page = (sa.select(*selected).where(*where).order_by(*_post_order(sort))
            .limit(sa.bindparam("limit")).offset(sa.bindparam("offset")).subquery("page"))
    value = _sqlite_json_value if sqlite else _postgres_json_value
    members = ", ".join(f"{_sql_text(key)}, {value(t.posts.c[name].type, name)}"
                        for key, name in fields)
    if sqlite:
        # the subquery's LIMIT keeps SQLite from flattening it into the aggregate, so
        # the array takes the rows in the page's order
        items = f"coalesce(json_group_array(json_object({members})), '[]')"
    else:  # json_build_object keeps the keys' order (jsonb would sort them)
        key = f'page."{_WHEN_LABEL if sort.by_schedule else "created_at"}"'
        items = (f"coalesce(json_agg(json_build_object({members}) ORDER BY "
                 f"{key} {'DESC' if sort.descending else 'ASC'}, page.\"thread_position\", "
                 f"page.\"id\"), '[]'::json)::text")
    count = sa.select(sa.func.count()).select_from(t.posts).where(*where)
    return Query(sa.select(sa.literal_column(items), count.scalar_subquery())
                  .select_from(page))


#: the columns a page is ordered by besides _WHEN (_post_order), which PostgreSQL's
#: aggregate orders by
_ORDER_NAMES = ("created_at", "thread_position", "id")


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _sqlite_json_value(kind: Any, name: str) -> str:
    """The page's column ``name`` as the API's JSON value, in SQLite's SQL (the same
    values as :class:`Rows` then :class:`~chat33_core.serialization.PostRows` give)."""
    column = f'page."{name}"'
    if isinstance(kind, sa.JSON):
        return f"json({column})"
    if isinstance(kind, sa.Boolean):
        return f"CASE {column} WHEN 1 THEN json('true') WHEN 0 THEN json('false') END"
    if isinstance(kind, t.UTCDateTime):
        # SQLAlchemy's text (YYYY-MM-DD HH:MM:SS.ffffff) cut to milliseconds, as
        # _instant_text and PostRows cut it; any other stored form goes through
        # SQLite's own date parsing
        return (f"CASE WHEN length({column}) = 26 AND substr({column}, 11, 1) = ' ' "
                f"THEN substr({column}, 1, 10) || 'T' || substr({column}, 12, 12) || 'Z' "
                f"ELSE strftime('%Y-%m-%dT%H:%M:%fZ', {column}) END")
    return column


def _postgres_json_value(kind: Any, name: str) -> str:
    """:func:`_sqlite_json_value` in PostgreSQL's SQL: JSON and booleans are JSON
    already; instants (naive UTC) cut to milliseconds (``MS`` truncates, as PostRows
    cuts)."""
    column = f'page."{name}"'
    if isinstance(kind, t.UTCDateTime):
        return f"""to_char({column}, 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"""
    return column


def _list_params(org_id: str, status: str | None, platform: str | None,
                 account_id: str | None, since: datetime | None, until: datetime | None,
                 limit: int, offset: int) -> dict[str, Any]:
    """The bound values of :func:`_list_statements` and :func:`_json_page_statement`
    (every name, used or not: positional paramstyles look each one up)."""
    return {"org_id": org_id, "status": status, "platform": platform,
            "account_id": account_id, "since": since, "until": until, "limit": limit,
            "offset": offset}


class PostLists(Database):
    """Pages of an organization's posts."""

    def list_posts(self, org_id: str, *, status: str | None = None, platform: str | None = None,
                   account_id: str | None = None, since: datetime | None = None,
                   until: datetime | None = None, sort: PostSort = PostSort.CREATED_DESC,
                   page: int = 1, limit: int = 20) -> Page:
        """A page of the organization's posts as Posts, newest first by default.
        ``since`` (inclusive) and ``until`` (exclusive) bound when each post is meant to
        go out: its ``scheduled_at``, or its ``created_at`` when it has none."""
        filters: dict[str, Any] = {"status": status, "platform": platform,
                                   "account_id": account_id, "since": since, "until": until,
                                   "sort": sort}
        found = self.list_post_rows(org_id, POSTS.names, page=page, limit=limit, **filters)
        return attrs.evolve(found, items=[POSTS.post(r) for r in found.items])

    def list_post_rows(self, org_id: str, columns: Sequence[str], *,
                       status: str | None = None, platform: str | None = None,
                       account_id: str | None = None, since: datetime | None = None,
                       until: datetime | None = None, sort: PostSort = PostSort.CREATED_DESC,
                       page: int = 1, limit: int = 20, utc_text: bool = False) -> Page:
        """:meth:`list_posts` as rows: each item a list of the ``columns`` (Post attribute
        names) with the values a Post would hold (instants aware, JSON decoded), except
        that enums are their values and, with ``utc_text``, instants are
        :func:`utc_text`'s text. For lists rendered without making Posts."""
        offset = (page - 1) * limit
        rows = reader(tuple(columns))
        count_q, page_q = _list_statements(bool(status), bool(platform), bool(account_id),
                                           since is not None, until is not None,
                                           PostSort(sort), rows.names)
        params = _list_params(org_id, status, platform, account_id, since, until, limit,
                              offset)
        raw = self._fetch(page_q, params)
        if raw:
            total = raw[0][-1]
        elif page == 1:
            total = 0  # an empty first page: nothing matches
        else:  # past the end: the page has no row to carry the count
            total = self._fetch(count_q, params)[0][0]
        return Page(items=[rows.values(r, utc_text=utc_text) for r in raw], total=total,
                    page=page, limit=limit)

    def post_page_json(self, org_id: str, fields: Sequence[tuple[str, str]], *,
                       status: str | None = None, platform: str | None = None,
                       account_id: str | None = None, since: datetime | None = None,
                       until: datetime | None = None, sort: PostSort = PostSort.CREATED_DESC,
                       page: int = 1, limit: int = 20) -> tuple[str, int] | None:
        """A page of :meth:`list_post_rows` rendered as JSON by the database itself, with
        the total: ``(JSON array, total)``, each post an object of ``fields`` (key, Post
        attribute) holding the values :meth:`list_post_rows` gives with ``utc_text``,
        instants cut to the API's text (UTC, milliseconds, ``Z``). One statement and one
        row: the page is never decoded into Python values. SQLite and PostgreSQL; None
        on other databases."""
        if self.dialect not in ("sqlite", "postgresql"):
            return None
        query = _json_page_statement(self.dialect, bool(status), bool(platform),
                                     bool(account_id), since is not None, until is not None,
                                     PostSort(sort), tuple(fields))
        params = _list_params(org_id, status, platform, account_id, since, until, limit,
                              (page - 1) * limit)
        items, total = self._fetch(query, params)[0]
        return items, int(total)

