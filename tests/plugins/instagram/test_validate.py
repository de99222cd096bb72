# ruff: noqa: RUF001 - expected messages use the en dash of limit ranges
"""Instagram's preflight rules: each names the limit and the measured value."""

from __future__ import annotations

import re
from typing import Any

import attrs
import pytest
from chat33_instagram import InstagramPlatform
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chat33_core.media import GIF, IMAGE, VIDEO, MediaInfo
from chat33_core.models import Account, MediaType
from chat33_core.platforms import PostDraft
from chat33_core.testing import validate_draft

ACCOUNT = Account(id="chan_1", org_id="org_1", platform="instagram", name="ig")
PLATFORM = InstagramPlatform()

JPEG = MediaInfo(kind=IMAGE, format="JPEG", mime_type="image/jpeg", size=500_000,
                 width=1080, height=1080)
REEL = MediaInfo(kind=VIDEO, format="MPEG-4", mime_type="video/mp4", size=20_000_000,
                 width=1080, height=1920, duration_s=30.0, frame_rate=30.0,
                 video_codec="h264", audio_codec="aac", audio_sample_rate=48_000,
                 has_audio=True, bitrate=5_000_000)


def issues(text: str | None = "caption", media: Any = (JPEG,), media_type: Any = None,
           config: dict[str, Any] | None = None, **kw: Any) -> list[Any]:
    draft = PostDraft(text=text, media_type=media_type, media=list(media),
                      platform_config={"instagram": config} if config is not None else {},
                      **kw)
    return validate_draft(PLATFORM, draft, ACCOUNT)


def errors(*args: Any, **kw: Any) -> dict[str, str]:
    return {i.path: i.message for i in issues(*args, **kw) if i.severity == "error"}


def warnings(*args: Any, **kw: Any) -> dict[str, str]:
    return {i.path: i.message for i in issues(*args, **kw) if i.severity == "warning"}


def test_a_good_image_post_has_no_issues():
    assert issues() == []


def test_a_good_reel_has_no_issues():
    assert issues(media=[REEL], media_type=MediaType.REEL,
                  config={"shareToFeed": True, "thumbOffsetMs": 1000}) == []


def test_text_only_posts_are_refused():
    assert "no text-only posts" in errors(media=[])["mediaUrls"]


def test_feed_images_are_jpeg_only():
    png = attrs.evolve(JPEG, format="PNG", mime_type="image/png")
    assert errors(media=[png])["mediaUrls[0]"] == (
        "image format PNG is not accepted: Instagram takes JPEG only")
    mpo = attrs.evolve(JPEG, format="MPO")
    assert "MPO" in errors(media=[mpo])["mediaUrls[0]"]
    gif = MediaInfo(kind=GIF, format="GIF", mime_type="image/gif", size=1000, width=400,
                    height=400, frames=4, animated=True)
    assert "GIF (animated)" in errors(media=[gif])["mediaUrls[0]"]


def test_image_size_limit():
    big = attrs.evolve(JPEG, size=9 * 1024 * 1024)
    assert errors(media=[big])["mediaUrls[0]"] == (
        "image size 9.00 MiB is over the limit of 8 MiB")


@pytest.mark.parametrize(("w", "h", "ok"), [(1080, 1350, True), (1080, 566, True),
                                            (1080, 1920, False), (1080, 500, False)])
def test_feed_image_aspect_ratio(w, h, ok):
    found = errors(media=[attrs.evolve(JPEG, width=w, height=h)])
    assert ("mediaUrls[0]" not in found) is ok
    if not ok:
        assert re.fullmatch(r"aspect ratio \d\.\d\d is outside 0\.8–1\.91 \(4:5 to 1\.91:1\)",
                            found["mediaUrls[0]"])


def test_tall_image_is_fine_as_a_story():
    tall = attrs.evolve(JPEG, width=1080, height=1920)
    assert errors(media=[tall], config={"type": "story"}) == {}


def test_aspect_message_names_the_measured_value():
    assert errors(media=[attrs.evolve(JPEG, width=540, height=960)])["mediaUrls[0]"] \
        .startswith("aspect ratio 0.56 is outside 0.8–1.91")


def test_width_outside_320_1440_is_a_warning_about_scaling():
    wide = attrs.evolve(JPEG, width=2000, height=2000)
    assert warnings(media=[wide])["mediaUrls[0]"] == (
        "width 2000 px is outside 320–1440 px: Instagram will scale the image")
    assert "mediaUrls[0]" not in errors(media=[wide])


@pytest.mark.parametrize(("change", "message"), [
    ({"format": "WebM"}, "reel container WebM is not accepted: MOV or MP4"),
    ({"video_codec": "vp9"}, "reel video codec vp9 is not accepted: H.264 or HEVC"),
    ({"audio_codec": "opus"}, "reel audio codec opus is not accepted: AAC"),
    ({"audio_sample_rate": 96_000}, "audio sample rate 96000 Hz is over the limit of 48000 Hz"),
    ({"frame_rate": 15.0}, "frame rate 15.00 fps is outside 23–60 fps"),
    ({"frame_rate": 120.0}, "frame rate 120.00 fps is outside 23–60 fps"),
    ({"width": 3840, "height": 2160}, "width 3840 px is over the limit of 1920 px"),
    ({"duration_s": 2.0}, "reel duration 2.0 s is outside 3 s–15 min"),
    ({"duration_s": 901.0}, "reel duration 901.0 s is outside 3 s–15 min"),
    ({"size": 301_000_000}, "reel size 301.0 MB is over the limit of 300 MB"),
])
def test_reel_rules(change, message):
    found = errors(media=[attrs.evolve(REEL, **change)], media_type=MediaType.REEL)
    assert found["mediaUrls[0]"] == message


def test_hevc_and_quicktime_are_accepted():
    hevc = attrs.evolve(REEL, video_codec="hevc", format="QuickTime")
    assert errors(media=[hevc]) == {}


@pytest.mark.parametrize(("change", "message"), [
    ({"duration_s": 61.0}, "story duration 61.0 s is outside 3 s–1 min"),
    ({"duration_s": 2.5}, "story duration 2.5 s is outside 3 s–1 min"),
    ({"size": 101_000_000}, "story size 101.0 MB is over the limit of 100 MB"),
])
def test_story_video_rules(change, message):
    found = errors(media=[attrs.evolve(REEL, **change)], config={"type": "story"})
    assert found["mediaUrls[0]"] == message


def test_story_caption_is_a_warning():
    assert "no caption" in warnings(media=[REEL], config={"type": "story"})["text"]


def test_carousel_needs_2_to_10_items():
    assert errors(media=[JPEG] * 11, media_type=MediaType.CAROUSEL)["mediaUrls"] == (
        "a carousel has 2–10 items, got 11")
    assert errors(media=[JPEG], media_type=MediaType.CAROUSEL)["mediaUrls"] == (
        "a carousel has 2–10 items, got 1")
    assert errors(media=[JPEG, REEL], media_type=MediaType.CAROUSEL) == {}


def test_no_reels_inside_a_carousel():
    found = errors(media=[JPEG, REEL], config={"type": "reel"})
    assert "reels cannot go in a carousel" in found["platformConfig.instagram.type"]


def test_carousel_items_are_checked_each_at_its_index():
    bad = attrs.evolve(JPEG, format="PNG")
    assert set(errors(media=[JPEG, bad], media_type=MediaType.CAROUSEL)) == {"mediaUrls[1]"}


def test_reel_needs_a_video():
    assert "a reel needs a video" in errors(media=[JPEG], media_type=MediaType.REEL)[
        "mediaUrls[0]"]


def test_caption_limits():
    assert errors(text="x" * 2201)["text"] == (
        "caption length 2201 is over the limit of 2200 characters")
    assert errors(text=" ".join(f"#t{i}" for i in range(31)))["text"] == (
        "31 hashtags is over the limit of 30")
    assert errors(text=" ".join(f"@u{i}" for i in range(21)))["text"] == (
        "21 @ mentions is over the limit of 20")
    assert errors(text=" ".join(f"#t{i}" for i in range(30))) == {}


def test_thumb_offset_must_fall_within_the_duration():
    found = errors(media=[REEL], config={"thumbOffsetMs": 30_000})
    assert found["platformConfig.instagram.thumbOffsetMs"] == (
        "thumbnail offset 30000 ms is outside the video's duration 0–30000 ms")
    assert errors(media=[REEL], config={"thumbOffsetMs": 29_999}) == {}
    assert "platformConfig.instagram.thumbOffsetMs" in errors(config={"thumbOffsetMs": 5})


def test_collaborators_at_most_3():
    found = errors(config={"collaborators": ["a", "b", "c", "d"]})
    assert found["platformConfig.instagram.collaborators"] == (
        "4 collaborators is over the limit of 3")
    assert "stories take no collaborators" in errors(
        config={"type": "story", "collaborators": ["a"]})[
        "platformConfig.instagram.collaborators"]


def test_user_tags_coordinates_are_between_0_and_1():
    found = errors(config={"userTags": [{"username": "a", "x": 1.5, "y": 0.5},
                                        {"username": "b", "y": "top"}]})
    assert found == {"platformConfig.instagram.userTags[0].x": "x 1.5 is outside 0-1",
                     "platformConfig.instagram.userTags[1].y": "must be a number (0-1), "
                                                               "got 'top'"}
    found = errors(config={"userTags": [{"username": "a", "x": 1, "y": 0.5},
                                        {"username": "b", "y": 0.2}]})
    assert "required on images" in found["platformConfig.instagram.userTags[1].x"]
    assert errors(media=[REEL], config={"userTags": [{"username": "a"}]}) == {}


def test_config_value_types_are_checked():
    found = errors(config={"type": "album", "shareToFeed": "yes", "altText": "x" * 1001,
                           "locationId": "paris", "coverUrl": "ftp://x"})
    assert "'album' is not one of feed, reel, story" in found["platformConfig.instagram.type"]
    assert found["platformConfig.instagram.shareToFeed"] == "must be true or false, got 'yes'"
    assert "alt text length 1001" in found["platformConfig.instagram.altText"]
    assert "platformConfig.instagram.locationId" in found
    assert "platformConfig.instagram.coverUrl" in found


def test_thread_items_are_refused_and_paths_are_prefixed():
    draft = PostDraft(text="hi", media_type=None, media=[JPEG], platform_config={},
                      thread=[PostDraft(text="more", media_type=None, media=[],
                                        platform_config={}, path="thread[0].")])
    found = {i.path for i in PLATFORM.validate(draft, ACCOUNT)}
    assert "thread" in found
    nested = PostDraft(text="x" * 3000, media_type=None, media=[], platform_config={},
                       path="thread[1].")
    assert {i.path for i in PLATFORM.validate(nested, ACCOUNT)} >= {
        "thread[1].text", "thread[1].mediaUrls"}


# --- property: any caption and any media facts give issues, never exceptions ---------------

media_infos = st.builds(
    MediaInfo,
    kind=st.sampled_from([IMAGE, GIF, VIDEO]),
    format=st.sampled_from(["JPEG", "PNG", "MPO", "GIF", "WEBP", "MPEG-4", "QuickTime",
                            "WebM"]),
    mime_type=st.just("application/octet-stream"),
    size=st.integers(0, 400_000_000),
    width=st.none() | st.integers(1, 5000),
    height=st.none() | st.integers(1, 5000),
    duration_s=st.none() | st.floats(0, 2000, allow_nan=False),
    frame_rate=st.none() | st.floats(1, 240, allow_nan=False),
    video_codec=st.none() | st.sampled_from(["h264", "hevc", "vp9", "av1"]),
    audio_codec=st.none() | st.sampled_from(["aac", "opus", "mp3"]),
    audio_sample_rate=st.none() | st.sampled_from([22_050, 44_100, 48_000, 96_000]),
    has_audio=st.booleans(),
    animated=st.booleans(),
)
captions = st.none() | st.text(max_size=2400) | st.lists(
    st.sampled_from(["#tag", "@who", "word", "#x", "@a.b", " "]), max_size=60).map(" ".join)
configs = st.fixed_dictionaries({}, optional={
    "type": st.sampled_from(["feed", "reel", "story", "nope"]),
    "thumbOffsetMs": st.integers(-10, 2_000_000) | st.floats(allow_nan=True),
    "collaborators": st.lists(st.text(min_size=1, max_size=5), max_size=5),
    "userTags": st.lists(st.fixed_dictionaries(
        {"username": st.text(min_size=1, max_size=5)},
        optional={"x": st.floats(-1, 2), "y": st.floats(-1, 2)}), max_size=3),
    "shareToFeed": st.booleans() | st.text(max_size=3),
})


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=captions, media=st.lists(media_infos, max_size=12), config=configs,
       media_type=st.none() | st.sampled_from(list(MediaType)))
def test_validator_property(text, media, config, media_type):
    found = issues(text=text, media=media, media_type=media_type, config=config)
    assert all(i.severity in ("error", "warning") for i in found)
    assert all(i.message and i.path for i in found)
    paths = {i.path for i in found if i.severity == "error"}
    # the rules that can be judged from the inputs alone always fire
    if not media:
        assert "mediaUrls" in paths
    if text and config.get("type") != "story":
        if len(text) > 2200:
            assert "text" in paths
        if len(re.findall(r"(?<![\w#])#\w+", text)) > 30:
            assert "text" in paths
    for i, info in enumerate(media[:10]):
        # any non-JPEG image anywhere in the post is refused at its own index
        if info.kind != VIDEO and info.format != "JPEG":
            assert f"mediaUrls[{i}]" in paths or "mediaUrls" in paths
        # a feed image's ratio is always judged (carousel or single)
        if info.kind == IMAGE and info.width and info.height and \
                config.get("type") not in ("story", "reel") and \
                media_type not in (MediaType.REEL, MediaType.VIDEO) and \
                not 0.795 <= info.width / info.height <= 1.915:
            assert any(f"aspect ratio {info.width / info.height:.2f}" in m.message
                       for m in found if m.path == f"mediaUrls[{i}]")
    # messages name a measured value: every error carries a digit or a quoted value
    for issue in found:
        if issue.code in ("too_long", "too_large", "aspect_ratio", "duration", "frame_rate"):
            assert re.search(r"\d", issue.message)
