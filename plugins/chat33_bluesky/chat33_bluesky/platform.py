"""Bluesky: the platform object chat33's core calls (platforms-more.md §1).

* ``validate`` — 300 graphemes and 3,000 UTF-8 bytes, up to 4 images or 1 video,
  ``platformConfig.bluesky``; every thread item the same way;
* ``publish`` — blobs (``uploadBlob``; video through the video service), then
  ``createRecord`` of ``app.bsky.feed.post`` with facets, embed and reply refs, on the
  account's PDS, exactly once (see :mod:`.publishing`);
* ``confirm`` — ``getRecord`` of the record key chosen before the lost request;
* ``delete`` — ``deleteRecord`` for every post of the thread (idempotent on Bluesky);
* ``refresh_credentials`` — ``refreshSession``, or ``createSession`` from the app
  password (see :mod:`.session`).

Hosts: ``CHAT33_BLUESKY_API_BASE`` replaces the entryway (``https://bsky.social``) and,
when set, the video service too (``https://video.bsky.app``); the PDS is the one the
account's DID document names, as the platform returns it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import ClassVar

from chat33_core.errors import (
    CredentialsExpired,
    Issue,
    PermanentError,
    PlatformError,
    ReconnectRequired,
    TransientError,
    UnknownOutcome,
)
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

from . import rules, session
from .publishing import POST, Publication, repo_of, rkey_of
from .xrpc import RateLimitedByBluesky, Xrpc

VIDEO_SERVICE = "https://video.bsky.app"


class BlueskyPlatform(PlatformBase):
    name = "bluesky"
    display_name = "Bluesky"
    default_api_base = "https://bsky.social"
    capabilities = Capabilities(threads=True, delete=True, text_only=True, images=True,
                                video=True)
    limits = Limits(caption_length=rules.TEXT_MAX_GRAPHEMES, max_images=rules.MAX_IMAGES,
                    max_videos=1, max_image_bytes=rules.IMAGE_MAX_BYTES,
                    max_video_bytes=rules.VIDEO_MAX_BYTES)
    #: platformConfig.bluesky: the types here, checked by the core; what each value
    #: means is checked by rules.OPTIONS (whose texts describe them)
    options: ClassVar[tuple[Option, ...]] = (
        Option("altText", ("string", "array"), rules.OPTIONS["altText"][1],
               items=Option("alt", "string", "")),
        Option("langs", "array", rules.OPTIONS["langs"][1],
               items=Option("lang", "string", "")),
        Option("linkCard", "object", rules.OPTIONS["linkCard"][1]),
        Option("replyTo", "string", rules.OPTIONS["replyTo"][1]),
    )
    #: the Python SDK refreshes 15 minutes before the access JWT's ``exp``
    refresh_margin: ClassVar[timedelta] = timedelta(minutes=15)

    # --- preflight --------------------------------------------------------------------

    def validate(self, draft: PostDraft, account: Account) -> list[Issue]:
        """Text, media and ``platformConfig.bluesky`` of the post and its thread items."""
        limits = rules.limits_from(self.settings.env)
        config = draft.platform_config.get(self.name) if draft.platform_config else None
        config = config if isinstance(config, Mapping) else {}
        issues: list[Issue] = []
        for index, item in enumerate((draft, *draft.thread)):
            card = bool(config.get("linkCard")) and index == 0
            issues += rules.check_text(item.text, bool(item.media) or card, item.path)
            issues += rules.check_media(item.media, limits, item.path)
        issues += rules.check_config(config, rules.Draft(media=draft.media,
                                                         cover_image=draft.cover_image))
        return issues

    # --- publishing ---------------------------------------------------------------------

    def publish(self, ctx: PublishContext) -> PublishResult:
        """Publish the post and its thread items, continuing from the checkpoints.

        A failure after some items are on Bluesky carries them in ``posted``; a lost
        answer to ``createRecord`` raises :class:`UnknownOutcome`, and the next attempt
        (or :meth:`confirm`) looks the chosen record key up before posting again.
        """
        run = self._publication(ctx)
        try:
            run.run()
        except PlatformError as exc:
            exc.posted = self._receipts(ctx, run.posted)
            raise
        return PublishResult(receipts=self._receipts(ctx, run.posted))

    def confirm(self, ctx: PublishContext) -> PublishResult | None:
        """Whether the post whose ``createRecord`` got no answer exists: ``getRecord`` of
        its record key. The result when every item is on Bluesky; None when the rest is
        certainly not (publishing again continues the thread with the same keys)."""
        run = self._publication(ctx)
        try:
            run.resolve_sent()
        except (CredentialsExpired, ReconnectRequired, TransientError) as exc:
            exc.posted = self._receipts(ctx, run.posted)
            raise  # refresh, or ask again later: the post is still unconfirmed
        except PlatformError as exc:
            raise UnknownOutcome(f"could not look the post up on Bluesky: {exc.message}",
                                 platform_code=exc.platform_code,
                                 posted=self._receipts(ctx, run.posted)) from exc
        if len(run.posted) >= len(ctx.items):
            return PublishResult(receipts=self._receipts(ctx, run.posted))
        return None

    def _publication(self, ctx: PublishContext) -> Publication:
        return Publication(ctx, pds=session.pds_of(ctx.credentials, self.api_base()),
                           video_base=self.video_base())

    def video_base(self) -> str:
        """The video service: the API base when one is configured (one local server
        stands in for every host), else ``video.bsky.app``."""
        if self.settings.platform_value(self.name, "API_BASE"):
            return self.api_base()
        return VIDEO_SERVICE

    # --- receipts ----------------------------------------------------------------------------

    def post_url(self, account: Account, uri: str) -> str:
        """The post's page on bsky.app (the handle when known, else the DID)."""
        who = (account.username or "").lstrip("@") or repo_of(uri)
        return f"https://bsky.app/profile/{who}/post/{rkey_of(uri)}"

    def _receipts(self, ctx: PublishContext, posted: list[dict[str, object]]) -> list[Receipt]:
        return [Receipt(external_id=str(entry["uri"]),
                        external_url=self.post_url(ctx.account, str(entry["uri"])),
                        post_id=str(entry["postId"]) if entry.get("postId") else None,
                        extra={"cid": entry["cid"], "position": position})
                for position, entry in enumerate(posted)]

    # --- delete --------------------------------------------------------------------------------

    def delete(self, ctx: DeleteContext) -> None:
        """``deleteRecord`` for every post of the thread, replies first. Deleting a record
        that is gone succeeds on Bluesky. A session that has expired is reopened from the
        app password for this deletion only (the stored refresh JWT stays valid)."""
        credentials = ctx.credentials
        if not session.has_session(credentials) or self._expired(credentials):
            credentials = session.create(ctx.http, self.api_base(), ctx.account, credentials)
        try:
            self._delete_all(ctx, credentials)
        except CredentialsExpired:
            credentials = session.create(ctx.http, self.api_base(), ctx.account, credentials)
            self._delete_all(ctx, credentials)

    def _delete_all(self, ctx: DeleteContext, credentials: Credentials) -> None:
        pds = Xrpc(ctx.http, session.pds_of(credentials, self.api_base()),
                   credentials.access_token)
        failures: list[tuple[str, PlatformError]] = []
        for uri in reversed(list(ctx.external_ids)):
            if not uri.startswith("at://"):
                failures.append((uri, PermanentError(f"{uri!r} is not a Bluesky post URI",
                                                     platform_code="bad-id")))
                continue
            try:
                pds.call("POST", "com.atproto.repo.deleteRecord", what=f"Bluesky delete {uri}",
                         json={"repo": repo_of(uri), "collection": POST, "rkey": rkey_of(uri)})
            except (CredentialsExpired, ReconnectRequired, RateLimitedByBluesky):
                raise
            except PlatformError as exc:
                failures.append((uri, exc))
                continue
            ctx.log("bluesky.delete", f"post {uri} deleted on Bluesky", external_id=uri)
        if failures:
            first = failures[0][1]
            ids = ", ".join(uri for uri, _ in failures)
            raise type(first)(f"Bluesky did not delete {ids}: {first.message}",
                              platform_code=first.platform_code)

    # --- credentials --------------------------------------------------------------------------

    def _expired(self, credentials: Credentials, now: datetime | None = None) -> bool:
        expires = credentials.expires_at
        return expires is not None and expires <= (now or utcnow()) + timedelta(minutes=1)

    def needs_refresh(self, credentials: Credentials, now: datetime | None = None) -> bool:
        """True before the first session (the token is still the app password) and
        within 15 minutes of the access JWT's expiry."""
        if not session.has_session(credentials):
            return True
        return super().needs_refresh(credentials, now)

    def refresh_credentials(self, credentials: Credentials, ctx: RefreshContext) -> Credentials:
        """A new session: ``refreshSession`` (rotating the refresh JWT), or
        ``createSession`` when there is none or the refresh JWT is refused. A refused app
        password is :class:`ReconnectRequired`."""
        return session.refresh(ctx.http, self.api_base(), ctx.account, credentials)

    # --- sandbox ------------------------------------------------------------------------------

    def sandbox(self) -> WSGIApp | None:
        from .sandbox import BlueskySandbox

        return BlueskySandbox()
