"""Instagram: the platform object chat33's core calls.

Speaks the Instagram Graph API content-publishing protocol (platforms.md §1) over
httpx. Accounts whose credentials say ``extra["login"] == "facebook"`` call
``graph.facebook.com``; the others (Instagram Login, and tokens added by hand without
that mark) call ``graph.instagram.com``. ``CHAT33_INSTAGRAM_API_BASE`` replaces both.

Accounts connect by OAuth (oauth.md §3) through Facebook Login by default: the
professional accounts linked to the user's Pages, each publishing with the long-lived
user token on ``graph.facebook.com``. ``CHAT33_INSTAGRAM_LOGIN=instagram`` switches to
Instagram Login: one account, the one that signed in, with a 60-day token that
refreshes on ``graph.instagram.com``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from chat33_core.errors import (
    CredentialsExpired,
    Issue,
    NotSupported,
    OAuthError,
    PermanentError,
    ReconnectRequired,
    TransientError,
)
from chat33_core.facebook_login import FacebookLogin
from chat33_core.graph import GraphError, graph_error
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
from chat33_core.options import Option
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
from .graph import INSTAGRAM, Graph
from .publishing import Publisher

INSTAGRAM_GRAPH = "https://graph.instagram.com"
FACEBOOK_GRAPH = "https://graph.facebook.com"
GRAPH_VERSION = "v25.0"
#: Instagram refreshes only long-lived tokens at least this old (and not expired)
MIN_TOKEN_AGE = timedelta(hours=24)
#: Instagram Login (oauth.md §3.2): the code exchange is on api.instagram.com
#: (``CHAT33_INSTAGRAM_TOKEN_URL`` replaces it), the long-lived exchange
#: (``ig_exchange_token``) and the refresh (``refresh_access_token``) on
#: graph.instagram.com (platforms.md §1.8); ``CHAT33_INSTAGRAM_API_BASE`` replaces both hosts
IG_AUTHORIZE = "https://www.instagram.com/oauth/authorize"
IG_TOKEN = "https://api.instagram.com/oauth/access_token"
#: what publishing needs through Instagram Login, and through Facebook Login (§3.3)
IG_LOGIN_SCOPES = ("instagram_business_basic", "instagram_business_content_publish")
FACEBOOK_LOGIN_SCOPES = ("instagram_basic", "instagram_content_publish", "pages_show_list",
                         "pages_read_engagement")
#: Instagram Login tokens last 60 days
LONG_LIVED = timedelta(days=60)


class InstagramPlatform(PlatformBase):
    """Feed images, reels, stories and carousels on an Instagram professional account."""

    name = "instagram"
    display_name = "Instagram"
    capabilities = Capabilities(threads=False, delete=False, text_only=False,
                                images=True, video=True, native_scheduling=False)
    limits = Limits(
        caption_length=rules.CAPTION_MAX,
        max_images=rules.CAROUSEL_MAX,
        max_videos=rules.CAROUSEL_MAX,
        max_image_bytes=rules.IMAGE_MAX_BYTES,
        max_video_bytes=rules.REEL_MAX_BYTES,
    )
    #: shared by all workers: Meta's app-wide call budget, which it reports as a
    #: percentage in ``X-App-Usage`` (throttling starts at 100; a publish spends nothing
    #: of its own here but waits while the app is at 100), and the 100 API-published
    #: posts per account per 24 h (a carousel counts as one; the Content Publishing guide's
    #: moving 24-hour window, platforms.md §1.4: 25 was the old figure), so no
    #: ``limits.daily_cap`` beside it
    rate_limits = (
        RateLimit("app-usage", per="app", units=100, window=timedelta(hours=1), cost=0,
                  description="% of the app's hourly call budget (X-App-Usage)"),
        RateLimit("posts", per="account", units=100, window=timedelta(hours=24),
                  description="API-published posts per 24 hours"),
    )
    options = (
        Option("type", "string", "What to publish; from the media when absent (one image: "
               "feed, several: carousel, a video: reel)", choices=rules.POST_TYPES),
        Option("shareToFeed", "boolean", "Reels: also show the reel in the feed (Instagram "
               "shows it when absent)"),
        Option("coverUrl", "string", "Reels: the http(s) URL of a JPEG cover (else "
               "coverImageUrl, else a frame)"),
        Option("thumbOffsetMs", "number", "A single video or reel: the thumbnail frame, in "
               "ms from the start", minimum=0),
        Option("collaborators", "array", f"Up to {rules.COLLABORATORS_MAX} usernames invited "
               "as collaborators (not on stories)", items=Option("username", "string", "")),
        Option("userTags", "array", "Users tagged on the media; x and y (0.0-1.0) place the "
               "tag and are required on images", items=Option(
                   "tag", "object", "", fields=(
                       Option("username", "string", "the Instagram username", required=True),
                       Option("x", "number", "0.0 (left) to 1.0 (right)", minimum=0.0,
                              maximum=1.0),
                       Option("y", "number", "0.0 (top) to 1.0 (bottom)", minimum=0.0,
                              maximum=1.0)))),
        Option("locationId", ("string", "integer"), "The numeric id of a Facebook Page with a "
               "location"),
        Option("altText", "string", f"Feed images: alt text (up to {rules.ALT_TEXT_MAX} "
               "characters)"),
        Option("firstComment", "string", f"Posted as the first comment right after the post "
               f"(up to {rules.CAPTION_MAX} characters; not on stories)"),
    )
    default_api_base = INSTAGRAM_GRAPH
    #: the Facebook Login scopes (the default); Instagram Login asks for IG_LOGIN_SCOPES
    oauth_scopes = FACEBOOK_LOGIN_SCOPES
    #: refresh long-lived (60-day) tokens this long before they expire;
    #: ``CHAT33_INSTAGRAM_REFRESH_WINDOW_HOURS`` overrides it
    refresh_margin = timedelta(days=7)

    # --- preflight ------------------------------------------------------------------

    def validate(self, draft: PostDraft, account: Account) -> list[Issue]:
        return rules.check(draft)

    # --- publishing -----------------------------------------------------------------

    def publish(self, ctx: PublishContext) -> PublishResult:
        return Publisher(ctx, self._graph(ctx)).publish()

    def confirm(self, ctx: PublishContext) -> PublishResult | None:
        return Publisher(ctx, self._graph(ctx)).confirm()

    def delete(self, ctx: DeleteContext) -> None:
        raise NotSupported("Instagram does not delete media through its API (the Graph API "
                           "has no delete for Instagram posts): delete it in the app")

    def sandbox(self) -> WSGIApp | None:
        from .sandbox import InstagramSandbox

        return InstagramSandbox()

    # --- endpoints --------------------------------------------------------------------

    def graph_base(self, credentials: Credentials) -> str:
        """The Graph origin for this account's kind of login (the override wins)."""
        if self.settings.platform_value(self.name, "API_BASE"):
            return self.api_base()
        return FACEBOOK_GRAPH if _login(credentials) == "facebook" else self.api_base()

    def graph_version(self) -> str:
        return self.settings.platform_value(self.name, "GRAPH_VERSION", GRAPH_VERSION) \
            or GRAPH_VERSION

    def _graph(self, ctx: PublishContext) -> Graph:
        return Graph(ctx.http, self.graph_base(ctx.credentials), self.graph_version(),
                     ctx.credentials.access_token, ctx.log, ctx.limits)

    # --- connecting accounts ----------------------------------------------------------------

    def login_kind(self) -> str:
        """``facebook`` (the default) or ``instagram``: ``CHAT33_INSTAGRAM_LOGIN``."""
        kind = (self.settings.platform_value(self.name, "LOGIN") or "facebook").lower()
        return "instagram" if kind == "instagram" else "facebook"

    def facebook_login(self) -> FacebookLogin:
        return FacebookLogin(self, self.graph_version())

    def authorization_url(self, request: AuthorizationRequest) -> str:
        if self.login_kind() == "facebook":
            return self.facebook_login().authorization_url(request, FACEBOOK_LOGIN_SCOPES)
        params = {"client_id": request.client.client_id,
                  "redirect_uri": request.client.redirect_uri, "response_type": "code",
                  "scope": ",".join(IG_LOGIN_SCOPES), "state": request.state}
        if request.force_consent:
            params["force_reauth"] = "true"
        return f"{self.platform_url(IG_AUTHORIZE)}?{urlencode(params)}"

    def exchange_code(self, code: str, request: AuthorizationRequest,
                      ctx: OAuthContext) -> Grant:
        if self.login_kind() == "facebook":
            return self.facebook_login().exchange_code(code, request, ctx,
                                                       FACEBOOK_LOGIN_SCOPES)
        url = self.settings.token_url(self.name, self.platform_url(IG_TOKEN))
        response, body = oauth_call(ctx, "POST", url, platform="Instagram",
                                    what="the code exchange", data={
                                        "client_id": ctx.client.client_id,
                                        "client_secret": ctx.client.client_secret,
                                        "grant_type": "authorization_code",
                                        "redirect_uri": ctx.client.redirect_uri, "code": code})
        # Meta documents {"data": [{...}]}; the API answers flat too: read both
        data = body.get("data") if isinstance(body, dict) else None
        token_body = data[0] if isinstance(data, list) and data else body
        if response.status_code >= 400 or not isinstance(token_body, dict) \
                or not token_body.get("access_token"):
            raise _instagram_oauth_error(body, "the code exchange")
        permissions = token_body.get("permissions") or ()
        if isinstance(permissions, str):
            permissions = permissions.replace(" ", ",").split(",")
        scopes = tuple(str(p) for p in permissions if p)
        require_scopes("Instagram", scopes, IG_LOGIN_SCOPES)
        now = utcnow()
        return Grant(credentials=Credentials(access_token=str(token_body["access_token"]),
                                             expires_at=now + timedelta(hours=1),
                                             issued_at=now, extra={"login": "instagram"}),
                     scopes=scopes, subject=str(token_body.get("user_id") or "") or None)

    def long_lived(self, grant: Grant, ctx: OAuthContext) -> Grant:
        if self.login_kind() == "facebook":
            return self.facebook_login().long_lived(grant, ctx)
        url = self.platform_url(f"{INSTAGRAM_GRAPH}/access_token")
        response, body = oauth_call(ctx, "GET", url, platform="Instagram",
                                    what="the long-lived token exchange", params={
                                        "grant_type": "ig_exchange_token",
                                        "client_secret": ctx.client.client_secret,
                                        "access_token": grant.credentials.access_token})
        if response.status_code >= 400 or not isinstance(body, dict) \
                or not body.get("access_token"):
            raise _instagram_oauth_error(body, "the long-lived token exchange")
        now = utcnow()
        life = lifetime(body.get("expires_in"), LONG_LIVED) or LONG_LIVED
        return Grant(credentials=Credentials(access_token=str(body["access_token"]),
                                             expires_at=now + life, issued_at=now,
                                             extra={"login": "instagram"}),
                     scopes=grant.scopes, subject=grant.subject, extra=grant.extra)

    def list_targets(self, grant: Grant, ctx: OAuthContext) -> list[Target]:
        if self.login_kind() == "instagram":
            return [self._instagram_login_target(grant, ctx)]
        login = self.facebook_login()
        token = grant.credentials.access_token
        credentials = Credentials(
            access_token=token, expires_at=grant.credentials.expires_at,
            issued_at=grant.credentials.issued_at,
            extra={"login": "facebook", "user_id": grant.subject})
        targets = []
        for page in login.pages(ctx, token, "id,name,instagram_business_account"):
            linked = page.get("instagram_business_account")
            if not isinstance(linked, Mapping) or not linked.get("id"):
                continue  # not professional, or not linked to this Page
            ig = login.get(ctx, str(linked["id"]), token, "reading the Instagram account",
                           fields="id,username,name,profile_picture_url")
            targets.append(Target(
                external_id=str(ig.get("id") or linked["id"]),
                name=str(ig.get("name") or ig.get("username") or linked["id"]),
                username=ig.get("username"), picture_url=ig.get("profile_picture_url"),
                credentials=credentials,
                metadata={"login": "facebook", "pageId": str(page.get("id"))}))
        return targets

    def _instagram_login_target(self, grant: Grant, ctx: OAuthContext) -> Target:
        url = self.platform_url(f"{INSTAGRAM_GRAPH}/{self.graph_version()}/me")
        response, body = oauth_call(
            ctx, "GET", url, platform="Instagram", what="reading the account",
            params={"fields": "user_id,username,name,profile_picture_url,account_type"},
            headers={"Authorization": f"Bearer {grant.credentials.access_token}"})
        if response.status_code >= 400 or not isinstance(body, dict):
            raise _instagram_oauth_error(body, "reading the account")
        user_id = str(body.get("user_id") or body.get("id") or grant.subject or "")
        if not user_id:
            raise OAuthError("exchange_failed", "Instagram did not tell which account "
                                                "signed in")
        return Target(external_id=user_id, name=str(body.get("name") or body.get("username")
                                                     or user_id),
                      username=body.get("username"), picture_url=body.get("profile_picture_url"),
                      credentials=grant.credentials,
                      metadata={"login": "instagram", "accountType": body.get("account_type")})

    def revoke(self, credentials: Credentials, ctx: OAuthContext) -> None:
        """Facebook Login grants are revoked (``DELETE /{user-id}/permissions``);
        Instagram Login has no revocation: the owner removes the app in Instagram."""
        if _login(credentials) != "facebook":
            raise NotSupported("Instagram Login has no revocation endpoint: remove the app "
                               "in Instagram's settings (Apps and websites)")
        self.facebook_login().revoke(credentials, ctx)

    # --- credentials --------------------------------------------------------------------

    def refresh_window(self) -> timedelta:
        hours = self.settings.platform_value(self.name, "REFRESH_WINDOW_HOURS")
        return timedelta(hours=float(hours)) if hours else self.refresh_margin

    def needs_refresh(self, credentials: Credentials, now: datetime | None = None) -> bool:
        """True for an Instagram Login token that can and should be refreshed now: at
        least 24 h old, not expired, and within the refresh window of its expiry."""
        if _login(credentials) == "facebook" or credentials.expires_at is None:
            return False
        now = now or utcnow()
        if credentials.expires_at <= now:
            return False  # too late: only a new login helps
        if credentials.issued_at is not None and now - credentials.issued_at < MIN_TOKEN_AGE:
            return False
        return credentials.expires_at - now <= self.refresh_window()

    def refresh_credentials(self, credentials: Credentials, ctx: RefreshContext) -> Credentials:
        """Exchange the long-lived token for a new one (``refresh_access_token``).

        Raises ``ReconnectRequired`` where Instagram cannot refresh: Facebook Login
        tokens, expired tokens, tokens under 24 h old, or a refusal by Meta.
        """
        now = utcnow()
        if _login(credentials) == "facebook":
            raise ReconnectRequired("Instagram accounts connected through Facebook Login "
                                    "cannot refresh their token: reconnect the account")
        if credentials.expires_at is not None and credentials.expires_at <= now:
            raise ReconnectRequired("the Instagram token has expired and cannot be "
                                    "refreshed: reconnect the account")
        if credentials.issued_at is not None and now - credentials.issued_at < MIN_TOKEN_AGE:
            raise ReconnectRequired("Instagram refused a token less than 24 h old and it "
                                    "cannot be refreshed yet: reconnect the account")
        # graph.instagram.com, not the code exchange's endpoint (CHAT33_INSTAGRAM_TOKEN_URL)
        url = self.platform_url(f"{INSTAGRAM_GRAPH}/refresh_access_token")
        response = send(ctx.http, "GET", url, platform="Instagram", what="token refresh",
                        creates=False, params={"grant_type": "ig_refresh_token",
                                               "access_token": credentials.access_token})
        if response.status_code >= 400:
            error = graph_error(response, INSTAGRAM, what="token refresh")
            if isinstance(error, CredentialsExpired | PermanentError):
                raise ReconnectRequired(f"Instagram refused to refresh the token: "
                                        f"{error.message}; reconnect the account",
                                        platform_code=error.platform_code) from error
            raise error
        body: dict[str, Any] = response.json()
        token = body.get("access_token")
        if not token:
            raise TransientError("Instagram's token refresh answered without a token",
                                 platform_code="refresh")
        expires_in = body.get("expires_in")
        return Credentials(
            access_token=str(token), refresh_token=None,
            expires_at=now + timedelta(seconds=int(expires_in)) if expires_in else None,
            issued_at=now, extra=dict(credentials.extra),
        )


def _instagram_oauth_error(body: Any, what: str) -> OAuthError:
    """Instagram Login's errors: the legacy ``{"error_type", "code", "error_message"}``
    shape or a Graph envelope."""
    if isinstance(body, dict) and body.get("error_message"):
        message = str(body["error_message"])
        lowered = message.lower()
        kind = ("invalid_client" if "client secret" in lowered or "platform app" in lowered
                else "invalid_grant")
        return OAuthError(kind, f"Instagram refused {what}: {message}")
    error = GraphError.parse(body)
    if error is not None:
        kind = "invalid_grant" if error.code in (100, 190) else "exchange_failed"
        return OAuthError(kind, f"Instagram refused {what}: {error.message}")
    return OAuthError("exchange_failed", f"Instagram answered {what} outside the protocol")


def _login(credentials: Credentials) -> str:
    return str((credentials.extra or {}).get("login") or "instagram").lower()
