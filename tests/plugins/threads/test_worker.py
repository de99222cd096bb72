"""The Threads plugin driven by chat33's own worker, on SQLite and PostgreSQL: an account
added as ``accounts add`` adds it, exactly once."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from functools import partial
from typing import Any

import chat33_threads
import pytest
from chat33_threads.sandbox import DEMO_ACCOUNT, ThreadsSandbox

from chat33_core.models import Credentials, PostStatus, utcnow
from chat33_core.testing import WorkerWorld, worker_world


@pytest.fixture
def world(db_url: str, settings_for: Callable[..., Any]) -> Iterator[WorkerWorld]:
    # what `chat33 accounts add --platform threads --external-id ID --username chat33
    # --token TOKEN` adds
    with worker_world(chat33_threads, ThreadsSandbox(), partial(settings_for, db_url),
                      name="Threads", username=DEMO_ACCOUNT["username"],
                      external_id=DEMO_ACCOUNT["id"],
                      credentials=Credentials(access_token=DEMO_ACCOUNT["token"])) as world:
        yield world


def test_the_worker_publishes_a_thread(world: WorkerWorld) -> None:
    thread = world.queue(["first", "second"])
    world.run()
    stored = [world.core.store.get_post(p.id) for p in thread]
    assert [p.status for p in stored] == [PostStatus.PUBLISHED] * 2
    on_threads = {p["text"]: p for p in world.live("posts")}
    assert [p.external_post_id for p in stored] == [on_threads["first"]["id"],
                                                    on_threads["second"]["id"]]
    assert on_threads["second"]["replyTo"] == on_threads["first"]["id"]


def test_an_unanswered_publish_is_confirmed_by_the_worker_not_posted_twice(
        world: WorkerWorld) -> None:
    world.sandbox.add_fault(method="POST", path="/threads_publish$", status=502,
                            after_body=True, body="")
    [post] = world.queue(["exactly once"])
    world.run()
    stored = world.core.store.get_post(post.id)
    assert stored.status == PostStatus.PUBLISHED
    [on_threads] = world.live("posts")
    assert stored.external_post_id == on_threads["id"]
    requests = world.sandbox.state()["requests"]
    assert sum(r.endswith("/threads_publish") for r in requests) == 1
    events = [e.event for e in world.core.store.list_logs(post.id)]
    assert "unknown_outcome" in events and "threads.confirm" in events


def test_a_revoked_token_fails_the_post_and_asks_for_reconnect(world: WorkerWorld) -> None:
    world.sandbox.tokens["revoked-by-the-owner"] = {"issuedAt": 0.0, "expiresAt": 1e12,
                                                    "revoked": True}
    world.core.save_account_credentials(world.account.id,
                                        Credentials(access_token="revoked-by-the-owner"))
    [post] = world.queue(["never"])
    world.run()
    stored = world.core.store.get_post(post.id)
    assert stored.status == PostStatus.FAILED
    assert "access token" in (stored.error_message or "")
    assert world.core.store.get_account(world.account.id).needs_reconnect
    assert world.live("posts") == []


def test_a_spent_quota_defers_the_post(world: WorkerWorld) -> None:
    world.sandbox.config["quotaTotal"] = 0
    [post] = world.queue(["later"])
    before = utcnow()
    world.run()
    stored = world.core.store.get_post(post.id)
    assert stored.status not in (PostStatus.PUBLISHED, PostStatus.FAILED)
    assert world.live("posts") == []
    assert stored.next_attempt_at is not None
    assert stored.next_attempt_at > before + timedelta(minutes=30)


def test_a_token_near_expiry_is_refreshed_before_publishing(world: WorkerWorld) -> None:
    now = utcnow()
    world.core.save_account_credentials(world.account.id, Credentials(
        access_token=DEMO_ACCOUNT["token"], expires_at=now + timedelta(days=2),
        issued_at=now - timedelta(days=58)))
    [post] = world.queue(["fresh token"])
    world.run()
    assert world.core.store.get_post(post.id).status == PostStatus.PUBLISHED
    requests = world.sandbox.state()["requests"]
    assert sum("refresh_access_token" in r for r in requests) == 1
    stored = world.core.account_credentials(world.account.id)
    assert stored is not None and stored.access_token != DEMO_ACCOUNT["token"]
    assert stored.expires_at is not None and stored.expires_at > now + timedelta(days=59)
