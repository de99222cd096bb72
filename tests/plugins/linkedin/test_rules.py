"""LinkedIn's preflight: commentary length as sent (UTF-16, escaped), media, options."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chat33_linkedin import LinkedInPlatform
from chat33_linkedin.rules import MAX_CHARACTERS, count, escape

from chat33_core.config import Settings
from chat33_core.errors import Issue
from chat33_core.platforms import MediaFile, PostDraft
from chat33_core.testing import validate_draft

from .conftest import account

Media = Callable[[str], MediaFile]
PLATFORM = LinkedInPlatform(Settings.from_env({}))


def issues(text: str | None = "hello", media: list[MediaFile] | None = None,
           config: dict[str, Any] | None = None, **changes: Any) -> list[Issue]:
    draft = PostDraft(text=text, media_type=None, media=[m.info for m in media or []],
                      platform_config={"linkedin": config} if config is not None else {})
    return validate_draft(PLATFORM, draft, account(**changes))


def codes(found: list[Issue]) -> list[str | None]:
    return [i.code for i in found if i.severity == "error"]


def test_every_reserved_character_is_escaped_with_a_backslash() -> None:
    assert escape(r"a\b|{}@[]()<>#*_~ z") == "a\\\\b\\|\\{\\}\\@\\[\\]\\(\\)\\<\\>\\#\\*\\_\\~ z"
    assert escape("plain text, 100% ok!") == "plain text, 100% ok!"


def test_the_limit_is_3000_utf16_units_of_the_escaped_text() -> None:
    assert issues("x" * MAX_CHARACTERS) == []
    assert codes(issues("x" * (MAX_CHARACTERS + 1))) == ["too_long"]
    # an emoji outside the BMP is two UTF-16 units
    assert count("😀") == 2
    assert codes(issues("😀" * 1501)) == ["too_long"]
    # every reserved character is sent with its backslash
    assert count("#tag") == 5
    assert codes(issues("#" * 1501)) == ["too_long"]
    assert issues("#" * 1500) == []


def test_text_or_media_is_required(media: Media) -> None:
    assert codes(issues("  ")) == ["required"]
    assert issues("", media=[media("photo.jpg")]) == []


def test_one_video_alone_or_up_to_20_images(media: Media) -> None:
    assert issues(media=[media("photo.jpg")] * 20) == []
    assert codes(issues(media=[media("photo.jpg")] * 21)) == ["too_many_media"]
    assert codes(issues(media=[media("clip.mp4"), media("photo.jpg")])) == ["media_mix"]
    assert issues(media=[media("clip.mp4")]) == []


def test_videos_last_3_seconds_to_30_minutes(media: Media) -> None:
    found = codes(issues(media=[media("short.mp4")]))
    assert "duration" in found and "too_small" in found


def test_the_author_must_be_a_person_or_organization_urn() -> None:
    assert codes(issues(external_id="12345")) == ["author"]
    assert issues(external_id="urn:li:organization:3300") == []


def test_options_are_checked(media: Media) -> None:
    assert issues(config={"visibility": "CONNECTIONS", "feedDistribution": "NONE",
                          "isReshareDisabledByAuthor": True}) == []
    assert [i.path for i in issues(config={"visibility": "FRIENDS"})] == [
        "platformConfig.linkedin.visibility"]
    assert [i.code for i in issues(config={"altText": "a photo"})] == ["unused"]
    assert issues(media=[media("photo.jpg")], config={"altText": ["one"]}) == []
    assert codes(issues(media=[media("photo.jpg")], config={"altText": ["a", "b"]})) == [
        "too_many"]
    assert codes(issues(media=[media("photo.jpg")], config={"altText": "x" * 4087})) == [
        "too_long"]
