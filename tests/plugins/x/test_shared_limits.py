"""X's POST /2/tweets window, shared by all workers: the plugin declares it, and what X
says in its ``x-rate-limit-*`` headers goes into the store's count (SQLite and
PostgreSQL), over real HTTP to the sandbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest

from chat33_core.errors import Throttled
from chat33_core.models import Organization, Post, PostStatus, User, new_id, utcnow
from chat33_core.scheduling import Worker
from chat33_core.scheduling.limits import SharedLimits
from chat33_core.service import Chat33
from chat33_core.store import Store
from chat33_core.store import platform_limits as stored

from .conftest import USER_ID, USERNAME, Sandbox, account, credentials

KEY = "x:tweets-per-user:chan_x"


def test_the_platforms_headers_set_the_shared_window(sandbox: Sandbox, store: Store) -> None:
    sandbox.config(limits={"tweets": 5}, window_s=900)
    limits = SharedLimits(store)
    channel = account()
    assert limits.reserve(sandbox.platform, channel, items=3) is None
    ctx = sandbox.context(["one", "two", "three"],
                          limits=limits.reporter(sandbox.platform, channel))
    sandbox.platform.publish(ctx)
    used, resets_at = stored.windows(store, [KEY])[KEY]
    # X's window (5 for this sandbox user) has 2 left, whatever the declared 100 says;
    # its reset time (epoch seconds) replaced the declared 15 minutes
    assert used == 98
    assert resets_at.microsecond == 0 and resets_at > datetime.now(UTC)
    # two more fit, a third waits for X's reset time, not the declared 15 minutes
    assert limits.reserve(sandbox.platform, channel, items=2) is None
    wait = limits.reserve(sandbox.platform, channel, items=1)
    assert wait is not None and wait.until == resets_at
    assert "X's limit of 100 posts per 15 minutes for this channel" in wait.message


def test_a_429_still_tells_the_core_the_window_is_spent(sandbox: Sandbox, store: Store) -> None:
    sandbox.config(limits={"tweets": 1}, window_s=900)
    sandbox.platform.publish(sandbox.context(["first"]))  # not through chat33's count
    limits = SharedLimits(store)
    ctx = sandbox.context(["second"], limits=limits.reporter(sandbox.platform, account()))
    with pytest.raises(Throttled):
        sandbox.platform.publish(ctx)
    used, _ = stored.windows(store, [KEY])[KEY]
    assert used == 100  # remaining 0: the whole window is spent for every worker


def test_a_429_makes_the_post_wait_for_xs_reset_without_spending_an_attempt(
        sandbox: Sandbox, db_url: str, settings_for: Any) -> None:
    """The worker, the store and the plugin together: X answers 429 with
    ``x-rate-limit-reset``; the post goes back to the queue until then, as for a
    declared limit (``waiting_for_limit``), with no attempt counted and no error."""
    sandbox.config(limits={"tweets": 1}, window_s=900)
    sandbox.platform.publish(sandbox.context(["first"]))  # X's window is spent elsewhere
    core = Chat33(settings_for(db_url, CHAT33_X_API_BASE=sandbox.url,
                               CHAT33_RETRY_BASE_S="0.01", CHAT33_MAX_ATTEMPTS="2"))
    try:
        core.store.migrate()
        org = core.store.add_org(Organization.new("Acme"))
        user = core.store.add_user(User(id=new_id("user"), org_id=org.id,
                                        email="u@example.com", password_hash="-"))
        channel = core.add_account(org.id, "x", "X test", username=USERNAME,
                                   external_id=USER_ID, credentials=attrs.evolve(
                                       credentials(), expires_at=utcnow() + timedelta(days=1)))
        now = utcnow()
        [post] = core.store.add_posts([Post(
            id=new_id("post"), org_id=org.id, account_id=channel.id, platform="x",
            account_name=channel.name, created_by=user.id, status=PostStatus.QUEUED,
            text="second", created_at=now, updated_at=now)])
        for _ in range(3):  # more runs than attempts: none of them is spent
            Worker(core, once=True, concurrency=1, grace_s=5.0).run()
        waited = core.store.get_post(post.id)
        assert waited.status is PostStatus.QUEUED, waited.error_message
        assert waited.retry_count == 0 and waited.error_message is None
        assert waited.next_attempt_at is not None
        assert waited.next_attempt_at > now + timedelta(minutes=10)  # X's 900 s window
        [wait] = [e for e in core.store.list_logs(post.id) if e.event == "waiting_for_limit"]
        assert "waiting for X's rate limit" in wait.message
        assert not [e for e in core.store.list_logs(post.id) if e.event == "retry_scheduled"]
        assert len(sandbox.tweets()) == 1
        # every worker's next post on the account waits for the same reset
        _, resets_at = stored.windows(core.store, [f"x:tweets-per-user:{channel.id}"])[
            f"x:tweets-per-user:{channel.id}"]
        assert resets_at > now + timedelta(minutes=10)
    finally:
        core.store.dispose()
