"""Exactly once: lost answers, dead workers and resumed threads never post twice."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from chat33_core.errors import TransientError, UnknownOutcome
from chat33_core.platforms import MediaFile
from chat33_core.testing import CrashingCheckpoints, WorkerCrash

from .conftest import Sandbox, after_posts, sent

Media = Callable[[str], MediaFile]
CREATE = "com.atproto.repo.createRecord"


def calls(sandbox: Sandbox, nsid: str) -> int:
    return sum(1 for _, name in sandbox.state()["calls"] if name == nsid)


def test_a_post_created_but_unanswered_is_confirmed_not_reposted(sandbox: Sandbox) -> None:
    sandbox.fault(method="POST", path=CREATE, status=502, after_body=True,
                  body={"error": "UpstreamFailure", "message": "Upstream Failure"})
    ctx = sandbox.context(["only once"])
    with pytest.raises(UnknownOutcome):
        sandbox.platform.publish(ctx)
    assert len(sandbox.posts()) == 1  # Bluesky has it; we never heard

    result = sandbox.platform.confirm(ctx)
    assert result is not None
    assert result.first.external_id == sandbox.posts()[0]["uri"]
    assert calls(sandbox, CREATE) == 1
    assert calls(sandbox, "com.atproto.repo.getRecord") == 1


def test_a_post_that_never_arrived_is_confirmed_absent_then_posted_once(
        sandbox: Sandbox) -> None:
    sandbox.fault(method="POST", path=CREATE, status=504,
                  body={"error": "UpstreamTimeout", "message": "Upstream Timeout"})
    ctx = sandbox.context(["after a timeout"])
    with pytest.raises(UnknownOutcome):
        sandbox.platform.publish(ctx)
    rkey = ctx.checkpoints.load()["items"]["0"]["rkey"]
    assert sandbox.platform.confirm(ctx) is None
    sandbox.platform.publish(ctx)
    [post] = sandbox.posts()
    assert post["rkey"] == rkey  # the same record key as the unanswered request


def test_publishing_again_without_confirm_still_looks_first(sandbox: Sandbox) -> None:
    sandbox.fault(method="POST", path=CREATE, status=500, after_body=True)
    ctx = sandbox.context(["still once"])
    with pytest.raises(UnknownOutcome):
        sandbox.platform.publish(ctx)
    result = sandbox.platform.publish(ctx)
    assert len(sandbox.posts()) == 1
    assert result.first.external_id == sandbox.posts()[0]["uri"]
    assert calls(sandbox, CREATE) == 1


def test_a_late_first_request_and_a_retry_cannot_make_two_posts(sandbox: Sandbox) -> None:
    """The retry reuses the rkey, so Bluesky refuses the second write; the plugin then
    finds the first one and records it."""
    ctx = sandbox.context(["raced"])
    sandbox.fault(method="POST", path=CREATE, status=502, after_body=True)
    with pytest.raises(UnknownOutcome):
        sandbox.platform.publish(ctx)
    data = ctx.checkpoints.load()
    data["items"]["0"]["sent"] = False  # as if the first answer were taken for "absent"
    ctx.checkpoints.save(data)
    result = sandbox.platform.publish(ctx)
    assert calls(sandbox, CREATE) == 2
    assert len(sandbox.posts()) == 1
    assert result.first.external_id == sandbox.posts()[0]["uri"]


def test_a_worker_dying_just_before_createRecord_resumes_with_one_lookup(
        sandbox: Sandbox) -> None:
    checkpoints = CrashingCheckpoints(sent(0))
    ctx = sandbox.context(["crash"], checkpoints=checkpoints)
    with pytest.raises(WorkerCrash):
        sandbox.platform.publish(ctx)
    assert sandbox.posts() == []
    sandbox.platform.publish(ctx)  # the next worker, same checkpoints
    assert len(sandbox.posts()) == 1
    assert calls(sandbox, "com.atproto.repo.getRecord") == 1


def test_a_thread_resumed_after_a_crash_posts_only_the_rest_in_reply(sandbox: Sandbox) -> None:
    checkpoints = CrashingCheckpoints(after_posts(2))
    ctx = sandbox.context(["1/3", "2/3", "3/3"], checkpoints=checkpoints)
    with pytest.raises(WorkerCrash):
        sandbox.platform.publish(ctx)
    assert len(sandbox.posts()) == 2
    result = sandbox.platform.publish(ctx)
    posts = {p["value"]["text"]: p for p in sandbox.posts()}
    assert sorted(posts) == ["1/3", "2/3", "3/3"]
    assert posts["3/3"]["value"]["reply"]["parent"]["uri"] == posts["2/3"]["uri"]
    assert posts["3/3"]["value"]["reply"]["root"]["uri"] == posts["1/3"]["uri"]
    assert [r.external_id for r in result.receipts] == [
        posts[t]["uri"] for t in ("1/3", "2/3", "3/3")]
    assert calls(sandbox, CREATE) == 3


def test_a_failure_half_way_through_a_thread_reports_what_is_posted(sandbox: Sandbox) -> None:
    ctx = sandbox.context(["a", "b"], checkpoints=CrashingCheckpoints(
        after_posts(1), hook=lambda: sandbox.fault(method="POST", path=CREATE, status=503)))
    with pytest.raises(UnknownOutcome) as caught:
        sandbox.platform.publish(ctx)
    assert [r.external_id for r in caught.value.posted] == [sandbox.posts()[0]["uri"]]
    assert sandbox.platform.confirm(ctx) is None  # "b" is not there
    sandbox.platform.publish(ctx)
    assert sorted(p["value"]["text"] for p in sandbox.posts()) == ["a", "b"]


def test_uploaded_images_are_not_uploaded_again_after_a_crash(sandbox: Sandbox,
                                                               media: Media) -> None:
    checkpoints = CrashingCheckpoints(lambda d: len((d.get("items") or {}).get("0", {})
                                            .get("blobs") or []) == 2)
    ctx = sandbox.context(["pics"], media=[[media("photo.jpg"), media("photo2.png"),
                                            media("thumb.jpg")]], checkpoints=checkpoints)
    with pytest.raises(WorkerCrash):
        sandbox.platform.publish(ctx)
    sandbox.platform.publish(ctx)
    assert calls(sandbox, "com.atproto.repo.uploadBlob") == 3
    assert len(sandbox.posts()[0]["value"]["embed"]["images"]) == 3


def test_a_video_job_in_progress_is_polled_not_uploaded_again(sandbox: Sandbox,
                                                              media: Media) -> None:
    checkpoints = CrashingCheckpoints(lambda d: bool((d.get("items") or {}).get("0", {})
                                             .get("video", {}).get("jobId")))
    ctx = sandbox.context(["clip"], media=[[media("clip.mp4")]], checkpoints=checkpoints)
    with pytest.raises(WorkerCrash):
        sandbox.platform.publish(ctx)
    sandbox.platform.publish(ctx)
    assert calls(sandbox, "app.bsky.video.uploadVideo") == 1
    assert len(sandbox.state()["jobs"]) == 1
    assert sandbox.posts()[0]["value"]["embed"]["$type"] == "app.bsky.embed.video"


def test_a_blob_the_pds_dropped_is_uploaded_again_on_the_next_attempt(
        sandbox: Sandbox, media: Media) -> None:
    """The PDS forgets unreferenced blobs after minutes: a checkpointed ref can go stale
    while the plugin still thinks it young (here: the sandbox clock jumps)."""
    checkpoints = CrashingCheckpoints(lambda d: bool((d.get("items") or {}).get("0", {})
                                             .get("blobs")))
    ctx = sandbox.context(["late"], media=[[media("photo.jpg")]], checkpoints=checkpoints)
    with pytest.raises(WorkerCrash):
        sandbox.platform.publish(ctx)
    sandbox.advance(601)
    with pytest.raises(TransientError) as caught:
        sandbox.platform.publish(ctx)
    assert caught.value.platform_code == "BlobNotFound"
    assert sandbox.posts() == []
    sandbox.platform.publish(ctx)
    assert len(sandbox.posts()) == 1
    assert calls(sandbox, "com.atproto.repo.uploadBlob") == 2


def test_a_video_blob_the_pds_dropped_is_handed_over_again_by_the_video_service(
        sandbox: Sandbox, media: Media) -> None:
    sandbox.config(video_steps=1)
    checkpoints = CrashingCheckpoints(lambda d: bool((d.get("items") or {}).get("0", {})
                                             .get("video", {}).get("blob")))
    ctx = sandbox.context(["clip"], media=[[media("clip.mp4")]], checkpoints=checkpoints)
    with pytest.raises(WorkerCrash):
        sandbox.platform.publish(ctx)
    sandbox.advance(601)
    with pytest.raises(TransientError):
        sandbox.platform.publish(ctx)
    sandbox.platform.publish(ctx)  # uploaded again: the service answers already_exists
    assert calls(sandbox, "app.bsky.video.uploadVideo") == 2
    assert len(sandbox.state()["jobs"]) == 1
    assert len(sandbox.posts()) == 1


def test_a_retried_post_keeps_its_record_key_but_carries_the_time_it_was_made(
        sandbox: Sandbox) -> None:
    sandbox.fault(method="POST", path=CREATE, status=503,
                  body={"error": "NotEnoughResources", "message": "busy"})
    ctx = sandbox.context(["deferred"])
    with pytest.raises(UnknownOutcome):
        sandbox.platform.publish(ctx)
    rkey = ctx.checkpoints.load()["items"]["0"]["rkey"]
    time.sleep(0.01)
    retried_at = datetime.now(UTC)
    assert sandbox.platform.confirm(ctx) is None
    sandbox.platform.publish(ctx)
    [post] = sandbox.posts()
    assert post["rkey"] == rkey
    created = datetime.fromisoformat(post["value"]["createdAt"].replace("Z", "+00:00"))
    assert created >= retried_at.replace(microsecond=retried_at.microsecond // 1000 * 1000)


def test_a_video_job_the_service_forgot_is_uploaded_again(sandbox: Sandbox,
                                                          media: Media) -> None:
    sandbox.config(video_steps=1)
    sandbox.fault(method="GET", path="getJobStatus", status=400,
                  body={"error": "NotFound", "message": "Job not found"})
    ctx = sandbox.context(["clip"], media=[[media("clip.mp4")]])
    with pytest.raises(TransientError) as caught:
        sandbox.platform.publish(ctx)
    assert "uploaded again" in caught.value.message
    sandbox.platform.publish(ctx)
    assert calls(sandbox, "app.bsky.video.uploadVideo") == 2
    assert len(sandbox.posts()) == 1
