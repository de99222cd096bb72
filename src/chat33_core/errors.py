"""One error hierarchy for chat33.

The core raises these; the Flask adapter alone maps them to HTTP. Platform plugins
translate their platform's HTTP errors into the ``PlatformError`` family (``raise ...
from exc``) so the worker knows what to do without ever seeing a platform status code.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import attrs


@attrs.frozen
class Issue:
    """One problem found in a request: where (a path into the request) and what."""

    path: str
    message: str
    code: str = "invalid"
    severity: str = "error"  # "error" or "warning"


class Chat33Error(Exception):
    """Base of every error chat33 raises on purpose."""

    #: The API's error code, as documented in chat33-api.md.
    code: str = "INTERNAL"
    #: The HTTP status the adapter answers with.
    http_status: int = 500

    def __init__(self, message: str, *, details: Iterable[Issue] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.details: list[Issue] = list(details)


class ValidationError(Chat33Error):
    """Bad input. ``details`` lists every issue with a path into the request."""

    code = "VALIDATION_ERROR"
    http_status = 400


class Unauthorized(Chat33Error):
    code = "Unauthorized"
    http_status = 401


class Forbidden(Chat33Error):
    code = "Insufficient scope"
    http_status = 403


class NotFound(Chat33Error):
    code = "Not found"
    http_status = 404


class Conflict(Chat33Error):
    code = "CONFLICT"
    http_status = 409


class Gone(Chat33Error):
    """Something that existed and no longer may be used (an expired upload URL)."""

    code = "GONE"
    http_status = 410


class InvalidTransition(Conflict):
    """A post cannot move from its status to the one asked for."""

    def __init__(self, current: str, target: str, action: str | None = None) -> None:
        what = action or f"move to {target}"
        super().__init__(f"cannot {what}: the post is {current}")
        self.current = current
        self.target = target


class RateLimited(Chat33Error):
    code = "RATE_LIMIT"
    http_status = 429

    def __init__(
        self, message: str, *, retry_after: float, limit: int | None = None,
        remaining: int = 0, reset_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.retry_after = max(0.0, retry_after)
        self.limit = limit
        self.remaining = remaining
        self.reset_after = reset_after if reset_after is not None else self.retry_after


class ConcurrencyLimited(RateLimited):
    """Too many of an operation are in flight at once for the caller (not an allowance
    per period: ``limit`` is None); retry after ``retry_after`` seconds."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message, retry_after=retry_after)


class Unavailable(Chat33Error):
    """The server cannot do this right now (too busy, or its database is away); worth
    trying again after ``retry_after`` seconds."""

    code = "SERVICE_UNAVAILABLE"
    http_status = 503

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = max(0.0, retry_after)


class NotSupported(Chat33Error):
    """The platform cannot do this (e.g. delete on TikTok)."""

    code = "CONFLICT"
    http_status = 409


class ConfigurationError(Chat33Error):
    """The operator's configuration is missing or wrong."""

    code = "CONFIGURATION_ERROR"
    http_status = 500


class NotConfigured(ConfigurationError):
    """A feature the request asks for needs settings the operator has not given (a
    platform's OAuth app credentials): the request cannot succeed until they are set."""

    code = "NOT_CONFIGURED"
    http_status = 422


class PluginError(Chat33Error):
    """A plugin is broken or clashes with another one."""


class StoreUnavailable(Unavailable):
    """The database cannot be reached or used right now (a dropped or terminated
    connection, a server restart, a locked SQLite file, an exhausted pool): worth trying
    again shortly, and never a verdict on the post or the request.

    The store raises it in place of the driver's and SQLAlchemy's operational errors.
    Its ``message`` is generic on purpose: their text holds SQL and bound parameters,
    which must never reach a post's ``errorMessage``, its logs or an API answer.
    ``reason`` is the driver's first line (e.g. "terminating connection due to
    administrator command"), for the operator's logs only; the original error stays
    chained as ``__cause__``.
    """

    #: seconds a client is told to wait (``Retry-After``)
    RETRY_AFTER_S = 1.0
    MESSAGE = "the database cannot be reached right now; retry shortly"

    def __init__(self, message: str = MESSAGE, *, reason: str = "") -> None:
        super().__init__(message, retry_after=self.RETRY_AFTER_S)
        self.reason = reason


# --- platform errors: split by what the worker must do ---------------------------


class OAuthError(Chat33Error):
    """The platform refused a step of connecting an account. ``error`` is the OAuth
    error code (``access_denied``, ``invalid_grant``, ``invalid_scope``,
    ``server_error``...) or ``exchange_failed`` when the platform answered outside the
    protocol. The connection ends ``failed`` with it; it is never a 500."""

    code = "OAUTH_ERROR"
    http_status = 400

    def __init__(self, error: str, message: str) -> None:
        super().__init__(message)
        self.error = error


class PlatformError(Chat33Error):
    """Something went wrong on the platform's side.

    ``posted`` lists the receipts of thread items that did reach the platform before the
    failure, so nothing the platform holds is forgotten.
    """

    code = "PLATFORM_ERROR"
    http_status = 502

    def __init__(
        self, message: str, *, platform_code: str | None = None,
        posted: Sequence[Any] = (), details: Iterable[Issue] = (),
    ) -> None:
        super().__init__(message, details=details)
        self.platform_code = platform_code
        self.posted = list(posted)


class TransientError(PlatformError):
    """Safe to try again later: the platform did not act. ``retry_after`` in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class Throttled(TransientError):
    """The platform's rate limit: too many requests, come back in ``retry_after``
    seconds (the reset it names, or its estimate; :data:`THROTTLE_WAIT_S` when it names
    none). Nothing was done and nothing failed: the worker puts the post back in the
    queue until then without counting an attempt, as it does when a declared
    ``RateLimit`` is used up (``waiting_for_limit``). Code that catches
    ``TransientError`` (a retry inside one attempt) catches it too."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, retry_after=THROTTLE_WAIT_S if retry_after is None
                         else max(0.0, retry_after), **kw)


#: how long a post waits on a rate limit whose platform named no reset
THROTTLE_WAIT_S = 60.0


class QuotaExceeded(PlatformError):
    """A platform quota is spent; defer (not fail) until ``retry_at``."""

    def __init__(self, message: str, *, retry_at: datetime | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_at = retry_at


class CredentialsExpired(PlatformError):
    """The token was refused; one refresh may fix it."""


class ReconnectRequired(PlatformError):
    """The account must be connected again by its owner (refresh impossible or refused)."""


class PermanentError(PlatformError):
    """The platform refused the post for a reason the user must fix."""


class UnknownOutcome(PlatformError):
    """A request that creates the post was sent and no answer came back.

    The worker must never retry blindly: it asks the plugin's ``confirm`` first.
    """
