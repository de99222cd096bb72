"""Exactly once on LinkedIn: no idempotency key, so an unanswered post is looked for among
the author's recent posts before it is ever sent again; every step resumes from its
checkpoint."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from chat33_core.errors import PermanentError, UnknownOutcome
from chat33_core.platforms import MediaFile
from chat33_core.testing import CrashingCheckpoints, WorkerCrash

from .conftest import Sandbox

Media = Callable[[str], MediaFile]
POSTS = "^/rest/posts$"


def item(data: dict[str, Any], index: int = 0) -> dict[str, Any]:
    state: dict[str, Any] = (data.get("items") or {}).get(str(index)) or {}
    return state


def test_a_lost_answer_is_found_among_the_authors_posts(sandbox: Sandbox) -> None:
    sandbox.fault(method="POST", path=POSTS, status=504, after_body=True,
                  body={"status": 504, "message": "Gateway Timeout"})
    ctx = sandbox.context(["exactly once (really)"])
    with pytest.raises(UnknownOutcome):
        sandbox.platform.publish(ctx)
    [created] = sandbox.posts()
    result = sandbox.platform.confirm(ctx)
    assert result is not None and result.first.external_id == created["id"]
    # publishing again after the confirmation sends nothing
    assert sandbox.platform.publish(ctx).first.external_id == created["id"]
    assert len(sandbox.posts()) == 1


def test_a_request_that_never_arrived_is_sent_again_once(sandbox: Sandbox) -> None:
    sandbox.fault(method="POST", path=POSTS, status=502,
                  body={"status": 502, "message": "Bad Gateway"})
    ctx = sandbox.context(["not created"])
    with pytest.raises(UnknownOutcome):
        sandbox.platform.publish(ctx)
    assert sandbox.posts() == []
    assert sandbox.platform.confirm(ctx) is None
    result = sandbox.platform.publish(ctx)
    [created] = sandbox.posts()
    assert result.first.external_id == created["id"]


def test_a_worker_that_died_mid_request_looks_before_resending(sandbox: Sandbox) -> None:
    crash = CrashingCheckpoints(lambda data: bool(item(data).get("sentAt")))
    ctx = sandbox.context(["died after sending"], checkpoints=crash)
    with pytest.raises(WorkerCrash):
        sandbox.platform.publish(ctx)
    # the crash came before the request: nothing on LinkedIn yet, so one is sent now
    result = sandbox.platform.publish(ctx)
    [created] = sandbox.posts()
    assert result.first.external_id == created["id"]
    # a second run of the same post finds it posted in the checkpoint
    assert sandbox.platform.publish(ctx).first.external_id == created["id"]
    assert len(sandbox.posts()) == 1


def test_without_permission_to_read_posts_nothing_is_resent(sandbox: Sandbox) -> None:
    sandbox.config(posts_readable=False)
    sandbox.fault(method="POST", path=POSTS, status=500, after_body=True)
    ctx = sandbox.context(["cannot tell"])
    with pytest.raises(UnknownOutcome):
        sandbox.platform.publish(ctx)
    with pytest.raises(UnknownOutcome, match="check the account") as info:
        sandbox.platform.confirm(ctx)
    assert info.value.platform_code == "cannot-confirm"
    with pytest.raises(UnknownOutcome):
        sandbox.platform.publish(ctx)
    assert len(sandbox.posts()) == 1


def test_an_uploaded_image_is_not_uploaded_again(sandbox: Sandbox, media: Media) -> None:
    crash = CrashingCheckpoints(lambda data: len(item(data).get("images") or []) == 2
                        and item(data)["images"][1]["uploaded"])
    ctx = sandbox.context(["two photos"], media=[[media("photo.jpg"), media("photo2.png")]],
                          checkpoints=crash)
    with pytest.raises(WorkerCrash):
        sandbox.platform.publish(ctx)
    sandbox.platform.publish(ctx)
    assert len(sandbox.state()["images"]) == 2
    [post] = sandbox.posts()
    assert len(post["content"]["multiImage"]["images"]) == 2


def test_a_video_resumes_from_the_next_part(sandbox: Sandbox, media: Media) -> None:
    crash = CrashingCheckpoints(lambda data: len((item(data).get("video") or {}).get("etags")
                                         or []) == 1)
    ctx = sandbox.context(["a clip"], media=[[media("clip.mp4")]], checkpoints=crash)
    with pytest.raises(WorkerCrash):
        sandbox.platform.publish(ctx)
    sandbox.platform.publish(ctx)
    [video] = sandbox.state()["videos"]
    assert video["status"] == "AVAILABLE"
    puts = [path for method, path in sandbox_requests(sandbox) if method == "PUT"]
    assert len(puts) == len(video["instructions"])  # no part sent twice
    assert len(sandbox.posts()) == 1


def test_a_thread_continues_after_the_posted_items(sandbox: Sandbox) -> None:
    crash = CrashingCheckpoints(lambda data: len(data.get("posted") or []) == 1)
    ctx = sandbox.context(["one", "two"], checkpoints=crash)
    with pytest.raises(WorkerCrash):
        sandbox.platform.publish(ctx)
    result = sandbox.platform.publish(ctx)
    assert sorted(p["text"] for p in sandbox.posts()) == ["one", "two"]
    assert len(result.receipts) == 2


def sandbox_requests(sandbox: Sandbox) -> list[tuple[str, str]]:
    return [tuple(r) for r in sandbox.state()["requests"]]  # type: ignore[misc]


def test_a_listing_that_lags_is_covered_by_linkedins_duplicate_check(
        sandbox: Sandbox) -> None:
    sandbox.config(listing_lag_s=600)
    sandbox.fault(method="POST", path=POSTS, status=500, after_body=True)
    ctx = sandbox.context(["created, not listed yet"])
    with pytest.raises(UnknownOutcome):
        sandbox.platform.publish(ctx)
    [created] = sandbox.posts()
    assert sandbox.platform.confirm(ctx) is None  # the finder does not show it yet
    # the resend is refused as a duplicate of the post the lost request created
    result = sandbox.platform.publish(ctx)
    assert result.first.external_id == created["id"]
    assert len(sandbox.posts()) == 1


def test_a_duplicate_of_someone_elses_post_is_not_taken_without_an_unknown_outcome(
        sandbox: Sandbox) -> None:
    sandbox.platform.publish(sandbox.context(["said twice"]))
    with pytest.raises(PermanentError, match="duplicate"):
        sandbox.platform.publish(sandbox.context(["said twice"]))


def test_upload_urls_that_lapsed_while_the_worker_was_away_start_over(
        sandbox: Sandbox, media: Media) -> None:
    # URLs that are already past their expiry when the worker comes back
    sandbox.config(upload_url_ttl_s=-10)
    crash = CrashingCheckpoints(lambda data: bool(item(data).get("images")))
    ctx = sandbox.context(["photo"], media=[[media("photo.jpg")]], checkpoints=crash)
    with pytest.raises(WorkerCrash):
        sandbox.platform.publish(ctx)
    video_crash = CrashingCheckpoints(lambda data: bool(item(data).get("video")))
    video_ctx = sandbox.context(["clip"], media=[[media("clip.mp4")]],
                                checkpoints=video_crash)
    with pytest.raises(WorkerCrash):
        sandbox.platform.publish(video_ctx)
    sandbox.config(upload_url_ttl_s=3600)
    sandbox.platform.publish(ctx)
    sandbox.platform.publish(video_ctx)
    state = sandbox.state()
    # the lapsed image and video were left behind; new ones were uploaded and posted
    assert [i["status"] for i in state["images"]] == ["WAITING_UPLOAD", "AVAILABLE"]
    assert [v["status"] for v in state["videos"]] == ["WAITING_UPLOAD", "AVAILABLE"]
    assert {p["content"]["media"]["id"] for p in sandbox.posts()} == {
        state["images"][1]["id"], state["videos"][1]["id"]}
