"""X's preflight rules: weighted text, media combinations and specs, platformConfig.x."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from chat33_x import XPlatform

from chat33_core.config import Settings
from chat33_core.media import GIF, IMAGE, VIDEO, MediaInfo
from chat33_core.platforms import PostDraft
from chat33_core.testing import PlatformContract, validate_draft

from .conftest import account

MB = 1024 * 1024
PHOTO = MediaInfo(kind=IMAGE, format="JPEG", mime_type="image/jpeg", size=200_000,
                  width=1200, height=800)
STILL_GIF = MediaInfo(kind=GIF, format="GIF", mime_type="image/gif", size=50_000,
                      width=300, height=300, frames=1)
ANIMATED = MediaInfo(kind=GIF, format="GIF", mime_type="image/gif", size=2 * MB, width=320,
                     height=240, frames=20, animated=True)
VIDEO_OK = MediaInfo(kind=VIDEO, format="MPEG-4", mime_type="video/mp4", size=5 * MB,
                     width=1280, height=720, duration_s=30.0, frame_rate=30.0,
                     video_codec="h264", audio_codec="aac", has_audio=True)


class TestXContract(PlatformContract):
    platform_class = XPlatform


def issues(text: str | None = "hello", media: tuple[MediaInfo, ...] = (),
           config: dict[str, Any] | None = None, thread: tuple[PostDraft, ...] = (),
           env: dict[str, str] | None = None, **account_changes: Any) -> list[Any]:
    draft = PostDraft(text=text, media_type=None, media=media,
                      platform_config={"x": config} if config is not None else {},
                      thread=thread)
    return validate_draft(XPlatform(Settings.from_env(env or {})), draft,
                          account(**account_changes))


def errors(**kwargs: Any) -> dict[str, str]:
    return {i.path: i.message for i in issues(**kwargs) if i.severity == "error"}


def test_declares_threads_delete_and_its_options() -> None:
    assert XPlatform.capabilities.threads and XPlatform.capabilities.delete
    assert {o.name for o in XPlatform.options} == {"replySettings", "quoteTweetId", "poll",
                                                   "madeWithAi"}
    assert XPlatform.limits.caption_length == 280


# --- text ----------------------------------------------------------------------------------


def test_280_weighted_characters_fit_281_do_not() -> None:
    assert errors(text="a" * 280) == {}
    assert errors(text="a" * 281) == {
        "text": "text is 281 characters as X counts them (URLs 23, emoji and CJK 2); "
                "the limit is 280"}


def test_cjk_counts_double_against_the_limit() -> None:
    assert errors(text="日" * 140) == {}
    assert "282 characters" in errors(text="日" * 141)["text"]


def test_a_long_url_counts_23() -> None:
    assert errors(text="a" * 256 + " https://example.com/" + "p" * 300) == {}


@pytest.mark.parametrize("metadata", [{"premium": True}, {"subscriptionType": "Premium"},
                                      {"subscriptionType": "PremiumPlus"},
                                      {"textLimit": 25_000}])
def test_premium_accounts_get_25000(metadata: dict[str, Any]) -> None:
    assert errors(text="a" * 1000, metadata=metadata) == {}


def test_premium_limit_boundary() -> None:
    premium = {"premium": True}
    assert errors(text="a" * 25_000, metadata=premium) == {}
    assert "the limit is 25000" in errors(text="a" * 25_001, metadata=premium)["text"]


def test_text_limit_per_account() -> None:
    assert "the limit is 100" in errors(text="a" * 101, metadata={"textLimit": 100})["text"]


def test_text_or_media_is_required() -> None:
    assert errors(text="  ")["text"] == "X needs text or media: this post has neither"
    assert errors(text=None, media=(PHOTO,)) == {}


def test_characters_x_refuses() -> None:
    assert "refuses" in errors(text="bad \ufffe char")["text"]


# --- media -----------------------------------------------------------------------------------


def test_up_to_four_photos() -> None:
    assert errors(media=(PHOTO,) * 4) == {}
    assert errors(media=(PHOTO,) * 5)["mediaUrls"] == ("X takes up to 4 photos per post; "
                                                       "this post has 5")


def test_a_still_gif_is_a_photo() -> None:
    assert errors(media=(PHOTO, STILL_GIF)) == {}


def test_no_mixing_photos_gifs_and_video() -> None:
    message = errors(media=(PHOTO, VIDEO_OK))["mediaUrls"]
    assert "not a mix" in message and "1 photo(s), 0 animated GIF(s) and 1 video(s)" in message
    assert "not a mix" in errors(media=(PHOTO, ANIMATED))["mediaUrls"]


def test_one_video_or_one_animated_gif() -> None:
    assert "1 of the videos" in errors(media=(VIDEO_OK, VIDEO_OK))["mediaUrls"]
    assert "1 of the animated GIFs" in errors(media=(ANIMATED, ANIMATED))["mediaUrls"]


def test_image_and_gif_sizes() -> None:
    big = attrs.evolve(PHOTO, size=6 * MB)
    assert errors(media=(big,)) == {"mediaUrls[0]": "image is 6.0 MB; X allows 5.0 MB"}
    assert errors(media=(attrs.evolve(ANIMATED, size=14 * MB),)) == {}
    assert errors(media=(attrs.evolve(ANIMATED, size=16 * MB),)) == {
        "mediaUrls[0]": "animated GIF is 16.0 MB; X allows 15.0 MB"}


def test_image_format() -> None:
    tiff = attrs.evolve(PHOTO, format="TIFF", mime_type="image/tiff")
    assert "format TIFF" in errors(media=(tiff,))["mediaUrls[0]"]


@pytest.mark.parametrize(("changes", "expected"), [
    ({"format": "WebM"}, "video container WebM is not accepted by X (MP4 or MOV)"),
    ({"video_codec": "hevc"}, "video codec hevc is not accepted by X (H.264)"),
    ({"audio_codec": "opus"}, "audio codec opus is not accepted by X (AAC)"),
    ({"frame_rate": 120.0}, "frame rate 120 fps is above X's 60 fps"),
    ({"width": 1920, "height": 1080}, "video is 1920x1080; X accepts 32x32 to 1280x1024"),
    ({"width": 20, "height": 20}, "video is 20x20; X accepts 32x32 to 1280x1024"),
    ({"width": 1000, "height": 250}, "aspect ratio 4.00 is outside X's 1:3 to 3:1 (0.33-3.00)"),
    ({"duration_s": 0.3}, "video lasts 0.3 s; X accepts 0.5-140 s"),
    ({"duration_s": 141.0}, "video lasts 141.0 s; X accepts 0.5-140 s"),
    ({"size": 600 * MB}, "video is 600.0 MB; X allows 512.0 MB"),
])
def test_video_specs(changes: dict[str, Any], expected: str) -> None:
    assert errors(media=(attrs.evolve(VIDEO_OK, **changes),)) == {"mediaUrls[0]": expected}


def test_video_specs_accepted() -> None:
    assert errors(media=(VIDEO_OK,)) == {}
    portrait = attrs.evolve(VIDEO_OK, width=720, height=1280)
    mov = attrs.evolve(VIDEO_OK, format="QuickTime", mime_type="video/quicktime",
                       has_audio=False, audio_codec=None)
    assert errors(media=(portrait,)) == {} and errors(media=(mov,)) == {}


def test_video_limits_follow_the_account_or_the_environment() -> None:
    long = attrs.evolve(VIDEO_OK, duration_s=600.0, size=900 * MB)
    assert set(errors(media=(long,))) == {"mediaUrls[0]"}
    assert errors(media=(long,), metadata={"videoMaxDurationS": 1200,
                                           "videoMaxBytes": 1024 * MB}) == {}
    env = {"CHAT33_X_VIDEO_MAX_DURATION_S": "1200", "CHAT33_X_VIDEO_MAX_BYTES": str(8 << 30)}
    assert errors(media=(long,), env=env) == {}


# --- thread items ------------------------------------------------------------------------------


def test_every_thread_item_is_validated_under_its_path() -> None:
    thread = (
        PostDraft(text="fine", media_type=None, media=(), platform_config={},
                  path="thread[0]."),
        PostDraft(text="b" * 300, media_type=None, media=(PHOTO, VIDEO_OK),
                  platform_config={}, path="thread[1]."),
    )
    found = errors(thread=thread)
    assert set(found) == {"thread[1].text", "thread[1].mediaUrls"}


# --- platformConfig.x ----------------------------------------------------------------------------


def test_valid_options() -> None:
    assert errors(config={"replySettings": "mentionedUsers", "madeWithAi": False,
                          "quoteTweetId": "1850000000000000001"}) == {}
    assert errors(config={"poll": {"options": ["a", "b", "c", "d"],
                                   "durationMinutes": 10_080}}) == {}


def test_reply_settings_and_flags() -> None:
    found = errors(config={"replySettings": "everyone", "madeWithAi": "yes",
                           "quoteTweetId": "https://x.com/a/status/1"})
    assert set(found) == {"platformConfig.x.replySettings", "platformConfig.x.madeWithAi",
                          "platformConfig.x.quoteTweetId"}


@pytest.mark.parametrize(("poll", "path", "fragment"), [
    ({"options": ["only"], "durationMinutes": 60}, "options", "got 1"),
    ({"options": list("abcde"), "durationMinutes": 60}, "options", "got 5"),
    ({"options": ["a", "x" * 26], "durationMinutes": 60}, "options[1]",
     "26 characters; X allows 25"),
    ({"options": ["a", ""], "durationMinutes": 60}, "options[1]", "non-empty"),
    ({"options": ["a", "b"], "durationMinutes": 4}, "durationMinutes", "outside 5-10080"),
    ({"options": ["a", "b"], "durationMinutes": 10_081}, "durationMinutes", "outside"),
    ({"options": ["a", "b"]}, "durationMinutes", "needs durationMinutes"),
    ({"options": ["a", "b"], "durationMinutes": 60, "colour": 1}, "colour", "unknown"),
])
def test_poll_rules(poll: dict[str, Any], path: str, fragment: str) -> None:
    found = errors(config={"poll": poll})
    assert fragment in found[f"platformConfig.x.poll.{path}"]


def test_media_poll_and_quote_exclude_each_other() -> None:
    poll = {"options": ["a", "b"], "durationMinutes": 60}
    assert errors(media=(PHOTO,), config={"poll": poll})["platformConfig.x"] == \
        "X does not combine media and poll in one post"
    assert "poll and quoteTweetId" in errors(
        config={"poll": poll, "quoteTweetId": "1"})["platformConfig.x"]
