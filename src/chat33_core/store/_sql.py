"""The store's one private execution layer: statements compiled once per dialect and
their rows decoded by hand, for the paths every request takes."""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..serialization import utc_text
from . import tables as t


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

    def __init__(self, statement: sa.ClauseElement, column_keys: Sequence[str] | None = None
                 ) -> None:
        self.statement = statement
        #: for an INSERT: the columns given (the others take their defaults)
        self.column_keys = list(column_keys) if column_keys is not None else None
        self._compiled: dict[str, Compiled] = {}

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
