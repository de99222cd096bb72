"""Publishing to the Threads sandbox over real HTTP: text, image, video, carousel,
threads, options and the publishing quota."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from chat33_core.errors import PermanentError, QuotaExceeded
from chat33_core.platforms import MediaFile

from .conftest import Sandbox


def test_a_text_post_is_a_text_container_then_published(sandbox: Sandbox) -> None:
    result = sandbox.platform.publish(sandbox.context(["hello threads"]))
    [post] = sandbox.posts()
    assert post["text"] == "hello threads" and post["media_type"] == "TEXT_POST"
    assert result.first.external_id == post["id"]
    assert result.first.external_url == post["permalink"]
    assert sandbox.publishes() == 1


def test_an_image_is_pulled_from_our_media_url(sandbox: Sandbox,
                                               media: Callable[[str], MediaFile]) -> None:
    photo = media("photo.jpg")
    sandbox.platform.publish(sandbox.context(["a photo"], media=[[photo]],
                                             platform_config={"threads": {
                                                 "altText": "a red square"}}))
    [post] = sandbox.posts()
    assert post["media_type"] == "IMAGE" and post["params"]["alt_text"] == "a red square"
    [fetch] = sandbox.state()["fetches"]
    assert fetch["url"] == photo.url and fetch["status"] == 200
    assert fetch["bytes"] == photo.path.stat().st_size


def test_a_video_container_is_polled_until_finished(sandbox: Sandbox,
                                                    media: Callable[[str], MediaFile]) -> None:
    sandbox.config(processingPolls=3)
    sandbox.platform.publish(sandbox.context(["a clip"], media=[[media("clip.mp4")]]))
    [post] = sandbox.posts()
    assert post["media_type"] == "VIDEO"
    statuses = [r for r in sandbox.state()["requests"] if r.startswith("GET")
                and r.split("/")[-1] == post["containerId"]]
    assert len(statuses) >= 4  # three IN_PROGRESS reads, then FINISHED


def test_a_carousel_is_items_then_the_carousel_container(
        sandbox: Sandbox, media: Callable[[str], MediaFile]) -> None:
    files = [media("photo.jpg"), media("photo2.png"), media("clip.mp4")]
    sandbox.platform.publish(sandbox.context(["three"], media=[files]))
    [post] = sandbox.posts()
    assert post["media_type"] == "CAROUSEL_ALBUM" and len(post["children"]) == 3
    items = [c for c in sandbox.state()["containers"] if c["carouselItem"]]
    assert [c["id"] for c in items] == post["children"]
    assert sandbox.publishes() == 1  # one post for the whole carousel


def test_a_thread_answers_the_item_before_it(sandbox: Sandbox) -> None:
    result = sandbox.platform.publish(sandbox.context(["one", "two", "three"]))
    by_text = {p["text"]: p for p in sandbox.posts()}
    assert by_text["one"]["replyTo"] is None
    assert by_text["two"]["replyTo"] == by_text["one"]["id"]
    assert by_text["three"]["replyTo"] == by_text["two"]["id"]
    assert [r.external_id for r in result.receipts] == [by_text[t]["id"]
                                                        for t in ("one", "two", "three")]


def test_options_reach_the_container(sandbox: Sandbox) -> None:
    config = {"threads": {"replyControl": "mentioned_only", "topicTag": "chat33",
                          "linkAttachment": "https://example.com/a"}}
    sandbox.platform.publish(sandbox.context(["see https://example.com/a"],
                                             platform_config=config))
    [post] = sandbox.posts()
    assert post["params"]["reply_control"] == "mentioned_only"
    assert post["params"]["topic_tag"] == "chat33"
    assert post["params"]["link_attachment"] == "https://example.com/a"


def test_reply_to_id_answers_an_existing_post(sandbox: Sandbox) -> None:
    first = sandbox.platform.publish(sandbox.context(["root"])).first.external_id
    sandbox.platform.publish(sandbox.context(["answer"], platform_config={
        "threads": {"replyToId": first}}))
    answer = next(p for p in sandbox.posts() if p["text"] == "answer")
    assert answer["replyTo"] == first


def test_a_spent_quota_defers_without_publishing(sandbox: Sandbox) -> None:
    sandbox.config(quotaTotal=1)
    sandbox.platform.publish(sandbox.context(["the one allowed"]))
    with pytest.raises(QuotaExceeded) as caught:
        sandbox.platform.publish(sandbox.context(["one too many"]))
    assert caught.value.retry_at is not None
    assert sandbox.publishes() == 1 and len(sandbox.posts()) == 1


def test_the_reply_quota_is_separate(sandbox: Sandbox) -> None:
    sandbox.config(replyQuotaTotal=0)
    with pytest.raises(QuotaExceeded, match="replies") as caught:
        sandbox.platform.publish(sandbox.context(["root", "reply"]))
    assert [r.external_id for r in caught.value.posted] == [sandbox.posts()[0]["id"]]


def test_a_video_that_fails_processing_fails_the_post(
        sandbox: Sandbox, media: Callable[[str], MediaFile]) -> None:
    with pytest.raises(PermanentError, match="FAILED_PROCESSING_VIDEO"):
        sandbox.platform.publish(sandbox.context(["bad"], media=[[media("broken.mp4")]]))
    assert sandbox.posts() == []


def test_the_token_never_travels_in_a_url(sandbox: Sandbox) -> None:
    seen: list[str] = []
    sandbox.http.event_hooks["request"].append(lambda request: seen.append(str(request.url)))
    try:
        sandbox.platform.publish(sandbox.context(["quiet token"]))
    finally:
        sandbox.http.event_hooks["request"].pop()
    assert seen and not any("sandbox-token" in url for url in seen)


def test_a_carousel_item_that_fails_fails_the_post_before_the_carousel(
        sandbox: Sandbox, media: Callable[[str], MediaFile]) -> None:
    files = [media("photo.jpg"), media("broken.mp4")]
    with pytest.raises(PermanentError, match="FAILED_PROCESSING_VIDEO"):
        sandbox.platform.publish(sandbox.context(["two"], media=[files]))
    containers = sandbox.state()["containers"]
    assert [c["mediaType"] for c in containers] == ["IMAGE", "VIDEO"]  # no CAROUSEL
    assert sandbox.posts() == []
