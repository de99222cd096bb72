"""A plugin that raises something other than a chat33 error: a bug is a failure naming
the plugin (not an unknown outcome), an HTTP failure it let through follows the transport
rule (a creating request's lost answer is confirmed; anything else is retried)."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from chat33_core.hookspecs import hookimpl
from chat33_core.models import Credentials, PostStatus, utcnow
from chat33_core.platforms import PlatformBase, PublishContext, PublishResult
from chat33_core.testplatform import EchoPlatform

from .conftest import Env


class BuggyEcho(EchoPlatform):
    """Echo with a bug after the platform answered: it reads a key the answer lacks."""

    name = "buggy"
    display_name = "Buggy"
    confirms = 0

    def api_base(self) -> str:
        return self.settings.api_base("echo", self.default_api_base)

    def publish(self, ctx: PublishContext) -> PublishResult:
        answer = ctx.http.post(f"{self.api_base()}/v1/posts",
                               headers={"Authorization": "Bearer t"},
                               json={"marker": ctx.post_id, "text": ctx.first.text})
        _ = answer.json()["permalink"]  # the bug: echo answers {id, url}
        raise AssertionError("unreachable")

    def confirm(self, ctx: PublishContext) -> PublishResult | None:
        BuggyEcho.confirms += 1
        return super().confirm(ctx)


class LeakyEcho(EchoPlatform):
    """Echo that lets httpx errors through untranslated; ``TIMEOUT_S`` cuts its create."""

    name = "leaky"
    display_name = "Leaky"
    method = "POST"
    base = ""

    def api_base(self) -> str:
        return LeakyEcho.base or self.settings.api_base("echo", self.default_api_base)

    def publish(self, ctx: PublishContext) -> PublishResult:
        ctx.http.request(LeakyEcho.method, f"{self.api_base()}/v1/posts", timeout=0.2,
                         headers={"Authorization": "Bearer t"},
                         json={"marker": ctx.post_id, "text": ctx.first.text})
        return super().publish(ctx)


def register(env: Env, cls: type[PlatformBase]) -> Any:
    class Plugin:
        @hookimpl
        def chat33_register_platforms(self, register: Callable[[type[PlatformBase]], None]
                                      ) -> None:
            register(cls)

    env.core.host.register(Plugin(), name=cls.name)
    account = env.core.add_account(env.account.org_id, cls.name, f"{cls.name} channel",
                                   credentials=Credentials(access_token="t"))
    (post,) = env.posts(1, account=account)
    return post


def test_a_plugin_bug_fails_the_post_naming_the_plugin_and_the_error(
        env: Env, caplog: pytest.LogCaptureFixture) -> None:
    post = register(env, BuggyEcho)
    BuggyEcho.confirms = 0
    with caplog.at_level(logging.ERROR, "chat33_core.scheduling.publisher"):
        env.run_once()
    failed = env.get(post.id)
    assert failed.status is PostStatus.FAILED
    assert failed.error_message.startswith(
        "the Buggy plugin (tests) failed: KeyError: 'permalink'. This is a bug in the plugin")
    assert "cannot tell" not in failed.error_message
    # not an unknown outcome: the platform was not asked whether the post exists
    assert BuggyEcho.confirms == 0 and "unknown_outcome" not in env.events(post.id)
    assert failed.retry_count == 0
    # the traceback is in the worker's log
    [record] = [r for r in caplog.records if "raised while publishing" in r.getMessage()]
    assert record.exc_info is not None and record.exc_info[0] is KeyError


def test_a_creating_request_whose_answer_never_came_is_confirmed(env: Env) -> None:
    LeakyEcho.method, LeakyEcho.base = "POST", ""
    post = register(env, LeakyEcho)
    env.sandbox.delay_s = 0.5  # the answer comes after the plugin's 0.2 s timeout
    env.run_once()
    done = env.get(post.id)
    # the lost POST did create the post: confirm found it, nothing was posted twice
    assert done.status is PostStatus.PUBLISHED
    assert env.sandbox.counts() == {post.id: 1}
    assert "unknown_outcome" in env.events(post.id)


def test_a_request_that_creates_nothing_is_retried(env: Env) -> None:
    LeakyEcho.method, LeakyEcho.base = "GET", ""
    post = register(env, LeakyEcho)
    env.sandbox.delay_s = 0.5
    worker = env.worker(once=True)
    worker.publisher.outcomes.max_attempts = 1
    assert worker.run() == 0
    failed = env.get(post.id)
    assert failed.status is PostStatus.FAILED
    assert failed.error_message.startswith("gave up after 1 attempts: GET /v1/posts: Leaky "
                                           "did not answer (ReadTimeout")
    assert "unknown_outcome" not in env.events(post.id)


def test_a_connection_never_made_is_retried(env: Env) -> None:
    sock = socket.socket()  # a port nobody listens on
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    LeakyEcho.method, LeakyEcho.base = "POST", f"http://127.0.0.1:{port}"
    try:
        post = register(env, LeakyEcho)
        worker = env.worker(once=True)
        worker.publisher.outcomes.max_attempts = 1
        assert worker.run() == 0
    finally:
        LeakyEcho.base = ""
    failed = env.get(post.id)
    assert failed.status is PostStatus.FAILED
    assert failed.error_message.startswith("gave up after 1 attempts: POST /v1/posts: could "
                                           "not reach Leaky (ConnectError")
    assert "unknown_outcome" not in env.events(post.id)


class BrokenRefresh(EchoPlatform):
    """Echo whose token refresh has a bug."""

    name = "brokenrefresh"
    display_name = "Broken refresh"

    def api_base(self) -> str:
        return self.settings.api_base("echo", self.default_api_base)

    def refresh_credentials(self, credentials: Credentials, ctx: Any) -> Credentials:
        return Credentials(access_token={"token": "x"}["access_token"])


def test_a_bug_in_the_token_refresh_fails_the_post_instead_of_crashing(
        env: Env, caplog: pytest.LogCaptureFixture) -> None:
    class Plugin:
        @hookimpl
        def chat33_register_platforms(self, register: Callable[[type[PlatformBase]], None]
                                      ) -> None:
            register(BrokenRefresh)

    env.core.host.register(Plugin(), name="brokenrefresh")
    account = env.core.add_account(
        env.account.org_id, "brokenrefresh", "expiring", credentials=Credentials(
            access_token="t", refresh_token="r", expires_at=utcnow() + timedelta(minutes=1)))
    (post,) = env.posts(1, account=account)
    with caplog.at_level(logging.ERROR, "chat33_core.scheduling.credentials"):
        worker = env.run_once()
    assert worker.stats.get("crashed", 0) == 0
    failed = env.get(post.id)
    assert failed.status is PostStatus.FAILED
    assert failed.error_message.startswith("the Broken refresh plugin (tests) failed: "
                                           "KeyError: 'access_token'")
    assert any("refreshing a token" in r.getMessage() and r.exc_info for r in caplog.records)
    assert env.sandbox.counts() == {}
