"""``/auth``: sign in and out with a session cookie; who am I."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request

from chat33_core.service import SESSION_LIFETIME, Principal

from ..auth import SESSION_COOKIE, clear_session_cookie, set_session_cookie
from ..routing import core, json_body, route
from ..schemas import LoginRequest, user_json

bp = Blueprint("chat33_auth", __name__)

_ME = {"type": "object", "required": ["user", "via", "scopes"], "properties": {
    "user": {"$ref": "User"}, "via": {"type": "string", "enum": ["key", "session"]},
    "scopes": {"type": "array", "items": {"type": "string"}}}}


@route(bp, "POST", "/auth/login", summary="Sign in", tag="Auth", auth=False,
       description="Checks the password and sets the session cookie (HttpOnly, "
       "SameSite=Lax). State-changing requests authenticated by this cookie alone must "
       "send the returned `csrfToken` in the `x-csrf-token` header. Failed sign-ins are "
       "throttled per email (10 per 15 minutes) and per client address (50 per 15 "
       "minutes): beyond, 429 with Retry-After, whatever the password. A server busy "
       "hashing other sign-ins answers 503 with Retry-After.",
       body={"application/json": "LoginRequest"}, body_required=True,
       responses={200: ("Signed in", {
           "type": "object", "required": ["user", "csrfToken"],
           "properties": {"user": {"$ref": "User"}, "csrfToken": {"type": "string"}}})},
       errors=[400, 401, 429])
def login(principal: Principal) -> Any:
    req = json_body(LoginRequest)
    user, session, csrf = core().login(req.email, req.password, client=request.remote_addr)

    response = jsonify({"user": user_json(user), "csrfToken": csrf})
    set_session_cookie(response, session, int(SESSION_LIFETIME.total_seconds()))
    return response


@route(bp, "POST", "/auth/logout", summary="Sign out", tag="Auth",
       description="Ends the session (cookie sessions send `x-csrf-token`).",
       responses={200: ("Signed out", {"type": "object", "required": ["loggedOut"],
                                       "properties": {"loggedOut": {"const": True}}})})
def logout(principal: Principal) -> Any:

    if principal.via == "session":
        core().logout(request.cookies.get(SESSION_COOKIE))
    response = jsonify({"loggedOut": True})
    clear_session_cookie(response)
    return response


@route(bp, "GET", "/auth/me", summary="Who is signed in", tag="Auth",
       description="The user behind the session or the API key, and the scopes in force.",
       responses={200: ("The caller", _ME)})
def me(principal: Principal) -> Any:
    # the core has no "get user" operation yet: read it from the core's store
    user = core().store.get_user(principal.user_id)
    return {"user": user_json(user), "via": principal.via, "scopes": sorted(principal.scopes)}
