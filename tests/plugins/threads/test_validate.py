"""Threads' preflight rules, through the core's validation (declared options first)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chat33_threads import ThreadsPlatform, rules

from chat33_core.config import Settings
from chat33_core.errors import Issue
from chat33_core.media import MediaInfo
from chat33_core.platforms import MediaFile, PostDraft
from chat33_core.testing import validate_draft

from .conftest import account

PLATFORM = ThreadsPlatform(Settings.from_env({}))


def issues(text: str | None = "hi", media: tuple[MediaInfo, ...] = (),
           config: dict[str, Any] | None = None,
           thread: tuple[str, ...] = ()) -> list[Issue]:
    draft = PostDraft(text=text, media_type=None, media=media,
                      platform_config={"threads": config} if config is not None else {},
                      thread=[PostDraft(text=t, media_type=None, media=(), platform_config={},
                                        path=f"thread[{i}].") for i, t in enumerate(thread)])
    return [i for i in validate_draft(PLATFORM, draft, account()) if i.severity == "error"]


def codes(found: list[Issue]) -> list[str | None]:
    return [i.code for i in found]


def test_emoji_count_their_utf8_bytes() -> None:
    assert rules.count("abc") == 3
    assert rules.count("é") == 1  # accents are one character, not two bytes
    assert rules.count("日本") == 2
    assert rules.count("👍") == 4
    assert rules.count("👨‍❤️‍👨") == 20  # the reference's ZWJ sequence: 20 UTF-8 bytes
    assert rules.count("a\u200db") == 3  # a joiner outside emoji is a character


def test_500_characters_pass_and_501_fail() -> None:
    assert issues("x" * 500) == []
    [issue] = issues("x" * 501)
    assert issue.path == "text" and issue.code == "too_long" and "501" in issue.message


def test_emoji_push_a_short_text_over_the_limit() -> None:
    assert issues("x" * 496 + "👍") == []
    assert codes(issues("x" * 497 + "👍")) == ["too_long"]


def test_thread_items_are_checked_at_their_path() -> None:
    [issue] = issues("fine", thread=("ok", "y" * 600))
    assert issue.path == "thread[1].text"


def test_at_most_five_unique_links_with_the_link_attachment() -> None:
    five = " ".join(f"https://e.com/{i}" for i in range(5))
    assert issues(five + " https://e.com/0") == []  # a repeat is not a new link
    assert codes(issues(five, config={"linkAttachment": "https://e.com/9"})) == [
        "too_many_links"]


def test_text_or_media_is_required() -> None:
    assert codes(issues("  ")) == ["required"]


def test_one_image_or_a_carousel_of_up_to_twenty(
        media: Callable[[str], MediaFile]) -> None:
    photo = media("photo.jpg").info
    assert issues(media=(photo,)) == []
    assert issues(media=(photo,) * 20) == []
    assert codes(issues(media=(photo,) * 21)) == ["too_many_media"]


def test_image_formats_sizes_and_ratio(media: Callable[[str], MediaFile]) -> None:
    import attrs

    photo = media("photo.jpg").info
    assert codes(issues(media=(media("photo.webp").info,))) == ["format"]
    assert codes(issues(media=(attrs.evolve(photo, size=8 * 1024 * 1024 + 1),))) == [
        "too_large"]
    assert codes(issues(media=(attrs.evolve(photo, width=1100, height=100),))) == [
        "aspect_ratio"]


def test_video_limits(media: Callable[[str], MediaFile]) -> None:
    import attrs

    clip = media("clip.mp4").info
    assert issues(media=(clip,)) == []
    assert codes(issues(media=(attrs.evolve(clip, duration_s=301.0),))) == ["duration"]
    assert codes(issues(media=(attrs.evolve(clip, frame_rate=15.0),))) == ["frame_rate"]
    assert codes(issues(media=(attrs.evolve(clip, width=2000, height=1200),))) == [
        "dimensions"]
    assert codes(issues(media=(attrs.evolve(clip, size=2**30 + 1),))) == ["too_large"]
    assert codes(issues(media=(attrs.evolve(clip, format="WebM"),))) == ["format"]


def test_declared_options_are_checked_by_the_core() -> None:
    [issue] = issues(config={"replyControl": "nobody"})
    assert issue.path == "platformConfig.threads.replyControl"
    [issue] = issues(config={"colour": "red"})
    assert issue.code == "unknown_key"


def test_option_meanings(media: Callable[[str], MediaFile]) -> None:
    assert codes(issues(config={"topicTag": "a.b"})) == ["invalid"]
    assert codes(issues(config={"topicTag": "x" * 51})) == ["invalid"]
    assert issues(config={"topicTag": "chat33"}) == []
    assert codes(issues(config={"replyToId": "abc"})) == ["invalid"]
    assert codes(issues(media=(media("photo.jpg").info,),
                        config={"linkAttachment": "https://e.com"})) == ["media_conflict"]
    assert codes(issues(config={"linkAttachment": "ftp://e.com"})) == ["invalid"]
    assert codes(issues(media=(media("photo.jpg").info,),
                        config={"altText": ["a", "b"]})) == ["too_many"]
