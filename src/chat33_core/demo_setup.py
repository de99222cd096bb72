"""What ``chat33 demo`` sets up around its scenario: its user, the accounts it adds
directly (the platforms that do not connect by OAuth; those it connects through the API),
and the webhook receiver that checks every delivery's signature."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from .models import Credentials, utcnow
from .plugins import PluginHost

if TYPE_CHECKING:
    from .service import Chat33

#: the demo's user (its password is made anew each run)
DEMO_EMAIL = "demo@chat33.local"
#: the accounts the wave-1 sandboxes know (username, external id, token) where the
#: generic ``chat33demo_<name>`` / ``sandbox-<name>`` / ``sandbox-token`` will not do:
#: Bluesky's external id is a DID and its token the app password of the sandbox's user,
#: Telegram posts to a channel with a bot token of the Bot API's shape, LinkedIn's author
#: is a URN
DEMO_ACCOUNTS: dict[str, tuple[str, str, str | None]] = {
    "bluesky": ("chat33demo.bsky.social", "did:plc:chat33sandboxdemouser234", None),
    "mastodon": ("chat33demo_mastodon", "sandbox-mastodon", None),
    "telegram": ("chat33_sandbox_bot", "@chat33demo", "7000000001:chat33-sandbox-token"),
    "threads": ("chat33", "27000000000000001", None),
    "linkedin": ("chat33-demo", "urn:li:person:chat33Demo", None),
}


def add_accounts(core: Chat33, host: PluginHost, org_id: str,
                 platforms: Iterable[str]) -> dict[str, str]:
    """Add an account of each of ``platforms`` with its sandbox's test credentials, as
    ``chat33 accounts add --sandbox`` does; their ids by platform."""
    ids = {}
    for name in platforms:
        username, external_id, token = DEMO_ACCOUNTS.get(name) or (
            f"chat33demo_{name}", f"sandbox-{name}", None)
        credentials = Credentials(
            access_token=token or "sandbox-token", refresh_token="sandbox-refresh",
            expires_at=utcnow() + timedelta(days=50), issued_at=utcnow())
        ids[name] = core.add_account(
            org_id, name, f"Demo {host.platform(name).display_name}", username=username,
            external_id=external_id, credentials=credentials, metadata={"sandbox": True}).id
    return ids


class WebhookReceiver:
    """A local endpoint that records deliveries and checks their Standard Webhooks
    signature (``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body``)."""

    def __init__(self) -> None:
        self.secret: str | None = None
        self.deliveries: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def verify(self, headers: Mapping[str, str], body: bytes) -> bool:
        if not self.secret:
            return False
        msg_id = headers.get("webhook-id", "")
        stamp = headers.get("webhook-timestamp", "")
        raw = self.secret.removeprefix("whsec_")
        try:
            key = base64.b64decode(raw, validate=True)
        except ValueError:
            key = raw.encode()
        expected = base64.b64encode(hmac.new(
            key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()).decode()
        given = [part.split(",", 1)[1] for part in headers.get("webhook-signature", "").split()
                 if part.startswith("v1,")]
        fresh = stamp.isdigit() and abs(time.time() - int(stamp)) < 300
        return fresh and any(hmac.compare_digest(expected, g) for g in given)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        from werkzeug.wrappers import Request, Response

        request = Request(environ)
        body = request.get_data()
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        with self.lock:
            self.deliveries.append({"payload": payload, "verified": self.verify(headers, body)})
        return Response("ok")(environ, start_response)

    def for_post(self, post_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [d for d in self.deliveries
                    if isinstance(d["payload"], dict) and d["payload"].get("postId") == post_id]
