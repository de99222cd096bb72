"""Many worker processes, crashes and graceful shutdown, over real HTTP to the echo
sandbox: every post ends PUBLISHED and is on the platform exactly once."""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from chat33_core.models import PostStatus
from chat33_core.store import tables as t

from .conftest import Env, spawn_worker, stop_all, wait_until


def status_counts(env: Env) -> dict[str, int]:
    with env.store.read() as c:
        rows = c.execute(sa.select(t.posts.c.status, sa.func.count())
                         .group_by(t.posts.c.status)).all()
    return {s: n for s, n in rows}


def lease_owners(env: Env) -> set[str]:
    with env.store.read() as c:
        return set(c.execute(sa.select(t.posts.c.lease_owner).where(
            t.posts.c.status == PostStatus.PUBLISHING.value).distinct()).scalars())


def all_published(env: Env, n: int) -> bool:
    return status_counts(env).get(PostStatus.PUBLISHED.value, 0) == n


def assert_exactly_once(env: Env, ids: list[str]) -> None:
    counts = env.sandbox.counts()
    duplicates = {k: v for k, v in counts.items() if v > 1}
    assert not duplicates, f"published more than once: {duplicates}"
    assert set(counts) == set(ids)
    assert status_counts(env) == {PostStatus.PUBLISHED.value: len(ids)}


@pytest.mark.slow
def test_many_workers_publish_2000_posts_each_exactly_once(env: Env, db_url: str,
                                                           tmp_path: Path) -> None:
    n_procs = 8 if db_url.startswith("postgresql") else 4
    ids = [p.id for p in env.spread(2000, channels=50)]
    procs = [spawn_worker(env.env, "--concurrency", "4", log=tmp_path / "workers.log")
             for _ in range(n_procs)]
    try:
        # a bound against hanging, not a speed: 2,000 posts took over 90 s on a loaded machine
        wait_until(lambda: all_published(env, 2000), 300, "2,000 posts published")
    finally:
        codes = stop_all(procs)
    assert codes == [0] * n_procs, (tmp_path / "workers.log").read_text()[-3000:]
    assert_exactly_once(env, ids)
    with env.store.read() as c:
        workers = {row[0].get("worker") for row in c.execute(
            sa.select(t.post_logs.c.data).where(t.post_logs.c.event == "attempt_started"))}
    assert len(workers) > 1  # the work was shared


@pytest.mark.slow
def test_workers_killed_at_random_moments_lose_nothing_and_repeat_nothing(
        make_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env: Env = make_env(CHAT33_WORKER_LEASE_S="1")
    env.sandbox.delay_s = 0.05  # long enough that kills land mid-publish
    ids = [p.id for p in env.spread(300, channels=30)]
    env.thread(["thread head", "reply one", "reply two"])  # threads survive crashes too
    total = 303
    log = tmp_path / "workers.log"
    rng = random.Random(33)
    procs = [spawn_worker(env.env, "--concurrency", "3", log=log) for _ in range(3)]
    kills = 0
    deadline = time.monotonic() + 40
    try:
        while not all_published(env, total) and time.monotonic() < deadline and kills < 8:
            time.sleep(rng.uniform(0.1, 0.5))
            # kill, at a random moment, a worker that holds leases (worker ids hold the pid)
            owners = lease_owners(env)
            ripe = [i for i, p in enumerate(procs) if any(f":{p.pid}:" in o for o in owners)]
            if not ripe:
                continue
            victim = rng.choice(ripe)
            procs[victim].send_signal(signal.SIGKILL)
            procs[victim].wait()
            kills += 1
            procs[victim] = spawn_worker(env.env, "--concurrency", "3", log=log)
        wait_until(lambda: all_published(env, total), 60, "all posts published after kills")
    finally:
        stop_all(procs)
    assert kills >= 3
    counts = env.sandbox.counts()
    assert all(v == 1 for v in counts.values()), {k: v for k, v in counts.items() if v > 1}
    assert set(ids) <= set(counts) and len(counts) == total
    assert status_counts(env) == {PostStatus.PUBLISHED.value: total}
    with env.store.read() as c:
        takeovers = c.execute(sa.select(sa.func.count()).select_from(t.post_logs).where(
            t.post_logs.c.message.like("%taking over from worker%"))).scalar_one()
    assert takeovers >= 1  # some posts really were resumed by another worker


def test_sigterm_finishes_in_flight_posts_and_exits_0(make_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env: Env = make_env(CHAT33_WORKER_GRACE_S="20")
    env.sandbox.delay_s = 0.5
    ids = [p.id for p in env.posts(8)]
    log = tmp_path / "worker.log"
    proc = spawn_worker(env.env, "--concurrency", "2", log=log)

    def sending() -> bool:  # the platform has a request of ours in hand
        return ("POST", "/v1/posts") in list(env.sandbox.requests)
    wait_until(sending, 30, "a post in flight", interval=0.01)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0, log.read_text()[-2000:]
    counts = status_counts(env)
    # nothing is left leased: in-flight posts finished, prefetched ones went back
    assert PostStatus.PUBLISHING.value not in counts
    assert counts.get(PostStatus.PUBLISHED.value, 0) >= 1
    assert counts.get(PostStatus.QUEUED.value, 0) >= 1
    on_platform = set(env.sandbox.counts())
    assert all(env.get(i).status is PostStatus.PUBLISHED for i in on_platform)
    # `worker --once` publishes the rest and exits by itself
    env.sandbox.delay_s = 0.0
    once = spawn_worker(env.env, "--once", log=log)
    assert once.wait(timeout=60) == 0, log.read_text()[-2000:]
    assert_exactly_once(env, ids)


def test_sigterm_after_the_grace_period_releases_the_lease(make_env, tmp_path: Path
                                                          ) -> None:  # type: ignore[no-untyped-def]
    env: Env = make_env(CHAT33_WORKER_GRACE_S="0.2", CHAT33_WORKER_LEASE_S="3")
    env.sandbox.delay_s = 0.5
    (post,) = env.posts(1)
    log = tmp_path / "worker.log"
    proc = spawn_worker(env.env, "--concurrency", "1", log=log)
    wait_until(lambda: status_counts(env).get(PostStatus.PUBLISHING.value, 0) == 1, 30,
               "the post in flight", interval=0.02)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0, log.read_text()[-2000:]
    env.sandbox.delay_s = 0.0
    # the next worker resumes it (checkpoint + lookup) instead of posting it again
    env.run_once(settle_s=5.0)
    assert_exactly_once(env, [post.id])
