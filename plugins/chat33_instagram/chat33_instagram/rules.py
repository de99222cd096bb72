# ruff: noqa: RUF001, RUF002 - limit ranges in messages use an en dash on purpose
"""Instagram's preflight rules (platforms.md §1.1, §1.6), on inspected media facts.

:func:`check` never touches the network. Every issue names the limit and the value
that broke it ("aspect ratio 0.56 is outside 0.8–1.91"), with a path into the request.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from chat33_core.errors import Issue
from chat33_core.media import MediaInfo
from chat33_core.platforms import PostDraft

MIB = 1024 * 1024
MB = 1000 * 1000

CAPTION_MAX = 2200
HASHTAGS_MAX = 30
MENTIONS_MAX = 20
ALT_TEXT_MAX = 1000
COLLABORATORS_MAX = 3
CAROUSEL_MIN, CAROUSEL_MAX = 2, 10

IMAGE_MAX_BYTES = 8 * MIB
IMAGE_RATIO = (0.8, 1.91)
IMAGE_WIDTH = (320, 1440)

REEL_MAX_BYTES = 300 * MB
REEL_DURATION_S = (3.0, 15 * 60.0)
REEL_RATIO = (0.01, 10.0)
STORY_MAX_BYTES = 100 * MB
STORY_DURATION_S = (3.0, 60.0)
STORY_RATIO = (0.1, 10.0)
VIDEO_FPS = (23.0, 60.0)
VIDEO_MAX_WIDTH = 1920
VIDEO_MAX_BITRATE = 25_000_000
AUDIO_MAX_RATE = 48_000
VIDEO_CODECS = frozenset({"h264", "hevc"})
VIDEO_FORMATS = frozenset({"mpeg-4", "mp4", "quicktime", "mov"})

POST_TYPES = ("feed", "reel", "story")

# Meta counts "#word" and "@name" tokens; a tag starts after a non-word character
HASHTAG = re.compile(r"(?<![\w#])#\w+")
MENTION = re.compile(r"(?<![\w@])@[\w.]+")
# a little slack so 1080x1350 (exactly 4:5) and 1080x566 (1.908) pass
RATIO_SLACK = 0.005

# post kinds, as the publisher creates them
IMAGE, REEL, STORY, CAROUSEL = "image", "reel", "story", "carousel"


def post_kind(media_type: Any, config: Mapping[str, Any], media: Sequence[MediaInfo]) -> str:
    """Which Instagram flow a post takes: ``image``, ``reel``, ``story`` or ``carousel``."""
    if config.get("type") == "story":
        return STORY
    if str(media_type or "") == "carousel" or len(media) > 1:
        return CAROUSEL
    if (media and media[0].is_video) or str(media_type or "") in ("reel", "video") \
            or config.get("type") == "reel":
        return REEL
    return IMAGE


def check(draft: PostDraft, config_path: str = "platformConfig.instagram") -> list[Issue]:
    """Every issue Instagram has with ``draft``."""
    raw = draft.platform_config.get("instagram") if draft.platform_config else None
    config: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    v = _Checker(prefix=draft.path, config_path=config_path)
    if raw is not None and not isinstance(raw, Mapping):
        v.error(config_path, f"must be an object, got {type(raw).__name__}")
    media = list(draft.media)
    kind = post_kind(draft.media_type, config, media)

    v.config(config, kind, media)
    v.caption(draft.text, kind)
    if not media:
        v.error("mediaUrls", "Instagram has no text-only posts: add 1 image or video "
                "(carousels take 2–10)", code="media_required")
    elif kind == CAROUSEL:
        v.carousel(media, config)
    elif len(media) == 1:
        v.single(media[0], kind, "mediaUrls[0]")
    if draft.cover_image is not None:
        v.cover(draft.cover_image, kind)
    if draft.thread:
        v.error("thread", f"Instagram has no threads: {len(draft.thread)} thread item(s) "
                "given, 0 allowed")
    return v.issues


class _Checker:
    def __init__(self, prefix: str, config_path: str) -> None:
        self.prefix = prefix
        self.config_path = config_path
        self.issues: list[Issue] = []

    def error(self, path: str, message: str, code: str = "invalid") -> None:
        self.issues.append(Issue(self.prefix + path, message, code))

    def warn(self, path: str, message: str, code: str = "warning") -> None:
        self.issues.append(Issue(self.prefix + path, message, code, severity="warning"))

    def cfg(self, key: str) -> str:
        return f"{self.config_path}.{key}"

    # --- text -----------------------------------------------------------------

    def caption(self, text: str | None, kind: str) -> None:
        if not text:
            return
        if kind == STORY:
            self.warn("text", "Instagram stories have no caption: the text is not published")
            return
        if len(text) > CAPTION_MAX:
            self.error("text", f"caption length {len(text)} is over the limit of "
                       f"{CAPTION_MAX} characters", code="too_long")
        tags = len(HASHTAG.findall(text))
        if tags > HASHTAGS_MAX:
            self.error("text", f"{tags} hashtags is over the limit of {HASHTAGS_MAX}",
                       code="too_many_hashtags")
        mentions = len(MENTION.findall(text))
        if mentions > MENTIONS_MAX:
            self.error("text", f"{mentions} @ mentions is over the limit of {MENTIONS_MAX}",
                       code="too_many_mentions")

    # --- media ----------------------------------------------------------------

    def single(self, info: MediaInfo, kind: str, path: str) -> None:
        if kind == STORY:
            if info.is_video:
                self.video(info, path, STORY_MAX_BYTES, STORY_DURATION_S, STORY_RATIO, "story")
            else:
                self.image(info, path, feed=False)
        elif info.is_video:
            self.video(info, path, REEL_MAX_BYTES, REEL_DURATION_S, REEL_RATIO, "reel")
        else:
            if kind == REEL:
                self.error(path, f"a reel needs a video, got {_what(info)}")
                return
            self.image(info, path, feed=True)

    def carousel(self, media: Sequence[MediaInfo], config: Mapping[str, Any]) -> None:
        n = len(media)
        if not CAROUSEL_MIN <= n <= CAROUSEL_MAX:
            self.error("mediaUrls", f"a carousel has {CAROUSEL_MIN}–{CAROUSEL_MAX} items, "
                       f"got {n}", code="carousel_count")
        if config.get("type") == "reel":
            self.error(self.cfg("type"), f"reels cannot go in a carousel ({n} media given; "
                       "a reel takes exactly 1 video)")
        for i, info in enumerate(media[:CAROUSEL_MAX]):
            path = f"mediaUrls[{i}]"
            if info.is_video:
                self.video(info, path, REEL_MAX_BYTES, REEL_DURATION_S, REEL_RATIO,
                           "carousel video")
            else:
                self.image(info, path, feed=True)

    def image(self, info: MediaInfo, path: str, feed: bool) -> None:
        if info.format.upper() != "JPEG" or info.animated or info.frames > 1:
            fmt = f"{info.format}" + (" (animated)" if info.animated else "")
            self.error(path, f"image format {fmt} is not accepted: Instagram takes JPEG only",
                       code="format")
        if info.size > IMAGE_MAX_BYTES:
            self.error(path, f"image size {_mib(info.size)} is over the limit of 8 MiB",
                       code="too_large")
        if not feed:
            return
        ratio = info.aspect_ratio
        lo, hi = IMAGE_RATIO
        if ratio is not None and not lo - RATIO_SLACK <= ratio <= hi + RATIO_SLACK:
            self.error(path, f"aspect ratio {ratio:.2f} is outside {lo}–{hi} (4:5 to 1.91:1)",
                       code="aspect_ratio")
        lo_w, hi_w = IMAGE_WIDTH
        if info.width is not None and not lo_w <= info.width <= hi_w:
            self.warn(path, f"width {info.width} px is outside {lo_w}–{hi_w} px: "
                      "Instagram will scale the image")

    def video(self, info: MediaInfo, path: str, max_bytes: int,
              duration: tuple[float, float], ratio_range: tuple[float, float],
              what: str) -> None:
        fmt = info.format.lower()
        if fmt not in VIDEO_FORMATS:
            self.error(path, f"{what} container {info.format} is not accepted: MOV or MP4",
                       code="format")
        if info.video_codec is not None and info.video_codec.lower() not in VIDEO_CODECS:
            self.error(path, f"{what} video codec {info.video_codec} is not accepted: "
                       "H.264 or HEVC", code="codec")
        if info.has_audio and info.audio_codec is not None \
                and info.audio_codec.lower() != "aac":
            self.error(path, f"{what} audio codec {info.audio_codec} is not accepted: AAC",
                       code="codec")
        if info.has_audio and info.audio_sample_rate and info.audio_sample_rate > AUDIO_MAX_RATE:
            self.error(path, f"audio sample rate {info.audio_sample_rate} Hz is over the limit "
                       f"of {AUDIO_MAX_RATE} Hz", code="audio")
        if info.frame_rate is not None:
            lo, hi = VIDEO_FPS
            if not lo <= info.frame_rate <= hi:
                self.error(path, f"frame rate {info.frame_rate:.2f} fps is outside "
                           f"{lo:g}–{hi:g} fps", code="frame_rate")
        if info.width is not None and info.width > VIDEO_MAX_WIDTH:
            self.error(path, f"width {info.width} px is over the limit of {VIDEO_MAX_WIDTH} px",
                       code="too_wide")
        ratio = info.aspect_ratio
        if ratio is not None and not ratio_range[0] <= ratio <= ratio_range[1]:
            self.error(path, f"aspect ratio {ratio:.2f} is outside "
                       f"{ratio_range[0]:g}–{ratio_range[1]:g}", code="aspect_ratio")
        if info.duration_s is None:
            self.error(path, f"{what} duration is unknown: it must be "
                       f"{_dur(duration[0])}–{_dur(duration[1])}", code="duration")
        elif not duration[0] <= info.duration_s <= duration[1]:
            self.error(path, f"{what} duration {info.duration_s:.1f} s is outside "
                       f"{_dur(duration[0])}–{_dur(duration[1])}", code="duration")
        if info.size > max_bytes:
            self.error(path, f"{what} size {info.size / MB:.1f} MB is over the limit of "
                       f"{max_bytes // MB} MB", code="too_large")
        if info.bitrate and info.bitrate > VIDEO_MAX_BITRATE:
            self.warn(path, f"bitrate {info.bitrate / 1e6:.1f} Mbps is over the recommended "
                      f"{VIDEO_MAX_BITRATE / 1e6:g} Mbps")

    def cover(self, info: MediaInfo, kind: str) -> None:
        if kind != REEL:
            self.error("coverImage", f"a cover image is for reels only, not a {kind}")
            return
        if info.format.upper() != "JPEG":
            self.error("coverImage", f"cover image format {info.format} is not accepted: "
                       "JPEG only", code="format")
        if info.size > IMAGE_MAX_BYTES:
            self.error("coverImage", f"cover image size {_mib(info.size)} is over the limit "
                       "of 8 MiB", code="too_large")

    # --- platformConfig.instagram -----------------------------------------------

    def config(self, config: Mapping[str, Any], kind: str, media: Sequence[MediaInfo]) -> None:
        """The options beyond their declared types and values (``InstagramPlatform.options``,
        checked by the core): what each applies to, and limits."""
        if kind == STORY and len(media) > 1:
            self.error("mediaUrls", f"a story takes 1 image or video, got {len(media)}")
        self._bool(config, "shareToFeed", only=(REEL,), kind=kind)
        self._cover_url(config, kind)
        self._thumb_offset(config, kind, media)
        self._collaborators(config, kind)
        self._user_tags(config, kind, media)
        self._location(config, kind)
        self._alt_text(config, kind, media)
        first = config.get("firstComment")
        if first is not None:
            if len(first) > CAPTION_MAX:
                self.error(self.cfg("firstComment"), f"comment length {len(first)} is over "
                           f"the limit of {CAPTION_MAX} characters", code="too_long")
            elif kind == STORY:
                self.error(self.cfg("firstComment"), "stories take no comments")

    def _bool(self, config: Mapping[str, Any], key: str, only: tuple[str, ...],
              kind: str) -> None:
        value = config.get(key)
        if value is not None and kind not in only:
            self.error(self.cfg(key), f"{key} applies to {'/'.join(only)} posts, not a {kind}")

    def _cover_url(self, config: Mapping[str, Any], kind: str) -> None:
        value = config.get("coverUrl")
        if value is None:
            return
        if not value.startswith(("https://", "http://")):
            self.error(self.cfg("coverUrl"), "must be an http(s) URL of a JPEG")
        elif kind != REEL:
            self.error(self.cfg("coverUrl"), f"coverUrl applies to reels, not a {kind}")

    def _thumb_offset(self, config: Mapping[str, Any], kind: str,
                      media: Sequence[MediaInfo]) -> None:
        value = config.get("thumbOffsetMs")
        if value is None:
            return
        path = self.cfg("thumbOffsetMs")
        videos = [m for m in media if m.is_video]
        if kind not in (REEL, STORY) or len(videos) != 1:
            self.error(path, f"thumbOffsetMs applies to a single video or reel, not a {kind}")
            return
        duration_ms = (videos[0].duration_s or 0.0) * 1000
        if videos[0].duration_s is not None and value >= duration_ms:
            self.error(path, f"thumbnail offset {value:g} ms is outside the video's duration "
                       f"0–{duration_ms:.0f} ms", code="thumb_offset")

    def _collaborators(self, config: Mapping[str, Any], kind: str) -> None:
        value = config.get("collaborators")
        if value is None:
            return
        path = self.cfg("collaborators")
        if not all(value):
            self.error(path, "must be a list of Instagram usernames")
            return
        if len(value) > COLLABORATORS_MAX:
            self.error(path, f"{len(value)} collaborators is over the limit of "
                       f"{COLLABORATORS_MAX}", code="too_many")
        if kind == STORY:
            self.error(path, "stories take no collaborators")

    def _user_tags(self, config: Mapping[str, Any], kind: str,
                   media: Sequence[MediaInfo]) -> None:
        value = config.get("userTags")
        if value is None:
            return
        path = self.cfg("userTags")
        # x/y place the tag on an image; optional on stories and reels
        needs_xy = kind == IMAGE or (kind == CAROUSEL and any(not m.is_video for m in media))
        if kind == CAROUSEL and media and all(m.is_video for m in media):
            self.error(path, "user tags are not supported on videos inside a carousel")
        for i, tag in enumerate(value):
            tag_path = f"{path}[{i}]"
            if not tag["username"]:
                self.error(tag_path, "must be an object with a username")
                continue
            for axis in ("x", "y"):
                if needs_xy and tag.get(axis) is None:
                    self.error(f"{tag_path}.{axis}", f"{axis} is required on images "
                               "(0.0–1.0)")

    def _location(self, config: Mapping[str, Any], kind: str) -> None:
        value = config.get("locationId")
        if value is None:
            return
        if not str(value).isdigit():
            self.error(self.cfg("locationId"), f"must be the numeric id of a Page with a "
                       f"location, got {value!r}")

    def _alt_text(self, config: Mapping[str, Any], kind: str,
                  media: Sequence[MediaInfo]) -> None:
        value = config.get("altText")
        if value is None:
            return
        path = self.cfg("altText")
        if len(value) > ALT_TEXT_MAX:
            self.error(path, f"alt text length {len(value)} is over the limit of "
                       f"{ALT_TEXT_MAX} characters", code="too_long")
        if kind != IMAGE:
            self.error(path, f"alt text applies to feed images, not a {kind}")


def _what(info: MediaInfo) -> str:
    return f"{info.kind} ({info.format})"


def _mib(size: int) -> str:
    return f"{size / MIB:.2f} MiB"


def _dur(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"
