"""Telegram's preflight rules: UTF-16 counting, captions, albums, photo and video limits,
``platformConfig.telegram`` — and the contract every platform passes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import pytest
from chat33_telegram import TelegramPlatform
from chat33_telegram.rules import OPTIONS, send_options, utf16_length

from chat33_core.config import Settings
from chat33_core.errors import Issue
from chat33_core.media import MediaInfo
from chat33_core.platforms import MediaFile, PostDraft
from chat33_core.testing import PlatformContract

from .conftest import account


class TestContract(PlatformContract):
    platform_class = TelegramPlatform


def check(text: str | None = "hello", media: tuple[MediaInfo, ...] = (),
          config: dict[str, Any] | None = None, thread: tuple[PostDraft, ...] = (),
          ) -> list[Issue]:
    draft = PostDraft(text=text, media_type=None, media=media,
                      platform_config={"telegram": config or {}}, thread=thread)
    return TelegramPlatform(Settings.from_env({})).validate(draft, account())


def errors(issues: list[Issue]) -> list[tuple[str, str]]:
    return [(i.path, i.code) for i in issues if i.severity == "error"]


def test_utf16_counts_astral_characters_twice() -> None:
    assert utf16_length("abc") == 3
    assert utf16_length("日本語") == 3  # CJK in the BMP: one unit each
    assert utf16_length("😀") == 2
    assert utf16_length("👨‍❤️‍👨") == 8  # the reference's example: 8 UTF-16 units


def test_text_message_limit_is_4096_utf16_units() -> None:
    assert errors(check("a" * 4096)) == []
    assert errors(check("a" * 4097)) == [("text", "too_long")]
    # 2,048 emoji are 2,048 characters to Python but 4,096 units to Telegram
    assert errors(check("😀" * 2048)) == []
    issues = check("😀" * 2049)
    assert errors(issues) == [("text", "too_long")]
    assert "4098" in issues[0].message and "4096" in issues[0].message


def test_caption_limit_is_1024_when_the_post_has_media(media: Callable[[str], MediaFile]
                                                      ) -> None:
    photo = media("photo.jpg").info
    assert errors(check("a" * 1024, (photo,))) == []
    issues = check("a" * 1025, (photo,))
    assert errors(issues) == [("text", "too_long")]
    assert "caption" in issues[0].message


def test_empty_text_needs_media(media: Callable[[str], MediaFile]) -> None:
    assert errors(check("  ")) == [("text", "required")]
    assert errors(check(None, (media("photo.jpg").info,))) == []


def test_albums_hold_two_to_ten_mixed_files(media: Callable[[str], MediaFile]) -> None:
    photo, video = media("photo.jpg").info, media("clip.mp4").info
    assert errors(check("x", (photo, video) * 5)) == []
    assert errors(check("x", (photo,) * 11)) == [("mediaUrls", "too_many_media")]


def test_photo_size_dimensions_and_format(media: Callable[[str], MediaFile]) -> None:
    photo = media("photo.jpg").info
    big = attrs.evolve(photo, size=10 * 1024 * 1024 + 1)
    assert errors(check("x", (big,))) == [("mediaUrls[0]", "too_large")]
    huge = attrs.evolve(photo, width=6000, height=4001)
    assert errors(check("x", (huge,))) == [("mediaUrls[0]", "dimensions")]
    assert errors(check("x", (media("strip.png").info,))) == [("mediaUrls[0]", "aspect_ratio")]
    tiff = attrs.evolve(photo, format="TIFF")
    assert errors(check("x", (tiff,))) == [("mediaUrls[0]", "format")]


def test_video_upload_limit_is_50_mb(media: Callable[[str], MediaFile]) -> None:
    video = media("clip.mp4").info
    assert errors(check("x", (attrs.evolve(video, size=50 * 1024 * 1024),))) == []
    too_big = attrs.evolve(video, size=50 * 1024 * 1024 + 1)
    assert errors(check("x", (too_big,))) == [("mediaUrls[0]", "too_large")]
    webm = attrs.evolve(video, format="WebM")
    assert errors(check("x", (webm,))) == [("mediaUrls[0]", "format")]


def test_thread_items_are_checked_with_their_paths() -> None:
    item = PostDraft(text="a" * 5000, media_type=None, media=(), platform_config={},
                     path="thread[1].")
    assert errors(check("fine", thread=(item,))) == [("thread[1].text", "too_long")]


@pytest.mark.parametrize(("key", "value"), [
    ("disableNotification", "yes"), ("protectContent", 1), ("disableLinkPreview", 0),
    ("hasSpoiler", "true"), ("messageThreadId", -3), ("messageThreadId", True)])
def test_bad_option_values_are_refused(key: str, value: Any) -> None:
    assert errors(check(config={key: value})) == [(f"platformConfig.telegram.{key}",
                                                   "invalid")]


def test_options_are_declared_once() -> None:
    assert {o.name for o in TelegramPlatform.options} == set(OPTIONS)
    config = {"disableNotification": True, "protectContent": True, "messageThreadId": 7,
              "disableLinkPreview": True}
    assert errors(check(config=config)) == []
    assert send_options(config, media=False) == {
        "disable_notification": True, "protect_content": True, "message_thread_id": 7,
        "link_preview_options": {"is_disabled": True}}
    assert "link_preview_options" not in send_options(config, media=True)


def test_spoiler_without_media_is_a_warning() -> None:
    issues = check(config={"hasSpoiler": True})
    assert errors(issues) == []
    assert [i.code for i in issues] == ["unused"]
