"""Telegram's preflight rules: text and captions in UTF-16 code units, media, options.

Everything judges a :class:`~chat33_core.platforms.PostDraft` (inspected media, no
network); each issue names the limit and the measured value. Source: platforms-more.md
§5.2 (the Bot API's own limits, as python-telegram-bot copies them).

Where the reference is uncertain, the reading chosen is:

* the unit of the 4,096 (text) and 1,024 (caption) limits is the UTF-16 code unit, the
  unit the Bot API measures entities in; chat33 sends plain text (no ``parse_mode``), so
  "after entities parsing" is the text as written. An emoji outside the BMP counts 2.
* files are always uploaded (multipart), so the upload limits apply: photos 10 MB,
  videos 50 MB (not the 5/20 MB limits of sending by URL).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from chat33_core.errors import Issue
from chat33_core.media import GIF, VIDEO, MediaInfo

TEXT_MAX = 4096
CAPTION_MAX = 1024
ALBUM_MIN, ALBUM_MAX = 2, 10
PHOTO_MAX_BYTES = 10 * 1024 * 1024
VIDEO_MAX_BYTES = 50 * 1024 * 1024
PHOTO_MAX_SIDES = 10_000  # width + height
PHOTO_MAX_RATIO = 20.0
PHOTO_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "GIF"})
VIDEO_FORMATS = frozenset({"MPEG-4"})


def utf16_length(text: str) -> int:
    """The length of ``text`` in UTF-16 code units (the Bot API's unit)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


# --- text ------------------------------------------------------------------------------


def check_text(text: str | None, has_media: bool, path: str) -> list[Issue]:
    """A message: 1-4,096 UTF-16 units; a caption (the text of a post with media):
    0-1,024."""
    where = f"{path}text"
    if not text or not text.strip():
        if has_media:
            return []
        return [Issue(where, "Telegram needs text or media: this post has neither",
                      code="required")]
    size = utf16_length(text)
    limit, what = (CAPTION_MAX, "a caption (text with media)") if has_media else (
        TEXT_MAX, "a text message")
    if size > limit:
        return [Issue(where, f"text is {size} characters (UTF-16 code units); Telegram "
                             f"allows {limit} for {what}", code="too_long")]
    return []


# --- media -----------------------------------------------------------------------------


def check_media(media: Sequence[MediaInfo], path: str) -> list[Issue]:
    """1 photo or video, or an album of 2-10 of them (mixed)."""
    if not media:
        return []
    issues: list[Issue] = []
    if len(media) > ALBUM_MAX:
        issues.append(Issue(f"{path}mediaUrls", f"a Telegram album holds {ALBUM_MIN}-"
                                                f"{ALBUM_MAX} photos and videos; this post "
                                                f"has {len(media)}", code="too_many_media"))
    for index, info in enumerate(media):
        where = f"{path}mediaUrls[{index}]"
        if info.kind == VIDEO:
            issues.extend(_check_video(info, where))
        else:
            issues.extend(_check_photo(info, where, in_album=len(media) > 1))
    return issues


def _check_photo(info: MediaInfo, where: str, in_album: bool) -> list[Issue]:
    issues = []
    if info.format.upper() not in PHOTO_FORMATS:
        issues.append(Issue(where, f"image format {info.format} is not sent as a Telegram "
                                   "photo (JPEG, PNG, WebP or GIF)", code="format"))
    if info.size > PHOTO_MAX_BYTES:
        issues.append(Issue(where, f"photo is {_mb(info.size)}; Telegram takes uploaded "
                                   f"photos up to {_mb(PHOTO_MAX_BYTES)}", code="too_large"))
    if info.width and info.height:
        if info.width + info.height > PHOTO_MAX_SIDES:
            issues.append(Issue(where, f"photo is {info.width}x{info.height}; Telegram needs "
                                       f"width + height at most {PHOTO_MAX_SIDES}",
                                code="dimensions"))
        ratio = max(info.width, info.height) / min(info.width, info.height)
        if ratio > PHOTO_MAX_RATIO:
            issues.append(Issue(where, f"photo's sides are {ratio:.1f}:1; Telegram allows "
                                       f"{PHOTO_MAX_RATIO:g}:1 at most", code="aspect_ratio"))
    if info.kind == GIF and (info.animated or info.frames > 1):
        issues.append(Issue(where, "an animated GIF is sent as a still photo; post it as an "
                                   "MP4 video to keep it moving", code="animated_gif",
                            severity="warning"))
    return issues


def _check_video(info: MediaInfo, where: str) -> list[Issue]:
    issues = []
    if info.format.upper() not in VIDEO_FORMATS:
        issues.append(Issue(where, f"video container {info.format} is not accepted by "
                                   "Telegram's sendVideo (MP4)", code="format"))
    if info.size > VIDEO_MAX_BYTES:
        issues.append(Issue(where, f"video is {_mb(info.size)}; Telegram takes uploaded "
                                   f"videos up to {_mb(VIDEO_MAX_BYTES)}", code="too_large"))
    return issues


# --- platformConfig.telegram ---------------------------------------------------------------

Checker = Callable[[Any, str], list[Issue]]


def _boolean(value: Any, where: str) -> list[Issue]:
    return [] if isinstance(value, bool) else [Issue(where, "must be true or false")]


def _thread_id(value: Any, where: str) -> list[Issue]:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return [Issue(where, "messageThreadId is the positive id of a forum topic")]
    return []


#: every key of ``platformConfig.telegram``: its check, the Bot API parameter it sets,
#: and a line for the documentation
OPTIONS: Mapping[str, tuple[Checker, str, str]] = {
    "disableNotification": (_boolean, "disable_notification",
                            "send silently: members get no sound with the notification"),
    "protectContent": (_boolean, "protect_content",
                       "forbid forwarding and saving the messages"),
    "disableLinkPreview": (_boolean, "link_preview_options",
                           "no preview of the first link of a text message"),
    "hasSpoiler": (_boolean, "has_spoiler", "cover photos and videos with a spoiler "
                                            "animation"),
    "messageThreadId": (_thread_id, "message_thread_id",
                        "the forum topic of a supergroup to post in"),
}


def check_config(config: Mapping[str, Any], has_media: bool) -> list[Issue]:
    issues: list[Issue] = []
    for key, (check, _param, _doc) in OPTIONS.items():
        if key in config and config[key] is not None:
            issues.extend(check(config[key], f"platformConfig.telegram.{key}"))
    if config.get("hasSpoiler") and not has_media:
        issues.append(Issue("platformConfig.telegram.hasSpoiler", "ignored: the post has "
                                                                  "no media", code="unused",
                            severity="warning"))
    return issues


def send_options(config: Mapping[str, Any], *, media: bool) -> dict[str, Any]:
    """The Bot API parameters that ``platformConfig.telegram`` sets on every message of
    the post (``has_spoiler`` and link previews only where they apply)."""
    params: dict[str, Any] = {}
    if config.get("disableNotification"):
        params["disable_notification"] = True
    if config.get("protectContent"):
        params["protect_content"] = True
    if config.get("messageThreadId"):
        params["message_thread_id"] = int(config["messageThreadId"])
    if not media and config.get("disableLinkPreview"):
        params["link_preview_options"] = {"is_disabled": True}
    return params
