"""Exactly once on Threads: an unanswered threads_publish is settled by the container's
status (PUBLISHED: found among the account's recent posts; otherwise published again
from the same container), and a worker that dies resumes from its checkpoints."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from chat33_core.errors import UnknownOutcome
from chat33_core.platforms import MediaFile
from chat33_core.testing import CrashingCheckpoints, WorkerCrash

from .conftest import Sandbox


def test_confirm_finds_the_post_the_lost_answer_created(sandbox: Sandbox) -> None:
    sandbox.fault(method="POST", path="/threads_publish$", status=502, body="",
                  after_body=True)
    ctx = sandbox.context(["exactly once"])
    with pytest.raises(UnknownOutcome):
        sandbox.platform.publish(ctx)
    result = sandbox.platform.confirm(ctx)
    [post] = sandbox.posts()
    assert result is not None and result.first.external_id == post["id"]
    assert sandbox.publishes() == 1


def test_confirm_of_a_publish_that_never_arrived_lets_it_be_sent_again(
        sandbox: Sandbox) -> None:
    sandbox.fault(method="POST", path="/threads_publish$", status=502, body="")
    ctx = sandbox.context(["second chance"])
    with pytest.raises(UnknownOutcome):
        sandbox.platform.publish(ctx)
    assert sandbox.platform.confirm(ctx) is None  # the container is not PUBLISHED
    result = sandbox.platform.publish(ctx)
    [post] = sandbox.posts()
    assert result.first.external_id == post["id"]
    containers = [c for c in sandbox.state()["containers"]]
    assert len(containers) == 1  # the same container was published, not a new one


def test_confirm_in_a_thread_continues_after_the_settled_item(sandbox: Sandbox) -> None:
    sandbox.fault(method="POST", path="/threads_publish$", status=502, body="",
                  after_body=True)
    ctx = sandbox.context(["head", "reply"])
    with pytest.raises(UnknownOutcome):
        sandbox.platform.publish(ctx)
    assert sandbox.platform.confirm(ctx) is None  # the head is found; the reply remains
    result = sandbox.platform.publish(ctx)
    by_text = {p["text"]: p for p in sandbox.posts()}
    assert [r.external_id for r in result.receipts] == [by_text["head"]["id"],
                                                        by_text["reply"]["id"]]
    assert by_text["reply"]["replyTo"] == by_text["head"]["id"]
    assert sandbox.publishes() == 2


def test_two_matching_posts_are_not_guessed_between(sandbox: Sandbox) -> None:
    sandbox.platform.publish(sandbox.context(["same words"]))
    sandbox.fault(method="POST", path="/threads_publish$", status=502, body="",
                  after_body=True)
    ctx = sandbox.context(["same words"])
    with pytest.raises(UnknownOutcome):
        sandbox.platform.publish(ctx)
    with pytest.raises(UnknownOutcome, match="2 matching"):
        sandbox.platform.confirm(ctx)


def test_a_worker_dying_after_publish_does_not_publish_twice(sandbox: Sandbox) -> None:
    checkpoints = CrashingCheckpoints(lambda data: bool(data.get("posted")))
    ctx = sandbox.context(["crash after"], checkpoints=checkpoints)
    with pytest.raises(WorkerCrash):
        sandbox.platform.publish(ctx)
    result = sandbox.platform.publish(ctx)
    [post] = sandbox.posts()
    assert result.first.external_id == post["id"] and sandbox.publishes() == 1


def test_a_worker_dying_with_publish_in_flight_asks_the_container(sandbox: Sandbox) -> None:
    """Killed after the publish went out but before its id was saved: the next attempt
    reads the container (PUBLISHED) and finds the post instead of publishing again."""
    checkpoints = CrashingCheckpoints(lambda data: bool(data["items"].get("0", {}).get(
        "publishStartedAt")))
    ctx = sandbox.context(["in flight"], checkpoints=checkpoints)
    with pytest.raises(WorkerCrash):
        sandbox.platform.publish(ctx)
    assert sandbox.posts() == []  # died before sending
    sandbox.platform.publish(ctx)
    assert len(sandbox.posts()) == 1 and sandbox.publishes() == 1
    # now the same with the publish through and the answer lost
    checkpoints = CrashingCheckpoints(lambda data: bool(data.get("posted")))
    ctx = sandbox.context(["through"], checkpoints=checkpoints)
    with pytest.raises(WorkerCrash):
        sandbox.platform.publish(ctx)
    checkpoints.data["posted"] = []  # as if the id had never been saved
    checkpoints.data["items"] = {"0": {"container": sandbox.state()["containers"][-1]["id"],
                                       "publishStartedAt": 1.0}}
    result = sandbox.platform.publish(ctx)
    assert result.first.external_id == next(p["id"] for p in sandbox.posts()
                                            if p["text"] == "through")
    assert sandbox.publishes() == 2


def test_carousel_items_are_not_created_again_on_resume(
        sandbox: Sandbox, media: Callable[[str], MediaFile]) -> None:
    checkpoints = CrashingCheckpoints(lambda data: len(data["items"].get("0", {}).get(
        "children", [])) == 2)
    files = [media("photo.jpg"), media("photo2.png"), media("photo.jpg")]
    ctx = sandbox.context(["carousel"], media=[files], checkpoints=checkpoints)
    with pytest.raises(WorkerCrash):
        sandbox.platform.publish(ctx)
    sandbox.platform.publish(ctx)
    items = [c for c in sandbox.state()["containers"] if c["carouselItem"]]
    assert len(items) == 3 and len(sandbox.posts()) == 1


def test_an_expired_container_is_created_again(sandbox: Sandbox) -> None:
    checkpoints = CrashingCheckpoints(lambda data: bool(data["items"].get("0", {}).get(
        "container")))
    ctx = sandbox.context(["late"], checkpoints=checkpoints)
    with pytest.raises(WorkerCrash):
        sandbox.platform.publish(ctx)
    sandbox.advance(86_400 + 10)
    sandbox.platform.publish(ctx)
    assert len(sandbox.state()["containers"]) == 2 and len(sandbox.posts()) == 1


def test_a_lost_reply_is_found_among_the_replies(sandbox: Sandbox) -> None:
    root = sandbox.platform.publish(sandbox.context(["root"])).first.external_id
    sandbox.fault(method="POST", path="/threads_publish$", status=502, body="",
                  after_body=True)
    ctx = sandbox.context(["an answer"], platform_config={"threads": {"replyToId": root}})
    with pytest.raises(UnknownOutcome):
        sandbox.platform.publish(ctx)
    result = sandbox.platform.confirm(ctx)
    answer = next(p for p in sandbox.posts() if p["text"] == "an answer")
    assert result is not None and result.first.external_id == answer["id"]
    assert any("/replies" in r for r in sandbox.state()["requests"])
