"""The Bluesky plugin driven by chat33's own worker, on SQLite and PostgreSQL: an account
added with its app password, sessions kept in the stored credentials, exactly once."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import attrs
import chat33_bluesky
import httpx
import pytest
from chat33_bluesky.sandbox import BlueskySandbox

from chat33_core.models import (
    Account,
    Credentials,
    Organization,
    Post,
    PostStatus,
    User,
    new_id,
    utcnow,
)
from chat33_core.sandbox import serve
from chat33_core.scheduling import Worker
from chat33_core.service import Chat33

from .conftest import DID, HANDLE, PASSWORD


@attrs.define
class World:
    core: Chat33
    sandbox: BlueskySandbox
    url: str
    account: Account
    user_id: str

    def queue(self, texts: Sequence[str]) -> list[Post]:
        """A QUEUED post, or a thread published with its head."""
        head = new_id("post")
        now = utcnow()
        posts = [Post(id=head if i == 0 else new_id("post"), org_id=self.account.org_id,
                      account_id=self.account.id, platform="bluesky",
                      account_name=self.account.name, created_by=self.user_id, text=text,
                      status=PostStatus.QUEUED, thread_id=head if len(texts) > 1 else None,
                      thread_position=i, publish_with_head=i > 0, created_at=now,
                      updated_at=now)
                 for i, text in enumerate(texts)]
        return self.core.store.add_posts(posts)

    def run(self) -> None:
        assert Worker(self.core, once=True, concurrency=1, grace_s=5.0).run() == 0

    def posts(self) -> list[dict[str, Any]]:
        return [p for p in self.sandbox.state()["posts"] if not p["deleted"]]


@pytest.fixture
def world(db_url: str, settings_for: Callable[..., Any]) -> Iterator[World]:
    sandbox = BlueskySandbox()
    with serve(sandbox) as url:
        settings = settings_for(db_url, CHAT33_BLUESKY_API_BASE=url,
                                CHAT33_RETRY_BASE_S="0.01")
        core = Chat33(settings, load_plugins=False)
        core.host.register(chat33_bluesky, name="bluesky")
        core.store.migrate()
        org = core.store.add_org(Organization.new("Acme"))
        user = core.store.add_user(User(id=new_id("user"), org_id=org.id,
                                        email="bsky@example.com", password_hash="-"))
        # what `chat33 accounts add --external-id DID --username HANDLE --token PASSWORD` adds
        account = core.add_account(org.id, "bluesky", "Bluesky", username=HANDLE,
                                   external_id=DID,
                                   credentials=Credentials(access_token=PASSWORD))
        try:
            yield World(core, sandbox, url, account, user.id)
        finally:
            core.store.dispose()


def test_the_worker_opens_a_session_once_and_publishes_a_thread(world: World) -> None:
    thread = world.queue(["first", "second"])
    world.run()
    stored = [world.core.store.get_post(p.id) for p in thread]
    assert [p.status for p in stored] == [PostStatus.PUBLISHED] * 2
    posts = {p["value"]["text"]: p for p in world.posts()}
    assert [p.external_post_id for p in stored] == [posts["first"]["uri"],
                                                    posts["second"]["uri"]]
    assert posts["second"]["value"]["reply"]["parent"]["uri"] == posts["first"]["uri"]
    credentials = world.core.account_credentials(world.account.id)
    assert credentials is not None and credentials.extra["did"] == DID
    assert credentials.access_token != PASSWORD  # the session replaced the password
    assert credentials.extra["appPassword"] == PASSWORD

    world.queue(["third"])
    world.run()
    assert len(world.posts()) == 3
    assert world.sandbox.state()["sessions"] == {"created": 1, "refreshed": 0}


def test_an_expired_session_is_refreshed_and_the_rotated_token_stored(world: World) -> None:
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


def test_an_unanswered_post_is_confirmed_by_the_worker_not_posted_twice(world: World) -> None:
    world.sandbox.add_fault(method="POST", path="createRecord", status=502, after_body=True,
                            body={"error": "UpstreamFailure", "message": "Upstream Failure"})
    [post] = world.queue(["exactly once"])
    world.run()
    stored = world.core.store.get_post(post.id)
    assert stored.status == PostStatus.PUBLISHED
    [on_bluesky] = world.posts()
    assert stored.external_post_id == on_bluesky["uri"]
    events = [e.event for e in world.core.store.list_logs(post.id)]
    assert "unknown_outcome" in events and "bluesky.confirm" in events


def test_a_refused_app_password_keeps_the_post_waiting_for_reconnect(world: World) -> None:
    httpx.post(f"{world.url}/_sandbox/accounts", json={
        "did": DID, "handle": HANDLE, "password": "changed-by-the-owner"}).raise_for_status()
    [post] = world.queue(["never"])
    world.run()
    stored = world.core.store.get_post(post.id)
    assert stored.status == PostStatus.QUEUED and stored.retry_count == 0
    assert "app password" in (stored.error_message or "")
    assert world.core.store.get_account(world.account.id).needs_reconnect
    assert world.posts() == []
