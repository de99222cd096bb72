"""Validation: YouTube's metadata rules, each failure naming the limit and the value."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from chat33_youtube import YouTubePlatform
from chat33_youtube.rules import first_line_title, tags_length
from hypothesis import given, settings
from hypothesis import strategies as st

from chat33_core.config import Settings
from chat33_core.errors import Issue
from chat33_core.media import IMAGE, MediaInfo
from chat33_core.models import Account, MediaType
from chat33_core.platforms import PostDraft
from chat33_core.testing import validate_draft

from .conftest import video_info

ACCOUNT = Account(id="chan_1", org_id="org_1", platform="youtube", name="channel")
PLATFORM = YouTubePlatform(Settings.from_env({}))
OK = {"title": "My video", "selfDeclaredMadeForKids": False}


def check(text: str | None = "A description", media: Any = None, cover: Any = None,
          media_type: MediaType | None = MediaType.VIDEO, **config: Any) -> list[Issue]:
    cfg = {**OK, **config}
    cfg = {k: v for k, v in cfg.items() if v is not ...}
    draft = PostDraft(text=text, media_type=media_type,
                      media=[video_info(10_000_000)] if media is None else media,
                      platform_config={"youtube": cfg}, cover_image=cover)
    return validate_draft(PLATFORM, draft, ACCOUNT)


def errors(issues: list[Issue]) -> dict[str, str]:
    return {i.path: i.message for i in issues if i.severity == "error"}


def warnings(issues: list[Issue]) -> dict[str, str]:
    return {i.path: i.message for i in issues if i.severity == "warning"}


def test_a_complete_post_passes() -> None:
    assert check() == []


def test_a_video_is_required() -> None:
    assert "YouTube needs a video" in errors(check(media=[]))["mediaUrls"]
    image = MediaInfo(kind=IMAGE, format="JPEG", mime_type="image/jpeg", size=100,
                      width=10, height=10)
    assert "videos only" in errors(check(media=[image]))["mediaUrls[0]"]
    assert "2 files" in errors(check(media=[video_info(10), video_info(10)]))["mediaUrls"]
    assert "not image" in errors(check(media_type=MediaType.IMAGE))["mediaType"]


def test_title_limits() -> None:
    path = "platformConfig.youtube.title"
    assert "101 characters" in errors(check(title="x" * 101))[path]
    assert errors(check(title="x" * 100)) == {}
    assert "< and >" in errors(check(title="a <b> title"))[path]
    assert "must not be empty" in errors(check(title="   "))[path]


def test_missing_title_falls_back_to_the_first_line_as_a_warning() -> None:
    issues = check(text="\n  Holiday in Lisbon  \nday two", title=...)
    assert errors(issues) == {}
    assert "'Holiday in Lisbon'" in warnings(issues)["platformConfig.youtube.title"]


def test_missing_title_without_text_is_an_error() -> None:
    assert "title is required" in errors(check(text=None, title=...))[
        "platformConfig.youtube.title"]


def test_description_is_counted_in_utf8_bytes() -> None:
    assert errors(check(text="é" * 2500)) == {}  # 5,000 bytes
    message = errors(check(text="é" * 2501))["text"]
    assert "5,002 bytes" in message and "5,000" in message
    assert "< and >" in errors(check(text="a <script>"))["text"]


def test_tags_are_counted_as_youtube_counts_them() -> None:
    path = "platformConfig.youtube.tags"
    # 50 tags "Foo Baz": 9 characters each with quotes, 49 commas = 499
    assert errors(check(tags=["Foo Baz"] * 50)) == {}
    message = errors(check(tags=["Foo Baz"] * 50 + ["x"]))[path]
    assert "501 characters" in message and "500" in message
    assert "list of strings" in errors(check(tags="a,b"))[path]
    assert "< and >" in errors(check(tags=["ok", "<no>"]))[f"{path}[1]"]


def test_privacy_and_publish_at() -> None:
    cfg = "platformConfig.youtube."
    assert "'secret' is not one of" in errors(check(privacyStatus="secret"))[
        cfg + "privacyStatus"]
    later = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    assert check(privacyStatus="private", publishAt=later) == []
    assert check(publishAt=later) == [], "publishAt alone means a private video"
    assert "needs privacyStatus private (got public)" in errors(
        check(privacyStatus="public", publishAt=later))[cfg + "publishAt"]
    assert "UTC offset" in errors(check(privacyStatus="private",
                                        publishAt="2030-01-01T10:00:00"))[cfg + "publishAt"]
    past = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    assert "in the past" in warnings(check(privacyStatus="private", publishAt=past))[
        cfg + "publishAt"]


def test_category_must_be_numeric() -> None:
    path = "platformConfig.youtube.categoryId"
    assert check(categoryId="22") == [] and check(categoryId=22) == []
    assert "not a numeric category id" in errors(check(categoryId="music"))[path]


def test_made_for_kids_has_no_silent_default() -> None:
    path = "platformConfig.youtube.selfDeclaredMadeForKids"
    assert "required" in errors(check(selfDeclaredMadeForKids=...))[path]
    assert "true or false" in errors(check(selfDeclaredMadeForKids="no"))[path]
    assert check(selfDeclaredMadeForKids=True) == []


@pytest.mark.parametrize(("fmt", "ok"), [("JPEG", True), ("PNG", True), ("WEBP", False),
                                         ("GIF", False)])
def test_thumbnail_must_be_jpeg_or_png(fmt: str, ok: bool) -> None:
    cover = MediaInfo(kind=IMAGE, format=fmt, mime_type=f"image/{fmt.lower()}", size=50_000,
                      width=1280, height=720)
    found = errors(check(cover=cover))
    assert ("coverImageUrl" not in found) is ok
    if not ok:
        assert f"not {fmt}" in found["coverImageUrl"]


def test_vertical_short_video_is_announced_as_a_short() -> None:
    message = warnings(check(media=[video_info(1000, 1080, 1920, 59.0)]))["mediaUrls[0]"]
    assert "Short" in message and "59 s" in message and "1080x1920" in message
    assert warnings(check(media=[video_info(1000, 1080, 1080, 180.0)]))
    assert not warnings(check(media=[video_info(1000, 1080, 1080, 181.0)]))
    assert not warnings(check(media=[video_info(1000, 1920, 1080, 30.0)]))


def test_long_videos_need_a_verified_channel() -> None:
    assert "verified" in warnings(check(media=[video_info(1000, seconds=16 * 60)]))[
        "mediaUrls[0]"]
    assert "12 h" in errors(check(media=[video_info(1000, seconds=13 * 3600)]))[
        "mediaUrls[0]"]


# --- properties ------------------------------------------------------------------------------

tag_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters=","),
                   min_size=1, max_size=40)


def displayed(tags: list[str]) -> str:
    """The tag field as YouTube Studio shows it: comma-separated, spaced tags quoted."""
    return ",".join(f'"{t}"' if " " in t else t for t in tags)


@settings(max_examples=100, deadline=None)
@given(st.lists(tag_text, max_size=30))
def test_tag_count_is_the_length_of_the_displayed_field(tags: list[str]) -> None:
    assert tags_length(tags) == len(displayed(tags))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["a", "Foo Baz", "long tag with spaces", "x" * 30, "é"]),
                max_size=60))
def test_tags_fail_validation_exactly_over_500(tags: list[str]) -> None:
    path = "platformConfig.youtube.tags"
    assert (path in errors(check(tags=tags))) is (len(displayed(tags)) > 500)


def usable_line(text: str) -> list[str] | None:
    for line in text.splitlines():
        words = line.replace("<", " ").replace(">", " ").split()
        if words:
            return words
    return None


@settings(max_examples=100, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs",)), max_size=400))
def test_title_fallback_is_a_word_boundary_prefix_of_the_first_line(text: str) -> None:
    title = first_line_title(text)
    words = usable_line(text)
    if words is None:
        assert title is None
        return
    assert title is not None and 0 < len(title) <= 100
    assert "<" not in title and ">" not in title and title == title.strip()
    line = " ".join(words)
    if len(line) <= 100:
        assert title == line
    elif len(words[0]) > 100:
        assert title == words[0][:100]  # one long word: cut hard
    else:
        kept = title.split(" ")
        assert kept == words[: len(kept)], "whole words only"
        assert len(" ".join(words[: len(kept) + 1])) > 100, "as many words as fit"


@settings(max_examples=100, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs",)), max_size=300))
def test_validation_warns_with_the_title_publishing_will_use(text: str) -> None:
    title_issues = [i for i in check(text=text, title=...)
                    if i.path == "platformConfig.youtube.title"]
    fallback = first_line_title(text)
    if fallback is None:
        assert [i.severity for i in title_issues] == ["error"]
    else:
        [issue] = title_issues
        assert issue.severity == "warning" and repr(fallback) in issue.message
