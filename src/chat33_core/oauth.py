"""What connecting an account by OAuth 2 passes between the core and a plugin.

The core owns the flow (``state``, the PKCE verifier, the redirect URI, expiry, single
use, storing the accounts); a plugin only speaks its platform's protocol through the
hooks on :class:`~chat33_core.platforms.PlatformBase`:

1. :meth:`~chat33_core.platforms.PlatformBase.authorization_url` — where to send the
   browser, for an :class:`AuthorizationRequest`;
2. :meth:`~chat33_core.platforms.PlatformBase.exchange_code` — the code for a
   :class:`Grant`;
3. :meth:`~chat33_core.platforms.PlatformBase.long_lived` — a longer-lived grant where
   the platform has one (Meta);
4. :meth:`~chat33_core.platforms.PlatformBase.list_targets` — the accounts the grant can
   publish as (:class:`Target`: the user, the creator, the channels, the Pages);
5. :meth:`~chat33_core.platforms.PlatformBase.revoke` — give the grant back on
   disconnect, where the platform can.

A plugin raises :class:`OAuthError` for anything the platform refused; the connection
then ends ``failed`` with that error code and message, never a 500.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import attrs
import httpx
from attrs import field, frozen

from .errors import OAuthError
from .models import Credentials

if TYPE_CHECKING:
    from .config import Settings


def new_state() -> str:
    """A fresh ``state``: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def new_code_verifier() -> str:
    """A PKCE ``code_verifier`` (RFC 7636 §4.1): 43 characters of ``[A-Za-z0-9-_]``."""
    return secrets.token_urlsafe(32)


def code_challenge_s256(verifier: str) -> str:
    """``BASE64URL(SHA256(verifier))`` without padding (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@frozen
class OAuthClient:
    """The app registered at the platform (``CHAT33_<P>_CLIENT_ID`` / ``_CLIENT_SECRET``)
    and the one redirect URI it uses: ``{CHAT33_PUBLIC_BASE_URL}/api/v1/oauth/{p}/callback``,
    sent byte for byte in the authorize request and in the code exchange."""

    client_id: str
    client_secret: str = field(repr=False)
    redirect_uri: str


@frozen
class AuthorizationRequest:
    """One authorization attempt, as the core keeps it server-side."""

    client: OAuthClient
    #: echoed by the platform on the redirect back; the core checks it
    state: str = field(repr=False)
    #: the PKCE verifier; plugins of platforms without PKCE ignore it
    code_verifier: str = field(repr=False)
    #: ask the platform to show its consent screen again (reconnect)
    force_consent: bool = False

    @property
    def code_challenge(self) -> str:
        """The S256 challenge of :attr:`code_verifier`."""
        return code_challenge_s256(self.code_verifier)


@frozen
class Grant:
    """What the code exchange gave: the user's token and what the user granted."""

    credentials: Credentials
    #: the scopes the platform reports as granted (users may grant only some)
    scopes: tuple[str, ...] = ()
    #: the platform's id of the user who consented, when the exchange tells it
    subject: str | None = None
    extra: Mapping[str, Any] = field(factory=dict)


@frozen
class Target:
    """An account the grant can publish as: it becomes (or updates) a chat33 account."""

    #: the platform's own id (X user id, Page id, Instagram user id, channel id, open_id)
    external_id: str
    name: str
    username: str | None = None
    picture_url: str | None = None
    #: the credentials that publish as this target (Facebook: the Page token)
    credentials: Credentials | None = field(default=None, repr=False)
    #: stored in ``Account.metadata`` (never secrets)
    metadata: Mapping[str, Any] = field(factory=dict)


@attrs.define
class OAuthContext:
    """What an OAuth hook may use: one HTTP client and the settings."""

    client: OAuthClient
    http: httpx.Client
    settings: Settings


def missing_scopes(granted: Sequence[str], required: Sequence[str]) -> list[str]:
    """The required scopes the user did not grant, in the order required."""
    have = set(granted)
    return [s for s in required if s not in have]


def lifetime(expires_in: Any, default: timedelta | None = None) -> timedelta | None:
    """A token answer's ``expires_in`` (seconds, a number or a numeric string) as a
    ``timedelta``; ``default`` when it is missing or not a positive number."""
    try:
        seconds = float(expires_in)
    except (TypeError, ValueError):
        return default
    return timedelta(seconds=seconds) if seconds > 0 else default


def require_scopes(platform: str, granted: Sequence[str], required: Sequence[str]) -> None:
    """Refuse a partial grant: ``OAuthError("insufficient_scope")`` naming what is
    missing."""
    missing = missing_scopes(granted, required)
    if missing:
        raise OAuthError("insufficient_scope", f"{platform} did not grant "
                         f"{', '.join(missing)}; connect again and allow every permission")


def oauth_call(ctx: OAuthContext, method: str, url: str, *, platform: str, what: str,
               **kwargs: Any) -> tuple[httpx.Response, Any]:
    """One request of the flow through ``ctx.http``: the answer and its JSON body
    (``None`` when it is not JSON). No answer is ``OAuthError("temporarily_unavailable")``
    and a 5xx is ``OAuthError("server_error")``; the URL, which may carry secrets, is
    never in the message."""
    try:
        response = ctx.http.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        raise OAuthError("temporarily_unavailable", f"{platform} did not answer {what} "
                         f"({type(exc).__name__})") from None
    if response.status_code >= 500:
        raise OAuthError("server_error", f"{platform} answered {what} with HTTP "
                         f"{response.status_code}; try again later")
    try:
        body = response.json()
    except ValueError:
        body = None
    return response, body


__all__ = [
    "AuthorizationRequest", "Grant", "OAuthClient", "OAuthContext", "OAuthError", "Target",
    "code_challenge_s256", "lifetime", "missing_scopes", "new_code_verifier", "new_state",
    "oauth_call", "require_scopes",
]
