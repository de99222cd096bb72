"""Store methods that do several writes in one transaction, all of them or none
(on SQLite and PostgreSQL, fixture ``store``)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from chat33_core.errors import Conflict, RateLimited
from chat33_core.models import (
    Account,
    LogEvent,
    Organization,
    Post,
    PostStatus,
    User,
    new_id,
    utcnow,
)
from chat33_core.store import Store
from chat33_core.store.limits import LimitReached

HOUR = timedelta(hours=1)


def test_several_rate_limits_are_counted_together(store: Store) -> None:
    counts = store.hit_rate_limits([("a", 3, HOUR), ("b", 5, HOUR)])
    assert [remaining for remaining, _ in counts] == [2, 4]
    assert store.hit_rate_limit("a", 3, HOUR)[0] == 1
    assert store.hit_rate_limit("b", 5, HOUR)[0] == 3


def test_a_limit_reached_counts_none_of_them_and_says_which(store: Store) -> None:
    store.hit_rate_limit("full", 1, HOUR)
    with pytest.raises(LimitReached) as refused:
        store.hit_rate_limits([("fresh", 3, HOUR), ("full", 1, HOUR)])
    assert refused.value.index == 1
    assert isinstance(refused.value, RateLimited) and refused.value.limit == 1
    assert refused.value.retry_after > 0
    # the first one was not counted: the transaction rolled back
    assert store.hit_rate_limit("fresh", 3, HOUR)[0] == 2


def test_no_rate_limits_count_nothing(store: Store) -> None:
    assert store.hit_rate_limits([]) == []


def _failed_posts(store: Store, n: int) -> list[Post]:
    org = store.add_org(Organization.new("Acme"))
    user = store.add_user(User(id=new_id("user"), org_id=org.id, email="a@ex.com",
                               password_hash="argon2-hash"))
    account = store.add_account(Account(id=new_id("chan"), org_id=org.id, platform="x",
                                        name="X main"), credentials_enc=None)
    posts = [Post(id=new_id("post"), org_id=org.id, account_id=account.id, platform="x",
                  account_name=account.name, created_by=user.id, status=PostStatus.FAILED,
                  error_message="boom", retry_count=3, lease_owner="w1",
                  next_attempt_at=utcnow(), lease_expires_at=utcnow())
             for _ in range(n)]
    return store.add_posts(posts)


def _log(post: Post) -> LogEvent:
    return LogEvent(id=None, post_id=post.id, event="retried", message="again")


def test_requeued_posts_are_due_with_no_error_lease_or_attempts(store: Store) -> None:
    posts = _failed_posts(store, 2)
    now = utcnow()
    store.requeue_posts([p.id for p in posts], [_log(p) for p in posts],
                        expect_status=PostStatus.FAILED, status=PostStatus.QUEUED, now=now)
    for post in posts:
        back = store.get_post(post.id)
        assert (back.status, back.retry_count, back.error_message, back.next_attempt_at,
                back.lease_owner, back.lease_expires_at) == (
                    PostStatus.QUEUED, 0, None, None, None, None)
        assert back.updated_at == now and back.text == post.text
        assert [e.event for e in store.list_logs(post.id)] == ["retried"]


def test_requeueing_a_post_that_changed_requeues_none(store: Store) -> None:
    first, second = _failed_posts(store, 2)
    store.requeue_posts([second.id], [], expect_status=PostStatus.FAILED,
                        status=PostStatus.QUEUED, now=utcnow())
    with pytest.raises(Conflict, match=second.id):
        store.requeue_posts([first.id, second.id], [_log(first), _log(second)],
                            expect_status=PostStatus.FAILED, status=PostStatus.QUEUED,
                            now=utcnow())
    assert store.get_post(first.id).status is PostStatus.FAILED
    assert store.list_logs(first.id) == [] and store.list_logs(second.id) == []
