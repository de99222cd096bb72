"""The store: every read and write of chat33's data, on SQLite or PostgreSQL.

Rows come back as the frozen models of :mod:`chat33_core.models`; credentials are
encrypted and decrypted by the caller-provided :class:`~chat33_core.security.Vault`
(the store never sees a raw token unless it is handed one to encrypt).

A database that cannot be reached or used right now surfaces from every transaction
of the store (:meth:`Store.begin`, :meth:`Store.read` and their driver-level hot paths)
as :class:`~chat33_core.errors.StoreUnavailable`, whose message holds no SQL (see
:mod:`.unavailable`).
"""

from __future__ import annotations

import functools
import json
import logging
import math
import operator
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..errors import ConfigurationError, Conflict, NotFound, RateLimited
from ..models import (
    Account,
    ApiKey,
    LogEvent,
    MediaAsset,
    MediaType,
    Organization,
    Page,
    Post,
    PostSort,
    PostStatus,
    User,
    utcnow,
)
from . import tables as t
from .readers import Readers
from .unavailable import translating
from .writers import Combiner, write_turns

log = logging.getLogger(__name__)

#: a pooled PostgreSQL connection idle this long is checked before it is used again
PING_IDLE_S = 10.0
#: SQLite: the WAL is checkpointed after this many write transactions of a process...
CHECKPOINT_EVERY = 100
#: ...and, should that fall behind, by the committing writer at this many pages
WAL_BACKSTOP_PAGES = 10_000
#: SQLite: how long a statement waits for a lock another connection holds
BUSY_TIMEOUT_S = 30.0
#: ...and how long the readiness check and the bookkeeping writes of reads wait: a
#: locked database must not hold them for the 30 s a real write may wait
QUICK_TIMEOUT_S = 1.0


def make_engine(url: str, *, ping_idle_s: float = PING_IDLE_S, **kw: Any) -> Engine:
    """An engine configured for chat33: SQLite in WAL mode with foreign keys and a busy
    timeout; PostgreSQL through psycopg 3 (``postgresql+psycopg://``), whose pooled
    connections are pinged before use when they sat idle ``ping_idle_s`` or longer."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        kw.setdefault("json_serializer", _json_text)
        engine = sa.create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S,
                                                     "check_same_thread": False}, **kw)

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _: Any) -> None:
            # Python's sqlite3 starts transactions lazily; take control so BEGIN IMMEDIATE works
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            cur.execute("PRAGMA synchronous=NORMAL")
            # checkpoints run outside the write turns (Store.begin); this is a backstop
            cur.execute(f"PRAGMA wal_autocheckpoint={WAL_BACKSTOP_PAGES}")
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            # a write lock up front: no deadlocks between readers upgrading to writers
            readonly = conn.get_execution_options().get("chat33_readonly", False)
            # on the DBAPI connection: a statement through SQLAlchemy costs several times
            # what SQLite takes to begin
            conn.connection.driver_connection.execute(  # type: ignore[union-attr]
                "BEGIN" if readonly else "BEGIN IMMEDIATE")

        return engine
    engine = sa.create_engine(url, **kw)
    _ping_when_idle(engine, ping_idle_s)
    return engine


def _json_text(value: Any) -> str:
    """SQLite's JSON columns: :func:`json.dumps`, with the empty list and object (most
    posts' media and settings) written without it."""
    if value == [] and type(value) is list:
        return "[]"
    if value == {} and type(value) is dict:
        return "{}"
    return json.dumps(value)


def _ping_when_idle(engine: Engine, idle_s: float) -> None:
    """Check a pooled connection before use only when it sat idle ``idle_s`` or longer
    (a server restart, an idle timeout or a network drop happens to idle connections): a
    dead one is replaced before anyone uses it. SQLAlchemy's ``pool_pre_ping`` does it on
    every checkout, a round trip per transaction (a third of a busy API's requests' time
    on loopback); a connection handed back moments ago needs none."""

    @sa.event.listens_for(engine, "checkin")
    def _checkin(dbapi_conn: Any, record: Any) -> None:
        record.info["chat33_idle_since"] = time.monotonic()

    @sa.event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn: Any, record: Any, proxy: Any) -> None:
        since = record.info.get("chat33_idle_since")
        if since is None or time.monotonic() - since < idle_s:
            return  # just made, or just used
        try:
            cursor = dbapi_conn.cursor()
            try:
                cursor.execute("SELECT 1")
            finally:
                cursor.close()
            dbapi_conn.rollback()  # the ping's implicit transaction
        except Exception as exc:
            # the pool drops this connection and checks out another (a fresh one)
            raise sa.exc.DisconnectionError(f"a pooled connection is gone: {exc}") from exc


def row_to_post(row: Any) -> Post:
    """A ``posts`` row as a Post."""
    data = dict(row)
    data["status"] = PostStatus(data["status"])
    data["media_type"] = MediaType(data["media_type"]) if data["media_type"] else None
    return Post(**data)


def utc_text(value: datetime) -> str:
    """An instant as UTC text with microseconds and no offset,
    ``YYYY-MM-DDTHH:MM:SS.ffffff``: the form :meth:`Store.list_post_rows` can hand out
    instead of datetimes, for renderers that only reformat them."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="microseconds")


def _instant_text(value: str | datetime) -> str:
    """A stored instant (SQLite's text or the driver's naive UTC datetime) as
    :func:`utc_text`; SQLite's text as SQLAlchemy writes it is rearranged, not parsed."""
    if isinstance(value, str):
        if len(value) == 26 and value[10] == " ":
            return f"{value[:10]}T{value[11:]}"
        value = datetime.fromisoformat(value)
    return utc_text(value)


class _Rows:
    """Rows of chosen columns decoded by hand, for the hot read paths.

    The JSON and timestamp columns are selected *raw* (no SQLAlchemy result processing)
    and decoded here once: ``"[]"``/``"{}"`` without the JSON parser, SQLite's timestamp
    text with :meth:`datetime.fromisoformat`, SQLite's 0/1 as booleans. PostgreSQL's
    driver already hands back Python values for these, which pass through.
    """

    def __init__(self, columns: Sequence[sa.Column[Any]], label_prefix: str = "") -> None:
        self.names = tuple(c.name for c in columns)
        self.json_at = tuple(i for i, c in enumerate(columns) if isinstance(c.type, sa.JSON))
        self.time_at = tuple(i for i, c in enumerate(columns)
                             if isinstance(c.type, t.UTCDateTime))
        self.bool_at = tuple(i for i, c in enumerate(columns)
                             if isinstance(c.type, sa.Boolean))
        raw = set(self.json_at) | set(self.time_at)
        #: what to select (``label_prefix`` tells the columns apart in a join)
        self.columns: list[Any] = [
            sa.type_coerce(c, sa.String()).label(label_prefix + c.name) if i in raw
            else c.label(label_prefix + c.name) if label_prefix else c
            for i, c in enumerate(columns)]

    def values(self, row: Sequence[Any], *, utc_text: bool = False) -> list[Any]:
        """The row's values as the models hold them (enums as their values); with
        ``utc_text``, instants as :func:`utc_text` gives them."""
        values = list(row[:len(self.names)])
        for i in self.json_at:
            value = values[i]
            if isinstance(value, str):
                values[i] = [] if value == "[]" else {} if value == "{}" else json.loads(value)
        if utc_text:
            for i in self.time_at:
                value = values[i]
                if value is not None:
                    values[i] = _instant_text(value)
            return values
        for i in self.time_at:
            value = values[i]
            if isinstance(value, str):
                # SQLite's naive UTC text, parsed with its offset: several times faster
                # than parsing it naive and then .replace(tzinfo=UTC)
                try:
                    values[i] = datetime.fromisoformat(value + "+00:00")
                except ValueError:  # text written with an offset of its own
                    values[i] = datetime.fromisoformat(value).replace(tzinfo=UTC)
            elif value is not None:
                values[i] = value.replace(tzinfo=UTC)
        for i in self.bool_at:
            if values[i] is not None:
                values[i] = bool(values[i])
        return values

    def mapping(self, row: Sequence[Any]) -> dict[str, Any]:
        return dict(zip(self.names, self.values(row), strict=True))


class _Interned:
    """Models made from raw rows, kept by the raw row itself: a row read again unchanged
    (an API key on every request, the accounts a post names) gives back the model made
    the first time instead of decoding it and building it again.

    The raw row is the whole key, so a row that changed in any column (a revoked key, a
    renamed account) is a different key and is decoded afresh: what the caller sees is
    always what the database holds. The models are frozen values and shared; callers
    (plugins included) treat them, their ``metadata`` and ``scopes`` too, as read-only.
    A row that cannot be a key (PostgreSQL's driver hands JSON back as lists and dicts)
    is decoded every time. At most ``size`` rows are kept; past that the memory starts
    afresh."""

    def __init__(self, make: Callable[[Sequence[Any]], Any], size: int = 2048) -> None:
        self._make = make
        self._size = size
        self._made: dict[tuple[Any, ...], Any] = {}

    def __call__(self, row: Sequence[Any]) -> Any:
        raw = tuple(row)
        try:
            found = self._made.get(raw)
        except TypeError:  # an unhashable value in the row
            return self._make(raw)
        if found is None:
            found = self._make(raw)
            if len(self._made) >= self._size:
                self._made.clear()
            self._made[raw] = found
        return found


class _PostReader(_Rows):
    """``posts`` rows as tuples of chosen columns or as Posts. Posts are made
    positionally, so :meth:`post` is used only when the table's columns and the model's
    fields are the same names in the same order; otherwise :func:`row_to_post` does
    the work."""

    def __init__(self, names: Sequence[str]) -> None:
        super().__init__([t.posts.c[name] for name in names])
        self.usable = list(self.names) == [a.name for a in attrs.fields(Post)]
        self.status_at = self.names.index("status") if self.usable else -1
        self.media_type_at = self.names.index("media_type") if self.usable else -1

    def post(self, row: Sequence[Any]) -> Post:
        values = self.values(row)
        values[self.status_at] = _STATUSES[values[self.status_at]]
        media_type = values[self.media_type_at]
        values[self.media_type_at] = _MEDIA_TYPES[media_type] if media_type else None
        return Post(*values)


class _Query:
    """A Core statement compiled once per dialect and run on the DBAPI connection.

    SQLAlchemy's execution (events, execution context, parameter and result objects)
    costs several times what SQLite takes to run a small indexed statement, so the
    per-request statements (reading an API key, a post's accounts, a page of posts;
    counting the rate limit and inserting posts) run their compiled SQL directly. Their
    parameters go through the same bind processors SQLAlchemy would apply (timestamps,
    JSON); their results are decoded by :class:`_Rows`.
    """

    def __init__(self, statement: sa.ClauseElement, column_keys: Sequence[str] | None = None
                 ) -> None:
        self.statement = statement
        #: for an INSERT: the columns given (the others take their defaults)
        self.column_keys = list(column_keys) if column_keys is not None else None
        self._compiled: dict[str, _Compiled] = {}

    def compiled(self, dialect: sa.Dialect) -> _Compiled:
        found = self._compiled.get(dialect.name)
        if found is None:
            found = self._compiled[dialect.name] = _Compiled(
                self.statement.compile(dialect=dialect, column_keys=self.column_keys),
                dialect)
        return found


class _Compiled:
    """The SQL text of a statement for one dialect, and how to pass it parameters."""

    def __init__(self, compiled: Any, dialect: sa.Dialect) -> None:
        self.sql = str(compiled)
        #: positional paramstyles: the parameter names in order
        self.order = tuple(compiled.positiontup or ()) if compiled.positional else None
        self.processors: dict[str, Any] = {}
        for name, bind in compiled.binds.items():
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                self.processors[name] = processor
        self._positions = tuple((name, self.processors.get(name)) for name in self.order or ())
        #: args_of's plans, by the id of their ``before`` (kept alive in the plan)
        self._plans: dict[int, Any] = {}

    def args_of(self, obj: Any, names: Sequence[str],
                before: Mapping[str, Callable[[Any], Any]]) -> Any:
        """:meth:`args` for an INSERT of a model object whose attributes ``names`` are
        the parameters, without building a dict first; ``before`` converts attributes
        that are not None on the way (an enum to its value), ahead of the processors."""
        if self.order is None:  # named parameters: the generic path
            values = {name: getattr(obj, name) for name in names}
            for name, change in before.items():
                if values.get(name) is not None:
                    values[name] = change(values[name])
            return self.args(values)
        plan = self._plans.get(id(before))
        if plan is None:
            steps = tuple((i, before.get(name), self.processors.get(name))
                          for i, name in enumerate(self.order)
                          if name in before or name in self.processors)
            plan = self._plans[id(before)] = (operator.attrgetter(*self.order), steps, before)
        get, steps, _ = plan
        row = list(get(obj))
        for i, convert, process in steps:
            value = row[i]
            if convert is not None and value is not None:
                value = convert(value)
            row[i] = value if process is None else process(value)
        return row

    def args(self, params: Mapping[str, Any]) -> Any:
        if self.order is not None:
            return [params[name] if processor is None else processor(params[name])
                    for name, processor in self._positions]
        if self.processors:
            return {k: (self.processors[k](v) if k in self.processors else v)
                    for k, v in params.items()}
        return params


@functools.cache
def _reader(names: tuple[str, ...]) -> _PostReader:
    return _PostReader(names)


_posts = _reader(tuple(c.name for c in t.posts.c))


# --- statements of the per-request paths, built once (building a statement costs about
# as much as running it on SQLite) --------------------------------------------------------

_ACCOUNT_COLUMNS = [col for col in t.accounts.c if col.name != "credentials_enc"]
_API_KEYS = _Rows(list(t.api_keys.c))
_FIND_API_KEY = _Query(sa.select(*_API_KEYS.columns).where(
    t.api_keys.c.key_hash == sa.bindparam("key_hash")))
_ACCOUNTS = _Rows(_ACCOUNT_COLUMNS)
_JOINED_ACCOUNTS = _Rows(_ACCOUNT_COLUMNS, label_prefix="account_")
# the per-request reads: the same key and accounts over and over
_api_key_of = _Interned(lambda row: ApiKey(**_API_KEYS.mapping(row)))
_account_of = _Interned(lambda row: Account(**_ACCOUNTS.mapping(row)))


@functools.cache
def _find_api_key_with_accounts(n: int) -> _Query:
    """An API key by its hash, with the accounts of its organization among ``n`` ids
    (id0, id1...): a row per account found, or one row with no account."""
    accounts = t.accounts
    joined = t.api_keys.outerjoin(accounts, sa.and_(
        accounts.c.org_id == t.api_keys.c.org_id,
        accounts.c.id.in_([sa.bindparam(f"id{i}") for i in range(n)])))
    return _Query(sa.select(*_API_KEYS.columns, *_JOINED_ACCOUNTS.columns)
                  .select_from(joined).where(t.api_keys.c.key_hash == sa.bindparam("key_hash")))


@functools.cache
def _get_accounts(n: int) -> _Query:
    """The accounts of an organization among ``n`` ids (bound as id0, id1...)."""
    return _Query(sa.select(*_ACCOUNTS.columns).where(
        t.accounts.c.id.in_([sa.bindparam(f"id{i}") for i in range(n)]),
        t.accounts.c.org_id == sa.bindparam("org_id")))


@functools.cache
def _list_accounts(by_platform: bool, active_only: bool) -> _Query:
    """An organization's accounts, oldest first (``org_id``; ``platform`` when
    ``by_platform``)."""
    q = sa.select(*_ACCOUNTS.columns).where(t.accounts.c.org_id == sa.bindparam("org_id"))
    if by_platform:
        q = q.where(t.accounts.c.platform == sa.bindparam("platform"))
    if active_only:
        q = q.where(t.accounts.c.is_active.is_(True))
    return _Query(q.order_by(t.accounts.c.created_at, t.accounts.c.id))


_TAT = _Rows([t.rate_limits.c.tat])
_RATE_TAT = sa.select(*_TAT.columns).where(t.rate_limits.c.key == sa.bindparam("k"))
_RATE_READ = _Query(_RATE_TAT)
_RATE_READ_LOCKED = _Query(_RATE_TAT.with_for_update())
_RATE_CLAIM = _Query(sa.text(  # PostgreSQL: a row to lock, even for the first request
    "INSERT INTO rate_limits (key, tat) VALUES (:k, :n) ON CONFLICT DO NOTHING"))
_RATE_INSERT = _Query(t.rate_limits.insert(), ["key", "tat"])
_RATE_UPDATE = _Query(t.rate_limits.update().where(t.rate_limits.c.key == sa.bindparam("k"))
                      .values(tat=sa.bindparam("new_tat")))
_TOUCH_KEY = _Query(t.api_keys.update().where(t.api_keys.c.id == sa.bindparam("k"))
                    .values(last_used_at=sa.bindparam("when")))
_POST_COLUMNS = tuple(c.name for c in t.posts.c)
_LOG_COLUMNS = tuple(c.name for c in t.post_logs.c if c.name != "id")
_INSERT_POSTS = _Query(t.posts.insert(), _POST_COLUMNS)
_INSERT_LOGS = _Query(t.post_logs.insert(), _LOG_COLUMNS)
#: Post attributes stored as their enum's value
_ENUM_VALUES: Mapping[str, Callable[[Any], Any]] = {
    "status": operator.attrgetter("value"), "media_type": operator.attrgetter("value")}
_NOTHING: Mapping[str, Callable[[Any], Any]] = {}
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
                     sort: PostSort, names: tuple[str, ...]) -> tuple[_Query, _Query]:
    """(count, page of ``names`` with the count) for the filters in use; values are bound
    by name: org_id, status, platform, account_id, since, until, limit, offset."""
    where = _list_where(status, platform, account, since, until)
    count = sa.select(sa.func.count()).select_from(t.posts).where(*where)
    # the page and the total in one statement (an uncorrelated subquery runs once;
    # cheaper than count(*) OVER (), which reads every matching row in full)
    page = (sa.select(*_reader(names).columns, count.scalar_subquery().label("total"))
            .where(*where).order_by(*_post_order(sort))
            .limit(sa.bindparam("limit")).offset(sa.bindparam("offset")))
    return _Query(count), _Query(page)


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
                         fields: tuple[tuple[str, str], ...]) -> _Query:
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
    return _Query(sa.select(sa.literal_column(items), count.scalar_subquery())
                  .select_from(page))


#: the columns a page is ordered by besides _WHEN (_post_order), which PostgreSQL's
#: aggregate orders by
_ORDER_NAMES = ("created_at", "thread_position", "id")


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _sqlite_json_value(kind: Any, name: str) -> str:
    """The page's column ``name`` as the API's JSON value, in SQLite's SQL (the same
    values as :class:`_Rows` then :class:`~chat33_core.serialization.PostRows` give)."""
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


_STATUSES = {s.value: s for s in PostStatus}
_MEDIA_TYPES = {m.value: m for m in MediaType}


def _post_values(post: Post) -> dict[str, Any]:
    values = attrs.asdict(post, recurse=False)
    values["status"] = post.status.value
    values["media_type"] = post.media_type.value if post.media_type else None
    return values


def _log_values(event: LogEvent) -> dict[str, Any]:
    values = attrs.asdict(event)
    values.pop("id")
    return values


class Store:
    """All of chat33's persistence. Thread-safe; share one per process."""

    def __init__(self, engine: Engine | str, *, checkpoint_every: int = CHECKPOINT_EVERY
                 ) -> None:
        self.engine = make_engine(engine) if isinstance(engine, str) else engine
        #: SQLite: checkpoint the write-ahead log after this many write transactions
        self.checkpoint_every = checkpoint_every
        sqlite = self.engine.dialect.name == "sqlite"
        self._turns = write_turns(self.engine.url.database) if sqlite else None
        self._readers = Readers(self.engine) if sqlite else None
        self._post_groups: Combiner[_CountedInsert, tuple[int, float]] = Combiner(
            self._write_counted)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A write transaction. On SQLite, writers first wait their turn on locks that
        wake them as soon as the writer before them is done (:mod:`.writers`), rather
        than in SQLite's sleeping busy handler. Raises :class:`StoreUnavailable` when the
        database cannot be used right now."""
        with translating, self._turn(), self.engine.begin() as conn:
            yield conn

    @contextmanager
    def _begin_driver(self) -> Iterator[Any]:
        """:meth:`begin` on the DBAPI connection itself, for the hot write paths (see
        :class:`_Query`): the same turn, ``BEGIN IMMEDIATE`` on SQLite (on a connection
        of :class:`.readers.Readers`: SQLite's writers of a process take turns, so they
        rarely need more than one), commit or roll back."""
        with translating, self._turn():
            if self._readers is None:
                fairy = self.engine.raw_connection()
                try:
                    pg: Any = fairy.driver_connection
                    try:
                        yield pg
                    except BaseException:
                        pg.rollback()
                        raise
                    pg.commit()
                finally:
                    fairy.close()
                return
            driver = self._readers.take()
            try:
                driver.execute("BEGIN IMMEDIATE")
            except BaseException:
                driver.close()  # not worth finding out whether it is still good
                raise
            try:
                yield driver
            except BaseException:
                self._end(driver, "rollback")  # a refusal (RateLimited...) is common
                raise
            self._end(driver, "commit")

    def _end(self, driver: Any, how: str) -> None:
        """Commit or roll back a SQLite transaction of :meth:`_begin_driver` and keep
        its connection; a connection whose transaction could not end is closed (which
        rolls it back)."""
        assert self._readers is not None
        try:
            getattr(driver, how)()
        except BaseException:
            driver.close()
            raise
        self._readers.give(driver)

    @contextmanager
    def _turn(self) -> Iterator[None]:
        """SQLite: the write turn, and every ``checkpoint_every`` writes a checkpoint
        once the turn is over. PostgreSQL: nothing (its locks order the writers)."""
        if self._turns is None:
            yield
            return
        with self._turns.turn():
            yield
        if self._turns.wrote(self.checkpoint_every):
            try:
                self.checkpoint()
            except Exception:
                # the write before it has committed: its caller must not see a failure
                # (it might write again); the next checkpoint, or SQLite's, catches up
                log.warning("SQLite checkpoint failed", exc_info=True)
            finally:
                self._turns.checkpointed()

    def checkpoint(self) -> tuple[int, int, int] | None:
        """SQLite: copy what the write-ahead log holds into the database without waiting
        for anyone (``PRAGMA wal_checkpoint(PASSIVE)``); (busy, log pages, pages copied).
        :meth:`begin` does it every ``checkpoint_every`` writes of a process, after its
        write turn: SQLite's automatic checkpoint runs inside the committing writer's
        turn and keeps every other writer waiting through its copying and syncing (it
        stays as a backstop at ``WAL_BACKSTOP_PAGES``). PostgreSQL: nothing to do (None)."""
        if self._turns is None:
            return None
        conn = self.engine.raw_connection()
        try:
            cursor = conn.cursor()
            try:
                cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
                busy, log, done = cursor.fetchone() or (1, 0, 0)
            finally:
                cursor.close()
        finally:
            conn.close()
        return int(busy), int(log), int(done)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction (on SQLite a deferred one: it never blocks writers).
        Raises :class:`StoreUnavailable` when the database cannot be used right now."""
        with translating, self.engine.connect() as conn:
            conn = conn.execution_options(chat33_readonly=True)
            with conn.begin():
                yield conn

    def _fetch(self, query: _Query, params: Mapping[str, Any]) -> list[Sequence[Any]]:
        """The rows of one read-only statement, run on a DBAPI connection (see
        :class:`_Query`) in autocommit mode: the statement is its own read transaction.
        SQLite: on a connection of :class:`.readers.Readers`. PostgreSQL: on a pooled
        connection, which goes back to the pool with no transaction to roll back (a
        round trip saved). Raises :class:`StoreUnavailable` as :meth:`read` does."""
        with translating:
            compiled = query.compiled(self.engine.dialect)
            if self._readers is not None:  # SQLite's connections are in autocommit already
                driver = self._readers.take()
                try:
                    cursor = driver.cursor()
                    try:
                        cursor.execute(compiled.sql, compiled.args(params))
                        rows = cursor.fetchall()
                    finally:
                        cursor.close()
                except BaseException:
                    driver.close()  # not worth finding out whether it is still good
                    raise
                self._readers.give(driver)
                return rows  # type: ignore[no-any-return]
            conn = self.engine.raw_connection()
            try:
                pg: Any = conn.driver_connection
                pg.autocommit = True
                cursor = conn.cursor()
                try:
                    cursor.execute(compiled.sql, compiled.args(params))
                    return list(cursor.fetchall())
                finally:
                    cursor.close()
                    pg.autocommit = False
            finally:
                conn.close()

    def _run(self, conn: Connection | Any, query: _Query, *params: Mapping[str, Any]
             ) -> list[Sequence[Any]]:
        """Run ``query`` in ``conn``'s transaction (of :meth:`begin` or
        :meth:`_begin_driver`), once per set of ``params``, on its DBAPI connection (see
        :class:`_Query`); returns the rows of a single run."""
        compiled = query.compiled(self.engine.dialect)
        return self._run_args(conn, compiled.sql, [compiled.args(p) for p in params])

    @staticmethod
    def _run_args(conn: Connection | Any, sql: str, args: Sequence[Any]
                  ) -> list[Sequence[Any]]:
        """:meth:`_run` with the parameters already in the driver's form."""
        driver: Any = (conn.connection.driver_connection if isinstance(conn, Connection)
                       else conn)
        cursor = driver.cursor()
        try:
            if len(args) == 1:
                cursor.execute(sql, args[0])
                return list(cursor.fetchall()) if cursor.description else []
            cursor.executemany(sql, args)
            return []
        finally:
            cursor.close()

    def dispose(self) -> None:
        if self._readers is not None:
            self._readers.close()
        self.engine.dispose()

    # --- schema -----------------------------------------------------------------

    def _schema(self) -> tuple[Any, bool]:
        """(alembic config, whether the database is at the newest migration)."""
        from alembic.config import Config
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        cfg = Config()
        cfg.set_main_option("script_location", str(files("chat33_core") / "migrations"))
        head = ScriptDirectory.from_config(cfg).get_current_head()
        with self.engine.connect() as conn:
            return cfg, MigrationContext.configure(conn).get_current_revision() == head

    def migrate(self) -> None:
        """Create or upgrade the schema to the newest migration (safe to run twice)."""
        from alembic import command

        cfg, current = self._schema()
        if current:
            return  # up to date: no need to run the migration environment
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def require_schema(self) -> None:
        """Raise :class:`ConfigurationError` unless the database is reachable and at the
        newest migration (an operational error when it cannot be reached)."""
        if not self._schema()[1]:
            raise ConfigurationError(
                "the database has no chat33 tables or an older schema: run `chat33 init` "
                "first")

    def ping(self) -> bool:
        """True when the database can be used now; raises otherwise. On SQLite the
        write lock is asked for (and released at once) with a short wait
        (``QUICK_TIMEOUT_S``): a locked database answers in a second, not thirty."""
        if self._readers is None:
            with self.read() as conn:
                conn.execute(sa.text("SELECT 1"))
            return True
        with translating, self._quick_write():
            pass
        return True

    @contextmanager
    def _quick_write(self) -> Iterator[Any]:
        """SQLite: a write transaction on a driver connection that waits at most
        ``QUICK_TIMEOUT_S`` for the write lock (``sqlite3.OperationalError`` beyond), for
        the writes nobody should wait long for. Outside the write turns, whose waiting
        has no deadline: a turn may be held by a writer waiting for the same lock."""
        assert self._readers is not None
        driver = self._readers.take()
        try:
            driver.execute(f"PRAGMA busy_timeout={int(QUICK_TIMEOUT_S * 1000)}")
            try:
                driver.execute("BEGIN IMMEDIATE")
                try:
                    yield driver
                except BaseException:
                    driver.rollback()
                    raise
                driver.commit()
            finally:
                driver.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        except BaseException:
            driver.close()  # not worth finding out whether it is still good
            raise
        self._readers.give(driver)

    # --- organizations and users ----------------------------------------------------

    def add_org(self, org: Organization, webhook_secret_enc: str | None = None) -> Organization:
        with self.begin() as c:
            c.execute(t.organizations.insert().values(
                id=org.id, name=org.name, created_at=org.created_at,
                webhook_secret_enc=webhook_secret_enc))
        return org

    def get_org(self, org_id: str) -> Organization:
        with self.read() as c:
            row = c.execute(sa.select(t.organizations).where(t.organizations.c.id == org_id)
                            ).mappings().first()
        if row is None:
            raise NotFound(f"organization {org_id} not found")
        return Organization(id=row["id"], name=row["name"], created_at=row["created_at"])

    def find_org_by_name(self, name: str) -> Organization | None:
        """The organization called ``name``, in any case ("acme" finds "Acme"); an exact
        match first, then the oldest."""
        orgs = t.organizations
        with self.read() as c:
            row = c.execute(sa.select(orgs).where(sa.func.lower(orgs.c.name) == name.lower())
                            .order_by((orgs.c.name != name), orgs.c.created_at)
                            ).mappings().first()
        return None if row is None else Organization(id=row["id"], name=row["name"],
                                                      created_at=row["created_at"])

    def webhook_secrets_enc(self, org_id: str, now: datetime
                            ) -> tuple[str | None, list[tuple[str, datetime]]]:
        """The organization's current webhook secret (encrypted; None before its first
        use) and the retired ones still in their grace period at ``now``, as
        (encrypted secret, expiry), latest expiry first."""
        o, r = t.organizations, t.retired_webhook_secrets
        with self.read() as c:
            current = c.execute(sa.select(o.c.webhook_secret_enc)
                                .where(o.c.id == org_id)).scalar()
            rows = c.execute(sa.select(r.c.secret_enc, r.c.expires_at)
                             .where(r.c.org_id == org_id, r.c.expires_at > now)
                             .order_by(r.c.expires_at.desc(), r.c.id.desc())).all()
        return current, [(row.secret_enc, row.expires_at) for row in rows]

    def replace_webhook_secret_enc(self, org_id: str, value: str, *,
                                   keep_until: datetime | None, now: datetime) -> None:
        """Make ``value`` the organization's webhook secret. With ``keep_until`` (after
        ``now``), the secret it replaces keeps signing until then, and so do the retired
        ones still in their grace period; without, every older secret ends at once."""
        o, r = t.organizations, t.retired_webhook_secrets
        with self.begin() as c:
            q = sa.select(o.c.webhook_secret_enc).where(o.c.id == org_id)
            row = c.execute(q.with_for_update() if self.is_postgres else q).first()
            if row is None:
                raise NotFound(f"organization {org_id} not found")
            keep = keep_until is not None and keep_until > now
            c.execute(r.delete().where(r.c.org_id == org_id, *(
                [r.c.expires_at <= now] if keep else [])))
            if keep and row.webhook_secret_enc is not None:
                c.execute(r.insert().values(org_id=org_id, secret_enc=row.webhook_secret_enc,
                                            expires_at=keep_until, created_at=now))
            c.execute(o.update().where(o.c.id == org_id).values(webhook_secret_enc=value))

    def add_user(self, user: User) -> User:
        try:
            with self.begin() as c:
                c.execute(t.users.insert().values(**attrs.asdict(user)))
        except sa.exc.IntegrityError:
            raise Conflict(f"a user with the email {user.email!r} already exists") from None
        return user

    def find_user_by_email(self, email: str) -> User | None:
        with self.read() as c:
            row = c.execute(sa.select(t.users).where(t.users.c.email == email.lower())
                            ).mappings().first()
        return None if row is None else User(**row)

    def list_users(self, org_id: str | None = None) -> list[User]:
        """Users, oldest first; of one organization when ``org_id`` is given."""
        q = sa.select(t.users)
        if org_id is not None:
            q = q.where(t.users.c.org_id == org_id)
        with self.read() as c:
            rows = c.execute(q.order_by(t.users.c.created_at, t.users.c.id)).mappings()
            return [User(**r) for r in rows]

    def set_user_password(self, user_id: str, password_hash: str) -> int:
        """Replace the user's password hash and end every session of the user (they
        sign in again with the new password); returns the number of sessions ended."""
        with self.begin() as c:
            if not c.execute(t.users.update().where(t.users.c.id == user_id)
                             .values(password_hash=password_hash)).rowcount:
                raise NotFound("user not found")
            return int(c.execute(t.sessions.delete()
                                 .where(t.sessions.c.user_id == user_id)).rowcount)

    def get_user(self, user_id: str) -> User:
        with self.read() as c:
            row = c.execute(sa.select(t.users).where(t.users.c.id == user_id)).mappings().first()
        if row is None:
            raise NotFound("user not found")
        return User(**row)

    # --- sessions -------------------------------------------------------------------

    def add_session(self, session_hash: str, user_id: str, csrf_hash: str,
                    expires_at: datetime) -> None:
        with self.begin() as c:
            c.execute(t.sessions.insert().values(id=session_hash, user_id=user_id,
                                                 csrf_hash=csrf_hash, expires_at=expires_at,
                                                 created_at=utcnow()))

    def get_session(self, session_hash: str) -> dict[str, Any] | None:
        with self.read() as c:
            row = c.execute(sa.select(t.sessions).where(t.sessions.c.id == session_hash)
                            ).mappings().first()
        return None if row is None else dict(row)

    def delete_session(self, session_hash: str) -> None:
        with self.begin() as c:
            c.execute(t.sessions.delete().where(t.sessions.c.id == session_hash))

    # --- api keys ---------------------------------------------------------------------

    def add_api_key(self, key: ApiKey) -> ApiKey:
        with self.begin() as c:
            c.execute(t.api_keys.insert().values(**attrs.asdict(key)))
        return key

    def find_api_key_by_hash(self, key_hash: str) -> ApiKey | None:
        rows = self._fetch(_FIND_API_KEY, {"key_hash": key_hash})
        return _api_key_of(rows[0]) if rows else None

    def find_api_key_with_accounts(self, key_hash: str, account_ids: Sequence[str]
                                   ) -> tuple[ApiKey | None, dict[str, Account]]:
        """:meth:`find_api_key_by_hash` and :meth:`get_accounts` for the key's
        organization in one query (a request that names its accounts reads them with
        its key). No key: (None, {})."""
        ids = list(dict.fromkeys(account_ids))
        if not ids:
            return self.find_api_key_by_hash(key_hash), {}
        params = {f"id{i}": account_id for i, account_id in enumerate(ids)}
        params["key_hash"] = key_hash
        rows = self._fetch(_find_api_key_with_accounts(len(ids)), params)
        if not rows:
            return None, {}
        split = len(_API_KEYS.names)
        key = _api_key_of(rows[0][:split])
        accounts = [_account_of(row[split:]) for row in rows if row[split] is not None]
        return key, {a.id: a for a in accounts}

    def list_api_keys(self, org_id: str, user_id: str | None = None) -> list[ApiKey]:
        q = sa.select(t.api_keys).where(t.api_keys.c.org_id == org_id)
        if user_id is not None:
            q = q.where(t.api_keys.c.user_id == user_id)
        with self.read() as c:
            rows = c.execute(q.order_by(t.api_keys.c.created_at, t.api_keys.c.id)).mappings()
            return [ApiKey(**r) for r in rows]

    def get_api_key(self, key_id: str) -> ApiKey:
        with self.read() as c:
            row = c.execute(sa.select(t.api_keys).where(t.api_keys.c.id == key_id)
                            ).mappings().first()
        if row is None:
            raise NotFound(f"API key {key_id} not found")
        return ApiKey(**row)

    def revoke_api_key(self, org_id: str, key_id: str) -> ApiKey:
        with self.begin() as c:
            n = c.execute(t.api_keys.update()
                          .where(t.api_keys.c.id == key_id, t.api_keys.c.org_id == org_id)
                          .values(is_active=False)).rowcount
            if not n:
                raise NotFound(f"API key {key_id} not found")
            row = c.execute(sa.select(t.api_keys).where(t.api_keys.c.id == key_id)
                            ).mappings().one()
        return ApiKey(**row)

    def touch_api_key(self, key_id: str, when: datetime) -> None:
        """Note when a key was last used: bookkeeping, so on SQLite it waits only
        ``QUICK_TIMEOUT_S`` for the write lock and is skipped (logged) when the database
        is locked, rather than holding a read request for the full busy timeout."""
        if self._readers is None:
            with self.begin() as c:
                self._run(c, _TOUCH_KEY, {"k": key_id, "when": when})
            return
        try:
            with self._quick_write() as c:
                self._run(c, _TOUCH_KEY, {"k": key_id, "when": when})
        except sqlite3.OperationalError as exc:
            log.warning("API key %s: last use not recorded (%s)", key_id, exc)

    # --- accounts ---------------------------------------------------------------------

    def add_account(self, account: Account, credentials_enc: str | None) -> Account:
        with self.begin() as c:
            c.execute(t.accounts.insert().values(**attrs.asdict(account),
                                                 credentials_enc=credentials_enc))
        return account

    def get_account(self, account_id: str, org_id: str | None = None) -> Account:
        q = sa.select(*[col for col in t.accounts.c if col.name != "credentials_enc"]).where(
            t.accounts.c.id == account_id)
        if org_id is not None:
            q = q.where(t.accounts.c.org_id == org_id)
        with self.read() as c:
            row = c.execute(q).mappings().first()
        if row is None:
            raise NotFound(f"account {account_id} not found")
        return Account(**row)

    def get_accounts(self, account_ids: Sequence[str], org_id: str) -> dict[str, Account]:
        """The accounts of ``org_id`` among ``account_ids``, by id, in one query (ids of
        other organizations and unknown ids are simply absent)."""
        if not account_ids:
            return {}
        ids = list(dict.fromkeys(account_ids))
        params = {f"id{i}": account_id for i, account_id in enumerate(ids)}
        params["org_id"] = org_id
        accounts = [_account_of(r) for r in self._fetch(_get_accounts(len(ids)), params)]
        return {a.id: a for a in accounts}

    def list_accounts(self, org_id: str, platform: str | None = None,
                      active_only: bool = False) -> list[Account]:
        params = {"org_id": org_id, "platform": platform or None}
        rows = self._fetch(_list_accounts(bool(platform), active_only), params)
        return [_account_of(r) for r in rows]

    def account_credentials_enc(self, account_id: str) -> str | None:
        with self.read() as c:
            return c.execute(sa.select(t.accounts.c.credentials_enc)
                             .where(t.accounts.c.id == account_id)).scalar()

    def set_account_credentials_enc(self, account_id: str, value: str,
                                    expected: str | None = None) -> bool:
        """Replace the credentials; with ``expected``, only if they are still those (a
        rotating refresh token must not be overwritten by a stale writer)."""
        q = t.accounts.update().where(t.accounts.c.id == account_id)
        if expected is not None:
            q = q.where(t.accounts.c.credentials_enc == expected)
        with self.begin() as c:
            return bool(c.execute(q.values(credentials_enc=value, needs_reconnect=False)).rowcount)

    def update_account(self, account: Account) -> Account:
        values = attrs.asdict(account)
        values.pop("id")
        with self.begin() as c:
            c.execute(t.accounts.update().where(t.accounts.c.id == account.id).values(**values))
        return account

    def rename_account(self, org_id: str, account_id: str, name: str) -> Account:
        with self.begin() as c:
            if not c.execute(t.accounts.update().where(
                    t.accounts.c.id == account_id, t.accounts.c.org_id == org_id)
                    .values(name=name)).rowcount:
                raise NotFound(f"account {account_id} not found")
        return self.get_account(account_id, org_id=org_id)

    def remove_account(self, org_id: str, account_id: str, *, cancel_as: PostStatus,
                       reason: str) -> tuple[Account, list[str]]:
        """Deactivate the account and forget its credentials; its QUEUED posts take the
        status ``cancel_as`` with a log saying ``reason``; other posts (published ones
        included) stay as they are. One transaction. Returns the account and the ids of
        the posts cancelled (those still QUEUED when it ran: a post a worker has just
        claimed is left to it)."""
        a, p = t.accounts, t.posts
        now = utcnow()
        with self.begin() as c:
            if not c.execute(a.update().where(a.c.id == account_id, a.c.org_id == org_id)
                             .values(is_active=False, credentials_enc=None,
                                     needs_reconnect=False)).rowcount:
                raise NotFound(f"account {account_id} not found")
            cancelled = list(c.execute(
                p.update().where(p.c.account_id == account_id, p.c.org_id == org_id,
                                 p.c.status == PostStatus.QUEUED.value)
                .values(status=cancel_as.value, next_attempt_at=None, updated_at=now)
                .returning(p.c.id)).scalars())
            for post_id in cancelled:
                self.add_log(LogEvent(id=None, post_id=post_id, event="cancelled",
                                      message=reason, created_at=now), conn=c)
        return self.get_account(account_id, org_id=org_id), sorted(cancelled)

    # --- posts ------------------------------------------------------------------------

    def add_posts(self, posts: Sequence[Post], logs: Sequence[LogEvent] = (), *,
                  conn: Connection | None = None) -> list[Post]:
        """Insert ``posts`` (and their first log events) in one transaction (``conn``'s,
        when given)."""
        if posts:
            if conn is None:
                with self.begin() as c:
                    self._insert_posts(c, posts, logs)
            else:
                self._insert_posts(conn, posts, logs)
        return list(posts)

    def _insert_posts(self, c: Connection | Any, posts: Sequence[Post],
                      logs: Sequence[LogEvent]) -> None:
        self._insert_rows(c, self._insert_args(posts, logs))

    def _insert_args(self, posts: Sequence[Post], logs: Sequence[LogEvent]
                     ) -> tuple[list[Any], list[Any]]:
        """The driver's parameters for inserting ``posts`` and ``logs``: prepared before
        the write transaction, so that it holds its locks for the statements only."""
        dialect = self.engine.dialect
        if not _posts.usable:  # the table's columns are not the Post's attributes
            return ([_INSERT_POSTS.compiled(dialect).args(_post_values(p)) for p in posts],
                    [_INSERT_LOGS.compiled(dialect).args(_log_values(e)) for e in logs])
        insert_posts = _INSERT_POSTS.compiled(dialect)
        insert_logs = _INSERT_LOGS.compiled(dialect)
        return ([insert_posts.args_of(p, _POST_COLUMNS, _ENUM_VALUES) for p in posts],
                [insert_logs.args_of(e, _LOG_COLUMNS, _NOTHING) for e in logs])

    def _insert_rows(self, c: Connection | Any, args: tuple[list[Any], list[Any]]) -> None:
        dialect = self.engine.dialect
        posts, logs = args
        if posts:
            self._run_args(c, _INSERT_POSTS.compiled(dialect).sql, posts)
        if logs:
            self._run_args(c, _INSERT_LOGS.compiled(dialect).sql, logs)

    def get_post(self, post_id: str, org_id: str | None = None) -> Post:
        q = sa.select(t.posts).where(t.posts.c.id == post_id)
        if org_id is not None:
            q = q.where(t.posts.c.org_id == org_id)
        with self.read() as c:
            row = c.execute(q).mappings().first()
        if row is None:
            raise NotFound(f"post {post_id} not found")
        return row_to_post(row)

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
        if not _posts.usable:
            return self._list_posts_slowly(org_id, page=page, limit=limit, **filters)
        found = self.list_post_rows(org_id, _posts.names, page=page, limit=limit, **filters)
        return attrs.evolve(found, items=[_posts.post(r) for r in found.items])

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
        reader = _reader(tuple(columns))
        count_q, page_q = _list_statements(bool(status), bool(platform), bool(account_id),
                                           since is not None, until is not None,
                                           PostSort(sort), reader.names)
        params = _list_params(org_id, status, platform, account_id, since, until, limit,
                              offset)
        raw = self._fetch(page_q, params)
        if raw:
            total = raw[0][-1]
        elif page == 1:
            total = 0  # an empty first page: nothing matches
        else:  # past the end: the page has no row to carry the count
            total = self._fetch(count_q, params)[0][0]
        return Page(items=[reader.values(r, utc_text=utc_text) for r in raw], total=total,
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

    def _list_posts_slowly(self, org_id: str, *, status: str | None, platform: str | None,
                           account_id: str | None, since: datetime | None,
                           until: datetime | None, sort: PostSort, page: int, limit: int
                           ) -> Page:
        where = _list_where(bool(status), bool(platform), bool(account_id),
                            since is not None, until is not None)
        params = _list_params(org_id, status, platform, account_id, since, until, limit,
                              (page - 1) * limit)
        with self.read() as c:
            total = c.execute(sa.select(sa.func.count()).select_from(t.posts).where(*where),
                              params).scalar_one()
            rows = c.execute(sa.select(t.posts).where(*where)
                             .order_by(*_post_order(PostSort(sort)))
                             .limit(limit).offset((page - 1) * limit), params).mappings()
            return Page(items=[row_to_post(r) for r in rows], total=total, page=page,
                        limit=limit)

    def thread_posts(self, thread_id: str) -> list[Post]:
        with self.read() as c:
            rows = c.execute(sa.select(t.posts).where(t.posts.c.thread_id == thread_id)
                             .order_by(t.posts.c.thread_position)).mappings()
            return [row_to_post(r) for r in rows]

    def save_post(self, post: Post, *, expect_status: PostStatus | None = None,
                  conn: Connection | None = None) -> Post:
        """Write ``post``; with ``expect_status``, only if the stored status is still that
        (compare-and-set), else :class:`~chat33_core.errors.Conflict`."""
        post = attrs.evolve(post, updated_at=utcnow())
        values = _post_values(post)
        values.pop("id")
        q = t.posts.update().where(t.posts.c.id == post.id)
        if expect_status is not None:
            q = q.where(t.posts.c.status == expect_status.value)
        if conn is None:
            with self.begin() as c:
                n = c.execute(q.values(**values)).rowcount
        else:
            n = conn.execute(q.values(**values)).rowcount
        if not n:
            raise Conflict(f"post {post.id} changed meanwhile; reload it and try again")
        return post

    def delete_post(self, post_id: str, *, expect_status: PostStatus) -> None:
        with self.begin() as c:
            n = c.execute(t.posts.delete().where(t.posts.c.id == post_id,
                                                 t.posts.c.status == expect_status.value)
                          ).rowcount
            if not n:
                raise Conflict(f"post {post_id} changed meanwhile; reload it and try again")
            c.execute(t.post_logs.delete().where(t.post_logs.c.post_id == post_id))
            c.execute(t.checkpoints.delete().where(t.checkpoints.c.post_id == post_id))

    def count_posts_by_status(self, account_id: str) -> dict[str, int]:
        """The account's posts, counted by status (statuses it has none of left out)."""
        p = t.posts
        with self.read() as c:
            rows = c.execute(sa.select(p.c.status, sa.func.count()).where(
                p.c.account_id == account_id).group_by(p.c.status).order_by(p.c.status))
            return {status: int(n) for status, n in rows}

    def count_published_since(self, account_id: str, since: datetime) -> int:
        with self.read() as c:
            return int(c.execute(
                sa.select(sa.func.count()).select_from(t.posts).where(
                    t.posts.c.account_id == account_id,
                    t.posts.c.published_at >= since,
                    t.posts.c.status.in_([PostStatus.PUBLISHED.value,
                                          PostStatus.CANCELLED.value]))).scalar_one())

    # --- logs -------------------------------------------------------------------------

    def add_log(self, event: LogEvent, conn: Connection | None = None) -> None:
        values = _log_values(event)
        if conn is not None:
            conn.execute(t.post_logs.insert().values(**values))
            return
        with self.begin() as c:
            c.execute(t.post_logs.insert().values(**values))

    def list_logs(self, post_id: str) -> list[LogEvent]:
        with self.read() as c:
            rows = c.execute(sa.select(t.post_logs).where(t.post_logs.c.post_id == post_id)
                             .order_by(t.post_logs.c.id)).mappings()
            return [LogEvent(**r) for r in rows]

    # --- checkpoints ------------------------------------------------------------------

    def load_checkpoint(self, post_id: str) -> dict[str, Any]:
        with self.read() as c:
            value = c.execute(sa.select(t.checkpoints.c.data)
                              .where(t.checkpoints.c.post_id == post_id)).scalar()
        return dict(value or {})

    def save_checkpoint(self, post_id: str, data: Mapping[str, Any]) -> None:
        with self.begin() as c:
            n = c.execute(t.checkpoints.update().where(t.checkpoints.c.post_id == post_id)
                          .values(data=dict(data), updated_at=utcnow())).rowcount
            if not n:
                c.execute(t.checkpoints.insert().values(post_id=post_id, data=dict(data),
                                                        updated_at=utcnow()))

    # --- media ------------------------------------------------------------------------

    def add_media(self, asset: MediaAsset) -> MediaAsset:
        with self.begin() as c:
            c.execute(t.media_assets.insert().values(**attrs.asdict(asset)))
        return asset

    def get_media(self, media_id: str) -> MediaAsset:
        with self.read() as c:
            row = c.execute(sa.select(t.media_assets).where(t.media_assets.c.id == media_id)
                            ).mappings().first()
        if row is None:
            raise NotFound(f"media {media_id} not found")
        return MediaAsset(**row)

    def find_media_by_url(self, org_id: str, url: str) -> MediaAsset | None:
        """A media file this organization already has under ``url`` (our own URL or the
        source it was fetched from)."""
        with self.read() as c:
            row = c.execute(sa.select(t.media_assets).where(
                t.media_assets.c.org_id == org_id,
                sa.or_(t.media_assets.c.url == url, t.media_assets.c.source_url == url))
                .order_by(t.media_assets.c.created_at.desc())).mappings().first()
        return None if row is None else MediaAsset(**row)

    def find_media_by_name(self, name: str) -> MediaAsset | None:
        with self.read() as c:
            row = c.execute(sa.select(t.media_assets).where(t.media_assets.c.name == name)
                            ).mappings().first()
        return None if row is None else MediaAsset(**row)

    # --- rate limits ------------------------------------------------------------------

    def hit_rate_limit(self, key: str, limit: int, period: timedelta,
                       now: datetime | None = None, *, conn: Connection | None = None,
                       cost: int = 1) -> tuple[int, float]:
        """Count ``cost`` (one request by default) against ``limit`` per ``period`` for
        ``key`` (GCRA, so the allowance refills smoothly); all of it or nothing. Returns
        (remaining, seconds until full); raises :class:`~chat33_core.errors.RateLimited`.
        Atomic across processes and machines: the row is locked (PostgreSQL) or the write
        lock is held (SQLite). With ``conn`` (a :meth:`begin` transaction) the count is
        part of that transaction: it holds only if the transaction commits."""
        if conn is None:
            with self._begin_driver() as c:
                return self._count(c, key, limit, period, now, cost)
        return self._count(conn, key, limit, period, now, cost)

    def _count(self, c: Connection | Any, key: str, limit: int, period: timedelta,
               now: datetime | None, cost: int = 1) -> tuple[int, float]:
        now = now or utcnow()
        q = _RATE_READ
        if self.is_postgres:
            self._run(c, _RATE_CLAIM, {"k": key, "n": now.replace(tzinfo=None)})
            q = _RATE_READ_LOCKED
        rows = self._run(c, q, {"k": key})
        if rows:
            tat = _TAT.values(rows[0])[0]
        else:
            tat = now
            self._run(c, _RATE_INSERT, {"key": key, "tat": now})
        new_tat, remaining, reset = _gcra(tat, now, limit, period, cost)
        self._run(c, _RATE_UPDATE, {"k": key, "new_tat": new_tat})
        return remaining, reset

    def give_back_rate_limit(self, key: str, limit: int, period: timedelta,
                             now: datetime | None = None) -> None:
        """Undo one request that :meth:`hit_rate_limit` counted for ``key`` (a sign-in
        counted before its password was checked, and the password was right)."""
        now = now or utcnow()
        with self._begin_driver() as c:
            rows = self._run(c, _RATE_READ_LOCKED if self.is_postgres else _RATE_READ,
                             {"k": key})
            if rows:
                tat = _TAT.values(rows[0])[0]
                self._run(c, _RATE_UPDATE, {"k": key, "new_tat": max(now, tat - period / limit)})

    def add_posts_counted(self, key: str, limit: int, period: timedelta,
                          posts: Sequence[Post], logs: Sequence[LogEvent] = ()
                          ) -> tuple[int, float]:
        """:meth:`hit_rate_limit` and :meth:`add_posts` in one transaction, counting one
        per post (a post to two accounts counts 2, a thread each of its parts): the posts
        are inserted only if all of them fit the limit, and a request whose insert fails
        does not use the allowance. Returns (remaining, seconds until full).

        Concurrent callers in this process share transactions (group commit): one of
        them counts everybody's requests in arrival order, with one read and one write
        per rate-limit key, and inserts all the posts with one statement, so a busy API
        holds the database's write lock (SQLite) or the rate-limit row (PostgreSQL) once
        per group instead of once per request. If the shared transaction fails, each
        request is tried alone and gets its own outcome."""
        result = self._post_groups.submit(_CountedInsert(
            key, limit, period, self._insert_args(posts, logs), cost=max(1, len(posts))))
        assert result is not None  # every request waits for its own outcome
        return result

    def _write_counted(self, group: Sequence[_CountedInsert]) -> None:
        try:
            now = utcnow()
            with self._begin_driver() as c:
                tats: dict[str, tuple[datetime, bool]] = {}
                for key in dict.fromkeys(r.key for r in group):
                    q = _RATE_READ
                    if self.is_postgres:
                        self._run(c, _RATE_CLAIM, {"k": key, "n": now.replace(tzinfo=None)})
                        q = _RATE_READ_LOCKED
                    rows = self._run(c, q, {"k": key})
                    tats[key] = (_TAT.values(rows[0])[0], True) if rows else (now, False)
                start = dict(tats)
                accepted = []
                for r in group:
                    tat, stored = tats[r.key]
                    try:
                        new_tat, remaining, reset = _gcra(tat, now, r.limit, r.period,
                                                          r.cost)
                    except RateLimited as exc:
                        r.error = exc
                        continue
                    tats[r.key] = (new_tat, stored)
                    r.result = (remaining, reset)
                    accepted.append(r)
                for key, (tat, stored) in tats.items():
                    if tats[key] == start[key]:
                        continue
                    if stored:
                        self._run(c, _RATE_UPDATE, {"k": key, "new_tat": tat})
                    else:
                        self._run(c, _RATE_INSERT, {"key": key, "tat": tat})
                self._insert_rows(c, ([p for r in accepted for p in r.rows[0]],
                                      [e for r in accepted for e in r.rows[1]]))
        except Exception as exc:
            if len(group) == 1:
                group[0].result, group[0].error = None, exc
                return
            # one request broke the shared transaction: each alone, with its own outcome
            for r in group:
                r.result, r.error = None, None
                try:
                    with self._begin_driver() as c:
                        r.result = self._count(c, r.key, r.limit, r.period, None, r.cost)
                        self._insert_rows(c, r.rows)
                except Exception as alone:
                    r.result, r.error = None, alone


@attrs.define(eq=False)
class _CountedInsert:
    """One request of :meth:`Store.add_posts_counted`, and its outcome."""

    key: str
    limit: int
    period: timedelta
    #: the driver's parameters for the posts and the logs (Store._insert_args)
    rows: tuple[list[Any], list[Any]]
    #: what the request counts against the limit (its number of posts)
    cost: int = 1
    result: tuple[int, float] | None = None
    error: BaseException | None = None
    detached: bool = False


def _gcra(tat: datetime, now: datetime, limit: int, period: timedelta, cost: int = 1
          ) -> tuple[datetime, int, float]:
    """``cost`` against ``limit`` per ``period`` (GCRA) with the key's theoretical
    arrival time ``tat``: (the new tat, remaining, seconds until full), or RateLimited
    when not all of ``cost`` fits now."""
    interval = period / limit
    tat = max(tat, now)
    new_tat = tat + interval * cost
    allow_at = new_tat - period
    if allow_at > now:
        left = max(0, int((period - (tat - now)) / interval))
        reset = (tat - now).total_seconds()
        if cost > limit:
            raise RateLimited(
                f"this request counts {cost} against the rate limit of {limit} per "
                f"{human_period(period)}, more than it ever allows: send fewer at once",
                retry_after=reset, limit=limit, remaining=left, reset_after=reset)
        retry = (allow_at - now).total_seconds()
        counts = "" if cost == 1 else f" (this request counts {cost}, {left} left)"
        raise RateLimited(
            f"rate limit of {limit} per {human_period(period)} reached{counts}; retry in "
            f"{math.ceil(retry)} s", retry_after=retry, limit=limit, remaining=left,
            reset_after=reset)
    remaining = int((period - (new_tat - now)) / interval)
    return new_tat, max(0, remaining), (new_tat - now).total_seconds()


def human_period(period: timedelta) -> str:
    """``hour``, ``2 hours``, ``day``, ``90 s``: a period as limits are worded."""
    seconds = int(period.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            n = seconds // size
            return unit if n == 1 else f"{n} {unit}s"
    return f"{seconds} s"
