"""Mastodon: the platform object chat33's core calls (platforms-more.md §2).

* ``validate`` — ``spoilerText + text`` in grapheme clusters with every URL as 23 and
  ``@user@domain`` as ``@user``, against the instance's limit (see :mod:`.rules` for
  where it comes from); up to 4 images or 1 video/GIF; ``platformConfig.mastodon``;
* ``publish`` — media through ``POST /api/v2/media`` (processing polled), then
  ``POST /api/v1/statuses`` with an ``Idempotency-Key``; thread items answer the status
  before them (``in_reply_to_id``). See :mod:`.publishing`;
* ``confirm`` — the unanswered status request sent again with the same key;
* ``delete`` — ``DELETE /api/v1/statuses/:id`` for every status of the thread;
* ``refresh_credentials`` — tokens never expire: ``verify_credentials`` checks the token,
  and a refused one means connecting again.

Hosts: every account lives on its own instance, stored on the account
(``accounts add --instance``, ``metadata["instance"]``), else the domain of a
``user@instance`` username. ``CHAT33_MASTODON_API_BASE`` replaces every instance.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import ClassVar

from chat33_core.errors import (
    Issue,
    PermanentError,
    PlatformError,
    ReconnectRequired,
    TransientError,
)
from chat33_core.models import Account, Credentials
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
from .api import Api, RateLimitedByMastodon
from .publishing import Publication


class MastodonPlatform(PlatformBase):
    name = "mastodon"
    display_name = "Mastodon"
    default_api_base = "https://mastodon.social"
    capabilities = Capabilities(threads=True, delete=True, text_only=True, images=True,
                                video=True)
    limits = Limits(caption_length=rules.MAX_CHARACTERS, max_images=rules.MAX_ATTACHMENTS,
                    max_videos=1, max_image_bytes=rules.IMAGE_MAX_BYTES,
                    max_video_bytes=rules.VIDEO_MAX_BYTES)
    #: ``platformConfig.mastodon``: the core checks the types; rules.OPTIONS checks what
    #: each value means (and holds its text)
    options: ClassVar[tuple[Option, ...]] = (
        Option("visibility", "string", rules.OPTIONS["visibility"][1],
               choices=("public", "unlisted", "private", "direct"), default="public"),
        Option("spoilerText", "string", rules.OPTIONS["spoilerText"][1]),
        Option("sensitive", "boolean", rules.OPTIONS["sensitive"][1], default=False),
        Option("language", "string", rules.OPTIONS["language"][1]),
        Option("altText", ("string", "array"), rules.OPTIONS["altText"][1],
               items=Option("alt", "string", "")),
        Option("inReplyToId", "string", rules.OPTIONS["inReplyToId"][1]),
    )

    # --- the instance --------------------------------------------------------------------

    def instance(self, account: Account) -> str | None:
        """The base URL of ``account``'s instance (see the module doc); None if unknown."""
        if self.settings.platform_value(self.name, "API_BASE"):
            return self.api_base()
        stored = account.metadata.get("instance") if account.metadata else None
        if isinstance(stored, str) and stored.strip():
            return stored.strip().rstrip("/")
        _, _, domain = (account.username or "").lstrip("@").partition("@")
        return f"https://{domain}" if domain else None

    def _instance_or_fail(self, account: Account) -> str:
        base = self.instance(account)
        if base is None:
            raise PermanentError(f"the Mastodon account {account.name!r} has no instance: add "
                                 "it again with --instance https://your.instance (or a "
                                 "user@instance username)", platform_code="no-instance")
        return base

    # --- preflight --------------------------------------------------------------------

    def validate(self, draft: PostDraft, account: Account) -> list[Issue]:
        """Text, media and ``platformConfig.mastodon`` of the post and its thread items."""
        base = self.instance(account) or self.default_api_base
        limits = rules.limits_for(base, self.settings.env)
        config = draft.platform_config.get(self.name) if draft.platform_config else None
        config = config if isinstance(config, Mapping) else {}
        spoiler = rules.spoiler_of(config)
        issues: list[Issue] = []
        for item in (draft, *draft.thread):
            issues += rules.check_text(item.text, spoiler, bool(item.media), limits, item.path)
            issues += rules.check_media(item.media, limits, item.path)
        issues += rules.check_config(config, draft.media, limits)
        return issues

    # --- publishing ---------------------------------------------------------------------

    def _publication(self, ctx: PublishContext) -> Publication:
        base = self._instance_or_fail(ctx.account)
        return Publication(ctx, base, learned=lambda limits: rules.remember(base, limits))

    def publish(self, ctx: PublishContext) -> PublishResult:
        """Publish the post and its thread items, continuing from the checkpoints. A
        failure after some statuses are on Mastodon carries them in ``posted``."""
        run = self._publication(ctx)
        try:
            run.run()
        except PlatformError as exc:
            exc.posted = self._receipts(run.posted)
            raise
        return PublishResult(receipts=self._receipts(run.posted))

    def confirm(self, ctx: PublishContext) -> PublishResult | None:
        """Settle the status whose request got no answer by sending it again with the same
        ``Idempotency-Key``: Mastodon answers the status the first request created, or
        creates it now — either way exactly one. The result when every item is on
        Mastodon; None when items remain (publishing continues the thread)."""
        run = self._publication(ctx)
        index = run.in_flight()
        try:
            if index is not None:
                run.publish_item(index, ctx.items[index])
        except PlatformError as exc:
            exc.posted = self._receipts(run.posted)
            raise
        if len(run.posted) >= len(ctx.items):
            return PublishResult(receipts=self._receipts(run.posted))
        return None

    def _receipts(self, posted: list[dict[str, object]]) -> list[Receipt]:
        return [Receipt(external_id=str(entry["id"]),
                        external_url=str(entry["url"]) if entry.get("url") else None,
                        post_id=str(entry["postId"]) if entry.get("postId") else None,
                        extra={"position": position})
                for position, entry in enumerate(posted)]

    # --- delete --------------------------------------------------------------------------------

    def delete(self, ctx: DeleteContext) -> None:
        """``DELETE /api/v1/statuses/:id`` for every status of the thread, replies first.
        A status already gone (404) counts as deleted."""
        api = Api(ctx.http, self._instance_or_fail(ctx.account), ctx.credentials.access_token)
        failures: list[tuple[str, PlatformError]] = []
        for status_id in reversed(list(ctx.external_ids)):
            try:
                response = api.call("DELETE", f"/api/v1/statuses/{status_id}",
                                    what=f"Mastodon delete {status_id}", allow=(404,))
            except (ReconnectRequired, RateLimitedByMastodon, TransientError):
                raise
            except PlatformError as exc:
                failures.append((status_id, exc))
                continue
            gone = " (it was already gone)" if response.status_code == 404 else ""
            ctx.log("mastodon.delete", f"status {status_id} deleted on Mastodon{gone}",
                    external_id=status_id)
        if failures:
            first = failures[0][1]
            ids = ", ".join(status_id for status_id, _ in failures)
            raise type(first)(f"Mastodon did not delete {ids}: {first.message}",
                              platform_code=first.platform_code)

    # --- credentials --------------------------------------------------------------------------

    def needs_refresh(self, credentials: Credentials, now: datetime | None = None) -> bool:
        """Never: Mastodon access tokens live until revoked."""
        return False

    def refresh_credentials(self, credentials: Credentials, ctx: RefreshContext) -> Credentials:
        """Nothing to renew: ``GET /api/v1/accounts/verify_credentials`` checks the token
        (a refused one is :class:`ReconnectRequired`) and the same credentials return."""
        api = Api(ctx.http, self._instance_or_fail(ctx.account), credentials.access_token)
        api.json("GET", "/api/v1/accounts/verify_credentials",
                 what="Mastodon verify_credentials")
        return credentials

    # --- sandbox ------------------------------------------------------------------------------

    def sandbox(self) -> WSGIApp | None:
        from .sandbox import MastodonSandbox

        return MastodonSandbox()
