"""Publishing to the X sandbox over real HTTP: text, photos, GIF, video, threads, options."""

from __future__ import annotations

import itertools

import pytest

from chat33_core.errors import PermanentError
from chat33_core.testing import RecordingSleep

from .conftest import SEGMENT_BYTES, USERNAME, Sandbox


def test_text_post_is_created_with_its_url(sandbox: Sandbox) -> None:
    result = sandbox.platform.publish(sandbox.context(["Hello, X! https://example.com"]))
    (tweet,) = sandbox.tweets()
    assert tweet["text"] == "Hello, X! https://example.com"
    assert tweet["in_reply_to"] is None
    assert result.first.external_id == tweet["id"]
    assert result.first.external_url == f"https://x.com/{USERNAME}/status/{tweet['id']}"


def test_receipts_name_the_chat33_post_of_each_item(sandbox: Sandbox) -> None:
    ctx = sandbox.context(["one", "two"])
    result = sandbox.platform.publish(ctx)
    assert [r.post_id for r in result.receipts] == [item.post_id for item in ctx.items]


def test_photos_are_uploaded_in_segments_and_attached(sandbox: Sandbox, media) -> None:
    files = [media("photo.jpg"), media("photo2.png")]
    assert files[0].path.stat().st_size > SEGMENT_BYTES  # several segments
    result = sandbox.platform.publish(sandbox.context(["two photos"], media=[files]))
    state = sandbox.state()
    (tweet,) = state["tweets"]
    assert tweet["id"] == result.first.external_id
    assert len(tweet["media_keys"]) == 2 and all(k.startswith("3_") for k in tweet["media_keys"])
    for item, upload in zip(files, state["media"], strict=True):
        assert upload["category"] == "tweet_image" and upload["state"] == "succeeded"
        assert upload["total_bytes"] == item.path.stat().st_size
        expected_segments = -(-item.path.stat().st_size // SEGMENT_BYTES)
        assert len(upload["segments"]) == expected_segments


def test_image_only_post_needs_no_text(sandbox: Sandbox, media) -> None:
    sandbox.platform.publish(sandbox.context([None], media=[[media("photo.jpg")]]))
    (tweet,) = sandbox.tweets()
    assert tweet["text"] == "" and len(tweet["media_keys"]) == 1


def test_video_waits_for_processing_honouring_check_after_secs(sandbox: Sandbox, media
                                                                ) -> None:
    sandbox.config(processing_steps=3, check_after_secs=7)
    sleep = RecordingSleep()
    ctx = sandbox.context(["a video"], media=[[media("clip.mp4")]])
    ctx.sleep = sleep
    events: list[str] = []
    ctx.log = lambda event, message, **data: events.append(event)
    sandbox.platform.publish(ctx)
    (upload,) = sandbox.state()["media"]
    assert upload["category"] == "tweet_video" and upload["state"] == "succeeded"
    assert upload["polls"] == 3
    # every wait is X's hint, never our own backoff
    assert sleep.waits == [7.0, 7.0, 7.0]
    (tweet,) = sandbox.tweets()
    assert tweet["media_keys"] == [upload["media_key"]]
    assert {"x.media.initialized", "x.media.appended", "x.media.finalized", "x.media.ready",
            "x.posted"} <= set(events)


def test_animated_gif_uses_the_gif_category(sandbox: Sandbox, media) -> None:
    sandbox.platform.publish(sandbox.context(["gif"], media=[[media("anim.gif")]]))
    (upload,) = sandbox.state()["media"]
    assert upload["category"] == "tweet_gif" and upload["media_key"].startswith("16_")


def test_failed_processing_is_permanent_with_xs_message(sandbox: Sandbox, media) -> None:
    with pytest.raises(PermanentError) as info:
        sandbox.platform.publish(sandbox.context(["bad video"], media=[[media("broken.mp4")]]))
    assert "Unsupported video format" in info.value.message
    assert info.value.platform_code == "InvalidMedia"
    assert sandbox.tweets() == []


def test_thread_items_reply_to_the_previous_post(sandbox: Sandbox, media) -> None:
    texts = [f"part {i}/5" for i in range(1, 6)]
    result = sandbox.platform.publish(
        sandbox.context(texts, media=[[], [media("photo.jpg")]]))
    tweets = sandbox.tweets()
    assert [t["text"] for t in tweets] == texts
    assert tweets[0]["in_reply_to"] is None
    for previous, tweet in itertools.pairwise(tweets):
        assert tweet["in_reply_to"] == previous["id"]
        assert tweet["conversation_id"] == tweets[0]["id"]
    assert len(tweets[1]["media_keys"]) == 1
    assert [r.external_id for r in result.receipts] == [t["id"] for t in tweets]


def test_platform_config_reaches_x(sandbox: Sandbox) -> None:
    quoted = sandbox.platform.publish(sandbox.context(["quote me"])).first.external_id
    config = {"x": {"replySettings": "following", "madeWithAi": True,
                    "quoteTweetId": quoted}}
    sandbox.platform.publish(sandbox.context(["quoting", "and a reply"],
                                             platform_config=config))
    _, first, reply = sandbox.tweets()
    assert first["quote_tweet_id"] == quoted and reply["quote_tweet_id"] is None
    assert first["reply_settings"] == reply["reply_settings"] == "following"
    assert first["made_with_ai"] is True and reply["made_with_ai"] is True


def test_poll_is_sent_with_the_first_post(sandbox: Sandbox) -> None:
    config = {"x": {"poll": {"options": ["yes", "no"], "durationMinutes": 60}}}
    sandbox.platform.publish(sandbox.context(["vote?"], platform_config=config))
    (tweet,) = sandbox.tweets()
    assert tweet["poll"] == {"options": ["yes", "no"], "duration_minutes": 60}


def test_premium_user_posts_long_text(sandbox: Sandbox) -> None:
    sandbox.add_user(id="42", username="premium", text_limit=25_000,
                     access_token="premium-token")
    from .conftest import account, credentials

    long_text = "long " * 400
    result = sandbox.platform.publish(sandbox.context(
        [long_text], account=account(external_id="42", username="premium"),
        credentials=credentials("premium-token")))
    assert result.first.external_url.startswith("https://x.com/premium/status/")
    assert sandbox.tweets()[0]["author_id"] == "42"


def test_a_second_publish_after_success_posts_nothing(sandbox: Sandbox) -> None:
    ctx = sandbox.context(["once", "twice"])
    first = sandbox.platform.publish(ctx)
    again = sandbox.platform.publish(ctx)
    assert again.receipts == first.receipts
    assert len(sandbox.tweets()) == 2


@pytest.mark.slow
def test_a_large_video_streams_from_disk_in_segments(sandbox: Sandbox, tmp_path) -> None:
    """64 MB in the default 4 MiB segments without ever holding the file in memory."""
    import tracemalloc

    import attrs
    from chat33_x import XPlatform

    from chat33_core.media import VIDEO, MediaInfo
    from chat33_core.platforms import MediaFile
    from chat33_core.testing import make_sparse_file

    size = 64 * 1024 * 1024
    path = make_sparse_file(tmp_path / "big.mp4", size, head=b"\0\0\0\x18ftypmp42")
    info = MediaInfo(kind=VIDEO, format="MPEG-4", mime_type="video/mp4", size=size,
                     width=1280, height=720, duration_s=120.0, frame_rate=30.0,
                     video_codec="h264", audio_codec="aac", has_audio=True)
    big = MediaFile(path=path, info=info, url="http://127.0.0.1:9/big.mp4", name="big.mp4")
    settings = attrs.evolve(sandbox.settings, env={
        k: v for k, v in sandbox.settings.env.items() if k != "CHAT33_X_SEGMENT_BYTES"})
    platform = XPlatform(settings)
    ctx = sandbox.context(["big one"], media=[[big]])
    tracemalloc.start()
    try:
        platform.publish(ctx)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    (upload,) = sandbox.state()["media"]
    assert len(upload["segments"]) == 16 and upload["total_bytes"] == size
    assert upload["state"] == "succeeded"
    assert peak < 24 * 1024 * 1024, f"peak {peak} bytes: the file was read whole"
