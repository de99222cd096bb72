"""XRPC calls and Bluesky's errors translated into chat33's (platforms-more.md §1.1, §1.10).

Every call is ``GET`` (query) or ``POST`` (procedure) on ``{host}/xrpc/{nsid}``; an error
answers ``{"error": "<Name>", "message": "<text>"}`` with an HTTP status. What the worker
must do follows from both:

==========================================  =================================================
400 ``ExpiredToken`` / ``InvalidToken``,    :class:`CredentialsExpired` (the session is
401 (``AuthMissing`` ...)                   refreshed once); note the expired token is a 400
429 ``RateLimitExceeded``                   :class:`Throttled` with the wait until
                                            ``RateLimit-Reset`` (epoch seconds); a wait
                                            longer than :data:`QUOTA_WAIT_S` (the hourly
                                            or daily write budget) is :class:`QuotaExceeded`
5xx (500, 502, 503, 504), 408               :class:`TransientError`; :class:`UnknownOutcome`
                                            for the request that creates the post
other 4xx, 501                              :class:`PermanentError` with Bluesky's message
no connection / no answer                   the plugin kit's rule (:mod:`chat33_core.http`)
==========================================  =================================================
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from chat33_core.errors import (
    CredentialsExpired,
    PermanentError,
    QuotaExceeded,
    Throttled,
    TransientError,
    UnknownOutcome,
)
from chat33_core.http import send

#: a rate limit that resets later than this is a spent budget: defer the post instead of
#: counting a failed attempt
QUOTA_WAIT_S = 900.0
TOKEN_ERRORS = frozenset({"ExpiredToken", "InvalidToken"})


class RateLimitedByBluesky(Throttled):
    """A 429 that resets soon: retry after ``retry_after`` seconds."""


def error_of(response: httpx.Response) -> tuple[str, str | None]:
    """(Bluesky's message, its error name) of an error response."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, Mapping):
        name = body.get("error")
        message = body.get("message") or name
        if message:
            return str(message), (str(name) if name else None)
    text = response.text.strip()[:300]
    return (text or f"HTTP {response.status_code}"), None


def rate_limit_wait(response: httpx.Response, now: float | None = None) -> float | None:
    """Seconds until ``RateLimit-Reset`` (epoch seconds), else ``Retry-After``."""
    now = time.time() if now is None else now
    raw = response.headers.get("ratelimit-reset")
    try:
        if raw is not None:
            return max(0.0, float(raw) - now)
        retry_after = response.headers.get("retry-after")
        return max(0.0, float(retry_after)) if retry_after is not None else None
    except ValueError:
        return None


def raise_for_response(response: httpx.Response, *, creating: bool = False,
                       what: str = "Bluesky") -> None:
    """Raise the chat33 error for an unsuccessful ``response``; return on 2xx.

    ``creating`` marks the request that creates the post: a 5xx there may hide a created
    record, so it is an :class:`UnknownOutcome`.
    """
    if response.is_success:
        return
    message, name = error_of(response)
    status = response.status_code
    code = name or str(status)
    text = f"{what}: {message}"
    exc = httpx.HTTPStatusError(text, request=response.request, response=response)
    if status == 401 or (status == 400 and name in TOKEN_ERRORS):
        raise CredentialsExpired(f"Bluesky refused the session: {message}",
                                 platform_code=code) from exc
    if status == 429:
        wait = rate_limit_wait(response)
        if wait is not None and wait > QUOTA_WAIT_S:
            raise QuotaExceeded(f"Bluesky rate limit ({message}); it resets in "
                                f"{wait / 60:.0f} min", platform_code=code,
                                retry_at=datetime.fromtimestamp(time.time() + wait, UTC)
                                ) from exc
        raise RateLimitedByBluesky(f"Bluesky rate limit: {message}", retry_after=wait,
                                   platform_code=code) from exc
    if status >= 500 and status != 501:
        if creating:
            raise UnknownOutcome(f"{text} (HTTP {status}): the post may or may not exist",
                                 platform_code=code) from exc
        raise TransientError(f"{text} (HTTP {status})", platform_code=code) from exc
    if status == 408:
        raise TransientError(text, platform_code=code) from exc
    raise PermanentError(text, platform_code=code) from exc


class Xrpc:
    """XRPC requests to one host with one bearer token (or none)."""

    def __init__(self, http: httpx.Client, host: str, token: str | None = None) -> None:
        self.http = http
        self.host = host.rstrip("/")
        self.token = token

    def url(self, nsid: str) -> str:
        return f"{self.host}/xrpc/{nsid}"

    def call(self, method: str, nsid: str, *, creating: bool = False, what: str = "",
             allow: tuple[str, ...] = (), **kwargs: Any) -> httpx.Response:
        """Send one request and translate failures: no answer by the kit's rule
        (:mod:`chat33_core.http`: transient, or an unknown outcome for the creating
        request), an error answer by :func:`raise_for_response`. Error names in
        ``allow`` (``RecordNotFound``) are returned as they are instead of raised.
        """
        what = what or nsid
        headers = dict(kwargs.pop("headers", {}))
        if self.token:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        response = send(self.http, method, self.url(nsid), platform="Bluesky", what=what,
                        creates=creating, headers=headers, **kwargs)
        if not response.is_success and allow and error_of(response)[1] in allow:
            return response
        raise_for_response(response, creating=creating, what=what)
        return response

    def json(self, method: str, nsid: str, **kwargs: Any) -> dict[str, Any]:
        """:meth:`call`, answering the JSON object (a 2xx without one is transient)."""
        response = self.call(method, nsid, **kwargs)
        return body_of(response, kwargs.get("what") or nsid)


def body_of(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise TransientError(f"{what}: Bluesky answered without a JSON object: "
                             f"{response.text[:200]}", platform_code="bad-response")
    return body
