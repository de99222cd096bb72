"""Post lists by time: ``from``/``to`` on when a post goes out (its schedule, else its
creation) and the four sorts, on SQLite and PostgreSQL, through both list paths (the
rows GET /posts renders, the Posts)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chat33_core.config import Settings
from chat33_core.errors import ValidationError
from chat33_core.models import Account, Organization, Post, PostSort, PostStatus, User, new_id
from chat33_core.serialization import post_rows
from chat33_core.service import Chat33
from chat33_core.store import Store

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def _setup(store: Store) -> tuple[Organization, dict[str, Post]]:
    org = store.add_org(Organization.new("Acme"))
    other = store.add_org(Organization.new("Other"))
    user = store.add_user(User(id=new_id("user"), org_id=org.id, email="a@ex.com",
                               password_hash="h"))
    accounts = [store.add_account(Account(id=new_id("chan"), org_id=o.id, platform="x",
                                          name="X"), None) for o in (org, other)]

    def post(name: str, created_h: float, scheduled_h: float | None, org_index: int = 0,
             **kw: Any) -> Post:
        account = accounts[org_index]
        return Post(id=new_id("post"), org_id=account.org_id, account_id=account.id,
                    platform="x", account_name="X", created_by=user.id, text=name,
                    created_at=T0 + timedelta(hours=created_h),
                    scheduled_at=None if scheduled_h is None else
                    T0 + timedelta(hours=scheduled_h), **kw)

    posts = {
        # created first, going out last
        "late": post("late", 0, 48),
        # immediate: goes out when it was created
        "now": post("now", 1, None),
        "soon": post("soon", 2, 3),
        "draft": post("draft", 3.5, None, status=PostStatus.DRAFT),
        "foreign": post("foreign", 1.5, None, org_index=1),
    }
    store.add_posts(list(posts.values()))
    return org, posts


def _names(store: Store, org_id: str, **kw: Any) -> list[str]:
    """The texts of a page through every list path, which must agree."""
    rows = store.list_post_rows(org_id, post_rows.columns, utc_text=True, **kw)
    from_rows = [post_rows.json(r)["text"] for r in rows.items]
    posts = store.list_posts(org_id, **kw)
    assert from_rows == [p.text for p in posts.items], kw
    assert rows.total == posts.total
    return from_rows


def test_from_and_to_bound_the_schedule_or_the_creation(store: Store) -> None:
    org, _ = _setup(store)
    h = timedelta(hours=1)
    assert _names(store, org.id) == ["draft", "soon", "now", "late"]
    # "late" was created at T0 but goes out at T0+48h: outside [T0, T0+10h)
    assert _names(store, org.id, since=T0, until=T0 + 10 * h) == ["draft", "soon", "now"]
    assert _names(store, org.id, since=T0 + 24 * h) == ["late"]
    # from inclusive, to exclusive
    assert _names(store, org.id, since=T0 + h, until=T0 + 3 * h) == ["now"]
    assert _names(store, org.id, since=T0 + 3 * h, until=T0 + 3 * h) == []
    assert _names(store, org.id, until=T0 + 3 * h + timedelta(microseconds=1)) == \
        ["soon", "now"]
    # with the other filters, and paginated
    assert _names(store, org.id, since=T0, status="DRAFT") == ["draft"]
    assert _names(store, org.id, since=T0, limit=2, page=2) == ["now", "late"]
    # an instant in another zone means the same instant
    paris = T0.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Paris"))
    assert _names(store, org.id, since=paris + 2 * h, until=paris + 4 * h) == \
        ["draft", "soon"]


def test_the_four_sorts(store: Store) -> None:
    org, _ = _setup(store)
    assert _names(store, org.id, sort=PostSort.CREATED_DESC) == ["draft", "soon", "now", "late"]
    assert _names(store, org.id, sort=PostSort.CREATED_ASC) == ["late", "now", "soon", "draft"]
    assert _names(store, org.id, sort=PostSort.SCHEDULED_ASC) == ["now", "soon", "draft", "late"]
    assert _names(store, org.id, sort=PostSort.SCHEDULED_DESC) == \
        ["late", "draft", "soon", "now"]
    assert _names(store, org.id, sort=PostSort.SCHEDULED_ASC, limit=2, page=2) == \
        ["draft", "late"]
    assert _names(store, org.id, sort=PostSort.SCHEDULED_DESC,
                  since=T0 + timedelta(hours=2)) == ["late", "draft", "soon"]


def test_a_thread_keeps_its_order_whatever_the_sort(store: Store) -> None:
    org, posts = _setup(store)
    head = posts["soon"]
    store.add_posts([Post(id=new_id("post"), org_id=org.id, account_id=head.account_id,
                          platform="x", account_name="X", created_by=head.created_by,
                          text=f"reply {i}", created_at=head.created_at,
                          scheduled_at=head.scheduled_at, thread_id=head.id,
                          thread_position=i) for i in (2, 1)])
    for sort in PostSort:
        names = _names(store, org.id, sort=sort)
        at = names.index("reply 1")
        assert names[at:at + 2] == ["reply 1", "reply 2"], (sort, names)


def test_service_refuses_a_window_that_ends_before_it_starts(tmp_path: Any) -> None:
    core = Chat33(Settings(database_url=f"sqlite:///{tmp_path / 'c.db'}"), load_plugins=False)
    core.store.migrate()
    with pytest.raises(ValidationError) as caught:
        core.list_posts("org_x", since=T0, until=T0 - timedelta(seconds=1))
    assert [d.path for d in caught.value.details] == ["to"]
    with pytest.raises(ValidationError) as caught:
        core.list_posts("org_x", since=datetime(2026, 1, 1))
    assert [d.path for d in caught.value.details] == ["from"]
    assert core.list_posts("org_x", since=T0, until=T0).total == 0
    core.store.dispose()
