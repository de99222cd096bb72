"""TikTok's preflight rules: media, caption in UTF-16 code units, platformConfig.tiktok."""

from __future__ import annotations

from typing import Any

import pytest
from chat33_tiktok import TikTokPlatform
from chat33_tiktok.rules import utf16_length

from chat33_core.config import Settings
from chat33_core.media import MediaInfo
from chat33_core.models import Account, MediaType
from chat33_core.platforms import PostDraft
from chat33_core.testing import validate_draft

MB = 1024 * 1024
ACCOUNT = Account(id="chan_1", org_id="org_1", platform="tiktok", name="c")
OK = {"privacyLevel": "PUBLIC_TO_EVERYONE"}


def video(**kw: Any) -> MediaInfo:
    base: dict[str, Any] = dict(kind="video", format="MPEG-4", mime_type="video/mp4",
                                size=10 * MB, width=1080, height=1920, duration_s=30.0,
                                frame_rate=30.0, video_codec="h264", audio_codec="aac")
    return MediaInfo(**{**base, **kw})


def photo(**kw: Any) -> MediaInfo:
    base: dict[str, Any] = dict(kind="image", format="JPEG", mime_type="image/jpeg",
                                size=2 * MB, width=1080, height=1350)
    return MediaInfo(**{**base, **kw})


def check(media: list[MediaInfo], text: str | None = "hi", config: dict[str, Any] | None = None,
          account: Account = ACCOUNT) -> list[tuple[str, str, str]]:
    draft = PostDraft(text=text, media_type=MediaType.VIDEO, media=media,
                      platform_config={"tiktok": OK if config is None else config})
    issues = validate_draft(TikTokPlatform(Settings.from_env({})), draft, account)
    return [(i.path, i.message, i.severity) for i in issues]


def errors(*args: Any, **kw: Any) -> list[tuple[str, str]]:
    return [(p, m) for p, m, s in check(*args, **kw) if s == "error"]


def test_a_good_video_and_good_photos_pass() -> None:
    assert check([video()]) == []
    assert check([photo(), photo(format="WEBP", mime_type="image/webp")]) == []


def test_text_only_is_refused() -> None:
    assert errors([], text="just words") == [
        ("mediaUrls", "TikTok posts need a video or photos; text-only posts are not possible")]


def test_caption_counts_utf16_code_units_not_characters() -> None:
    assert utf16_length("🎉") == 2 and utf16_length("é") == 1 and utf16_length("e\u0301") == 2
    # 1,100 emoji are 1,100 Python characters but 2,200 code units: exactly the limit
    assert errors([video()], text="🎉" * 1100) == []
    found = errors([video()], text="🎉" * 1100 + "a")
    assert found == [("text", "caption is 2201 UTF-16 code units; TikTok allows at most 2200")]


def test_privacy_level_is_required_and_known() -> None:
    assert errors([video()], config={})[0][0] == "platformConfig.tiktok.privacyLevel"
    found = errors([video()], config={"privacyLevel": "EVERYONE"})
    assert found[0][0] == "platformConfig.tiktok.privacyLevel"
    assert "'EVERYONE' is not one of" in found[0][1]


def test_privacy_level_against_known_creator_options() -> None:
    private = Account(id="c", org_id="o", platform="tiktok", name="c", metadata={
        "privacyLevelOptions": ["FOLLOWER_OF_CREATOR", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"]})
    found = errors([video()], account=private)
    assert found == [("platformConfig.tiktok.privacyLevel", "privacyLevel PUBLIC_TO_EVERYONE is "
                      "not offered for this account (it offers FOLLOWER_OF_CREATOR, "
                      "MUTUAL_FOLLOW_FRIENDS, SELF_ONLY)")]


@pytest.mark.parametrize(("info", "message"), [
    (video(format="Matroska"),
     "video format Matroska is not accepted; TikTok takes MP4, WebM or MOV"),
    (video(video_codec="av1"),
     "video codec av1 is not accepted; TikTok takes H.264, H.265, VP8 or VP9"),
    (video(frame_rate=15.0), "frame rate 15 fps is outside 23-60 fps"),
    (video(frame_rate=120.0), "frame rate 120 fps is outside 23-60 fps"),
    (video(width=320), "video width 320 px is outside 360-4096 px"),
    (video(height=5000), "video height 5000 px is outside 360-4096 px"),
    (video(size=5 * 1024**3), "video is 5120.0 MB; TikTok allows at most 4 GB"),
    (video(duration_s=601.0), "video duration 601.0 s is over TikTok's limit of 600 s"),
])
def test_video_rules_name_the_limit_and_the_value(info: MediaInfo, message: str) -> None:
    assert errors([info]) == [("mediaUrls[0]", message)]


def test_accepted_video_variants() -> None:
    for info in (video(format="QuickTime", video_codec="hevc"),
                 video(format="WebM", video_codec="vp9", frame_rate=60.0),
                 video(format="WebM", video_codec="vp8", frame_rate=23.0, width=360)):
        assert check([info]) == []


def test_creator_max_duration_when_known() -> None:
    account = Account(id="c", org_id="o", platform="tiktok", name="c",
                      metadata={"maxVideoPostDurationSec": 180})
    assert errors([video(duration_s=200.0)], account=account) == [
        ("mediaUrls[0]", "video duration 200.0 s is over the creator's limit of 180 s")]


def test_photo_rules() -> None:
    assert errors([photo(format="PNG")]) == [
        ("mediaUrls[0]", "photo format PNG is not accepted; TikTok takes JPEG or WebP")]
    assert errors([photo(), photo(size=21 * MB)]) == [
        ("mediaUrls[1]", "photo is 21.0 MB; TikTok allows at most 20 MB")]
    assert errors([photo()] * 36)[0] == ("mediaUrls", "36 photos; TikTok allows at most 35")
    assert errors([photo()] * 35) == []
    warnings = [c for c in check([photo(width=4000, height=3000)]) if c[2] == "warning"]
    assert warnings and warnings[0][0] == "mediaUrls[0]"


def test_video_and_photos_cannot_be_mixed() -> None:
    found = errors([video(), photo()])
    assert found == [("mediaUrls", "a TikTok post is one video or photos only; got 1 video(s) "
                      "and 1 other file(s)")]


def test_photo_title_and_description_limits() -> None:
    cfg = {**OK, "title": "t" * 91}
    assert errors([photo()], config=cfg) == [("platformConfig.tiktok.title", "photo title is 91 "
                                              "UTF-16 code units; TikTok allows at most 90")]
    assert errors([photo()], text="d" * 4001) == [
        ("text", "photo description is 4001 UTF-16 code units; TikTok allows at most 4000")]
    assert errors([photo()], text="d" * 4000) == []
    # the 2,200 caption limit is the video's: photo text may be longer
    assert errors([photo()], text="🎉" * 2000) == []


def test_config_types_and_choices() -> None:
    cfg = {**OK, "disableDuet": "yes", "postMode": "LATER", "videoCoverTimestampMs": -5}
    paths = sorted(p for p, _ in errors([video()], config=cfg))
    assert paths == ["platformConfig.tiktok.disableDuet", "platformConfig.tiktok.postMode",
                     "platformConfig.tiktok.videoCoverTimestampMs"]


def test_branded_content_cannot_be_private() -> None:
    cfg = {"privacyLevel": "SELF_ONLY", "brandContentToggle": True}
    assert errors([video()], config=cfg)[0][0] == "platformConfig.tiktok.brandContentToggle"


def test_cover_after_the_end_is_a_warning() -> None:
    found = check([video(duration_s=2.0)], config={**OK, "videoCoverTimestampMs": 5000})
    assert [(p, s) for p, _, s in found] == [("platformConfig.tiktok.videoCoverTimestampMs",
                                              "warning")]


def test_photo_cover_index_must_point_at_a_photo() -> None:
    found = errors([photo(), photo()], config={**OK, "photoCoverIndex": 2})
    assert found == [("platformConfig.tiktok.photoCoverIndex",
                      "photoCoverIndex 2 is past the last of 2 photo(s)")]


def test_thread_paths_are_prefixed() -> None:
    draft = PostDraft(text="x", media_type=None, media=[], platform_config={"tiktok": OK},
                      path="thread[0].")
    issues = validate_draft(TikTokPlatform(Settings.from_env({})), draft, ACCOUNT)
    assert [i.path for i in issues] == ["thread[0].mediaUrls"]
