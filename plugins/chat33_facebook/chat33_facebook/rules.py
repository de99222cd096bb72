"""Facebook Pages preflight rules: judged on inspected media facts, never on the network.

Several of Facebook's limits are not confirmed by Meta (see platforms.md §2.5): the post
text length, the photo size, the photo count per post and the video size and length.
Those are read from the environment (``CHAT33_FACEBOOK_<NAME>``) with the widely quoted
figures as defaults, so an operator can follow Meta without a release.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
from attrs import frozen

from chat33_core.config import Settings
from chat33_core.errors import Issue
from chat33_core.media import MediaInfo
from chat33_core.models import MediaType
from chat33_core.platforms import PostDraft

PHOTO_FORMATS = frozenset({"JPEG", "MPO", "PNG", "GIF", "BMP", "TIFF"})
REEL_CODECS = frozenset({"h264", "hevc", "vp9", "av1"})
#: the Resumable Upload API accepts these types only (and video/mp4 is the only video)
VIDEO_MIME = "video/mp4"
POST_TYPES = ("post", "reel", "video")


@frozen
class FacebookRules:
    """The configurable figures, with the commonly quoted values as defaults."""

    max_text: int = 63_206
    max_photo_bytes: int = 10 * 1024 * 1024
    max_photos: int = 10
    max_video_bytes: int = 10 * 1024**3
    max_video_seconds: float = 240 * 60.0
    reel_min_seconds: float = 3.0
    reel_max_seconds: float = 90.0
    reel_min_fps: float = 24.0
    reel_max_fps: float = 60.0
    reel_min_width: int = 540
    reel_min_height: int = 960

    @classmethod
    def from_settings(cls, settings: Settings) -> FacebookRules:
        """Read ``CHAT33_FACEBOOK_MAX_TEXT``, ``_MAX_PHOTO_BYTES``, ``_MAX_PHOTOS``,
        ``_MAX_VIDEO_BYTES`` and ``_MAX_VIDEO_SECONDS`` (numbers) over the defaults."""
        names = {
            "max_text": "MAX_TEXT", "max_photo_bytes": "MAX_PHOTO_BYTES",
            "max_photos": "MAX_PHOTOS", "max_video_bytes": "MAX_VIDEO_BYTES",
            "max_video_seconds": "MAX_VIDEO_SECONDS",
        }
        changes: dict[str, Any] = {}
        for attr, env_name in names.items():
            raw = settings.platform_value("facebook", env_name)
            if raw:
                kind = type(getattr(cls(), attr))
                changes[attr] = kind(float(raw))
        return attrs.evolve(cls(), **changes)


def post_kind(media_type: MediaType | str | None, media: list[MediaInfo] | list[Any],
              config: Mapping[str, Any]) -> str:
    """What the post becomes on Facebook: ``feed``, ``photo``, ``album``, ``video`` or ``reel``.

    ``platformConfig.facebook.type`` wins; then the request's ``mediaType``; then the media.
    ``media`` holds MediaInfo (validation) or anything with an ``info`` (publishing).
    """
    infos = [getattr(m, "info", m) for m in media]
    wanted = str(config.get("type") or "").lower()
    if wanted == "reel" or str(media_type or "") == MediaType.REEL:
        return "reel"
    if any(i.is_video for i in infos) or wanted == "video":
        return "video"
    if not infos:
        return "feed"
    return "photo" if len(infos) == 1 else "album"


def validate(draft: PostDraft, rules: FacebookRules) -> list[Issue]:
    """Every issue Facebook would have with ``draft``."""
    p = draft.path
    config = draft.platform_config.get("facebook") or {}
    issues: list[Issue] = []
    if not isinstance(config, Mapping):
        return [Issue(f"{p}platformConfig.facebook", "must be an object")]
    issues += _config_issues(config, p)
    text = draft.text or ""
    if len(text) > rules.max_text:
        issues.append(Issue(f"{p}text", f"text is {len(text)} characters; Facebook allows at most "
                            f"{rules.max_text}", "text_too_long"))
    media = list(draft.media)
    kind = post_kind(draft.media_type, media, config)
    if not media and not text.strip() and not config.get("link"):
        issues.append(Issue(f"{p}text", "a Facebook post without media needs text or "
                            "platformConfig.facebook.link", "empty_post"))
    if media and config.get("link"):
        issues.append(Issue(f"{p}platformConfig.facebook.link",
                            "a link post cannot carry media on Facebook; put the link in the "
                            "text instead", "link_with_media"))
    if kind in ("reel", "video"):
        issues += _video_issues(media, kind, rules, p)
    else:
        issues += _photo_issues(media, rules, p)
    return issues


def _config_issues(config: Mapping[str, Any], p: str) -> list[Issue]:
    """The options beyond their declared types and values (``FacebookPlatform.options``,
    checked by the core)."""
    base = f"{p}platformConfig.facebook"
    issues: list[Issue] = []
    link = config.get("link")
    if link is not None and not link.lower().startswith(("http://", "https://")):
        issues.append(Issue(f"{base}.link", "link must be an http(s) URL"))
    for key in ("title", "firstComment"):
        value = config.get(key)
        if value is not None and not value.strip():
            issues.append(Issue(f"{base}.{key}", f"{key} must be a non-empty string"))
    return issues


def _photo_issues(media: list[MediaInfo], rules: FacebookRules, p: str) -> list[Issue]:
    issues: list[Issue] = []
    if len(media) > rules.max_photos:
        issues.append(Issue(f"{p}mediaUrls", f"{len(media)} photos; a Facebook post takes at "
                            f"most {rules.max_photos}", "too_many_media"))
    for i, info in enumerate(media):
        path = f"{p}mediaUrls[{i}]"
        if not info.is_image:
            issues.append(Issue(path, f"{info.kind} cannot be mixed with photos in one post",
                                "mixed_media"))
            continue
        if info.format.upper() not in PHOTO_FORMATS:
            issues.append(Issue(path, f"photo format {info.format} is not accepted; use JPEG, "
                                "PNG, GIF, BMP or TIFF", "format"))
        if info.size > rules.max_photo_bytes:
            issues.append(Issue(path, f"photo is {_mb(info.size)}; Facebook accepts at most "
                                f"{_mb(rules.max_photo_bytes)}", "too_large"))
    return issues


def _video_issues(media: list[MediaInfo], kind: str, rules: FacebookRules,
                  p: str) -> list[Issue]:
    if len(media) != 1 or not media[0].is_video:
        return [Issue(f"{p}mediaUrls", f"a Facebook {kind} needs exactly one video, got "
                      f"{len(media)} file(s) of kind "
                      f"{', '.join(sorted({m.kind for m in media})) or 'none'}", "media_count")]
    info, path = media[0], f"{p}mediaUrls[0]"
    issues: list[Issue] = []
    if info.mime_type != VIDEO_MIME:
        issues.append(Issue(path, f"video container is {info.format}; Facebook uploads take "
                            "MP4 only", "format"))
    if kind == "video":
        if info.size > rules.max_video_bytes:
            issues.append(Issue(path, f"video is {_mb(info.size)}; the configured maximum is "
                                f"{_mb(rules.max_video_bytes)}", "too_large"))
        if info.duration_s is not None and info.duration_s > rules.max_video_seconds:
            issues.append(Issue(path, f"video lasts {info.duration_s:.1f} s; the configured "
                                f"maximum is {rules.max_video_seconds:.0f} s", "too_long"))
        return issues
    return issues + _reel_issues(info, rules, path)


def _reel_issues(info: MediaInfo, rules: FacebookRules, path: str) -> list[Issue]:
    issues: list[Issue] = []
    d = info.duration_s
    if d is None or not rules.reel_min_seconds <= d <= rules.reel_max_seconds:
        shown = "unknown" if d is None else f"{d:.1f} s"
        issues.append(Issue(path, f"reel duration {shown} is outside "
                            f"{rules.reel_min_seconds:g} to {rules.reel_max_seconds:g} s",
                            "duration"))
    fps = info.frame_rate
    if fps is None or not rules.reel_min_fps <= fps <= rules.reel_max_fps:
        shown = "unknown" if fps is None else f"{fps:g}"
        issues.append(Issue(path, f"reel frame rate {shown} fps is outside "
                            f"{rules.reel_min_fps:g} to {rules.reel_max_fps:g} fps", "frame_rate"))
    w, h = info.width or 0, info.height or 0
    if w < rules.reel_min_width or h < rules.reel_min_height:
        issues.append(Issue(path, f"reel is {w}x{h}; the minimum is "
                            f"{rules.reel_min_width}x{rules.reel_min_height}", "resolution"))
    elif abs(w / h - 9 / 16) > 0.01:
        issues.append(Issue(path, f"reel aspect ratio {w / h:.2f} is not the recommended 9:16 "
                            "(0.56)", "aspect_ratio", severity="warning"))
    if (info.video_codec or "").lower() not in REEL_CODECS:
        issues.append(Issue(path, f"reel video codec {info.video_codec or 'unknown'} is not "
                            "H.264, H.265, VP9 or AV1", "video_codec"))
    if info.has_audio and (info.audio_codec or "").lower() != "aac":
        issues.append(Issue(path, f"reel audio codec {info.audio_codec or 'unknown'} is not AAC",
                            "audio_codec"))
    return issues


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"
