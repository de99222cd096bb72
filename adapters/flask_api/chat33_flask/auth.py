"""Who is calling: an API key (``x-api-key``) or the session cookie.

A request with ``x-api-key`` is authenticated by the key alone, cookies ignored (so a
key needs no CSRF token). A request with only the session cookie is a browser's: when it
changes state it must carry the ``x-csrf-token`` header that login returned (DESIGN.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from flask import request
from werkzeug.wrappers import Response

if TYPE_CHECKING:
    from chat33_core.models import Account
    from chat33_core.service import Chat33, Principal

SESSION_COOKIE = "chat33_session"
API_KEY_HEADER = "x-api-key"
CSRF_HEADER = "x-csrf-token"


def authenticate(core: Chat33, *, csrf: bool, accounts: Sequence[str] = ()
                 ) -> tuple[Principal, dict[str, Account | None] | None]:
    """The :class:`~chat33_core.service.Principal` of the request (or Unauthorized), and
    the accounts read with it. ``csrf``: the request changes state, so a cookie session
    must prove its CSRF token. ``accounts``: account ids the request names, read along
    with an API key (each id -> the Account or None); None when they were not read."""
    headers = request.headers
    key = headers.get(API_KEY_HEADER)
    # no Cookie header: nothing to parse (a cookie lookup that misses costs an exception)
    cookie = request.cookies.get(SESSION_COOKIE) if key is None and "cookie" in headers \
        else None
    if key is not None or not cookie:
        if accounts:
            return core.authenticate_key_with_accounts(key, accounts)
        return core.authenticate_key(key), None
    principal = core.authenticate_session(cookie)
    if csrf:
        core.check_csrf(principal, headers.get(CSRF_HEADER))
    return principal, None


def set_session_cookie(response: Response, token: str, max_age: int) -> None:
    # HttpOnly: scripts never see it; SameSite=Lax: other sites' forms do not send it;
    # Secure whenever the request itself came over HTTPS.
    response.set_cookie(SESSION_COOKIE, token, max_age=max_age, httponly=True,
                        samesite="Lax", secure=request.is_secure, path="/")


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="Lax",
                           secure=request.is_secure)


__all__ = ["API_KEY_HEADER", "CSRF_HEADER", "SESSION_COOKIE", "authenticate",
           "clear_session_cookie", "set_session_cookie"]
