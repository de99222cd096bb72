"""Threads' preflight rules (platforms-more.md §3.2, §3.4), on inspected media only.

* text: 500 "characters", where an emoji counts as its UTF-8 bytes (Meta's words); every
  other code point counts 1. An emoji here is a code point of the emoji blocks, or a
  joiner/selector/skin tone inside an emoji sequence, so 👨‍❤️‍👨 counts 20;
* at most 5 unique links (text and ``linkAttachment`` together);
* media: one image or video, or a carousel of 2-20; images JPEG/PNG up to 8 MB with an
  aspect ratio up to 10:1; videos MP4/MOV up to 1 GB, over 0 and up to 300 s, 23-60 fps,
  at most 1920 px wide, aspect 0.01:1 to 10:1.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from chat33_core.errors import Issue
from chat33_core.media import MediaInfo

MAX_CHARACTERS = 500
MAX_LINKS = 5
CAROUSEL_MIN, CAROUSEL_MAX = 2, 20
IMAGE_MAX_BYTES = 8 * 1024 * 1024
VIDEO_MAX_BYTES = 1024 * 1024 * 1024
VIDEO_MAX_S = 300.0
FRAME_RATES = (23.0, 60.0)
VIDEO_MAX_WIDTH = 1920
MAX_RATIO = 10.0
IMAGE_FORMATS = frozenset({"JPEG", "PNG"})
VIDEO_FORMATS = frozenset({"MPEG-4", "QUICKTIME"})
TOPIC_MAX = 50
REPLY_CONTROLS = ("everyone", "accounts_you_follow", "mentioned_only",
                  "parent_post_author_only", "followers_only")

URL = re.compile(r"https?://[^\s<>\"]+[^\s<>\".,:;!?'()\[\]]", re.IGNORECASE)
_MEDIA_ID = re.compile(r"^[0-9]{1,30}$")
#: code points that belong to emoji sequences: joiner, variation selector, keycap
_EMOJI_GLUE = frozenset({0x200D, 0xFE0F, 0x20E3})


def _is_emoji(code: int) -> bool:
    return (0x1F000 <= code <= 0x1FAFF or 0x2600 <= code <= 0x27BF
            or 0x2300 <= code <= 0x23FF or 0x2B00 <= code <= 0x2BFF
            or 0xE0020 <= code <= 0xE007F)


def count(text: str) -> int:
    """The length Threads checks: 1 per code point, UTF-8 bytes per emoji code point
    (and per joiner or selector that follows one)."""
    total, in_emoji = 0, False
    for char in text:
        code = ord(char)
        if _is_emoji(code) or (in_emoji and code in _EMOJI_GLUE):
            total += len(char.encode("utf-8"))
            in_emoji = True
        else:
            total += 1
            in_emoji = False
    return total


def links(text: str | None, attachment: str | None = None) -> set[str]:
    """The unique links of a post: its text's and its link attachment."""
    found = set(URL.findall(text or ""))
    if attachment:
        found.add(attachment)
    return found


def check_text(text: str | None, has_media: bool, attachment: str | None,
               path: str) -> list[Issue]:
    where = f"{path}text"
    if (not text or not text.strip()) and not has_media:
        return [Issue(where, "Threads needs text or media: this post has neither",
                      code="required")]
    issues: list[Issue] = []
    size = count(text or "")
    if size > MAX_CHARACTERS:
        issues.append(Issue(where, f"text is {size} characters as Threads counts them "
                                   f"(an emoji counts its UTF-8 bytes); Threads allows "
                                   f"{MAX_CHARACTERS}", code="too_long"))
    found = links(text, attachment)
    if len(found) > MAX_LINKS:
        issues.append(Issue(where, f"the post has {len(found)} different links (text and "
                                   f"link attachment); Threads allows {MAX_LINKS}",
                            code="too_many_links"))
    return issues


def check_media(media: Sequence[MediaInfo], path: str) -> list[Issue]:
    if len(media) > CAROUSEL_MAX:
        return [Issue(f"{path}mediaUrls", f"a Threads carousel takes {CAROUSEL_MIN} to "
                                          f"{CAROUSEL_MAX} images or videos; this post has "
                                          f"{len(media)}", code="too_many_media")]
    issues: list[Issue] = []
    for index, info in enumerate(media):
        where = f"{path}mediaUrls[{index}]"
        issues += _video(info, where) if info.is_video else _image(info, where)
    return issues


def _ratio_issue(info: MediaInfo, where: str, low: float) -> list[Issue]:
    ratio = info.aspect_ratio
    if ratio is None or low <= ratio <= MAX_RATIO:
        return []
    return [Issue(where, f"the media is {info.width}x{info.height}; Threads takes aspect "
                         f"ratios from {low:g}:1 to 10:1", code="aspect_ratio")]


def _image(info: MediaInfo, where: str) -> list[Issue]:
    issues = []
    if info.format.upper() not in IMAGE_FORMATS or info.animated:
        issues.append(Issue(where, f"Threads takes JPEG or PNG images, not "
                                   f"{info.format}", code="format"))
    if info.size > IMAGE_MAX_BYTES:
        issues.append(Issue(where, f"image is {info.size / 1_048_576:.1f} MB; Threads "
                                   "allows 8 MB", code="too_large"))
    return issues + _ratio_issue(info, where, 1 / MAX_RATIO)


def _video(info: MediaInfo, where: str) -> list[Issue]:
    issues = []
    if info.format.upper() not in VIDEO_FORMATS:
        issues.append(Issue(where, f"Threads takes MP4 or MOV video, not {info.format}",
                            code="format"))
    if info.size > VIDEO_MAX_BYTES:
        issues.append(Issue(where, f"video is {info.size / 1_073_741_824:.2f} GB; Threads "
                                   "allows 1 GB", code="too_large"))
    if info.duration_s is not None and not 0 < info.duration_s <= VIDEO_MAX_S:
        issues.append(Issue(where, f"video lasts {info.duration_s:.1f} s; Threads takes "
                                   "up to 300 s", code="duration"))
    low, high = FRAME_RATES
    if info.frame_rate and not low - 0.5 <= info.frame_rate <= high + 0.5:
        issues.append(Issue(where, f"video runs at {info.frame_rate:g} fps; Threads takes "
                                   "23 to 60", code="frame_rate"))
    if info.width and info.width > VIDEO_MAX_WIDTH:
        issues.append(Issue(where, f"video is {info.width} px wide; Threads takes up to "
                                   f"{VIDEO_MAX_WIDTH}", code="dimensions"))
    return issues + _ratio_issue(info, where, 0.01)


def check_config(config: Mapping[str, Any], media: Sequence[MediaInfo]) -> list[Issue]:
    """What the declared types cannot say about ``platformConfig.threads``."""
    at = "platformConfig.threads."
    issues: list[Issue] = []
    topic = config.get("topicTag")
    if isinstance(topic, str) and (not 1 <= len(topic) <= TOPIC_MAX
                                   or "." in topic or "&" in topic):
        issues.append(Issue(f"{at}topicTag", "a topic tag is 1 to 50 characters without "
                                             "'.' or '&'", code="invalid"))
    link = config.get("linkAttachment")
    if isinstance(link, str):
        if not URL.fullmatch(link):
            issues.append(Issue(f"{at}linkAttachment", "linkAttachment is an http(s) URL",
                                code="invalid"))
        if media:
            issues.append(Issue(f"{at}linkAttachment", "Threads shows a link attachment "
                                                       "on text-only posts only",
                                code="media_conflict"))
    reply = config.get("replyToId")
    if isinstance(reply, str) and not _MEDIA_ID.match(reply):
        issues.append(Issue(f"{at}replyToId", "replyToId is the numeric id of a Threads "
                                              "post", code="invalid"))
    alt = config.get("altText")
    if alt is not None and not media:
        issues.append(Issue(f"{at}altText", "altText is ignored: the post has no media",
                            code="unused", severity="warning"))
    if isinstance(alt, list) and len(alt) > len(media):
        issues.append(Issue(f"{at}altText", f"altText has {len(alt)} texts for "
                                            f"{len(media)} media file(s)", code="too_many"))
    return issues


def alt_texts(config: Mapping[str, Any], count: int) -> list[str | None]:
    """The alt text of each of ``count`` media files (None where none was given)."""
    value = config.get("altText")
    if isinstance(value, str):
        return [value] * count
    given = list(value) if isinstance(value, list) else []
    return [given[i] if i < len(given) and given[i] else None for i in range(count)]
