"""Durable, signed ``callbackUrl`` webhooks.

* **Outbox.** The worker writes a ``webhook_deliveries`` row (the store's
  :mod:`~chat33_core.store.outbox`, with :func:`payload_for`'s payload) in the *same
  transaction* that makes a post PUBLISHED or FAILED, so a delivery is never lost and
  never sent for a change that rolled back.
* **Payload.** Exactly the documented ``{postId, status, externalPostId,
  externalPostUrl, error}``.
* **Signature.** Standard Webhooks: headers ``webhook-id`` (the delivery id, the same on
  every retry: receivers deduplicate on it), ``webhook-timestamp`` (unix seconds of this
  attempt) and ``webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``
  keyed with the organization's secret ``whsec_<base64>`` (the key is the base64-decoded
  part after the prefix). For a grace period after a rotation (24 h by default) the
  header carries a second ``v1,<sig>`` entry, made with the replaced secret, so
  receivers switch secrets without losing a delivery. :func:`verify` is the receiver's
  side.
* **Delivery.** :class:`WebhookDispatcher` (run by the worker) claims due rows with a
  lease, POSTs through the guarded client (:class:`~chat33_core.fetch.GuardedClient`: no
  private addresses unless allowed, no redirects followed), and on failure retries on the
  Standard Webhooks schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h: about a day),
  with jitter. Each attempt is logged in the post's logs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from . import logs, metrics
from .errors import Issue, ValidationError
from .models import (
    MAX_WEBHOOK_SECRET_GRACE,
    WEBHOOK_SECRET_GRACE,
    LogEvent,
    Post,
    WebhookSecret,
    utcnow,
)
from .store.unavailable import safe_text

if TYPE_CHECKING:
    from .config import Settings
    from .security import Vault
    from .store import Store

log = logging.getLogger(__name__)

SECRET_PREFIX = "whsec_"
#: seconds to wait after the 1st, 2nd, ... failed attempt (the Standard Webhooks schedule)
DEFAULT_SCHEDULE: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)
#: a receiver's clock may differ from ours by this much
TOLERANCE_S = 5 * 60


# --- payload and outbox -----------------------------------------------------------------


def payload_for(post: Post) -> dict[str, Any]:
    """The documented body, nothing more."""
    return {
        "postId": post.id,
        "status": post.status.value,
        "externalPostId": post.external_post_id,
        "externalPostUrl": post.external_post_url,
        "error": post.error_message,
    }


def body_bytes(payload: Mapping[str, Any]) -> bytes:
    """The exact bytes sent (and signed): compact JSON."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def needs_reconnect_payload(post: Post, message: str) -> dict[str, Any]:
    """``account.needs_reconnect``: the platform refused the account's credentials and
    a refresh could not fix them; its posts wait until it is reconnected."""
    return {"type": "account.needs_reconnect", "accountId": post.account_id,
            "platform": post.platform, "accountName": post.account_name,
            "postId": post.id, "message": message}


# --- signatures ---------------------------------------------------------------------------


def generate_secret() -> str:
    """A new secret in the Standard Webhooks format: ``whsec_`` + base64 of 32 random bytes."""
    import secrets

    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def signing_key(secret: str) -> bytes:
    """The HMAC key of ``secret``: the base64-decoded part after ``whsec_``.

    Secrets written in URL-safe base64 (``-``/``_``, no padding) are decoded as such, so
    older chat33 secrets keep working; new ones are standard base64 (:func:`generate_secret`).
    """
    raw = secret.removeprefix(SECRET_PREFIX)
    padded = raw + "=" * (-len(raw) % 4)
    try:
        if "-" in raw or "_" in raw:
            return base64.urlsafe_b64decode(padded)
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        # not base64 at all: the secret's bytes are the key (never refuse to sign)
        return raw.encode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,<base64 HMAC-SHA256>``."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    mac = hmac.new(signing_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def headers_for(secrets: str | Sequence[str], msg_id: str, body: bytes,
                timestamp: int | None = None) -> dict[str, str]:
    """The Standard Webhooks headers; with several secrets (the current one and those
    still in their grace period after a rotation), ``webhook-signature`` carries one
    space-separated ``v1,<sig>`` entry per secret, and a receiver accepts the delivery
    when any entry matches its secret."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    keys = [secrets] if isinstance(secrets, str) else list(secrets)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(k, msg_id, timestamp, body) for k in keys),
    }


def verify(secret: str, headers: Mapping[str, str], body: bytes, *,
           tolerance_s: float = TOLERANCE_S, now: float | None = None) -> bool:
    """The receiver's check: a ``v1`` signature matches and the timestamp is recent.
    ``headers`` lookups are case-insensitive when given an httpx/werkzeug mapping."""
    msg_id = headers.get("webhook-id")
    stamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature") or ""
    if not msg_id or not stamp or not stamp.isdigit():
        return False
    if abs((time.time() if now is None else now) - int(stamp)) > tolerance_s:
        return False
    expected = sign(secret, msg_id, int(stamp), body).split(",", 1)[1]
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return True
    return False


# --- delivery -------------------------------------------------------------------------------


def retry_delay(failed_attempts: int, schedule: Sequence[float] = DEFAULT_SCHEDULE
                ) -> float | None:
    """Seconds before the next try after ``failed_attempts`` failures (±10 % jitter), or
    None when the schedule is exhausted."""
    if failed_attempts < 1 or failed_attempts > len(schedule):
        return None
    base = schedule[failed_attempts - 1]
    return base * random.uniform(0.9, 1.1)


def schedule_from_env(env: Mapping[str, str]) -> tuple[float, ...]:
    """``CHAT33_WEBHOOK_RETRY_SCHEDULE_S=5,300,...`` overrides the schedule (tests, demo)."""
    raw = env.get("CHAT33_WEBHOOK_RETRY_SCHEDULE_S")
    if not raw:
        return DEFAULT_SCHEDULE
    return tuple(float(x) for x in raw.split(",") if x.strip())


class WebhookDispatcher:
    """Claims due deliveries and sends them. Thread-safe; one per worker process.
    ``signing_secrets(org_id)`` gives the secrets a delivery is signed with (the
    service's :meth:`~chat33_core.service.Chat33.webhook_signing_secrets`)."""

    def __init__(self, settings: Settings, store: Store,
                 signing_secrets: Callable[[str], list[str]], owner: str, *,
                 lease_s: float = 120.0, schedule: Sequence[float] | None = None,
                 timeout: float = 15.0) -> None:
        self.settings = settings
        self.store = store
        self.signing_secrets = signing_secrets
        self.owner = owner
        self.lease = timedelta(seconds=lease_s)
        self.schedule = tuple(schedule) if schedule is not None else schedule_from_env(
            settings.env)
        self.timeout = timeout
        self._client: Any = None
        self._client_lock = threading.Lock()

    @property
    def client(self) -> Any:
        """The guarded client, made on first use (most worker runs send no webhook)."""
        with self._client_lock:
            if self._client is None:
                from .fetch import GuardedClient

                self._client = GuardedClient(self.settings, timeout=self.timeout)
            return self._client

    def close(self) -> None:
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def claim(self, limit: int, now: datetime | None = None) -> list[dict[str, Any]]:
        """Lease up to ``limit`` due deliveries (pending, due, and not leased by a live
        worker). Rows are locked with SKIP LOCKED on PostgreSQL."""
        now = now or utcnow()
        return self.store.claim_deliveries(self.owner, limit, now, now + self.lease)

    def next_due(self) -> datetime | None:
        return self.store.next_delivery_due()

    def deliver(self, row: Mapping[str, Any]) -> bool:
        """Send one delivery and record the outcome; True when the receiver took it."""
        with logs.context(postId=row["post_id"], orgId=row["org_id"]):
            return self._deliver(row)

    def _deliver(self, row: Mapping[str, Any]) -> bool:
        from .fetch import FetchError

        attempt = int(row["attempts"]) + 1
        body = body_bytes(row["payload"])
        error: str | None = None
        final = False
        try:
            secrets = self.signing_secrets(row["org_id"])
            response = self.client.post_json(row["url"], body,
                                             headers_for(secrets, row["id"], body))
            if 200 <= response.status_code < 300:
                self._record(row, attempt, delivered=True,
                             message=f"webhook delivered to {row['url']} "
                             f"(HTTP {response.status_code}, attempt {attempt})",
                             status_code=response.status_code)
                return True
            error = f"the receiver answered HTTP {response.status_code}"
        except FetchError as exc:
            error = exc.message
            # a refused address or a malformed URL will not get better by waiting
            final = exc.reason in ("blocked_address", "invalid_url")
        except Exception as exc:  # never let one delivery kill the worker
            log.exception("webhook %s failed", row["id"])
            error = safe_text(exc)
        delay = None if final else retry_delay(attempt, self.schedule)
        self._record(row, attempt, delivered=False, error=error, delay=delay)
        return False

    def _record(self, row: Mapping[str, Any], attempt: int, *, delivered: bool,
                message: str = "", error: str | None = None, delay: float | None = None,
                status_code: int | None = None) -> None:
        now = utcnow()
        values: dict[str, Any] = {"attempts": attempt, "lease_owner": None,
                                  "lease_expires_at": None}
        data: dict[str, Any] = {"deliveryId": row["id"], "url": row["url"],
                                "attempt": attempt}
        if delivered:
            values.update(status="delivered", delivered_at=now, last_error=None)
            event = "webhook_delivered"
            data["statusCode"] = status_code
        elif delay is None:
            values.update(status="failed", last_error=error)
            event = "webhook_failed"
            message = (f"webhook to {row['url']} failed for good after {attempt} "
                       f"attempt{'s' if attempt > 1 else ''}: {error}")
        else:
            when = now + timedelta(seconds=delay)
            values.update(next_attempt_at=when, last_error=error)
            event = "webhook_retry_scheduled"
            message = (f"webhook to {row['url']} failed (attempt {attempt}): {error}; "
                       f"next try at {when.isoformat(timespec='seconds')}")
            data["nextAttemptAt"] = when.isoformat()
        if error:
            data["error"] = error
        self.store.record_delivery(self.owner, row["id"], values, LogEvent(
            id=None, post_id=row["post_id"], event=event, message=message, data=data))
        metrics.record_webhook(event.removeprefix("webhook_").removesuffix("_scheduled"))


# --- the signing secrets ---------------------------------------------------------------


class WebhookSecrets:
    """Each organization's webhook signing secrets, kept encrypted. Given the store and
    the vault (asked for on first use: only secrets need the secret key)."""

    def __init__(self, store: Store, vault: Callable[[], Vault]) -> None:
        self.store = store
        self.vault = vault

    def webhook_secret(self, org_id: str) -> str:
        """The organization's current webhook signing secret (made on first use)."""
        enc, _ = self.store.webhook_secrets_enc(org_id, utcnow())
        if enc is None:
            return self.rotate_webhook_secret(org_id).secret
        return self.vault().decrypt(enc)

    def webhook_secret_state(self, org_id: str) -> WebhookSecret:
        """The current secret and when the secrets it replaced stop signing."""
        enc, retired = self.store.webhook_secrets_enc(org_id, utcnow())
        if enc is None:
            return self.rotate_webhook_secret(org_id)
        return WebhookSecret(secret=self.vault().decrypt(enc),
                             previous_secrets_expire_at=[until for _, until in retired])

    def webhook_signing_secrets(self, org_id: str) -> list[str]:
        """Every secret a delivery is signed with now: the current one first, then the
        ones a rotation replaced, while their grace period lasts."""
        enc, retired = self.store.webhook_secrets_enc(org_id, utcnow())
        if enc is None:
            return [self.rotate_webhook_secret(org_id).secret]
        return [self.vault().decrypt(e) for e in (enc, *(e for e, _ in retired))]

    def rotate_webhook_secret(self, org_id: str, *,
                              grace: timedelta = WEBHOOK_SECRET_GRACE) -> WebhookSecret:
        """A new webhook secret for the organization. For ``grace`` after now (0 to
        7 days), deliveries are signed with the replaced secret too, so receivers can
        switch without losing one; a grace of 0 ends every older secret at once (a
        leaked secret)."""
        if not timedelta(0) <= grace <= MAX_WEBHOOK_SECRET_GRACE:
            raise ValidationError("invalid grace period", details=[Issue(
                "graceSeconds", f"must be between 0 and "
                f"{int(MAX_WEBHOOK_SECRET_GRACE.total_seconds())} seconds (7 days)")])
        # Standard Webhooks format: whsec_ + standard base64 of the key bytes
        secret = generate_secret()
        now = utcnow()
        self.store.replace_webhook_secret_enc(org_id, self.vault().encrypt(secret),
                                              keep_until=now + grace if grace else None,
                                              now=now)
        _, retired = self.store.webhook_secrets_enc(org_id, now)
        return WebhookSecret(secret=secret,
                             previous_secrets_expire_at=[until for _, until in retired])
