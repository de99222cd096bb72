"""Every error as the API's documented shape ``{error, message, details}``.

chat33's own errors carry their code and status (``Chat33Error.to_dict()`` and
``http_status``); werkzeug's HTTP errors (routing 404/405, 413, 415, malformed requests)
are mapped to a code here; a database that cannot be reached or used right now (the
drivers' and SQLAlchemy's operational errors: refused connections, a locked or missing
SQLite file, an exhausted pool) is a 503 with ``Retry-After``; anything else unexpected
is logged and answered as a 500 without internals. Handlers are registered on the app,
because routing errors happen before a blueprint is chosen. In an app that mounts the
API next to its own pages, only the API's paths get JSON errors.
"""

from __future__ import annotations

import logging
import math
import sqlite3
from collections.abc import Iterable
from typing import Any

import sqlalchemy.exc as sa_exc
from flask import Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from chat33_core.errors import Chat33Error, Issue, RateLimited

log = logging.getLogger("chat33.http")

#: werkzeug's status -> the API's error code (the doc's own codes where it has them)
HTTP_CODES = {
    400: "VALIDATION_ERROR",
    401: "Unauthorized",
    403: "Insufficient scope",
    404: "Not found",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "RATE_LIMIT",
    503: "SERVICE_UNAVAILABLE",
}
#: seconds a client is told to wait when the database cannot be reached
RETRY_UNAVAILABLE_S = 1


def _operational_errors() -> tuple[type[BaseException], ...]:
    found: list[type[BaseException]] = [sa_exc.OperationalError, sa_exc.TimeoutError,
                                        sqlite3.OperationalError]
    try:  # the hot paths run on the driver's connection, so its own errors reach us
        import psycopg
    except ImportError:  # pragma: no cover - PostgreSQL support not installed
        pass
    else:
        found.append(psycopg.OperationalError)
    return tuple(found)


_UNAVAILABLE = _operational_errors()


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached or used right now (worth a
    retry), rather than that the request or the code is wrong."""
    if isinstance(exc, _UNAVAILABLE):
        return True
    return isinstance(exc, sa_exc.DBAPIError) and bool(exc.connection_invalidated)


class ApiError(Chat33Error):
    """An HTTP-level error the adapter raises itself (413, 415...)."""

    def __init__(self, status: int, code: str, message: str, *,
                 details: Iterable[Issue] = ()) -> None:
        super().__init__(message, details=details)
        self.http_status = status
        self.code = code


def error_response(status: int, body: dict[str, Any]) -> Response:
    response = jsonify(body)
    response.status_code = status
    return response


def _ours() -> bool:
    """True for requests the API answers (its prefix, media files, health checks)."""
    prefixes = current_app.config.get("CHAT33_JSON_ERROR_PREFIXES", ("/",))
    return any(request.path.startswith(p) for p in prefixes)


def handle_chat33_error(exc: Chat33Error) -> Response:
    status = int(getattr(exc, "http_status", 500) or 500)
    if status >= 500:
        log.error("chat33 error answered %s: %s", status, exc.message, exc_info=exc)
    response = error_response(status, exc.to_dict())
    if isinstance(exc, RateLimited):
        response.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
        if exc.limit is not None:
            response.headers["RateLimit-Limit"] = str(exc.limit)
        response.headers["RateLimit-Remaining"] = str(exc.remaining)
        response.headers["RateLimit-Reset"] = str(max(1, math.ceil(exc.reset_after)))
    return response


def handle_http_error(exc: HTTPException) -> Any:
    if not _ours():
        return exc
    status = exc.code or 500
    code = HTTP_CODES.get(status, (exc.name or "ERROR").upper().replace(" ", "_"))
    message = exc.description or exc.name
    if status == 404:
        message = f"no such endpoint or resource: {request.method} {request.path}"
    elif status == 405:
        allowed = ", ".join(sorted(getattr(exc, "valid_methods", None) or []))
        message = f"{request.method} is not allowed on {request.path}" + (
            f" (allowed: {allowed})" if allowed else "")
    elif status == 413:
        message = "the request body is too large"
    response = error_response(status, {"error": code, "message": message, "details": []})
    valid_methods = getattr(exc, "valid_methods", None)
    if status == 405 and valid_methods:
        response.headers["Allow"] = ", ".join(valid_methods)
    return response


def handle_unexpected(exc: Exception) -> Any:
    if isinstance(exc, HTTPException):
        return handle_http_error(exc)
    if not _ours():
        raise exc
    if database_unavailable(exc):
        log.error("database unavailable on %s %s: %s", request.method, request.path,
                  exc, exc_info=exc)
        response = error_response(503, {
            "error": HTTP_CODES[503], "details": [],
            "message": "the database cannot be reached right now; retry shortly"})
        response.headers["Retry-After"] = str(RETRY_UNAVAILABLE_S)
        return response
    log.exception("unhandled error on %s %s", request.method, request.path)
    return error_response(500, {"error": "INTERNAL", "message": "internal server error",
                                "details": []})


def register(app: Flask) -> None:
    app.register_error_handler(Chat33Error, handle_chat33_error)
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(Exception, handle_unexpected)


__all__ = ["HTTP_CODES", "ApiError", "error_response", "register"]
