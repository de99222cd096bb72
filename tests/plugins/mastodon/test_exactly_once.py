"""Exactly once on Mastodon: the Idempotency-Key makes resending the unanswered status
the confirmation (platforms-more.md §2.5)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from chat33_mastodon.publishing import KEY_WINDOW_S, idempotency_key

from chat33_core.errors import PermanentError, TransientError, UnknownOutcome
from chat33_core.platforms import MediaFile
from chat33_core.testing import CrashingCheckpoints, WorkerCrash

from .conftest import Sandbox

Media = Callable[[str], MediaFile]
STATUSES = "^/api/v1/statuses$"


def sent(index: int) -> Callable[[dict[str, Any]], bool]:
    """True once item ``index``'s status request is about to go out."""
    return lambda data: bool(((data.get("items") or {}).get(str(index)) or {}).get("sentAt"))


def test_a_lost_answer_is_confirmed_by_the_same_key_without_a_duplicate(
        sandbox: Sandbox) -> None:
    # Mastodon created the status; the answer never arrived
    sandbox.fault(method="POST", path=STATUSES, status=502, after_body=True,
                  body={"error": "Bad Gateway"})
    ctx = sandbox.context(["exactly once"])
    with pytest.raises(UnknownOutcome):
        sandbox.platform.publish(ctx)
    [created] = sandbox.statuses()
    result = sandbox.platform.confirm(ctx)
    assert result is not None and result.first.external_id == created["id"]
    assert len(sandbox.statuses()) == 1
    assert sandbox.state()["idempotentReplays"] == 1


def test_confirm_posts_a_status_that_never_arrived_once(sandbox: Sandbox) -> None:
    # the request died before Mastodon acted: the resend creates it, once
    sandbox.fault(method="POST", path=STATUSES, status=504, body={"error": "Gateway Timeout"})
    ctx = sandbox.context(["late"])
    with pytest.raises(UnknownOutcome):
        sandbox.platform.publish(ctx)
    assert sandbox.statuses() == []
    result = sandbox.platform.confirm(ctx)
    assert result is not None and len(sandbox.statuses()) == 1
    assert sandbox.platform.confirm(ctx) is not None  # asking again changes nothing
    assert len(sandbox.statuses()) == 1


def test_a_worker_that_died_before_the_request_resumes_once(sandbox: Sandbox) -> None:
    checkpoints = CrashingCheckpoints(sent(0))
    ctx = sandbox.context(["crash"], checkpoints=checkpoints)
    with pytest.raises(WorkerCrash):
        sandbox.platform.publish(ctx)
    assert sandbox.statuses() == [] and checkpoints.data["items"]["0"]["sentAt"]
    sandbox.platform.publish(ctx)
    sandbox.platform.publish(ctx)
    assert len(sandbox.statuses()) == 1


def test_publishing_again_after_a_lost_answer_replays_the_same_status(
        sandbox: Sandbox) -> None:
    sandbox.fault(method="POST", path=STATUSES, status=502, after_body=True,
                  body={"error": "Bad Gateway"})
    ctx = sandbox.context(["twice?"])
    with pytest.raises(UnknownOutcome):
        sandbox.platform.publish(ctx)
    result = sandbox.platform.publish(ctx)  # a retry without confirm: the same key
    [status] = sandbox.statuses()
    assert result.first.external_id == status["id"]
    assert sandbox.state()["idempotentReplays"] == 1
    other = sandbox.context(["twice?"])  # another post: its own key, its own status
    sandbox.platform.publish(other)
    assert len(sandbox.statuses()) == 2


def test_a_thread_resumes_after_the_second_status(sandbox: Sandbox, media: Media) -> None:
    sandbox.fault(method="POST", path=STATUSES, status=500, after_body=True, count=1,
                  body={"error": "boom"})
    ctx = sandbox.context(["one", "two", "three"])
    # the first status goes through; the fault hits it (created, answer lost)
    with pytest.raises(UnknownOutcome) as caught:
        sandbox.platform.publish(ctx)
    assert caught.value.posted == []
    assert sandbox.platform.confirm(ctx) is None  # first settled; two remain
    result = sandbox.platform.publish(ctx)
    statuses = {s["text"]: s for s in sandbox.statuses()}
    assert sorted(statuses) == ["one", "three", "two"]
    assert statuses["two"]["in_reply_to_id"] == statuses["one"]["id"]
    assert [r.external_id for r in result.receipts] == [statuses[t]["id"]
                                                        for t in ("one", "two", "three")]


def test_uploaded_media_is_not_uploaded_again(sandbox: Sandbox, media: Media) -> None:
    sandbox.fault(method="POST", path=STATUSES, status=503, body={"error": "down"})
    ctx = sandbox.context(["pics"], media=[[media("photo.jpg"), media("photo2.png")]])
    with pytest.raises(TransientError):
        sandbox.platform.publish(ctx)
    assert len(ctx.checkpoints.load()["items"]["0"]["media"]) == 2
    sandbox.platform.publish(ctx)
    assert len(sandbox.state()["media"]) == 2 and len(sandbox.statuses()) == 1


def test_a_failed_thread_carries_what_is_posted(sandbox: Sandbox) -> None:
    ctx = sandbox.context(["ok", "x" * 600])
    with pytest.raises(PermanentError) as caught:
        sandbox.platform.publish(ctx)
    posted = caught.value.posted
    assert len(posted) == 1
    assert [r.external_id for r in posted] == [s["id"] for s in sandbox.statuses()]


def test_beyond_the_key_window_nothing_is_resent(sandbox: Sandbox) -> None:
    sandbox.fault(method="POST", path=STATUSES, status=502, after_body=True,
                  body={"error": "Bad Gateway"})
    ctx = sandbox.context(["old"])
    with pytest.raises(UnknownOutcome):
        sandbox.platform.publish(ctx)
    data = ctx.checkpoints.load()
    data["items"]["0"]["sentAt"] -= KEY_WINDOW_S + 60
    ctx.checkpoints.save(data)
    with pytest.raises(UnknownOutcome) as caught:
        sandbox.platform.confirm(ctx)
    assert caught.value.platform_code == "key-expired"
    assert len(sandbox.statuses()) == 1


def test_the_key_is_the_post_and_the_position() -> None:
    assert idempotency_key("post_1", 0) == idempotency_key("post_1", 0)
    assert idempotency_key("post_1", 0) != idempotency_key("post_1", 1)
    assert idempotency_key("post_1", 0) != idempotency_key("post_2", 0)


def test_the_key_window_counts_from_the_first_unanswered_request(sandbox: Sandbox) -> None:
    sandbox.fault(method="POST", path=STATUSES, status=502, after_body=True,
                  body={"error": "Bad Gateway"})
    ctx = sandbox.context(["uncertain"])
    with pytest.raises(UnknownOutcome):
        sandbox.platform.publish(ctx)
    first_sent = ctx.checkpoints.load()["items"]["0"]["sentAt"]
    sandbox.fault(method="POST", path=STATUSES, status=503, body={"error": "down"})
    with pytest.raises(TransientError):
        sandbox.platform.confirm(ctx)  # refused this time, but the first one may exist
    assert ctx.checkpoints.load()["items"]["0"]["sentAt"] == first_sent
    result = sandbox.platform.confirm(ctx)
    assert result is not None and len(sandbox.statuses()) == 1
