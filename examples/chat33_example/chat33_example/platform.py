"""The Example platform: what chat33's core calls for posts to Example accounts.

Each method is one piece of the plugin contract (docs/plugins.md):

* ``options`` — ``platformConfig.example``, declared once; the core checks them;
* ``validate`` — the platform's rules on inspected media, no network;
* ``publish`` — upload the images, then create the post; exactly once, through
  checkpoints;
* ``confirm`` — after a lost answer, look the post up by its ``clientRef``;
* ``delete``, ``refresh_credentials``, ``sandbox``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from chat33_core.errors import Issue, PermanentError, ReconnectRequired
from chat33_core.http import send
from chat33_core.models import Account, Credentials, utcnow
from chat33_core.options import Option
from chat33_core.platforms import (
    Capabilities,
    DeleteContext,
    Limits,
    MediaFile,
    PlatformBase,
    PostDraft,
    PublishContext,
    PublishResult,
    Receipt,
    RefreshContext,
    WSGIApp,
)

from .api import ExampleApi, answer

MAX_TEXT = 500
MAX_IMAGES = 4
MAX_IMAGE_BYTES = 5 * 1024 * 1024
IMAGE_FORMATS = ("JPEG", "PNG")
VISIBILITIES = ("public", "followers", "private")


class ExamplePlatform(PlatformBase):
    """Text posts with up to four images on Example."""

    # the entry-point name, and the key under platformConfig and in CHAT33_EXAMPLE_*
    name = "example"
    display_name = "Example"
    capabilities = Capabilities(threads=False, delete=True, text_only=True, images=True,
                                video=False)
    limits = Limits(caption_length=MAX_TEXT, max_images=MAX_IMAGES,
                    max_image_bytes=MAX_IMAGE_BYTES, daily_cap=None)
    # platformConfig.example: checked by the core, shown in the OpenAPI document
    options = (
        Option("visibility", "string", "Who sees the post", choices=VISIBILITIES,
               default="public"),
        Option("sensitive", "boolean", "Hide the images behind a warning", default=False),
    )
    # CHAT33_EXAMPLE_API_BASE replaces it (tests, chat33 sandbox)
    default_api_base = "https://api.example.com"

    # --- preflight ------------------------------------------------------------------

    def validate(self, draft: PostDraft, account: Account) -> list[Issue]:
        """Example's rules. Paths point into the request (``draft.path`` prefixes them for
        thread items); every message names the limit and the value."""
        p = draft.path
        issues = []
        text = draft.text or ""
        if len(text) > MAX_TEXT:
            issues.append(Issue(f"{p}text", f"text is {len(text)} characters; Example "
                                            f"allows {MAX_TEXT}", "too_long"))
        if len(draft.media) > MAX_IMAGES:
            issues.append(Issue(f"{p}mediaUrls", f"{len(draft.media)} files; Example takes "
                                                 f"at most {MAX_IMAGES} images", "too_many"))
        for i, info in enumerate(draft.media):
            if not info.is_image or info.format.upper() not in IMAGE_FORMATS:
                issues.append(Issue(f"{p}mediaUrls[{i}]", f"{info.kind} {info.format} is not "
                                    "accepted: Example takes JPEG or PNG images", "format"))
            elif info.size > MAX_IMAGE_BYTES:
                issues.append(Issue(f"{p}mediaUrls[{i}]", f"image is {info.size:,} bytes; "
                                    f"Example takes at most {MAX_IMAGE_BYTES:,}", "too_large"))
        # the options' types and values were checked by the core: only what they mean
        config = draft.platform_config.get(self.name) or {}
        if config.get("sensitive") and not draft.media:
            issues.append(Issue("platformConfig.example.sensitive", "sensitive applies to "
                                "images and the post has none", "ignored", "warning"))
        return issues

    # --- publishing -----------------------------------------------------------------

    def publish(self, ctx: PublishContext) -> PublishResult:
        """Upload the images, then create the post; resumable from the checkpoints.

        The checkpoint holds the uploaded media ids (never uploaded twice) and, before the
        creating request, ``sent``: a worker that takes over after a crash looks the post
        up instead of creating it again.
        """
        api = self._api(ctx)
        state = ctx.checkpoints.load()
        if state.get("sent"):
            found = self._lookup(api, ctx.post_id)
            if found is not None:
                ctx.log("example.resumed", "the post was already on Example",
                        externalId=found.external_id)
                return PublishResult([found])
        media_ids: list[str] = state.get("mediaIds") or []
        for media in ctx.first.media[len(media_ids):]:
            media_ids.append(self._upload(ctx, api, media))
            ctx.checkpoints.save({"mediaIds": media_ids})
        config = ctx.config(self.name)
        ctx.checkpoints.save({"mediaIds": media_ids, "sent": True})
        created = api.call("POST", "/v1/posts", creating=True, json={
            "text": ctx.first.text or "", "mediaIds": media_ids, "clientRef": ctx.post_id,
            "visibility": config.get("visibility", "public"),
            "sensitive": bool(config.get("sensitive", False))})
        ctx.log("example.posted", f"posted as {created['id']}", externalId=created["id"])
        return PublishResult([Receipt(external_id=str(created["id"]),
                                      external_url=created.get("url"),
                                      post_id=ctx.post_id)])

    def _upload(self, ctx: PublishContext, api: ExampleApi, media: MediaFile) -> str:
        """Hand Example our media URL and wait until it has processed the image."""
        started = api.call("POST", "/v1/media", json={"url": media.url})
        media_id = str(started["id"])
        for delay in ctx.poll_delays():
            status = api.call("GET", f"/v1/media/{media_id}")
            if status["status"] == "ready":
                ctx.log("example.media_ready", f"{media.name or media_id} is ready",
                        mediaId=media_id)
                return media_id
            if status["status"] == "failed":
                raise PermanentError(f"Example could not process {media.name or media.url}: "
                                     f"{status.get('error') or 'no reason given'}",
                                     platform_code="media_failed")
            ctx.sleep(delay)
        raise AssertionError("poll_delays never ends")  # pragma: no cover

    def confirm(self, ctx: PublishContext) -> PublishResult | None:
        found = self._lookup(self._api(ctx), ctx.post_id)
        return PublishResult([found]) if found is not None else None

    def _lookup(self, api: ExampleApi, post_id: str) -> Receipt | None:
        data = api.call("GET", "/v1/posts", params={"clientRef": post_id}).get("data") or []
        if not data:
            return None
        return Receipt(external_id=str(data[0]["id"]), external_url=data[0].get("url"),
                       post_id=post_id)

    def _api(self, ctx: PublishContext | DeleteContext) -> ExampleApi:
        return ExampleApi(ctx.http, self.api_base(), ctx.credentials.access_token)

    def delete(self, ctx: DeleteContext) -> None:
        api = self._api(ctx)
        for external_id in ctx.external_ids:
            api.call("DELETE", f"/v1/posts/{external_id}")
            ctx.log("example.deleted", f"deleted {external_id}")

    # --- credentials ----------------------------------------------------------------

    def refresh_credentials(self, credentials: Credentials, ctx: RefreshContext) -> Credentials:
        """The refresh-token grant; Example rotates refresh tokens, so the new one must
        be in the result (the core stores both)."""
        if not credentials.refresh_token:
            raise ReconnectRequired("this Example account has no refresh token: reconnect it")
        url = self.settings.token_url(self.name, self.api_base() + "/oauth/token")
        response = send(ctx.http, "POST", url, platform="Example", what="token refresh",
                        creates=False, json={"grant_type": "refresh_token",
                                             "refresh_token": credentials.refresh_token})
        if response.status_code == 400:
            raise ReconnectRequired("Example refused the refresh token: reconnect the account")
        body: dict[str, Any] = answer(response)
        now = utcnow()
        return Credentials(access_token=body["access_token"],
                           refresh_token=body.get("refresh_token") or credentials.refresh_token,
                           expires_at=now + timedelta(seconds=int(body["expires_in"])),
                           issued_at=now, extra=dict(credentials.extra))

    # --- sandbox --------------------------------------------------------------------

    def sandbox(self) -> WSGIApp:
        from .sandbox import ExampleSandbox

        return ExampleSandbox()
