"""Talking to the TikTok Content Posting API: the ``{data, error}`` envelope and TikTok's
error codes translated into chat33's platform errors (platforms.md §3).

Every answer carries ``error: {code, message, log_id}``; ``code == "ok"`` is success and
anything else a failure, **whatever the HTTP status** (the spam-risk codes come with 200
on purpose). The mapping, by what the worker must do:

==================================================  =====================================
``access_token_invalid``                            ``CredentialsExpired`` (refresh once)
``scope_not_authorized``                            ``ReconnectRequired`` (grant the scope)
``rate_limit_exceeded`` (429)                       ``Throttled``: wait (no attempt) for the
                                                    endpoint's per-token window
``spam_risk_too_many_posts``,                       ``QuotaExceeded`` (defer, not fail)
``reached_active_user_cap``
``privacy_level_option_mismatch``,                  ``PermanentError`` with a message
``unaudited_client_can_only_post_to_private_...``,  saying what to change
``url_ownership_unverified``, ``spam_risk_*``,
``invalid_param``, other 4xx
5xx, transport failures                             ``TransientError``, or
                                                    ``UnknownOutcome`` for a request that
                                                    may have created a post
==================================================  =====================================
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import httpx

from chat33_core.errors import (
    CredentialsExpired,
    PermanentError,
    PlatformError,
    QuotaExceeded,
    ReconnectRequired,
    Throttled,
    TransientError,
    UnknownOutcome,
)
from chat33_core.http import send
from chat33_core.models import utcnow

#: per-token requests per minute (platforms.md §3.1-§3.5)
RATE_LIMITS = {"creator_info": 20, "init": 6, "status": 30}
#: a creator's daily cap is a rolling 24 h we cannot see into: ask again in an hour
#: (creator_info answers spam_risk_too_many_posts too, so asking costs no post)
CAP_DEFER = timedelta(hours=1)

#: user-facing explanations of the codes a user can act on
MESSAGES = {
    "privacy_level_option_mismatch": (
        "the privacy level is not one this TikTok account offers; choose one of the "
        "account's options (a private account cannot post PUBLIC_TO_EVERYONE)"),
    "unaudited_client_can_only_post_to_private_accounts": (
        "this TikTok app has not passed TikTok's audit yet: it can only post to private "
        "accounts with privacyLevel SELF_ONLY"),
    "url_ownership_unverified": (
        "TikTok has not verified our media domain: verify the domain or URL prefix of "
        "CHAT33_PUBLIC_BASE_URL in the TikTok developer portal"),
    "spam_risk_user_banned_from_posting": "TikTok has banned this account from posting",
    "spam_risk_too_many_pending_share": (
        "the account already has 5 drafts waiting in its TikTok inbox; finish or discard "
        "them first"),
    "app_version_check_failed": (
        "postMode MEDIA_UPLOAD needs TikTok app version 31.8 or later on the creator's "
        "phone"),
}


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def envelope_error(response: httpx.Response) -> tuple[str, str, str | None] | None:
    """``(code, message, log_id)`` if ``response`` is a failure, ``None`` on success.

    A 2xx whose body has no ``error`` object counts as success only if it is JSON with
    ``data``; a non-2xx without the envelope gets the code ``http_<status>``.
    """
    body = _json(response)
    error = body.get("error") if isinstance(body, Mapping) else None
    if isinstance(error, Mapping):
        code = str(error.get("code") or "")
        log_id = error.get("log_id") or error.get("logid")
        if code == "ok" and response.is_success:
            return None
        if code == "ok":  # an HTTP failure dressed as ok: trust the status
            code = f"http_{response.status_code}"
        return code, str(error.get("message") or ""), str(log_id) if log_id else None
    if isinstance(error, str):  # the OAuth shape, on an API path
        return error, str(body.get("error_description") or ""), body.get("log_id")
    if response.is_success and isinstance(body, Mapping) and "data" in body:
        return None
    return (f"http_{response.status_code}", response.text.strip()[:300]
            or f"HTTP {response.status_code}", None)


def raise_for_envelope(response: httpx.Response, *, what: str, endpoint: str = "",
                       creating: bool = False) -> None:
    """Raise the chat33 error for a failed TikTok answer; return on success.

    ``endpoint`` (``creator_info``, ``init``, ``status``) sets the rate-limit wait;
    ``creating`` marks a request after which a post may exist (a photo init): a 5xx there
    is an :class:`UnknownOutcome`.
    """
    failure = envelope_error(response)
    if failure is None:
        return
    code, message, log_id = failure
    status = response.status_code
    detail = f"{what}: {code}" + (f" ({message})" if message else "") + \
        (f" [log_id {log_id}]" if log_id else "")
    cause = httpx.HTTPStatusError(detail, request=response.request, response=response)
    kw: dict[str, Any] = {"platform_code": code}
    if code == "access_token_invalid" or (status == 401 and code.startswith("http_")):
        raise CredentialsExpired(f"TikTok refused the access token: {detail}", **kw) from cause
    if code == "scope_not_authorized":
        raise ReconnectRequired("the TikTok account did not grant the video.publish scope; "
                                f"reconnect it and allow posting ({detail})", **kw) from cause
    if code == "rate_limit_exceeded" or status == 429:
        per_minute = RATE_LIMITS.get(endpoint)
        wait = 60.0 / per_minute if per_minute else 60.0
        raise Throttled(f"TikTok rate limit: {detail}", retry_after=wait, **kw) from cause
    if code in ("spam_risk_too_many_posts", "reached_active_user_cap"):
        reason = ("the account reached TikTok's daily post cap (about 15 posts a day)"
                  if code == "spam_risk_too_many_posts"
                  else "this TikTok app reached its daily cap of active creators")
        raise QuotaExceeded(f"{reason}: {detail}", retry_at=utcnow() + CAP_DEFER,
                            **kw) from cause
    if code in MESSAGES:
        raise PermanentError(f"{MESSAGES[code]} ({detail})", **kw) from cause
    if status >= 500 or code == "internal_error" or code.startswith("http_5"):
        if creating:
            raise UnknownOutcome(f"{detail} (HTTP {status}): the post may or may not exist",
                                 **kw) from cause
        raise TransientError(f"{detail} (HTTP {status})", **kw) from cause
    if status in (408, 409):
        raise TransientError(detail, **kw) from cause
    raise PermanentError(f"TikTok refused the post: {detail}", **kw) from cause


class TikTokApi:
    """The Content Posting endpoints, with one user's token."""

    def __init__(self, http: httpx.Client, base: str, token: str) -> None:
        self.http = http
        self.base = base.rstrip("/")
        self.token = token

    def call(self, path: str, body: Mapping[str, Any], *, what: str, endpoint: str = "",
             creating: bool = False) -> Mapping[str, Any]:
        """``POST`` JSON to ``path``; the envelope's ``data`` or a chat33 error."""
        headers = {"Authorization": f"Bearer {self.token}",
                   "Content-Type": "application/json; charset=UTF-8"}
        response = send(self.http, "POST", f"{self.base}{path}", platform="TikTok", what=what,
                        creates=creating, json=dict(body), headers=headers)
        raise_for_envelope(response, what=what, endpoint=endpoint, creating=creating)
        data = (_json(response) or {}).get("data")
        if not isinstance(data, Mapping):
            error: PlatformError
            message = f"{what}: TikTok answered without data: {response.text[:200]}"
            error = (UnknownOutcome if creating else TransientError)(
                message, platform_code="bad-response")
            raise error
        return data
