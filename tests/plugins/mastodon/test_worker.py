"""The Mastodon plugin driven by chat33's own worker, on SQLite and PostgreSQL: an account
added as ``accounts add`` adds it, exactly once."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from functools import partial
from typing import Any

import chat33_mastodon
import httpx
import pytest
from chat33_mastodon.sandbox import DEMO_ACCOUNT, MastodonSandbox

from chat33_core.models import Credentials, PostStatus, utcnow
from chat33_core.testing import WorkerWorld, worker_world


@pytest.fixture
def world(db_url: str, settings_for: Callable[..., Any]) -> Iterator[WorkerWorld]:
    # what `chat33 accounts add --platform mastodon --external-id ID
    # --username chat33@social.example --token TOKEN --instance URL` adds
    with worker_world(chat33_mastodon, MastodonSandbox(), partial(settings_for, db_url),
                      name="Mastodon", username="chat33@social.example",
                      external_id=DEMO_ACCOUNT["id"],
                      credentials=Credentials(access_token=DEMO_ACCOUNT["token"]),
                      metadata={"instance": "https://social.example"}) as world:
        yield world


def test_the_worker_publishes_a_thread(world: WorkerWorld) -> None:
    thread = world.queue(["first", "second"])
    world.run()
    stored = [world.core.store.get_post(p.id) for p in thread]
    assert [p.status for p in stored] == [PostStatus.PUBLISHED] * 2
    statuses = {s["text"]: s for s in world.live("statuses")}
    assert [p.external_post_id for p in stored] == [statuses["first"]["id"],
                                                    statuses["second"]["id"]]
    assert statuses["second"]["in_reply_to_id"] == statuses["first"]["id"]


def test_an_unanswered_status_is_confirmed_by_the_worker_not_posted_twice(
        world: WorkerWorld) -> None:
    world.sandbox.add_fault(method="POST", path="^/api/v1/statuses$", status=502,
                            after_body=True, body={"error": "Bad Gateway"})
    [post] = world.queue(["exactly once"])
    world.run()
    stored = world.core.store.get_post(post.id)
    assert stored.status == PostStatus.PUBLISHED
    [on_mastodon] = world.live("statuses")
    assert stored.external_post_id == on_mastodon["id"]
    assert world.sandbox.state()["idempotentReplays"] == 1
    events = [e.event for e in world.core.store.list_logs(post.id)]
    assert "unknown_outcome" in events and "mastodon.unknown" in events


def test_a_revoked_token_fails_the_post_and_asks_for_reconnect(world: WorkerWorld) -> None:
    world.core.save_account_credentials(world.account.id,
                                        Credentials(access_token="revoked-by-the-owner"))
    [post] = world.queue(["never"])
    world.run()
    stored = world.core.store.get_post(post.id)
    assert stored.status == PostStatus.FAILED
    assert "access token" in (stored.error_message or "")
    assert world.core.store.get_account(world.account.id).needs_reconnect
    assert world.live("statuses") == []


def test_a_rate_limit_defers_the_post_until_the_reset(world: WorkerWorld) -> None:
    httpx.post(f"{world.url}/_sandbox/config", json={"rate_limit": 0}).raise_for_status()
    [post] = world.queue(["later"])
    before = utcnow()
    world.run()
    stored = world.core.store.get_post(post.id)
    assert stored.status not in (PostStatus.PUBLISHED, PostStatus.FAILED)
    assert world.live("statuses") == []
    # retried at the reset of the 5-minute window, not at once
    assert stored.next_attempt_at is not None
    assert stored.next_attempt_at > before + timedelta(seconds=1)
