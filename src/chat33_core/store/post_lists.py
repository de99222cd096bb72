"""Pages of posts: the filters and the sort orders. The store hands out Posts or rows;
rendering them is :mod:`chat33_core.serialization`'s."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

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


def _list_params(org_id: str, status: str | None, platform: str | None,
                 account_id: str | None, since: datetime | None, until: datetime | None,
                 limit: int, offset: int) -> dict[str, Any]:
    """The bound values of :func:`_list_statements` (every name, used or not:
    positional paramstyles look each one up)."""
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
        raw, total = self._page(org_id, POSTS.names, status, platform, account_id, since,
                                until, sort, page, limit)
        return Page(items=[POSTS.post(r) for r in raw], total=total, page=page, limit=limit)

    def list_post_rows(self, org_id: str, columns: Sequence[str], *,
                       status: str | None = None, platform: str | None = None,
                       account_id: str | None = None, since: datetime | None = None,
                       until: datetime | None = None, sort: PostSort = PostSort.CREATED_DESC,
                       page: int = 1, limit: int = 20, utc_text: bool = False) -> Page:
        """:meth:`list_posts` as rows: each item a list of the ``columns`` (Post attribute
        names) with the values a Post would hold (instants aware, JSON decoded), except
        that enums are their values and, with ``utc_text``, instants are
        :func:`~chat33_core.serialization.utc_text`'s text. For lists rendered without
        making Posts."""
        rows = reader(tuple(columns))
        raw, total = self._page(org_id, rows.names, status, platform, account_id, since,
                                until, sort, page, limit)
        return Page(items=[rows.values(r, utc_text=utc_text) for r in raw], total=total,
                    page=page, limit=limit)

    def _page(self, org_id: str, names: tuple[str, ...], status: str | None,
              platform: str | None, account_id: str | None, since: datetime | None,
              until: datetime | None, sort: PostSort, page: int, limit: int
              ) -> tuple[list[Sequence[Any]], int]:
        """The raw rows of a page (``names``, then the total) and the total."""
        count_q, page_q = _list_statements(bool(status), bool(platform), bool(account_id),
                                           since is not None, until is not None,
                                           PostSort(sort), names)
        params = _list_params(org_id, status, platform, account_id, since, until, limit,
                              (page - 1) * limit)
        raw = self._fetch(page_q, params)
        if raw:
            return raw, raw[0][-1]
        if page == 1:
            return raw, 0  # an empty first page: nothing matches
        # past the end: the page has no row to carry the count
        return raw, self._fetch(count_q, params)[0][0]
