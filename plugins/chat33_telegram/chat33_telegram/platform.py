"""Telegram: the platform object chat33's core calls (platforms-more.md §5).

* ``validate`` — 4,096 UTF-16 units for a text message, 1,024 for a caption; 1 photo or
  video or an album of 2-10; upload sizes; ``platformConfig.telegram``;
* ``publish`` — ``sendMessage``, ``sendPhoto``, ``sendVideo`` or ``sendMediaGroup`` to the
  account's chat, thread items as replies, flood waits honoured (see :mod:`.publishing`);
* ``confirm`` — a bot cannot look its messages up: a message whose answer was lost is
  reported as such, never sent again;
* ``delete`` — ``deleteMessage`` / ``deleteMessages``, possible within 48 hours only;
* ``refresh_credentials`` — a bot token does not expire: ``getMe`` checks it.

Account: ``external_id`` is the chat (``-100…`` or ``@channelname``), ``username`` the
bot's username, the token the bot token. ``CHAT33_TELEGRAM_API_BASE`` replaces
``https://api.telegram.org``; calls go to ``{base}/bot<token>/<method>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import ClassVar

import attrs
import httpx

from chat33_core.errors import (
    Issue,
    NotSupported,
    PermanentError,
    PlatformError,
    ReconnectRequired,
    UnknownOutcome,
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
from .api import BotApi, ChatMigrated
from .publishing import INLINE_WAIT_S, Publication, chat_id_of, pending_message

#: what Telegram answers when a message is too old (48 h) or otherwise not deletable
NOT_DELETABLE = "message can't be deleted"
#: deleteMessages takes up to 100 ids
DELETE_BATCH = 100


class TelegramPlatform(PlatformBase):
    name = "telegram"
    display_name = "Telegram"
    default_api_base = "https://api.telegram.org"
    capabilities = Capabilities(threads=True, delete=True, text_only=True, images=True,
                                video=True)
    limits = Limits(caption_length=rules.TEXT_MAX, max_images=rules.ALBUM_MAX,
                    max_videos=rules.ALBUM_MAX, max_image_bytes=rules.PHOTO_MAX_BYTES,
                    max_video_bytes=rules.VIDEO_MAX_BYTES)
    #: ``platformConfig.telegram``: the core checks the types; rules.OPTIONS checks what
    #: each value means (and holds its text)
    options: ClassVar[tuple[Option, ...]] = (
        Option("disableNotification", "boolean", rules.OPTIONS["disableNotification"][2],
               default=False),
        Option("protectContent", "boolean", rules.OPTIONS["protectContent"][2],
               default=False),
        Option("disableLinkPreview", "boolean", rules.OPTIONS["disableLinkPreview"][2],
               default=False),
        Option("hasSpoiler", "boolean", rules.OPTIONS["hasSpoiler"][2], default=False),
        Option("messageThreadId", "integer", rules.OPTIONS["messageThreadId"][2],
               minimum=1),
    )

    # --- preflight --------------------------------------------------------------------

    def validate(self, draft: PostDraft, account: Account) -> list[Issue]:
        """Text (or caption), media and ``platformConfig.telegram`` of the post and its
        thread items."""
        config = draft.platform_config.get(self.name) if draft.platform_config else None
        config = config if isinstance(config, Mapping) else {}
        issues: list[Issue] = []
        for item in (draft, *draft.thread):
            issues += rules.check_text(item.text, bool(item.media), item.path)
            issues += rules.check_media(item.media, item.path)
        issues += rules.check_config(config, has_media=bool(draft.media) or any(
            item.media for item in draft.thread))
        if draft.cover_image is not None:
            issues.append(Issue("coverImageUrl", "ignored on Telegram (a video's preview is "
                                                 "its first frame)", code="unused",
                                severity="warning"))
        return issues

    # --- publishing ---------------------------------------------------------------------

    def publish(self, ctx: PublishContext) -> PublishResult:
        """Send the post and its thread items, continuing from the checkpoints. A failure
        after some items are in the chat carries them in ``posted``."""
        run = Publication(ctx, self._api(ctx.http, ctx.credentials), self._inline_wait())
        try:
            run.run()
        except PlatformError as exc:
            exc.posted = self._receipts(ctx, run)
            raise
        return PublishResult(receipts=self._receipts(ctx, run))

    def confirm(self, ctx: PublishContext) -> PublishResult | None:
        """The result when every item is recorded as sent; None when no message was in
        flight (nothing can have been sent twice). A message whose answer was lost
        cannot be looked up by a bot: :class:`UnknownOutcome`, asking the user to check
        the chat."""
        run = Publication(ctx, self._api(ctx.http, ctx.credentials), self._inline_wait())
        if run.sending is not None:
            raise UnknownOutcome(pending_message(run.sending, len(ctx.items)),
                                 platform_code="unconfirmable",
                                 posted=self._receipts(ctx, run))
        if len(run.posted) >= len(ctx.items):
            return PublishResult(receipts=self._receipts(ctx, run))
        return None

    def _inline_wait(self) -> float:
        raw = self.settings.platform_value(self.name, "INLINE_WAIT_S")
        try:
            return float(raw) if raw else INLINE_WAIT_S
        except ValueError:
            return INLINE_WAIT_S

    # --- receipts ----------------------------------------------------------------------------

    def post_url(self, chat_id: int | str, message_id: int) -> str | None:
        """The message's t.me link: public chats by name, channels and supergroups by
        their id without ``-100``; basic groups have none."""
        if isinstance(chat_id, str):
            return f"https://t.me/{chat_id.lstrip('@')}/{message_id}"
        text = str(chat_id)
        if text.startswith("-100"):
            return f"https://t.me/c/{text[4:]}/{message_id}"
        return None

    def _receipts(self, ctx: PublishContext, run: Publication) -> list[Receipt]:
        return [Receipt(external_id=",".join(map(str, entry["ids"])),
                        external_url=self.post_url(run.chat_id, entry["ids"][0]),
                        post_id=entry.get("postId"),
                        extra={"chatId": run.chat_id, "messageIds": entry["ids"],
                               "date": entry.get("date"), "position": position})
                for position, entry in enumerate(run.posted)]

    # --- delete --------------------------------------------------------------------------------

    def delete(self, ctx: DeleteContext) -> None:
        """Delete every message of the post (an album is several): ``deleteMessage`` for
        one, ``deleteMessages`` for more. Telegram lets a bot delete a message only within
        48 hours of sending it; an older one is :class:`NotSupported` (409 at the API)."""
        api = self._api(ctx.http, ctx.credentials)
        chat: int | str = chat_id_of(ctx.account.external_id)
        ids: list[int] = []
        for external_id in ctx.external_ids:
            try:
                ids += [int(part) for part in str(external_id).split(",")]
            except ValueError as exc:
                raise PermanentError(f"{external_id!r} is not a Telegram message id",
                                     platform_code="bad-id") from exc
        for start in range(0, len(ids), DELETE_BATCH):
            batch = ids[start:start + DELETE_BATCH]
            try:
                chat = self._delete_batch(ctx, api, chat, batch)
            except ChatMigrated as exc:
                chat = self._delete_batch(ctx, api, exc.new_chat_id, batch)

    def _delete_batch(self, ctx: DeleteContext, api: BotApi, chat: int | str,
                      ids: list[int]) -> int | str:
        listed = ", ".join(map(str, ids))
        try:
            if len(ids) == 1:
                api.call("deleteMessage", what=f"Telegram delete {listed}",
                         json={"chat_id": chat, "message_id": ids[0]})
            else:
                api.call("deleteMessages", what=f"Telegram delete {listed}",
                         json={"chat_id": chat, "message_ids": ids})
        except PermanentError as exc:
            if isinstance(exc, ChatMigrated):
                raise
            if NOT_DELETABLE in exc.message:
                raise NotSupported(f"Telegram no longer lets the bot delete message(s) "
                                   f"{listed}: a bot can delete a message only within 48 "
                                   "hours of sending it; delete it in the Telegram app") from exc
            if "not found" not in exc.message:
                raise
            ctx.log("telegram.delete", f"message(s) {listed} were already gone",
                    external_id=listed)
            return chat
        ctx.log("telegram.delete", f"message(s) {listed} deleted in the chat",
                external_id=listed)
        return chat

    # --- credentials --------------------------------------------------------------------------

    def needs_refresh(self, credentials: Credentials, now: datetime | None = None) -> bool:
        """Never: a bot token does not expire (whatever expiry the credentials carry)."""
        return False

    def refresh_credentials(self, credentials: Credentials, ctx: RefreshContext) -> Credentials:
        """A bot token does not expire and cannot be renewed: ``getMe`` checks that it
        still works (the same token, without expiry, with the bot's username noted) or
        raises :class:`ReconnectRequired`."""
        api = self._api(ctx.http, credentials)
        me = api.call("getMe", what="Telegram getMe")
        if not isinstance(me, Mapping) or not me.get("is_bot"):
            raise ReconnectRequired("Telegram's getMe did not answer with a bot: the token "
                                    "is not a bot token", platform_code="not-a-bot")
        extra = {**credentials.extra, "botId": me.get("id"), "botUsername": me.get("username")}
        return attrs.evolve(credentials, refresh_token=None, expires_at=None, extra=extra)

    # --- plumbing ------------------------------------------------------------------------------

    def _api(self, http: httpx.Client, credentials: Credentials) -> BotApi:
        return BotApi(http, self.api_base(), credentials.access_token)

    def sandbox(self) -> WSGIApp | None:
        from .sandbox import TelegramSandbox

        return TelegramSandbox()
