"""Meta's Graph error envelope, translated into chat33's platform errors.

The envelope (platforms.md §1.7)::

    {"error": {"message", "type", "code", "error_subcode", "is_transient",
               "error_user_title", "error_user_msg", "fbtrace_id"}}

Classes, by what the worker must do:

* transient (codes 1, 2, ``is_transient``, HTTP 5xx) → ``TransientError``; for a request
  that creates the post the platform may have acted, so → ``UnknownOutcome``;
* throttling (4, 17, 32, 341, 613, 80001, 80002) → ``TransientError`` whose
  ``retry_after`` comes from the usage headers (the platform certainly did not act);
* tokens (190, 102) → ``ReconnectRequired``: Page tokens never refresh, the owner must
  log in again; permissions (10, 200-299) likewise need a new login with the scope;
* 368 (blocked for policy) and 506 (duplicate post) → ``PermanentError`` with a clear text;
* the upload host's ``debug_info`` errors: ``OffsetInvalidError`` and
  ``PartialRequestError`` → ``TransientError`` (resume from the platform's offset),
  ``ProcessingFailedError`` and others → ``PermanentError``;
* anything else, and every error carrying ``error_user_msg`` → ``PermanentError`` whose
  message is the platform's message for the user.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from chat33_core.errors import (
    PermanentError,
    PlatformError,
    ReconnectRequired,
    TransientError,
    UnknownOutcome,
)

TRANSIENT_CODES = frozenset({1, 2})
THROTTLING_CODES = frozenset({4, 17, 32, 341, 613, 80001, 80002})
TOKEN_CODES = frozenset({190, 102})
TOKEN_SUBCODES = {
    458: "the app is not installed for this user",
    459: "the user is checkpointed on Facebook",
    460: "the password was changed",
    463: "the token expired",
    464: "the user is not confirmed",
    467: "the access token is invalid",
    492: "the session is invalid",
}
#: upload-host errors cured by asking the offset and sending the rest again
RESUMABLE_UPLOAD_ERRORS = frozenset({"OffsetInvalidError", "PartialRequestError"})
#: waits when a throttled answer carries no estimate (App usage is a rolling hour)
DEFAULT_THROTTLE_WAIT_S = 300.0


def envelope(response: httpx.Response) -> dict[str, Any]:
    """The ``error`` object of a Graph answer, or ``{}`` when there is none."""
    try:
        body = response.json()
    except (ValueError, json.JSONDecodeError):
        return {}
    err = body.get("error") if isinstance(body, dict) else None
    return err if isinstance(err, dict) else {}


def usage_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds until Meta lets the caller back in, read from the usage headers.

    ``X-Business-Use-Case-Usage`` carries ``estimated_time_to_regain_access`` in minutes;
    ``X-App-Usage`` / ``X-Page-Usage`` only carry percentages (100 = throttled).
    """
    headers = httpx.Headers(headers)  # header names are case-insensitive
    waits: list[float] = []
    buc = _json_header(headers, "x-business-use-case-usage")
    if isinstance(buc, dict):
        for entries in buc.values():
            for entry in entries if isinstance(entries, list) else []:
                minutes = entry.get("estimated_time_to_regain_access") if isinstance(
                    entry, dict) else None
                if isinstance(minutes, int | float) and minutes > 0:
                    waits.append(minutes * 60.0)
    if waits:
        return max(waits)
    for name in ("x-app-usage", "x-page-usage"):
        usage = _json_header(headers, name)
        if isinstance(usage, dict) and any(
                isinstance(v, int | float) and v >= 100 for v in usage.values()):
            return DEFAULT_THROTTLE_WAIT_S
    return None


def _json_header(headers: Mapping[str, str], name: str) -> Any:
    raw = headers.get(name)
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def graph_error(response: httpx.Response, *, creates: bool = False,
                action: str = "the request") -> PlatformError:
    """The chat33 error for a failed Graph answer (``raise graph_error(r) from exc``).

    ``creates`` marks a request that creates the post (``/feed``, ``/photos``, ``/videos``,
    a reel's finish): when the failure leaves it unknown whether Facebook acted, the
    answer is ``UnknownOutcome`` so the worker confirms before any retry.
    """
    upload_error = _upload_debug_info(response)
    if upload_error is not None:
        kind, text = upload_error
        if kind in RESUMABLE_UPLOAD_ERRORS:
            return TransientError(f"Facebook's upload host refused {action} ({kind}: {text}); "
                                  "resume from its offset", platform_code=kind)
        return PermanentError(f"Facebook could not take {action} ({kind}): {text}",
                              platform_code=kind)
    err = envelope(response)
    code = _int(err.get("code"))
    subcode = _int(err.get("error_subcode"))
    platform_code = None if code is None else (
        f"{code}/{subcode}" if subcode is not None else str(code))
    message = str(err.get("message") or f"HTTP {response.status_code}")
    user_msg = err.get("error_user_msg")

    if code in THROTTLING_CODES:
        wait = usage_retry_after(response.headers) or DEFAULT_THROTTLE_WAIT_S
        return TransientError(f"Facebook is throttling {action} ({message}); retrying in "
                              f"{wait:.0f} s", retry_after=wait, platform_code=platform_code)
    if code in TOKEN_CODES:
        why = TOKEN_SUBCODES.get(subcode or 0, message)
        return ReconnectRequired(f"Facebook refused the Page token ({why}); Page tokens cannot "
                                 "be refreshed: reconnect the Page", platform_code=platform_code)
    if code == 10 or (code is not None and 200 <= code <= 299):
        return ReconnectRequired(f"Facebook denied permission for {action}: {message}. "
                                 "Reconnect the Page granting pages_manage_posts, "
                                 "pages_read_engagement (and publish_video for videos)",
                                 platform_code=platform_code)
    if code == 368:
        return PermanentError(str(user_msg or "Facebook has temporarily blocked this Page "
                                  f"from posting for a policy reason: {message}"),
                              platform_code=platform_code)
    if code == 506:
        return PermanentError("Facebook refused a duplicate post: the same text was posted "
                              "to this Page recently", platform_code=platform_code)
    transient = (code in TRANSIENT_CODES or err.get("is_transient") is True
                 or (not err and response.status_code >= 500)
                 or response.status_code in (502, 503, 504))
    if transient:
        if creates:
            return UnknownOutcome(f"Facebook failed while {action} ({message}); it may have "
                                  "acted", platform_code=platform_code)
        return TransientError(f"Facebook failed temporarily while {action}: {message}",
                              retry_after=_retry_after(response), platform_code=platform_code)
    if user_msg:
        title = err.get("error_user_title")
        text = f"{title}: {user_msg}" if title else str(user_msg)
        return PermanentError(text, platform_code=platform_code)
    if response.status_code == 429:
        return TransientError(f"Facebook is rate limiting {action}",
                              retry_after=_retry_after(response) or DEFAULT_THROTTLE_WAIT_S,
                              platform_code=platform_code)
    if response.status_code >= 500 and creates:
        return UnknownOutcome(f"Facebook failed while {action} ({message}); it may have acted",
                              platform_code=platform_code)
    if response.status_code >= 500:
        return TransientError(f"Facebook failed while {action}: {message}",
                              platform_code=platform_code)
    return PermanentError(f"Facebook refused {action}: {message}", platform_code=platform_code)


def _upload_debug_info(response: httpx.Response) -> tuple[str, str] | None:
    """The upload host (rupload) answers ``{"debug_info": {"type", "message"}}``."""
    try:
        body = response.json()
    except ValueError:
        return None
    info = body.get("debug_info") if isinstance(body, dict) else None
    if not isinstance(info, dict):
        return None
    return str(info.get("type") or "UploadError"), str(info.get("message") or "")


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("retry-after")
    try:
        return float(raw) if raw else None
    except ValueError:
        return None


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None
