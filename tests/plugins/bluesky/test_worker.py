"""The Bluesky plugin driven by chat33's own worker, on SQLite and PostgreSQL: an account
added with its app password, sessions kept in the stored credentials, exactly once."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import chat33_bluesky
import httpx
import pytest
from chat33_bluesky.sandbox import BlueskySandbox

from chat33_core.models import Credentials, PostStatus
from chat33_core.testing import WorkerWorld, worker_world

from .conftest import DID, HANDLE, PASSWORD


@pytest.fixture
def world(db_url: str, settings_for: Callable[..., Any]) -> Iterator[WorkerWorld]:
    # what `chat33 accounts add --external-id DID --username HANDLE --token PASSWORD` adds
    with worker_world(chat33_bluesky, BlueskySandbox(), partial(settings_for, db_url),
                      name="Bluesky", username=HANDLE, external_id=DID,
                      credentials=Credentials(access_token=PASSWORD)) as world:
        yield world


def test_the_worker_opens_a_session_once_and_publishes_a_thread(world: WorkerWorld) -> None:
    thread = world.queue(["first", "second"])
    world.run()
    stored = [world.core.store.get_post(p.id) for p in thread]
    assert [p.status for p in stored] == [PostStatus.PUBLISHED] * 2
    posts = {p["value"]["text"]: p for p in world.live("posts")}
    assert [p.external_post_id for p in stored] == [posts["first"]["uri"],
                                                    posts["second"]["uri"]]
    assert posts["second"]["value"]["reply"]["parent"]["uri"] == posts["first"]["uri"]
    credentials = world.core.account_credentials(world.account.id)
    assert credentials is not None and credentials.extra["did"] == DID
    assert credentials.access_token != PASSWORD  # the session replaced the password
    assert credentials.extra["appPassword"] == PASSWORD

    world.queue(["third"])
    world.run()
    assert len(world.live("posts")) == 3
    assert world.sandbox.state()["sessions"] == {"created": 1, "refreshed": 0}


def test_an_expired_session_is_refreshed_and_the_rotated_token_stored(world: WorkerWorld) -> None:
    world.queue(["before"])
    world.run()
    first = world.core.account_credentials(world.account.id)
    assert first is not None
    # two hours on: the access JWT the worker holds has expired at Bluesky
    httpx.post(f"{world.url}/_sandbox/clock", json={"advance": 7300}).raise_for_status()
    [post] = world.queue(["after"])
    world.run()
    assert world.core.store.get_post(post.id).status == PostStatus.PUBLISHED
    second = world.core.account_credentials(world.account.id)
    assert second is not None and second.refresh_token != first.refresh_token
    assert world.sandbox.state()["sessions"] == {"created": 1, "refreshed": 1}


def test_an_unanswered_post_is_confirmed_by_the_worker_not_posted_twice(world: WorkerWorld) -> None:
    world.sandbox.add_fault(method="POST", path="createRecord", status=502, after_body=True,
                            body={"error": "UpstreamFailure", "message": "Upstream Failure"})
    [post] = world.queue(["exactly once"])
    world.run()
    stored = world.core.store.get_post(post.id)
    assert stored.status == PostStatus.PUBLISHED
    [on_bluesky] = world.live("posts")
    assert stored.external_post_id == on_bluesky["uri"]
    events = [e.event for e in world.core.store.list_logs(post.id)]
    assert "unknown_outcome" in events and "bluesky.confirm" in events


def test_a_refused_app_password_fails_the_post_and_asks_for_reconnect(world: WorkerWorld) -> None:
    httpx.post(f"{world.url}/_sandbox/accounts", json={
        "did": DID, "handle": HANDLE, "password": "changed-by-the-owner"}).raise_for_status()
    [post] = world.queue(["never"])
    world.run()
    stored = world.core.store.get_post(post.id)
    assert stored.status == PostStatus.FAILED
    assert "app password" in (stored.error_message or "")
    assert world.core.store.get_account(world.account.id).needs_reconnect
    assert world.live("posts") == []
