"""Exactly once on X: takeovers resume threads and uploads; lost answers are looked up."""

from __future__ import annotations

import itertools
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from chat33_core.errors import UnknownOutcome
from chat33_core.testing import CrashingCheckpoints, WorkerCrash, publish_context

from .conftest import Sandbox, after_posts

THREAD = [f"part {i}/5 of a thread" for i in range(1, 6)]
POST_TWEETS = "^/2/tweets$"


def assert_one_chain(sandbox: Sandbox, texts: list[str]) -> None:
    tweets = sandbox.tweets()
    assert [t["text"] for t in tweets] == texts, "every part exactly once, in order"
    assert tweets[0]["in_reply_to"] is None
    for previous, tweet in itertools.pairwise(tweets):
        assert tweet["in_reply_to"] == previous["id"]


def test_worker_crash_after_part_3_resumes_at_part_4(sandbox: Sandbox) -> None:
    checkpoints = CrashingCheckpoints(after_posts(3))
    ctx = sandbox.context(THREAD, checkpoints=checkpoints)
    with pytest.raises(WorkerCrash):
        sandbox.platform.publish(ctx)
    assert len(sandbox.tweets()) == 3
    assert len(checkpoints.load()["posted"]) == 3

    events: list[tuple[str, str, dict]] = []
    takeover = sandbox.context(THREAD, checkpoints=checkpoints, events=events)
    takeover.items = ctx.items  # the same post, picked up by another worker
    result = sandbox.platform.publish(takeover)

    assert_one_chain(sandbox, THREAD)
    assert [r.external_id for r in result.receipts] == [t["id"] for t in sandbox.tweets()]
    assert [r.post_id for r in result.receipts] == [i.post_id for i in ctx.items]
    assert ("x.resume" in [e[0] for e in events])
    assert sum(1 for e in events if e[0] == "x.posted") == 2  # parts 4 and 5 only


def test_part_4_refused_with_5xx_is_unknown_then_resumed(sandbox: Sandbox) -> None:
    checkpoints = CrashingCheckpoints(after_posts(3), hook=lambda: sandbox.fault(
        method="POST", path=POST_TWEETS, status=503,
        body={"title": "Service Unavailable", "type": "about:blank", "status": 503,
              "detail": "Service Unavailable"}))
    ctx = sandbox.context(THREAD, checkpoints=checkpoints)
    with pytest.raises(UnknownOutcome) as info:
        sandbox.platform.publish(ctx)
    assert [r.external_id for r in info.value.posted] == [t["id"] for t in sandbox.tweets()]
    assert len(info.value.posted) == 3
    assert checkpoints.load()["pending"]["index"] == 3

    # X never created part 4: the next attempt looks, finds nothing, posts it once
    result = sandbox.platform.publish(ctx)
    assert len(result.receipts) == 5
    assert_one_chain(sandbox, THREAD)


def test_part_4_created_but_answer_lost_is_found_by_confirm(sandbox: Sandbox) -> None:
    checkpoints = CrashingCheckpoints(after_posts(3), hook=lambda: sandbox.fault(
        method="POST", path=POST_TWEETS, status=504, after_body=True, body="gateway timeout"))
    ctx = sandbox.context(THREAD, checkpoints=checkpoints)
    with pytest.raises(UnknownOutcome):
        sandbox.platform.publish(ctx)
    assert len(sandbox.tweets()) == 4  # X did post part 4

    # the thread is not complete: confirm records part 4 and says "not all there"
    assert sandbox.platform.confirm(ctx) is None
    assert len(checkpoints.load()["posted"]) == 4 and not checkpoints.load()["pending"]

    result = sandbox.platform.publish(ctx)
    assert len(result.receipts) == 5
    assert_one_chain(sandbox, THREAD)


def test_publish_itself_looks_up_a_lost_post_before_reposting(sandbox: Sandbox) -> None:
    """A worker died with a POST /2/tweets in flight (no confirm ran): the takeover looks
    the post up instead of posting it again."""
    checkpoints = CrashingCheckpoints(after_posts(2), hook=lambda: sandbox.fault(
        method="POST", path=POST_TWEETS, status=502, after_body=True))
    ctx = sandbox.context(THREAD, checkpoints=checkpoints)
    with pytest.raises(UnknownOutcome):
        sandbox.platform.publish(ctx)
    result = sandbox.platform.publish(ctx)
    assert len(result.receipts) == 5
    assert_one_chain(sandbox, THREAD)


def test_confirm_finds_a_single_post(sandbox: Sandbox) -> None:
    sandbox.fault(method="POST", path=POST_TWEETS, status=500, after_body=True)
    ctx = sandbox.context(["did this go out?"])
    with pytest.raises(UnknownOutcome):
        sandbox.platform.publish(ctx)
    result = sandbox.platform.confirm(ctx)
    assert result is not None
    (tweet,) = sandbox.tweets()
    assert result.first.external_id == tweet["id"]
    assert result.first.post_id == ctx.items[0].post_id


def test_confirm_says_none_when_x_has_no_such_post(sandbox: Sandbox) -> None:
    sandbox.platform.publish(sandbox.context(["an older post"]))
    sandbox.fault(method="POST", path=POST_TWEETS, status=503)
    ctx = sandbox.context(["never arrived"])
    with pytest.raises(UnknownOutcome):
        sandbox.platform.publish(ctx)
    assert sandbox.platform.confirm(ctx) is None
    sandbox.platform.publish(ctx)
    assert [t["text"] for t in sandbox.tweets()] == ["an older post", "never arrived"]


def test_confirm_matches_the_reply_target_not_just_the_text(sandbox: Sandbox) -> None:
    """Two posts with equal text: only the one replying to our previous part is ours."""
    sandbox.platform.publish(sandbox.context(["same words"]))  # a standalone post
    checkpoints = CrashingCheckpoints(after_posts(1), hook=lambda: sandbox.fault(
        method="POST", path=POST_TWEETS, status=503))
    ctx = sandbox.context(["opening", "same words "], checkpoints=checkpoints)
    with pytest.raises(UnknownOutcome):
        sandbox.platform.publish(ctx)
    assert sandbox.platform.confirm(ctx) is None  # the standalone one is not a reply


def test_confirm_matches_media_only_posts(sandbox: Sandbox, media) -> None:
    sandbox.fault(method="POST", path=POST_TWEETS, status=503, after_body=True)
    ctx = sandbox.context([None], media=[[media("photo.jpg")]])
    with pytest.raises(UnknownOutcome):
        sandbox.platform.publish(ctx)
    result = sandbox.platform.confirm(ctx)
    assert result is not None and result.first.external_id == sandbox.tweets()[0]["id"]


def test_takeover_mid_upload_appends_the_remaining_segments(sandbox: Sandbox, media) -> None:
    def three_segments(data: dict) -> bool:
        slots = (data.get("media") or {}).get("0") or [{}]
        return int(slots[0].get("segments") or 0) >= 3

    checkpoints = CrashingCheckpoints(three_segments)
    video = media("clip.mp4")
    ctx = sandbox.context(["video, resumed"], media=[[video]], checkpoints=checkpoints)
    with pytest.raises(WorkerCrash):
        sandbox.platform.publish(ctx)
    events: list[tuple[str, str, dict]] = []
    takeover = sandbox.context(["video, resumed"], media=[[video]], checkpoints=checkpoints,
                               events=events)
    takeover.items = ctx.items
    sandbox.platform.publish(takeover)

    (upload,) = sandbox.state()["media"]  # one upload, never initialized twice
    segments = -(-video.path.stat().st_size // 2048)
    assert len(upload["segments"]) == segments and upload["state"] == "succeeded"
    appended = [data for event, _, data in events if event == "x.media.appended"]
    assert appended == [{"media_id": upload["id"], "segments": segments}]
    assert [e for e, _, _ in events].count("x.media.initialized") == 0
    assert len(sandbox.tweets()) == 1


@contextmanager
def hang_up_server() -> Iterator[str]:
    """A server that reads each request and closes the connection without answering."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def run() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(65536)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def test_a_dropped_connection_on_post_creation_is_an_unknown_outcome(sandbox: Sandbox) -> None:
    from chat33_x import XPlatform

    from chat33_core.config import Settings

    with hang_up_server() as url:
        platform = XPlatform(Settings.from_env({"CHAT33_X_API_BASE": url}))
        ctx = publish_context(platform, settings=platform.settings, text="into the void")
        with pytest.raises(UnknownOutcome) as info:
            platform.publish(ctx)
    assert info.value.platform_code == "network"
    assert ctx.checkpoints.load()["pending"]["text"] == "into the void"
