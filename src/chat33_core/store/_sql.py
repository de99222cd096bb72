"""The store's one private execution layer: every statement of the store is a Core
statement compiled for its dialect and run on the driver's connection, its rows decoded
by hand (:class:`Rows`).

* :func:`execute` runs any statement in a transaction of ``Database.begin`` or
  ``Database.read`` (a :class:`Query` is compiled once per dialect, any other statement
  once per shape): the colder paths;
* :class:`Query` / :class:`Compiled` with :func:`run_args` and ``Database._fetch`` are
  the hot paths' shortcuts (parameters prepared ahead, no expansion).

An integrity error of the driver (a unique or foreign key violation) leaves as
:class:`~chat33_core.errors.Conflict` (:func:`conflict`); an unavailable database as
``StoreUnavailable`` (:mod:`.unavailable`, around every transaction)."""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..errors import ValidationError
from ..serialization import utc_text
from . import tables as t
from .integrity import DATA, INTEGRITY, conflict


def _instant_text(value: str | datetime) -> str:
    """A stored instant (SQLite's text or the driver's naive UTC datetime) as
    :func:`~chat33_core.serialization.utc_text`; SQLite's text as SQLAlchemy writes it
    is rearranged, not parsed."""
    if isinstance(value, str):
        if len(value) == 26 and value[10] == " ":
            return f"{value[:10]}T{value[11:]}"
        value = datetime.fromisoformat(value)
    return utc_text(value)


class Rows:
    """Rows of chosen columns decoded by hand, for the hot read paths.

    The JSON and timestamp columns are selected *raw* (no SQLAlchemy result processing)
    and decoded here once: JSON is selected as text on both databases (PostgreSQL's
    driver would otherwise parse every value, ``[]`` and ``{}`` included), ``"[]"`` and
    ``"{}"`` decoded without the JSON parser; SQLite's timestamp text with
    :meth:`datetime.fromisoformat`, SQLite's 0/1 as booleans. PostgreSQL's driver hands
    back timestamps and booleans as Python values, which pass through.
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
            sa.cast(c, sa.Text()).label(label_prefix + c.name) if i in self.json_at
            else sa.type_coerce(c, sa.String()).label(label_prefix + c.name) if i in raw
            else c.label(label_prefix + c.name) if label_prefix else c
            for i, c in enumerate(columns)]

    def values(self, row: Sequence[Any], *, utc_text: bool = False) -> list[Any]:
        """The row's values as the models hold them (enums as their values); with
        ``utc_text``, instants as :func:`~chat33_core.serialization.utc_text` gives
        them."""
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
                    parsed = datetime.fromisoformat(value)
                    values[i] = (parsed.replace(tzinfo=UTC) if parsed.tzinfo is None
                                 else parsed.astimezone(UTC))
            elif value is not None:
                values[i] = value.replace(tzinfo=UTC)
        for i in self.bool_at:
            if values[i] is not None:
                values[i] = bool(values[i])
        return values

    def mapping(self, row: Sequence[Any]) -> dict[str, Any]:
        return dict(zip(self.names, self.values(row), strict=True))


class Interned:
    """Models made from raw rows, kept by the raw row itself: a row read again unchanged
    (an API key on every request, the accounts a post names) gives back the model made
    the first time instead of decoding it and building it again.

    The raw row is the whole key, so a row that changed in any column (a revoked key, a
    renamed account) is a different key and is decoded afresh: what the caller sees is
    always what the database holds. The models are frozen values and shared; callers
    (plugins included) treat them, their ``metadata`` and ``scopes`` too, as read-only.
    A row that cannot be a key (an unhashable value in it) is decoded every time. At
    most ``size`` rows are kept; past that the memory starts afresh."""

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


class Query:
    """A Core statement compiled once per dialect and run on the DBAPI connection.

    SQLAlchemy's execution (events, execution context, parameter and result objects)
    costs several times what SQLite takes to run a small indexed statement, so the
    per-request statements (reading an API key, a post's accounts, a page of posts;
    counting the rate limit and inserting posts) run their compiled SQL directly. Their
    parameters go through the same bind processors SQLAlchemy would apply (timestamps,
    JSON); their results are decoded by :class:`Rows`.
    """

    def __init__(self, statement: Any, column_keys: Sequence[str] | None = None) -> None:
        self.statement = statement
        #: for an INSERT: the columns given (the others take their defaults)
        self.column_keys = list(column_keys) if column_keys is not None else None
        self._compiled: dict[str, Compiled] = {}
        self._plans: dict[tuple[str, tuple[str, ...] | None], _Plan] = {}

    def plan(self, dialect: sa.Dialect, column_keys: Sequence[str] | None = None) -> _Plan:
        """The statement compiled for :func:`execute` (for an INSERT without a fixed
        ``column_keys``: the columns given)."""
        keys = self.column_keys if self.column_keys is not None else column_keys
        key = (dialect.name, tuple(keys) if keys is not None else None)
        found = self._plans.get(key)
        if found is None:
            found = self._plans[key] = _Plan(self.statement, dialect, keys)
        return found

    def compiled(self, dialect: sa.Dialect) -> Compiled:
        found = self._compiled.get(dialect.name)
        if found is None:
            found = self._compiled[dialect.name] = Compiled(
                self.statement.compile(dialect=dialect, column_keys=self.column_keys),
                dialect)
        return found


class Compiled:
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


def run_args(conn: Connection | Any, sql: str, args: Sequence[Any]
             ) -> list[Sequence[Any]]:
    """Run ``sql`` in ``conn``'s transaction (a :class:`Connection` of SQLAlchemy or a
    driver connection) on the driver, once per set of ``args`` (already in the driver's
    form); returns the rows of a single run."""
    return _cursor_run(conn, sql, args)[0]


def _cursor_run(conn: Connection | Any, sql: str, args: Sequence[Any]
                ) -> tuple[list[Sequence[Any]], int]:
    """:func:`run_args`, with the number of rows the statement changed. An integrity
    error (a unique or foreign key violation) leaves as :class:`Conflict`."""
    driver: Any = (conn.connection.driver_connection if isinstance(conn, Connection)
                   else conn)
    cursor = driver.cursor()
    try:
        if len(args) == 1:
            cursor.execute(sql, args[0])
            rows = list(cursor.fetchall()) if cursor.description else []
        else:
            cursor.executemany(sql, args)
            rows = []
        return rows, cursor.rowcount
    except INTEGRITY as exc:
        raise conflict(exc) from exc
    except DATA as exc:  # a value the column cannot hold (too long, out of range)
        raise ValidationError(
            "a value does not fit what the database can store (too long or out of "
            "range)") from exc
    finally:
        cursor.close()


class Result:
    """What :func:`execute` got back: the rows, decoded as :class:`Rows` does, and the
    number of rows the statement changed."""

    __slots__ = ("names", "rowcount", "rows")

    def __init__(self, names: Sequence[str], rows: list[list[Any]], rowcount: int) -> None:
        self.names = names
        self.rows = rows
        self.rowcount = rowcount

    def __iter__(self) -> Iterator[list[Any]]:
        return iter(self.rows)

    def first(self) -> list[Any] | None:
        return self.rows[0] if self.rows else None

    def scalar(self) -> Any:
        return self.rows[0][0] if self.rows else None

    def scalars(self) -> list[Any]:
        return [row[0] for row in self.rows]

    def mappings(self) -> list[dict[str, Any]]:
        return [dict(zip(self.names, row, strict=True)) for row in self.rows]

    def mapping(self) -> dict[str, Any] | None:
        """The first row as a dict, or None."""
        return dict(zip(self.names, self.rows[0], strict=True)) if self.rows else None


class _Plan:
    """A statement compiled for one dialect, for :func:`execute`: any statement
    (literal values, expanding ``IN`` lists, RETURNING), at the cost of SQLAlchemy's
    parameter expansion on every run."""

    def __init__(self, statement: Any, dialect: sa.Dialect,
                 column_keys: Sequence[str] | None, cache_key: Any = None) -> None:
        self.compiled: Any = statement.compile(dialect=dialect, column_keys=column_keys,
                                               cache_key=cache_key)
        self.processors: dict[str, Any] = {}
        for name, bind in self.compiled.binds.items():
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                self.processors[name] = processor
        #: the scalar defaults of the columns an INSERT leaves out (SQLAlchemy's
        #: execution would fill them in)
        self.defaults = {col.key: col.default.arg for col in self.compiled.insert_prefetch
                         if col.default is not None and col.default.is_scalar}
        returned = getattr(statement, "exported_columns", ())
        self.rows = Rows(list(returned)) if len(returned) else None

    def bind(self, params: Mapping[str, Any]) -> tuple[str, Any]:
        """The SQL text and the driver's arguments for ``params``."""
        if self.defaults:
            params = {**self.defaults, **params}
        state = self.compiled.construct_expanded_state(params)
        processors = self.processors
        if state.parameter_expansion:
            processors = dict(processors)
            for name, expanded in state.parameter_expansion.items():
                if name in self.processors:
                    processors.update(dict.fromkeys(expanded, self.processors[name]))
        values = {k: (processors[k](v) if k in processors else v)
                  for k, v in state.parameters.items()}
        if state.positiontup is not None:
            return state.statement, [values[name] for name in state.positiontup]
        return state.statement, values


#: plans of statements built on each call, by SQLAlchemy's cache key (the statement's
#: shape, not its values)
_ADHOC: dict[tuple[Any, ...], _Plan] = {}
_ADHOC_SIZE = 1000


def _adhoc(statement: Any, dialect: sa.Dialect, first: Mapping[str, Any]
           ) -> tuple[_Plan, dict[str, Any]]:
    """The plan of a statement built on each call, compiled once per shape as
    SQLAlchemy's own execution caches it, and this statement's literal values by the
    compiled statement's parameter names."""
    keys = sorted(first) if isinstance(statement, sa.Insert) and first else None
    cache_key = statement._generate_cache_key()
    if cache_key is None:  # a statement SQLAlchemy cannot cache either
        return Query(statement).plan(dialect, keys), {}
    found_key = (dialect.name, cache_key.key, tuple(keys) if keys else None)
    found = _ADHOC.get(found_key)
    if found is None:
        if len(_ADHOC) >= _ADHOC_SIZE:
            _ADHOC.clear()
        found = _ADHOC[found_key] = _Plan(statement, dialect, keys, cache_key)
        return found, {}
    values: dict[str, Any] = found.compiled.construct_params(
        first, extracted_parameters=cache_key.bindparams)
    return found, values


def execute(conn: Connection, statement: Query | sa.Executable,
            params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None
            ) -> Result:
    """Run a Core statement in ``conn``'s transaction (of ``Database.begin`` or
    ``Database.read``) on the driver, once per set of ``params`` (a list: many): the
    store's one way to run a statement that is not on a hot path. A :class:`Query` is
    compiled once per dialect; any other statement once per shape (:func:`_adhoc`)."""
    many = list(params) if isinstance(params, Sequence) else [params or {}]
    if not many:  # many of none
        return Result((), [], 0)
    if isinstance(statement, Query):
        keys = sorted(many[0]) if isinstance(statement.statement, sa.Insert) else None
        plan = statement.plan(conn.dialect, keys)
    else:
        plan, values = _adhoc(statement, conn.dialect, many[0])
        if values:
            many = [{**values, **p} for p in many]
    bound = [plan.bind(p) for p in many]
    sqls = {sql for sql, _ in bound}
    if len(sqls) == 1:
        rows, count = _cursor_run(conn, bound[0][0], [args for _, args in bound])
    else:  # expanding lists of different lengths: one statement each
        rows, count = [], 0
        for sql, args in bound:
            rows, n = _cursor_run(conn, sql, [args])
            count += n
    decode = plan.rows
    if decode is None:
        return Result((), [], count)
    return Result(decode.names, [decode.values(row) for row in rows], count)
