"""``/api-keys``: session only; the raw key is shown once, at creation."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from chat33_core.service import Principal

from ..routing import core, count_request, json_body, route
from ..schemas import CreateApiKeyRequest, api_key_json

bp = Blueprint("chat33_api_keys", __name__)


@route(bp, "POST", "/api-keys", summary="Create API key", tag="API Keys", session_only=True,
       description="Generates a new API key. **Session auth only**. The raw key is returned "
       "ONCE in the response and never stored or retrievable again. Rate limit 10/hour per "
       "user. `scopes` (additive) narrows the key; default: `accounts:read`, `posts:read`, "
       "`posts:write`, `media:write`. `settings:write` (read and rotate the webhook secret) "
       "is given only when asked for.",
       body={"application/json": "CreateApiKeyRequest"}, rate_limit="api_keys.create",
       responses={201: ("Key created. Save the `key` value — it cannot be retrieved later.",
                        "ApiKeyCreated")},
       errors=[400])
def create_api_key(principal: Principal) -> Any:
    app = core()
    count_request(principal.user_id)
    req = json_body(CreateApiKeyRequest)
    key, raw = app.create_api_key(principal.org_id, principal.user_id, req.name, req.scopes)
    return {**api_key_json(key), "key": raw}, 201


@route(bp, "GET", "/api-keys", summary="List API keys", tag="API Keys", session_only=True,
       description="Returns key prefixes and metadata. Raw keys are never returned.",
       responses={200: ("Key list", {"type": "object", "required": ["items"], "properties": {
           "items": {"type": "array", "items": {"$ref": "ApiKey"}}}})})
def list_api_keys(principal: Principal) -> Any:
    return {"items": [api_key_json(k) for k in core().list_api_keys(principal.org_id)]}


@route(bp, "DELETE", "/api-keys/{id}", summary="Revoke an API key", tag="API Keys",
       session_only=True, description="Sets the key inactive.",
       responses={200: ("Revoked", {"type": "object", "required": ["revoked"],
                                    "properties": {"revoked": {"const": True}}})})
def revoke_api_key(principal: Principal, id: str) -> Any:
    core().revoke_api_key(principal.org_id, id)
    return {"revoked": True}
