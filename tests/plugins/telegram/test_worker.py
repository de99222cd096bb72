"""The Telegram plugin driven by chat33's own worker, on SQLite and PostgreSQL: an account
added with its bot token, a thread, a lost answer, a revoked token."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import chat33_telegram
import pytest
from chat33_telegram.sandbox import DEMO_BOT, TelegramSandbox

from chat33_core.errors import NotSupported
from chat33_core.models import Credentials, PostStatus
from chat33_core.testing import WorkerWorld, worker_world

from .conftest import CHANNEL, TOKEN


@pytest.fixture
def world(db_url: str, settings_for: Callable[..., Any]) -> Iterator[WorkerWorld]:
    # what `chat33 accounts add --external-id @chat33demo --username <bot> --token T` adds
    with worker_world(chat33_telegram, TelegramSandbox(), partial(settings_for, db_url),
                      name="Telegram", username=DEMO_BOT["username"], external_id=CHANNEL,
                      credentials=Credentials(access_token=TOKEN)) as world:
        yield world


def test_the_worker_publishes_a_thread_as_replies(world: WorkerWorld) -> None:
    thread = world.queue(["first", "second"])
    world.run()
    stored = [world.core.store.get_post(p.id) for p in thread]
    assert [p.status for p in stored] == [PostStatus.PUBLISHED] * 2
    first, second = world.live("messages")
    assert [p.external_post_id for p in stored] == [str(first["message_id"]),
                                                    str(second["message_id"])]
    assert second["reply_to_message"]["message_id"] == first["message_id"]
    assert stored[0].external_post_url == f"https://t.me/chat33demo/{first['message_id']}"


def test_a_lost_answer_fails_the_post_asking_to_check_the_chat(world: WorkerWorld) -> None:
    world.sandbox.add_fault(method="POST", path="sendMessage", status=502, after_body=True,
                            body={"ok": False, "error_code": 502, "description": "Bad Gateway"})
    [post] = world.queue(["exactly once"])
    world.run()
    stored = world.core.store.get_post(post.id)
    assert stored.status == PostStatus.FAILED
    assert "check the chat" in (stored.error_message or "")
    assert [m["text"] for m in world.live("messages")] == ["exactly once"]  # never sent twice


def test_a_revoked_token_fails_the_post_and_asks_for_reconnect(world: WorkerWorld) -> None:
    with world.sandbox.lock:
        world.sandbox.bots[TOKEN]["revoked"] = True
    [post] = world.queue(["never"])
    world.run()
    stored = world.core.store.get_post(post.id)
    assert stored.status == PostStatus.FAILED
    assert "BotFather" in (stored.error_message or "")
    assert world.core.store.get_account(world.account.id).needs_reconnect
    assert world.live("messages") == []


def test_deleting_from_the_platform_within_48_hours_and_a_409_after(world: WorkerWorld) -> None:
    recent, old = world.queue(["recent"])[0], world.queue(["old"])[0]
    world.run()
    org = world.account.org_id
    outcome = world.core.delete_post(org, recent.id, from_platform=True)
    assert outcome.platform_deleted is True
    assert [m["text"] for m in world.live("messages")] == ["old"]
    with world.sandbox.lock:
        world.sandbox.offset += 49 * 3600
    with pytest.raises(NotSupported) as caught:
        world.core.delete_post(org, old.id, from_platform=True)
    assert caught.value.http_status == 409 and "48 hours" in caught.value.message
    assert world.core.store.get_post(old.id).status == PostStatus.PUBLISHED
    assert [m["text"] for m in world.live("messages")] == ["old"]
