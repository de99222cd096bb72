"""Exactly once: a worker that dies mid-publish, and the one that takes over."""

from __future__ import annotations

from typing import Any

import pytest

from chat33_core.platforms import MemoryCheckpoints

from .conftest import CHUNK
from .helpers import Crash, crash_when, crc32_of, events_named


def takeover(context: Any, media: list[Any], saved: dict[str, Any], **kw: Any) -> Any:
    """A second worker's context for the same post, from the saved checkpoints."""
    return context(media=media, checkpoints=MemoryCheckpoints(dict(saved)), **kw)


def test_crash_mid_upload_resumes_the_saved_session(platform, context, video, state):
    first, _ = context(media=[video], checkpoints=crash_when(
        lambda new, old: new.get("bytesUploaded") == 2 * CHUNK))
    with pytest.raises(Crash):
        platform.publish(first)
    saved = first.checkpoints.load()
    assert saved["bytesUploaded"] == CHUNK and not state()["videos"]

    ctx, events = takeover(context, [video], saved)
    result = platform.publish(ctx)

    s = state()
    [session], [uploaded] = s["sessions"], s["videos"]
    # the takeover probed, learnt YouTube has two chunks, and sent only the rest
    assert session["starts"] == [0, CHUNK, 2 * CHUNK, 3 * CHUNK]
    assert uploaded["crc32"] == crc32_of(video.path)
    assert result.first.external_id == uploaded["id"]
    assert f"at byte {2 * CHUNK:,}" in events_named(events, "upload_resumed")[0]


def test_crash_after_the_last_byte_returns_the_video_without_uploading_again(
        platform, context, video, thumbnail, state):
    # the upload finished; the worker died before it could save the video id
    first, _ = context(media=[video], cover=thumbnail,
                       checkpoints=crash_when(lambda new, old: "videoId" in new))
    with pytest.raises(Crash):
        platform.publish(first)
    saved = first.checkpoints.load()
    [uploaded] = state()["videos"]
    assert "videoId" not in saved and uploaded["thumbnail"] is None
    chunks_before = state()["sessions"][0]["chunks"]

    ctx, _ = takeover(context, [video], saved, cover=thumbnail)
    result = platform.publish(ctx)

    s = state()
    assert len(s["videos"]) == 1 and len(s["sessions"]) == 1
    assert s["sessions"][0]["chunks"] == chunks_before, "no byte sent again"
    assert result.first.external_id == uploaded["id"]
    assert s["videos"][0]["thumbnail"]["format"] == "JPEG"


def test_crash_after_opening_the_session_before_saving_it_opens_another(
        platform, context, video, state):
    first, _ = context(media=[video], checkpoints=crash_when(
        lambda new, old: "sessionUri" in new))
    with pytest.raises(Crash):
        platform.publish(first)
    assert first.checkpoints.load() == {}

    ctx, _ = takeover(context, [video], {})
    platform.publish(ctx)

    s = state()
    # the orphan session holds no bytes, so it can never become a video
    assert [x["received"] for x in s["sessions"]] == [0, video.path.stat().st_size]
    assert len(s["videos"]) == 1


def test_a_saved_video_is_returned_without_calling_youtube(platform, context, video, control,
                                                           state):
    ctx, _ = context(media=[video])
    result = platform.publish(ctx)
    control("POST", "/_sandbox/faults", json={"path": ".*", "status": 500, "count": 50})

    again, events = takeover(context, [video], ctx.checkpoints.load())
    assert platform.publish(again).first.external_id == result.first.external_id
    assert len(state()["videos"]) == 1
    assert events_named(events, "resumed")


def test_confirm_finds_the_finished_upload(platform, context, video, state):
    first, _ = context(media=[video], checkpoints=crash_when(lambda new, old: "videoId" in new))
    with pytest.raises(Crash):
        platform.publish(first)
    ctx, _ = takeover(context, [video], first.checkpoints.load())
    found = platform.confirm(ctx)
    assert found is not None
    assert found.first.external_id == state()["videos"][0]["id"]
    assert ctx.checkpoints.load()["videoId"] == found.first.external_id


def test_confirm_says_not_there_for_an_unfinished_or_missing_session(
        platform, context, video, state):
    assert platform.confirm(context(media=[video])[0]) is None, "no session: no video"
    first, _ = context(media=[video], checkpoints=crash_when(
        lambda new, old: new.get("bytesUploaded") == CHUNK))
    with pytest.raises(Crash):
        platform.publish(first)
    ctx, _ = takeover(context, [video], first.checkpoints.load())
    assert platform.confirm(ctx) is None
    # and publishing afterwards resumes, still one video
    platform.publish(ctx)
    assert len(state()["videos"]) == 1 and len(state()["sessions"]) == 1
