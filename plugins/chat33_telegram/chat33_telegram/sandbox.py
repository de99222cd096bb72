"""A local imitation of the Telegram Bot API (platforms-more.md §5.5), for tests and the demo.

``/bot<token>/<method>`` (method names case-insensitive), parameters from the query
string, a form, a multipart body or JSON, every answer in the ``{"ok": ...}`` envelope.
What it reproduces:

* ``getMe``, ``sendMessage``, ``sendPhoto``, ``sendVideo``, ``sendMediaGroup`` (2-10
  photos/videos, ``attach://`` fields, an array of messages), ``deleteMessage``,
  ``deleteMessages``;
* message ids counted per chat; chats by id (``-100…``) or ``@username``; a basic group
  that became a supergroup (400 with ``migrate_to_chat_id``); a bot kicked from a chat
  (403); an unknown or revoked token (401);
* text over 4,096 and captions over 1,024 UTF-16 units (400); files by upload (10 MB
  photos, 50 MB videos, else 413), by HTTP URL (fetched: 5 MB photos, 20 MB videos) or
  by the ``file_id`` of an earlier one; photo dimensions (width + height ≤ 10,000, ratio
  ≤ 20); files that are not a photo or an MP4 video;
* ``reply_parameters`` naming a message the chat does not have (400, unless
  ``allow_sending_without_reply``);
* flood control: ``flood_limit`` messages per chat per ``flood_window_s``, then 429 with
  ``retry_after``;
* ``deleteMessage`` refused 48 hours after sending, on a clock tests move forward.

Control API (besides faults, state and reset): ``POST /_sandbox/clock {"advance": s}``,
``POST /_sandbox/config``, ``POST /_sandbox/chats {"id", "username"?, "kicked"?,
"migrated_to"?}`` and ``POST /_sandbox/bots {"token", "username"?, "revoked"?}``.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Mapping
from typing import Any

from werkzeug.datastructures import FileStorage
from werkzeug.wrappers import Request, Response

from chat33_core.sandbox import SandboxApp, json_response, sniff

from .rules import (
    ALBUM_MAX,
    ALBUM_MIN,
    CAPTION_MAX,
    PHOTO_MAX_BYTES,
    PHOTO_MAX_RATIO,
    PHOTO_MAX_SIDES,
    TEXT_MAX,
    VIDEO_MAX_BYTES,
    utf16_length,
)

#: the bot and the chats every sandbox starts with (the demo's account)
DEMO_BOT: dict[str, Any] = {"id": 7000000001, "token": "7000000001:chat33-sandbox-token",
            "username": "chat33_sandbox_bot"}
DEMO_CHANNEL: dict[str, Any] = {"id": -1001000000001, "username": "chat33demo", "type": "channel",
                "title": "chat33 demo"}
DEMO_GROUP: dict[str, Any] = {"id": -1001000000002, "username": None, "type": "supergroup",
              "title": "chat33 group"}
#: a basic group that was upgraded: sending to it answers ``migrate_to_chat_id``
OLD_GROUP: dict[str, Any] = {"id": -4000000001, "migrated_to": -1001000000003}
NEW_SUPERGROUP: dict[str, Any] = {"id": -1001000000003, "username": None, "type": "supergroup",
                  "title": "chat33 upgraded group"}
DELETE_WINDOW_S = 48 * 3600
#: files sent by upload and by URL (platforms-more.md §5.2 "Files")
UPLOAD_MAX_BYTES = {"photo": PHOTO_MAX_BYTES, "video": VIDEO_MAX_BYTES}
URL_MAX_BYTES = {"photo": 5 * 1024 * 1024, "video": 20 * 1024 * 1024}
PHOTO_TYPES = {"JPEG", "PNG", "WEBP", "GIF"}


class BotApiError(Exception):
    def __init__(self, code: int, description: str, **parameters: Any) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters

    def response(self) -> Response:
        body: dict[str, Any] = {"ok": False, "error_code": self.code,
                                "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return json_response(body, self.code)


def bad(description: str) -> BotApiError:
    return BotApiError(400, f"Bad Request: {description}")


class TelegramSandbox(SandboxApp):
    name = "telegram"

    def __init__(self) -> None:
        super().__init__()
        self.configurable(flood_limit=0, flood_window_s=60.0)
        self.route("/bot<token>/<method>", self._call, methods=["GET", "POST"])
        self.route("/_sandbox/clock", self._clock, methods=["POST"])
        self.route("/_sandbox/chats", self._add_chat, methods=["POST"])
        self.route("/_sandbox/bots", self._add_bot, methods=["POST"])
        self.reset()

    # --- state -----------------------------------------------------------------------------

    def reset(self) -> None:
        self.offset = 0.0
        self.config = dict(self.defaults)
        self.bots: dict[str, dict[str, Any]] = {
            DEMO_BOT["token"]: {"id": DEMO_BOT["id"], "username": DEMO_BOT["username"],
                                "revoked": False}}
        self.chats: dict[int, dict[str, Any]] = {}
        for chat in (DEMO_CHANNEL, DEMO_GROUP, NEW_SUPERGROUP):
            self._put_chat(dict(chat))
        self._put_chat({"id": OLD_GROUP["id"], "type": "group", "title": "chat33 old group",
                        "migrated_to": OLD_GROUP["migrated_to"]})
        self.sent: dict[int, list[float]] = {}  # chat id -> send times, for flood control
        self.media_group = 0
        self.file_count = 0
        self.files: dict[str, dict[str, Any]] = {}  # file_id -> facts

    def _put_chat(self, chat: dict[str, Any]) -> None:
        chat.setdefault("username", None)
        chat.setdefault("type", "supergroup")
        chat.setdefault("title", f"chat {chat['id']}")
        chat.setdefault("kicked", False)
        chat.setdefault("migrated_to", None)
        chat.setdefault("messages", {})
        chat.setdefault("next_id", 1)
        self.chats[int(chat["id"])] = chat

    def now(self) -> float:
        return time.time() + self.offset

    def state(self) -> dict[str, Any]:
        with self.lock:
            return {"chats": [{"id": c["id"], "username": c["username"], "type": c["type"],
                               "messages": list(c["messages"].values())}
                              for c in self.chats.values()],
                    "messages": [m for c in self.chats.values()
                                 for m in c["messages"].values() if not m["deleted"]]}

    # --- control ---------------------------------------------------------------------------

    def _clock(self, request: Request) -> Response:
        body = request.get_json(force=True) or {}
        with self.lock:
            self.offset += float(body.get("advance") or 0)
            return json_response({"now": self.now()})

    def _add_chat(self, request: Request) -> Response:
        body = dict(request.get_json(force=True) or {})
        with self.lock:
            known = self.chats.get(int(body["id"]))
            if known is not None:
                known.update({k: v for k, v in body.items() if k != "id"})
            else:
                self._put_chat(body)
            return json_response({"ok": True})

    def _add_bot(self, request: Request) -> Response:
        body = request.get_json(force=True) or {}
        token = str(body["token"])
        with self.lock:
            bot = self.bots.setdefault(token, {"id": int(token.split(":")[0]),
                                               "username": body.get("username") or "bot",
                                               "revoked": False})
            bot["revoked"] = bool(body.get("revoked", False))
            return json_response({"ok": True})

    # --- the Bot API ---------------------------------------------------------------------

    def _call(self, request: Request, token: str, method: str) -> Response:
        with self.lock:
            try:
                bot = self.bots.get(token)
                if bot is None or bot["revoked"]:
                    raise BotApiError(401, "Unauthorized")
                handler = getattr(self, f"api_{method.lower()}", None)
                if handler is None:
                    raise BotApiError(404, "Not Found: method not found")
                result = handler(_params(request), request.files, bot)
            except BotApiError as exc:
                return exc.response()
        return json_response({"ok": True, "result": result})

    def api_getme(self, params: Mapping[str, Any], files: Any, bot: Mapping[str, Any]
                  ) -> dict[str, Any]:
        return {"id": bot["id"], "is_bot": True, "first_name": "chat33 sandbox",
                "username": bot["username"], "can_join_groups": True}

    def api_sendmessage(self, params: Mapping[str, Any], files: Any,
                        bot: Mapping[str, Any]) -> dict[str, Any]:
        chat = self._chat(params)
        text = str(params.get("text") or "")
        if not text.strip():
            raise bad("message text is empty")
        if utf16_length(text) > TEXT_MAX:
            raise bad("message is too long")
        reply = self._reply(chat, params)
        self._flood(chat, 1)
        return self._store(chat, {"text": text}, reply, params)

    def api_sendphoto(self, params: Mapping[str, Any], files: Any,
                      bot: Mapping[str, Any]) -> dict[str, Any]:
        return self._send_one(params, files, "photo")

    def api_sendvideo(self, params: Mapping[str, Any], files: Any,
                      bot: Mapping[str, Any]) -> dict[str, Any]:
        return self._send_one(params, files, "video")

    def _send_one(self, params: Mapping[str, Any], files: Any, kind: str) -> dict[str, Any]:
        chat = self._chat(params)
        caption = self._caption(params)
        content = self._file(params.get(kind), files, kind)
        reply = self._reply(chat, params)
        self._flood(chat, 1)
        return self._store(chat, {kind: content, **caption}, reply, params)

    def api_sendmediagroup(self, params: Mapping[str, Any], files: Any,
                           bot: Mapping[str, Any]) -> list[dict[str, Any]]:
        chat = self._chat(params)
        media = _json_value(params.get("media"))
        if not isinstance(media, list):
            raise bad("can't parse media JSON object")
        if not ALBUM_MIN <= len(media) <= ALBUM_MAX:
            raise bad("wrong number of media in the group (2-10)")
        contents = []
        for entry in media:
            if not isinstance(entry, Mapping) or entry.get("type") not in ("photo", "video"):
                raise bad("unsupported media type in the group")
            caption = self._caption(entry)
            contents.append({entry["type"]: self._file(entry.get("media"), files,
                                                       str(entry["type"])), **caption})
        reply = self._reply(chat, params)
        self._flood(chat, len(contents))
        self.media_group += 1
        group = str(13_000_000_000 + self.media_group)
        return [self._store(chat, {**content, "media_group_id": group},
                            reply if index == 0 else None, params)
                for index, content in enumerate(contents)]

    def api_deletemessage(self, params: Mapping[str, Any], files: Any,
                          bot: Mapping[str, Any]) -> bool:
        chat = self._chat(params)
        message = chat["messages"].get(_int(params.get("message_id"), "message_id"))
        if message is None or message["deleted"]:
            raise bad("message to delete not found")
        self._deletable(message)
        message["deleted"] = True
        return True

    def api_deletemessages(self, params: Mapping[str, Any], files: Any,
                           bot: Mapping[str, Any]) -> bool:
        chat = self._chat(params)
        ids = _json_value(params.get("message_ids"))
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise bad("message_ids must be a list of 1-100 ids")
        found = [m for i in ids if (m := chat["messages"].get(_int(i, "message_ids")))
                 and not m["deleted"]]  # missing ones are skipped, as documented
        for message in found:
            self._deletable(message)
        for message in found:
            message["deleted"] = True
        return True

    # --- rules ---------------------------------------------------------------------------

    def _chat(self, params: Mapping[str, Any]) -> dict[str, Any]:
        raw = params.get("chat_id")
        chat: dict[str, Any] | None = None
        if isinstance(raw, str) and raw.startswith("@"):
            chat = next((c for c in self.chats.values()
                         if c["username"] and f"@{c['username']}".lower() == raw.lower()), None)
        elif raw is not None and str(raw).lstrip("-").isdigit():
            chat = self.chats.get(int(raw))
        if raw in (None, ""):
            raise bad("chat_id is empty")
        if chat is None:
            raise bad("chat not found")
        if chat["migrated_to"] is not None:
            raise BotApiError(400, "Bad Request: group chat was upgraded to a supergroup chat",
                              migrate_to_chat_id=chat["migrated_to"])
        if chat["kicked"]:
            raise BotApiError(403, f"Forbidden: bot was kicked from the {chat['type']} chat")
        return chat

    def _caption(self, params: Mapping[str, Any]) -> dict[str, str]:
        caption = str(params.get("caption") or "")
        if utf16_length(caption) > CAPTION_MAX:
            raise bad("message caption is too long")
        return {"caption": caption} if caption else {}

    def _file(self, value: Any, files: Any, kind: str) -> dict[str, Any]:
        """The file of a photo or video: uploaded (``attach://`` or the field itself), a
        ``file_id`` of an earlier upload, or an HTTP URL Telegram fetches, each with its
        own size limit."""
        if isinstance(value, str) and value in self.files:
            return dict(self.files[value])  # a file_id: sent again without a limit
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            data, name = _fetch(value, URL_MAX_BYTES[kind]), value.rsplit("/", 1)[-1]
        else:
            upload: FileStorage | None = None
            if isinstance(value, FileStorage):
                upload = value
            elif isinstance(value, str) and value.startswith("attach://"):
                upload = files.get(value.removeprefix("attach://"))
            if upload is None:
                raise bad("wrong file identifier/HTTP URL specified")
            data, name = upload.read(), upload.filename or ""
            if len(data) > UPLOAD_MAX_BYTES[kind]:
                raise BotApiError(413, "Request Entity Too Large")
        found = sniff(data[:16])
        self.file_count += 1
        facts: dict[str, Any] = {"file_id": f"{kind}-{self.file_count:06d}",
                                 "file_size": len(data), "file_name": name}
        if kind == "photo":
            if found not in PHOTO_TYPES:
                raise bad("IMAGE_PROCESS_FAILED")
            width, height = _dimensions(data)
            if width + height > PHOTO_MAX_SIDES or (
                    max(width, height) / max(1, min(width, height)) > PHOTO_MAX_RATIO):
                raise bad("PHOTO_INVALID_DIMENSIONS")
            facts.update(width=width, height=height, format=found)
        elif found != "MP4":
            raise bad("wrong type of the web page content (video must be an MP4)")
        else:
            facts["mime_type"] = "video/mp4"
        self.files[facts["file_id"]] = facts
        return dict(facts)

    def _reply(self, chat: Mapping[str, Any], params: Mapping[str, Any]) -> int | None:
        reply = _json_value(params.get("reply_parameters"))
        if reply is None:
            return None
        if not isinstance(reply, Mapping) or "message_id" not in reply:
            raise bad("can't parse reply parameters JSON object")
        target = chat["messages"].get(_int(reply["message_id"], "reply_parameters"))
        if target is None or target["deleted"]:
            if reply.get("allow_sending_without_reply"):
                return None
            raise bad("message to be replied not found")
        return int(target["message_id"])

    def _flood(self, chat: Mapping[str, Any], count: int) -> None:
        limit = int(self.config.get("flood_limit") or 0)
        if limit <= 0:
            return
        window = float(self.config.get("flood_window_s") or 60)
        now = self.now()
        times = [t for t in self.sent.get(chat["id"], []) if t > now - window]
        if len(times) + count > limit:
            wait = max(1, int(times[0] + window - now + 0.999)) if times else int(window)
            raise BotApiError(429, f"Too Many Requests: retry after {wait}", retry_after=wait)
        self.sent[chat["id"]] = times + [now] * count

    def _deletable(self, message: Mapping[str, Any]) -> None:
        if self.now() - message["date"] >= DELETE_WINDOW_S:
            raise bad("message can't be deleted for everyone")

    def _store(self, chat: dict[str, Any], content: Mapping[str, Any], reply: int | None,
               params: Mapping[str, Any]) -> dict[str, Any]:
        message_id = chat["next_id"]
        chat["next_id"] += 1
        message: dict[str, Any] = {
            "message_id": message_id, "date": int(self.now()),
            "chat": {"id": chat["id"], "type": chat["type"], "title": chat["title"],
                     **({"username": chat["username"]} if chat["username"] else {})},
            **content}
        if reply is not None:
            message["reply_to_message"] = {"message_id": reply}
        for key in ("disable_notification", "protect_content", "message_thread_id",
                    "link_preview_options", "has_spoiler"):
            if key in params:
                message.setdefault("sent_with", {})[key] = _json_value(params[key])
        chat["messages"][message_id] = {**message, "deleted": False}
        return message


# --- request parsing -------------------------------------------------------------------------


def _params(request: Request) -> dict[str, Any]:
    """Parameters from the query string, then the form (multipart fields and files), or
    a JSON body."""
    params: dict[str, Any] = dict(request.args.items())
    if request.mimetype == "application/json":
        body = request.get_json(force=True, silent=True)
        if not isinstance(body, Mapping):
            raise bad("can't parse JSON body")
        params.update(body)
    else:
        params.update(request.form.items())
        params.update(request.files.items())
    return params


def _json_value(value: Any) -> Any:
    """A form field that carries JSON (``media``, ``reply_parameters``), or the value of
    a JSON body as it is."""
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in "[{" or text in ("true", "false"):
            try:
                return json.loads(text)
            except ValueError as exc:
                raise bad(f"can't parse JSON: {text[:50]}") from exc
    return value


def _int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise bad(f"{name} is invalid") from exc


def _fetch(url: str, limit: int) -> bytes:
    """What Telegram downloads from ``url``, refused above ``limit`` bytes."""
    import httpx

    try:
        with httpx.stream("GET", url, timeout=10) as response:
            if not response.is_success:
                raise bad("failed to get HTTP URL content")
            data = b""
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) > limit:
                    raise bad("failed to get HTTP URL content (file is too big)")
    except httpx.HTTPError as exc:
        raise bad("failed to get HTTP URL content") from exc
    return data


def _dimensions(data: bytes) -> tuple[int, int]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError) as exc:
        raise bad("IMAGE_PROCESS_FAILED") from exc
    return int(width), int(height)
