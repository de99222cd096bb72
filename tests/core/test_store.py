"""The store suite: runs on SQLite and PostgreSQL (fixture ``store``)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from chat33_core.errors import Conflict, NotFound, RateLimited
from chat33_core.models import (
    Account,
    ApiKey,
    LogEvent,
    MediaAsset,
    Organization,
    Post,
    PostStatus,
    User,
    new_id,
    utcnow,
)
from chat33_core.store import Store


def _org_user_account(store: Store, name: str = "Acme") -> tuple[Organization, User, Account]:
    org = store.add_org(Organization.new(name))
    user = store.add_user(User(id=new_id("user"), org_id=org.id, email=f"{name.lower()}@ex.com",
                               password_hash="argon2-hash"))
    account = store.add_account(Account(id=new_id("chan"), org_id=org.id, platform="x",
                                        name="X main"), credentials_enc=None)
    return org, user, account


def _post(org: Organization, user: User, account: Account, **kw: object) -> Post:
    return Post(id=new_id("post"), org_id=org.id, account_id=account.id,
                platform=account.platform, account_name=account.name, created_by=user.id,
                **kw)  # type: ignore[arg-type]


def test_migrate_from_nothing_twice_is_harmless(empty_db_url: str) -> None:
    fresh = Store(empty_db_url)
    fresh.migrate()
    fresh.migrate()
    assert fresh.ping()
    with fresh.engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
    assert {"posts", "accounts", "api_keys", "post_logs", "alembic_version"} <= tables
    fresh.dispose()


def test_migrations_match_the_table_definitions(empty_db_url: str) -> None:
    """The models' tables and the migrated schema never drift apart."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from chat33_core.store.tables import metadata

    fresh = Store(empty_db_url)
    fresh.migrate()
    with fresh.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    fresh.dispose()
    assert diff == []


def _alembic(store: Store, how: str, revision: str) -> None:
    from importlib.resources import files

    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(files("chat33_core") / "migrations"))
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        getattr(command, how)(cfg, revision)


def _index_predicates(store: Store) -> dict[str, str | None]:
    with store.engine.connect() as conn:
        if store.is_postgres:
            rows = conn.execute(sa.text(
                "SELECT c.relname, pg_get_expr(i.indpred, i.indrelid) FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE i.indrelid = 'posts'::regclass")).all()
        else:
            rows = [(name, sql.partition(" WHERE ")[2] or None) for name, sql in conn.execute(
                sa.text("SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                        "AND tbl_name = 'posts' AND sql IS NOT NULL")).all()]
    return {name: pred for name, pred in rows}


def test_thread_and_publication_indexes_are_partial_and_migrate_both_ways(
        empty_db_url: str) -> None:
    fresh = Store(empty_db_url)
    _alembic(fresh, "upgrade", "0002_worker_notify")
    org, user, account = _org_user_account(fresh)
    now = utcnow()
    head = _post(org, user, account, status=PostStatus.PUBLISHED, published_at=now)
    head = attrs.evolve(head, thread_id=head.id)
    reply = attrs.evolve(_post(org, user, account), thread_id=head.id, thread_position=1)
    plain = _post(org, user, account)
    fresh.add_posts([head, reply, plain])
    before = _index_predicates(fresh)
    assert before["ix_posts_thread"] is None and before["ix_posts_account_published"] is None

    fresh.migrate()  # 0003: the rows stay findable through the partial indexes
    after = _index_predicates(fresh)
    assert "thread_id IS NOT NULL" in (after["ix_posts_thread"] or "")
    assert "published_at IS NOT NULL" in (after["ix_posts_account_published"] or "")
    assert [p.id for p in fresh.thread_posts(head.id)] == [head.id, reply.id]
    assert fresh.cap_counts(account.id, now - timedelta(hours=1), (), None)[0] == 1
    if not fresh.is_postgres:
        with fresh.engine.connect() as conn:
            for sql, index in (
                    ("SELECT * FROM posts WHERE thread_id = 'x' ORDER BY thread_position",
                     "ix_posts_thread"),
                    ("SELECT count(*) FROM posts WHERE account_id = 'a' AND "
                     "published_at >= '2026-01-01'", "ix_posts_account_published")):
                plan = " ".join(r[-1] for r in conn.execute(sa.text(
                    "EXPLAIN QUERY PLAN " + sql)))
                assert index in plan, plan

    _alembic(fresh, "downgrade", "0002_worker_notify")
    assert _index_predicates(fresh)["ix_posts_thread"] is None
    fresh.migrate()
    assert [p.id for p in fresh.thread_posts(head.id)] == [head.id, reply.id]
    fresh.dispose()


def test_org_round_trip_and_lookup_by_name(store: Store) -> None:
    org = store.add_org(Organization.new("Acme"))
    assert store.get_org(org.id) == org
    assert store.find_org_by_name("Acme") == org
    assert store.find_org_by_name("Other") is None


def test_missing_org_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        store.get_org("org_nope")


def test_duplicate_user_email_is_a_conflict(store: Store) -> None:
    _, user, _ = _org_user_account(store)
    with pytest.raises(Conflict):
        store.add_user(attrs.evolve(user, id=new_id("user")))


def test_post_round_trip_keeps_every_field(store: Store) -> None:
    org, user, account = _org_user_account(store)
    when = utcnow() + timedelta(hours=2)
    post = _post(org, user, account, text="héllo 👋", media_urls=["https://e.com/a.jpg"],
                 platform_config={"x": {"replySettings": "following"}},
                 scheduled_at=when, timezone="Europe/Paris", thread_id="t1",
                 thread_position=2, publish_with_head=True)
    store.add_posts([post])
    got = store.get_post(post.id, org_id=org.id)
    assert got.text == "héllo 👋"
    assert got.platform_config == {"x": {"replySettings": "following"}}
    assert got.scheduled_at == when.replace(microsecond=when.microsecond)
    assert got.scheduled_at is not None and got.scheduled_at.tzinfo is not None
    assert (got.thread_id, got.thread_position, got.publish_with_head) == ("t1", 2, True)
    assert got.status is PostStatus.QUEUED


def test_posts_of_another_org_are_not_found(store: Store) -> None:
    org, user, account = _org_user_account(store)
    other, _, _ = _org_user_account(store, "Other")
    post = _post(org, user, account)
    store.add_posts([post])
    with pytest.raises(NotFound):
        store.get_post(post.id, org_id=other.id)
    assert store.list_posts(other.id).total == 0


def test_list_posts_filters_and_paginates(store: Store) -> None:
    org, user, account = _org_user_account(store)
    now = utcnow()
    posts = [_post(org, user, account, created_at=now + timedelta(seconds=i),
                   status=PostStatus.DRAFT if i % 2 else PostStatus.QUEUED) for i in range(7)]
    store.add_posts(posts)
    page1 = store.list_posts(org.id, page=1, limit=3)
    assert page1.total == 7 and len(page1.items) == 3 and page1.has_more
    assert [p.id for p in page1.items] == [p.id for p in reversed(posts)][:3]
    page3 = store.list_posts(org.id, page=3, limit=3)
    assert len(page3.items) == 1 and not page3.has_more
    drafts = store.list_posts(org.id, status="DRAFT")
    assert drafts.total == 3 and all(p.status is PostStatus.DRAFT for p in drafts.items)
    assert store.list_posts(org.id, platform="instagram").total == 0
    assert store.list_posts(org.id, account_id=account.id).total == 7


def test_get_accounts_finds_only_the_orgs_own(store: Store) -> None:
    org, _, account = _org_user_account(store)
    other, _, foreign = _org_user_account(store, "Other")
    found = store.get_accounts([account.id, foreign.id, "chan_nope", account.id], org.id)
    assert found == {account.id: store.get_account(account.id)}
    assert store.get_accounts([], org.id) == {}
    assert list(store.get_accounts([foreign.id], other.id)) == [foreign.id]
    # JSON and booleans come back alike through both reads
    store.save_connected_accounts([], [(attrs.evolve(
        account, metadata={"page": {"id": [1, None]}}), "enc")])
    store.write_results("w1", utcnow(), reconnect=[account.id])
    changed = store.get_account(account.id)
    assert changed.metadata == {"page": {"id": [1, None]}} and changed.needs_reconnect
    assert store.get_accounts([account.id], org.id) == {account.id: changed}


def test_rate_limit_counted_in_a_transaction_that_rolls_back_is_not_used(store: Store) -> None:
    with pytest.raises(RuntimeError), store.begin() as conn:
        store.hit_rate_limit("k", 1, timedelta(hours=1), conn=conn)
        raise RuntimeError("the insert after it failed")
    assert store.hit_rate_limit("k", 1, timedelta(hours=1))[0] == 0
    with pytest.raises(RateLimited), store.begin() as conn:
        store.hit_rate_limit("k", 1, timedelta(hours=1), conn=conn)


def test_transactions_still_roll_back_after_the_fast_reads(store: Store) -> None:
    """The per-request reads borrow pooled connections in autocommit mode; every write
    transaction after them is still all or nothing, whichever connection it gets."""
    for _ in range(8):
        store.find_api_key_by_hash("x" * 64)
    for _ in range(8):
        with pytest.raises(RuntimeError), store.begin() as conn:
            store.hit_rate_limit("k", 1, timedelta(hours=1), conn=conn)
            raise RuntimeError("the insert after it failed")
    assert store.hit_rate_limit("k", 1, timedelta(hours=1))[0] == 0


def test_listed_posts_equal_the_posts_read_one_by_one(store: Store) -> None:
    """The list's fast row reading gives exactly the Post that get_post gives, for posts
    with every kind of field set and with defaults only."""
    from chat33_core.models import MediaType
    from chat33_core.store.posts import POST_COLUMNS

    assert list(POST_COLUMNS) == [a.name for a in attrs.fields(Post)], \
        "the posts table and Post must keep the same fields in order"

    org, user, account = _org_user_account(store)
    now = utcnow()
    full = _post(org, user, account, text="héllo 👋", status=PostStatus.PUBLISHED,
                 media_urls=["https://e.com/a.jpg", "https://e.com/b.jpg"],
                 media_ids=["med_1", "med_2"], media_type=MediaType.CAROUSEL,
                 cover_image_url="https://e.com/c.jpg",
                 platform_config={"x": {"replySettings": "following", "n": [1, 2.5, None]}},
                 callback_url="https://e.com/hook", scheduled_at=now + timedelta(hours=2),
                 timezone="Europe/Paris", group_id="grp_1", thread_id="t1", thread_position=2,
                 publish_with_head=True, published_at=now, external_post_id="123",
                 external_post_url="https://x.com/a/status/123", error_message="boom",
                 retry_count=3, next_attempt_at=now + timedelta(minutes=5),
                 lease_owner="worker-1", lease_expires_at=now + timedelta(seconds=30),
                 created_at=now - timedelta(seconds=1))
    bare = _post(org, user, account, created_at=now)
    store.add_posts([full, bare])
    assert store.get_post(full.id) == full and store.get_post(bare.id) == bare
    listed = store.list_posts(org.id).items
    assert listed == [store.get_post(bare.id), store.get_post(full.id)]
    assert listed[1].media_type is MediaType.CAROUSEL and listed[1].status is PostStatus.PUBLISHED
    assert listed[1].platform_config == {"x": {"replySettings": "following", "n": [1, 2.5, None]}}
    assert all(p.created_at.tzinfo is not None for p in listed)
    assert listed[0].media_urls == [] and listed[0].platform_config == {}
    # the decoded JSON values are each post's own (no shared empty list or dict)
    assert listed[0].media_urls is not listed[0].media_ids


def test_listed_rows_render_as_the_posts_read_one_by_one(store: Store) -> None:
    """The rows behind ``GET /posts`` give the JSON that the stored Posts give."""
    from chat33_core.models import MediaType
    from chat33_core.serialization import post_json, post_rows

    org, user, account = _org_user_account(store)
    now = utcnow()
    full = _post(org, user, account, text="héllo 👋", status=PostStatus.FAILED,
                 media_urls=["https://e.com/a.mp4"], media_ids=["med_1"],
                 media_type=MediaType.VIDEO, platform_config={"x": {"n": [1, 2.5, None]}},
                 scheduled_at=now + timedelta(hours=2), published_at=now,
                 next_attempt_at=now + timedelta(minutes=5), error_message="boom",
                 created_at=now.replace(microsecond=999999) - timedelta(seconds=1))
    bare = _post(org, user, account, created_at=now.replace(microsecond=0))
    store.add_posts([full, bare])
    rows = store.list_post_rows(org.id, post_rows.columns, utc_text=True).items
    assert [post_rows.json(r) for r in rows] == [
        post_json(store.get_post(bare.id)), post_json(store.get_post(full.id))]
    assert post_rows.json(rows[1])["createdAt"].endswith(".999Z")
    assert post_rows.json(rows[0])["createdAt"].endswith(".000Z")
    as_datetimes = store.list_post_rows(org.id, ["created_at", "scheduled_at"]).items
    assert as_datetimes == [[bare.created_at, None], [full.created_at, full.scheduled_at]]


def test_list_total_is_right_on_every_page_and_past_the_end(store: Store) -> None:
    org, user, account = _org_user_account(store)
    other, other_user, other_account = _org_user_account(store, "Other")
    now = utcnow()
    store.add_posts([_post(org, user, account, created_at=now + timedelta(seconds=i))
                     for i in range(5)])
    store.add_posts([_post(other, other_user, other_account) for _ in range(3)])
    totals = [(p.total, len(p.items)) for p in
              (store.list_posts(org.id, page=n, limit=2) for n in (1, 2, 3, 4, 9))]
    assert totals == [(5, 2), (5, 2), (5, 1), (5, 0), (5, 0)]
    assert store.list_posts(org.id, status="DRAFT").total == 0
    assert store.list_posts(org.id, status="DRAFT", page=3).total == 0


def test_save_post_is_compare_and_set_on_status(store: Store) -> None:
    org, user, account = _org_user_account(store)
    post = _post(org, user, account)
    store.add_posts([post])
    store.save_post(attrs.evolve(post, status=PostStatus.PUBLISHING),
                    expect_status=PostStatus.QUEUED)
    with pytest.raises(Conflict):
        store.save_post(attrs.evolve(post, status=PostStatus.CANCELLED),
                        expect_status=PostStatus.QUEUED)
    assert store.get_post(post.id).status is PostStatus.PUBLISHING


def test_delete_post_removes_its_logs_and_checkpoints(store: Store) -> None:
    org, user, account = _org_user_account(store)
    post = _post(org, user, account, status=PostStatus.DRAFT)
    store.add_posts([post])
    store.add_log(LogEvent(id=None, post_id=post.id, event="created", message="m"))
    store.write_results("w1", utcnow(), checkpoints={post.id: {"a": 1}})
    store.delete_post(post.id, expect_status=PostStatus.DRAFT)
    with pytest.raises(NotFound):
        store.get_post(post.id)
    assert store.list_logs(post.id) == []
    assert store.load_checkpoint(post.id) == {}


def test_delete_post_refuses_when_status_changed(store: Store) -> None:
    org, user, account = _org_user_account(store)
    post = _post(org, user, account, status=PostStatus.QUEUED)
    store.add_posts([post])
    with pytest.raises(Conflict):
        store.delete_post(post.id, expect_status=PostStatus.DRAFT)


def test_logs_come_back_in_order(store: Store) -> None:
    for i in range(5):
        store.add_log(LogEvent(id=None, post_id="p1", event=f"e{i}", message=str(i),
                               data={"i": i}))
    logs = store.list_logs("p1")
    assert [e.event for e in logs] == [f"e{i}" for i in range(5)]
    assert logs[3].data == {"i": 3} and logs[0].id is not None


def test_checkpoint_save_overwrites(store: Store) -> None:
    store.write_results("w1", utcnow(), checkpoints={"p1": {"container": "1"}})
    store.write_results("w1", utcnow(),
                        checkpoints={"p1": {"container": "2", "step": "published"}})
    assert store.load_checkpoint("p1") == {"container": "2", "step": "published"}
    assert store.load_checkpoint("p2") == {}


def test_api_key_lookup_revoke_and_touch(store: Store) -> None:
    org, user, _ = _org_user_account(store)
    key = store.add_api_key(ApiKey(id=new_id("key"), org_id=org.id, user_id=user.id, name="k",
                                   key_prefix="sk_live_abcd", key_hash="h" * 64))
    assert store.find_api_key_by_hash("h" * 64) == key
    when = utcnow()
    store.touch_api_key(key.id, when)
    assert store.list_api_keys(org.id)[0].last_used_at is not None
    assert store.find_api_key_by_hash("h" * 64) == attrs.evolve(key, last_used_at=when)
    revoked = store.revoke_api_key(org.id, key.id)
    assert not revoked.is_active
    assert store.find_api_key_by_hash("h" * 64) == revoked
    assert store.find_api_key_by_hash("h" * 64).is_active is False  # type: ignore[union-attr]
    assert store.find_api_key_by_hash("x" * 64) is None
    with pytest.raises(NotFound):
        store.revoke_api_key("org_other", key.id)


def test_keys_and_accounts_read_again_unchanged_are_the_same_values(store: Store) -> None:
    """The per-request reads keep what they made by the raw row: an unchanged row gives
    the same value back; a changed row, however little, gives the change at once."""
    org, user, account = _org_user_account(store)
    store.add_api_key(ApiKey(id=new_id("key"), org_id=org.id, user_id=user.id, name="k",
                             key_prefix="sk_live_abcd", key_hash="i" * 64))
    key, found = store.find_api_key_with_accounts("i" * 64, [account.id])
    again, found_again = store.find_api_key_with_accounts("i" * 64, [account.id])
    assert key == again and found == found_again == {account.id: account}
    if not store.is_postgres:  # PostgreSQL's rows hold decoded JSON: decoded each time
        assert again is key and found_again[account.id] is found[account.id]
        assert store.get_accounts([account.id], org.id)[account.id] is found[account.id]

    store.save_connected_accounts([], [(attrs.evolve(
        account, name="X renamed", metadata={"textLimit": 4000}), "enc")])
    renamed = store.get_account(account.id)
    assert renamed.name == "X renamed"
    _, seen = store.find_api_key_with_accounts("i" * 64, [account.id])
    assert seen[account.id] == renamed and seen[account.id].metadata == {"textLimit": 4000}
    assert store.get_accounts([account.id], org.id) == {account.id: renamed}
    assert key is not None
    store.revoke_api_key(org.id, key.id)
    revoked, _ = store.find_api_key_with_accounts("i" * 64, [account.id])
    assert revoked is not None and revoked.is_active is False


def test_interned_rows_decode_unhashable_rows_each_time_and_stay_bounded() -> None:
    from chat33_core.store._sql import Interned as _Interned

    made: list[tuple[object, ...]] = []

    def make(row: object) -> list[object]:
        made.append(tuple(row))  # type: ignore[call-overload]
        return list(row)  # type: ignore[call-overload]

    interned = _Interned(make, size=2)
    first = interned(("a", 1))
    assert interned(["a", 1]) is first and len(made) == 1
    decoded = ("b", ["a", "list"])  # a driver's decoded JSON: no key for it
    assert interned(decoded) == interned(decoded) == ["b", ["a", "list"]]
    assert len(made) == 3
    interned(("c", 2))
    interned(("d", 3))  # a third row: the memory starts afresh
    assert interned(("a", 1)) is not first and interned(("a", 1)) == first
    assert len(made) == 6


def test_account_credentials_compare_and_set(store: Store) -> None:
    _, _, account = _org_user_account(store)
    assert store.account_credentials_enc(account.id) is None
    assert store.set_account_credentials_enc(account.id, "v1")
    assert not store.set_account_credentials_enc(account.id, "v2", expected="stale")
    assert store.set_account_credentials_enc(account.id, "v2", expected="v1")
    assert store.account_credentials_enc(account.id) == "v2"


def test_list_accounts_filters_by_platform_and_activity(store: Store) -> None:
    org, _, account = _org_user_account(store)
    store.add_account(Account(id=new_id("chan"), org_id=org.id, platform="youtube", name="YT",
                              is_active=False), None)
    assert [a.id for a in store.list_accounts(org.id, platform="x")] == [account.id]
    assert len(store.list_accounts(org.id)) == 2
    assert len(store.list_accounts(org.id, active_only=True)) == 1
    assert store.list_accounts(org.id, platform="youtube", active_only=True) == []
    assert store.list_accounts(org.id, platform="tiktok") == []
    assert store.list_accounts("org_nobody") == []


def test_listed_accounts_come_oldest_first_with_every_field(store: Store) -> None:
    org, _, first = _org_user_account(store)
    at = first.created_at
    later = [store.add_account(Account(
        id=new_id("chan"), org_id=org.id, platform="x", name=f"X {i}", username="u",
        external_id=f"e{i}", needs_reconnect=bool(i % 2), metadata={"textLimit": 4000 + i},
        created_at=at + timedelta(seconds=10 - i)), None) for i in range(3)]
    other, _, rival = _org_user_account(store, "Rival")
    assert store.list_accounts(org.id) == [first, *reversed(later)]
    assert store.list_accounts(other.id) == [rival]


def test_media_lookup_by_url_and_source(store: Store) -> None:
    org, _, _ = _org_user_account(store)
    asset = store.add_media(MediaAsset(
        id=new_id("med"), org_id=org.id, name="abc.jpg", path="/tmp/abc.jpg",
        url="http://127.0.0.1:8000/media/abc.jpg", kind="image", content_type="image/jpeg",
        size=10, sha256="0" * 64, source_url="https://cdn.example.com/a.jpg",
        info={"kind": "image"}))
    assert store.find_media_by_url(org.id, asset.url) == asset
    assert store.find_media_by_url(org.id, "https://cdn.example.com/a.jpg") == asset
    assert store.find_media_by_url("org_other", asset.url) is None
    assert store.find_media_by_name("abc.jpg") == asset
    with pytest.raises(NotFound):
        store.get_media("med_nope")


def test_rate_limit_allows_the_limit_then_refuses(store: Store) -> None:
    now = utcnow()
    remaining = [store.hit_rate_limit("k", 3, timedelta(hours=1), now=now)[0]
                 for _ in range(3)]
    assert remaining == [2, 1, 0]
    with pytest.raises(RateLimited) as info:
        store.hit_rate_limit("k", 3, timedelta(hours=1), now=now)
    assert 0 < info.value.retry_after <= 1200 + 1
    # the allowance refills smoothly: one request per period/limit
    store.hit_rate_limit("k", 3, timedelta(hours=1), now=now + timedelta(minutes=21))
    # other keys are independent
    store.hit_rate_limit("other", 3, timedelta(hours=1), now=now)


def test_a_counted_request_can_be_given_back_once(store: Store) -> None:
    now = utcnow()
    hour = timedelta(hours=1)
    for _ in range(3):
        store.hit_rate_limit("k", 3, hour, now=now)
    store.give_back_rate_limit("k", 3, hour, now=now)
    assert store.hit_rate_limit("k", 3, hour, now=now)[0] == 0
    with pytest.raises(RateLimited):
        store.hit_rate_limit("k", 3, hour, now=now)
    # giving back more than was counted leaves a full allowance, never more
    for _ in range(5):
        store.give_back_rate_limit("k", 3, hour, now=now)
    assert [store.hit_rate_limit("k", 3, hour, now=now)[0] for _ in range(3)] == [2, 1, 0]
    # a key never counted: nothing to give back, nothing stored
    store.give_back_rate_limit("never", 3, hour, now=now)
    assert store.hit_rate_limit("never", 3, hour, now=now)[0] == 2


def test_rate_limit_is_atomic_under_concurrency(store: Store) -> None:
    allowed, refused = [], []
    lock = threading.Lock()

    def hit() -> None:
        try:
            store.hit_rate_limit("burst", 10, timedelta(hours=1))
            with lock:
                allowed.append(1)
        except RateLimited:
            with lock:
                refused.append(1)

    threads = [threading.Thread(target=hit) for _ in range(25)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(allowed) == 10 and len(refused) == 15


def test_cap_counts_count_the_window_and_the_posts_in_flight(store: Store) -> None:
    org, user, account = _org_user_account(store)
    now = utcnow()
    mine = _post(org, user, account, status=PostStatus.PUBLISHING, lease_owner="w1")
    theirs = _post(org, user, account, status=PostStatus.PUBLISHING, lease_owner="w2")
    store.add_posts([
        _post(org, user, account, status=PostStatus.PUBLISHED, published_at=now),
        _post(org, user, account, status=PostStatus.PUBLISHED,
              published_at=now - timedelta(hours=30)),
        _post(org, user, account, status=PostStatus.QUEUED), mine, theirs,
    ])
    since = now - timedelta(hours=24)
    used, in_flight, oldest = store.cap_counts(account.id, since, (), None)
    assert (used, in_flight) == (1, 2) and oldest is not None
    assert abs((oldest - now).total_seconds()) < 1
    # the post itself and the asking worker's own leases are not counted as in flight
    assert store.cap_counts(account.id, since, [theirs.id], None)[1] == 1
    assert store.cap_counts(account.id, since, (), "w1")[1] == 1
    assert store.cap_counts(account.id, since, [theirs.id], "w1")[1] == 0


def test_ids_made_in_threads_and_in_a_forked_child_do_not_repeat() -> None:
    import os
    import threading

    made: list[list[str]] = [[] for _ in range(8)]

    def make(mine: list[str]) -> None:
        mine.extend(new_id("post") for _ in range(1000))

    workers = [threading.Thread(target=make, args=(m,)) for m in made]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    every = [i for m in made for i in m]
    assert len(set(every)) == len(every) == 8000

    new_id("post")  # the parent has random bytes drawn and waiting
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        os.write(write, " ".join(new_id("post")[17:] for _ in range(50)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as child:
        childs = set(child.read().split())
    parents = {new_id("post")[17:] for _ in range(50)}
    assert len(childs) == 50 and not childs & parents


def test_naive_datetimes_are_refused_by_the_models() -> None:
    from datetime import datetime

    with pytest.raises(ValueError):
        Post(id="p", org_id="o", account_id="a", platform="x", account_name="n",
             created_by="u", scheduled_at=datetime(2030, 1, 1))


def test_ids_sort_in_the_order_they_were_made_and_do_not_repeat() -> None:
    import re
    import time

    first = [new_id("post") for _ in range(2000)]
    time.sleep(0.003)  # the next millisecond at least
    later = new_id("post")
    assert all(re.fullmatch(r"post_[0-9a-f]{32}", i) for i in [*first, later])
    assert len(set(first)) == len(first)
    assert max(first) < later
    # within the same millisecond the order is random, never backwards across them
    stamps = [i[5:17] for i in first]
    assert stamps == sorted(stamps)
    # the clock's part is the time in milliseconds
    assert abs(int(later[5:17], 16) - time.time_ns() // 1_000_000) < 60_000


def _backend_pid(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(server_url: str, pid: int) -> None:
    killer = sa.create_engine(server_url)
    with killer.connect() as conn:
        assert conn.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()
    killer.dispose()


def test_an_idle_pooled_postgres_connection_that_died_is_replaced_before_use(
        pg_server_url: str) -> None:
    from chat33_core.store.core import make_engine

    engine = make_engine(pg_server_url, ping_idle_s=0.0, pool_size=1, max_overflow=0)
    try:
        first = _backend_pid(engine)
        _terminate(pg_server_url, first)  # a server restart, an idle timeout...
        assert _backend_pid(engine) != first  # pinged, found dead, replaced
    finally:
        engine.dispose()


def test_a_recently_used_postgres_connection_is_not_pinged(pg_server_url: str) -> None:
    from chat33_core.store.core import make_engine

    engine = make_engine(pg_server_url, ping_idle_s=3600.0, pool_size=1, max_overflow=0)
    try:
        _terminate(pg_server_url, _backend_pid(engine))
        # within the idle window the pool trusts the connection: the first use finds out
        # (the price of no round trip per checkout), and the pool then replaces it
        with pytest.raises(sa.exc.OperationalError):
            _backend_pid(engine)
        assert _backend_pid(engine) > 0
    finally:
        engine.dispose()


@attrs.define
class _Request:
    """One request's posts for Store.add_posts_counted."""

    key: str
    limit: int
    period: timedelta
    posts: list[Post]
    logs: list[LogEvent]

    def item(self, store: Store) -> Any:
        """As the group commit holds it (the driver's parameters prepared)."""
        from chat33_core.store.limits import _CountedInsert
        from chat33_core.store.posts import insert_args

        return _CountedInsert(self.key, self.limit, self.period,
                              insert_args(store.engine.dialect, self.posts, self.logs),
                              cost=len(self.posts))


def _counted(store: Store, org: Organization, user: User, account: Account, key: str,
             limit: int, n: int = 1, **kw: object) -> _Request:
    posts = [_post(org, user, account, **kw) for _ in range(n)]
    logs = [LogEvent(id=None, post_id=p.id, event="created", message="created")
            for p in posts]
    return _Request(key, limit, timedelta(hours=1), posts, logs)


def test_concurrent_counted_inserts_keep_the_limit_exactly(store: Store) -> None:
    org, user, account = _org_user_account(store)
    start = threading.Barrier(16)
    outcomes: list[Any] = []
    lock = threading.Lock()

    def request() -> None:
        item = _counted(store, org, user, account, "posts:acme", 6)
        start.wait()
        try:
            result: Any = store.add_posts_counted(item.key, item.limit, item.period,
                                                  item.posts, item.logs)
        except RateLimited as exc:
            result = exc
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=request) for _ in range(16)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    allowed = sorted(o[0] for o in outcomes if not isinstance(o, RateLimited))
    assert allowed == [0, 1, 2, 3, 4, 5]  # each request saw its own count
    assert sum(isinstance(o, RateLimited) for o in outcomes) == 10
    assert store.list_posts(org.id, limit=100).total == 6  # refused requests inserted nothing


def test_a_group_counts_in_order_and_a_broken_request_fails_alone(store: Store) -> None:
    org, user, account = _org_user_account(store)
    existing = store.add_posts([_post(org, user, account)])[0]
    good = [_counted(store, org, user, account, "posts:acme", 3) for _ in range(2)]
    # a post id that exists already: its insert breaks the shared transaction
    bad = _counted(store, org, user, account, "posts:acme", 3)
    bad.posts = [attrs.evolve(bad.posts[0], id=existing.id)]
    over = _counted(store, org, user, account, "posts:acme", 3)
    late = _counted(store, org, user, account, "posts:acme", 3)
    group = [r.item(store) for r in (good[0], bad, good[1], over, late)]
    store._write_counted(group)
    good[0], bad, good[1], over, late = group
    # the driver's integrity error leaves the store as a Conflict naming the table
    assert isinstance(bad.error, Conflict)
    assert "posts (id)" in bad.error.message and "already exists" in bad.error.message
    assert [r.result[0] for r in (good[0], good[1], over)] == [2, 1, 0]  # type: ignore[index]
    assert isinstance(late.error, RateLimited)  # the failed one used no allowance
    assert store.list_posts(org.id, limit=100).total == 4
    with pytest.raises(RateLimited):
        store.hit_rate_limit("posts:acme", 3, timedelta(hours=1))


def test_a_counted_insert_alone_raises_its_own_error(store: Store) -> None:
    org, user, account = _org_user_account(store)
    item = _counted(store, org, user, account, "posts:one", 1)
    assert store.add_posts_counted(item.key, 1, item.period, item.posts, item.logs)[0] == 0
    again = _counted(store, org, user, account, "posts:one", 1)
    with pytest.raises(RateLimited) as refused:
        store.add_posts_counted(again.key, 1, again.period, again.posts, again.logs)
    assert refused.value.retry_after and refused.value.retry_after > 3000
    assert store.list_posts(org.id).total == 1


def test_a_counted_insert_counts_each_post(store: Store) -> None:
    org, user, account = _org_user_account(store)
    pair = _counted(store, org, user, account, "posts:acme", 30, n=2)
    assert store.add_posts_counted(pair.key, 30, pair.period, pair.posts, pair.logs)[0] == 28
    thread = _counted(store, org, user, account, "posts:acme", 30, n=3)
    assert store.add_posts_counted(thread.key, 30, thread.period, thread.posts,
                                   thread.logs)[0] == 25


def test_posts_that_do_not_all_fit_are_refused_together(store: Store) -> None:
    org, user, account = _org_user_account(store)
    first = _counted(store, org, user, account, "posts:acme", 3, n=2)
    assert store.add_posts_counted(first.key, 3, first.period, first.posts, first.logs)[0] == 1
    over = _counted(store, org, user, account, "posts:acme", 3, n=2)
    with pytest.raises(RateLimited) as refused:
        store.add_posts_counted(over.key, 3, over.period, over.posts, over.logs)
    assert refused.value.remaining == 1
    assert "this request counts 2, 1 left" in refused.value.message
    assert store.list_posts(org.id).total == 2  # none of the refused request's posts
    last = _counted(store, org, user, account, "posts:acme", 3, n=1)
    assert store.add_posts_counted(last.key, 3, last.period, last.posts, last.logs)[0] == 0


def test_a_group_counts_each_request_by_its_posts(store: Store) -> None:
    org, user, account = _org_user_account(store)
    pair, too_many, single = (_counted(store, org, user, account, "posts:acme", 3, n=n)
                              for n in (2, 2, 1))
    group = [r.item(store) for r in (pair, too_many, single)]
    store._write_counted(group)
    assert group[0].result[0] == 1 and group[2].result[0] == 0
    assert isinstance(group[1].error, RateLimited) and group[1].result is None
    assert store.list_posts(org.id, limit=100).total == 3


def test_a_count_over_the_whole_limit_never_fits(store: Store) -> None:
    with pytest.raises(RateLimited, match="counts 4 against the rate limit of 3 per hour, "
                                          "more than it ever allows"):
        store.hit_rate_limit("k", 3, timedelta(hours=1), cost=4)
    assert store.hit_rate_limit("k", 3, timedelta(hours=1), cost=3)[0] == 0


@pytest.mark.parametrize("dialect_name", ["sqlite", "postgresql"])
def test_insert_parameters_from_attributes_match_the_generic_ones(dialect_name: str) -> None:
    """The counted insert builds its parameters straight from the models' attributes;
    they are exactly what the generic path (a dict through the bind processors) gives."""
    from datetime import UTC, datetime

    from sqlalchemy.dialects import postgresql, sqlite

    from chat33_core.models import MediaType, PostStatus
    from chat33_core.store import posts as core

    dialect = (sqlite if dialect_name == "sqlite" else postgresql).dialect()
    when = datetime(2026, 11, 23, 17, 5, 9, 123456, tzinfo=UTC)
    org = Organization(id="org_a", name="A")
    user = User(id="usr_a", org_id=org.id, email="a@example.com", password_hash="x")
    account = Account(id="chan_a", org_id=org.id, platform="x", name="A on X")
    posts = [
        _post(org, user, account),
        _post(org, user, account, text="héllo ✓", status=PostStatus.DRAFT,
              media_urls=["https://e.example/a.jpg"], media_ids=["med_1"],
              media_type=MediaType.IMAGE, platform_config={"x": {"replySettings": None}},
              scheduled_at=when, next_attempt_at=when, thread_id="post_t",
              thread_position=2, publish_with_head=True, published_at=when, retry_count=3),
    ]
    logs = [LogEvent(id=None, post_id="post_t", event="created", message="m"),
            LogEvent(id=7, post_id="post_t", event="failed", message="boom", attempt=2,
                     data={"status": 500, "nested": [1, "two"]}, created_at=when)]
    insert_posts = core.INSERT_POSTS.compiled(dialect)
    insert_logs = core.INSERT_LOGS.compiled(dialect)

    def plain(args: Any) -> Any:  # psycopg's Json wrappers compare by identity
        if isinstance(args, dict):
            return {k: getattr(v, "obj", v) for k, v in args.items()}
        return args

    for post in posts:
        assert plain(insert_posts.args_of(post, core.POST_COLUMNS, core.ENUM_VALUES)) == \
            plain(insert_posts.args(core.post_values(post)))
    for event in logs:
        values = attrs.asdict(event)
        values.pop("id")
        assert plain(insert_logs.args_of(event, core.LOG_COLUMNS, core.NOTHING)) == \
            plain(insert_logs.args(values))


def _page_posts(store: Store, org_id: str, **kw: Any) -> tuple[list[Any], int]:
    from chat33_core.serialization import post_json

    page = store.list_posts(org_id, **kw)
    return [post_json(p) for p in page.items], page.total


def _page_rows(store: Store, org_id: str, **kw: Any) -> tuple[list[Any], int]:
    from chat33_core.serialization import post_rows

    page = store.list_post_rows(org_id, post_rows.columns, utc_text=True, **kw)
    return [post_rows.json(r) for r in page.items], page.total


def test_a_page_of_rows_renders_as_its_posts_render(store: Store) -> None:
    """GET /posts renders the page's rows; that is exactly what the page's Posts give,
    on every page and filter, in order (ties on createdAt included)."""
    from chat33_core.models import MediaType

    org, user, account = _org_user_account(store)
    other, other_user, other_account = _org_user_account(store, "Other")
    now = utcnow().replace(microsecond=123456)
    posts = [
        _post(org, user, account, text="héllo 👋 \"quoted\" \\ \n tab\t \x01",
              status=PostStatus.FAILED, media_urls=["https://e.com/a.mp4"],
              media_ids=["med_1"], media_type=MediaType.VIDEO,
              platform_config={"x": {"n": [1, 2.5, None, True, "é"]}, "": {}},
              scheduled_at=now + timedelta(hours=2), published_at=now,
              next_attempt_at=now + timedelta(minutes=5), error_message="boom",
              created_at=now.replace(microsecond=999999)),
        _post(org, user, account, created_at=now.replace(microsecond=0)),
        *[_post(org, user, account, created_at=now, thread_id="post_t", thread_position=i,
                status=PostStatus.DRAFT if i % 2 else PostStatus.QUEUED)
          for i in range(4)],
    ]
    store.add_posts(posts)
    store.add_posts([_post(other, other_user, other_account)])
    for kw in ({}, {"limit": 2}, {"limit": 2, "page": 2}, {"limit": 4, "page": 2},
               {"limit": 2, "page": 9}, {"status": "DRAFT"}, {"status": "PUBLISHED"},
               {"platform": "x", "limit": 3}, {"account_id": account.id, "page": 1},
               {"account_id": other_account.id}, {"status": "QUEUED", "limit": 1}):
        assert _page_posts(store, org.id, **kw) == _page_rows(store, org.id, **kw), kw
    items, total = _page_posts(store, org.id)
    assert total == 6 and [p["id"] for p in items][:1] == [posts[0].id]
    assert items[0]["createdAt"].endswith(".999Z") and items[0]["platformConfig"]["x"]["n"]
    assert _page_posts(store, "org_nobody") == ([], 0)


def test_sqlite_renders_instants_stored_in_other_forms(sqlite_store: Store) -> None:
    """Instants written by hand in another text form render in the rows as in the
    Posts."""
    org, user, account = _org_user_account(sqlite_store)
    posts = [_post(org, user, account), _post(org, user, account)]
    sqlite_store.add_posts(posts)
    org_id = org.id
    with sqlite_store.begin() as c:
        c.execute(sa.text("UPDATE posts SET published_at = '2026-11-23 17:05:09', "
                          "scheduled_at = '2026-11-23T18:05:09.5+01:00' WHERE id = :id"),
                  {"id": posts[1].id})
    by_id = {p["id"]: p for p in _page_posts(sqlite_store, org_id)[0]}
    assert by_id[posts[1].id]["publishedAt"] == "2026-11-23T17:05:09.000Z"
    assert by_id[posts[1].id]["scheduledAt"] == "2026-11-23T17:05:09.500Z"
    assert _page_posts(sqlite_store, org_id) == _page_rows(sqlite_store, org_id)


@settings(max_examples=200, deadline=None)
@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                    timezones=st.timezones()))
def test_sqlite_stores_instants_as_sqlalchemy_writes_them(when: datetime) -> None:
    from sqlalchemy.dialects import sqlite

    from chat33_core.store.tables import UTCDateTime

    dialect = sqlite.dialect()
    ours = UTCDateTime().bind_processor(dialect)
    theirs = sa.DateTime().dialect_impl(dialect).bind_processor(dialect)
    assert ours(when) == theirs(when.astimezone(UTC).replace(tzinfo=None))
    in_utc = when.astimezone(UTC)  # datetime.UTC itself: the processor's short path
    assert ours(in_utc) == theirs(in_utc.replace(tzinfo=None))
    assert ours(None) is None
    with pytest.raises(ValueError, match="naive"):
        ours(when.replace(tzinfo=None))


@settings(max_examples=100, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                    lambda inner: st.lists(inner, max_size=3) | st.tuples(inner)
                    | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=6))
def test_sqlite_json_columns_are_written_as_json_dumps_writes_them(value: Any) -> None:
    import json

    from chat33_core.store.engine import _json_text

    assert _json_text(value) == json.dumps(value)
    assert (_json_text([]), _json_text({}), _json_text(())) == ("[]", "{}", "[]")
