"""Per-channel daily caps over a rolling 24 h: deferred, not failed, and logged."""

from __future__ import annotations

from datetime import timedelta

from chat33_core.models import PostStatus, utcnow
from chat33_core.scheduling import check_cap

from .conftest import Env


def test_posts_over_the_daily_cap_are_deferred_not_failed(make_env) -> None:  # type: ignore[no-untyped-def]
    env: Env = make_env(CHAT33_ECHO_DAILY_CAP="3")
    long_ago = utcnow() - timedelta(hours=30)
    # one post published 30 h ago is outside the window; one 20 h ago is inside it
    env.posts(1, status=PostStatus.PUBLISHED, published_at=long_ago)
    (recent,) = env.posts(1, status=PostStatus.PUBLISHED,
                          published_at=utcnow() - timedelta(hours=20))
    posts = env.posts(4)
    env.run_once(concurrency=1)
    rows = [env.get(p.id) for p in posts]
    published = [r for r in rows if r.status is PostStatus.PUBLISHED]
    waiting = [r for r in rows if r.status is PostStatus.QUEUED]
    assert len(published) == 2 and len(waiting) == 2
    for r in waiting:
        assert r.retry_count == 0 and r.error_message is None
        # the slot frees when the oldest post in the window turns 24 h old
        assert r.next_attempt_at == recent.published_at + timedelta(hours=24)
        logs = [e for e in env.store.list_logs(r.id) if e.event == "deferred_daily_cap"]
        assert logs and "daily cap of 3" in logs[-1].message
    assert len(env.sandbox.counts()) == 2


def test_caps_count_per_channel(make_env) -> None:  # type: ignore[no-untyped-def]
    env: Env = make_env(CHAT33_ECHO_DAILY_CAP="1")
    other = env.core.add_account(env.principal.org_id, "echo", "Second channel",
                                 credentials=env.core.account_credentials(env.account.id))
    a = env.posts(2)
    b = env.posts(2, account=other)
    env.run_once(concurrency=1)
    assert sum(env.get(p.id).status is PostStatus.PUBLISHED for p in a) == 1
    assert sum(env.get(p.id).status is PostStatus.PUBLISHED for p in b) == 1


def test_posts_being_published_elsewhere_count_against_the_cap(make_env) -> None:  # type: ignore[no-untyped-def]
    env: Env = make_env(CHAT33_ECHO_DAILY_CAP="2")
    platform = env.core.host.platform("echo")
    env.posts(1, status=PostStatus.PUBLISHED, published_at=utcnow())
    env.posts(1, status=PostStatus.PUBLISHING, lease_owner="other",
              lease_expires_at=utcnow() + timedelta(minutes=1))
    (mine,) = env.posts(1)
    decision = check_cap(env.store, platform, env.account.id, [mine.id], utcnow())
    assert decision is not None
    assert decision.until < utcnow() + timedelta(seconds=10)  # a short wait, not a day
    assert "being published" in decision.message


def test_no_cap_means_no_deferral(env: Env) -> None:
    env.posts(5, status=PostStatus.PUBLISHED, published_at=utcnow())
    assert check_cap(env.store, env.core.host.platform("echo"), env.account.id, [],
                     utcnow()) is None
