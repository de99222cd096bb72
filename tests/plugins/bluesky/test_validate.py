"""Bluesky's preflight rules on real, inspected media (no network)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs
from chat33_bluesky import BlueskyPlatform
from chat33_bluesky.rules import parse_post_ref

from chat33_core.config import Settings
from chat33_core.errors import Issue
from chat33_core.media import MediaInfo
from chat33_core.platforms import MediaFile, PostDraft

from .conftest import account

Media = Callable[[str], MediaFile]


def check(text: str | None = "hello", media: Sequence[MediaInfo] = (),
          config: dict[str, Any] | None = None, thread: Sequence[PostDraft] = (),
          cover: MediaInfo | None = None, env: dict[str, str] | None = None) -> list[Issue]:
    draft = PostDraft(text=text, media_type=None, media=list(media),
                      platform_config={"bluesky": config} if config is not None else {},
                      thread=list(thread), cover_image=cover)
    return BlueskyPlatform(Settings.from_env(env or {})).validate(draft, account())


def errors(issues: list[Issue]) -> list[tuple[str, str]]:
    return [(i.path, i.code) for i in issues if i.severity == "error"]


def warnings(issues: list[Issue]) -> list[tuple[str, str]]:
    return [(i.path, i.code) for i in issues if i.severity == "warning"]


# --- text -------------------------------------------------------------------------------


def test_300_graphemes_pass_and_301_do_not() -> None:
    assert check("a" * 300) == []
    issues = check("a" * 301)
    assert errors(issues) == [("text", "too_long")]
    assert "301 graphemes" in issues[0].message and "300" in issues[0].message


def test_emoji_sequences_count_once_each_as_graphemes() -> None:
    # 120 family emoji: 720 code points (far over 300) but 120 graphemes, 2,400 bytes
    assert check("👨‍❤️‍👨" * 120) == []


def test_the_3000_byte_cap_applies_even_under_300_graphemes() -> None:
    issues = check("👨‍❤️‍👨" * 151)  # 151 graphemes, 3,020 bytes
    assert errors(issues) == [("text", "too_long")]
    assert "3020 bytes" in issues[0].message


def test_a_post_needs_text_media_or_a_link_card(media: Media) -> None:
    assert errors(check(None)) == [("text", "required")]
    assert errors(check("  ")) == [("text", "required")]
    assert check(None, [media("photo.jpg").info]) == []
    assert check("", config={"linkCard": {"uri": "https://example.com", "title": "t",
                                          "description": "d"}}) == []


def test_lone_surrogates_are_refused() -> None:
    assert errors(check("bad \ud800")) == [("text", "invalid")]


def test_thread_items_are_checked_with_their_own_paths() -> None:
    item = PostDraft(text="b" * 301, media_type=None, media=(), platform_config={},
                     path="thread[0].")
    assert errors(check("ok", thread=[item])) == [("thread[0].text", "too_long")]


# --- media ------------------------------------------------------------------------------


def test_up_to_four_images(media: Media) -> None:
    photo = media("photo.jpg").info
    assert check(media=[photo] * 4) == []
    issues = check(media=[photo] * 5)
    assert errors(issues) == [("mediaUrls", "too_many_media")]
    assert "this post has 5" in issues[0].message


def test_images_and_a_video_do_not_mix(media: Media) -> None:
    assert errors(check(media=[media("photo.jpg").info, media("clip.mp4").info])) == [
        ("mediaUrls", "media_mix")]


def test_one_video_only(media: Media) -> None:
    clip = media("clip.mp4").info
    assert check(media=[clip]) == []
    assert errors(check(media=[clip, clip])) == [("mediaUrls", "too_many_media")]


def test_an_image_over_2_000_000_bytes_is_refused_and_the_limit_is_configurable(
        media: Media) -> None:
    photo = media("photo.jpg").info
    big = attrs.evolve(photo, size=2_000_001)
    issues = check(media=[big])
    assert errors(issues) == [("mediaUrls[0]", "too_large")]
    assert "2000001 bytes" in issues[0].message
    assert check(media=[attrs.evolve(photo, size=2_000_000)]) == []
    lower = {"CHAT33_BLUESKY_IMAGE_MAX_BYTES": "1000000"}
    assert errors(check(media=[attrs.evolve(photo, size=1_500_000)], env=lower)) == [
        ("mediaUrls[0]", "too_large")]


def test_image_formats(media: Media) -> None:
    tiff = attrs.evolve(media("photo.jpg").info, format="TIFF", mime_type="image/tiff")
    assert errors(check(media=[tiff])) == [("mediaUrls[0]", "format")]
    gif = attrs.evolve(media("photo.jpg").info, kind="gif", format="GIF", frames=5,
                       animated=True)
    assert warnings(check(media=[gif])) == [("mediaUrls[0]", "animated_gif")]


def test_video_container_size_and_duration(media: Media) -> None:
    clip = media("clip.mp4").info
    assert errors(check(media=[attrs.evolve(clip, format="QuickTime")])) == [
        ("mediaUrls[0]", "format")]
    assert errors(check(media=[attrs.evolve(clip, size=300_000_001)])) == [
        ("mediaUrls[0]", "too_large")]
    long = attrs.evolve(clip, duration_s=181.0)
    assert errors(check(media=[long])) == [("mediaUrls[0]", "duration")]
    assert check(media=[long], env={"CHAT33_BLUESKY_VIDEO_MAX_DURATION_S": "300"}) == []


# --- platformConfig.bluesky ---------------------------------------------------------------


def test_alt_text_a_string_or_one_per_media_file(media: Media) -> None:
    photo = media("photo.jpg").info
    assert check(media=[photo, photo], config={"altText": ["a", "b"]}) == []
    assert check(media=[photo, photo], config={"altText": "both"}) == []
    assert errors(check(media=[photo], config={"altText": ["a", "b"]})) == [
        ("platformConfig.bluesky.altText", "too_many")]
    assert errors(check(media=[photo], config={"altText": [1]})) == [
        ("platformConfig.bluesky.altText", "invalid")]
    assert warnings(check(config={"altText": "nothing to describe"})) == [
        ("platformConfig.bluesky.altText", "unused")]


def test_video_alt_text_is_at_most_1000_graphemes(media: Media) -> None:
    clip = media("clip.mp4").info
    assert check(media=[clip], config={"altText": "a" * 1000}) == []
    assert errors(check(media=[clip], config={"altText": ["a" * 1001]})) == [
        ("platformConfig.bluesky.altText[0]", "too_long")]


def test_langs() -> None:
    assert check(config={"langs": ["en", "pt-BR", "ja"]}) == []
    assert errors(check(config={"langs": ["en", "de", "fr", "es"]})) == [
        ("platformConfig.bluesky.langs", "too_many")]
    assert errors(check(config={"langs": ["english!"]})) == [
        ("platformConfig.bluesky.langs[0]", "invalid")]
    assert errors(check(config={"langs": "en"})) == [("platformConfig.bluesky.langs", "invalid")]


def test_link_card(media: Media) -> None:
    card = {"uri": "https://example.com/a", "title": "A", "description": "About A"}
    assert check(config={"linkCard": card}) == []
    assert check(config={"linkCard": card}, cover=media("thumb.jpg").info) == []
    assert errors(check(config={"linkCard": {**card, "uri": "ftp://x"}})) == [
        ("platformConfig.bluesky.linkCard.uri", "invalid")]
    assert errors(check(config={"linkCard": {**card, "image": "x"}})) == [
        ("platformConfig.bluesky.linkCard.image", "unknown")]
    assert errors(check(media=[media("photo.jpg").info], config={"linkCard": card})) == [
        ("platformConfig.bluesky.linkCard", "conflict")]
    big = attrs.evolve(media("thumb.jpg").info, size=1_000_001)
    assert errors(check(config={"linkCard": card}, cover=big)) == [
        ("coverImageUrl", "too_large")]
    assert warnings(check(cover=media("thumb.jpg").info)) == [("coverImageUrl", "unused")]


def test_reply_to_takes_an_at_uri_or_a_bsky_app_link() -> None:
    uri = "at://did:plc:abc/app.bsky.feed.post/3k4duaz5vfs2b"
    assert check(config={"replyTo": uri}) == []
    assert check(config={"replyTo": "https://bsky.app/profile/a.test/post/3k4duaz5vfs2b"}) == []
    assert errors(check(config={"replyTo": "https://example.com/post/1"})) == [
        ("platformConfig.bluesky.replyTo", "invalid")]
    assert parse_post_ref(uri) == ("did:plc:abc", "3k4duaz5vfs2b")
    assert parse_post_ref("at://did:plc:abc/app.bsky.feed.like/3k4") is None


def test_options_are_declared_once_as_the_accepted_config_keys() -> None:
    from chat33_bluesky.rules import OPTIONS

    declared = {o.name for o in BlueskyPlatform.options}
    assert declared == set(OPTIONS) == {"altText", "langs", "linkCard", "replyTo"}
