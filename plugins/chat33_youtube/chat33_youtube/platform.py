"""YouTube: the platform object chat33's core calls.

Speaks the YouTube Data API v3 (platforms.md §4) over httpx. Google keeps uploads under
``/upload/youtube/v3/...`` and everything else under ``/youtube/v3/...`` on one origin,
``https://www.googleapis.com``. The OAuth hosts are ``accounts.google.com`` (the consent
page) and ``oauth2.googleapis.com`` (token, revoke). ``CHAT33_YOUTUBE_API_BASE`` replaces
all three; ``CHAT33_YOUTUBE_TOKEN_URL`` replaces just the token endpoint.

Accounts connect by Google OAuth 2 (oauth.md §6): PKCE S256, ``access_type=offline`` for
a refresh token, ``prompt=consent`` on a reconnect, the scope ``youtube.force-ssl``
(upload, channel lookup, delete), and the user's channels from ``channels?mine=true``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import httpx

from chat33_core.errors import Issue, OAuthError, ReconnectRequired, TransientError
from chat33_core.http import send
from chat33_core.models import Account, Credentials, utcnow
from chat33_core.oauth import (
    AuthorizationRequest,
    Grant,
    OAuthContext,
    Target,
    lifetime,
    oauth_call,
    require_scopes,
)
from chat33_core.platforms import (
    Capabilities,
    DeleteContext,
    Limits,
    PlatformBase,
    PostDraft,
    PublishContext,
    PublishResult,
    RateLimit,
    RefreshContext,
    WSGIApp,
)

from . import rules
from .google_errors import response_error
from .publishing import Publisher, chunk_size

GOOGLE_APIS = "https://www.googleapis.com"
TOKEN_URL = "https://oauth2.googleapis.com/token"
AUTHORIZE_URL = "https://accounts.google.com/o/oauth2/v2/auth"
REVOKE_URL = "https://oauth2.googleapis.com/revoke"
#: covers videos.insert, thumbnails.set, channels.list and videos.delete (oauth.md §6)
SCOPES = ("https://www.googleapis.com/auth/youtube.force-ssl",)
#: why Google says ``invalid_grant`` to a refresh token (platforms.md §4.7)
INVALID_GRANT_CAUSES = (
    "the owner revoked chat33's access, the refresh token went unused for 6 months, the "
    "Google Cloud app is in Testing status (its tokens die after 7 days), or the account "
    "passed 100 refresh tokens for this client"
)


class YouTubePlatform(PlatformBase):
    """Video uploads (videos.insert, resumable) with metadata and custom thumbnails."""

    name = "youtube"
    display_name = "YouTube"
    capabilities = Capabilities(threads=False, delete=True, text_only=False, images=False,
                                video=True, native_scheduling=True)
    limits = Limits(
        caption_length=rules.DESCRIPTION_MAX_BYTES,
        max_images=0,
        max_videos=1,
        max_image_bytes=rules.THUMBNAIL_MAX_BYTES,
        max_video_bytes=rules.VIDEO_MAX_BYTES,
        daily_cap=6,
    )
    #: the Google Cloud project's daily quota, shared by all workers, reset at midnight
    #: Pacific time: the videos.insert bucket (100 uploads) and the 10,000 units of the
    #: other endpoints, of which a publish spends at most a thumbnail (50) and a status
    #: read (1)
    rate_limits = (
        RateLimit("videos-insert", per="app", units=100, window=timedelta(days=1),
                  resets_in="America/Los_Angeles", description="video uploads per day"),
        RateLimit("quota-units", per="app", units=10_000, window=timedelta(days=1), cost=51,
                  resets_in="America/Los_Angeles", description="quota units per day"),
    )
    options = rules.OPTIONS
    default_api_base = GOOGLE_APIS
    sandbox_token_path = "/token"
    #: Google access tokens last about an hour
    refresh_margin = timedelta(minutes=5)
    oauth_scopes = SCOPES

    # --- preflight ------------------------------------------------------------------

    def validate(self, draft: PostDraft, account: Account) -> list[Issue]:
        return rules.check(draft.text, draft.media_type, draft.media,
                           rules.config_of(draft.platform_config), draft.cover_image,
                           now=utcnow(), prefix=draft.path)

    # --- publishing -----------------------------------------------------------------

    def chunk_size(self) -> int:
        """Upload chunk size: ``CHAT33_YOUTUBE_CHUNK_SIZE`` (bytes, rounded down to a
        multiple of 262,144) or 16 MiB."""
        return chunk_size(self.settings.platform_value(self.name, "CHUNK_SIZE"))

    def publish(self, ctx: PublishContext) -> PublishResult:
        return Publisher(ctx, self.api_base(), self.chunk_size()).publish()

    def confirm(self, ctx: PublishContext) -> PublishResult | None:
        return Publisher(ctx, self.api_base(), self.chunk_size()).confirm()

    def delete(self, ctx: DeleteContext) -> None:
        """videos.delete each id; a video that is already gone counts as deleted."""
        headers = {"Authorization": f"Bearer {ctx.credentials.access_token}"}
        for video_id in ctx.external_ids:
            response = send(ctx.http, "DELETE", f"{self.api_base()}/youtube/v3/videos",
                            platform="YouTube", what="delete", creates=False,
                            params={"id": video_id}, headers=headers)
            if response.status_code in (200, 204):
                ctx.log("deleted", f"deleted the YouTube video {video_id}", videoId=video_id)
                continue
            if response.status_code == 404:
                ctx.log("deleted", f"the YouTube video {video_id} was already gone",
                        videoId=video_id)
                continue
            raise response_error(response, what="delete") from httpx.HTTPStatusError(
                f"{response.status_code} from DELETE videos", request=response.request,
                response=response)

    def sandbox(self) -> WSGIApp | None:
        from .sandbox import YouTubeSandbox

        return YouTubeSandbox()

    # --- connecting channels (Google OAuth 2) ------------------------------------------

    def token_endpoint(self) -> str:
        return self.settings.token_url(self.name, self.platform_url(TOKEN_URL))

    def authorization_url(self, request: AuthorizationRequest) -> str:
        params = {"client_id": request.client.client_id,
                  "redirect_uri": request.client.redirect_uri, "response_type": "code",
                  "scope": " ".join(self.oauth_scopes), "state": request.state,
                  "access_type": "offline", "include_granted_scopes": "true",
                  "code_challenge": request.code_challenge, "code_challenge_method": "S256"}
        if request.force_consent:
            params["prompt"] = "consent"
        return f"{self.platform_url(AUTHORIZE_URL)}?{urlencode(params)}"

    def exchange_code(self, code: str, request: AuthorizationRequest,
                      ctx: OAuthContext) -> Grant:
        response, body = oauth_call(ctx, "POST", self.token_endpoint(), platform="Google",
                                    what="the code exchange", data={
                                        "code": code, "client_id": ctx.client.client_id,
                                        "client_secret": ctx.client.client_secret,
                                        "redirect_uri": ctx.client.redirect_uri,
                                        "grant_type": "authorization_code",
                                        "code_verifier": request.code_verifier})
        if response.status_code >= 400 or not isinstance(body, dict) \
                or not body.get("access_token"):
            raise _oauth_error(body, "the code exchange")
        scopes = tuple(str(body.get("scope") or "").split())
        require_scopes("Google", scopes, self.oauth_scopes)
        now = utcnow()
        life = lifetime(body.get("expires_in"))
        credentials = Credentials(
            access_token=str(body["access_token"]),
            refresh_token=str(body["refresh_token"]) if body.get("refresh_token") else None,
            expires_at=now + life if life else None,
            issued_at=now, extra={"scope": " ".join(scopes)})
        return Grant(credentials=credentials, scopes=scopes)

    def list_targets(self, grant: Grant, ctx: OAuthContext) -> list[Target]:
        """The channels of the grant (``channels?part=snippet&mine=true``); none when
        the Google account has no channel."""
        response, body = oauth_call(
            ctx, "GET", self.platform_url(f"{GOOGLE_APIS}/youtube/v3/channels"),
            platform="YouTube", what="listing the channels",
            params={"part": "snippet", "mine": "true"},
            headers={"Authorization": f"Bearer {grant.credentials.access_token}"})
        if response.status_code >= 400 or not isinstance(body, dict):
            raise _oauth_error(body, "listing the channels", response.status_code)
        targets = []
        for item in body.get("items") or ():
            snippet = item.get("snippet") or {}
            picture = ((snippet.get("thumbnails") or {}).get("default") or {}).get("url")
            targets.append(Target(external_id=str(item["id"]),
                                  name=str(snippet.get("title") or item["id"]),
                                  username=snippet.get("customUrl"), picture_url=picture,
                                  credentials=grant.credentials))
        return targets

    def revoke(self, credentials: Credentials, ctx: OAuthContext) -> None:
        """``POST /revoke``: the refresh token (else the access token) and with it the
        whole grant. A token Google no longer knows is already revoked."""
        token = credentials.refresh_token or credentials.access_token
        response, body = oauth_call(ctx, "POST", self.platform_url(REVOKE_URL),
                                    platform="Google", what="the revocation",
                                    data={"token": token})
        if response.status_code >= 400 and not (isinstance(body, dict)
                                                and body.get("error") == "invalid_token"):
            raise _oauth_error(body, "the revocation")

    # --- credentials --------------------------------------------------------------------

    def refresh_credentials(self, credentials: Credentials, ctx: RefreshContext) -> Credentials:
        """The refresh_token grant at Google's token endpoint (platforms.md §4.7).

        Google usually sends no new refresh token: the core then keeps the stored one
        (:meth:`~chat33_core.models.Credentials.replaced_by`); a new one replaces it.
        ``invalid_grant`` means only the account owner can help: ``ReconnectRequired``.
        """
        if not credentials.refresh_token:
            raise ReconnectRequired("the YouTube account has no refresh token (it was "
                                    "connected without offline access): reconnect it")
        client_id, client_secret = self.settings.client_credentials(self.name)
        if not client_id or not client_secret:
            raise ReconnectRequired("CHAT33_YOUTUBE_CLIENT_ID and CHAT33_YOUTUBE_CLIENT_SECRET "
                                    "must be set to refresh YouTube tokens")
        url = self.token_endpoint()
        data = {"client_id": client_id, "client_secret": client_secret,
                "grant_type": "refresh_token", "refresh_token": credentials.refresh_token}
        now = utcnow()
        response = send(ctx.http, "POST", url, platform="YouTube", what="token refresh",
                        creates=False, data=data)
        body = _json_or_empty(response)
        if response.status_code >= 400:
            raise _refresh_error(response, body)
        token = body.get("access_token")
        if not token:
            raise TransientError("Google's token endpoint answered without an access token",
                                 platform_code="refresh")
        expires_in = body.get("expires_in")
        extra = dict(credentials.extra)
        if body.get("scope"):
            extra["scope"] = body["scope"]
        return Credentials(
            access_token=str(token),
            refresh_token=str(body.get("refresh_token") or "") or None,  # none: the core
            # keeps the old one (Credentials.replaced_by)
            expires_at=now + timedelta(seconds=int(expires_in)) if expires_in else None,
            issued_at=now, extra=extra,
        )


def _json_or_empty(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _oauth_error(body: Any, what: str, status: int = 400) -> OAuthError:
    """Google's OAuth errors (``{"error", "error_description"}``) and API errors
    (``{"error": {"code", "message", "errors": [{"reason"}]}}``) as ``OAuthError``."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, str):
        description = body.get("error_description") or error
        return OAuthError(error, f"Google refused {what}: {description}")
    if isinstance(error, dict):
        reasons = [e.get("reason") for e in error.get("errors") or () if isinstance(e, dict)]
        kind = ("invalid_grant" if status == 401 else
                "insufficient_scope" if "insufficientPermissions" in reasons
                else "exchange_failed")
        return OAuthError(kind, f"Google refused {what}: {error.get('message') or status}")
    return OAuthError("exchange_failed", f"Google answered {what} outside the protocol")


def _refresh_error(response: httpx.Response, body: dict[str, Any]) -> Exception:
    """OAuth errors are ``{"error": "invalid_grant", "error_description": ...}``."""
    error = body.get("error")
    description = body.get("error_description") or ""
    if error == "invalid_grant":
        said = description or "expired or revoked"
        return ReconnectRequired(
            f"Google refused the refresh token (invalid_grant: {said}); usually "
            f"{INVALID_GRANT_CAUSES}: reconnect the YouTube account",
            platform_code="invalid_grant")
    if error in ("invalid_client", "unauthorized_client"):
        return ReconnectRequired(
            f"Google refused chat33's OAuth client ({error}: {description}); check "
            "CHAT33_YOUTUBE_CLIENT_ID and CHAT33_YOUTUBE_CLIENT_SECRET, then reconnect",
            platform_code=str(error))
    if response.status_code >= 500 or response.status_code == 429:
        return TransientError(f"Google's token endpoint is busy (HTTP {response.status_code})",
                              platform_code="refresh")
    if isinstance(error, str):
        return ReconnectRequired(f"Google refused to refresh the token ({error}: "
                                 f"{description}): reconnect the YouTube account",
                                 platform_code=error)
    return response_error(response, what="token refresh")

