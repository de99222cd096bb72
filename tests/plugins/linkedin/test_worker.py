"""The LinkedIn plugin driven by chat33's own worker, on SQLite and PostgreSQL: an account
added as ``accounts add`` adds it, exactly once."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from functools import partial
from typing import Any

import chat33_linkedin
import httpx
import pytest
from chat33_linkedin.sandbox import DEMO_ACCOUNT, LinkedInSandbox

from chat33_core.models import Credentials, PostStatus, utcnow
from chat33_core.testing import WorkerWorld, worker_world


@pytest.fixture
def world(db_url: str, settings_for: Callable[..., Any]) -> Iterator[WorkerWorld]:
    # what `chat33 accounts add --platform linkedin --external-id urn:li:person:…
    # --username chat33-demo --token TOKEN --refresh-token REFRESH` adds
    with worker_world(chat33_linkedin, LinkedInSandbox(), partial(settings_for, db_url),
                      name="LinkedIn", username=DEMO_ACCOUNT["username"],
                      external_id=DEMO_ACCOUNT["urn"],
                      credentials=Credentials(access_token=DEMO_ACCOUNT["token"],
                                              refresh_token=DEMO_ACCOUNT["refresh_token"],
                                              expires_at=utcnow() + timedelta(days=50)),
                      ) as world:
        yield world


def test_the_worker_publishes_a_thread_as_separate_posts(world: WorkerWorld) -> None:
    thread = world.queue(["first (one)", "second #two"])
    world.run()
    stored = [world.core.store.get_post(p.id) for p in thread]
    assert [p.status for p in stored] == [PostStatus.PUBLISHED] * 2
    posts = {p["text"]: p for p in world.live("posts")}
    assert [p.external_post_id for p in stored] == [posts["first (one)"]["id"],
                                                    posts["second #two"]["id"]]


def test_an_unanswered_post_is_confirmed_by_the_worker_not_posted_twice(
        world: WorkerWorld) -> None:
    world.sandbox.add_fault(method="POST", path="^/rest/posts$", status=502,
                            after_body=True, body={"status": 502, "message": "Bad Gateway"})
    [post] = world.queue(["exactly once"])
    world.run()
    stored = world.core.store.get_post(post.id)
    assert stored.status == PostStatus.PUBLISHED
    [on_linkedin] = world.live("posts")
    assert stored.external_post_id == on_linkedin["id"]
    events = [e.event for e in world.core.store.list_logs(post.id)]
    assert "unknown_outcome" in events and "linkedin.unknown" in events


def test_an_expiring_token_is_refreshed_before_publishing(world: WorkerWorld) -> None:
    world.core.save_account_credentials(world.account.id, Credentials(
        access_token=DEMO_ACCOUNT["token"], refresh_token=DEMO_ACCOUNT["refresh_token"],
        expires_at=utcnow() + timedelta(hours=3)))
    [post] = world.queue(["after a refresh"])
    world.run()
    assert world.core.store.get_post(post.id).status == PostStatus.PUBLISHED
    assert len(world.sandbox.state()["tokens"]) == 2  # the refresh grant issued one


def test_a_revoked_token_fails_the_post_and_asks_for_reconnect(world: WorkerWorld) -> None:
    world.core.save_account_credentials(world.account.id,
                                        Credentials(access_token="revoked-by-the-owner"))
    [post] = world.queue(["never"])
    world.run()
    stored = world.core.store.get_post(post.id)
    assert stored.status == PostStatus.FAILED
    assert "access token" in (stored.error_message or "")
    assert world.core.store.get_account(world.account.id).needs_reconnect
    assert world.live("posts") == []


def test_the_daily_limit_defers_the_post(world: WorkerWorld) -> None:
    httpx.post(f"{world.url}/_sandbox/config", json={"daily_posts": 0}).raise_for_status()
    [post] = world.queue(["tomorrow"])
    before = utcnow()
    world.run()
    stored = world.core.store.get_post(post.id)
    assert stored.status not in (PostStatus.PUBLISHED, PostStatus.FAILED)
    assert world.live("posts") == []
    assert stored.next_attempt_at is not None
    assert stored.next_attempt_at > before + timedelta(seconds=1)
