"""Exactly once on Telegram: checkpoints after every acknowledged message; a message
whose answer was lost is never sent again, and ``confirm`` says it cannot tell."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from chat33_core.errors import UnknownOutcome
from chat33_core.platforms import MediaFile, MemoryCheckpoints
from chat33_core.testing import CrashingCheckpoints, WorkerCrash

from .conftest import Sandbox, after_posted, sending


def test_a_crash_after_a_sent_album_resumes_without_sending_it_again(
        sandbox: Sandbox, media: Callable[[str], MediaFile]) -> None:
    album = [media("photo.jpg"), media("clip.mp4"), media("photo2.png")]
    checkpoints = CrashingCheckpoints(after_posted(1))
    ctx = sandbox.context(["the album", "the reply"], media=[album],
                          checkpoints=checkpoints)
    with pytest.raises(WorkerCrash):
        sandbox.platform.publish(ctx)
    assert len(sandbox.messages()) == 3  # the album is in the chat
    # another worker takes over with the saved checkpoint
    result = sandbox.platform.publish(ctx)
    messages = sandbox.messages()
    assert len(messages) == 4
    assert [r.external_id for r in result.receipts] == ["1,2,3", "4"]
    assert messages[3]["reply_to_message"]["message_id"] == 1


def test_a_crash_while_a_message_is_in_flight_is_never_resent(sandbox: Sandbox) -> None:
    checkpoints = CrashingCheckpoints(sending(1))
    ctx = sandbox.context(["one", "two"], checkpoints=checkpoints)
    with pytest.raises(WorkerCrash):
        sandbox.platform.publish(ctx)
    with pytest.raises(UnknownOutcome) as caught:
        sandbox.platform.publish(ctx)
    assert "check the chat" in caught.value.message
    assert [r.external_id for r in caught.value.posted] == ["1"]
    with pytest.raises(UnknownOutcome) as again:
        sandbox.platform.confirm(ctx)
    assert "message 2 of 2" in again.value.message
    assert [r.external_id for r in again.value.posted] == ["1"]
    assert [m["text"] for m in sandbox.messages()] == ["one"]


def test_a_lost_answer_is_unknown_and_confirm_cannot_tell(sandbox: Sandbox) -> None:
    # Telegram delivers the message, the answer never arrives
    sandbox.fault(method="POST", path="sendMessage", status=502, after_body=True,
                  body={"ok": False, "error_code": 502, "description": "Bad Gateway"})
    ctx = sandbox.context(["delivered once"])
    with pytest.raises(UnknownOutcome):
        sandbox.platform.publish(ctx)
    with pytest.raises(UnknownOutcome, match="check the chat"):
        sandbox.platform.confirm(ctx)
    with pytest.raises(UnknownOutcome):
        sandbox.platform.publish(ctx)  # a retry does not post it a second time
    assert [m["text"] for m in sandbox.messages()] == ["delivered once"]


def test_confirm_answers_when_it_can(sandbox: Sandbox) -> None:
    ctx = sandbox.context(["a", "b"], checkpoints=MemoryCheckpoints())
    assert sandbox.platform.confirm(ctx) is None  # nothing was in flight
    sandbox.platform.publish(ctx)
    result = sandbox.platform.confirm(ctx)
    assert result is not None and [r.external_id for r in result.receipts] == ["1", "2"]


def test_a_crash_during_a_flood_wait_sends_the_message_on_the_next_attempt(
        sandbox: Sandbox) -> None:
    sandbox.fault(method="POST", path="sendMessage", status=429, body={
        "ok": False, "error_code": 429, "description": "Too Many Requests: retry after 2",
        "parameters": {"retry_after": 2}})
    ctx = sandbox.context(["refused, then sent"])

    def die(seconds: float) -> None:
        raise WorkerCrash("the worker died while waiting")

    ctx.sleep = die
    with pytest.raises(WorkerCrash):
        sandbox.platform.publish(ctx)
    # flood control refused the message: nothing is in flight, the next attempt sends it
    assert ctx.checkpoints.load()["sending"] is None
    sandbox.platform.publish(ctx)
    assert [m["text"] for m in sandbox.messages()] == ["refused, then sent"]
