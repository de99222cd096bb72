"""YouTube's metadata rules (platforms.md §4.2, §4.3, §4.6), shared by validation,
publishing and the sandbox so all three agree on what a valid video resource is.

Everything here is pure: no network, no clock except where a caller passes ``now``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from chat33_core.errors import Issue
from chat33_core.media import MediaInfo
from chat33_core.models import MediaType
from chat33_core.options import Option

TITLE_MAX = 100
DESCRIPTION_MAX_BYTES = 5000
TAGS_MAX = 500
PRIVACY = ("public", "unlisted", "private")
LICENSES = ("youtube", "creativeCommon")
#: thumbnails.set: JPEG or PNG, at most 50 MB (it was 2 MB before 2026-09-14)
THUMBNAIL_FORMATS = ("JPEG", "PNG")
THUMBNAIL_MAX_BYTES = 50 * 1024 * 1024
VIDEO_MAX_BYTES = 256 * 1024**3
VIDEO_MAX_S = 12 * 3600
#: longer videos need a verified channel
UNVERIFIED_MAX_S = 15 * 60
#: Shorts: up to 3 minutes, square or vertical (classified by YouTube, no API flag)
SHORTS_MAX_S = 180.0

#: platformConfig.youtube: the video resource's settable fields, plus the upload's
#: notifySubscribers parameter
OPTIONS = (
    Option("title", "string", f"The video's title (up to {TITLE_MAX} characters, no < or >); "
           "the text's first line when absent"),
    Option("privacyStatus", "string", "Who can watch; private when only publishAt is set",
           choices=PRIVACY, default="public"),
    Option("publishAt", "string", "An ISO 8601 instant with a UTC offset when YouTube makes "
           "the private video public"),
    Option("categoryId", ("string", "integer"), "A numeric video category id such as \"22\""),
    Option("tags", "array", f"Keywords, at most {TAGS_MAX} characters as YouTube counts them",
           items=Option("tag", "string", "")),
    Option("defaultLanguage", "string", "The language of the title and description, such as "
           "\"en\""),
    Option("defaultAudioLanguage", "string", "The language spoken in the video, such as "
           "\"en\""),
    Option("selfDeclaredMadeForKids", "boolean", "Whether the video is made for kids (no "
           "silent default: YouTube requires the answer)", required=True),
    Option("containsSyntheticMedia", "boolean", "The video has realistic altered or "
           "synthetic content"),
    Option("embeddable", "boolean", "Other sites may embed the video"),
    Option("license", "string", "The video's licence", choices=LICENSES),
    Option("publicStatsViewable", "boolean", "The watch page shows the view statistics"),
    Option("notifySubscribers", "boolean", "Tell the channel's subscribers about the video",
           default=True),
)

_SPACE = re.compile(r"\s+")


def first_line_title(text: str | None, limit: int = TITLE_MAX) -> str | None:
    """The title YouTube would get from ``text`` when none is configured: its first line
    with text in it, ``<``/``>`` removed, whitespace collapsed, cut on a word boundary to
    at most ``limit`` characters (a single longer word is cut hard). ``None`` if the text
    has nothing usable."""
    for raw in (text or "").splitlines():
        line = _SPACE.sub(" ", raw.replace("<", " ").replace(">", " ")).strip()
        if not line:
            continue
        if len(line) <= limit:
            return line
        cut = line[:limit + 1].rsplit(" ", 1)[0].rstrip() if " " in line[:limit + 1] else ""
        return cut or line[:limit]
    return None


def tags_length(tags: Iterable[str]) -> int:
    """Tags as YouTube counts them against its 500 characters: the commas between
    tags count, and a tag with a space counts as if quoted (``Foo Baz`` is 9)."""
    items = list(tags)
    total = sum(len(tag) + (2 if " " in tag else 0) for tag in items)
    return total + max(0, len(items) - 1)


def is_short(info: MediaInfo | None) -> bool:
    """Whether YouTube will class the video as a Short (≤ 3 min, square or vertical)."""
    if info is None or info.duration_s is None or not info.width or not info.height:
        return False
    return info.duration_s <= SHORTS_MAX_S and info.width <= info.height


def parse_publish_at(value: Any) -> datetime | None:
    """``publishAt`` as an aware datetime, or ``None`` when it is not ISO 8601 with an
    offset (YouTube needs an instant, not a local time)."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def privacy_of(config: Mapping[str, Any]) -> str:
    """The privacy the video gets: as configured; private when only ``publishAt`` is set
    (YouTube schedules private videos only); else public."""
    value = config.get("privacyStatus")
    if isinstance(value, str) and value:
        return value
    return "private" if config.get("publishAt") else "public"


def video_resource(config: Mapping[str, Any], text: str | None) -> dict[str, Any]:
    """The JSON video resource sent when the upload session starts."""
    title = config.get("title")
    if not (isinstance(title, str) and title.strip()):
        title = first_line_title(text)
    snippet: dict[str, Any] = {"title": title, "description": text or ""}
    tags = config.get("tags")
    if tags:
        snippet["tags"] = list(tags)
    if config.get("categoryId") is not None:
        snippet["categoryId"] = str(config["categoryId"])
    for key in ("defaultLanguage", "defaultAudioLanguage"):
        if config.get(key):
            snippet[key] = config[key]
    status: dict[str, Any] = {"privacyStatus": privacy_of(config)}
    if config.get("publishAt"):
        status["publishAt"] = config["publishAt"]
    for key in ("selfDeclaredMadeForKids", "containsSyntheticMedia", "embeddable",
                "publicStatsViewable", "license"):
        if config.get(key) is not None:
            status[key] = config[key]
    return {"snippet": snippet, "status": status}


def config_of(platform_config: Mapping[str, Any]) -> Mapping[str, Any]:
    value = platform_config.get("youtube") or {}
    return value if isinstance(value, Mapping) else {}


# --- validation ------------------------------------------------------------------------


def check(text: str | None, media_type: MediaType | None, media: Sequence[MediaInfo],
          config: Mapping[str, Any], cover: MediaInfo | None = None,
          now: datetime | None = None, prefix: str = "") -> list[Issue]:
    """Every issue YouTube has with a post. Paths point into the request."""
    issues: list[Issue] = []
    cfg = f"{prefix}platformConfig.youtube."
    issues += _check_media(media_type, media, prefix)
    issues += _check_title(config.get("title"), text, cfg + "title", prefix)
    issues += _check_description(text, prefix + "text")
    issues += _check_tags(config.get("tags"), cfg + "tags")
    issues += _check_status(config, cfg, now)
    issues += _check_thumbnail(cover, prefix + "coverImageUrl")
    return issues


def _check_media(media_type: MediaType | None, media: Sequence[MediaInfo],
                 prefix: str) -> list[Issue]:
    issues: list[Issue] = []
    if media_type is not None and media_type != MediaType.VIDEO:
        issues.append(Issue(prefix + "mediaType", f"YouTube takes mediaType video, "
                                                  f"not {media_type.value}", "unsupported"))
    if not media:
        issues.append(Issue(prefix + "mediaUrls", "YouTube needs a video: no media given",
                            "required"))
        return issues
    if len(media) > 1:
        issues.append(Issue(prefix + "mediaUrls", f"YouTube takes one video per post, got "
                                                  f"{len(media)} files", "too_many"))
    for i, info in enumerate(media):
        path = f"{prefix}mediaUrls[{i}]"
        if not info.is_video:
            issues.append(Issue(path, f"YouTube takes videos only; this is a "
                                      f"{info.format} {info.kind}", "unsupported"))
            continue
        if info.size > VIDEO_MAX_BYTES:
            issues.append(Issue(path, f"video of {info.size:,} bytes is over YouTube's "
                                      f"{VIDEO_MAX_BYTES:,}-byte limit", "too_large"))
        if info.duration_s is not None and info.duration_s > VIDEO_MAX_S:
            issues.append(Issue(path, f"video of {info.duration_s:.0f} s is over YouTube's "
                                      f"12 h limit ({VIDEO_MAX_S} s)", "too_long"))
        elif info.duration_s is not None and info.duration_s > UNVERIFIED_MAX_S:
            issues.append(Issue(path, f"video of {info.duration_s:.0f} s is over 15 minutes: "
                                      "the channel must be verified", "verification",
                                "warning"))
        if is_short(info):
            issues.append(Issue(path, f"YouTube will class this video as a Short "
                                      f"({info.duration_s:g} s ≤ {SHORTS_MAX_S:g} s, "
                                      f"{info.width}x{info.height} is square or vertical)",
                                "shorts", "warning"))
    return issues


def _check_title(title: Any, text: str | None, path: str, prefix: str) -> list[Issue]:
    if title is None:
        fallback = first_line_title(text)
        if fallback is None:
            return [Issue(path, "a title is required (and the text has no line to take it "
                                "from)", "required")]
        return [Issue(path, f"no title given: the first line of the text is used, "
                            f"{fallback!r} ({len(fallback)} characters)", "title_fallback",
                      "warning")]
    issues: list[Issue] = []
    if not title.strip():
        issues.append(Issue(path, "must not be empty", "required"))
    if len(title) > TITLE_MAX:
        issues.append(Issue(path, f"title of {len(title)} characters is over YouTube's "
                                  f"limit of {TITLE_MAX}", "too_long"))
    if "<" in title or ">" in title:
        issues.append(Issue(path, "YouTube refuses < and > in titles", "invalid"))
    return issues


def _check_description(text: str | None, path: str) -> list[Issue]:
    if not text:
        return []
    issues: list[Issue] = []
    size = len(text.encode("utf-8"))
    if size > DESCRIPTION_MAX_BYTES:
        issues.append(Issue(path, f"description of {size:,} bytes (UTF-8) is over YouTube's "
                                  f"limit of {DESCRIPTION_MAX_BYTES:,} bytes", "too_long"))
    if "<" in text or ">" in text:
        issues.append(Issue(path, "YouTube refuses < and > in descriptions", "invalid"))
    return issues


def _check_tags(tags: Any, path: str) -> list[Issue]:
    if tags is None:
        return []
    issues: list[Issue] = []
    for i, tag in enumerate(tags):
        if not tag.strip():
            issues.append(Issue(f"{path}[{i}]", "must not be empty", "invalid"))
        if "<" in tag or ">" in tag:
            issues.append(Issue(f"{path}[{i}]", "YouTube refuses < and > in tags", "invalid"))
    length = tags_length(tags)
    if length > TAGS_MAX:
        issues.append(Issue(path, f"tags count {length} characters as YouTube counts them "
                                  f"(commas, quotes around tags with spaces), over the "
                                  f"limit of {TAGS_MAX}", "too_long"))
    return issues


def _check_status(config: Mapping[str, Any], cfg: str, now: datetime | None) -> list[Issue]:
    """publishAt and categoryId beyond their declared types (:data:`OPTIONS`)."""
    issues: list[Issue] = []
    publish_at = config.get("publishAt")
    if publish_at is not None:
        when = parse_publish_at(publish_at)
        if when is None:
            issues.append(Issue(cfg + "publishAt", f"{publish_at!r} is not an ISO 8601 "
                                                   "instant with a UTC offset", "invalid"))
        elif now is not None and when <= now:
            issues.append(Issue(cfg + "publishAt", "is in the past: YouTube makes the video "
                                                   "public at once", "past", "warning"))
        if privacy_of(config) != "private":
            issues.append(Issue(cfg + "publishAt", f"publishAt needs privacyStatus private "
                                                   f"(got {privacy_of(config)})", "invalid"))
    category = config.get("categoryId")
    if isinstance(category, str) and not (category.isascii() and category.isdigit()):
        issues.append(Issue(cfg + "categoryId", f"{category!r} is not a numeric category id "
                                                "such as \"22\"", "invalid"))
    return issues


def _check_thumbnail(cover: MediaInfo | None, path: str) -> list[Issue]:
    if cover is None:
        return []
    issues: list[Issue] = []
    if cover.format.upper() not in THUMBNAIL_FORMATS or cover.kind != "image":
        issues.append(Issue(path, f"the thumbnail must be JPEG or PNG, not {cover.format}",
                            "unsupported"))
    if cover.size > THUMBNAIL_MAX_BYTES:
        issues.append(Issue(path, f"thumbnail of {cover.size:,} bytes is over YouTube's "
                                  f"{THUMBNAIL_MAX_BYTES:,}-byte limit", "too_large"))
    return issues
