"""Refused credentials leave the post waiting in QUEUED, saying what to do, and the
account marked ``needsReconnect``; once reconnected, it publishes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from chat33_core.errors import Conflict
from chat33_core.models import Credentials, PostStatus, utcnow
from chat33_core.serialization import converter

from .conftest import Env, wait_for_refused_credentials


def test_refused_credentials_then_reconnect_publishes(make_env) -> None:  # type: ignore[no-untyped-def]
    env, post = wait_for_refused_credentials(make_env)
    # the message says what to do, with the ids to do it with
    assert f"Reconnect the Echo account 'Echo channel' ({env.account.id}" in \
        post.error_message
    assert f"POST /api/v1/accounts/{env.account.id}/reconnect" in post.error_message
    assert f"chat33 accounts set-token {env.account.id}" in post.error_message
    (listed,) = env.core.list_accounts(env.account.org_id)
    assert converter.unstructure(listed)["needsReconnect"] is True

    with pytest.raises(Conflict):  # it is not failed: nothing to retry
        env.core.retry_post(env.account.org_id, post.id)
    env.core.set_account_credentials(env.account.org_id, env.account.id, Credentials(
        access_token="echo-second", refresh_token="echo-rt-2",
        expires_at=utcnow() + timedelta(days=30)))
    assert env.store.get_account(env.account.id).needs_reconnect is False
    queued = env.get(post.id)
    assert (queued.status, queued.retry_count, queued.error_message) == \
        (PostStatus.QUEUED, 0, None)
    env.run_once()
    done = env.get(post.id)
    assert done.status is PostStatus.PUBLISHED
    assert env.sandbox.counts() == {post.id: 1}
    events = env.events(post.id)
    assert events.index("waiting_reconnect") < events.index("published")
    assert "failed" not in events


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
