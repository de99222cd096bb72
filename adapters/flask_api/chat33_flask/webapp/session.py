"""Who is signed in to the web app, and the CSRF token of every change.

The web app uses the API's session login (:meth:`Chat33.login`): the session cookie
(HttpOnly, SameSite=Lax) authenticates, and the CSRF token login returned is kept in a
second HttpOnly cookie so each page can put it in its forms (``csrf_token``) and in a
``<meta>`` for its scripts (the ``x-csrf-token`` header). Every POST must carry it; the
core checks it against the digest it stored, so another site's form (which can neither
read the cookie nor the page) cannot change anything.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from flask import g, redirect, request, url_for
from werkzeug.wrappers import Response

from chat33_core.errors import Unauthorized

from ..auth import CSRF_HEADER, SESSION_COOKIE
from ..routing import core

CSRF_COOKIE = "chat33_csrf"
#: what the last change did, shown once by the page it redirects to
NOTICE_COOKIE = "chat33_notice"
#: the browser's time zone, set by the pages' script (UTC until it has run)
TZ_COOKIE = "chat33_tz"


def signed_in() -> Any:
    """The :class:`~chat33_core.service.Principal` of the web session, or None."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token or not request.cookies.get(CSRF_COOKIE):
        return None
    try:
        return core().authenticate_session(token)
    except Unauthorized:
        return None


def csrf_token() -> str:
    return request.cookies.get(CSRF_COOKIE, "")


def page(view: Callable[..., Any]) -> Callable[..., Any]:
    """A page for signed-in users: others are sent to the sign-in page; a POST must
    carry the session's CSRF token (form field ``csrf_token`` or ``x-csrf-token``)."""

    @wraps(view)
    def run(**kwargs: Any) -> Any:
        principal = signed_in()
        if principal is None:
            if request.method != "GET":
                raise Unauthorized("not signed in (or the session has ended): sign in again")
            return redirect(url_for(".signin", next=request.full_path.rstrip("?")))
        if request.method != "GET":
            token = request.form.get("csrf_token") or request.headers.get(CSRF_HEADER)
            core().check_csrf(principal, token)
        g.webapp_principal = principal
        return view(principal, **kwargs)

    return run


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of the web app only (never another site)."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and parts.path.startswith("/app") \
                and "\\" not in target:
            return target
    return url_for(".calendar")


def done(target: str, message: str) -> Response:
    """Redirect to ``target`` (after a change), which then says ``message`` once."""
    response = redirect(target)
    response.set_cookie(NOTICE_COOKIE, message[:500], httponly=True, samesite="Lax",
                        secure=request.is_secure, path="/app")
    return response


def notice() -> str | None:
    """The message of the change that led here (the page's answer then clears it)."""
    return request.cookies.get(NOTICE_COOKIE) or None


def set_cookies(response: Response, session: str, csrf: str, max_age: int) -> None:
    from ..auth import set_session_cookie

    set_session_cookie(response, session, max_age)
    response.set_cookie(CSRF_COOKIE, csrf, max_age=max_age, httponly=True, samesite="Lax",
                        secure=request.is_secure, path="/app")


def clear_cookies(response: Response) -> None:
    from ..auth import clear_session_cookie

    clear_session_cookie(response)
    response.delete_cookie(CSRF_COOKIE, path="/app", httponly=True, samesite="Lax",
                           secure=request.is_secure)


__all__ = ["CSRF_COOKIE", "NOTICE_COOKIE", "TZ_COOKIE", "clear_cookies", "csrf_token", "done",
           "notice", "page", "safe_next", "set_cookies", "signed_in"]
