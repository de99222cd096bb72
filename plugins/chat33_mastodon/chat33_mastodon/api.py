"""Requests to a Mastodon instance and its error answers (platforms-more.md §2.7).

Every answer that is not a success becomes the chat33 error that says what the worker
must do. Mastodon's error shape is ``{"error": "...", "error_description"?}``; the HTTP
status decides:

* 401 — the token is invalid or revoked. Mastodon tokens never expire and have no
  refresh, so the owner must connect again: :class:`ReconnectRequired`;
* 403 (e.g. an unconfirmed e-mail, a suspended account), 404 (``Record not found``),
  other 4xx, 422 (``Validation failed: ...``) — permanent, with Mastodon's message; but
  the 422 for media still processing is transient (attach it a moment later);
* 429 — :class:`RateLimitedByMastodon` with the wait until ``X-RateLimit-Reset`` (an ISO
  8601 instant, not epoch seconds);
* 503 — the instance is down or in maintenance: transient;
* other 5xx — transient, except for the request that creates the status, where the
  status may exist: :class:`UnknownOutcome` (confirmed by resending with the same
  ``Idempotency-Key``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from chat33_core.errors import (
    PermanentError,
    ReconnectRequired,
    Throttled,
    TransientError,
    UnknownOutcome,
)
from chat33_core.http import send

PLATFORM = "Mastodon"
#: the wait when a 429 names no reset (Mastodon's shortest window is 5 minutes)
DEFAULT_RATE_WAIT_S = 60.0
#: the 422 message of a status that names media still being processed
UNFINISHED_MEDIA = "not finished processing"
#: how long to wait before attaching media that was still processing
UNFINISHED_WAIT_S = 5.0


class RateLimitedByMastodon(Throttled):
    """A 429: retry after ``retry_after`` seconds (until ``X-RateLimit-Reset``)."""


def message_of(response: httpx.Response) -> str:
    """Mastodon's message (``error`` and ``error_description``) or the start of the body."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, Mapping) and isinstance(body.get("error"), str):
        description = body.get("error_description")
        if isinstance(description, str) and description:
            return f"{body['error']}: {description}"
        return str(body["error"])
    return response.text[:200] or response.reason_phrase


def reset_wait(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """Seconds until ``X-RateLimit-Reset`` (ISO 8601), at least 1; None if absent or odd."""
    value = headers.get("X-RateLimit-Reset") or headers.get("x-ratelimit-reset")
    if not value:
        return None
    try:
        reset = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if reset.tzinfo is None:
        reset = reset.replace(tzinfo=UTC)
    return max(1.0, (reset - (now or datetime.now(UTC))).total_seconds())


def raise_for(response: httpx.Response, *, what: str, creates: bool = False) -> None:
    """Raise the chat33 error for a failed answer (see the module doc); None on success."""
    if response.is_success:
        return
    status = response.status_code
    message = message_of(response)
    text = f"{what}: {message}"
    code = str(status)
    if status == 401:
        raise ReconnectRequired(f"{what}: Mastodon refused the access token ({message}); "
                                "connect the account again", platform_code=code)
    if status == 429:
        wait = reset_wait(response.headers)
        raise RateLimitedByMastodon(f"{what}: Mastodon rate limit ({message})",
                                    retry_after=wait if wait is not None
                                    else DEFAULT_RATE_WAIT_S, platform_code=code)
    if status == 422 and UNFINISHED_MEDIA in message:
        raise TransientError(text, retry_after=UNFINISHED_WAIT_S, platform_code="processing")
    if status == 503:
        raise TransientError(f"{text} (HTTP 503)", platform_code=code)
    if status >= 500:
        if creates:
            raise UnknownOutcome(f"{text} (HTTP {status}): the status may or may not exist",
                                 platform_code=code)
        raise TransientError(f"{text} (HTTP {status})", platform_code=code)
    if status in (408, 409):  # a timeout, or the same Idempotency-Key still in flight
        raise TransientError(text, platform_code=code)
    raise PermanentError(text, platform_code=code)


class Api:
    """Requests to one instance with one access token."""

    def __init__(self, http: httpx.Client, base: str, token: str) -> None:
        self.http = http
        self.base = base.rstrip("/")
        self.token = token

    def call(self, method: str, path: str, *, what: str, creates: bool = False,
             allow: tuple[int, ...] = (), **kwargs: Any) -> httpx.Response:
        """One request; a failed answer raises (:func:`raise_for`) unless its status is in
        ``allow``; no answer raises what :func:`chat33_core.http.send` chooses."""
        headers = dict(kwargs.pop("headers", {}))
        headers["Authorization"] = f"Bearer {self.token}"
        response = send(self.http, method, f"{self.base}{path}", platform=PLATFORM, what=what,
                        creates=creates, headers=headers, **kwargs)
        if response.status_code not in allow:
            raise_for(response, what=what, creates=creates)
        return response

    def json(self, method: str, path: str, *, what: str, **kwargs: Any) -> dict[str, Any]:
        """:meth:`call`, answering the JSON object (a success without one is transient,
        or an unknown outcome for a creating request)."""
        response = self.call(method, path, what=what, **kwargs)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            error = UnknownOutcome if kwargs.get("creates") else TransientError
            raise error(f"{what}: Mastodon answered without a JSON object: "
                        f"{response.text[:200]}", platform_code="bad-response")
        return body
