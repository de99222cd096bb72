"""Mastodon's preflight rules: text counted the server's way, media, ``platformConfig.mastodon``.

Sources: platforms-more.md §2.2 (instance limits), §2.3 (counting), §2.4 (media), §2.5
(status fields). Everything judges inspected media only (no network).

The limits are the instance's: ``GET /api/v2/instance`` ``configuration``. Validation may
not use the network, so the limits come from, in order: what publishing last read from
the account's instance in this process (:func:`remember` / :func:`known_limits`), else
``CHAT33_MASTODON_MAX_CHARACTERS`` (an operator whose instance allows more), else
Mastodon's defaults (500 characters, 4 attachments, 16 MB images, 99 MB video).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import regex
from attrs import frozen

from chat33_core.errors import Issue
from chat33_core.media import GIF, VIDEO, MediaInfo

MAX_CHARACTERS = 500
MAX_ATTACHMENTS = 4
URL_CHARACTERS = 23
IMAGE_MAX_BYTES = 16_777_216
VIDEO_MAX_BYTES = 103_809_024
VIDEO_MATRIX_LIMIT = 8_294_400  # pixels of a frame (3840 x 2160)
VIDEO_FRAME_RATE_LIMIT = 120
DESCRIPTION_LIMIT = 1500
IMAGE_FORMATS = frozenset({"JPEG", "PNG", "GIF", "WEBP", "HEIF", "AVIF"})
VIDEO_FORMATS = frozenset({"MPEG-4", "QUICKTIME", "WEBM"})
VISIBILITIES = ("public", "unlisted", "private", "direct")
#: how long the limits read from an instance are trusted
LIMITS_TTL_S = 24 * 3600.0

#: a URL as Mastodon's entity extraction finds one: a scheme and everything up to a
#: space, without trailing punctuation (which ends a sentence, not the link)
_URL = re.compile(r"https?://[^\s<>\"]+[^\s<>\".,:;!?'()\[\]]", re.IGNORECASE)
#: ``@user@domain``: only ``@user`` counts (the domain of a remote account is free)
_MENTION = re.compile(r"(?<![\w/@])@(\w+(?:[.-]+\w+)*)@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")
_STATUS_ID = re.compile(r"^[0-9]{1,24}$")


@frozen
class InstanceLimits:
    """The limits of one instance (its ``/api/v2/instance`` configuration)."""

    max_characters: int = MAX_CHARACTERS
    max_attachments: int = MAX_ATTACHMENTS
    url_characters: int = URL_CHARACTERS
    image_max_bytes: int = IMAGE_MAX_BYTES
    video_max_bytes: int = VIDEO_MAX_BYTES
    video_matrix_limit: int = VIDEO_MATRIX_LIMIT
    video_frame_rate_limit: int = VIDEO_FRAME_RATE_LIMIT
    description_limit: int = DESCRIPTION_LIMIT


def limits_of_instance(body: Any) -> InstanceLimits:
    """The limits in a ``GET /api/v2/instance`` answer; a missing or odd value keeps the
    default (older servers lack ``description_limit``, forks add fields)."""
    def section(parent: Any, key: str) -> Mapping[str, Any]:
        value = parent.get(key) if isinstance(parent, Mapping) else None
        return value if isinstance(value, Mapping) else {}

    config = section(body, "configuration")
    statuses, media = section(config, "statuses"), section(config, "media_attachments")

    def number(section: Mapping[str, Any], key: str, default: int) -> int:
        value = section.get(key)
        return value if isinstance(value, int) and value > 0 else default

    return InstanceLimits(
        max_characters=number(statuses, "max_characters", MAX_CHARACTERS),
        max_attachments=number(statuses, "max_media_attachments", MAX_ATTACHMENTS),
        url_characters=number(statuses, "characters_reserved_per_url", URL_CHARACTERS),
        image_max_bytes=number(media, "image_size_limit", IMAGE_MAX_BYTES),
        video_max_bytes=number(media, "video_size_limit", VIDEO_MAX_BYTES),
        video_matrix_limit=number(media, "video_matrix_limit", VIDEO_MATRIX_LIMIT),
        video_frame_rate_limit=number(media, "video_frame_rate_limit", VIDEO_FRAME_RATE_LIMIT),
        description_limit=number(media, "description_limit", DESCRIPTION_LIMIT),
    )


# --- the limits publishing learned -------------------------------------------------------

_known: dict[str, tuple[float, InstanceLimits]] = {}
_known_lock = threading.Lock()


def remember(instance: str, limits: InstanceLimits, now: float | None = None) -> None:
    """Keep what publishing read from ``instance`` for the validation of later posts."""
    with _known_lock:
        _known[instance.rstrip("/")] = (time.time() if now is None else now, limits)


def known_limits(instance: str, now: float | None = None) -> InstanceLimits | None:
    """The limits read from ``instance`` within :data:`LIMITS_TTL_S`, or None."""
    with _known_lock:
        entry = _known.get(instance.rstrip("/"))
    if entry is None or (time.time() if now is None else now) - entry[0] > LIMITS_TTL_S:
        return None
    return entry[1]


def limits_for(instance: str, env: Mapping[str, str]) -> InstanceLimits:
    """The limits validation applies to a post for ``instance`` (see the module doc)."""
    known = known_limits(instance)
    if known is not None:
        return known
    try:
        configured = int(env.get("CHAT33_MASTODON_MAX_CHARACTERS") or 0)
    except ValueError:
        configured = 0
    return InstanceLimits(max_characters=configured) if configured > 0 else InstanceLimits()


# --- text --------------------------------------------------------------------------------


def countable(text: str, url_characters: int = URL_CHARACTERS) -> str:
    """``text`` as Mastodon's length check sees it: every URL replaced by
    ``url_characters`` placeholder characters, ``@user@domain`` by ``@user``."""
    text = _URL.sub("x" * url_characters, text)
    return _MENTION.sub(lambda match: "@" + match.group(1), text)


def count(text: str, spoiler_text: str = "", url_characters: int = URL_CHARACTERS) -> int:
    """The length Mastodon checks: extended grapheme clusters of ``spoiler_text + text``
    after :func:`countable`."""
    return len(regex.findall(r"\X", countable(spoiler_text + text, url_characters)))


def check_text(text: str | None, spoiler: str, has_media: bool, limits: InstanceLimits,
               path: str) -> list[Issue]:
    """Text required unless there is media; ``spoiler + text`` within the limit."""
    where = f"{path}text"
    if (not text or not text.strip()) and not has_media:
        return [Issue(where, "Mastodon needs text or media: this post has neither",
                      code="required")]
    size = count(text or "", spoiler, limits.url_characters)
    if size > limits.max_characters:
        with_spoiler = " (with the content warning)" if spoiler else ""
        return [Issue(where, f"text{with_spoiler} is {size} characters as Mastodon counts "
                             f"them (every link is {limits.url_characters}); the instance "
                             f"allows {limits.max_characters}", code="too_long")]
    return []


# --- media -------------------------------------------------------------------------------


def is_single(info: MediaInfo) -> bool:
    """Video, audio and animated GIFs (which Mastodon turns into video): one per status."""
    return info.kind == VIDEO or (info.kind == GIF and (info.animated or info.frames > 1))


def _mb(size: int) -> str:
    return f"{size / 1_048_576:.1f} MB"


def check_media(media: Sequence[MediaInfo], limits: InstanceLimits, path: str) -> list[Issue]:
    """Up to ``max_attachments`` images, or one video/audio/GIF alone; sizes and formats."""
    if not media:
        return []
    issues: list[Issue] = []
    singles = [m for m in media if is_single(m)]
    if singles and len(media) > 1:
        issues.append(Issue(f"{path}mediaUrls",
                            "a Mastodon post takes one video or animated GIF alone, or up to "
                            f"{limits.max_attachments} images: this post has {len(media)} "
                            f"files, {len(singles)} of them video/GIF", code="media_mix"))
    elif len(media) > limits.max_attachments:
        issues.append(Issue(f"{path}mediaUrls",
                            f"Mastodon takes up to {limits.max_attachments} images per post; "
                            f"this post has {len(media)}", code="too_many_media"))
    for index, info in enumerate(media):
        where = f"{path}mediaUrls[{index}]"
        issues.extend(_check_video(info, limits, where) if info.kind == VIDEO
                      else _check_image(info, limits, where))
    return issues


def _check_image(info: MediaInfo, limits: InstanceLimits, where: str) -> list[Issue]:
    issues = []
    if info.format.upper() not in IMAGE_FORMATS:
        issues.append(Issue(where, f"image format {info.format} is not taken by Mastodon "
                                   "(JPEG, PNG, GIF, WebP, HEIF, AVIF)", code="format"))
    if info.size > limits.image_max_bytes:
        issues.append(Issue(where, f"image is {_mb(info.size)}; the instance allows "
                                   f"{_mb(limits.image_max_bytes)}", code="too_large"))
    return issues


def _check_video(info: MediaInfo, limits: InstanceLimits, where: str) -> list[Issue]:
    issues = []
    if info.format.upper() not in VIDEO_FORMATS:
        issues.append(Issue(where, f"video container {info.format} is not taken by Mastodon "
                                   "(MP4, MOV, WebM)", code="format"))
    if info.size > limits.video_max_bytes:
        issues.append(Issue(where, f"video is {_mb(info.size)}; the instance allows "
                                   f"{_mb(limits.video_max_bytes)}", code="too_large"))
    if info.width and info.height and info.width * info.height > limits.video_matrix_limit:
        issues.append(Issue(where, f"video is {info.width}x{info.height}; the instance "
                                   f"allows {limits.video_matrix_limit} pixels a frame",
                            code="dimensions"))
    if info.frame_rate and info.frame_rate > limits.video_frame_rate_limit:
        issues.append(Issue(where, f"video runs at {info.frame_rate:g} fps; the instance "
                                   f"allows {limits.video_frame_rate_limit}",
                            code="frame_rate"))
    return issues


# --- platformConfig.mastodon -------------------------------------------------------------

Checker = Callable[[Any, Sequence[MediaInfo], InstanceLimits, str], list[Issue]]


def _visibility(value: Any, media: Sequence[MediaInfo], limits: InstanceLimits,
                where: str) -> list[Issue]:
    if value not in VISIBILITIES:
        return [Issue(where, f"visibility is one of {', '.join(VISIBILITIES)}; got {value!r}")]
    return []


def _spoiler_text(value: Any, media: Sequence[MediaInfo], limits: InstanceLimits,
                  where: str) -> list[Issue]:
    return [] if isinstance(value, str) else [Issue(where, "spoilerText is text")]


def _sensitive(value: Any, media: Sequence[MediaInfo], limits: InstanceLimits,
               where: str) -> list[Issue]:
    return [] if isinstance(value, bool) else [Issue(where, "sensitive is true or false")]


def _language(value: Any, media: Sequence[MediaInfo], limits: InstanceLimits,
              where: str) -> list[Issue]:
    if not isinstance(value, str) or not _LANGUAGE.match(value):
        return [Issue(where, f"language is an ISO 639 code such as \"en\"; got {value!r}")]
    return []


def _alt_text(value: Any, media: Sequence[MediaInfo], limits: InstanceLimits,
              where: str) -> list[Issue]:
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        return [Issue(where, "altText is a text for every media file, or a list of texts "
                             "in the order of mediaUrls")]
    if not media:
        return [Issue(where, "altText is ignored: the post has no media", code="unused",
                      severity="warning")]
    if isinstance(value, list) and len(value) > len(media):
        return [Issue(where, f"altText has {len(value)} texts for {len(media)} media file(s)",
                      code="too_many")]
    issues = []
    for index, text in enumerate(texts):
        size = len(regex.findall(r"\X", text))
        if size > limits.description_limit:
            at = where if isinstance(value, str) else f"{where}[{index}]"
            issues.append(Issue(at, f"alt text is {size} characters; the instance allows "
                                    f"{limits.description_limit}", code="too_long"))
    return issues


def _in_reply_to_id(value: Any, media: Sequence[MediaInfo], limits: InstanceLimits,
                    where: str) -> list[Issue]:
    if not isinstance(value, str) or not _STATUS_ID.match(value):
        return [Issue(where, "inReplyToId is the id of a status on the account's instance "
                             "(digits, as in its URL)")]
    return []


#: every key of ``platformConfig.mastodon``: its check, and a line for the documentation
OPTIONS: Mapping[str, tuple[Checker, str]] = {
    "visibility": (_visibility, "public (default), unlisted, private (followers only) or "
                                "direct"),
    "spoilerText": (_spoiler_text, "a content warning shown before the text of every "
                                   "status of the post; it counts towards the length"),
    "sensitive": (_sensitive, "hide the media behind a warning"),
    "language": (_language, "the ISO 639 language of the text (\"en\")"),
    "altText": (_alt_text, "alt text: one text for every media file, or a list in the "
                           "order of mediaUrls (the first status's media)"),
    "inReplyToId": (_in_reply_to_id, "the id of a status on the same instance to answer; "
                                     "the post (and its thread) follow it"),
}


def check_config(config: Mapping[str, Any], media: Sequence[MediaInfo],
                 limits: InstanceLimits) -> list[Issue]:
    issues: list[Issue] = []
    for key, (check, _doc) in OPTIONS.items():
        if key in config and config[key] is not None:
            issues.extend(check(config[key], media, limits, f"platformConfig.mastodon.{key}"))
    return issues


def spoiler_of(config: Mapping[str, Any]) -> str:
    value = config.get("spoilerText")
    return value if isinstance(value, str) else ""


def alt_texts(config: Mapping[str, Any], count: int) -> list[str]:
    """The alt text of each of ``count`` media files ("" where none was given)."""
    value = config.get("altText")
    if isinstance(value, str):
        return [value] * count
    given = [t for t in value if isinstance(t, str)] if isinstance(value, list) else []
    return [given[i] if i < len(given) else "" for i in range(count)]

