"""Refused credentials end in a FAILED post that says what to do, an account marked
``needsReconnect``; once reconnected, a retry publishes it with its attempts reset."""

from __future__ import annotations

from datetime import timedelta

import pytest

from chat33_core.errors import Conflict
from chat33_core.models import Credentials, PostStatus, utcnow
from chat33_core.serialization import converter

from .conftest import Env, fail_for_refused_credentials


def test_refused_credentials_then_reconnect_then_retry_publishes(make_env) -> None:  # type: ignore[no-untyped-def]
    env, post = fail_for_refused_credentials(make_env)
    failed = post
    # the message says what to do, with the ids to do it with
    assert f"Reconnect the Echo account 'Echo channel' ({env.account.id}" in \
        failed.error_message
    assert f"POST /api/v1/posts/{post.id}/retry" in failed.error_message
    assert f"chat33 posts retry {post.id}" in failed.error_message
    assert f"chat33 accounts set-token {env.account.id}" in failed.error_message
    (listed,) = env.core.list_accounts(env.account.org_id)
    assert converter.unstructure(listed)["needsReconnect"] is True

    with pytest.raises(Conflict, match="must be reconnected"):
        env.core.retry_post(env.account.org_id, post.id)
    env.core.set_account_credentials(env.account.org_id, env.account.id, Credentials(
        access_token="echo-second", refresh_token="echo-rt-2",
        expires_at=utcnow() + timedelta(days=30)))
    assert env.store.get_account(env.account.id).needs_reconnect is False

    queued = env.core.retry_post(env.account.org_id, post.id)
    assert (queued.status, queued.retry_count, queued.error_message) == \
        (PostStatus.QUEUED, 0, None)
    env.run_once()
    done = env.get(post.id)
    assert done.status is PostStatus.PUBLISHED
    assert env.sandbox.counts() == {post.id: 1}
    events = env.events(post.id)
    assert events.index("failed") < events.index("retried") < events.index("published")
    # the attempts were counted from zero again
    started = [e.attempt for e in env.store.list_logs(post.id) if e.event == "attempt_started"]
    assert started == [1, 1]


def test_a_retried_post_whose_outcome_was_unknown_is_looked_for_first(env: Env) -> None:
    """The worker gave up not knowing whether the post went out: the retry asks the
    platform before sending it again, finds it, and never publishes it twice."""
    # the platform takes the post but its answer is lost, and it cannot be asked then
    env.fault(method="POST", path="^/v1/posts$", status=502, after_body=True)
    env.fault(method="GET", path="^/v1/posts$", status=400,
              body={"error": "unsupported", "message": "search is unavailable"})
    (post,) = env.posts(1)
    env.run_once()
    failed = env.get(post.id)
    assert failed.status is PostStatus.FAILED
    assert "cannot tell whether it was published" in failed.error_message
    assert env.sandbox.counts() == {post.id: 1}

    env.core.retry_post(env.account.org_id, post.id)
    env.run_once()
    done = env.get(post.id)
    assert done.status is PostStatus.PUBLISHED
    assert done.external_post_id == env.sandbox.posts[0]["id"]
    assert env.sandbox.counts() == {post.id: 1}  # found, not sent again
