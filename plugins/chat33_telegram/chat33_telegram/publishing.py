"""Publishing one post (or a thread) as Telegram messages (platforms-more.md §5.2, §5.3).

Each item is one call: ``sendMessage`` (text), ``sendPhoto`` / ``sendVideo`` (one file,
uploaded as multipart) or ``sendMediaGroup`` (an album of 2-10, the caption on its first
item). Each later item of a thread answers the first message of the item before it
(``reply_parameters``).

Exactly once. The Bot API has no idempotency key and no way for a bot to look a sent
message up, so an item whose call got no answer cannot be confirmed. Before each call
the item is checkpointed as ``sending``; after Telegram's answer the message ids are
checkpointed as ``posted`` and ``sending`` is cleared. An item found still ``sending``
(a lost answer, a worker that died mid-call) is never sent again: it is an
:class:`UnknownOutcome` that :meth:`confirm` cannot settle, and the post fails asking
the user to look at the chat. Items already posted are never sent again either.

Checkpoint layout::

    {"posted": [{"ids": [int, ...], "date": int, "postId": str}],   # in thread order
     "sending": {"index": int} | None,
     "chatId": int | str}               # only after the group migrated to a supergroup
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from typing import Any

from chat33_core.errors import PermanentError, PlatformError, UnknownOutcome
from chat33_core.media import VIDEO
from chat33_core.platforms import MediaFile, PublishContext, PublishItem

from . import rules
from .api import BotApi, ChatMigrated, RateLimitedByTelegram

#: flood waits up to this many seconds are slept through within the attempt
INLINE_WAIT_S = 5.0
#: how many flood waits one item may sleep through before the attempt gives up
INLINE_WAITS = 3


def chat_id_of(external_id: str | None) -> int | str:
    """The ``chat_id`` of an account: ``-100…`` (an integer) or ``@channelname``."""
    value = (external_id or "").strip()
    if value.lstrip("-").isdigit():
        return int(value)
    if value.startswith("@") and len(value) > 1:
        return value
    if value and value.replace("_", "").isalnum():
        return f"@{value}"
    raise PermanentError(f"the Telegram account's external id {external_id!r} is not a chat "
                         "id (-100…) or @channelname", platform_code="bad-chat-id")


def pending_message(index: int, total: int) -> str:
    return (f"Telegram did not answer when message {index + 1} of {total} was sent, and a "
            "bot cannot look its messages up: check the chat before posting it again")


class Publication:
    """One publish of one post: the bot, the chat, the checkpoint and the steps."""

    def __init__(self, ctx: PublishContext, api: BotApi, inline_wait_s: float) -> None:
        self.ctx = ctx
        self.api = api
        self.inline_wait_s = inline_wait_s
        self.data = dict(ctx.checkpoints.load())
        self.data.setdefault("posted", [])
        self.config = ctx.config("telegram")
        self.chat_id: int | str = self.data.get("chatId") or chat_id_of(ctx.account.external_id)

    @property
    def posted(self) -> list[dict[str, Any]]:
        posted: list[dict[str, Any]] = self.data["posted"]
        return posted

    @property
    def sending(self) -> int | None:
        pending = self.data.get("sending")
        return int(pending["index"]) if isinstance(pending, Mapping) else None

    def save(self) -> None:
        self.ctx.checkpoints.save(self.data)

    def run(self) -> None:
        items = list(self.ctx.items)
        if self.sending is not None:
            raise UnknownOutcome(pending_message(self.sending, len(items)),
                                 platform_code="unconfirmable")
        if 0 < len(self.posted) < len(items):
            self.ctx.log("telegram.resume", f"{len(self.posted)} of {len(items)} messages "
                         "already in the chat; continuing the thread")
        for index in range(len(self.posted), len(items)):
            self.publish_item(index, items[index])

    def publish_item(self, index: int, item: PublishItem) -> None:
        what = f"Telegram message {index + 1}/{len(self.ctx.items)}"
        waits = 0
        while True:
            # durable before the call: a worker that dies from here on never resends it
            self.data["sending"] = {"index": index}
            self.save()
            try:
                messages = self.send(index, item, what)
                break
            except UnknownOutcome:
                self.ctx.log("telegram.unknown", f"no clear answer to message {index + 1}; "
                             "it will not be sent again", index=index)
                raise
            except PlatformError as exc:
                self.refused()  # Telegram answered and refused: nothing was sent
                if isinstance(exc, RateLimitedByTelegram):
                    wait = exc.retry_after or 0.0
                    if wait > self.inline_wait_s or waits >= INLINE_WAITS:
                        raise
                    waits += 1
                    self.ctx.log("telegram.flood", f"Telegram asked to wait {wait:g} s "
                                 f"before message {index + 1}", retry_after=wait)
                    self.ctx.sleep(wait)
                elif isinstance(exc, ChatMigrated) and exc.new_chat_id != self.data.get(
                        "chatId"):
                    self.ctx.log("telegram.migrated", f"the group {self.chat_id} is now the "
                                 f"supergroup {exc.new_chat_id}; posting there (set the "
                                 "account's external id to it)", chat_id=exc.new_chat_id)
                    self.chat_id = self.data["chatId"] = exc.new_chat_id
                    self.save()
                else:
                    raise
        ids = [int(m["message_id"]) for m in messages]
        self.posted.append({"ids": ids, "date": int(messages[0].get("date") or 0),
                            "postId": item.post_id})
        self.data["sending"] = None
        self.save()
        self.ctx.log("telegram.posted", f"message {index + 1}/{len(self.ctx.items)} is in the "
                     f"chat as {', '.join(map(str, ids))}", external_id=str(ids[0]),
                     index=index)

    def refused(self) -> None:
        self.data["sending"] = None
        self.save()

    # --- the calls ---------------------------------------------------------------------

    def common(self, index: int, media: bool) -> dict[str, Any]:
        params: dict[str, Any] = {"chat_id": self.chat_id,
                                  **rules.send_options(self.config, media=media)}
        if index > 0:
            params["reply_parameters"] = {"message_id": self.posted[index - 1]["ids"][0]}
        return params

    def send(self, index: int, item: PublishItem, what: str) -> list[Mapping[str, Any]]:
        """Send the item; the messages Telegram made of it."""
        media = list(item.media)
        text = item.text or ""
        if not media:
            result = self.api.call("sendMessage", creates=True, what=what,
                                   json={**self.common(index, False), "text": text})
            return [_message(result, what)]
        with ExitStack() as files:
            if len(media) == 1:
                method, field, params = self.single(media[0], text)
                upload = {field: _upload(files, media[0])}
                result = self.api.call(method, creates=True, what=what,
                                       data=_form({**self.common(index, True), **params}),
                                       files=upload)
                return [_message(result, what)]
            album, uploads = self.album(media, text, files)
            result = self.api.call("sendMediaGroup", creates=True, what=what,
                                   data=_form({**self.common(index, True), "media": album}),
                                   files=uploads)
        if not isinstance(result, list) or not result:
            raise UnknownOutcome(f"{what}: Telegram answered sendMediaGroup without messages",
                                 platform_code="bad-response")
        return [_message(m, what) for m in result]

    def single(self, file: MediaFile, text: str) -> tuple[str, str, dict[str, Any]]:
        params: dict[str, Any] = {}
        if text:
            params["caption"] = text
        if self.config.get("hasSpoiler"):
            params["has_spoiler"] = True
        if file.info.kind == VIDEO:
            return "sendVideo", "video", {**params, **_video_facts(file)}
        return "sendPhoto", "photo", params

    def album(self, media: Sequence[MediaFile], text: str, files: ExitStack
              ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """``InputMediaPhoto`` / ``InputMediaVideo`` items referring to multipart fields
        by ``attach://``; the caption goes on the first."""
        entries: list[dict[str, Any]] = []
        uploads: dict[str, Any] = {}
        for number, file in enumerate(media):
            field = f"file{number}"
            uploads[field] = _upload(files, file)
            entry: dict[str, Any] = {"type": "video" if file.info.kind == VIDEO else "photo",
                                     "media": f"attach://{field}"}
            if number == 0 and text:
                entry["caption"] = text
            if self.config.get("hasSpoiler"):
                entry["has_spoiler"] = True
            if file.info.kind == VIDEO:
                entry.update(_video_facts(file))
            entries.append(entry)
        return entries, uploads


def _video_facts(file: MediaFile) -> dict[str, Any]:
    facts: dict[str, Any] = {"supports_streaming": True}
    if file.info.width and file.info.height:
        facts.update(width=file.info.width, height=file.info.height)
    if file.info.duration_s:
        facts["duration"] = max(1, round(file.info.duration_s))
    return facts


def _upload(files: ExitStack, file: MediaFile) -> tuple[str, Any, str]:
    name = file.name or file.path.name
    return name, files.enter_context(file.open()), file.info.mime_type


def _form(params: Mapping[str, Any]) -> dict[str, str]:
    """Multipart fields: objects and arrays as JSON, booleans as ``true``/``false``."""
    form: dict[str, str] = {}
    for key, value in params.items():
        if isinstance(value, bool):
            form[key] = "true" if value else "false"
        elif isinstance(value, dict | list):
            form[key] = json.dumps(value)
        else:
            form[key] = str(value)
    return form


def _message(result: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(result, Mapping) or not isinstance(result.get("message_id"), int):
        raise UnknownOutcome(f"{what}: Telegram's answer had no message id: {result!r:.200}",
                             platform_code="bad-response")
    return result
