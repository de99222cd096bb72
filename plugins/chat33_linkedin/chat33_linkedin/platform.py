"""LinkedIn: the platform object chat33's core calls (platforms-more.md §4).

* ``validate`` — commentary up to 3,000 UTF-16 units as sent (escaped; see
  :mod:`.rules`), one video or 1-20 images, the author URN of the account;
* ``publish`` — images/video uploaded, then ``POST /rest/posts``; thread items are
  separate posts (LinkedIn has no replies). See :mod:`.publishing`;
* ``confirm`` — the author's recent posts are searched for the one whose answer was lost;
* ``delete`` — ``DELETE /rest/posts/{urn}`` for every post of the thread;
* credentials — 60-day access tokens; refreshed with ``grant_type=refresh_token`` where
  the app has refresh tokens, otherwise the owner must connect again before expiry.

Hosts: ``CHAT33_LINKEDIN_API_BASE`` replaces ``https://api.linkedin.com`` and the OAuth
host ``https://www.linkedin.com`` (the documented paths kept);
``CHAT33_LINKEDIN_VERSION`` replaces the pinned ``LinkedIn-Version``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import ClassVar

from chat33_core.errors import (
    Issue,
    PlatformError,
    QuotaExceeded,
    ReconnectRequired,
    TransientError,
)
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
    Receipt,
    RefreshContext,
    WSGIApp,
)

from . import rules
from .api import VERSION, Api, error_of
from .publishing import Publication, encoded

AUTHOR_PREFIXES = ("urn:li:person:", "urn:li:organization:")


class LinkedInPlatform(PlatformBase):
    name = "linkedin"
    display_name = "LinkedIn"
    default_api_base = "https://api.linkedin.com"
    oauth_base: ClassVar[str] = "https://www.linkedin.com"
    capabilities = Capabilities(threads=True, delete=True, text_only=True, images=True,
                                video=True)
    limits = Limits(caption_length=rules.MAX_CHARACTERS, max_images=rules.MAX_IMAGES,
                    max_videos=1, max_image_bytes=rules.IMAGE_MAX_BYTES,
                    max_video_bytes=rules.VIDEO_MAX_BYTES)
    #: without a refresh token the owner must reconnect: ask a day before the 60 days end
    refresh_margin = timedelta(days=1)
    options: ClassVar[tuple[Option, ...]] = (
        Option("visibility", "string", "who sees the post: PUBLIC (default) or CONNECTIONS "
               "(members only)", choices=rules.VISIBILITIES, default="PUBLIC"),
        Option("feedDistribution", "string", "MAIN_FEED (default), or NONE to publish "
               "without showing it in feeds", choices=rules.FEED_DISTRIBUTIONS,
               default="MAIN_FEED"),
        Option("altText", ("string", "array"), "alt text of the images: one text for every "
               "image, or a list in the order of mediaUrls (up to 4,086 characters each)",
               items=Option("alt", "string", "")),
        Option("isReshareDisabledByAuthor", "boolean", "stop others from resharing the "
               "post", default=False),
    )

    def _oauth_base(self) -> str:
        if self.settings.platform_value(self.name, "API_BASE"):
            return self.api_base()
        return self.oauth_base

    def token_url(self) -> str:
        return self.settings.token_url(self.name, f"{self._oauth_base()}/oauth/v2/accessToken")

    def _api(self, ctx: PublishContext | DeleteContext) -> Api:
        version = self.settings.platform_value(self.name, "VERSION") or VERSION
        return Api(ctx.http, self.api_base(), ctx.credentials.access_token, version)

    # --- preflight -----------------------------------------------------------------------

    def validate(self, draft: PostDraft, account: Account) -> list[Issue]:
        """Text, media and ``platformConfig.linkedin`` of the post and its thread items."""
        issues: list[Issue] = []
        if not (account.external_id or "").startswith(AUTHOR_PREFIXES):
            issues.append(Issue("accountId", f"the LinkedIn account {account.name!r} has "
                                f"external id {account.external_id!r}; it must be the author "
                                "URN (urn:li:person:… or urn:li:organization:…)",
                                code="author"))
        config = draft.platform_config.get(self.name) if draft.platform_config else None
        config = config if isinstance(config, Mapping) else {}
        for item in (draft, *draft.thread):
            issues += rules.check_text(item.text, bool(item.media), item.path)
            issues += rules.check_media(item.media, item.path)
        issues += rules.check_config(config, draft.media)
        return issues

    # --- publishing -----------------------------------------------------------------------

    def publish(self, ctx: PublishContext) -> PublishResult:
        """Publish the post and its thread items, continuing from the checkpoints. A
        failure after some posts are on LinkedIn carries them in ``posted``."""
        run = Publication(ctx, self._api(ctx))
        try:
            run.run()
        except PlatformError as exc:
            exc.posted = self._receipts(run.posted)
            raise
        return PublishResult(receipts=self._receipts(run.posted))

    def confirm(self, ctx: PublishContext) -> PublishResult | None:
        """Settle the post whose request got no answer: found among the author's recent
        posts, it is recorded; not found, None (publishing sends it again). The result
        when every item is on LinkedIn."""
        run = Publication(ctx, self._api(ctx))
        index = run.in_flight()
        try:
            if index is not None:
                item = ctx.items[index]
                state = run.item_state(index)
                body = run.body(item, run.media_content(index, item, state))
                found = run.find_existing(body, float(state["sentAt"]))
                if found is None:
                    run.save()
                    return None
                run.record(index, item, found)
        except PlatformError as exc:
            exc.posted = self._receipts(run.posted)
            raise
        if len(run.posted) >= len(ctx.items):
            return PublishResult(receipts=self._receipts(run.posted))
        return None

    def _receipts(self, posted: list[dict[str, object]]) -> list[Receipt]:
        return [Receipt(external_id=str(entry["id"]), external_url=str(entry["url"]),
                        post_id=str(entry["postId"]) if entry.get("postId") else None,
                        extra={"position": position})
                for position, entry in enumerate(posted)]

    # --- delete ---------------------------------------------------------------------------

    def delete(self, ctx: DeleteContext) -> None:
        """``DELETE /rest/posts/{urn}`` for every post of the thread, last first. A post
        already gone (404) counts as deleted."""
        api = self._api(ctx)
        failures: list[tuple[str, PlatformError]] = []
        for urn in reversed(list(ctx.external_ids)):
            try:
                response = api.call("DELETE", f"/rest/posts/{encoded(urn)}",
                                    what=f"LinkedIn delete {urn}", allow=(404,),
                                    headers={"X-RestLi-Method": "DELETE"})
            except (ReconnectRequired, QuotaExceeded, TransientError):
                raise
            except PlatformError as exc:
                failures.append((urn, exc))
                continue
            gone = " (it was already gone)" if response.status_code == 404 else ""
            ctx.log("linkedin.delete", f"post {urn} deleted on LinkedIn{gone}",
                    external_id=urn)
        if failures:
            first = failures[0][1]
            urns = ", ".join(urn for urn, _ in failures)
            raise type(first)(f"LinkedIn did not delete {urns}: {first.message}",
                              platform_code=first.platform_code)

    # --- credentials ----------------------------------------------------------------------

    def needs_refresh(self, credentials: Credentials, now: datetime | None = None) -> bool:
        """Within :attr:`refresh_margin` of expiry, with or without a refresh token (without
        one, refreshing says the owner must reconnect)."""
        if credentials.expires_at is None:
            return False
        return credentials.expires_at - (now or utcnow()) <= self.refresh_margin

    def refresh_credentials(self, credentials: Credentials, ctx: RefreshContext) -> Credentials:
        """``POST /oauth/v2/accessToken`` ``grant_type=refresh_token`` (apps LinkedIn
        granted refresh tokens). Without a refresh token, or refused: reconnect."""
        if not credentials.refresh_token:
            raise ReconnectRequired("LinkedIn gives this app no refresh token and the access "
                                    "token expires within a day: connect the account again")
        client_id, client_secret = ctx.settings.client_credentials(self.name)
        form = {"grant_type": "refresh_token", "refresh_token": credentials.refresh_token,
                "client_id": client_id or "", "client_secret": client_secret or ""}
        response = send(ctx.http, "POST", self.token_url(), platform="LinkedIn",
                        what="LinkedIn token refresh", creates=False, data=form)
        if response.status_code in (400, 401, 403):
            message, code = error_of(response)
            raise ReconnectRequired(f"LinkedIn refused the refresh token: {message}; connect "
                                    "the account again",
                                    platform_code=code or str(response.status_code))
        if not response.is_success:
            message, code = error_of(response)
            raise TransientError(f"LinkedIn token refresh failed: {message}",
                                 platform_code=code or str(response.status_code))
        try:
            body = response.json()
            token = str(body["access_token"])
        except (ValueError, KeyError, TypeError) as exc:
            raise TransientError("LinkedIn token refresh answered without an access token",
                                 platform_code="bad-response") from exc
        now = utcnow()
        expires_in = body.get("expires_in")
        extra = dict(credentials.extra)
        if body.get("refresh_token_expires_in"):
            # fixed from the first consent: refreshing does not extend it
            extra["refreshTokenExpiresIn"] = int(body["refresh_token_expires_in"])
        return Credentials(
            access_token=token,
            refresh_token=str(body.get("refresh_token") or "") or None,  # none: the core
            # keeps the old one (Credentials.replaced_by)
            expires_at=now + timedelta(seconds=int(expires_in)) if expires_in else None,
            issued_at=now, extra=extra)

    # --- sandbox --------------------------------------------------------------------------

    def sandbox(self) -> WSGIApp | None:
        from .sandbox import LinkedInSandbox

        return LinkedInSandbox()
