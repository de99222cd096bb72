"""Group commit: many threads' writes in shared transactions, each with its own outcome."""

from __future__ import annotations

import threading
from datetime import timedelta

import attrs
import pytest
import sqlalchemy as sa

from chat33_core.errors import Conflict
from chat33_core.models import LogEvent, Post, PostStatus, utcnow
from chat33_core.scheduling.batch import GroupCommit, Writes
from chat33_core.scheduling.queue import LeaseLost, Queue
from chat33_core.store import tables as t

from .conftest import Env


def claimed(env: Env, n: int, owner: str = "w1") -> list[Post]:
    env.spread(n)
    return [c.post for c in Queue(env.store, owner).claim(n)]


def published(post: Post) -> Post:
    return attrs.evolve(post, status=PostStatus.PUBLISHED, published_at=utcnow(),
                        external_post_id="x-" + post.id, lease_owner=None,
                        lease_expires_at=None)


def log(post: Post, event: str) -> LogEvent:
    return LogEvent(id=None, post_id=post.id, event=event, message=event, attempt=1)


def commit_all(committer: GroupCommit, writes: list[Writes]) -> list[BaseException | None]:
    """Commit from one thread per Writes, released together; the outcome of each."""
    outcomes: list[BaseException | None] = [None] * len(writes)
    start = threading.Barrier(len(writes))

    def run(i: int) -> None:
        start.wait()
        try:
            committer.commit(writes[i])
        except BaseException as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(writes))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    return outcomes


def test_concurrent_writes_share_transactions_and_all_land(env: Env) -> None:
    posts = claimed(env, 12)
    committer = GroupCommit(env.store, "w1", timedelta(seconds=60))
    writes = [Writes(finish=[published(p)], logs=[log(p, "published")],
                     checkpoints={p.id: {"step": 1}}, fence=[p.id]) for p in posts]
    assert commit_all(committer, writes) == [None] * 12
    assert committer.written == 12
    assert committer.transactions <= 12
    for p in posts:
        stored = env.get(p.id)
        assert stored.status is PostStatus.PUBLISHED
        assert stored.external_post_id == "x-" + p.id
        assert env.store.load_checkpoint(p.id) == {"step": 1}
        assert "published" in env.events(p.id)


def test_a_lost_lease_fails_only_its_own_writes(env: Env) -> None:
    posts = claimed(env, 6)
    # another worker took one post over
    stolen = posts[2]
    with env.store.begin() as c:
        c.execute(t.posts.update().where(t.posts.c.id == stolen.id).values(lease_owner="w2"))
    committer = GroupCommit(env.store, "w1", timedelta(seconds=60))
    writes = [Writes(finish=[published(p)], logs=[log(p, "published")]) for p in posts]
    outcomes = commit_all(committer, writes)
    assert isinstance(outcomes[2], LeaseLost)
    assert stolen.id in str(outcomes[2])
    assert [o for i, o in enumerate(outcomes) if i != 2] == [None] * 5
    assert env.get(stolen.id).status is PostStatus.PUBLISHING
    assert env.get(stolen.id).lease_owner == "w2"
    assert "published" not in env.events(stolen.id)  # its logs rolled back with it
    for p in posts[:2] + posts[3:]:
        assert env.get(p.id).status is PostStatus.PUBLISHED


def test_a_fence_on_a_lost_lease_refuses_the_checkpoint(env: Env) -> None:
    (post,) = claimed(env, 1)
    with env.store.begin() as c:
        c.execute(t.posts.update().where(t.posts.c.id == post.id).values(lease_owner="w2"))
    committer = GroupCommit(env.store, "w1", timedelta(seconds=60))
    with pytest.raises(LeaseLost):
        committer.commit(Writes(fence=[post.id], checkpoints={post.id: {"sending": 0}}))
    assert env.store.load_checkpoint(post.id) == {}


def test_a_fence_extends_the_lease(env: Env) -> None:
    (post,) = claimed(env, 1)
    before = env.get(post.id).lease_expires_at
    assert before is not None
    committer = GroupCommit(env.store, "w1", timedelta(seconds=600))
    committer.commit(Writes(fence=[post.id]))
    after = env.get(post.id).lease_expires_at
    assert after is not None and after > before + timedelta(seconds=300)


def test_a_database_error_reaches_the_writer_and_nothing_is_half_written(env: Env) -> None:
    posts = claimed(env, 2)
    committer = GroupCommit(env.store, "w1", timedelta(seconds=60))
    # a log without a message breaks a NOT NULL constraint
    bad = LogEvent(id=None, post_id=posts[0].id, event="x", message=None,  # type: ignore[arg-type]
                   attempt=1)
    writes = [Writes(finish=[published(posts[0])], logs=[bad]),
              Writes(finish=[published(posts[1])], logs=[log(posts[1], "published")])]
    outcomes = commit_all(committer, writes)
    # the driver's integrity error leaves the store as a Conflict naming the column
    assert isinstance(outcomes[0], Conflict)
    assert outcomes[0].message.startswith("post_logs (message): ")
    assert outcomes[1] is None
    assert env.get(posts[0].id).status is PostStatus.PUBLISHING
    assert env.get(posts[1].id).status is PostStatus.PUBLISHED


def test_webhook_rows_and_reconnect_marks_are_written(env: Env) -> None:
    env.posts(1, callback_url="https://hooks.example/x")
    (post,) = [c.post for c in Queue(env.store, "w1").claim(1)]
    committer = GroupCommit(env.store, "w1", timedelta(seconds=60))
    failed = attrs.evolve(post, status=PostStatus.FAILED, error_message="revoked",
                          lease_owner=None, lease_expires_at=None)
    writes = Writes(finish=[failed], hooks=[failed], reconnect=[post.account_id],
                    drop_checkpoints=[post.id])
    committer.commit(writes)
    assert writes.hooks_added == 1
    with env.store.read() as c:
        rows = c.execute(sa.select(t.webhook_deliveries.c.post_id)).scalars().all()
        assert rows == [post.id]
        assert c.execute(sa.select(t.accounts.c.needs_reconnect).where(
            t.accounts.c.id == post.account_id)).scalar() is True


def test_a_write_that_does_not_wait_is_committed_by_the_thread_already_committing(
        env: Env, caplog: pytest.LogCaptureFixture) -> None:
    first, second, third = claimed(env, 3)
    with env.store.begin() as c:  # another worker took the third one over
        c.execute(t.posts.update().where(t.posts.c.id == third.id).values(lease_owner="w2"))
    committer = GroupCommit(env.store, "w1", timedelta(seconds=60))
    holding, release = threading.Event(), threading.Event()
    seen: list[str] = []

    def hold(w: Writes) -> None:  # keeps the first thread committing (leading) a while
        holding.set()
        release.wait(30)

    leader = threading.Thread(target=committer.commit, args=(Writes(
        finish=[published(first)], after=[hold]),))
    leader.start()
    assert holding.wait(30)
    # a thread that does not wait hands its writes over and returns at once
    committer.commit(Writes(finish=[published(second)],
                            after=[lambda w: seen.append(w.finish[0].id)]), wait=False)
    committer.commit(Writes(finish=[published(third)]), wait=False)
    assert env.get(second.id).status is PostStatus.PUBLISHING
    assert seen == []
    release.set()
    leader.join(30)
    assert env.get(second.id).status is PostStatus.PUBLISHED
    assert seen == [second.id]
    # the refused one is logged and counted; the post stays with its new owner
    assert committer.dropped == 1
    assert env.get(third.id).lease_owner == "w2"
    assert any(third.id in r.getMessage() for r in caplog.records)


def test_a_write_that_does_not_wait_is_committed_at_once_when_nobody_else_commits(
        env: Env) -> None:
    (post,) = claimed(env, 1)
    committer = GroupCommit(env.store, "w1", timedelta(seconds=60))
    committer.commit(Writes(finish=[published(post)]), wait=False)
    assert env.get(post.id).status is PostStatus.PUBLISHED
    # and its errors are its own again
    (other,) = claimed(env, 1, owner="w2")
    with pytest.raises(LeaseLost):
        committer.commit(Writes(finish=[published(other)]), wait=False)
