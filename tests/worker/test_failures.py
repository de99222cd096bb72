"""What each platform error class does to a post: retries with backoff, deferrals,
failures with the platform's message, refresh-then-retry, and unknown outcomes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from chat33_core.models import Credentials, PostStatus, utcnow
from chat33_core.scheduling import Publisher, Queue

from .conftest import Env, wait_for_refused_credentials


def publisher(env: Env, **kw: float) -> Publisher:
    return Publisher(env.core, Queue(env.store, "w"), **kw)  # type: ignore[arg-type]


# --- backoff ----------------------------------------------------------------------------


def test_backoff_grows_exponentially_with_jitter_and_a_cap(env: Env) -> None:
    p = publisher(env, retry_base_s=10.0, retry_max_s=100.0)
    for n in range(1, 8):
        expected = min(100.0, 10.0 * 2 ** (n - 1))
        delays = [p.outcomes.backoff(n) for _ in range(50)]
        assert all(expected * 0.5 <= d <= expected for d in delays)
        assert len(set(delays)) > 1  # jittered, so workers do not retry in lockstep
    # the platform's retry-after wins when it is longer
    assert p.outcomes.backoff(1, retry_after=500.0) == 500.0


def test_a_transient_failure_requeues_with_backoff_then_publishes(env: Env) -> None:
    env.fault(method="POST", path="^/v1/posts$", status=429, count=2,
              headers={"Retry-After": "0"}, body={"error": "rate_limited",
                                                 "message": "slow down"})
    (post,) = env.posts(1)
    env.run_once()
    done = env.get(post.id)
    assert done.status is PostStatus.PUBLISHED
    assert done.retry_count == 2
    assert env.sandbox.counts() == {post.id: 1}
    logs = env.store.list_logs(post.id)
    retries = [e for e in logs if e.event == "retry_scheduled"]
    assert [e.data["retryCount"] for e in retries] == [1, 2]
    assert "slow down" in retries[0].message
    assert [e.attempt for e in logs if e.event == "attempt_started"] == [1, 2, 3]


def test_retry_after_is_honoured(env: Env) -> None:
    env.fault(method="POST", path="^/v1/posts$", status=429,
              headers={"Retry-After": "600"}, body={"error": "rate_limited"})
    (post,) = env.posts(1)
    before = utcnow()
    env.run_once()
    waiting = env.get(post.id)
    assert waiting.status is PostStatus.QUEUED and waiting.retry_count == 1
    assert waiting.next_attempt_at >= before + timedelta(seconds=600)
    assert waiting.lease_owner is None


def test_transient_failures_give_up_after_max_attempts(make_env) -> None:  # type: ignore[no-untyped-def]
    env: Env = make_env(CHAT33_MAX_ATTEMPTS="3")
    env.fault(method="POST", path="^/v1/posts$", status=429, count=10,
              headers={"Retry-After": "0"}, body={"error": "rate_limited",
                                                 "message": "busy"})
    (post,) = env.posts(1)
    env.run_once()
    failed = env.get(post.id)
    assert failed.status is PostStatus.FAILED
    assert failed.error_message == "gave up after 3 attempts: busy"
    assert env.sandbox.counts() == {}


def test_a_spent_quota_defers_without_counting_an_attempt(env: Env) -> None:
    retry_at = (utcnow() + timedelta(hours=3)).replace(microsecond=0)
    env.fault(method="POST", path="^/v1/posts$", status=429,
              body={"error": "quota", "message": "daily quota used",
                    "retryAt": retry_at.isoformat()})
    (post,) = env.posts(1)
    env.run_once()
    deferred = env.get(post.id)
    assert deferred.status is PostStatus.QUEUED
    assert deferred.retry_count == 0
    assert deferred.next_attempt_at == retry_at
    assert "deferred_quota" in env.events(post.id)


def test_a_permanent_error_fails_with_the_platform_message(env: Env) -> None:
    (post,) = env.posts(1, text="x" * 600)
    env.run_once()
    failed = env.get(post.id)
    assert failed.status is PostStatus.FAILED
    assert failed.error_message == "The text is too long."
    assert env.events(post.id)[-1] == "failed"


def test_a_permanent_error_mid_thread_keeps_the_posted_receipts(env: Env) -> None:
    head, second, third = env.thread(["one", "two", "x" * 600])
    env.run_once()
    rows = [env.get(p.id) for p in (head, second, third)]
    assert [r.status for r in rows] == [PostStatus.PUBLISHED, PostStatus.PUBLISHED,
                                        PostStatus.FAILED]
    assert rows[0].external_post_id and rows[1].external_post_id
    assert rows[2].error_message == "The text is too long."


# --- unknown outcomes -------------------------------------------------------------------


def test_unknown_outcome_confirmed_on_the_platform_is_published_once(env: Env) -> None:
    # the platform creates the post, then the answer is lost
    env.fault(method="POST", path="^/v1/posts$", status=502, after_body=True)
    (post,) = env.posts(1)
    env.run_once()
    done = env.get(post.id)
    assert done.status is PostStatus.PUBLISHED
    assert env.sandbox.counts() == {post.id: 1}
    assert done.external_post_id == env.sandbox.posts[0]["id"]
    assert "unknown_outcome" in env.events(post.id)


def test_unknown_outcome_not_on_the_platform_is_retried(env: Env) -> None:
    env.fault(method="POST", path="^/v1/posts$", status=502)  # failed before acting
    (post,) = env.posts(1)
    env.run_once()
    done = env.get(post.id)
    assert done.status is PostStatus.PUBLISHED and done.retry_count == 1
    assert env.sandbox.counts() == {post.id: 1}


def test_unknown_outcome_the_platform_cannot_confirm_fails_naming_the_account(env: Env
                                                                               ) -> None:
    env.fault(method="POST", path="^/v1/posts$", status=502)
    env.fault(method="GET", path="^/v1/posts$", status=400,
              body={"error": "unsupported", "message": "search is unavailable"})
    (post,) = env.posts(1)
    env.run_once()
    failed = env.get(post.id)
    assert failed.status is PostStatus.FAILED
    assert "cannot tell whether it was published" in failed.error_message
    assert "search is unavailable" in failed.error_message
    assert "'Echo channel'" in failed.error_message
    assert env.sandbox.counts() == {}


def test_an_unconfirmed_outcome_survives_a_crash_and_is_confirmed_first(env: Env) -> None:
    (post,) = env.posts(1)
    # a previous worker sent the post, got no answer and died before confirming
    env.store.write_results("dead-worker", utcnow(),
                            checkpoints={post.id: {"_chat33_worker": {"unconfirmed": True}}})
    env.sandbox.posts.append({"id": "e77", "url": "https://echo.example/p/e77",
                              "marker": post.id, "text": post.text, "replyTo": None})
    env.run_once()
    done = env.get(post.id)
    assert done.status is PostStatus.PUBLISHED and done.external_post_id == "e77"
    assert env.sandbox.counts() == {post.id: 1}


# --- credentials ------------------------------------------------------------------------


def test_refused_token_is_refreshed_once_and_saved_encrypted(env: Env) -> None:
    env.sandbox.revoked.add("echo-initial")
    (post,) = env.posts(1)
    env.run_once()
    assert env.get(post.id).status is PostStatus.PUBLISHED
    creds = env.core.account_credentials(env.account.id)
    assert creds.access_token == "echo-at-1" and creds.refresh_token == "echo-rt-1"
    raw = env.store.account_credentials_enc(env.account.id)
    assert "echo-at-1" not in raw
    assert "credentials_refreshed" in env.events(post.id)


def test_credentials_near_expiry_are_refreshed_before_publishing(make_env) -> None:  # type: ignore[no-untyped-def]
    env: Env = make_env(credentials=Credentials(
        access_token="echo-initial", refresh_token="echo-rt-0",
        expires_at=utcnow() + timedelta(minutes=2)))
    posts = env.posts(3)
    env.run_once(concurrency=3)
    assert {env.get(p.id).status for p in posts} == {PostStatus.PUBLISHED}
    # three posts at once, one refresh: the rotated refresh token was never lost
    assert env.sandbox.refreshes == 1
    creds = env.core.account_credentials(env.account.id)
    assert creds.refresh_token == "echo-rt-1"
    assert creds.expires_at > utcnow() + timedelta(minutes=30)


def test_a_stale_refresh_uses_the_tokens_another_worker_stored(env: Env) -> None:
    p = publisher(env)
    platform = env.core.host.platform("echo")
    stale = env.core.account_credentials(env.account.id)
    # another worker refreshed meanwhile and stored rotated tokens
    newer = Credentials(access_token="echo-other", refresh_token="echo-rt-other",
                        expires_at=utcnow() + timedelta(hours=1))
    env.core.save_account_credentials(env.account.id, newer)
    got = p.credentials.refresh(platform, env.account, stale, lambda *a, **k: None, force=True)
    assert got.access_token == "echo-other"
    assert env.sandbox.refreshes == 0


def test_a_refused_refresh_keeps_the_posts_waiting_for_a_reconnect(make_env) -> None:  # type: ignore[no-untyped-def]
    env, waiting = wait_for_refused_credentials(make_env)
    assert waiting.error_message.startswith("waiting for the account to be reconnected")
    assert "Reconnect the Echo account 'Echo channel'" in waiting.error_message
    assert waiting.retry_count == 0 and waiting.next_attempt_at > utcnow()
    assert "waiting_reconnect" in env.events(waiting.id)
    assert env.store.get_account(env.account.id).needs_reconnect is True
    # the next post of that account waits too, without calling the platform
    (other,) = env.posts(1)
    env.run_once()
    assert env.get(other.id).status is PostStatus.QUEUED
    assert "waiting_reconnect" in env.events(other.id)
    assert env.sandbox.counts() == {}
    # reconnected: both are due again, and publish
    env.core.set_account_credentials(env.account.org_id, env.account.id, Credentials(
        access_token="echo-second", refresh_token="echo-rt-2",
        expires_at=utcnow() + timedelta(days=30)))
    env.run_once()
    assert {env.get(p).status for p in (waiting.id, other.id)} == {PostStatus.PUBLISHED}


def test_revoked_access_fails_with_reconnect(env: Env) -> None:
    env.fault(method="POST", path="^/v1/posts$", status=403,
              body={"error": "reconnect", "message": "the app was removed"})
    (post,) = env.posts(1)
    env.run_once()
    failed = env.get(post.id)
    assert failed.status is PostStatus.FAILED
    assert "the app was removed" in failed.error_message
    assert "Reconnect" in failed.error_message
    assert env.store.get_account(env.account.id).needs_reconnect is True


@pytest.mark.parametrize("status", [PostStatus.PUBLISHED, PostStatus.FAILED])
def test_final_states_write_no_lease(env: Env, status: PostStatus) -> None:
    (post,) = env.posts(1, text="ok" if status is PostStatus.PUBLISHED else "x" * 600)
    env.run_once()
    row = env.get(post.id)
    assert row.status is status
    assert row.lease_owner is None and row.lease_expires_at is None


def test_a_refused_refresh_sends_the_needs_reconnect_webhook_once(make_env) -> None:  # type: ignore[no-untyped-def]
    import sqlalchemy as sa

    from chat33_core.store import tables as t

    env = make_env(credentials=Credentials(access_token="echo-initial",
                                           refresh_token="revoked-rt"))
    env.sandbox.revoked.add("echo-initial")
    (post,) = env.posts(1, callback_url="http://127.0.0.1:9/hooks")
    env.run_once(settle_s=0)
    (other,) = env.posts(1, callback_url="http://127.0.0.1:9/hooks")
    env.run_once(settle_s=0)  # already marked: it waits without another event
    with env.store.read() as c:
        rows = c.execute(sa.select(t.webhook_deliveries.c.post_id,
                                   t.webhook_deliveries.c.payload)).all()
    assert [(r.post_id, r.payload["type"]) for r in rows] == [
        (post.id, "account.needs_reconnect")]
    payload = rows[0].payload
    assert payload["accountId"] == env.account.id and payload["platform"] == "echo"
    assert "revoked-rt" not in str(payload) and "echo-initial" not in str(payload)
    assert env.get(other.id).status is PostStatus.QUEUED
