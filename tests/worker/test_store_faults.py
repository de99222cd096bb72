"""A database that fails for a moment is neither the platform's failure nor the post's:
the worker writes again, resumes from the checkpoints, and never makes the post FAILED,
burns an attempt or quotes SQL in ``errorMessage`` or the post's logs."""

from __future__ import annotations

import time

from chat33_core.models import PostStatus

from .conftest import Env
from .faults import failing, sql_in_messages


def final_write(sql: str) -> bool:
    """The statement storing a post's final state (a heartbeat sets only the lease)."""
    return sql.startswith("UPDATE posts") and "external_post_id" in sql


def checkpoint_save(sql: str) -> bool:
    return sql.startswith("INSERT INTO checkpoints")


def assert_published_once(env: Env, post_id: str) -> None:
    done = env.get(post_id)
    assert done.status is PostStatus.PUBLISHED
    assert done.external_post_id and done.external_post_id.startswith("e")
    assert done.retry_count == 0  # no attempt burnt
    assert done.error_message is None
    assert env.sandbox.counts() == {post_id: 1}
    events = env.events(post_id)
    assert "unknown_outcome" not in events and "failed" not in events
    assert "retry_scheduled" not in events
    assert sql_in_messages(env) == []


def test_a_final_write_failing_right_after_the_platform_answered_is_written_again(
        env: Env) -> None:
    (post,) = env.posts(1)
    with failing(env, final_write, when=lambda: post.id in env.sandbox.counts()) as fault:
        w = env.run_once()
    assert fault.fired == 1
    assert_published_once(env, post.id)
    assert w.publisher.committer.retried >= 1  # the same transaction, tried again
    assert w.stats["published"] == 1


def test_a_checkpoint_save_failing_before_the_platform_call_burns_no_attempt(
        env: Env) -> None:
    (post,) = env.posts(1)
    with failing(env, checkpoint_save) as fault:
        env.run_once()
    assert fault.fired == 1
    assert_published_once(env, post.id)


def test_a_database_away_longer_than_the_lease_leaves_the_post_leased_for_the_next_owner(
        env: Env) -> None:
    (post,) = env.posts(1)
    # every final write fails until the test says so: the attempt gives up after the
    # lease (1 s), the post stays PUBLISHING, and nothing says it failed
    with failing(env, final_write, times=1000,
                 when=lambda: post.id in env.sandbox.counts()) as fault:
        w = env.worker(lease_s=1.0)
        assert w.run() == 0
    assert fault.fired >= 2
    assert w.stats["stalled"] == 1 and w.stats["failed"] == 0
    stalled = env.get(post.id)
    assert stalled.status is PostStatus.PUBLISHING and stalled.retry_count == 0
    assert stalled.error_message is None
    assert env.sandbox.counts() == {post.id: 1}
    # the database is back: once the lease expires, the next worker takes the post over
    # and finds it on the platform through its checkpoint instead of posting it again
    time.sleep(1.1)
    env.run_once()
    assert_published_once(env, post.id)
    assert any("taking over" in e.message for e in env.store.list_logs(post.id))
