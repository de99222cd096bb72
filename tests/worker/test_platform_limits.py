"""Platform limits shared by every worker (``PlatformBase.rate_limits``), on SQLite and
PostgreSQL: the store's windows, the publisher's wait, and real worker processes
publishing to the echo sandbox together."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from chat33_core.models import PostStatus
from chat33_core.platforms import RateLimit
from chat33_core.scheduling.limits import SharedLimits, window_end
from chat33_core.store import Store
from chat33_core.store import platform_limits as stored
from chat33_core.store import tables as t

from .conftest import Env, spawn_worker, stop_all, wait_until

NOW = datetime(2030, 3, 1, 10, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def ask(key: str = "x:posts:app", units: int = 3, cost: int = 1) -> stored.Ask:
    return stored.Ask(key, units, cost, NOW + HOUR)


def test_a_window_allows_its_units_then_blocks_until_it_closes(store: Store) -> None:
    assert [stored.reserve(store, [ask()], NOW) for _ in range(3)] == [[], [], []]
    (blocked,) = stored.reserve(store, [ask()], NOW + timedelta(minutes=59))
    assert (blocked.used, blocked.units, blocked.resets_at) == (3, 3, NOW + HOUR)
    # the window opens again when it closes: a new one, counted from the first use
    later = NOW + HOUR
    assert stored.reserve(store, [stored.Ask("x:posts:app", 3, 1, later + HOUR)], later) == []
    assert stored.windows(store, ["x:posts:app"]) == {"x:posts:app": (1, later + HOUR)}


def test_a_reservation_takes_all_its_limits_or_none(store: Store) -> None:
    app, user = ask("x:app:app", units=10), ask("x:user:acc1", units=2)
    assert stored.reserve(store, [app, user], NOW) == []
    assert stored.reserve(store, [app, user], NOW) == []
    (blocked,) = stored.reserve(store, [app, user], NOW)
    assert blocked.key == "x:user:acc1"
    # the app's window did not pay for the refused publish
    assert stored.windows(store, ["x:app:app"])["x:app:app"][0] == 2
    # a cost bigger than the window is capped at the window: it waits, never for ever
    assert stored.reserve(store, [ask("y:units:app", units=5, cost=50)], NOW) == []
    assert stored.reserve(store, [ask("y:units:app", units=5, cost=1)], NOW)


def test_the_platforms_numbers_win(store: Store) -> None:
    key = "x:posts:acc1"
    assert stored.reserve(store, [ask(key, units=100)], NOW) == []
    reset = NOW + timedelta(minutes=7)
    # X says only 1 request is left, until its own reset time
    stored.report(store, key, 100, NOW, opens_until=NOW + HOUR, remaining=1, resets_at=reset)
    assert stored.windows(store, [key]) == {key: (99, reset)}
    assert stored.reserve(store, [ask(key, units=100)], NOW) == []
    (blocked,) = stored.reserve(store, [ask(key, units=100)], NOW)
    assert blocked.resets_at == reset
    # a report never forgets reservations the platform has not seen yet
    stored.report(store, key, 100, NOW, opens_until=NOW + HOUR, remaining=50, resets_at=None)
    assert stored.windows(store, [key]) == {key: (100, reset)}


def test_workers_racing_for_a_window_never_overspend_it(store: Store) -> None:
    granted: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def spend() -> None:
        try:
            barrier.wait(timeout=30)
            granted.extend(1 for _ in range(15)
                           if not stored.reserve(store, [ask(units=40)], NOW))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=spend) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not errors, errors
    assert len(granted) == 40  # 120 asked, exactly the window's 40 given
    assert stored.windows(store, ["x:posts:app"])["x:posts:app"][0] == 40


def test_a_daily_quota_closes_at_midnight_in_its_zone() -> None:
    youtube = RateLimit("units", per="app", units=10_000, window=timedelta(days=1),
                        resets_in="America/Los_Angeles")
    # 10:00 UTC on 1 March is 02:00 in Los Angeles: the window closes at 08:00 UTC on 2 March
    assert window_end(youtube, NOW) == datetime(2030, 3, 2, 8, 0, tzinfo=UTC)
    fixed = RateLimit("posts", per="account", units=100, window=timedelta(minutes=15))
    assert window_end(fixed, NOW) == NOW + timedelta(minutes=15)


@pytest.mark.parametrize("bad", [{"per": "org"}, {"units": 0}, {"cost": -1}])
def test_a_bad_declaration_is_refused_when_the_plugin_is_imported(bad: dict) -> None:
    fields = {"name": "posts", "per": "app", "units": 5, "window": HOUR, **bad}
    with pytest.raises(ValueError, match="RateLimit 'posts'"):
        RateLimit(**fields)


def test_a_post_over_the_limit_waits_for_the_window_without_failing(make_env) -> None:  # type: ignore[no-untyped-def]
    env: Env = make_env(CHAT33_ECHO_APP_LIMIT="3/3600")
    posts = env.spread(5)
    env.run_once()
    states = Counter(env.get(p.id).status for p in posts)
    assert states == {PostStatus.PUBLISHED: 3, PostStatus.QUEUED: 2}
    assert len(env.sandbox.counts()) == 3
    (used, opens) = stored.windows(env.store, ["echo:posts-per-app:app"])[
        "echo:posts-per-app:app"]
    assert used == 3
    for p in posts:
        post = env.get(p.id)
        if post.status is PostStatus.QUEUED:
            # not an attempt, not an error: it waits exactly until the window opens
            assert post.retry_count == 0 and post.error_message is None
            assert post.next_attempt_at == opens
            (wait,) = [e for e in env.store.list_logs(p.id) if e.event == "waiting_for_limit"]
            assert "Echo's limit of 3 posts for the app is used up" in wait.message
            assert wait.data["nextAttemptAt"] == opens.isoformat()
    # once the window has opened, the next reservation fits
    platform = env.core.host.platform("echo")
    assert SharedLimits(env.store).reserve(platform, env.account, now=opens) is None


def test_a_thread_spends_one_unit_per_item_where_the_limit_says_so(make_env) -> None:  # type: ignore[no-untyped-def]
    env: Env = make_env()
    platform = env.core.host.platform("echo")
    platform.rate_limits = (RateLimit("tweets", per="account", units=5, window=HOUR,  # type: ignore[misc]
                                      per_item=True),)
    limits = SharedLimits(env.store)
    assert limits.reserve(platform, env.account, items=3, now=NOW) is None
    wait = limits.reserve(platform, env.account, items=3, now=NOW)
    assert wait is not None and wait.until == NOW + HOUR and wait.limits == ("tweets",)
    assert limits.reserve(platform, env.account, items=2, now=NOW) is None


@pytest.mark.slow
def test_worker_processes_together_stay_within_the_limits(make_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Three worker processes, 4 channels with 5 posts each, a limit of 7 posts for the
    app and 2 per channel: exactly 7 reach the platform, at most 2 per channel, and the
    others wait in the queue, none failed, no retry spent."""
    env: Env = make_env(CHAT33_ECHO_APP_LIMIT="7/3600", CHAT33_ECHO_ACCOUNT_LIMIT="2/3600")
    log = tmp_path / "workers.log"
    procs = [spawn_worker(env.env, "--concurrency", "2", "--log-level", "INFO", log=log)
             for _ in range(3)]
    env.sandbox.delay_s = 0.3  # a publish takes a while: no one worker takes them all
    try:
        # the posts fall due once all three workers are up (a worker still starting when
        # the test stops them would die of the SIGTERM before it handles it)
        wait_until(lambda: log.read_text().count(" started (concurrency") >= 3, 60,
                   "every worker started")
        channels = env.spread(4)
        posts = list(channels)
        for post in channels:
            account = env.core.store.get_account(post.account_id)
            posts += env.posts(4, account=account)

        def settled() -> bool:  # every post published or told to wait
            with env.store.read() as c:
                waiting = set(c.execute(sa.select(t.post_logs.c.post_id).where(
                    t.post_logs.c.event == "waiting_for_limit")).scalars())
            return all(p.id in waiting or p.id in env.sandbox.counts() for p in posts)

        wait_until(settled, 60, "every post published or waiting")
    finally:
        codes = stop_all(procs)
    assert codes == [0, 0, 0], log.read_text()[-3000:]
    sent = env.sandbox.counts()
    assert sum(sent.values()) == 7 and max(sent.values()) == 1
    per_channel = Counter(env.get(pid).account_id for pid in sent)
    assert max(per_channel.values()) <= 2
    rows = [env.get(p.id) for p in posts]
    assert Counter(p.status for p in rows) == {PostStatus.PUBLISHED: 7, PostStatus.QUEUED: 13}
    assert all(p.retry_count == 0 and p.error_message is None for p in rows)
    with env.store.read() as c:
        workers = {row[0].get("worker") for row in c.execute(
            sa.select(t.post_logs.c.data).where(t.post_logs.c.event == "attempt_started"))}
    assert len(workers) > 1  # the limit held across processes, not within one
