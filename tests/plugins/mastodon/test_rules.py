"""Mastodon's counting and preflight rules (platforms-more.md §2.2-§2.5)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from chat33_mastodon import MastodonPlatform, rules

from chat33_core.config import Settings
from chat33_core.platforms import MediaFile, PostDraft

from .conftest import account

Media = Callable[[str], MediaFile]
URL = "https://example.com/a/very/long/path/that/goes/on/and/on?with=query&and=more"


@pytest.mark.parametrize(("text", "expected"), [
    ("hello", 5),
    (URL, 23),  # every URL counts as 23, however long
    ("see http://x.co", 4 + 23),  # short URLs too
    (f"read {URL}.", 5 + 23 + 1),  # the full stop ends the sentence, not the link
    ("@alice@social.example hi", 6 + 3),  # only @alice counts
    ("@alice hi", 9),  # a local mention as it is
    ("mail bob@example.com", 20),  # an e-mail address is not a mention
    ("👨‍❤️‍👨", 1),  # a ZWJ sequence is one grapheme cluster (6 code points)
    ("🇵🇹🇧🇷", 2),  # two flags
    ("e\u0301", 1),  # e + combining acute
    ("日本語のテキスト", 8),
])
def test_count_as_mastodon_does(text: str, expected: int) -> None:
    assert rules.count(text) == expected


def test_the_spoiler_text_counts_and_a_url_costs_what_the_instance_says() -> None:
    assert rules.count("body", spoiler_text="CW: food") == 12
    assert rules.count(URL, url_characters=30) == 30


def make(env: dict[str, str] | None = None) -> MastodonPlatform:
    return MastodonPlatform(Settings.from_env(env or {}))


def draft(text: str | None = "hi", media: tuple[MediaFile, ...] = (),
          config: dict[str, object] | None = None,
          thread: tuple[PostDraft, ...] = ()) -> PostDraft:
    return PostDraft(text=text, media_type=None, media=[m.info for m in media],
                     platform_config={"mastodon": config} if config is not None else {},
                     thread=thread)


def errors(platform: MastodonPlatform, d: PostDraft) -> list[tuple[str, str | None]]:
    return [(i.path, i.code) for i in platform.validate(d, account())
            if i.severity == "error"]


def test_500_characters_by_default_with_urls_at_23() -> None:
    platform = make()
    assert errors(platform, draft("x" * 500)) == []
    assert errors(platform, draft("x" * 501)) == [("text", "too_long")]
    # 470 + a space + a 90-character URL counted as 23 = 494: fits
    assert errors(platform, draft("x" * 470 + " " + URL)) == []
    message = platform.validate(draft("x" * 501), account())[0].message
    assert "501 characters" in message and "allows 500" in message


def test_the_content_warning_counts_towards_the_limit() -> None:
    platform = make()
    assert errors(platform, draft("x" * 495, config={"spoilerText": "CW: x"})) == []
    assert errors(platform, draft("x" * 496, config={"spoilerText": "CW: x"})) == [
        ("text", "too_long")]


def test_the_limit_publishing_read_from_the_instance_is_used() -> None:
    base = "https://big.example"
    big = account(metadata={"instance": base})
    platform = make()
    assert platform.validate(draft("x" * 600), big)[0].code == "too_long"
    rules.remember(base, rules.limits_of_instance(
        {"configuration": {"statuses": {"max_characters": 5000}}}))
    assert platform.validate(draft("x" * 600), big) == []
    # another instance keeps the default
    assert platform.validate(draft("x" * 600), account(metadata={"instance": "https://o.ex"}))


def test_limits_read_long_ago_are_not_trusted() -> None:
    rules.remember("https://old.example", rules.InstanceLimits(max_characters=9000), now=0.0)
    assert rules.known_limits("https://old.example") is None


def test_an_operator_may_raise_the_default_limit() -> None:
    platform = make({"CHAT33_MASTODON_MAX_CHARACTERS": "1000"})
    assert errors(platform, draft("x" * 1000)) == []
    assert errors(platform, draft("x" * 1001)) == [("text", "too_long")]
    assert errors(make({"CHAT33_MASTODON_MAX_CHARACTERS": "lots"}), draft("x" * 501))


def test_instance_configuration_is_read_with_defaults_for_what_is_missing() -> None:
    limits = rules.limits_of_instance({"configuration": {
        "statuses": {"max_characters": 1000, "max_media_attachments": "four"},
        "media_attachments": {"image_size_limit": 8_388_608}}})
    assert limits.max_characters == 1000 and limits.max_attachments == 4
    assert limits.image_max_bytes == 8_388_608 and limits.description_limit == 1500
    assert rules.limits_of_instance("not json") == rules.InstanceLimits()


def test_every_thread_item_is_counted() -> None:
    long = PostDraft(text="y" * 501, media_type=None, media=[], platform_config={},
                     path="thread[0].")
    assert errors(make(), draft("fine", thread=(long,))) == [("thread[0].text", "too_long")]


def test_text_or_media_is_needed(media: Media) -> None:
    assert errors(make(), draft("  ")) == [("text", "required")]
    assert errors(make(), draft(None, media=(media("photo.jpg"),))) == []


def test_four_images_or_one_video_or_gif(media: Media) -> None:
    platform = make()
    photo, video, gif = media("photo.jpg"), media("clip.mp4"), media("moving.gif")
    assert errors(platform, draft(media=(photo,) * 4)) == []
    assert errors(platform, draft(media=(photo,) * 5)) == [("mediaUrls", "too_many_media")]
    assert errors(platform, draft(media=(video,))) == []
    assert errors(platform, draft(media=(gif,))) == []
    assert errors(platform, draft(media=(photo, video))) == [("mediaUrls", "media_mix")]
    assert errors(platform, draft(media=(gif, photo))) == [("mediaUrls", "media_mix")]


def test_sizes_follow_the_instance(media: Media) -> None:
    photo, video = media("photo.jpg"), media("clip.mp4")
    tiny = rules.InstanceLimits(image_max_bytes=100, video_max_bytes=100,
                                video_matrix_limit=100, video_frame_rate_limit=1)
    image_issues = rules.check_media([photo.info], tiny, "")
    assert [i.code for i in image_issues] == ["too_large"]
    video_issues = rules.check_media([video.info], tiny, "")
    assert sorted(str(i.code) for i in video_issues) == ["dimensions", "frame_rate",
                                                         "too_large"]


@pytest.mark.parametrize(("config", "path"), [
    ({"visibility": "friends"}, "platformConfig.mastodon.visibility"),
    ({"spoilerText": 3}, "platformConfig.mastodon.spoilerText"),
    ({"sensitive": "yes"}, "platformConfig.mastodon.sensitive"),
    ({"language": "English"}, "platformConfig.mastodon.language"),
    ({"inReplyToId": "https://x/1"}, "platformConfig.mastodon.inReplyToId"),
    ({"altText": 5}, "platformConfig.mastodon.altText"),
])
def test_bad_options_are_named(config: dict[str, object], path: str) -> None:
    assert [p for p, _ in errors(make(), draft(config=config))] == [path]


def test_good_options_pass_and_alt_text_has_a_limit(media: Media) -> None:
    photo = media("photo.jpg")
    good = {"visibility": "unlisted", "spoilerText": "CW", "sensitive": True,
            "language": "en", "inReplyToId": "110000000000000001", "altText": ["a cat"]}
    assert errors(make(), draft(media=(photo,), config=good)) == []
    assert errors(make(), draft(media=(photo,), config={"altText": ["a" * 1501]})) == [
        ("platformConfig.mastodon.altText[0]", "too_long")]
    assert errors(make(), draft(media=(photo,), config={"altText": ["a", "b"]})) == [
        ("platformConfig.mastodon.altText", "too_many")]
    warnings = make().validate(draft(config={"altText": "x"}), account())
    assert [w.severity for w in warnings] == ["warning"]


def test_options_are_declared_once() -> None:
    assert {o.name for o in MastodonPlatform.options} == set(rules.OPTIONS)
    assert {"visibility", "spoilerText", "sensitive", "language", "altText"} <= set(
        rules.OPTIONS)
