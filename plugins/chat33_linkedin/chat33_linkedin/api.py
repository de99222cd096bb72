"""Requests to LinkedIn's REST API and its error answers (platforms-more.md §4.1, §4.6).

Every call carries ``LinkedIn-Version`` (:data:`VERSION`, or ``CHAT33_LINKEDIN_VERSION``)
and ``X-Restli-Protocol-Version: 2.0.0``. Error bodies are ``{"status",
"serviceErrorCode", "code", "message"}``; the HTTP status decides:

* 401 — ``EXPIRED_ACCESS_TOKEN``: :class:`CredentialsExpired` (refresh, then retry);
  any other (invalid, revoked): :class:`ReconnectRequired`;
* 403 — the token lacks the permission (or is not the page's admin): permanent;
* 400, 404, 422 and other 4xx — permanent with LinkedIn's message (``DUPLICATE_POST``
  keeps its code);
* 426 — the pinned ``LinkedIn-Version`` was sunset: permanent, naming the setting;
* 429 — daily limits that reset at midnight UTC: :class:`QuotaExceeded` until
  ``Retry-After`` if sent, else the next midnight UTC;
* 5xx — transient, except for the request that creates the post, where the post may
  exist: :class:`UnknownOutcome`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from chat33_core.errors import (
    CredentialsExpired,
    PermanentError,
    QuotaExceeded,
    ReconnectRequired,
    TransientError,
    UnknownOutcome,
)
from chat33_core.http import send

PLATFORM = "LinkedIn"
#: the pinned ``LinkedIn-Version`` (monthly versions are sunset after about a year)
VERSION = "202601"
RESTLI = "2.0.0"


def error_of(response: httpx.Response) -> tuple[str, str | None]:
    """(LinkedIn's message, its ``code``/``serviceErrorCode``) or the start of the body."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, Mapping) and isinstance(body.get("message"), str):
        code = body.get("code") or body.get("serviceErrorCode")
        details = body.get("errorDetails")
        inputs = details.get("inputErrors") if isinstance(details, Mapping) else None
        if isinstance(inputs, list) and inputs and isinstance(inputs[0], Mapping):
            code = inputs[0].get("code") or code
        return str(body["message"]), str(code) if code is not None else None
    return response.text[:200] or response.reason_phrase, None


def next_midnight(now: datetime | None = None) -> datetime:
    now = now or datetime.now(UTC)
    return datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)


def raise_for(response: httpx.Response, *, what: str, creates: bool = False) -> None:
    """Raise the chat33 error for a failed answer (see the module doc); None on success."""
    if response.is_success:
        return
    status = response.status_code
    message, code = error_of(response)
    text = f"{what}: {message}"
    platform_code = code or str(status)
    if status == 401:
        if code == "EXPIRED_ACCESS_TOKEN":
            raise CredentialsExpired(f"{what}: LinkedIn says the access token expired",
                                     platform_code=platform_code)
        raise ReconnectRequired(f"{what}: LinkedIn refused the access token ({message}); "
                                "connect the account again", platform_code=platform_code)
    if status == 429:
        retry_at = next_midnight()
        after = response.headers.get("Retry-After")
        if after and after.isdigit():
            retry_at = datetime.now(UTC) + timedelta(seconds=max(1, int(after)))
        raise QuotaExceeded(f"{what}: LinkedIn's daily limit is reached ({message})",
                            retry_at=retry_at, platform_code=platform_code)
    if status == 426:
        raise PermanentError(f"{text} (set CHAT33_LINKEDIN_VERSION to a current YYYYMM "
                             "LinkedIn-Version)", platform_code=platform_code)
    if status >= 500:
        if creates:
            raise UnknownOutcome(f"{text} (HTTP {status}): the post may or may not exist",
                                 platform_code=platform_code)
        raise TransientError(f"{text} (HTTP {status})", platform_code=platform_code)
    if status == 408:
        raise TransientError(text, platform_code=platform_code)
    if status == 403:
        raise PermanentError(f"{text} (LinkedIn refused the permission: the token needs "
                             "w_member_social, or w_organization_social as a page admin)",
                             platform_code=platform_code)
    raise PermanentError(text, platform_code=platform_code)


class Api:
    """Requests to LinkedIn with one access token and the pinned version."""

    def __init__(self, http: httpx.Client, base: str, token: str,
                 version: str = VERSION) -> None:
        self.http = http
        self.base = base.rstrip("/")
        self.token = token
        self.version = version

    def call(self, method: str, url: str, *, what: str, creates: bool = False,
             allow: tuple[int, ...] = (), **kwargs: Any) -> httpx.Response:
        """One request (``url`` absolute, or a path under the base); a failed answer
        raises (:func:`raise_for`) unless its status is in ``allow``."""
        headers = dict(kwargs.pop("headers", {}))
        headers["Authorization"] = f"Bearer {self.token}"
        headers.setdefault("LinkedIn-Version", self.version)
        headers.setdefault("X-Restli-Protocol-Version", RESTLI)
        target = url if url.startswith(("http://", "https://")) else f"{self.base}{url}"
        response = send(self.http, method, target, platform=PLATFORM, what=what,
                        creates=creates, headers=headers, **kwargs)
        if response.status_code not in allow:
            raise_for(response, what=what, creates=creates)
        return response

    def json(self, method: str, url: str, *, what: str, **kwargs: Any) -> dict[str, Any]:
        """:meth:`call`, answering the JSON object (none is transient)."""
        response = self.call(method, url, what=what, **kwargs)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise TransientError(f"{what}: LinkedIn answered without a JSON object: "
                                 f"{response.text[:200]}", platform_code="bad-response")
        return body
