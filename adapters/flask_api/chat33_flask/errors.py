"""Every error as the API's documented shape ``{error, message, details}``.

chat33's own errors carry their code and status (``serialization.error_json`` and
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
from collections.abc import Iterable
from typing import Any

from flask import Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from chat33_core.errors import Chat33Error, Issue, RateLimited, Unavailable
from chat33_core.serialization import error_json
from chat33_core.store.unavailable import is_unavailable, unavailable

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
    414: "URI_TOO_LONG",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "RATE_LIMIT",
    431: "REQUEST_HEADER_FIELDS_TOO_LARGE",
    503: "SERVICE_UNAVAILABLE",
}
#: seconds a client is told to wait when the database cannot be reached


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


def ours() -> bool:
    """True for requests the API answers (its prefix, media files, health checks)."""
    prefixes = current_app.config.get("CHAT33_JSON_ERROR_PREFIXES", ("/",))
    return any(request.path.startswith(p) for p in prefixes)


def handle_chat33_error(exc: Chat33Error) -> Response:
    status = int(getattr(exc, "http_status", 500) or 500)
    if status >= 500 and not isinstance(exc, Unavailable):
        log.error("chat33 error answered %s: %s", status, exc.message, exc_info=exc)
    response = error_response(status, error_json(exc))
    if isinstance(exc, Unavailable | RateLimited):
        response.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    # an allowance per period (not a concurrency limit) is described in RateLimit-*
    if isinstance(exc, RateLimited) and exc.limit is not None:
        response.headers["RateLimit-Limit"] = str(exc.limit)
        response.headers["RateLimit-Remaining"] = str(exc.remaining)
        response.headers["RateLimit-Reset"] = str(max(1, math.ceil(exc.reset_after)))
    return response


def handle_http_error(exc: HTTPException) -> Any:
    if not ours():
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
    if not ours():
        raise exc
    if is_unavailable(exc):
        # a database error from outside the store's transactions: answered as the
        # store's own StoreUnavailable is
        translated = unavailable(exc)
        translated.__cause__ = exc  # the server's log shows what the driver said
        return handle_chat33_error(translated)
    log.exception("unhandled error on %s %s", request.method, request.path)
    return error_response(500, {"error": "INTERNAL", "message": "internal server error",
                                "details": []})


def register(app: Flask) -> None:
    app.register_error_handler(Chat33Error, handle_chat33_error)
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(Exception, handle_unexpected)


__all__ = ["HTTP_CODES", "ApiError", "error_response", "ours", "register"]
