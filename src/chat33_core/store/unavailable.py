"""Which database errors mean "not now", and their translation into
:class:`~chat33_core.errors.StoreUnavailable`.

A refused or terminated connection, a server restart, a serialization failure, a
locked SQLite file or an exhausted pool says nothing about the request or the post:
the caller is to try again shortly. SQLAlchemy's text of such an error carries the
statement and its bound parameters, so the store raises a :class:`StoreUnavailable`
with a generic message in its place (the original chained as ``__cause__``). Errors
that say the statement or the data is wrong (integrity, programming, data errors) are
left as they are.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import sqlalchemy.exc as sa_exc

from ..errors import StoreUnavailable


def _operational() -> tuple[type[BaseException], ...]:
    found: list[type[BaseException]] = [
        sa_exc.OperationalError, sa_exc.TimeoutError, sa_exc.DisconnectionError,
        sqlite3.OperationalError]
    try:  # the hot paths run on the driver's connection, so its own errors come through
        import psycopg
    except ImportError:  # pragma: no cover - PostgreSQL support not installed
        pass
    else:
        # OperationalError covers terminated backends, shutdowns, serialization failures
        # and deadlocks; InterfaceError a connection the driver already knows is closed
        # UndefinedTable: a table gone from under the running app (or no schema yet), as
        # SQLite's "no such table" (an OperationalError) is
        found += [psycopg.OperationalError, psycopg.InterfaceError,
                  psycopg.errors.UndefinedTable]
    return tuple(found)


_OPERATIONAL = _operational()
def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached or used right now (worth a
    retry), rather than that the statement, the data or the code is wrong."""
    if isinstance(exc, (StoreUnavailable, *_OPERATIONAL)):
        return True
    return isinstance(exc, sa_exc.DBAPIError) and bool(exc.connection_invalidated)


def unavailable(exc: BaseException) -> StoreUnavailable:
    """The :class:`StoreUnavailable` standing for ``exc`` (raise it ``from exc``)."""
    if isinstance(exc, StoreUnavailable):
        return exc
    return StoreUnavailable(reason=reason(exc))


class _Translating:
    """``with translating:`` raises :class:`StoreUnavailable` in place of an error that
    :func:`is_unavailable` (a class, not ``contextlib``'s generator: it wraps every
    transaction, hot paths included, and costs next to nothing)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: Any) -> None:
        if exc is not None and not isinstance(exc, StoreUnavailable) and is_unavailable(exc):
            raise unavailable(exc) from exc


translating = _Translating()


def behind(exc: BaseException) -> StoreUnavailable | None:
    """The :class:`StoreUnavailable` standing for the database error behind ``exc``:
    ``exc`` itself, or an error it was raised from or while handling (a plugin that
    wraps the failure of a checkpoint save in an error of its own); None if none."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if is_unavailable(current):
            return unavailable(current)
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _database_errors() -> tuple[type[BaseException], ...]:
    found: list[type[BaseException]] = [sa_exc.SQLAlchemyError, sqlite3.Error]
    try:
        import psycopg
    except ImportError:  # pragma: no cover - PostgreSQL support not installed
        pass
    else:
        found.append(psycopg.Error)
    return tuple(found)


_DATABASE_ERRORS = _database_errors()


def safe_text(exc: BaseException) -> str:
    """``exc`` as "Type: text" fit for a post's ``errorMessage``, its logs or an API
    answer: a database error (or an error raised because of an unavailable database) is
    named, never quoted, since its text holds SQL and bound parameters."""
    if behind(exc) is not None:
        return StoreUnavailable.MESSAGE
    if isinstance(exc, _DATABASE_ERRORS):
        return f"a database error ({type(exc).__name__})"
    return f"{type(exc).__name__}: {exc}"


def reason(exc: BaseException) -> str:
    """The driver's own first line of ``exc`` (no SQL, no parameters: SQLAlchemy adds
    those to its wrapper's text, not to the driver's), for operators' logs."""
    inner = exc.orig if isinstance(exc, sa_exc.DBAPIError) and exc.orig is not None else exc
    if isinstance(inner, sa_exc.StatementError):  # never quote a statement
        return type(inner).__name__
    lines = str(inner).strip().splitlines()
    first = lines[0].strip() if lines else ""
    return f"{type(inner).__name__}: {first[:200]}" if first else type(inner).__name__


__all__ = ["behind", "is_unavailable", "reason", "safe_text", "translating", "unavailable"]
