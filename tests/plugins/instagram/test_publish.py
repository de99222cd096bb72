"""Publishing flows against the sandbox, over real HTTP, with media the sandbox downloads."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chat33_core.errors import PermanentError, QuotaExceeded
from chat33_core.models import MediaType
from chat33_core.platforms import MemoryCheckpoints
from chat33_core.testing import publish_context


def ctx_for(platform: Any, settings: Any, media: list[Any], **kw: Any) -> Any:
    return publish_context(platform, settings=settings, media=media, **kw)


def published(control: Any) -> list[dict[str, Any]]:
    return control("GET", "/_sandbox/state")["published"]


def test_image_post_is_created_published_and_read_back(platform, settings, media, control):
    events: list[Any] = []
    ctx = ctx_for(platform, settings, [media("square.jpg")], text="Hello #chat33",
                  media_type=MediaType.IMAGE, events=events,
                  platform_config={"instagram": {"altText": "a red square",
                                                 "locationId": "110843418940484"}})
    result = platform.publish(ctx)

    [post] = published(control)
    assert result.first.external_id == post["id"]
    assert result.first.external_url == post["permalink"]
    assert result.first.external_url.startswith("https://www.instagram.com/p/")
    assert post["caption"] == "Hello #chat33" and post["media_type"] == "IMAGE"
    assert post["params"]["alt_text"] == "a red square"
    assert post["params"]["location_id"] == "110843418940484"
    state = ctx.checkpoints.load()
    assert state["container"] == post["containerId"] and state["mediaId"] == post["id"]
    assert [e[0] for e in events].count("published") == 1


def test_sandbox_really_downloaded_the_image(platform, settings, media, control):
    platform.publish(ctx_for(platform, settings, [media("portrait.jpg")]))
    state = control("GET", "/_sandbox/state")
    [fetch] = state["fetches"]
    assert fetch["url"].endswith("/portrait.jpg") and fetch["status"] == 200
    assert fetch["bytes"] == media("portrait.jpg").path.stat().st_size
    [container] = state["containers"]
    assert container["facts"]["width"] == 1080 and container["facts"]["height"] == 1350


def test_reel_polls_until_finished_then_publishes(platform, settings, media, control):
    events: list[Any] = []
    ctx = ctx_for(platform, settings, [media("reel.mp4")], media_type=MediaType.REEL,
                  text="my reel", events=events,
                  platform_config={"instagram": {"shareToFeed": True, "thumbOffsetMs": 1500,
                                                 "collaborators": ["friend_one"]}})
    result = platform.publish(ctx)

    [post] = published(control)
    assert post["media_product_type"] == "REELS"
    assert result.first.external_url.startswith("https://www.instagram.com/reel/")
    params = post["params"]
    assert params["media_type"] == "REELS" and params["share_to_feed"] == "true"
    assert params["thumb_offset"] == "1500"
    assert json.loads(params["collaborators"]) == ["friend_one"]
    assert any(e[0] == "processing" for e in events), "an IN_PROGRESS container is polled"
    [container] = control("GET", "/_sandbox/state")["containers"]
    assert container["facts"]["video_codec"] == "h264"
    assert container["facts"]["audio_codec"] == "aac"
    assert 3.4 < container["facts"]["duration_s"] < 3.7


def test_polling_waits_first_for_the_configured_interval(platform, settings, media):
    waits: list[float] = []
    ctx = ctx_for(platform, settings, [media("reel.mp4")], media_type=MediaType.REEL)
    ctx.sleep = waits.append
    platform.publish(ctx)
    assert waits and waits[0] == pytest.approx(settings.poll_interval_s)
    assert waits == sorted(waits), "backoff grows"


def test_reel_cover_url_is_passed(platform, settings, media, control):
    cover = media("portrait.jpg").url
    ctx = ctx_for(platform, settings, [media("reel.mp4")],
                  platform_config={"instagram": {"type": "reel", "coverUrl": cover}})
    platform.publish(ctx)
    [post] = published(control)
    assert post["params"]["cover_url"] == cover


def test_image_story(platform, settings, media, control):
    ctx = ctx_for(platform, settings, [media("tall.jpg")], text=None,
                  platform_config={"instagram": {"type": "story"}})
    result = platform.publish(ctx)
    [post] = published(control)
    assert post["media_product_type"] == "STORY" and post["media_type"] == "IMAGE"
    assert post["params"]["media_type"] == "STORIES"
    assert result.first.external_url == post["permalink"]
    assert "/stories/" in result.first.external_url


def test_video_story(platform, settings, media, control):
    ctx = ctx_for(platform, settings, [media("clip.mp4")], text=None,
                  platform_config={"instagram": {"type": "story"}})
    platform.publish(ctx)
    [post] = published(control)
    assert post["media_product_type"] == "STORY" and post["media_type"] == "VIDEO"


def test_carousel_of_images_and_a_video(platform, settings, media, control):
    files = [media("square.jpg"), media("clip.mp4"), media("portrait.jpg")]
    ctx = ctx_for(platform, settings, files, media_type=MediaType.CAROUSEL,
                  text="three things",
                  platform_config={"instagram": {"userTags": [
                      {"username": "someone", "x": 0.5, "y": 0.25}]}})
    result = platform.publish(ctx)

    state = control("GET", "/_sandbox/state")
    [post] = state["published"]
    assert post["media_type"] == "CAROUSEL_ALBUM" and post["caption"] == "three things"
    children = [c["id"] for c in post["children"]["data"]]
    assert len(children) == 3
    by_id = {c["id"]: c for c in state["containers"]}
    for child_id, file in zip(children, files, strict=True):
        child = by_id[child_id]
        assert child["carouselItem"] and child["caption"] is None, "caption on parent only"
        key = "video_url" if file.info.is_video else "image_url"
        assert child["params"][key] == file.url
    assert by_id[children[1]]["params"]["media_type"] == "VIDEO"
    assert json.loads(by_id[children[0]]["params"]["user_tags"])[0]["username"] == "someone"
    assert ctx.checkpoints.load()["children"] == children
    assert result.first.external_id == post["id"]


def test_first_comment_is_posted_after_publishing(platform, settings, media, control):
    ctx = ctx_for(platform, settings, [media("square.jpg")],
                  platform_config={"instagram": {"firstComment": "#more #tags here"}})
    result = platform.publish(ctx)
    state = control("GET", "/_sandbox/state")
    [comment] = state["comments"]
    assert comment["mediaId"] == result.first.external_id
    assert comment["text"] == "#more #tags here"
    assert result.first.extra["commentId"] == comment["id"]


def test_a_failed_first_comment_does_not_fail_the_post(platform, settings, media, control):
    control("POST", "/_sandbox/faults", json={"method": "POST", "path": "/comments$",
                                              "status": 500, "count": 5})
    events: list[Any] = []
    ctx = ctx_for(platform, settings, [media("square.jpg")], events=events,
                  platform_config={"instagram": {"firstComment": "hello"}})
    result = platform.publish(ctx)
    assert len(published(control)) == 1
    assert "firstCommentError" in result.first.extra
    assert any(e[0] == "first_comment_failed" for e in events)


def test_spent_quota_defers_before_publishing(platform, settings, media, control):
    control("POST", "/_sandbox/config", json={"quotaTotal": 1})
    platform.publish(ctx_for(platform, settings, [media("square.jpg")]))
    with pytest.raises(QuotaExceeded) as caught:
        platform.publish(ctx_for(platform, settings, [media("portrait.jpg")]))
    assert caught.value.retry_at is not None
    assert len(published(control)) == 1
    # the quota check comes before media_publish: nothing was sent to publish
    requests = control("GET", "/_sandbox/state")
    assert len(requests["published"]) == 1


def test_quota_is_read_live_not_hard_coded(platform, settings, media, control):
    control("POST", "/_sandbox/config", json={"quotaTotal": 100})
    events: list[Any] = []
    platform.publish(ctx_for(platform, settings, [media("square.jpg")], events=events))
    [quota] = [e for e in events if e[0] == "quota"]
    assert quota[2] == {"usage": 0, "total": 100}


def test_text_only_post_is_refused(platform, settings):
    ctx = publish_context(platform, settings=settings, text="just words")
    with pytest.raises(PermanentError):
        platform.publish(ctx)


def test_checkpoints_are_saved_after_each_acknowledgement(platform, settings, media):
    saves: list[dict[str, Any]] = []

    class Recording(MemoryCheckpoints):
        def save(self, data: Any) -> None:
            saves.append(dict(data))
            super().save(data)

    ctx = ctx_for(platform, settings, [media("square.jpg"), media("portrait.jpg")],
                  media_type=MediaType.CAROUSEL, checkpoints=Recording())
    platform.publish(ctx)
    children_seen = [len(s.get("children", [])) for s in saves]
    assert 1 in children_seen and 2 in children_seen, "each child saved as it is created"
    first_container = next(i for i, s in enumerate(saves) if "container" in s)
    first_started = next(i for i, s in enumerate(saves) if "publishStartedAt" in s)
    first_media = next(i for i, s in enumerate(saves) if "mediaId" in s)
    assert first_container < first_started < first_media
