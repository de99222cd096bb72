"""Bluesky's preflight rules: text in graphemes and bytes, media, ``platformConfig.bluesky``.

Everything judges a :class:`~chat33_core.platforms.PostDraft` (inspected media, no
network); each issue names the limit and the measured value. Sources: platforms-more.md
§1.4 (record), §1.6 (images, link cards), §1.7 (video), §1.8 (replies).

Where the reference marks a number as uncertain, the reading chosen is:

* image blobs: 2,000,000 bytes (the lexicon since 2026-04); ``CHAT33_BLUESKY_IMAGE_MAX_BYTES``
  lowers it to the 1,000,000 that older documentation gives;
* video duration: 180 s (3 min, secondary sources); ``CHAT33_BLUESKY_VIDEO_MAX_DURATION_S``
  changes it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from attrs import frozen

from chat33_core.errors import Issue
from chat33_core.media import GIF, IMAGE, VIDEO, MediaInfo

from .richtext import graphemes, utf8_length

TEXT_MAX_GRAPHEMES = 300
TEXT_MAX_BYTES = 3000
MAX_IMAGES = 4
IMAGE_MAX_BYTES = 2_000_000
THUMB_MAX_BYTES = 1_000_000
IMAGE_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "GIF"})
VIDEO_FORMATS = frozenset({"MPEG-4"})
VIDEO_MAX_BYTES = 300_000_000
VIDEO_MAX_DURATION_S = 180.0
VIDEO_ALT_MAX_GRAPHEMES = 1000
MAX_LANGS = 3

_LANG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
_AT_POST = re.compile(r"^at://(did:[a-z]+:[A-Za-z0-9._:%-]+|[A-Za-z0-9.-]+)"
                      r"/app\.bsky\.feed\.post/([A-Za-z0-9._~:-]{1,512})$")
_WEB_POST = re.compile(r"^https://bsky\.app/profile/([^/]+)/post/([A-Za-z0-9._~:-]{1,512})/?$")


@frozen
class Limits:
    """The limits that configuration may change."""

    image_max_bytes: int = IMAGE_MAX_BYTES
    video_max_duration_s: float = VIDEO_MAX_DURATION_S


def limits_from(env: Mapping[str, str]) -> Limits:
    def number(key: str, default: float) -> float:
        try:
            value = float(env.get(f"CHAT33_BLUESKY_{key}") or default)
        except ValueError:
            return default
        return value if value > 0 else default

    return Limits(image_max_bytes=int(number("IMAGE_MAX_BYTES", IMAGE_MAX_BYTES)),
                  video_max_duration_s=number("VIDEO_MAX_DURATION_S", VIDEO_MAX_DURATION_S))


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.2f} MB"


# --- text ------------------------------------------------------------------------------


def check_text(text: str | None, has_embed: bool, path: str) -> list[Issue]:
    """300 graphemes and 3,000 UTF-8 bytes; empty text only with media or a link card."""
    where = f"{path}text"
    if not text or not text.strip():
        if has_embed:
            return []
        return [Issue(where, "Bluesky needs text, media or a link card: this post has none",
                      code="required")]
    try:
        size = utf8_length(text)
    except UnicodeEncodeError:
        return [Issue(where, "text contains unpaired surrogates, which are not Unicode "
                             "text", code="invalid")]
    issues = []
    count = graphemes(text)
    if count > TEXT_MAX_GRAPHEMES:
        issues.append(Issue(where, f"text is {count} graphemes (user-perceived characters); "
                                   f"Bluesky allows {TEXT_MAX_GRAPHEMES}", code="too_long"))
    if size > TEXT_MAX_BYTES:
        issues.append(Issue(where, f"text is {size} bytes in UTF-8; Bluesky allows "
                                   f"{TEXT_MAX_BYTES}", code="too_long"))
    return issues


# --- media -----------------------------------------------------------------------------


def check_media(media: Sequence[MediaInfo], limits: Limits, path: str) -> list[Issue]:
    """Up to 4 images, or 1 video; never both."""
    if not media:
        return []
    issues: list[Issue] = []
    videos = [m for m in media if m.kind == VIDEO]
    images = [m for m in media if m.kind in (IMAGE, GIF)]
    if videos and images:
        issues.append(Issue(f"{path}mediaUrls",
                            f"Bluesky takes up to {MAX_IMAGES} images or 1 video per post, not "
                            f"both: this post has {len(images)} image(s) and {len(videos)} "
                            "video(s)", code="media_mix"))
    elif len(videos) > 1:
        issues.append(Issue(f"{path}mediaUrls", f"Bluesky takes 1 video per post; this post "
                                                f"has {len(videos)}", code="too_many_media"))
    elif len(images) > MAX_IMAGES:
        issues.append(Issue(f"{path}mediaUrls", f"Bluesky takes up to {MAX_IMAGES} images per "
                                                f"post; this post has {len(images)}",
                            code="too_many_media"))
    for index, info in enumerate(media):
        where = f"{path}mediaUrls[{index}]"
        if info.kind == VIDEO:
            issues.extend(_check_video(info, limits, where))
        else:
            issues.extend(_check_image(info, limits.image_max_bytes, where))
    return issues


def _check_image(info: MediaInfo, max_bytes: int, where: str) -> list[Issue]:
    issues = []
    if info.format.upper() not in IMAGE_FORMATS:
        issues.append(Issue(where, f"image format {info.format} is not shown by Bluesky "
                                   "(JPEG, PNG, WebP or GIF)", code="format"))
    if info.size > max_bytes:
        issues.append(Issue(where, f"image is {_mb(info.size)} ({info.size} bytes); Bluesky "
                                   f"allows {_mb(max_bytes)} per image", code="too_large"))
    if info.kind == GIF and (info.animated or info.frames > 1):
        issues.append(Issue(where, "Bluesky shows an animated GIF as a still image; post it "
                                   "as an MP4 video to keep it moving", code="animated_gif",
                            severity="warning"))
    return issues


def _check_video(info: MediaInfo, limits: Limits, where: str) -> list[Issue]:
    issues = []
    if info.format.upper() not in VIDEO_FORMATS:
        issues.append(Issue(where, f"video container {info.format} is not accepted by "
                                   "Bluesky (MP4)", code="format"))
    if info.size > VIDEO_MAX_BYTES:
        issues.append(Issue(where, f"video is {_mb(info.size)}; Bluesky allows "
                                   f"{_mb(VIDEO_MAX_BYTES)}", code="too_large"))
    if info.duration_s is not None and info.duration_s > limits.video_max_duration_s:
        issues.append(Issue(where, f"video lasts {info.duration_s:.1f} s; Bluesky allows "
                                   f"{limits.video_max_duration_s:g} s", code="duration"))
    return issues


# --- platformConfig.bluesky -------------------------------------------------------------

Checker = Callable[[Any, "Draft", str], list[Issue]]


@frozen
class Draft:
    """What the option checks need to know about the post."""

    media: Sequence[MediaInfo]
    cover_image: MediaInfo | None


def _alt_text(value: Any, draft: Draft, where: str) -> list[Issue]:
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        return [Issue(where, "altText is a text for every media file, or a list of texts "
                             "in the order of mediaUrls")]
    if not draft.media:
        return [Issue(where, "altText is ignored: the post has no media", code="unused",
                      severity="warning")]
    if isinstance(value, list) and len(value) > len(draft.media):
        return [Issue(where, f"altText has {len(value)} texts for {len(draft.media)} media "
                             "file(s)", code="too_many")]
    issues = []
    for index, text in enumerate(texts):
        info = draft.media[min(index, len(draft.media) - 1)]
        count = graphemes(text)
        if info.kind == VIDEO and count > VIDEO_ALT_MAX_GRAPHEMES:
            at = where if isinstance(value, str) else f"{where}[{index}]"
            issues.append(Issue(at, f"video alt text is {count} graphemes; Bluesky allows "
                                    f"{VIDEO_ALT_MAX_GRAPHEMES}", code="too_long"))
    return issues


def _langs(value: Any, draft: Draft, where: str) -> list[Issue]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return [Issue(where, "langs is a list of language tags such as [\"en\", \"pt-BR\"]")]
    if len(value) > MAX_LANGS:
        return [Issue(where, f"Bluesky takes up to {MAX_LANGS} languages; got {len(value)}",
                      code="too_many")]
    return [Issue(f"{where}[{i}]", f"{v!r} is not a language tag (BCP 47, e.g. \"en\")")
            for i, v in enumerate(value) if not _LANG.match(v)]


def _link_card(value: Any, draft: Draft, where: str) -> list[Issue]:
    if not isinstance(value, Mapping):
        return [Issue(where, "linkCard is an object {uri, title, description}")]
    issues = [Issue(f"{where}.{key}", f"unknown linkCard field {key!r} (uri, title, "
                                      "description)", code="unknown")
              for key in sorted(set(value) - {"uri", "title", "description"})]
    uri = value.get("uri")
    if not isinstance(uri, str) or not uri.startswith(("https://", "http://")):
        issues.append(Issue(f"{where}.uri", "linkCard.uri is the http(s) URL the card opens"))
    for key in ("title", "description"):
        if not isinstance(value.get(key, ""), str):
            issues.append(Issue(f"{where}.{key}", f"linkCard.{key} is text"))
    if draft.media:
        issues.append(Issue(where, "a Bluesky post has one embed: media or a link card, not "
                                   "both", code="conflict"))
    cover = draft.cover_image
    if cover is not None and (not cover.is_image or cover.size > THUMB_MAX_BYTES):
        issues.append(Issue("coverImageUrl", f"the link card's thumbnail (coverImageUrl) must "
                                             f"be an image of at most {_mb(THUMB_MAX_BYTES)}",
                            code="too_large"))
    return issues


def _reply_to(value: Any, draft: Draft, where: str) -> list[Issue]:
    if not isinstance(value, str) or parse_post_ref(value) is None:
        return [Issue(where, "replyTo is the at:// URI of a Bluesky post "
                             "(at://did/app.bsky.feed.post/rkey) or its bsky.app link")]
    return []


#: every key of ``platformConfig.bluesky``: its check, and a line for the documentation
OPTIONS: Mapping[str, tuple[Checker, str]] = {
    "altText": (_alt_text, "alt text: one text for every media file, or a list in the "
                           "order of mediaUrls (the post's own media)"),
    "langs": (_langs, "up to 3 language tags of the text (default: none sent)"),
    "linkCard": (_link_card, "an external link card {uri, title, description}; its "
                             "thumbnail is coverImageUrl (an image up to 1 MB)"),
    "replyTo": (_reply_to, "the at:// URI or bsky.app link of a post to answer; the post "
                           "(and its thread) become replies in that thread"),
}


def check_config(config: Mapping[str, Any], draft: Draft) -> list[Issue]:
    issues: list[Issue] = []
    for key, (check, _doc) in OPTIONS.items():
        if key in config and config[key] is not None:
            issues.extend(check(config[key], draft, f"platformConfig.bluesky.{key}"))
    if draft.cover_image is not None and not config.get("linkCard"):
        issues.append(Issue("coverImageUrl", "ignored on Bluesky except as the thumbnail of "
                                             "a linkCard", code="unused", severity="warning"))
    return issues


def alt_texts(config: Mapping[str, Any], count: int) -> list[str]:
    """The alt text of each of ``count`` media files ("" where none was given)."""
    value = config.get("altText")
    if isinstance(value, str):
        return [value] * count
    given = [t for t in value if isinstance(t, str)] if isinstance(value, list) else []
    return [given[i] if i < len(given) else "" for i in range(count)]


def parse_post_ref(value: str) -> tuple[str, str] | None:
    """``(repo, rkey)`` of a post's at:// URI or bsky.app link; repo is a DID or handle."""
    match = _AT_POST.match(value) or _WEB_POST.match(value)
    return (match.group(1), match.group(2)) if match else None
