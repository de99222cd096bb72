"""The app factory and the extension that mounts chat33's REST API on any Flask app.

::

    app = create_app()                      # a whole app (gunicorn chat33_flask:create_app())
    init_app(my_app, core=Chat33(settings)) # or mount the API on your own app

``app.extensions["chat33"]`` holds the :class:`~chat33_core.service.Chat33` core; views
reach it through :func:`chat33_flask.routing.core` and nothing else.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import re
import time
import uuid
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, g, jsonify, request

from chat33_core.config import Settings
from chat33_core.errors import ConfigurationError, Issue
from chat33_core.service import Chat33

from . import errors, openapi, webapp
from .json_provider import OrjsonProvider
from .routing import (
    MAX_HEADER_BYTES,
    MAX_HEADERS,
    MAX_URL_BYTES,
    PARAM_CONVERTER,
    RequestState,
    param_converter,
)
from .views import BLUEPRINTS
from .views.media import files as media_files

API_PREFIX = "/api/v1"
access_log = logging.getLogger("chat33.http")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:+/=-]{1,128}")


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """A Flask app serving the API. ``config`` updates ``app.config``; a ``CHAT33_CORE``
    entry (a ready :class:`Chat33`) or ``CHAT33_SETTINGS`` (a :class:`Settings`) choose
    the core, otherwise it is built from the environment."""
    app = Flask("chat33_flask")
    app.json = OrjsonProvider(app)
    # the whole app is the API: every path answers errors as JSON
    app.config["CHAT33_JSON_ERROR_PREFIXES"] = ("/",)
    app.config.update(config or {})
    init_app(app, core=app.config.get("CHAT33_CORE"))
    webapp.register(app)  # the pages under /app; / redirects there
    return app


def init_app(app: Flask, core: Chat33 | None = None, *, url_prefix: str = API_PREFIX) -> Chat33:
    """Mount the API on ``app`` under ``url_prefix``, media files at ``/media/<name>``,
    ``/healthz`` and ``/readyz``; returns the core."""
    if core is None:
        settings = app.config.get("CHAT33_SETTINGS") or Settings.from_env()
        core = Chat33(settings)
    app.extensions["chat33"] = core
    app.config.setdefault("CHAT33_JSON_ERROR_PREFIXES",
                          (url_prefix + "/", "/media/", "/healthz", "/readyz"))
    app.url_map.converters[PARAM_CONVERTER] = param_converter(BLUEPRINTS)
    for bp in BLUEPRINTS:
        app.register_blueprint(bp, url_prefix=url_prefix)
    app.register_blueprint(media_files)

    @app.get(url_prefix + "/openapi.json", endpoint="chat33_openapi")
    def openapi_json() -> Any:
        doc = app.extensions.get("chat33.openapi")
        if doc is None:
            doc = app.extensions["chat33.openapi"] = openapi.build(app, url_prefix)
        return jsonify(doc)

    @app.get("/healthz", endpoint="chat33_healthz")
    def healthz() -> Any:
        return {"status": "ok"}

    @app.get("/readyz", endpoint="chat33_readyz")
    def readyz() -> Any:
        try:
            ready = bool(core.store.ping())
        except Exception:  # an unreachable database is the answer, not a crash
            access_log.exception("readiness check failed")
            ready = False
        if not ready:
            return errors.error_response(503, {
                "error": "NOT_READY", "details": [],
                "message": "the database is not reachable, or locked by another writer"})
        try:
            core.media.files.check()
        except ConfigurationError as exc:  # uploads would fail: not ready either
            return errors.error_response(503, {"error": "NOT_READY", "details": [],
                                               "message": exc.message})
        return {"status": "ready"}

    errors.register(app)
    app.before_request(_start)
    app.after_request(_finish)
    return core


class _RequestIds:
    """Request ids for requests that bring none: a random prefix per process (made anew
    in a forked child) and a counter; unique without asking the OS for randomness on
    every request."""

    def __init__(self) -> None:
        self._renew()
        os.register_at_fork(after_in_child=self._renew)

    def _renew(self) -> None:
        self._prefix = uuid.uuid4().hex[:16]
        self._count = itertools.count()

    def next(self) -> str:
        return f"{self._prefix}{next(self._count):016x}"


_request_ids = _RequestIds()


def _start() -> None:
    given = request.headers.get("x-request-id")
    request_id = given if given and _REQUEST_ID.fullmatch(given) else _request_ids.next()
    g.chat33 = RequestState(request_id, time.perf_counter())
    _check_size(request.environ)


def _check_size(environ: Mapping[str, Any]) -> None:
    """414 for a URL, 431 for headers over the limits (in the error shape, on the API's
    paths; a host app's own pages are its business)."""
    url = environ.get("RAW_URI") or environ.get("REQUEST_URI") or ""
    if len(url) > MAX_URL_BYTES and errors.ours():
        raise errors.ApiError(414, "URI_TOO_LONG", f"the URL is over {MAX_URL_BYTES} bytes",
                              details=[Issue("url", f"{len(url)} bytes")])
    count = 0
    for name, value in environ.items():
        if not name.startswith("HTTP_"):
            continue
        count += 1
        if len(name) - 5 + len(value) > MAX_HEADER_BYTES and errors.ours():
            header = name[5:].replace("_", "-").lower()
            raise errors.ApiError(431, "REQUEST_HEADER_FIELDS_TOO_LARGE",
                                  f"the {header} header is over {MAX_HEADER_BYTES} bytes",
                                  details=[Issue(f"headers.{header}", "too large")])
    if count > MAX_HEADERS and errors.ours():
        raise errors.ApiError(431, "REQUEST_HEADER_FIELDS_TOO_LARGE",
                              f"{count} headers is over the limit of {MAX_HEADERS}",
                              details=[Issue("headers", f"{count} headers")])


def _finish(response: Response) -> Response:
    current: RequestState | None = g.get("chat33")
    if current is None:  # a request that failed before _start ran
        current = RequestState(_request_ids.next(), time.perf_counter())
    headers = response.headers
    headers.add("x-request-id", current.request_id)
    rate = current.rate
    if rate is not None and response.status_code < 400:
        limit, remaining, reset = rate
        headers.add("RateLimit-Limit", str(limit))
        headers.add("RateLimit-Remaining", str(remaining))
        headers.add("RateLimit-Reset", str(max(0, math.ceil(reset))))
    if not access_log.isEnabledFor(logging.INFO):
        return response
    principal = current.principal
    access_log.info(json.dumps({
        "event": "request", "requestId": current.request_id, "method": request.method,
        "path": request.path, "status": response.status_code,
        "durationMs": round((time.perf_counter() - current.started) * 1000, 2),
        "orgId": getattr(principal, "org_id", None), "via": getattr(principal, "via", None),
        "remoteAddr": request.remote_addr,
    }))
    return response


__all__ = ["API_PREFIX", "create_app", "init_app"]
