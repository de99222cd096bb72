"""The web app: pages for the people who run social accounts, under ``/app``.

Server-rendered (Jinja templates shipped in this package) with a few small modules of
plain JavaScript; no build step. It calls the core directly and signs in with the
API's session login. ``create_app()`` mounts it; on an app of your own (with the API
mounted by ``init_app``) call :func:`register`.

Every answer of the web app carries a Content-Security-Policy without inline scripts
(``frame-ancestors 'none'``), ``X-Content-Type-Options: nosniff`` and a Referrer-Policy.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Any

from flask import Flask, abort, g, redirect, request, send_from_directory, url_for
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from .. import errors
from . import pages
from .pages import bp
from .session import NOTICE_COOKIE, TZ_COOKIE, csrf_token, notice, signed_in

STATIC = Path(__file__).parent / "static"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; base-uri 'none'; frame-ancestors 'none'")
#: a versioned asset URL (``?v=<hash>``) never changes: browsers keep it a year
IMMUTABLE = 365 * 24 * 3600


@cache
def asset_version(name: str) -> str:
    """The first 12 hex digits of the asset's SHA-256 (its URL's ``v``)."""
    return hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:12]


@bp.get("/static/<path:name>")
def static(name: str) -> Any:
    if name not in {p.name for p in STATIC.iterdir()}:
        abort(404)
    versioned = request.args.get("v") == asset_version(name)
    response = send_from_directory(STATIC, name, max_age=IMMUTABLE if versioned else 300)
    if versioned:
        response.cache_control.immutable = True
    response.cache_control.public = True
    return response


def asset(name: str) -> str:
    return url_for("chat33_webapp.static", name=name, v=asset_version(name))


@bp.app_template_filter("local")
def _local(when: Any) -> str:
    return pages.local(when)


def _ours() -> bool:
    """Whether the request is for a path of the web app (a page or not)."""
    prefix = bp.url_prefix or ""
    return request.path == prefix or request.path.startswith(prefix + "/")


# app-wide: a path under /app that no page has is answered by the web app too (the API
# renders no templates)
@bp.app_context_processor
def _context() -> dict[str, Any]:
    return {"asset": asset, "csrf_token": csrf_token(), "notice": notice(),
            "principal": g.get("webapp_principal"),
            "endpoint": request.endpoint or "", "tz_cookie": TZ_COOKIE}


@bp.after_app_request
def _headers(response: Response) -> Response:
    if not _ours():
        return response
    secure(response)
    if request.cookies.get(NOTICE_COOKIE) and response.status_code < 300 \
            and response.mimetype == "text/html":
        response.delete_cookie(NOTICE_COOKIE, path="/app", httponly=True, samesite="Lax",
                               secure=request.is_secure)
    if response.mimetype == "text/html":
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def secure(response: Response) -> Response:
    headers = response.headers
    headers["Content-Security-Policy"] = CSP
    headers["X-Content-Type-Options"] = "nosniff"
    headers["X-Frame-Options"] = "DENY"
    headers["Referrer-Policy"] = "same-origin"
    return response


def _http_error(exc: HTTPException) -> Any:
    """HTTP errors (a path no page has, a method it does not take): under ``/app`` the
    web app's error page; elsewhere the API's JSON."""
    if not _ours():
        return errors.handle_http_error(exc)
    status = exc.code or 500
    message = (f"There is no page at {request.path}." if status == 404
               else exc.description or exc.name)
    if "webapp_principal" not in g:  # no page ran: shown with the menu if signed in
        g.webapp_principal = signed_in()
    return pages.chat33_error(errors.ApiError(
        status, errors.HTTP_CODES.get(status, exc.name.upper().replace(" ", "_")), message))


def register(app: Flask, *, root_redirect: bool = True) -> None:
    """Mount the web app on ``app`` (whose core ``init_app`` set); ``root_redirect``:
    ``/`` sends browsers to ``/app``. HTTP errors of paths under ``/app`` (such as a
    page that does not exist) are answered with the web app's error page, the API's
    in JSON as before."""
    app.register_blueprint(bp)
    app.register_error_handler(HTTPException, _http_error)
    if root_redirect:
        @app.get("/", endpoint="chat33_root")
        def root() -> Any:
            return secure(redirect(url_for("chat33_webapp.home")))


__all__ = ["CSP", "asset", "bp", "register"]
