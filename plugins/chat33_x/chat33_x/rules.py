"""X's preflight rules: weighted text length, media combinations and specs, platformConfig.

Everything here judges a :class:`~chat33_core.platforms.PostDraft` (inspected media, no
network). Each issue names the limit and the measured value. Sources: platforms.md §5.1
(request body), §5.3 (media limits), §5.4 (counting).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from attrs import frozen

from chat33_core.errors import Issue
from chat33_core.media import GIF, IMAGE, VIDEO, MediaInfo
from chat33_core.models import Account
from chat33_core.options import Option

from .counting import DEFAULT_LIMIT, PREMIUM_LIMIT, count

MB = 1024 * 1024

MAX_IMAGES = 4
MAX_IMAGE_BYTES = 5 * MB
MAX_GIF_BYTES = 15 * MB
IMAGE_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "GIF"})
VIDEO_FORMATS = frozenset({"MPEG-4", "QUICKTIME"})
VIDEO_MIN_SIDE = 32
#: 1280x1024, either orientation (a portrait 1024x1280 video is as acceptable as landscape)
VIDEO_MAX_LONG_SIDE = 1280
VIDEO_MAX_SHORT_SIDE = 1024
VIDEO_MAX_FPS = 60.0
VIDEO_MIN_ASPECT = 1 / 3
VIDEO_MAX_ASPECT = 3.0
DEFAULT_VIDEO_MIN_S = 0.5
DEFAULT_VIDEO_MAX_S = 140.0
DEFAULT_VIDEO_MAX_BYTES = 512 * MB

REPLY_SETTINGS = ("following", "mentionedUsers", "subscribers", "verified")
POLL_MIN_OPTIONS, POLL_MAX_OPTIONS = 2, 4
POLL_OPTION_MAX_CHARS = 25
POLL_MIN_MINUTES, POLL_MAX_MINUTES = 5, 10_080
_TWEET_ID = re.compile(r"^[0-9]{1,19}$")

_MINUTES = f"whole minutes, {POLL_MIN_MINUTES}-{POLL_MAX_MINUTES}"
#: platformConfig.x: fields of the CreatePosts request body
OPTIONS = (
    Option("replySettings", "string", "Who can reply (everyone when absent); every post of "
           "a thread", choices=REPLY_SETTINGS),
    Option("quoteTweetId", ("string", "integer"), "The id of the post to quote (the first "
           "post of a thread; not with media or a poll)"),
    Option("poll", "object", f"A poll on the first post: {POLL_MIN_OPTIONS}-"
           f"{POLL_MAX_OPTIONS} options of up to {POLL_OPTION_MAX_CHARS} characters (not with "
           "media or a quote)", fields=(
               Option("options", "array", "the choices", items=Option("option", "string", "")),
               Option("durationMinutes", "integer", f"how long it runs ({_MINUTES})",
                      minimum=POLL_MIN_MINUTES, maximum=POLL_MAX_MINUTES),
               Option("duration_minutes", "integer", "durationMinutes, as X spells it",
                      minimum=POLL_MIN_MINUTES, maximum=POLL_MAX_MINUTES))),
    Option("madeWithAi", "boolean", "Label every post of the thread as made with AI"),
)


@frozen
class AccountLimits:
    """The limits that follow the posting user rather than the API (Premium and such)."""

    text: int = DEFAULT_LIMIT
    video_min_s: float = DEFAULT_VIDEO_MIN_S
    video_max_s: float = DEFAULT_VIDEO_MAX_S
    video_max_bytes: int = DEFAULT_VIDEO_MAX_BYTES


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):  # unset is the common case: no raise
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def account_limits(account: Account, env: Mapping[str, str] | None = None) -> AccountLimits:
    """Limits for ``account``.

    Text: ``account.metadata["textLimit"]`` when set; otherwise 25,000 for a Premium
    account (``metadata["premium"]`` true, or X's ``subscriptionType`` Premium /
    PremiumPlus), else 280. Video duration and size: ``metadata["videoMaxDurationS"]`` /
    ``["videoMaxBytes"]``, else ``CHAT33_X_VIDEO_MAX_DURATION_S`` / ``..._VIDEO_MAX_BYTES``,
    else 140 s and 512 MB (X's limits vary by account and by documentation version).
    """
    meta = account.metadata or {}
    env = env or {}
    text = _number(meta.get("textLimit", meta.get("text_limit")))
    if text is None:
        subscription = str(meta.get("subscriptionType", meta.get("subscription_type")) or "")
        premium = meta.get("premium") is True or subscription.lower().startswith("premium")
        text = PREMIUM_LIMIT if premium else DEFAULT_LIMIT

    def pick(meta_key: str, env_key: str, default: float) -> float:
        value = _number(meta.get(meta_key))
        if value is None:
            value = _number(env.get(f"CHAT33_X_{env_key}"))
        return default if value is None or value <= 0 else value

    return AccountLimits(
        text=int(text),
        video_min_s=DEFAULT_VIDEO_MIN_S,
        video_max_s=pick("videoMaxDurationS", "VIDEO_MAX_DURATION_S", DEFAULT_VIDEO_MAX_S),
        video_max_bytes=int(pick("videoMaxBytes", "VIDEO_MAX_BYTES", DEFAULT_VIDEO_MAX_BYTES)),
    )


def _mb(size: int) -> str:
    return f"{size / MB:.1f} MB"


def is_animated_gif(info: MediaInfo) -> bool:
    """An animated GIF is its own kind on X (one per post, 15 MB); a still GIF is a photo."""
    return info.kind == GIF and (info.animated or info.frames > 1)


def media_category(info: MediaInfo) -> str:
    """The ``media_category`` of the v2 upload for this file."""
    if info.kind == VIDEO:
        return "tweet_video"
    if is_animated_gif(info):
        return "tweet_gif"
    return "tweet_image"


# --- text ------------------------------------------------------------------------------


def check_text(text: str | None, has_media: bool, limit: int, path: str) -> list[Issue]:
    if not text or not text.strip():
        if has_media:
            return []
        return [Issue(f"{path}text", "X needs text or media: this post has neither",
                      code="required")]
    measured = count(text, limit)
    if not measured.exact:
        return [Issue(f"{path}text", f"text is {len(text)} characters long, far over X's "
                                     f"limit of {limit}", code="too_long")]
    if measured.too_long:
        return [Issue(f"{path}text",
                      f"text is {measured.weighted_length} characters as X counts them "
                      f"(URLs 23, emoji and CJK 2); the limit is {limit}", code="too_long")]
    if not measured.valid:
        return [Issue(f"{path}text", "text contains characters X refuses (such as U+FFFE, "
                                     "U+FEFF or unpaired surrogates)", code="invalid")]
    return []


# --- media -----------------------------------------------------------------------------


def check_media(media: Sequence[MediaInfo], limits: AccountLimits, path: str) -> list[Issue]:
    """Up to 4 photos, or 1 animated GIF, or 1 video; never mixed."""
    if not media:
        return []
    issues: list[Issue] = []
    videos = [m for m in media if m.kind == VIDEO]
    gifs = [m for m in media if is_animated_gif(m)]
    photos = [m for m in media if m.kind in (IMAGE, GIF) and not is_animated_gif(m)]
    kinds = sum(1 for group in (videos, gifs, photos) if group)
    if kinds > 1:
        issues.append(Issue(
            f"{path}mediaUrls",
            f"X takes up to {MAX_IMAGES} photos, or 1 animated GIF, or 1 video per post, not a "
            f"mix: this post has {len(photos)} photo(s), {len(gifs)} animated GIF(s) and "
            f"{len(videos)} video(s)", code="media_mix"))
    elif len(videos) > 1 or len(gifs) > 1:
        what = "videos" if videos else "animated GIFs"
        issues.append(Issue(f"{path}mediaUrls",
                            f"X takes 1 of the {what} per post; this post has {len(media)}",
                            code="too_many_media"))
    elif len(photos) > MAX_IMAGES:
        issues.append(Issue(f"{path}mediaUrls",
                            f"X takes up to {MAX_IMAGES} photos per post; this post has "
                            f"{len(photos)}", code="too_many_media"))
    for index, info in enumerate(media):
        where = f"{path}mediaUrls[{index}]"
        if info.kind == VIDEO:
            issues.extend(_check_video(info, limits, where))
        elif is_animated_gif(info):
            if info.size > MAX_GIF_BYTES:
                issues.append(Issue(where, f"animated GIF is {_mb(info.size)}; X allows "
                                           f"{_mb(MAX_GIF_BYTES)}", code="too_large"))
        else:
            issues.extend(_check_image(info, where))
    return issues


def _check_image(info: MediaInfo, where: str) -> list[Issue]:
    issues = []
    if info.format.upper() not in IMAGE_FORMATS:
        issues.append(Issue(where, f"image format {info.format} is not accepted by X "
                                   "(JPEG, PNG, WebP or GIF)", code="format"))
    if info.size > MAX_IMAGE_BYTES:
        issues.append(Issue(where, f"image is {_mb(info.size)}; X allows "
                                   f"{_mb(MAX_IMAGE_BYTES)}", code="too_large"))
    return issues


def _check_video(info: MediaInfo, limits: AccountLimits, where: str) -> list[Issue]:
    issues = []
    fmt = info.format.upper()
    if fmt not in VIDEO_FORMATS:
        issues.append(Issue(where, f"video container {info.format} is not accepted by X "
                                   "(MP4 or MOV)", code="format"))
    if info.video_codec and info.video_codec.lower() != "h264":
        issues.append(Issue(where, f"video codec {info.video_codec} is not accepted by X "
                                   "(H.264)", code="codec"))
    if info.has_audio and info.audio_codec and info.audio_codec.lower() != "aac":
        issues.append(Issue(where, f"audio codec {info.audio_codec} is not accepted by X "
                                   "(AAC)", code="codec"))
    if info.frame_rate is not None and info.frame_rate > VIDEO_MAX_FPS + 0.01:
        issues.append(Issue(where, f"frame rate {info.frame_rate:g} fps is above X's "
                                   f"{VIDEO_MAX_FPS:g} fps", code="frame_rate"))
    if info.width and info.height:
        long_side, short_side = max(info.width, info.height), min(info.width, info.height)
        if (short_side < VIDEO_MIN_SIDE or long_side > VIDEO_MAX_LONG_SIDE
                or short_side > VIDEO_MAX_SHORT_SIDE):
            issues.append(Issue(where, f"video is {info.width}x{info.height}; X accepts "
                                       f"{VIDEO_MIN_SIDE}x{VIDEO_MIN_SIDE} to "
                                       f"{VIDEO_MAX_LONG_SIDE}x{VIDEO_MAX_SHORT_SIDE}",
                                code="dimensions"))
        ratio = info.width / info.height
        if not VIDEO_MIN_ASPECT - 1e-3 <= ratio <= VIDEO_MAX_ASPECT + 1e-3:
            issues.append(Issue(where, f"aspect ratio {ratio:.2f} is outside X's 1:3 to 3:1 "
                                       "(0.33-3.00)", code="aspect_ratio"))
    if info.duration_s is not None and not (
            limits.video_min_s <= info.duration_s <= limits.video_max_s):
        issues.append(Issue(where, f"video lasts {info.duration_s:.1f} s; X accepts "
                                   f"{limits.video_min_s:g}-{limits.video_max_s:g} s",
                            code="duration"))
    if info.size > limits.video_max_bytes:
        issues.append(Issue(where, f"video is {_mb(info.size)}; X allows "
                                   f"{_mb(limits.video_max_bytes)}", code="too_large"))
    return issues


# --- platformConfig.x ------------------------------------------------------------------


def check_config(config: Mapping[str, Any], has_media: bool) -> list[Issue]:
    """``platformConfig.x`` beyond its declared types and values (:data:`OPTIONS`): a
    quoted post id is digits, the poll's counts, and media, poll and quote exclude each
    other (poll and quote apply to the first post of a thread)."""
    base = "platformConfig.x"
    issues: list[Issue] = []
    quote = config.get("quoteTweetId")
    if quote is not None and not _TWEET_ID.match(str(quote)):
        issues.append(Issue(f"{base}.quoteTweetId",
                            f"quoteTweetId {quote!r} is not a post id (digits only)"))
    poll = config.get("poll")
    if poll is not None:
        issues.extend(_check_poll(poll, f"{base}.poll"))
    exclusive = [name for name, present in (("media", has_media), ("poll", poll is not None),
                                            ("quoteTweetId", quote is not None)) if present]
    if len(exclusive) > 1:
        issues.append(Issue(base, f"X does not combine {' and '.join(exclusive)} in one post",
                            code="conflict"))
    return issues


def poll_fields(poll: Mapping[str, Any]) -> tuple[list[str], Any]:
    """(options, duration in minutes) of a ``poll`` config, camelCase or snake_case."""
    options = poll.get("options")
    minutes = poll.get("durationMinutes", poll.get("duration_minutes"))
    return (list(options) if isinstance(options, list) else []), minutes


def _check_poll(poll: Mapping[str, Any], path: str) -> list[Issue]:
    issues = []
    options, minutes = poll_fields(poll)
    if not isinstance(poll.get("options"), list) or not (
            POLL_MIN_OPTIONS <= len(options) <= POLL_MAX_OPTIONS):
        issues.append(Issue(f"{path}.options",
                            f"a poll has {POLL_MIN_OPTIONS}-{POLL_MAX_OPTIONS} options; "
                            f"got {len(options)}"))
    for index, option in enumerate(options):
        if not option.strip():
            issues.append(Issue(f"{path}.options[{index}]", "a poll option is non-empty text"))
        elif len(option) > POLL_OPTION_MAX_CHARS:
            issues.append(Issue(f"{path}.options[{index}]",
                                f"poll option is {len(option)} characters; X allows "
                                f"{POLL_OPTION_MAX_CHARS}", code="too_long"))
    if minutes is None:
        issues.append(Issue(f"{path}.durationMinutes",
                            f"a poll needs durationMinutes ({_MINUTES})", code="required"))
    return issues
