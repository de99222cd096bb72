"""Meta's Graph API for plugins: its error envelope read and written, and its errors
translated into chat33's platform errors. Instagram, Facebook and Threads share it.

The envelope (platforms.md §1.7)::

    {"error": {"message", "type", "code", "error_subcode", "is_transient",
               "error_user_title", "error_user_msg", "fbtrace_id"}}

:func:`envelope_error` decides from ``code``/``error_subcode`` what the worker must do.
The generic Graph codes are the same for every Meta platform and live here; what one
platform adds (its subcodes, whether its tokens refresh, its scopes) is data, a
:class:`GraphPlatform`, that the plugin passes in. In order:

1. the platform's quota codes and subcodes → ``QuotaExceeded`` (defer, do not fail);
2. the platform's subcodes that override their code's generic meaning → ``PermanentError``;
3. tokens (190, 102) → ``CredentialsExpired`` where the platform refreshes tokens and the
   subcode is not one only the owner can cure, else ``ReconnectRequired``;
   permissions (10, 200-299) → ``ReconnectRequired`` (a new login with the scopes);
4. throttling (4, 17, 32, 341, 613, 80001, 80002, HTTP 429) → ``Throttled`` (the post
   waits, not an attempt) whose ``retry_after`` is Meta's estimate, or
   :data:`DEFAULT_THROTTLE_WAIT_S`;
5. 368 (blocked for policy) and 506 (duplicate post) → ``PermanentError``;
6. the platform's retry subcodes (the platform certainly did not act) → ``TransientError``;
7. transient (1, 2, the platform's own, ``is_transient``, HTTP 5xx) → ``TransientError``,
   or ``UnknownOutcome`` for a request that creates the post (the platform may have acted);
8. anything else → ``PermanentError`` with the platform's message for the user.

A failed answer without an envelope is read by its HTTP status (:func:`graph_error`).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import attrs
import httpx
from werkzeug.wrappers import Response

from .errors import (
    CredentialsExpired,
    PermanentError,
    PlatformError,
    QuotaExceeded,
    ReconnectRequired,
    Throttled,
    TransientError,
    UnknownOutcome,
)
from .models import utcnow
from .sandbox import json_response

TRANSIENT_CODES = frozenset({1, 2})
THROTTLING_CODES = frozenset({4, 17, 32, 341, 613, 80001, 80002})
TOKEN_CODES = frozenset({190, 102})
#: why Meta refused a token, by subcode
TOKEN_SUBCODES: Mapping[int, str] = {
    458: "the app is not installed for this user",
    459: "the user is checkpointed",
    460: "the password was changed",
    463: "the token expired",
    464: "the user is not confirmed",
    467: "the access token is invalid",
    492: "the session is invalid",
}
#: token subcodes only the account owner can cure, by logging in again (463, an expired
#: token, is cured by a refresh where the platform has one)
RECONNECT_SUBCODES = frozenset(TOKEN_SUBCODES) - {463}
#: the wait after throttling when Meta sends no ``estimated_time_to_regain_access``.
#: Meta counts usage over rolling windows (an hour for app usage, longer for business
#: use cases), so capacity comes back only as old calls age out: five minutes lets some
#: of it return, where a one-minute wait mostly spends one of the post's attempts on
#: another refusal (with 5 attempts, 60 s gives up after about 6 minutes of throttling,
#: 300 s after 20).
DEFAULT_THROTTLE_WAIT_S = 300.0


@attrs.frozen
class GraphPlatform:
    """What one Meta platform adds to the generic Graph error codes."""

    #: the display name, for messages ("Instagram")
    name: str
    #: what the owner reconnects ("account", "Page")
    account: str = "account"
    #: whether an expired token can be refreshed (``CredentialsExpired``) or every token
    #: error needs a new login (``ReconnectRequired``)
    refreshable_tokens: bool = True
    #: the permissions a reconnect must grant, for the message
    scopes: str = ""
    #: the message for a user-fixable subcode, when Meta sends no ``error_user_msg``
    user_messages: Mapping[int, str] = attrs.field(factory=dict)
    #: a spent publishing quota: defer the post by ``quota_wait``
    quota_codes: frozenset[int] = frozenset()
    quota_subcodes: frozenset[int] = frozenset()
    quota_wait: timedelta = timedelta(hours=1)
    #: subcodes that fail the post whatever their code means generically
    permanent_subcodes: frozenset[int] = frozenset()
    #: transient failures after which the platform may have acted
    transient_codes: frozenset[int] = frozenset()
    transient_subcodes: frozenset[int] = frozenset()
    #: subcode → message: retry later; the platform certainly did not act
    retry_subcodes: Mapping[int, str] = attrs.field(factory=dict)


@attrs.frozen
class GraphError:
    """One Graph error envelope."""

    code: int | None
    message: str = ""
    subcode: int | None = None
    type: str = "OAuthException"
    user_title: str | None = None
    user_msg: str | None = None
    is_transient: bool = False
    fbtrace_id: str | None = None

    @property
    def platform_code(self) -> str | None:
        if self.code is None:
            return None
        return f"{self.code}/{self.subcode}" if self.subcode is not None else str(self.code)

    @classmethod
    def parse(cls, body: Any) -> GraphError | None:
        """The envelope in ``body`` (decoded JSON), or ``None`` if there is none."""
        err = body.get("error") if isinstance(body, Mapping) else None
        if not isinstance(err, Mapping):
            return None
        return cls(code=_int(err.get("code")), message=str(err.get("message") or ""),
                   subcode=_int(err.get("error_subcode")),
                   type=str(err.get("type") or ""),
                   user_title=err.get("error_user_title") or None,
                   user_msg=err.get("error_user_msg") or None,
                   is_transient=err.get("is_transient") is True,
                   fbtrace_id=err.get("fbtrace_id") or None)

    @classmethod
    def from_response(cls, response: httpx.Response) -> GraphError | None:
        try:
            return cls.parse(response.json())
        except ValueError:
            return None

    def body(self) -> dict[str, Any]:
        """The envelope as Meta sends it (``{"error": {...}}``)."""
        error: dict[str, Any] = {"message": self.message, "type": self.type,
                                 "code": self.code, "is_transient": self.is_transient,
                                 "fbtrace_id": self.fbtrace_id or secrets.token_urlsafe(12)}
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        if self.user_title:
            error["error_user_title"] = self.user_title
        if self.user_msg:
            error["error_user_msg"] = self.user_msg
        return {"error": error}


class GraphFailure(Exception):
    """For sandboxes: raise it in a handler to answer with a Graph error envelope
    (HTTP 400 unless ``status`` says otherwise, like Meta)."""

    def __init__(self, code: int, message: str, *, subcode: int | None = None,
                 user_title: str | None = None, user_msg: str | None = None,
                 is_transient: bool = False, status: int = 400,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.error = GraphError(code=code, message=message, subcode=subcode,
                                user_title=user_title, user_msg=user_msg,
                                is_transient=is_transient)
        self.status = status
        self.headers = dict(headers or {})

    def response(self) -> Response:
        return json_response(self.error.body(), self.status, headers=self.headers or None)


# --- usage headers ------------------------------------------------------------------------

def usage_wait_s(headers: Mapping[str, str]) -> float | None:
    """Seconds until Meta lets the caller back in: the largest
    ``estimated_time_to_regain_access`` (minutes) in ``X-Business-Use-Case-Usage``;
    ``None`` without one (``X-App-Usage`` carries only percentages)."""
    usage = _json_header(headers, "x-business-use-case-usage")
    minutes = [entry.get("estimated_time_to_regain_access")
               for entries in (usage.values() if isinstance(usage, Mapping) else ())
               for entry in (entries if isinstance(entries, list) else ())
               if isinstance(entry, Mapping)]
    waits = [float(m) * 60.0 for m in minutes if isinstance(m, int | float) and m > 0]
    return max(waits) if waits else None


def app_usage_percent(headers: Mapping[str, str]) -> float | None:
    """The highest percentage in ``X-App-Usage`` (throttling starts at 100)."""
    usage = _json_header(headers, "x-app-usage")
    values = [float(v) for v in usage.values() if isinstance(v, int | float)] if isinstance(
        usage, Mapping) else []
    return max(values) if values else None


# --- the mapping ----------------------------------------------------------------------------

def envelope_error(error: GraphError, platform: GraphPlatform, *,
                   headers: Mapping[str, str] | None = None, status: int = 400,
                   creates: bool = False, what: str = "the request",
                   now: datetime | None = None) -> PlatformError:
    """The chat33 error for a Graph error envelope (see the module docstring).

    ``creates`` marks a request that creates the post; ``what`` names the request for
    messages; ``status`` is the answer's HTTP status (Meta usually sends 400)."""
    code, subcode, name = error.code, error.subcode, platform.name
    kw: dict[str, Any] = {"platform_code": error.platform_code}
    text = error.message or f"HTTP {status}"
    if subcode in platform.quota_subcodes or code in platform.quota_codes:
        return QuotaExceeded(f"{name}'s publishing limit is reached; the post waits for quota",
                             retry_at=(now or utcnow()) + platform.quota_wait, **kw)
    if subcode in platform.permanent_subcodes:
        return PermanentError(_user_message(error, platform, what), **kw)
    if code in TOKEN_CODES:
        why = TOKEN_SUBCODES.get(subcode or 0, text)
        if platform.refreshable_tokens and subcode not in RECONNECT_SUBCODES:
            return CredentialsExpired(f"{name} refused the access token ({why})", **kw)
        return ReconnectRequired(f"{name} refused the access token ({why}); reconnect the "
                                 f"{platform.account}", **kw)
    if code == 10 or (code is not None and 200 <= code <= 299):
        scopes = f" granting {platform.scopes}" if platform.scopes else ""
        return ReconnectRequired(f"{name} denied permission for {what} ({text}); reconnect "
                                 f"the {platform.account}{scopes}", **kw)
    if code in THROTTLING_CODES or status == 429:
        wait = usage_wait_s(headers or {}) or DEFAULT_THROTTLE_WAIT_S
        return Throttled(f"{name} is throttling requests (code {code}): {text}; "
                         f"waiting {wait:.0f} s", retry_after=wait, **kw)
    if code == 368:
        return PermanentError(error.user_msg or f"{name} has temporarily blocked this "
                              f"{platform.account} from posting for a policy reason: {text}",
                              **kw)
    if code == 506:
        return PermanentError(f"{name} refused a duplicate post: the same text was posted "
                              f"to this {platform.account} recently", **kw)
    if subcode in platform.retry_subcodes:
        return TransientError(f"{name}: {platform.retry_subcodes[subcode or 0]}", **kw)
    if (code in TRANSIENT_CODES or code in platform.transient_codes or error.is_transient
            or subcode in platform.transient_subcodes or status >= 500):
        if creates:
            return UnknownOutcome(f"{name} failed while answering {what} ({text}); it may "
                                  "have acted", **kw)
        return TransientError(f"{name} had a temporary failure with {what}: {text}", **kw)
    return PermanentError(_user_message(error, platform, what), **kw)


def graph_error(response: httpx.Response, platform: GraphPlatform, *, creates: bool = False,
                what: str = "the request") -> PlatformError:
    """The chat33 error for a failed Graph answer: its envelope by
    :func:`envelope_error`, or without one its HTTP status (5xx and 408: transient, or
    an unknown outcome for a request that creates the post)."""
    error = GraphError.from_response(response)
    if error is not None:
        return envelope_error(error, platform, headers=response.headers,
                              status=response.status_code, creates=creates, what=what)
    status, name = response.status_code, platform.name
    kw: dict[str, Any] = {"platform_code": f"http-{status}"}
    if status == 429:
        wait = usage_wait_s(response.headers) or _retry_after(response) or \
            DEFAULT_THROTTLE_WAIT_S
        return Throttled(f"{name} is throttling {what}", retry_after=wait, **kw)
    if status >= 500 or status == 408:
        if creates:
            return UnknownOutcome(f"{name} answered {status} to {what}; whether the post "
                                  "exists is unknown", **kw)
        return TransientError(f"{name} answered {status} to {what}",
                              retry_after=_retry_after(response), **kw)
    if status == 401:
        if platform.refreshable_tokens:
            return CredentialsExpired(f"{name} refused the access token", **kw)
        return ReconnectRequired(f"{name} refused the access token; reconnect the "
                                 f"{platform.account}", **kw)
    return PermanentError(f"{name} answered {status} to {what}", **kw)


def _user_message(error: GraphError, platform: GraphPlatform, what: str) -> str:
    """The platform's message for the user, best first."""
    if error.user_msg:
        return f"{error.user_title}: {error.user_msg}" if error.user_title else error.user_msg
    if error.subcode in platform.user_messages:
        return platform.user_messages[error.subcode or 0]
    return f"{platform.name} refused {what}: {error.message or error.platform_code}"


def _json_header(headers: Mapping[str, str], name: str) -> Any:
    raw = httpx.Headers(headers).get(name)  # header names are case-insensitive
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


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
