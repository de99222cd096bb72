"""Exactly once: a worker that dies mid-publish, and the one that takes over."""

from __future__ import annotations

from typing import Any

import pytest

from chat33_core.errors import PermanentError, TransientError, UnknownOutcome
from chat33_core.models import MediaType
from chat33_core.platforms import MemoryCheckpoints
from chat33_core.testing import CrashingCheckpoints, WorkerCrash, publish_context


def crash_before(key: str) -> CrashingCheckpoints:
    """Checkpoints of a worker that dies when ``key`` is about to be saved (the save
    never reached the database)."""
    return CrashingCheckpoints(lambda data: key in data, persist=False)


def crash_after_children(n: int) -> CrashingCheckpoints:
    """Checkpoints of a worker that dies right after saving ``n`` carousel children."""
    return CrashingCheckpoints(lambda data: len(data.get("children", ())) == n)


def state(control: Any) -> dict[str, Any]:
    return control("GET", "/_sandbox/state")


def takeover(platform: Any, settings: Any, files: list[Any], saved: dict[str, Any],
             **kw: Any) -> Any:
    """A second worker's context for the same post, starting from the saved checkpoints."""
    return publish_context(platform, settings=settings, media=files,
                           checkpoints=MemoryCheckpoints(dict(saved)), **kw)


def test_crash_before_media_publish_reuses_the_container(platform, settings, media, control):
    files = [media("square.jpg")]
    first = publish_context(platform, settings=settings, media=files,
                            checkpoints=crash_before("publishStartedAt"))
    with pytest.raises(WorkerCrash):
        platform.publish(first)
    saved = first.checkpoints.load()
    assert "container" in saved and not state(control)["published"]

    result = platform.publish(takeover(platform, settings, files, saved))

    s = state(control)
    assert len(s["containers"]) == 1, "no second container"
    [post] = s["published"]
    assert post["containerId"] == saved["container"]
    assert result.first.external_id == post["id"]


def test_container_already_published_is_confirmed_not_republished(
        platform, settings, media, control):
    files = [media("square.jpg")]
    # media_publish went through, the worker died before it could save the media id
    first = publish_context(platform, settings=settings, media=files, text="once only",
                            checkpoints=crash_before("mediaId"))
    with pytest.raises(WorkerCrash):
        platform.publish(first)
    saved = first.checkpoints.load()
    assert "mediaId" not in saved and len(state(control)["published"]) == 1

    events: list[Any] = []
    result = platform.publish(takeover(platform, settings, files, saved, text="once only",
                                       events=events))

    [post] = state(control)["published"]
    assert result.first.external_id == post["id"]
    assert result.first.external_url == post["permalink"]
    assert any(e[0] == "confirmed" for e in events)
    assert len(publish_calls(control)) == 1


def publish_calls(control: Any) -> list[str]:
    return [r for r in state(control)["requests"] if r.endswith("/media_publish")]


def test_lost_answer_to_media_publish_is_an_unknown_outcome_then_confirmed(
        platform, settings, media, control):
    control("POST", "/_sandbox/faults", json={"method": "POST", "path": "/media_publish$",
                                              "status": 502, "body": "Bad Gateway",
                                              "after_body": True})
    files = [media("portrait.jpg")]
    ctx = publish_context(platform, settings=settings, media=files, text="lost answer")
    with pytest.raises(UnknownOutcome):
        platform.publish(ctx)
    saved = ctx.checkpoints.load()

    result = platform.confirm(takeover(platform, settings, files, saved, text="lost answer"))

    [post] = state(control)["published"]
    assert result is not None and result.first.external_id == post["id"]
    assert len(publish_calls(control)) == 1


def test_confirm_says_not_published_when_media_publish_never_ran(
        platform, settings, media, control):
    files = [media("square.jpg")]
    control("POST", "/_sandbox/faults", json={"method": "POST", "path": "/media_publish$",
                                              "status": 502, "body": "Bad Gateway"})
    ctx = publish_context(platform, settings=settings, media=files)
    with pytest.raises(UnknownOutcome):
        platform.publish(ctx)
    saved = ctx.checkpoints.load()
    assert platform.confirm(takeover(platform, settings, files, saved)) is None
    # the worker then publishes again, with the same container
    platform.publish(takeover(platform, settings, files, saved))
    s = state(control)
    assert len(s["published"]) == 1 and len(s["containers"]) == 1


def test_confirm_without_any_checkpoint_is_none(platform, settings, media):
    ctx = publish_context(platform, settings=settings, media=[media("square.jpg")])
    assert platform.confirm(ctx) is None


def test_expired_container_is_recreated(platform, settings, media, control):
    files = [media("square.jpg")]
    first = publish_context(platform, settings=settings, media=files,
                            checkpoints=crash_before("publishStartedAt"))
    with pytest.raises(WorkerCrash):
        platform.publish(first)
    saved = first.checkpoints.load()
    control("POST", "/_sandbox/clock", json={"advance": 25 * 3600})

    events: list[Any] = []
    result = platform.publish(takeover(platform, settings, files, saved, events=events))

    s = state(control)
    by_id = {c["id"]: c for c in s["containers"]}
    assert by_id[saved["container"]]["status_code"] == "EXPIRED"
    [post] = s["published"]
    assert post["containerId"] != saved["container"]
    assert result.first.external_id == post["id"]
    assert any(e[0] == "container_dropped" for e in events)


def test_carousel_takeover_reuses_the_children_already_created(
        platform, settings, media, control):
    files = [media("square.jpg"), media("portrait.jpg"), media("landscape.jpg")]
    first = publish_context(platform, settings=settings, media=files,
                            media_type=MediaType.CAROUSEL,
                            checkpoints=crash_after_children(3))
    with pytest.raises(WorkerCrash):
        platform.publish(first)
    saved = first.checkpoints.load()
    assert len(saved["children"]) == 3

    platform.publish(takeover(platform, settings, files, saved,
                              media_type=MediaType.CAROUSEL))

    s = state(control)
    [post] = s["published"]
    assert [c["id"] for c in post["children"]["data"]] == saved["children"]
    assert len(s["containers"]) == 4, "3 children + 1 parent, nothing created twice"


def test_expired_carousel_children_are_recreated(platform, settings, media, control):
    files = [media("square.jpg"), media("portrait.jpg")]
    first = publish_context(platform, settings=settings, media=files,
                            media_type=MediaType.CAROUSEL,
                            checkpoints=crash_after_children(2))
    with pytest.raises(WorkerCrash):
        platform.publish(first)
    saved = first.checkpoints.load()
    control("POST", f"/_sandbox/containers/{saved['children'][0]}",
            json={"status": "EXPIRED"})

    platform.publish(takeover(platform, settings, files, saved,
                              media_type=MediaType.CAROUSEL))

    [post] = state(control)["published"]
    children = [c["id"] for c in post["children"]["data"]]
    assert children[0] != saved["children"][0] and children[1] == saved["children"][1]


def test_transient_failure_then_retry_resumes(platform, settings, media, control):
    control("POST", "/_sandbox/faults", json={
        "method": "GET", "path": "/content_publishing_limit$", "status": 400,
        "body": {"error": {"message": "An unknown error occurred", "type": "OAuthException",
                           "code": 1, "is_transient": True}}})
    files = [media("square.jpg")]
    ctx = publish_context(platform, settings=settings, media=files)
    with pytest.raises(TransientError):
        platform.publish(ctx)
    platform.publish(ctx)  # the worker retries with the same checkpoints
    s = state(control)
    assert len(s["containers"]) == 1 and len(s["published"]) == 1


def test_container_error_that_a_new_container_fixes_is_recreated(
        platform, settings, media, control):
    files = [media("reel.mp4")]
    first = publish_context(platform, settings=settings, media=files,
                            checkpoints=crash_before("publishStartedAt"))
    with pytest.raises(WorkerCrash):
        platform.publish(first)
    saved = first.checkpoints.load()
    control("POST", f"/_sandbox/containers/{saved['container']}",
            json={"status": "ERROR", "subcode": 2207053})
    ctx = takeover(platform, settings, files, saved)
    with pytest.raises(TransientError) as caught:
        platform.publish(ctx)
    assert caught.value.platform_code == "ERROR/2207053"
    assert "container" not in ctx.checkpoints.load()
    platform.publish(ctx)
    [post] = state(control)["published"]
    assert post["containerId"] != saved["container"]


def test_container_error_the_user_must_fix_fails_permanently(platform, settings, media,
                                                             control):
    ctx = publish_context(platform, settings=settings, media=[media("fake.mp4")],
                          media_type=MediaType.REEL)
    with pytest.raises(PermanentError) as caught:
        platform.publish(ctx)
    assert caught.value.platform_code == "ERROR/2207026"
    assert "video format" in caught.value.message
    assert not state(control)["published"]
