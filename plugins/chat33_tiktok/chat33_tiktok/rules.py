"""TikTok's publishing rules (platforms.md §3.2, §3.5, §3.6), shared by validation, the
publisher and the sandbox. Pure: no network.

Text lengths are counted in UTF-16 code units, as TikTok counts its "runes": an emoji
outside the Basic Multilingual Plane counts 2, a combining accent 1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from chat33_core.errors import Issue
from chat33_core.media import MediaInfo
from chat33_core.options import Option

from .chunks import MAX_VIDEO_BYTES

CAPTION_MAX = 2200
PHOTO_TITLE_MAX = 90
PHOTO_DESCRIPTION_MAX = 4000
MAX_PHOTOS = 35
PHOTO_MAX_BYTES = 20 * 1024 * 1024
#: "at most 1080p": TikTok's picture_size_check_failed beyond it (we warn, it may rescale)
PHOTO_MAX_SIDE = 1080
PHOTO_FORMATS = ("JPEG", "WEBP")
VIDEO_FORMATS = ("MPEG-4", "QuickTime", "WebM")
VIDEO_CODECS = ("h264", "hevc", "h265", "vp8", "vp9")
VIDEO_MIN_FPS, VIDEO_MAX_FPS = 23.0, 60.0
VIDEO_MIN_SIDE, VIDEO_MAX_SIDE = 360, 4096
VIDEO_MAX_S = 600.0
INT32_MAX = 2**31 - 1

PRIVACY_LEVELS = ("PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "FOLLOWER_OF_CREATOR",
                  "SELF_ONLY")
POST_MODES = ("DIRECT_POST", "MEDIA_UPLOAD")
#: platformConfig.tiktok; ``title`` and ``description`` apply to photo posts (the post's
#: text is the description unless ``description`` is given), ``photoCoverIndex`` too
OPTIONS = (
    Option("privacyLevel", "string", "Who can see the post; it must be among the creator's "
           "privacyLevelOptions", choices=PRIVACY_LEVELS, required=True),
    Option("disableComment", "boolean", "Turn comments off (sent as true when the creator "
           "has them off)", default=False),
    Option("disableDuet", "boolean", "Videos: turn duets off (sent as true when the creator "
           "has them off)", default=False),
    Option("disableStitch", "boolean", "Videos: turn stitches off (sent as true when the "
           "creator has them off)", default=False),
    Option("videoCoverTimestampMs", "integer", "Videos: the cover frame, in ms from the "
           "start", minimum=0, maximum=INT32_MAX),
    Option("brandContentToggle", "boolean", "Paid partnership promoting a third party (not "
           "with SELF_ONLY)", default=False),
    Option("brandOrganicToggle", "boolean", "Promotes the creator's own business",
           default=False),
    Option("isAigc", "boolean", "Label the content as AI-generated", default=False),
    Option("autoAddMusic", "boolean", "Photos: let TikTok add music"),
    Option("postMode", "string", "DIRECT_POST publishes; MEDIA_UPLOAD sends the post to the "
           "creator's inbox to finish in the app", choices=POST_MODES, default="DIRECT_POST"),
    Option("title", "string", f"Photos: the title (up to {PHOTO_TITLE_MAX} UTF-16 code "
           "units)"),
    Option("description", "string", f"Photos: the description (up to {PHOTO_DESCRIPTION_MAX}"
           " UTF-16 code units); the post's text when absent"),
    Option("photoCoverIndex", "integer", "Photos: which photo is the cover, from 0",
           minimum=0, default=0),
)
PHOTO_ONLY_KEYS = ("title", "description", "photoCoverIndex", "autoAddMusic")
VIDEO_ONLY_KEYS = ("disableDuet", "disableStitch", "videoCoverTimestampMs")


def utf16_length(text: str) -> int:
    """Length in UTF-16 code units (what TikTok and JavaScript count)."""
    return len(text.encode("utf-16-le")) // 2


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def check_text(text: str | None, has_video: bool, config: Mapping[str, Any],
               path: str = "") -> list[Issue]:
    """The caption (video title, 2,200) or, for photos, title (90) and description
    (4,000), all in UTF-16 code units."""
    issues: list[Issue] = []
    if has_video:
        n = utf16_length(text or "")
        if n > CAPTION_MAX:
            issues.append(Issue(f"{path}text", f"caption is {n} UTF-16 code units; TikTok "
                                f"allows at most {CAPTION_MAX}", "too_long"))
        return issues
    cfg = f"{path}platformConfig.tiktok"
    title = config.get("title")
    if title is not None and (n := utf16_length(title)) > PHOTO_TITLE_MAX:
        issues.append(Issue(f"{cfg}.title", f"photo title is {n} UTF-16 code units; "
                            f"TikTok allows at most {PHOTO_TITLE_MAX}", "too_long"))
    description = config.get("description")
    where = f"{cfg}.description" if description is not None else f"{path}text"
    body = description if description is not None else (text or "")
    if (n := utf16_length(body)) > PHOTO_DESCRIPTION_MAX:
        issues.append(Issue(where, f"photo description is {n} UTF-16 code units; TikTok "
                            f"allows at most {PHOTO_DESCRIPTION_MAX}", "too_long"))
    return issues


def check_media(media: Sequence[MediaInfo], max_duration_s: float | None = None,
                path: str = "") -> list[Issue]:
    """One video, or 1-35 photos; formats, codecs, sizes, frame rates, durations."""
    if not media:
        return [Issue(f"{path}mediaUrls", "TikTok posts need a video or photos; text-only "
                      "posts are not possible", "media_required")]
    videos = [m for m in media if m.is_video]
    if videos and len(media) > 1:
        return [Issue(f"{path}mediaUrls", f"a TikTok post is one video or photos only; got "
                      f"{len(videos)} video(s) and {len(media) - len(videos)} other file(s)",
                      "media_combination")]
    if videos:
        return check_video(media[0], max_duration_s, f"{path}mediaUrls[0]")
    issues: list[Issue] = []
    if len(media) > MAX_PHOTOS:
        issues.append(Issue(f"{path}mediaUrls", f"{len(media)} photos; TikTok allows at most "
                            f"{MAX_PHOTOS}", "too_many_media"))
    for i, info in enumerate(media):
        issues += check_photo(info, f"{path}mediaUrls[{i}]")
    return issues


def check_photo(info: MediaInfo, where: str) -> list[Issue]:
    issues: list[Issue] = []
    if info.animated or info.format.upper() not in PHOTO_FORMATS:
        what = f"animated {info.format}" if info.animated else info.format
        issues.append(Issue(where, f"photo format {what} is not accepted; TikTok takes "
                            "JPEG or WebP", "unsupported_format"))
    if info.size > PHOTO_MAX_BYTES:
        issues.append(Issue(where, f"photo is {_mb(info.size)}; TikTok allows at most 20 MB",
                            "too_large"))
    if info.width and info.height and max(info.width, info.height) > PHOTO_MAX_SIDE \
            and min(info.width, info.height) > PHOTO_MAX_SIDE:
        issues.append(Issue(where, f"photo is {info.width}x{info.height}; TikTok takes "
                            "photos up to 1080p and may refuse larger ones",
                            "dimensions", "warning"))
    return issues


def check_video(info: MediaInfo, max_duration_s: float | None, where: str) -> list[Issue]:
    issues: list[Issue] = []
    if info.format not in VIDEO_FORMATS:
        issues.append(Issue(where, f"video format {info.format} is not accepted; TikTok "
                            "takes MP4, WebM or MOV", "unsupported_format"))
    if info.video_codec and info.video_codec.lower() not in VIDEO_CODECS:
        issues.append(Issue(where, f"video codec {info.video_codec} is not accepted; TikTok "
                            "takes H.264, H.265, VP8 or VP9", "unsupported_codec"))
    if info.frame_rate is not None and not VIDEO_MIN_FPS <= info.frame_rate <= VIDEO_MAX_FPS:
        issues.append(Issue(where, f"frame rate {info.frame_rate:g} fps is outside "
                            "23-60 fps", "frame_rate"))
    for side, value in (("width", info.width), ("height", info.height)):
        if value is not None and not VIDEO_MIN_SIDE <= value <= VIDEO_MAX_SIDE:
            issues.append(Issue(where, f"video {side} {value} px is outside 360-4096 px",
                                "dimensions"))
    if info.size > MAX_VIDEO_BYTES:
        issues.append(Issue(where, f"video is {_mb(info.size)}; TikTok allows at most 4 GB",
                            "too_large"))
    if info.size <= 0:
        issues.append(Issue(where, "video file is empty", "empty"))
    if info.duration_s is not None:
        limit = VIDEO_MAX_S if max_duration_s is None else min(VIDEO_MAX_S, max_duration_s)
        if info.duration_s > limit:
            whose = ("the creator's limit" if max_duration_s is not None
                     and max_duration_s < VIDEO_MAX_S else "TikTok's limit")
            issues.append(Issue(where, f"video duration {info.duration_s:.1f} s is over "
                                f"{whose} of {limit:g} s", "duration"))
    return issues


def check_config(config: Mapping[str, Any], *, has_video: bool, duration_s: float | None,
                 privacy_options: Sequence[str] | None = None,
                 path: str = "") -> list[Issue]:
    """``platformConfig.tiktok`` beyond its declared types and values (:data:`OPTIONS`,
    checked by the core): privacyLevel among the creator's options when we know them,
    branded content not private, the cover within the video, keys of the other kind."""
    cfg = f"{path}platformConfig.tiktok"
    issues: list[Issue] = []
    privacy = config.get("privacyLevel")
    if privacy is not None and privacy_options and privacy not in privacy_options:
        issues.append(Issue(f"{cfg}.privacyLevel", f"privacyLevel {privacy} is not offered "
                            f"for this account (it offers {', '.join(privacy_options)})",
                            "privacy_level_option_mismatch"))
    if config.get("brandContentToggle") is True and privacy == "SELF_ONLY":
        issues.append(Issue(f"{cfg}.brandContentToggle", "branded content cannot be "
                            "private: choose another privacyLevel than SELF_ONLY",
                            "branded_content_private"))
    cover = config.get("videoCoverTimestampMs")
    if cover is not None and duration_s is not None and cover > duration_s * 1000:
        issues.append(Issue(f"{cfg}.videoCoverTimestampMs", f"videoCoverTimestampMs "
                            f"{cover} is after the end of the video ({duration_s * 1000:.0f} "
                            "ms); TikTok will use the first frame", "cover_timestamp",
                            "warning"))
    ignored = VIDEO_ONLY_KEYS if not has_video else PHOTO_ONLY_KEYS
    for key in ignored:
        if key in config:
            kind = "video" if key in VIDEO_ONLY_KEYS else "photo"
            issues.append(Issue(f"{cfg}.{key}", f"{key} applies to {kind} posts only; it "
                                "is ignored here", "ignored", "warning"))
    return issues
