"""Connecting accounts by OAuth 2 (DESIGN.md "Connecting accounts"): start, the
platform's redirect back, the connection's state, the selection, reconnect and
disconnect. The flow itself is the core's (:mod:`chat33_core.connecting`)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from chat33_core.security import Principal

from ..auth import SESSION_COOKIE
from ..routing import Param, core, json_body, route
from ..schemas import (
    ConnectRequest,
    ReconnectRequest,
    SelectTargetsRequest,
    connection_json,
)

bp = Blueprint("chat33_connect", __name__)

_REMOVED = {"type": "object", "required": ["success", "cancelledPosts"], "properties": {
    "success": {"const": True}, "cancelledPosts": {"type": "integer", "minimum": 0}}}


@route(bp, "POST", "/accounts/connect", summary="Start connecting an account", tag="Accounts",
       description="Creates a connection: open `authorizationUrl` in the browser; the "
       "platform sends it back to `{CHAT33_PUBLIC_BASE_URL}/api/v1/oauth/{platform}/callback`. "
       "The connection expires in 10 minutes and its `state` works once. `returnUrl` "
       "(optional) must be on the public origin or one of "
       "`CHAT33_ALLOWED_RETURN_ORIGINS`. A platform whose app credentials "
       "(`CHAT33_<PLATFORM>_CLIENT_ID`, `_CLIENT_SECRET`) are not set is 422 "
       "NOT_CONFIGURED.",
       scope="accounts:write", body={"application/json": "ConnectRequest"},
       body_required=True, responses={201: ("Connection started", "Connection")},
       errors=[400, 422])
def start_connection(principal: Principal) -> Any:
    req = json_body(ConnectRequest)
    view = core().start_connection(principal, req.platform, req.return_url)
    return connection_json(view), 201


@route(bp, "GET", "/accounts/connect/{connectionId}", summary="Get a connection",
       tag="Accounts", scope="accounts:read",
       description="The connection's status, the targets to choose from (`select`), the "
       "connected accounts (`connected`) or the error (`failed`, `expired`).",
       responses={200: ("The connection", "Connection")})
def get_connection(principal: Principal, connectionId: str) -> Any:
    return connection_json(core().get_connection(principal.org_id, connectionId))


@route(bp, "POST", "/accounts/connect/{connectionId}/select", summary="Choose the accounts",
       tag="Accounts", scope="accounts:write",
       description="Connects the chosen `targets` of a connection in status `select` "
       "(409 in any other status).",
       body={"application/json": "SelectTargetsRequest"}, body_required=True,
       responses={200: ("Connected", "Connection")}, errors=[400, 409])
def select_targets(principal: Principal, connectionId: str) -> Any:
    req = json_body(SelectTargetsRequest)
    view = core().select_targets(principal, connectionId, req.external_ids)
    return connection_json(view)


@route(bp, "POST", "/accounts/{id}/reconnect", summary="Reconnect an account",
       tag="Accounts", scope="accounts:write",
       description="Starts a connection bound to the account: the platform must sign in "
       "the same identity (`externalId`), or the connection fails with "
       "`account_mismatch`. Clears `needsReconnect` once done.",
       body={"application/json": "ReconnectRequest"},
       responses={201: ("Connection started", "Connection")}, errors=[400, 409, 422])
def reconnect_account(principal: Principal, id: str) -> Any:
    req = json_body(ReconnectRequest)
    view = core().start_connection(principal, "", req.return_url, reconnect_account_id=id)
    return connection_json(view), 201


@route(bp, "DELETE", "/accounts/{id}", summary="Disconnect an account", tag="Accounts",
       scope="accounts:write",
       description="Revokes the grant at the platform where it can, forgets the tokens, "
       "and cancels the account's QUEUED posts (each with a logged reason). Published "
       "posts stay readable.",
       responses={200: ("Disconnected", _REMOVED)})
def disconnect_account(principal: Principal, id: str) -> Any:
    removal = core().disconnect_account(principal.org_id, id)
    return {"success": True, "cancelledPosts": len(removal.cancelled_posts)}


@route(bp, "GET", "/oauth/{platform}/callback", summary="OAuth redirect back",
       tag="Accounts", auth=False, open_query=True, content_type="text/html",
       description="Where the platform sends the browser after consent (no API key: "
       "`state` is the credential, good once, for 10 minutes). With a `returnUrl`: 303 "
       "to `returnUrl?connectionId=…&status=connected|select|failed|expired`; without: "
       "a page saying what happened. A missing, unknown or used `state` is a 400 page.",
       params=[Param("state", description="the connection's state"),
               Param("code", description="the authorization code"),
               Param("error", description="the platform's refusal (access_denied...)")],
       responses={200: ("A page saying what happened", {"type": "string"}),
                  303: ("Back to the connection's returnUrl", None),
                  400: ("The state is missing, unknown or already used", {"type": "string"})})
def oauth_callback(principal: Principal | None, platform: str) -> Any:
    params = {k: v for k, v in request.args.items()}
    outcome = core().oauth_callback(platform, params, request.cookies.get(SESSION_COOKIE))
    if outcome.redirect_url and outcome.http_status == 200:
        response = Response(status=303, headers={"Location": outcome.redirect_url})
    else:
        response = Response(outcome.page(), status=outcome.http_status,
                            content_type="text/html; charset=utf-8")
    # the page and the redirect must not leak the code: no caching, no Referer
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
