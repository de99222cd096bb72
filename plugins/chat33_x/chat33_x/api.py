"""Talking to the X API v2: requests with the user's token, and X's errors translated
into chat33's platform errors (platforms.md §5.5, §5.6).

X answers errors in several shapes; :func:`error_message` reads all of them:

* ``application/problem+json``: ``{type, title, detail, status, errors?: [...]}``;
* legacy ``{"errors": [{"code": 88, "message": "Rate limit exceeded"}]}``;
* the OpenAPI default ``{"code": int, "message": str}``;
* OAuth errors ``{"error": "invalid_request", "error_description": "..."}``.
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

#: X's legacy code and message for duplicate content (v1.1 code 187)
DUPLICATE_CODES = {"187"}


class RateLimitedByX(Throttled):
    """A 429: wait until ``x-rate-limit-reset`` (``retry_after``)."""


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def error_message(response: httpx.Response) -> tuple[str, str | None]:
    """(X's message for the user, X's code or problem type) of an error response."""
    body = _json(response)
    if isinstance(body, Mapping):
        code: str | None = None
        parts: list[str] = []
        errors = body.get("errors")
        if isinstance(errors, list):
            for err in errors:
                if isinstance(err, Mapping):
                    message = err.get("message") or err.get("detail") or err.get("title")
                    if message and message not in parts:
                        parts.append(str(message))
                    if code is None and err.get("code") is not None:
                        code = str(err["code"])
        problem_type = body.get("type")
        if isinstance(problem_type, str) and problem_type != "about:blank":
            code = problem_type.rstrip("/").rsplit("/", 1)[-1]
        detail = body.get("detail") or body.get("message") or body.get("error_description")
        if detail and not parts:
            parts.append(str(detail))
        elif detail and "One or more parameters" not in str(detail):
            # invalid-request's detail is generic; the specific messages are in errors[]
            parts.insert(0, str(detail))
        if not parts and body.get("title"):
            parts.append(str(body["title"]))
        if not parts and body.get("error"):
            parts.append(str(body["error"]))
        if code is None and body.get("code") is not None:
            code = str(body["code"])
        if code is None and isinstance(body.get("error"), str):
            code = body["error"]
        if parts:
            return "; ".join(parts), code
    text = response.text.strip()[:300]
    return (text or f"HTTP {response.status_code}"), None


def rate_limit_reset(response: httpx.Response) -> float | None:
    """Seconds until ``x-rate-limit-reset`` (epoch seconds); X sends no Retry-After."""
    raw = response.headers.get("x-rate-limit-reset")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw) - time.time())
    except ValueError:
        return None


def is_duplicate(message: str, code: str | None) -> bool:
    return (code in DUPLICATE_CODES) or "duplicate" in message.lower()


def raise_for_response(response: httpx.Response, *, creating: bool = False,
                       what: str = "X") -> None:
    """Raise the chat33 error for an unsuccessful ``response``; return on 2xx.

    ``creating`` marks a request that creates the post (``POST /2/tweets``): a 5xx there
    may hide a created post, so it is an :class:`UnknownOutcome`, never a plain retry.
    """
    if response.is_success:
        return
    message, code = error_message(response)
    status = response.status_code
    text = f"{what}: {message}"
    exc = httpx.HTTPStatusError(text, request=response.request, response=response)
    if status == 401:
        raise CredentialsExpired(f"X refused the access token: {message}",
                                 platform_code=code or "401") from exc
    if status == 429:
        wait = rate_limit_reset(response)
        if code == "usage-capped":
            retry_at = (datetime.fromtimestamp(time.time() + wait, UTC)
                        if wait is not None else None)
            raise QuotaExceeded(f"X usage cap reached: {message}", retry_at=retry_at,
                                platform_code=code) from exc
        raise RateLimitedByX(f"X rate limit: {message}", retry_after=wait,
                             platform_code=code or "429") from exc
    if status == 403 and is_duplicate(message, code):
        raise PermanentError(message, platform_code="duplicate-content") from exc
    if status >= 500:
        if creating:
            raise UnknownOutcome(f"{text} (HTTP {status}): the post may or may not exist",
                                 platform_code=code or str(status)) from exc
        raise TransientError(f"{text} (HTTP {status})", platform_code=code or str(status)) from exc
    if status in (408, 409):
        raise TransientError(text, platform_code=code or str(status)) from exc
    raise PermanentError(message, platform_code=code or str(status)) from exc


class XApi:
    """The few X endpoints chat33 calls, with one user's bearer token."""

    def __init__(self, http: httpx.Client, base: str, token: str) -> None:
        self.http = http
        self.base = base.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"}

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def send(self, method: str, path: str, *, creating: bool = False, what: str = "X",
             allow: tuple[int, ...] = (), **kwargs: Any) -> httpx.Response:
        """Send one request and translate failures: no answer by the rule of
        :mod:`chat33_core.http`, an error answer by :func:`raise_for_response`.
        Statuses in ``allow`` are returned as they are.
        """
        headers = {**self.headers, **kwargs.pop("headers", {})}
        response = send(self.http, method, self.url(path), platform="X", what=what,
                        creates=creating, headers=headers, **kwargs)
        if response.status_code not in allow:
            raise_for_response(response, creating=creating, what=what)
        return response

    def data(self, response: httpx.Response, what: str) -> Mapping[str, Any]:
        body = _json(response)
        data = body.get("data") if isinstance(body, Mapping) else None
        if not isinstance(data, Mapping):
            raise TransientError(f"{what}: X answered without data: {response.text[:200]}",
                                 platform_code="bad-response")
        return data

