"""Google's error envelope, translated into chat33's platform errors (platforms.md §4.5).

Google answers errors with the HTTP status and a body like::

    {"error": {"code": 403, "message": "...", "status": "PERMISSION_DENIED",
               "errors": [{"message": "...", "domain": "youtube.quota",
                           "reason": "quotaExceeded"}]}}

:func:`response_error` decides from ``reason`` (and the status when there is none) what
the worker must do. The core never sees the HTTP status.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import httpx

from chat33_core.errors import (
    CredentialsExpired,
    Issue,
    PermanentError,
    PlatformError,
    QuotaExceeded,
    ReconnectRequired,
    Throttled,
    TransientError,
)
from chat33_core.models import utcnow

PACIFIC = ZoneInfo("America/Los_Angeles")
#: without a Retry-After, wait this long after a rate limit or a backend error
DEFAULT_RETRY_AFTER_S = 60.0

QUOTA_REASONS = frozenset({"quotaExceeded", "uploadLimitExceeded", "dailyLimitExceeded"})
#: Google's "too many requests": the post waits without spending an attempt
RATE_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded",
                          "uploadRateLimitExceeded", "servingLimitExceeded"})
TRANSIENT_REASONS = frozenset({"backendError", "internalError"})
AUTH_REASONS = frozenset({"authError", "expired", "invalidCredentials"})
RECONNECT_REASONS = frozenset({"insufficientPermissions", "youtubeSignupRequired",
                               "authenticatedUserAccountClosed",
                               "authenticatedUserAccountSuspended", "accountDisabled"})
#: metadata YouTube refused, and where it came from in the request
FIELD_REASONS: Mapping[str, tuple[str, str]] = {
    "invalidTitle": ("platformConfig.youtube.title", "title"),
    "invalidDescription": ("text", "description"),
    "invalidTags": ("platformConfig.youtube.tags", "tags"),
    "invalidCategoryId": ("platformConfig.youtube.categoryId", "category"),
    "invalidPublishAt": ("platformConfig.youtube.publishAt", "publishAt"),
    "defaultLanguageNotSet": ("platformConfig.youtube.defaultLanguage", "default language"),
    "invalidVideoMetadata": ("platformConfig.youtube", "video metadata"),
    "forbiddenPrivacySetting": ("platformConfig.youtube.privacyStatus", "privacy setting"),
    "forbiddenLicenseSetting": ("platformConfig.youtube.license", "license"),
}
RECONNECT_HINTS: Mapping[str, str] = {
    "insufficientPermissions": "the connection lacks the YouTube upload permission",
    "youtubeSignupRequired": "the Google account has no YouTube channel yet",
    "authenticatedUserAccountClosed": "the YouTube account is closed",
    "authenticatedUserAccountSuspended": "the YouTube account is suspended",
    "accountDisabled": "the Google account is disabled",
}


@attrs.frozen
class GoogleError:
    """One parsed error envelope."""

    status: int
    reason: str | None = None
    message: str = ""
    domain: str | None = None

    @classmethod
    def parse(cls, response: httpx.Response) -> GoogleError:
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            text = response.text.strip()[:200] if response.content else ""
            return cls(status=status, message=text or f"HTTP {status}")
        errors = error.get("errors")
        first: dict[str, Any] = errors[0] if isinstance(errors, list) and errors and \
            isinstance(errors[0], dict) else {}
        message = str(error.get("message") or first.get("message") or f"HTTP {status}")
        return cls(status=status, reason=first.get("reason") or None, message=message,
                   domain=first.get("domain") or None)


def next_quota_reset(now: datetime | None = None) -> datetime:
    """The next midnight Pacific Time (when YouTube quotas reset), in UTC."""
    local = (now or utcnow()).astimezone(PACIFIC)
    midnight = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=PACIFIC)
    return midnight.astimezone(UTC)


def retry_after(response: httpx.Response, default: float | None = DEFAULT_RETRY_AFTER_S,
                ) -> float | None:
    raw = response.headers.get("Retry-After")
    if raw is None:
        return default
    try:
        return max(0.0, float(raw))
    except ValueError:
        return default


def response_error(response: httpx.Response, *, what: str) -> PlatformError:
    """The chat33 error for a Google error answer to ``what`` (e.g. "upload")."""
    err = GoogleError.parse(response)
    reason, status = err.reason, err.status
    code = reason or str(status)
    text = f"YouTube refused the {what}: {err.message}"
    if reason in QUOTA_REASONS:
        kind = "the channel's daily upload limit" if reason == "uploadLimitExceeded" \
            else "the API quota"
        return QuotaExceeded(f"{kind} is spent ({err.message}); it resets at midnight "
                             "Pacific Time", retry_at=next_quota_reset(), platform_code=code)
    if reason in RATE_REASONS or status == 429:
        return Throttled(f"YouTube is rate limiting the {what}: {err.message}",
                         retry_after=retry_after(response), platform_code=code)
    if reason in TRANSIENT_REASONS or status in (500, 502, 503, 504):
        return TransientError(f"YouTube is busy ({what}): {err.message}",
                              retry_after=retry_after(response), platform_code=code)
    if reason in RECONNECT_REASONS:
        hint = RECONNECT_HINTS.get(reason or "", err.message)
        return ReconnectRequired(f"{hint} ({err.message}): reconnect the YouTube account",
                                 platform_code=code)
    if reason in AUTH_REASONS or status == 401:
        return CredentialsExpired(f"YouTube refused the access token: {err.message}",
                                  platform_code=code)
    if reason in FIELD_REASONS:
        path, field_name = FIELD_REASONS[reason or ""]
        return PermanentError(f"YouTube refused the {field_name}: {err.message}",
                              platform_code=code, details=[Issue(path, err.message, code)])
    return PermanentError(text, platform_code=code)
