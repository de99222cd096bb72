"""The Graph API error envelope, translated into chat33's platform errors.

Meta answers every Instagram error with HTTP 400 and a body like::

    {"error": {"message": "...", "type": "OAuthException", "code": 36000,
               "error_subcode": 2207004, "is_transient": false,
               "error_user_title": "...", "error_user_msg": "...", "fbtrace_id": "..."}}

:func:`platform_error` decides, from ``code``/``error_subcode`` (platforms.md §1.7), what
the worker must do: retry later, defer for quota, refresh or reconnect, or fail with the
platform's message for the user. The core never sees the HTTP status.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import attrs
import httpx

from chat33_core.errors import (
    CredentialsExpired,
    PermanentError,
    PlatformError,
    QuotaExceeded,
    ReconnectRequired,
    TransientError,
    UnknownOutcome,
)
from chat33_core.models import utcnow

#: transient server-side failures (API Unknown, API Service, and the IG -1/-2 family)
TRANSIENT_CODES = frozenset({-2, -1, 1, 2})
#: throttling: app, user, Page, application, rate limit, business-use-case limits
THROTTLING_CODES = frozenset({4, 17, 32, 341, 613, 80001, 80002})
#: subcodes after which a container is dead and a new one must be created
RECREATE_SUBCODES = frozenset({2207020, 2207053, 2207008})
#: OAuth subcodes after which only the account owner can help (log in again)
RECONNECT_SUBCODES = frozenset({458, 459, 460, 464, 467, 492})
QUOTA_SUBCODE = 2207042
NOT_READY_CODE = 9007

#: what a user-fixable subcode means, when Meta sends no ``error_user_msg``
USER_MESSAGES: Mapping[int, str] = {
    2207004: "The image is larger than 8 MiB.",
    2207005: "The image format is not supported; Instagram takes JPEG.",
    2207006: "Instagram could not find the media (missing permission or expired token).",
    2207009: "The image's aspect ratio is outside 4:5 to 1.91:1.",
    2207010: "The caption is too long (2,200 characters, 30 hashtags, 20 @ tags).",
    2207023: "Instagram does not know this media type.",
    2207026: "The video format is not supported (MOV/MP4, H.264/HEVC, AAC).",
    2207028: "A carousel needs 2 to 10 items.",
    2207040: "The caption has more than 20 @ tags.",
    2207050: "The Instagram account is restricted or checkpointed; open the app to fix it.",
    2207051: "Instagram restricted this activity as spam.",
    2207052: "Instagram could not fetch the media from its URL.",
    2207057: "The thumbnail offset is outside the video's duration.",
}

#: when Meta gives no estimate, wait this long after throttling
DEFAULT_THROTTLE_WAIT_S = 60.0
#: the 24 h publishing window is rolling; without a better hint, look again in an hour
QUOTA_RETRY_AFTER = timedelta(hours=1)


@attrs.frozen
class GraphError:
    """One parsed Graph error envelope."""

    code: int | None
    subcode: int | None = None
    message: str = ""
    type: str = ""
    user_title: str | None = None
    user_msg: str | None = None
    is_transient: bool = False
    fbtrace_id: str | None = None

    @property
    def platform_code(self) -> str:
        if self.code is None:
            return "unknown"
        return f"{self.code}/{self.subcode}" if self.subcode else str(self.code)

    @property
    def user_message(self) -> str:
        """The platform's message for the user, best first."""
        if self.user_msg:
            return self.user_msg
        if self.subcode is not None and self.subcode in USER_MESSAGES:
            return USER_MESSAGES[self.subcode]
        return self.message or f"Instagram refused the request (error {self.platform_code})"

    @property
    def needs_new_container(self) -> bool:
        return self.subcode in RECREATE_SUBCODES

    @property
    def not_ready(self) -> bool:
        return self.code == NOT_READY_CODE or self.subcode == 2207027

    @classmethod
    def parse(cls, body: Any) -> GraphError | None:
        """The envelope in ``body`` (decoded JSON), or ``None`` if there is none."""
        if not isinstance(body, Mapping) or not isinstance(body.get("error"), Mapping):
            return None
        err = body["error"]
        return cls(
            code=_int(err.get("code")),
            subcode=_int(err.get("error_subcode")),
            message=str(err.get("message") or ""),
            type=str(err.get("type") or ""),
            user_title=err.get("error_user_title") or None,
            user_msg=err.get("error_user_msg") or None,
            is_transient=bool(err.get("is_transient")),
            fbtrace_id=err.get("fbtrace_id") or None,
        )

    @classmethod
    def from_response(cls, response: httpx.Response) -> GraphError | None:
        try:
            return cls.parse(response.json())
        except (ValueError, json.JSONDecodeError):
            return None


def throttle_wait_s(headers: Mapping[str, str]) -> float | None:
    """Seconds until access is regained, from ``X-Business-Use-Case-Usage``
    (``estimated_time_to_regain_access`` is in minutes); the largest entry wins."""
    raw = headers.get("x-business-use-case-usage")
    if not raw:
        return None
    try:
        usage = json.loads(raw)
    except ValueError:
        return None
    minutes: list[float] = []
    if isinstance(usage, Mapping):
        for entries in usage.values():
            for entry in entries if isinstance(entries, list) else []:
                value = entry.get("estimated_time_to_regain_access") if isinstance(
                    entry, Mapping) else None
                if isinstance(value, int | float):
                    minutes.append(float(value))
    return max(minutes) * 60.0 if minutes else None


def app_usage_percent(headers: Mapping[str, str]) -> float | None:
    """The highest percentage in ``X-App-Usage`` (throttling starts at 100)."""
    raw = headers.get("x-app-usage")
    if not raw:
        return None
    try:
        usage = json.loads(raw)
    except ValueError:
        return None
    values = [float(v) for v in usage.values() if isinstance(v, int | float)] if isinstance(
        usage, Mapping) else []
    return max(values) if values else None


def platform_error(
    error: GraphError, headers: Mapping[str, str] | None = None, *,
    now: datetime | None = None,
) -> PlatformError:
    """The chat33 error for a Graph error envelope (see the module docstring)."""
    headers = headers or {}
    code, subcode = error.code, error.subcode
    kw: dict[str, Any] = {"platform_code": error.platform_code}
    # subcodes first: code 1 or 4 with an IG subcode is not the generic meaning
    if subcode == QUOTA_SUBCODE or code == 9:
        return QuotaExceeded(
            "Instagram's daily publishing limit is reached; the post waits for quota",
            retry_at=(now or utcnow()) + QUOTA_RETRY_AFTER, **kw)
    if subcode == 2207051 or subcode == 2207050:
        return PermanentError(error.user_message, **kw)
    if subcode == 2207057:
        return PermanentError(error.user_message, **kw)
    if code in (190, 102):
        if subcode in RECONNECT_SUBCODES:
            return ReconnectRequired(
                f"Instagram refused the access token ({error.message or 'invalid'}); "
                "reconnect the account", **kw)
        return CredentialsExpired(
            f"Instagram refused the access token: {error.message or 'expired'}", **kw)
    if code == 10 or (code is not None and 200 <= code <= 299):
        return ReconnectRequired(
            f"Instagram denied a permission ({error.message}); reconnect the account "
            "granting instagram_business_content_publish", **kw)
    if code in THROTTLING_CODES:
        wait = throttle_wait_s(headers)
        return TransientError(
            f"Instagram is throttling requests (code {code}): {error.message}",
            retry_after=wait if wait is not None else DEFAULT_THROTTLE_WAIT_S, **kw)
    if error.needs_new_container:
        return TransientError(
            f"Instagram dropped the media container ({error.user_message}); "
            "a new one will be created", **kw)
    if error.not_ready:
        return TransientError("Instagram is still processing the media", **kw)
    if subcode in (2207003, 2207001, 2207032) or code in TRANSIENT_CODES or error.is_transient:
        return TransientError(f"Instagram had a temporary failure: {error.message}", **kw)
    return PermanentError(error.user_message, **kw)


def response_error(
    response: httpx.Response, *, creating: bool = False, what: str = "request",
) -> PlatformError:
    """The chat33 error for a failed HTTP response from the Graph API.

    ``creating`` marks a request that creates the post (``media_publish``): a server
    failure without an envelope there means nobody knows whether the post exists.
    """
    error = GraphError.from_response(response)
    if error is not None:
        return platform_error(error, response.headers)
    status = response.status_code
    if status == 429:
        wait = throttle_wait_s(response.headers)
        return TransientError(f"Instagram is throttling requests ({what})",
                              retry_after=wait or DEFAULT_THROTTLE_WAIT_S,
                              platform_code="http-429")
    if status >= 500 or status in (408,):
        if creating:
            return UnknownOutcome(
                f"Instagram answered {status} to the {what}; whether the post exists is "
                "unknown", platform_code=f"http-{status}")
        return TransientError(f"Instagram answered {status} to the {what}",
                              platform_code=f"http-{status}")
    if status == 401:
        return CredentialsExpired("Instagram refused the access token",
                                  platform_code="http-401")
    return PermanentError(f"Instagram answered {status} to the {what}",
                          platform_code=f"http-{status}")


def transport_error(exc: httpx.HTTPError, *, creating: bool = False,
                    what: str = "request") -> PlatformError:
    """The chat33 error for a request that got no answer."""
    if creating and not isinstance(exc, httpx.ConnectError):
        # the request may have reached Meta: the worker must confirm, not resend
        return UnknownOutcome(f"no answer from Instagram to the {what}: {exc}",
                              platform_code="transport")
    return TransientError(f"could not reach Instagram for the {what}: {exc}",
                          platform_code="transport")


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None
