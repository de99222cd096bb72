"""Threads (Meta): the platform object chat33's core calls (platforms-more.md §3).

* ``validate`` — 500 characters (an emoji counts its UTF-8 bytes), 5 links, one image or
  video or a carousel of 2-20, ``platformConfig.threads`` (see :mod:`.rules`);
* ``publish`` — containers, status polling, quota, ``threads_publish``; thread items
  answer the one before (``reply_to_id``). See :mod:`.publishing`;
* ``confirm`` — the unanswered publish settled by its container's status;
* ``delete`` — ``DELETE /{media-id}`` for every post of the thread (100 a day);
* ``refresh_credentials`` — ``refresh_access_token?grant_type=th_refresh_token``.

``CHAT33_THREADS_API_BASE`` replaces ``https://graph.threads.net`` (paths and the
version prefix kept); ``CHAT33_THREADS_GRAPH_VERSION`` changes ``v1.0``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import ClassVar

import httpx

from chat33_core.errors import (
    CredentialsExpired,
    Issue,
    PermanentError,
    PlatformError,
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
    Receipt,
    RefreshContext,
    WSGIApp,
)

from . import rules
from .graph import THREADS, Graph
from .publishing import Publication

GRAPH_VERSION = "v1.0"
#: Threads refreshes only tokens at least this old (and not expired)
MIN_TOKEN_AGE = timedelta(hours=24)


class ThreadsPlatform(PlatformBase):
    name = "threads"
    display_name = "Threads"
    default_api_base = "https://graph.threads.net"
    capabilities = Capabilities(threads=True, delete=True, text_only=True, images=True,
                                video=True)
    limits = Limits(caption_length=rules.MAX_CHARACTERS, max_images=rules.CAROUSEL_MAX,
                    max_videos=rules.CAROUSEL_MAX, max_image_bytes=rules.IMAGE_MAX_BYTES,
                    max_video_bytes=rules.VIDEO_MAX_BYTES, daily_cap=250)
    options: ClassVar[tuple[Option, ...]] = (
        Option("replyControl", "string", "Who may reply to the post (and its thread)",
               choices=rules.REPLY_CONTROLS, default="everyone"),
        Option("topicTag", "string", "One topic for the post: 1-50 characters without "
               "'.' or '&' (else Threads takes the first #tag of the text)"),
        Option("altText", ("string", "array"), "Alt text of the first post's media: one "
               "text for every file, or a list in the order of mediaUrls",
               items=Option("alt", "string", "")),
        Option("linkAttachment", "string", "Text-only posts: an http(s) URL shown as a "
               "link card (it counts towards the 5 links)"),
        Option("replyToId", "string", "The id of a Threads post of this account to answer; "
               "the post (and its thread) follow it"),
    )
    #: refresh the 60-day token this long before it expires
    refresh_margin = timedelta(days=7)

    def validate(self, draft: PostDraft, account: Account) -> list[Issue]:
        config = draft.platform_config.get(self.name) or {}
        link = config.get("linkAttachment")
        issues: list[Issue] = []
        for index, item in enumerate((draft, *draft.thread)):
            issues += rules.check_text(item.text, bool(item.media),
                                       link if index == 0 and isinstance(link, str) else None,
                                       item.path)
            issues += rules.check_media(item.media, item.path)
        issues += rules.check_config(config, draft.media)
        return issues

    # --- publishing --------------------------------------------------------------------

    def graph_version(self) -> str:
        return self.settings.platform_value(self.name, "GRAPH_VERSION") or GRAPH_VERSION

    def _graph(self, http: httpx.Client, credentials: Credentials) -> Graph:
        return Graph(http, self.api_base(), self.graph_version(), credentials.access_token)

    def publish(self, ctx: PublishContext) -> PublishResult:
        """Publish the post and its thread, continuing from the checkpoints; a failure
        after some posts are on Threads carries them in ``posted``."""
        run = Publication(ctx, self._graph(ctx.http, ctx.credentials))
        try:
            run.run()
        except PlatformError as exc:
            exc.posted = _receipts(run.posted)
            raise
        return PublishResult(receipts=_receipts(run.posted))

    def confirm(self, ctx: PublishContext) -> PublishResult | None:
        """Settle the unanswered ``threads_publish`` by its container's status. The
        result when every item is on Threads; None when items remain (publishing
        continues, reusing an unpublished container)."""
        run = Publication(ctx, self._graph(ctx.http, ctx.credentials))
        try:
            run.settle()
        except PlatformError as exc:
            exc.posted = _receipts(run.posted)
            raise
        if len(run.posted) >= len(ctx.items):
            return PublishResult(receipts=_receipts(run.posted))
        return None

    # --- delete ---------------------------------------------------------------------------

    def delete(self, ctx: DeleteContext) -> None:
        """``DELETE /{media-id}`` for every post of the thread, replies first; one already
        gone counts as deleted. Threads allows 100 deletions a day per account."""
        graph = self._graph(ctx.http, ctx.credentials)
        for media_id in reversed(list(ctx.external_ids)):
            status, body = graph.call("DELETE", media_id, what=f"Threads delete {media_id}",
                                      allow=(404,))
            if status == 404:
                ctx.log("threads.delete", f"post {media_id} was already gone",
                        external_id=media_id)
                continue
            if body.get("success") is not True:
                raise TransientError(f"Threads did not confirm deleting {media_id}",
                                     platform_code="bad-response")
            ctx.log("threads.delete", f"post {media_id} deleted on Threads",
                    external_id=media_id)

    # --- credentials ------------------------------------------------------------------------

    def needs_refresh(self, credentials: Credentials, now: datetime | None = None) -> bool:
        """True within :attr:`refresh_margin` of expiry, once the token is 24 h old and
        while it has not expired (an expired token cannot be refreshed)."""
        if credentials.expires_at is None:
            return False
        now = now or utcnow()
        if credentials.expires_at <= now:
            return False
        if credentials.issued_at is not None and now - credentials.issued_at < MIN_TOKEN_AGE:
            return False
        return credentials.expires_at - now <= self.refresh_margin

    def refresh_credentials(self, credentials: Credentials, ctx: RefreshContext) -> Credentials:
        """A new 60-day token for the long-lived one; refused → ReconnectRequired."""
        now = utcnow()
        if credentials.expires_at is not None and credentials.expires_at <= now:
            raise ReconnectRequired("the Threads token has expired and cannot be refreshed: "
                                    "connect the account again")
        url = self.settings.token_url(self.name, f"{self.api_base()}/refresh_access_token")
        response = send(ctx.http, "GET", url, platform="Threads", what="token refresh",
                        creates=False, params={"grant_type": "th_refresh_token",
                                               "access_token": credentials.access_token})
        if response.status_code >= 400:
            error = graph_error(response, THREADS, what="token refresh")
            if isinstance(error, CredentialsExpired | PermanentError | ReconnectRequired):
                raise ReconnectRequired(f"Threads refused to refresh the token: "
                                        f"{error.message}; connect the account again",
                                        platform_code=error.platform_code) from error
            raise error
        try:
            body = response.json()
            token = str(body["access_token"])
            expires_in = int(body.get("expires_in") or 0)
        except (ValueError, KeyError, TypeError) as exc:
            raise TransientError("Threads' token refresh answered without a token",
                                 platform_code="refresh") from exc
        return Credentials(access_token=token, refresh_token=None,
                           expires_at=now + timedelta(seconds=expires_in) if expires_in
                           else None, issued_at=now, extra=dict(credentials.extra))

    def sandbox(self) -> WSGIApp | None:
        from .sandbox import ThreadsSandbox

        return ThreadsSandbox()


def _receipts(posted: list[dict[str, object]]) -> list[Receipt]:
    return [Receipt(external_id=str(entry["id"]),
                    external_url=str(entry["url"]) if entry.get("url") else None,
                    post_id=str(entry["postId"]) if entry.get("postId") else None,
                    extra={"position": position, "containerId": entry.get("container")})
            for position, entry in enumerate(posted)]
