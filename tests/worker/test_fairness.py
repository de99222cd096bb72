"""Fair claiming (docs/architecture.md, "Fair claiming"), on SQLite and PostgreSQL.

The claims are driven with explicit ``now`` values and their order is asserted: which
posts a claim returns, and at which position, never how long anything took.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import attrs
import pytest
import sqlalchemy as sa

from chat33_core.models import Account, Credentials, Organization, Post, PostStatus, new_id
from chat33_core.scheduling import Queue
from chat33_core.service import Chat33
from chat33_core.store import tables as t

from .conftest import Env

#: the tests' clock: every claim is given its ``now``
START = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def new_org(core: Chat33, name: str, n_accounts: int) -> list[Account]:
    org = core.store.add_org(Organization.new(name))
    return [core.add_account(org.id, "echo", f"{name} {i}",
                             credentials=Credentials(access_token="t"))
            for i in range(n_accounts)]


def due_posts(env: Env, account: Account, times: list[datetime], **fields: object) -> list[Post]:
    made = [Post(id=new_id("post"), org_id=account.org_id, account_id=account.id,
                 platform="echo", account_name=account.name,
                 created_by=env.principal.user_id, text=f"at {at.isoformat()}",
                 created_at=START - timedelta(hours=1), updated_at=START - timedelta(hours=1),
                 **{"scheduled_at": at, "next_attempt_at": at, **fields})  # type: ignore[arg-type]
            for at in times]
    return env.store.add_posts(made)


def finish(queue: Queue, post: Post, now: datetime) -> None:
    """What the worker writes when a post is published."""
    queue.finish(attrs.evolve(post, status=PostStatus.PUBLISHED, published_at=now,
                              lease_owner=None, lease_expires_at=None), now)


@pytest.mark.slow
def test_20000_due_posts_of_one_org_do_not_push_back_another_orgs_post(env: Env) -> None:
    """The big organization's backlog is older than the other's post, so strict
    oldest-first would claim the other post 20,001st; fair claiming takes it in the
    first claim after it falls due, while the backlog lasts."""
    big = new_org(env.core, "Big", 10)
    small = new_org(env.core, "Small", 1)[0]
    # the dump: 20,000 posts due during the minute before START, over 10 channels
    backlog = [START - timedelta(seconds=60) + timedelta(milliseconds=3 * i)
               for i in range(20_000)]
    for i, account in enumerate(big):
        due_posts(env, account, backlog[i::10])
    (single,) = due_posts(env, small, [START + timedelta(seconds=5)])
    queue = Queue(env.store, "w1")
    now = START
    claimed = 0
    # the worker's loop, five seconds of it: claim a batch, publish it, claim again...
    for step in range(60):
        now = START + timedelta(milliseconds=100 * step)
        batch = queue.claim(20, now)
        ids = [c.post.id for c in batch]
        if now < single.scheduled_at:  # type: ignore[operator]
            assert single.id not in ids
        else:
            # the first claim once it is due takes it, in the first round of the batch
            # (one head per organization): the backlog's older posts do not go first
            assert single.id in ids[:2], (step, ids[:3])
            break
        # one post per channel at a time: the big org's ten channels, one each
        assert len(batch) == 10
        assert len({c.post.account_id for c in batch}) == 10
        for cl in batch:
            finish(queue, cl.post, now)
        claimed += len(batch)
    else:
        raise AssertionError("the other organization's post was never claimed")
    assert claimed == 500  # the backlog was still there when it went: 19,500 due
    assert len(batch) == 11  # with the next post of each of the big org's channels
    with env.store.read() as c:
        waiting = c.execute(sa.select(sa.func.count()).select_from(t.posts).where(
            t.posts.c.org_id == big[0].org_id,
            t.posts.c.status == PostStatus.QUEUED.value)).scalar_one()
    assert waiting == 19_490


def test_organizations_take_turns_and_so_do_their_channels(env: Env) -> None:
    a = new_org(env.core, "A", 3)
    b = new_org(env.core, "B", 2)
    # A's first channel has the 300 oldest posts; everyone else has a few newer ones
    due_posts(env, a[0], [START - timedelta(minutes=10, seconds=-i) for i in range(300)])
    due_posts(env, a[1], [START - timedelta(minutes=2, seconds=-i) for i in range(3)])
    due_posts(env, a[2], [START - timedelta(minutes=1, seconds=-i) for i in range(3)])
    due_posts(env, b[0], [START - timedelta(minutes=3, seconds=-i) for i in range(3)])
    due_posts(env, b[1], [START - timedelta(seconds=30 - i) for i in range(3)])
    batch = Queue(env.store, "w1").claim(4, START)
    order = [(c.post.org_id, c.post.account_id) for c in batch]
    # round one: each organization's oldest channel head (A's backlog, then B's), round
    # two: each organization's next channel head
    assert order == [(a[0].org_id, a[0].id), (b[0].org_id, b[0].id),
                     (a[1].org_id, a[1].id), (b[1].org_id, b[1].id)]


def test_one_post_per_channel_at_a_time_in_scheduled_order(env: Env) -> None:
    times = [START - timedelta(minutes=m) for m in (5, 1, 4, 2, 3)]
    posts = due_posts(env, env.account, times)
    expected = [p.id for p in sorted(posts, key=lambda p: p.scheduled_at)]  # type: ignore
    first, second = Queue(env.store, "w1"), Queue(env.store, "w2")
    published = []
    for _ in range(5):
        (claim,) = first.claim(10, START)
        # while it publishes, no worker gets another post of the channel
        assert first.claim(10, START) == []
        assert second.claim(10, START) == []
        finish(first, claim.post, START)
        published.append(claim.post.id)
    assert published == expected
    assert second.claim(10, START) == []


def test_a_post_taken_over_goes_before_its_channels_older_posts(env: Env) -> None:
    dead = Queue(env.store, "dead", lease_s=1)
    (late,) = due_posts(env, env.account, [START - timedelta(minutes=1)])
    (held,) = dead.claim(1, START)
    assert held.post.id == late.id
    (older,) = due_posts(env, env.account, [START - timedelta(minutes=5)])
    alive = Queue(env.store, "alive")
    assert alive.claim(5, START) == []  # the lease is live: the channel is busy
    (taken,) = alive.claim(5, START + timedelta(seconds=2))  # the lease expired
    assert taken.post.id == late.id and taken.taken_over_from == "dead"
    finish(alive, taken.post, START + timedelta(seconds=2))
    (nxt,) = alive.claim(5, START + timedelta(seconds=2))
    assert nxt.post.id == older.id


def test_a_channels_head_is_its_first_due_post_past_retries_and_later_posts(
        env: Env) -> None:
    """The head is found by walking the channel's line in order: posts waiting for a
    retry are passed over, a post scheduled later is not taken early, and a post with no
    scheduled time takes its place by creation time."""
    (retrying,) = due_posts(env, env.account, [START - timedelta(minutes=9)],
                            retry_count=1, next_attempt_at=START + timedelta(minutes=5))
    (later,) = due_posts(env, env.account, [START + timedelta(minutes=1)])
    (due,) = due_posts(env, env.account, [START - timedelta(minutes=2)])
    (unscheduled,) = due_posts(env, env.account, [START - timedelta(minutes=1)],
                               scheduled_at=None, next_attempt_at=None)
    queue = Queue(env.store, "w")
    claimed = []
    for now in (START, START, START + timedelta(minutes=2), START + timedelta(minutes=6)):
        (claim,) = queue.claim(10, now)
        claimed.append(claim.post.id)
        finish(queue, claim.post, now)
    # the unscheduled post's place is its creation time (an hour before START)
    assert claimed == [unscheduled.id, due.id, later.id, retrying.id]
    assert queue.claim(10, START + timedelta(minutes=6)) == []


def test_thread_parts_published_one_by_one_keep_their_order(env: Env) -> None:
    """Parts of a thread the platform publishes one by one (no native threads): a part
    waits for every earlier part, even one that went back to the queue for a retry."""
    head_id = new_id("post")
    at = START - timedelta(minutes=1)
    parts = [Post(id=head_id if i == 0 else new_id("post"), org_id=env.account.org_id,
                  account_id=env.account.id, platform="echo", account_name="Echo",
                  created_by=env.principal.user_id, text=f"part {i}", thread_id=head_id,
                  thread_position=i, scheduled_at=at, next_attempt_at=at,
                  created_at=at, updated_at=at) for i in range(3)]
    env.store.add_posts(list(reversed(parts)))
    queue = Queue(env.store, "w1")
    (claim,) = queue.claim(10, START)
    assert claim.post.id == head_id
    # the head fails for now and is retried in an hour: the later parts wait for it
    queue.finish(attrs.evolve(claim.post, status=PostStatus.QUEUED, lease_owner=None,
                              lease_expires_at=None, retry_count=1,
                              next_attempt_at=START + timedelta(hours=1)), START)
    assert queue.claim(10, START) == []
    later = START + timedelta(hours=1)
    order = []
    for _ in range(3):
        (cl,) = queue.claim(10, later)
        order.append(cl.post.thread_position)
        finish(queue, cl.post, later)
    assert order == [0, 1, 2]


def test_concurrent_claims_never_start_two_posts_of_one_channel(env: Env) -> None:
    """Eight workers claim at once (threads on their own connections): however the
    claims interleave, no channel ever has two posts being published."""
    accounts = new_org(env.core, "Many", 12)
    rng = random.Random(22)
    for account in accounts:
        due_posts(env, account, [START - timedelta(seconds=rng.uniform(0, 60))
                                 for _ in range(6)])
    queues = [Queue(env.store, f"w{i}") for i in range(8)]
    barrier = threading.Barrier(len(queues))
    errors: list[BaseException] = []

    def claim_all(queue: Queue) -> None:
        try:
            for _ in range(4):
                barrier.wait(timeout=30)
                queue.claim(3, START)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=claim_all, args=(q,)) for q in queues]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not errors, errors
    with env.store.read() as c:
        busy = Counter(c.execute(sa.select(t.posts.c.account_id).where(
            t.posts.c.status == PostStatus.PUBLISHING.value)).scalars())
    assert busy and max(busy.values()) == 1, busy
    assert set(busy) == {a.id for a in accounts}  # and every channel got its turn
