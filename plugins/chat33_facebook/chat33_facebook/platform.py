"""Facebook: the platform object chat33's core calls.

Publishes to a Facebook Page with a Page access token (the account's ``external_id`` is
the Page id). Page tokens never expire on a clock and cannot be refreshed: error 190
means the owner must connect the Page again.

Operator settings (environment):

* ``CHAT33_FACEBOOK_API_BASE`` — replaces ``graph``, ``graph-video`` and ``rupload``;
* ``CHAT33_FACEBOOK_GRAPH_VERSION`` — default ``v25.0``;
* ``CHAT33_FACEBOOK_APP_ID`` (or ``CHAT33_FACEBOOK_CLIENT_ID``) — the Meta app id the
  Resumable Upload API needs for video posts;
* ``CHAT33_FACEBOOK_UPLOAD_CHUNK_BYTES`` — bytes read from disk per upload step;
* ``CHAT33_FACEBOOK_MAX_TEXT``, ``_MAX_PHOTO_BYTES``, ``_MAX_PHOTOS``,
  ``_MAX_VIDEO_BYTES``, ``_MAX_VIDEO_SECONDS`` — limits Meta does not confirm.

Pages connect by Facebook Login (:mod:`chat33_core.facebook_login`): the user's Pages
whose ``tasks`` include ``CREATE_CONTENT`` are offered for selection, each with its Page
token (which does not expire, being taken from a long-lived user token) and, in the
credentials' ``extra``, the user id and user token that revoke the grant on disconnect.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from chat33_core.errors import Issue, PlatformError, ReconnectRequired
from chat33_core.facebook_login import FacebookLogin
from chat33_core.models import Account, Credentials
from chat33_core.oauth import AuthorizationRequest, Grant, OAuthContext, Target
from chat33_core.options import Option
from chat33_core.platforms import (
    Capabilities,
    DeleteContext,
    Limits,
    PlatformBase,
    PostDraft,
    PublishContext,
    PublishResult,
    RefreshContext,
    WSGIApp,
)

from . import rules
from .graph import DEFAULT_VERSION, Graph
from .publishing import Publisher

if TYPE_CHECKING:
    import httpx

#: what publishing Page posts needs (platforms.md §2); ``publish_video`` is asked for too
REQUIRED_SCOPES = ("pages_show_list", "pages_manage_posts", "pages_read_engagement")
#: only Pages on which the user may create content can be connected
CREATE_CONTENT = "CREATE_CONTENT"


class FacebookPlatform(PlatformBase):
    name = "facebook"
    display_name = "Facebook"
    default_api_base = "https://graph.facebook.com"
    capabilities = Capabilities(threads=False, delete=True, text_only=True, images=True,
                                video=True, native_scheduling=True)
    limits = Limits(caption_length=63_206, max_images=10, max_videos=1,
                    max_image_bytes=10 * 1024 * 1024, max_video_bytes=10 * 1024**3,
                    daily_cap=50)
    options = (
        Option("type", "string", "What to publish; from mediaType and the media when absent "
               "(no media: a feed post, photos: a photo or album, a video: a video)",
               choices=rules.POST_TYPES),
        Option("link", "string", "An http(s) URL to share (a post without media)"),
        Option("title", "string", "Videos and reels: the title"),
        Option("firstComment", "string", "Posted as the first comment right after the post"),
    )
    oauth_scopes = (*REQUIRED_SCOPES, "publish_video")
    oauth_always_select = True

    # --- settings ---------------------------------------------------------------------

    def graph_version(self) -> str:
        return self.settings.platform_value(self.name, "GRAPH_VERSION", DEFAULT_VERSION) \
            or DEFAULT_VERSION

    def graph(self, http: httpx.Client, token: str) -> Graph:
        return Graph(http, self.api_base(), token, self.graph_version())

    def login(self) -> FacebookLogin:
        return FacebookLogin(self, self.graph_version())

    def app_id(self, ctx: PublishContext) -> str | None:
        return (self.settings.platform_value(self.name, "APP_ID")
                or self.settings.client_credentials(self.name)[0]
                or ctx.credentials.extra.get("app_id")
                or ctx.account.metadata.get("appId"))

    def publisher(self, ctx: PublishContext) -> Publisher:
        chunk = self.settings.platform_value(self.name, "UPLOAD_CHUNK_BYTES")
        return Publisher(ctx, self.graph(ctx.http, ctx.credentials.access_token),
                         app_id=self.app_id(ctx), chunk_bytes=int(chunk) if chunk else None)

    # --- the platform contract ------------------------------------------------------------

    def validate(self, draft: PostDraft, account: Account) -> list[Issue]:
        """Facebook's rules (see :mod:`chat33_facebook.rules`); our scheduler publishes,
        so Facebook-side scheduling (``scheduled_publish_time``) is never used."""
        return rules.validate(draft, rules.FacebookRules.from_settings(self.settings))

    def publish(self, ctx: PublishContext) -> PublishResult:
        """Publish the post once; resumes from ``ctx.checkpoints`` after a takeover."""
        return self.publisher(ctx).run()

    def confirm(self, ctx: PublishContext) -> PublishResult | None:
        """Ask Facebook whether a creating request that got no answer made the post:
        recent Page posts (matched on the message), the Page's videos, or the reel's
        status. ``None`` when it certainly did not."""
        return self.publisher(ctx).confirm()

    def delete(self, ctx: DeleteContext) -> None:
        """``DELETE /{id}`` for each post or video; one already gone counts as deleted."""
        graph = self.graph(ctx.http, ctx.credentials.access_token)
        for external_id in ctx.external_ids:
            try:
                graph.delete(external_id, f"deleting {external_id}")
            except PlatformError as exc:
                if exc.platform_code != "100/33":  # "object does not exist"
                    raise
                ctx.log("facebook.already_deleted", f"{external_id} is no longer on Facebook")
                continue
            ctx.log("facebook.deleted", f"deleted {external_id}", external_id=external_id)

    def needs_refresh(self, credentials: Credentials, now: datetime | None = None) -> bool:
        return False  # Page tokens have no expiry to refresh ahead of

    def refresh_credentials(self, credentials: Credentials, ctx: RefreshContext) -> Credentials:
        raise ReconnectRequired("Facebook Page tokens cannot be refreshed: reconnect the Page")

    # --- connecting Pages (Facebook Login) --------------------------------------------------

    def authorization_url(self, request: AuthorizationRequest) -> str:
        return self.login().authorization_url(request, self.oauth_scopes)

    def exchange_code(self, code: str, request: AuthorizationRequest,
                      ctx: OAuthContext) -> Grant:
        return self.login().exchange_code(code, request, ctx, REQUIRED_SCOPES)

    def long_lived(self, grant: Grant, ctx: OAuthContext) -> Grant:
        return self.login().long_lived(grant, ctx)

    def list_targets(self, grant: Grant, ctx: OAuthContext) -> list[Target]:
        """The Pages the user may create content on, each with its Page token."""
        pages = self.login().pages(ctx, grant.credentials.access_token,
                                   "id,name,access_token,tasks,picture{url}")
        grantor = {"user_id": grant.subject, "user_token": grant.credentials.access_token}
        targets = []
        for page in pages:
            if CREATE_CONTENT not in (page.get("tasks") or ()) or not page.get("access_token"):
                continue
            picture = ((page.get("picture") or {}).get("data") or {}).get("url")
            targets.append(Target(
                external_id=str(page["id"]), name=str(page.get("name") or page["id"]),
                picture_url=picture,
                credentials=Credentials(access_token=str(page["access_token"]),
                                        issued_at=grant.credentials.issued_at, extra=grantor),
                metadata={"tasks": list(page.get("tasks") or ())}))
        return targets

    def revoke(self, credentials: Credentials, ctx: OAuthContext) -> None:
        """``DELETE /{user-id}/permissions``: the whole grant, every Page of it."""
        self.login().revoke(credentials, ctx)

    def sandbox(self) -> WSGIApp | None:
        from .sandbox import FacebookSandbox

        return FacebookSandbox()
