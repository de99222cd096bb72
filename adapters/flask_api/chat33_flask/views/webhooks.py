"""``/webhooks/secret``: the organization's webhook signing secret, read and rotated.

Both need the scope ``settings:write``: whoever reads the secret can sign webhooks in
the organization's name, so reading it is as strong as changing it. Signed-in users
have the scope; an API key has it only when it was created with it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Blueprint

from chat33_core.service import Principal

from ..routing import core, json_body, route
from ..schemas import RotateWebhookSecretRequest, webhook_secret_json

bp = Blueprint("chat33_webhooks", __name__)

_SCOPE_NOTE = (" Scope `settings:write` (not among an API key's default scopes: whoever "
               "reads the secret can sign webhooks; signed-in users have it).")


@route(bp, "GET", "/webhooks/secret", summary="Get the webhook signing secret",
       tag="Webhooks", scope="settings:write",
       description="Additive. The Standard Webhooks secret (`whsec_...`) that signs every "
       "`callbackUrl` delivery of the organization (made on first use), and until when "
       "the secrets it replaced still sign deliveries too." + _SCOPE_NOTE,
       responses={200: ("The secret", {"$ref": "WebhookSecret"})})
def get_webhook_secret(principal: Principal) -> Any:
    return webhook_secret_json(core().webhook_secret_state(principal.org_id))


@route(bp, "POST", "/webhooks/secret/rotate", summary="Rotate the webhook signing secret",
       tag="Webhooks", scope="settings:write",
       description="Additive. Makes a new secret and answers it. For `graceSeconds` "
       "(default 86400, at most 604800) deliveries carry a signature made with the "
       "replaced secret too (`webhook-signature: v1,<new> v1,<old>`), so receivers can "
       "switch without losing one; `graceSeconds: 0` ends every older secret at once "
       "(a leaked secret)." + _SCOPE_NOTE,
       body={"application/json": "RotateWebhookSecretRequest"},
       responses={200: ("The new secret", {"$ref": "WebhookSecret"})})
def rotate_webhook_secret(principal: Principal) -> Any:
    req = json_body(RotateWebhookSecretRequest)
    # kept out of range when it is (the core says what is allowed), but never so far
    # out that timedelta cannot hold it
    seconds = min(max(req.grace_seconds, -1), 10**9)
    rotated = core().rotate_webhook_secret(principal.org_id, grace=timedelta(seconds=seconds))
    return webhook_secret_json(rotated)
