"""The Telegram plugin driven by chat33's own worker, on SQLite and PostgreSQL: an account
added with its bot token, a thread, a lost answer, a revoked token."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import attrs
import chat33_telegram
import pytest
from chat33_telegram.sandbox import DEMO_BOT, TelegramSandbox

from chat33_core.errors import NotSupported
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

from .conftest import CHANNEL, TOKEN


@attrs.define
class World:
    core: Chat33
    sandbox: TelegramSandbox
    account: Account
    user_id: str

    def queue(self, texts: Sequence[str]) -> list[Post]:
        """A QUEUED post, or a thread published with its head."""
        head = new_id("post")
        now = utcnow()
        posts = [Post(id=head if i == 0 else new_id("post"), org_id=self.account.org_id,
                      account_id=self.account.id, platform="telegram",
                      account_name=self.account.name, created_by=self.user_id, text=text,
                      status=PostStatus.QUEUED, thread_id=head if len(texts) > 1 else None,
                      thread_position=i, publish_with_head=i > 0, created_at=now,
                      updated_at=now)
                 for i, text in enumerate(texts)]
        return self.core.store.add_posts(posts)

    def run(self) -> None:
        assert Worker(self.core, once=True, concurrency=1, grace_s=5.0).run() == 0

    def messages(self) -> list[dict[str, Any]]:
        return list(self.sandbox.state()["messages"])


@pytest.fixture
def world(db_url: str, settings_for: Callable[..., Any]) -> Iterator[World]:
    sandbox = TelegramSandbox()
    with serve(sandbox) as url:
        settings = settings_for(db_url, CHAT33_TELEGRAM_API_BASE=url,
                                CHAT33_RETRY_BASE_S="0.01")
        core = Chat33(settings, load_plugins=False)
        core.host.register(chat33_telegram, name="telegram")
        core.store.migrate()
        org = core.store.add_org(Organization.new("Acme"))
        user = core.store.add_user(User(id=new_id("user"), org_id=org.id,
                                        email="tg@example.com", password_hash="-"))
        # what `chat33 accounts add --external-id @chat33demo --username <bot> --token T` adds
        account = core.add_account(org.id, "telegram", "Telegram", username=DEMO_BOT["username"],
                                   external_id=CHANNEL,
                                   credentials=Credentials(access_token=TOKEN))
        try:
            yield World(core, sandbox, account, user.id)
        finally:
            core.store.dispose()


def test_the_worker_publishes_a_thread_as_replies(world: World) -> None:
    thread = world.queue(["first", "second"])
    world.run()
    stored = [world.core.store.get_post(p.id) for p in thread]
    assert [p.status for p in stored] == [PostStatus.PUBLISHED] * 2
    first, second = world.messages()
    assert [p.external_post_id for p in stored] == [str(first["message_id"]),
                                                    str(second["message_id"])]
    assert second["reply_to_message"]["message_id"] == first["message_id"]
    assert stored[0].external_post_url == f"https://t.me/chat33demo/{first['message_id']}"


def test_a_lost_answer_fails_the_post_asking_to_check_the_chat(world: World) -> None:
    world.sandbox.add_fault(method="POST", path="sendMessage", status=502, after_body=True,
                            body={"ok": False, "error_code": 502, "description": "Bad Gateway"})
    [post] = world.queue(["exactly once"])
    world.run()
    stored = world.core.store.get_post(post.id)
    assert stored.status == PostStatus.FAILED
    assert "check the chat" in (stored.error_message or "")
    assert [m["text"] for m in world.messages()] == ["exactly once"]  # never sent twice


def test_a_revoked_token_fails_the_post_and_asks_for_reconnect(world: World) -> None:
    with world.sandbox.lock:
        world.sandbox.bots[TOKEN]["revoked"] = True
    [post] = world.queue(["never"])
    world.run()
    stored = world.core.store.get_post(post.id)
    assert stored.status == PostStatus.FAILED
    assert "BotFather" in (stored.error_message or "")
    assert world.core.store.get_account(world.account.id).needs_reconnect
    assert world.messages() == []


def test_deleting_from_the_platform_within_48_hours_and_a_409_after(world: World) -> None:
    recent, old = world.queue(["recent"])[0], world.queue(["old"])[0]
    world.run()
    org = world.account.org_id
    outcome = world.core.delete_post(org, recent.id, from_platform=True)
    assert outcome.platform_deleted is True
    assert [m["text"] for m in world.messages()] == ["old"]
    with world.sandbox.lock:
        world.sandbox.offset += 49 * 3600
    with pytest.raises(NotSupported) as caught:
        world.core.delete_post(org, old.id, from_platform=True)
    assert caught.value.http_status == 409 and "48 hours" in caught.value.message
    assert world.core.store.get_post(old.id).status == PostStatus.PUBLISHED
    assert [m["text"] for m in world.messages()] == ["old"]
