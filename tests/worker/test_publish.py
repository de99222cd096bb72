"""Publishing through the plugin: the happy path, threads, schedules, logs, checkpoints."""

from __future__ import annotations

from datetime import timedelta

import attrs
import httpx
import pytest

from chat33_core.errors import InvalidTransition
from chat33_core.models import Credentials, PostStatus, utcnow
from chat33_core.platforms import PublishContext, PublishItem
from chat33_core.scheduling import Publisher, Queue
from chat33_core.scheduling.queue import Claim

from .conftest import Env


def test_a_due_post_is_published_once_with_its_receipt_and_logs(env: Env) -> None:
    (post,) = env.posts(1, text="hello echo")
    worker = env.run_once()
    done = env.get(post.id)
    assert done.status is PostStatus.PUBLISHED
    assert done.external_post_id and done.external_post_url
    assert done.published_at is not None and done.lease_owner is None
    assert env.sandbox.counts() == {post.id: 1}
    assert env.sandbox.posts[0]["text"] == "hello echo"
    events = env.events(post.id)
    assert events[0] == "attempt_started"
    assert "step" in events and events[-1] == "published"
    assert worker.stats["published"] == 1
    # the checkpoint of a published post is not kept
    assert env.store.load_checkpoint(post.id) == {}


def test_a_future_post_waits_for_its_time(env: Env) -> None:
    (later,) = env.posts(1, scheduled_at=utcnow() + timedelta(hours=1))
    (now,) = env.posts(1)
    env.run_once()
    assert env.get(now.id).status is PostStatus.PUBLISHED
    assert env.get(later.id).status is PostStatus.QUEUED
    assert later.id not in env.sandbox.counts()
    queue = Queue(env.store, "probe")
    assert queue.next_due() == later.scheduled_at


def test_drafts_and_cancelled_posts_are_never_claimed(env: Env) -> None:
    env.posts(1, status=PostStatus.DRAFT)
    env.posts(1, status=PostStatus.CANCELLED)
    env.run_once()
    assert env.sandbox.counts() == {}


@pytest.mark.parametrize("status", [PostStatus.QUEUED, PostStatus.CANCELLED,
                                    PostStatus.FAILED])
@pytest.mark.parametrize("platform", ["instant", "not-installed"])
def test_the_worker_may_not_finish_a_post_it_does_not_hold_in_publishing(
        env: Env, status: PostStatus, platform: str) -> None:
    """Every status change of the worker goes through ``states.transition``: a claim of a
    post that is not PUBLISHING (made by hand here; the queue never makes one) can
    neither publish it (the in-process ``instant`` platform saves no checkpoint, so no
    lease check stops it first) nor fail it (no plugin), and nothing is written."""
    account = env.account
    if platform == "instant":
        account = env.core.add_account(env.account.org_id, "instant", "Instant channel",
                                       credentials=Credentials(access_token="unused"))
    (post,) = env.posts(1, account=account, status=status, platform=platform)
    with pytest.raises(InvalidTransition, match=f"the post is {status.value}"):
        Publisher(env.core, Queue(env.store, "w")).run(Claim(post=post))
    after = env.get(post.id)
    assert after.status is status and after.published_at is None
    assert after.error_message is None
    assert env.events(post.id) == []


def test_a_thread_is_claimed_by_its_head_and_each_row_gets_its_receipt(env: Env) -> None:
    head, second, third = env.thread(["one", "two", "three"])
    queue = Queue(env.store, "w1")
    claims = queue.claim(10)
    assert [c.post.id for c in claims] == [head.id]
    assert [f.id for f in claims[0].followers] == [second.id, third.id]
    assert {env.get(p.id).status for p in (head, second, third)} == {PostStatus.PUBLISHING}
    Publisher(env.core, queue).run(claims[0])
    rows = [env.get(p.id) for p in (head, second, third)]
    assert [r.status for r in rows] == [PostStatus.PUBLISHED] * 3
    by_id = {p["id"]: p for p in env.sandbox.posts}
    assert [by_id[r.external_post_id]["marker"] for r in rows] == [head.id, second.id, third.id]
    # each reply answers the previous item
    assert by_id[rows[1].external_post_id]["replyTo"] == rows[0].external_post_id
    assert by_id[rows[2].external_post_id]["replyTo"] == rows[1].external_post_id


def test_a_cancelled_follower_is_left_out_of_its_thread(env: Env) -> None:
    head, second, third = env.thread(["one", "two", "three"])
    env.store.save_post(attrs.evolve(env.get(second.id), status=PostStatus.CANCELLED))
    env.run_once()
    assert env.get(head.id).status is PostStatus.PUBLISHED
    assert env.get(third.id).status is PostStatus.PUBLISHED
    assert env.get(second.id).status is PostStatus.CANCELLED
    assert second.id not in env.sandbox.counts()


def test_an_expired_lease_is_taken_over_and_resumed_from_checkpoints(env: Env) -> None:
    (post,) = env.posts(1)
    dead = Queue(env.store, "dead-worker", lease_s=0.0)
    (claim,) = dead.claim(1)
    # the dead worker had sent the post before dying (its checkpoint says so)
    env.store.write_results("dead-worker", utcnow(),
                            checkpoints={post.id: {"posted": [], "sending": 0}})
    env.sandbox.posts.append({"id": "e999", "url": "https://echo.example/p/e999",
                              "marker": post.id, "text": post.text, "replyTo": None})
    heir = Queue(env.store, "heir", lease_s=30)
    (taken,) = heir.claim(1)
    assert taken.taken_over_from == "dead-worker"
    Publisher(env.core, heir).run(taken)
    done = env.get(post.id)
    assert done.status is PostStatus.PUBLISHED and done.external_post_id == "e999"
    assert env.sandbox.counts()[post.id] == 1
    started = [e for e in env.store.list_logs(post.id) if e.event == "attempt_started"]
    assert "taking over from worker dead-worker" in started[-1].message
    # the dead worker can no longer write its result
    assert claim.post.id == post.id
    assert Queue(env.store, "dead-worker").heartbeat([post.id]) == 0


def test_a_live_lease_is_not_taken(env: Env) -> None:
    env.posts(1)
    assert len(Queue(env.store, "a", lease_s=60).claim(5)) == 1
    assert Queue(env.store, "b", lease_s=60).claim(5) == []


def test_heartbeat_extends_the_lease(env: Env) -> None:
    (post,) = env.posts(1)
    queue = Queue(env.store, "w", lease_s=30)
    queue.claim(1)
    before = env.get(post.id).lease_expires_at
    queue.lease = timedelta(seconds=120)
    assert queue.heartbeat([post.id]) == 1
    assert env.get(post.id).lease_expires_at > before


def test_posts_created_through_the_service_are_published(env: Env) -> None:
    from chat33_core.models import PostRequest, ThreadItem

    request = PostRequest(account_ids=[env.account.id], text="through the service",
                          thread=[ThreadItem(text="and a reply")])
    created = env.core.create_posts(env.principal, request)
    posts, _group = created.posts, created.group_id
    head, reply = posts
    assert reply.publish_with_head and reply.thread_id == head.id
    env.run_once()
    rows = [env.get(p.id) for p in posts]
    assert [r.status for r in rows] == [PostStatus.PUBLISHED, PostStatus.PUBLISHED]
    by_id = {p["id"]: p for p in env.sandbox.posts}
    assert by_id[rows[1].external_post_id]["replyTo"] == rows[0].external_post_id
    assert env.events(head.id)[0] == "created"
    logs = env.core.post_logs(env.principal.org_id, head.id)
    assert [e.event for e in logs][-1] == "published"


def test_a_worker_whose_lease_was_taken_over_stops_at_its_first_checkpoint(env: Env) -> None:
    (post,) = env.posts(1)
    stale = Queue(env.store, "stale-worker", lease_s=0.0)
    (old_claim,) = stale.claim(1)  # claimed (prefetched) and not started before it expired
    heir = Queue(env.store, "heir", lease_s=30)
    (taken,) = heir.claim(1)
    assert taken.taken_over_from == "stale-worker"
    outcome = Publisher(env.core, stale).run(old_claim)
    # its "sending" checkpoint is refused before the platform call: nothing was posted,
    # nothing of the heir's was overwritten
    assert outcome.kind == "lost"
    assert post.id not in env.sandbox.counts()
    assert env.store.load_checkpoint(post.id) == {}
    assert env.get(post.id).lease_owner == "heir"
    Publisher(env.core, heir).run(taken)
    assert env.get(post.id).status is PostStatus.PUBLISHED
    assert env.sandbox.counts() == {post.id: 1}


def test_a_released_lease_is_taken_over_only_after_its_settle_time(env: Env) -> None:
    env.spread(2)
    first = Queue(env.store, "w1")
    held = [c.post.id for c in first.claim(2)]
    assert first.release(held[:1], settle_s=30.0) == 1  # requests may still be landing
    assert first.release(held[1:]) == 1  # nothing in flight: at once
    assert first.release(["post_unknown"]) == 0
    taken = Queue(env.store, "w2").claim(5)
    assert [c.post.id for c in taken] == held[1:]
    assert taken[0].taken_over_from == "w1"
    assert env.get(held[0]).lease_owner == "w1"


def test_the_instant_platform_publishes_in_process_and_confirms_what_it_published(
        env: Env) -> None:
    account = env.core.add_account(env.account.org_id, "instant", "Instant channel",
                                   credentials=Credentials(access_token="unused"))
    posts = env.posts(3, account=account)
    worker = env.run_once(concurrency=3)
    assert worker.stats["published"] == 3
    for p in posts:
        done = env.get(p.id)
        assert done.status is PostStatus.PUBLISHED
        assert done.external_post_id == "instant-" + p.id
        assert env.events(p.id) == ["attempt_started", "published"]
    assert env.sandbox.counts() == {}  # nothing went over the network
    # an unknown outcome is confirmed: the same receipt, not a second post
    platform = env.core.host.platform("instant")
    with httpx.Client() as http:
        ctx = PublishContext(post_id=posts[0].id, account=account,
                             credentials=Credentials(access_token="unused"),
                             items=[PublishItem(post_id=posts[0].id, text="x")],
                             media_type=None, platform_config={}, http=http,
                             settings=env.core.settings)
        found = platform.confirm(ctx)
    assert found is not None
    assert [r.external_id for r in found.receipts] == ["instant-" + posts[0].id]


def test_attempt_log_events_keep_plain_data_and_make_the_rest_json() -> None:
    from chat33_core.scheduling.context import AttemptLog

    alog = AttemptLog("post_1", attempt=2)
    when = utcnow()
    alog("step", "plain", n=1, s="a", ok=True, none=None)
    alog("step", "mixed", when=when, ratio=0.5, ids=("a", "b"))
    loop: list[object] = []
    loop.append(loop)
    alog("step", "cyclic", me=loop)
    plain, mixed, cyclic = alog.drain()
    assert plain.data == {"n": 1, "s": "a", "ok": True, "none": None}
    assert mixed.data == {"when": str(when), "ratio": 0.5, "ids": ["a", "b"]}
    assert list(cyclic.data) == ["repr"]
    assert (plain.post_id, plain.attempt, plain.event) == ("post_1", 2, "step")
    assert alog.drain() == []
