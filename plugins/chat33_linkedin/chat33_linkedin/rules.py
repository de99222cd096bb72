"""LinkedIn's preflight rules: commentary length and escaping, media, options
(platforms-more.md §4.2-4.4). Everything judges inspected media only (no network).

Counting unit: the reference marks the organic limit and its unit uncertain ([?]). chat33
counts the commentary **as sent** — after :func:`escape` adds its backslashes — in
**UTF-16 code units** (LinkedIn's services are Java, whose strings count that way). Both
choices can only over-count compared with any other reading, so a post chat33 accepts is
never cut or refused for its length.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from chat33_core.errors import Issue
from chat33_core.media import GIF, VIDEO, MediaInfo

MAX_CHARACTERS = 3000
MAX_IMAGES = 20
#: the characters of LinkedIn's "little text" format, escaped with a backslash to be
#: plain text (an unescaped one silently truncates the post there)
RESERVED = frozenset("\\|{}@[]()<>#*_~")
IMAGE_FORMATS = frozenset({"JPEG", "PNG", "GIF"})
IMAGE_MAX_PIXELS = 36_152_320
GIF_MAX_FRAMES = 250
#: LinkedIn publishes no byte limit for images; documents (the largest other kind) take
#: 100 MB, used as the cap
IMAGE_MAX_BYTES = 100 * 1_048_576
VIDEO_FORMATS = frozenset({"MPEG-4"})
VIDEO_MIN_BYTES = 75 * 1024
VIDEO_MAX_BYTES = 500 * 1_048_576
VIDEO_MIN_S = 3.0
VIDEO_MAX_S = 30 * 60.0
ALT_TEXT_MAX = 4086
VISIBILITIES = ("PUBLIC", "CONNECTIONS")
FEED_DISTRIBUTIONS = ("MAIN_FEED", "NONE")


def escape(text: str) -> str:
    """``text`` as little-text plain text: every reserved character backslashed."""
    return "".join("\\" + ch if ch in RESERVED else ch for ch in text)


def count(text: str) -> int:
    """The length chat33 checks: UTF-16 code units of the escaped commentary."""
    return len(escape(text).encode("utf-16-le")) // 2


def check_text(text: str | None, has_media: bool, path: str) -> list[Issue]:
    where = f"{path}text"
    if (not text or not text.strip()) and not has_media:
        return [Issue(where, "LinkedIn needs text or media: this post has neither",
                      code="required")]
    size = count(text or "")
    if size > MAX_CHARACTERS:
        return [Issue(where, f"text is {size} characters as sent to LinkedIn (UTF-16 units, "
                             f"reserved characters escaped with a backslash); LinkedIn "
                             f"allows {MAX_CHARACTERS}", code="too_long")]
    return []


def _mb(size: int) -> str:
    return f"{size / 1_048_576:.1f} MB"


def check_media(media: Sequence[MediaInfo], path: str) -> list[Issue]:
    """One video alone, or 1-20 images (2 or more become a MultiImage post)."""
    if not media:
        return []
    issues: list[Issue] = []
    videos = [m for m in media if m.kind == VIDEO]
    if videos and len(media) > 1:
        issues.append(Issue(f"{path}mediaUrls", "a LinkedIn post takes one video alone, or "
                            f"up to {MAX_IMAGES} images: this post has {len(media)} files, "
                            f"{len(videos)} of them video", code="media_mix"))
    elif len(media) > MAX_IMAGES:
        issues.append(Issue(f"{path}mediaUrls", f"LinkedIn takes up to {MAX_IMAGES} images "
                            f"per post; this post has {len(media)}", code="too_many_media"))
    for index, info in enumerate(media):
        where = f"{path}mediaUrls[{index}]"
        issues += _video(info, where) if info.kind == VIDEO else _image(info, where)
    return issues


def _image(info: MediaInfo, where: str) -> list[Issue]:
    issues = []
    if info.format.upper() not in IMAGE_FORMATS:
        issues.append(Issue(where, f"image format {info.format} is not taken by LinkedIn "
                                   "(JPEG, PNG, GIF)", code="format"))
    if info.width and info.height and info.width * info.height >= IMAGE_MAX_PIXELS:
        issues.append(Issue(where, f"image is {info.width}x{info.height}; LinkedIn takes "
                                   f"fewer than {IMAGE_MAX_PIXELS} pixels", code="dimensions"))
    if info.kind == GIF and info.frames > GIF_MAX_FRAMES:
        issues.append(Issue(where, f"GIF has {info.frames} frames; LinkedIn takes up to "
                                   f"{GIF_MAX_FRAMES}", code="frames"))
    if info.size > IMAGE_MAX_BYTES:
        issues.append(Issue(where, f"image is {_mb(info.size)}; chat33 sends LinkedIn up to "
                                   f"{_mb(IMAGE_MAX_BYTES)}", code="too_large"))
    return issues


def _video(info: MediaInfo, where: str) -> list[Issue]:
    issues = []
    if info.format.upper() not in VIDEO_FORMATS:
        issues.append(Issue(where, f"video container {info.format} is not taken by LinkedIn "
                                   "(MP4)", code="format"))
    if info.size > VIDEO_MAX_BYTES:
        issues.append(Issue(where, f"video is {_mb(info.size)}; LinkedIn takes up to "
                                   f"{_mb(VIDEO_MAX_BYTES)}", code="too_large"))
    if info.size < VIDEO_MIN_BYTES:
        issues.append(Issue(where, f"video is {info.size} bytes; LinkedIn takes at least "
                                   f"{VIDEO_MIN_BYTES // 1024} KB", code="too_small"))
    duration = info.duration_s
    if duration is not None and not VIDEO_MIN_S <= duration <= VIDEO_MAX_S:
        issues.append(Issue(where, f"video lasts {duration:.1f} s; LinkedIn takes 3 s to "
                                   "30 minutes", code="duration"))
    return issues


def check_config(config: Mapping[str, Any], media: Sequence[MediaInfo]) -> list[Issue]:
    """What the declared types cannot say: alt text against the media and its length."""
    value = config.get("altText")
    if value is None:
        return []
    where = "platformConfig.linkedin.altText"
    texts = [value] if isinstance(value, str) else list(value)
    if not media or any(m.kind == VIDEO for m in media):
        return [Issue(where, "altText is for images: this post has none", code="unused",
                      severity="warning")]
    issues = []
    if isinstance(value, list) and len(value) > len(media):
        issues.append(Issue(where, f"altText has {len(value)} texts for {len(media)} "
                                   "image(s)", code="too_many"))
    for index, text in enumerate(texts):
        if isinstance(text, str) and len(text) > ALT_TEXT_MAX:
            at = where if isinstance(value, str) else f"{where}[{index}]"
            issues.append(Issue(at, f"alt text is {len(text)} characters; LinkedIn allows "
                                    f"{ALT_TEXT_MAX}", code="too_long"))
    return issues


def alt_texts(config: Mapping[str, Any], count: int) -> list[str]:
    """The alt text of each of ``count`` images ("" where none was given)."""
    value = config.get("altText")
    if isinstance(value, str):
        return [value] * count
    given = [t for t in value if isinstance(t, str)] if isinstance(value, list) else []
    return [given[i] if i < len(given) else "" for i in range(count)]
