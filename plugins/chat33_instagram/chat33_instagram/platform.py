"""Instagram: the platform object chat33's core calls.

Speaks the Instagram Graph API content-publishing protocol (platforms.md §1) over
httpx. Accounts connected with Instagram Login (the default) call
``graph.instagram.com``; accounts whose credentials say ``extra["login"] ==
"facebook"`` call ``graph.facebook.com``. ``CHAT33_INSTAGRAM_API_BASE`` replaces both.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from chat33_core.errors import (
    CredentialsExpired,
    Issue,
    NotSupported,
    PermanentError,
    ReconnectRequired,
    TransientError,
)
from chat33_core.graph import graph_error
from chat33_core.http import send
from chat33_core.models import Account, Credentials, utcnow
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
        daily_cap=25,
    )
    #: shared by all workers: Meta's app-wide call budget, which it reports as a
    #: percentage in ``X-App-Usage`` (throttling starts at 100; a publish spends nothing
    #: of its own here but waits while the app is at 100), and the 100 API-published
    #: posts per account per 24 h (a carousel counts as one)
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
        url = self.settings.token_url(self.name,
                                      f"{self.graph_base(credentials)}/refresh_access_token")
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


def _login(credentials: Credentials) -> str:
    return str((credentials.extra or {}).get("login") or "instagram").lower()
