"""The drivers' integrity errors as core errors: a unique, foreign key or NOT NULL
violation of any table leaves the store (:func:`._sql.execute`, :func:`._sql.run_args`)
as :class:`~chat33_core.errors.Conflict` naming the table and columns, never the values
nor the SQL."""

from __future__ import annotations

import sqlite3
from typing import Any

from ..errors import Conflict
from . import tables as t


def _driver_errors() -> tuple[tuple[type[BaseException], ...],
                              tuple[type[BaseException], ...]]:
    """The drivers' (integrity errors, data errors)."""
    integrity: list[type[BaseException]] = [sqlite3.IntegrityError]
    data: list[type[BaseException]] = [sqlite3.DataError]
    try:
        import psycopg
    except ImportError:  # pragma: no cover - PostgreSQL support not installed
        pass
    else:
        integrity.append(psycopg.IntegrityError)
        data.append(psycopg.DataError)
    return tuple(integrity), tuple(data)


INTEGRITY, DATA = _driver_errors()


def conflict(exc: BaseException) -> Conflict:
    """The :class:`Conflict` standing for a driver's integrity error: which table and
    columns, never the values (nor the SQL)."""
    table, columns, kind = _violated(exc)
    what = (f"{table} ({', '.join(columns)})" if columns else table) or "the change"
    if kind == "unique":
        return Conflict(f"{what}: a row with the same value already exists")
    if kind == "foreign key":
        return Conflict(f"{what}: it refers to a row that does not exist, or a row that "
                        "refers to it still exists")
    return Conflict(f"{what}: a required value is missing or not allowed")


#: PostgreSQL's SQLSTATE of the integrity errors told apart
_KINDS = {"23505": "unique", "23503": "foreign key"}


def _violated(exc: BaseException) -> tuple[str | None, list[str], str]:
    """(table, columns, kind: ``unique``, ``foreign key`` or ``other``) of an integrity
    error."""
    diag = getattr(exc, "diag", None)
    if diag is not None:  # psycopg: the constraint by name, its columns from the schema
        table, name = diag.table_name, diag.constraint_name
        found = t.metadata.tables.get(table or "")
        columns: list[str] = []
        if found is not None:
            constraint: Any
            for constraint in (*found.constraints, *found.indexes):
                if constraint.name == name:
                    columns = [c.name for c in constraint.columns]
        if not columns and diag.column_name:  # NOT NULL names its column only
            columns = [diag.column_name]
        return table, columns, _KINDS.get(getattr(exc, "sqlstate", "") or "", "other")
    text = str(exc)  # SQLite: "UNIQUE constraint failed: users.email, ..."
    if text.startswith("UNIQUE constraint failed: "):
        named = [part.strip().split(".") for part in
                 text.removeprefix("UNIQUE constraint failed: ").split(",")]
        return named[0][0], [n[-1] for n in named], "unique"
    if text.startswith("NOT NULL constraint failed: "):
        table, _, column = text.removeprefix("NOT NULL constraint failed: ").partition(".")
        return table, [column], "other"
    return None, [], "foreign key" if "FOREIGN KEY" in text else "other"
