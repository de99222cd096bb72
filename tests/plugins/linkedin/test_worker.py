"""The LinkedIn plugin driven by chat33's own worker, on SQLite and PostgreSQL: an account
added as ``accounts add`` adds it, exactly once."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from typing import Any

import attrs
import chat33_linkedin
import httpx
import pytest
from chat33_linkedin.sandbox import DEMO_ACCOUNT, LinkedInSandbox

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


@attrs.define
class World:
    core: Chat33
    sandbox: LinkedInSandbox
    url: str
    account: Account
    user_id: str

    def queue(self, texts: Sequence[str]) -> list[Post]:
        """A QUEUED post, or a thread published with its head."""
        head = new_id("post")
        now = utcnow()
        posts = [Post(id=head if i == 0 else new_id("post"), org_id=self.account.org_id,
                      account_id=self.account.id, platform="linkedin",
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
    sandbox = LinkedInSandbox()
    with serve(sandbox) as url:
        settings = settings_for(db_url, CHAT33_LINKEDIN_API_BASE=url,
                                CHAT33_RETRY_BASE_S="0.01")
        core = Chat33(settings, load_plugins=False)
        core.host.register(chat33_linkedin, name="linkedin")
        core.store.migrate()
        org = core.store.add_org(Organization.new("Acme"))
        user = core.store.add_user(User(id=new_id("user"), org_id=org.id,
                                        email="li@example.com", password_hash="-"))
        # what `chat33 accounts add --platform linkedin --external-id urn:li:person:…
        # --username chat33-demo --token TOKEN --refresh-token REFRESH` adds
        account = core.add_account(org.id, "linkedin", "LinkedIn",
                                   username=DEMO_ACCOUNT["username"],
                                   external_id=DEMO_ACCOUNT["urn"],
                                   credentials=Credentials(
                                       access_token=DEMO_ACCOUNT["token"],
                                       refresh_token=DEMO_ACCOUNT["refresh_token"],
                                       expires_at=utcnow() + timedelta(days=50)))
        try:
            yield World(core, sandbox, url, account, user.id)
        finally:
            core.store.dispose()


def test_the_worker_publishes_a_thread_as_separate_posts(world: World) -> None:
    thread = world.queue(["first (one)", "second #two"])
    world.run()
    stored = [world.core.store.get_post(p.id) for p in thread]
    assert [p.status for p in stored] == [PostStatus.PUBLISHED] * 2
    posts = {p["text"]: p for p in world.posts()}
    assert [p.external_post_id for p in stored] == [posts["first (one)"]["id"],
                                                    posts["second #two"]["id"]]


def test_an_unanswered_post_is_confirmed_by_the_worker_not_posted_twice(
        world: World) -> None:
    world.sandbox.add_fault(method="POST", path="^/rest/posts$", status=502,
                            after_body=True, body={"status": 502, "message": "Bad Gateway"})
    [post] = world.queue(["exactly once"])
    world.run()
    stored = world.core.store.get_post(post.id)
    assert stored.status == PostStatus.PUBLISHED
    [on_linkedin] = world.posts()
    assert stored.external_post_id == on_linkedin["id"]
    events = [e.event for e in world.core.store.list_logs(post.id)]
    assert "unknown_outcome" in events and "linkedin.unknown" in events


def test_an_expiring_token_is_refreshed_before_publishing(world: World) -> None:
    world.core.save_account_credentials(world.account.id, Credentials(
        access_token=DEMO_ACCOUNT["token"], refresh_token=DEMO_ACCOUNT["refresh_token"],
        expires_at=utcnow() + timedelta(hours=3)))
    [post] = world.queue(["after a refresh"])
    world.run()
    assert world.core.store.get_post(post.id).status == PostStatus.PUBLISHED
    assert len(world.sandbox.state()["tokens"]) == 2  # the refresh grant issued one


def test_a_revoked_token_fails_the_post_and_asks_for_reconnect(world: World) -> None:
    world.core.save_account_credentials(world.account.id,
                                        Credentials(access_token="revoked-by-the-owner"))
    [post] = world.queue(["never"])
    world.run()
    stored = world.core.store.get_post(post.id)
    assert stored.status == PostStatus.FAILED
    assert "access token" in (stored.error_message or "")
    assert world.core.store.get_account(world.account.id).needs_reconnect
    assert world.posts() == []


def test_the_daily_limit_defers_the_post(world: World) -> None:
    httpx.post(f"{world.url}/_sandbox/config", json={"daily_posts": 0}).raise_for_status()
    [post] = world.queue(["tomorrow"])
    before = utcnow()
    world.run()
    stored = world.core.store.get_post(post.id)
    assert stored.status not in (PostStatus.PUBLISHED, PostStatus.FAILED)
    assert world.posts() == []
    assert stored.next_attempt_at is not None
    assert stored.next_attempt_at > before + timedelta(seconds=1)
