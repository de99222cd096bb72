"""A database that fails for a moment is neither the platform's failure nor the post's:
the worker writes again, resumes from the checkpoints, and never makes the post FAILED,
burns an attempt or quotes SQL in ``errorMessage`` or the post's logs."""

from __future__ import annotations

import random
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from datetime import datetime, timedelta
from pathlib import Path

import attrs
import psycopg
import pytest
import sqlalchemy as sa

from chat33_core.models import Credentials, PostStatus, utcnow
from chat33_core.scheduling.batch import Writes, retrying
from chat33_core.store import tables as t

from .conftest import Env, spawn_worker, stop_all, wait_until
from .faults import failing, plain_url, sql_in_messages
from .test_processes import all_published


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


@pytest.mark.slow  # a 1 s lease: no CPU-heavy test beside it
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


def test_the_heartbeat_keeps_the_lease_of_a_result_waiting_for_the_database(
        env: Env) -> None:
    env.posts(1)
    w = env.worker(lease_s=30.0, concurrency=1)
    (claim,) = w.queue.claim(1)
    done = attrs.evolve(claim.post, status=PostStatus.PUBLISHED, published_at=utcnow(),
                        external_post_id="e-1", lease_owner=None, lease_expires_at=None)
    committer = w.publisher.committer
    outcome: list[BaseException | None] = []

    def commit() -> None:
        try:
            committer.commit(Writes(finish=[done]))
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    def lease_of(post_id: str) -> datetime | None:
        # the test's reads share the pool with the faults: a read may meet a connection
        # killed a moment ago, and is tried again as the worker's are
        return retrying(lambda: env.get(post_id).lease_expires_at, 5.0, lambda: "a read")

    with failing(env, final_write, times=1000) as fault:
        thread = threading.Thread(target=commit)
        thread.start()
        wait_until(lambda: fault.fired >= 2, 10, "the write refused twice", interval=0.01)
        # the post is not among the worker's jobs, but its result is pending: the
        # heartbeat extends its lease all the same
        assert committer.unwritten() == [claim.post.id]
        before = lease_of(claim.post.id)
        assert before is not None
        time.sleep(0.01)
        wait_until(lambda: (w.beat(), lease_of(claim.post.id))[1] > before, 5,
                   "the lease extended by a heartbeat", interval=0.05)
    thread.join(timeout=10)
    assert outcome == [None]  # written once the database took it
    assert committer.unwritten() == []
    assert retrying(lambda: env.get(claim.post.id), 5.0, lambda: "a read"
                    ).external_post_id == "e-1"


def test_a_heartbeat_the_database_refuses_is_tried_again_at_once(env: Env) -> None:
    env.posts(1)
    w = env.worker(lease_s=30.0, concurrency=1)
    (claim,) = w.queue.claim(1)
    w._jobs[claim.post.id] = (Future(), claim)  # as if publishing it
    before = env.get(claim.post.id).lease_expires_at
    assert before is not None
    time.sleep(0.01)
    with failing(env, lambda sql: sql.startswith("UPDATE posts SET lease_expires_at")
                 ) as fault:
        w.beat()
    assert fault.fired == 1
    after = env.get(claim.post.id).lease_expires_at
    assert after is not None and after > before


def test_refreshed_tokens_are_stored_even_when_the_first_write_fails(
        make_env: Callable[..., Env]) -> None:
    # the platform rotates the refresh token: were the new tokens lost, the next try
    # would offer the spent one, and the post would fail asking for a reconnect
    env = make_env(credentials=Credentials(
        access_token="echo-initial", refresh_token="echo-rt-0",
        expires_at=utcnow() + timedelta(minutes=2)))
    (post,) = env.posts(1)
    with failing(env, lambda sql: sql.startswith("UPDATE accounts")
                 and "credentials_enc" in sql) as fault:
        env.run_once()
    assert fault.fired == 1
    assert env.sandbox.refreshes == 1
    creds = env.core.account_credentials(env.account.id)
    assert creds.refresh_token == "echo-rt-1"
    assert not env.store.get_account(env.account.id).needs_reconnect
    assert_published_once(env, post.id)


# --- the fault test: backends terminated at random while worker processes publish -------


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_terminating_backends_at_random_loses_nothing_repeats_nothing_fails_nothing(
        make_env: Callable[..., Env], tmp_path: Path) -> None:
    env = make_env(CHAT33_WORKER_LEASE_S="4")
    env.sandbox.delay_s = 0.03  # publishing spans seconds: terminations land mid-way
    total = 300
    # only the workers' connections are terminated (they run under an application name
    # of their own): other tests share this PostgreSQL database
    app = f"chat33-fault-{secrets.token_hex(4)}"
    log = tmp_path / "workers.log"
    procs = [spawn_worker({**env.env, "PGAPPNAME": app}, "--concurrency", "4", log=log)
             for _ in range(2)]
    # the posts come once both workers listen (their start-up checks are not under test:
    # a worker refuses to start on a database it cannot read)
    with psycopg.connect(plain_url(env), autocommit=True) as probe:
        def listening() -> bool:
            row = probe.execute("SELECT count(*) FROM pg_stat_activity WHERE "
                                "application_name = %s AND query LIKE 'LISTEN%%'",
                                (app,)).fetchone()
            return bool(row and row[0] >= 2)
        wait_until(listening, 30, "both workers listening")
    ids = [p.id for p in env.spread(total, channels=30)]
    rng = random.Random(17)
    stop = threading.Event()
    terminated: list[int] = []

    def terminate() -> None:
        with psycopg.connect(plain_url(env), autocommit=True) as killer:
            while not stop.wait(rng.uniform(0.05, 0.4)):
                n = killer.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                    "AND application_name = %s", (app,)).fetchone()
                terminated.append(int(n[0]) if n else 0)

    killer = threading.Thread(target=terminate, daemon=True)
    killer.start()
    try:
        # terminations keep going until every post is PUBLISHED
        wait_until(lambda: all_published(env, total), 60, f"{total} posts published")
    finally:
        stop.set()
        killer.join(timeout=10)
        codes = stop_all(procs)
    text = log.read_text()
    assert codes == [0, 0], text[-3000:]
    assert sum(1 for n in terminated if n) >= 5, terminated  # the faults were real
    counts = env.sandbox.counts()
    assert {k: v for k, v in counts.items() if v > 1} == {}  # 0 duplicates
    assert set(counts) == set(ids)  # 0 lost
    with env.store.read() as c:
        rows = c.execute(sa.select(t.posts.c.status, t.posts.c.external_post_id,
                                   t.posts.c.retry_count, t.posts.c.error_message)).all()
    assert {r.status for r in rows} == {PostStatus.PUBLISHED.value}  # 0 wrongly FAILED
    assert all(r.external_post_id for r in rows)
    assert [r for r in rows if r.retry_count or r.error_message] == []  # no attempt burnt
    assert sql_in_messages(env) == []
    # ...and some landed on writes, which were tried again rather than given up
    assert "the database refused the writes" in text
