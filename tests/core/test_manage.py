"""Managing what exists, in the core, on SQLite and PostgreSQL: removing and renaming
accounts, new passwords, the webhook secret's rotation with a grace period, and its
migration both ways."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import attrs
import pytest
import sqlalchemy as sa

from chat33_core.errors import NotFound, Unauthorized, ValidationError
from chat33_core.models import Credentials, Post, PostStatus, new_id, utcnow
from chat33_core.service import Chat33
from chat33_core.store import tables as t

from .test_store import _alembic

PASSWORD = "a long password"


@attrs.define
class World:
    core: Chat33
    org_id: str
    user_id: str
    account_id: str
    other_org_id: str
    other_account_id: str


@pytest.fixture
def world(db_url: str, settings_for: Callable[..., Any]) -> Iterator[World]:
    core = Chat33(settings_for(db_url))
    core.store.migrate()
    user = core.create_user("me@example.com", PASSWORD, "Acme")
    other = core.create_user("them@example.com", PASSWORD, "Rival")
    account = core.add_account(user.org_id, "x", "Acme on X", external_id="42",
                               credentials=Credentials(access_token="tok"))
    theirs = core.add_account(other.org_id, "x", "Rival on X",
                              credentials=Credentials(access_token="tok"))
    yield World(core, user.org_id, user.id, account.id, other.org_id, theirs.id)
    core.store.dispose()


def _posts(w: World, *statuses: PostStatus) -> list[Post]:
    now = utcnow()
    posts = [Post(id=new_id("post"), org_id=w.org_id, account_id=w.account_id, platform="x",
                  account_name="Acme on X", created_by=w.user_id, status=s, text=s.value,
                  published_at=now if s is PostStatus.PUBLISHED else None,
                  external_post_id="e1" if s is PostStatus.PUBLISHED else None)
             for s in statuses]
    return w.core.store.add_posts(posts)


# --- accounts -------------------------------------------------------------------------------


def test_removing_an_account_cancels_its_queued_posts_and_keeps_history(world: World) -> None:
    core, store = world.core, world.core.store
    posts = _posts(world, PostStatus.QUEUED, PostStatus.QUEUED, PostStatus.DRAFT,
                   PostStatus.PUBLISHED, PostStatus.FAILED)
    removal = core.remove_account(world.org_id, world.account_id)
    assert removal.cancelled_posts == sorted(p.id for p in posts[:2])
    assert removal.account.is_active is False
    assert [store.get_post(p.id).status for p in posts] == [
        PostStatus.CANCELLED, PostStatus.CANCELLED, PostStatus.DRAFT, PostStatus.PUBLISHED,
        PostStatus.FAILED]
    for post in posts[:2]:
        (log,) = [e for e in store.list_logs(post.id) if e.event == "cancelled"]
        assert log.message == "post cancelled: its X account 'Acme on X' was removed"
    # the tokens are gone; the account left the list, its published post is still there
    assert core.account_credentials(world.account_id) is None
    assert core.list_accounts(world.org_id) == []
    assert core.get_account(world.org_id, world.account_id).external_id == "42"
    published = store.get_post(posts[3].id, org_id=world.org_id)
    assert (published.status, published.external_post_id) == (PostStatus.PUBLISHED, "e1")
    assert core.list_posts(world.org_id, channel_id=world.account_id).total == 5
    # again: nothing more to do
    assert core.remove_account(world.org_id, world.account_id).cancelled_posts == []
    # its posts can no longer be retried
    from chat33_core.errors import Conflict

    with pytest.raises(Conflict, match="was removed"):
        core.retry_post(world.org_id, posts[4].id)


def test_removing_leaves_other_organizations_alone(world: World) -> None:
    core = world.core
    with pytest.raises(NotFound):
        core.remove_account(world.org_id, world.other_account_id)
    with pytest.raises(NotFound):
        core.remove_account(world.org_id, "chan_nope")
    assert core.account_credentials(world.other_account_id) is not None
    assert [a.id for a in core.list_accounts(world.other_org_id)] == [world.other_account_id]


def test_a_post_being_published_is_left_to_its_worker(world: World) -> None:
    (publishing,) = _posts(world, PostStatus.PUBLISHING)
    assert world.core.remove_account(world.org_id, world.account_id).cancelled_posts == []
    assert world.core.store.get_post(publishing.id).status is PostStatus.PUBLISHING


def test_renaming_an_account(world: World) -> None:
    core = world.core
    (post,) = _posts(world, PostStatus.QUEUED)
    renamed = core.rename_account(world.org_id, world.account_id, "  Acme, the X one  ")
    assert renamed.name == "Acme, the X one"
    assert core.list_accounts(world.org_id)[0].name == "Acme, the X one"
    assert core.store.get_post(post.id).account_name == "Acme on X"  # history unchanged
    for bad in ("", "   ", "n" * 201):
        with pytest.raises(ValidationError) as caught:
            core.rename_account(world.org_id, world.account_id, bad)
        assert [d.path for d in caught.value.details] == ["name"]
    with pytest.raises(NotFound):
        core.rename_account(world.org_id, world.other_account_id, "mine now")
    assert core.store.get_account(world.other_account_id).name == "Rival on X"


# --- users ----------------------------------------------------------------------------------


def test_a_new_password_signs_in_and_ends_the_old_sessions(world: World) -> None:
    core = world.core
    _, session, _ = core.login("me@example.com", PASSWORD)
    _, other_session, _ = core.login("them@example.com", PASSWORD)
    user, ended = core.set_password("ME@example.com", "another long one")
    assert (user.id, ended) == (world.user_id, 1)
    with pytest.raises(Unauthorized):
        core.authenticate_session(session)
    with pytest.raises(Unauthorized):
        core.login("me@example.com", PASSWORD)
    assert core.login("me@example.com", "another long one")[0].id == world.user_id
    assert core.authenticate_session(other_session).org_id == world.other_org_id
    with pytest.raises(ValidationError):
        core.set_password("me@example.com", "short")
    with pytest.raises(NotFound):
        core.set_password("nobody@example.com", "long enough")


def test_users_are_listed_per_organization(world: World) -> None:
    core = world.core
    assert [u.email for u in core.list_users()] == ["me@example.com", "them@example.com"]
    assert [u.email for u in core.list_users(world.other_org_id)] == ["them@example.com"]


# --- the webhook secret -----------------------------------------------------------------------


def test_a_rotation_keeps_the_old_secret_signing_for_the_grace_period(world: World) -> None:
    core = world.core
    first = core.webhook_secret(world.org_id)
    assert core.webhook_signing_secrets(world.org_id) == [first]
    assert core.webhook_secret_state(world.org_id).previous_secrets_expire_at == []
    before = utcnow()
    second = core.rotate_webhook_secret(world.org_id)
    assert second.secret != first and core.webhook_secret(world.org_id) == second.secret
    (until,) = second.previous_secrets_expire_at
    assert before + timedelta(hours=24) <= until <= utcnow() + timedelta(hours=24)
    assert core.webhook_signing_secrets(world.org_id) == [second.secret, first]
    # a second rotation within the grace: both older secrets still sign
    third = core.rotate_webhook_secret(world.org_id, grace=timedelta(hours=1))
    assert core.webhook_signing_secrets(world.org_id) == [third.secret, first, second.secret]
    assert core.webhook_secret_state(world.org_id) == third
    # another organization's secret is its own
    assert core.webhook_signing_secrets(world.other_org_id) == \
        [core.webhook_secret(world.other_org_id)]
    assert core.webhook_secret(world.other_org_id) not in (first, second.secret, third.secret)
    # grace 0 (a leaked secret): every older one stops at once
    fourth = core.rotate_webhook_secret(world.org_id, grace=timedelta(0))
    assert fourth.previous_secrets_expire_at == []
    assert core.webhook_signing_secrets(world.org_id) == [fourth.secret]


def test_an_expired_secret_no_longer_signs(world: World) -> None:
    core = world.core
    first = core.webhook_secret(world.org_id)
    core.rotate_webhook_secret(world.org_id, grace=timedelta(seconds=60))
    with core.store.begin() as c:  # the grace period ran out
        c.execute(t.retired_webhook_secrets.update().values(
            expires_at=utcnow() - timedelta(seconds=1)))
    assert first not in core.webhook_signing_secrets(world.org_id)
    assert core.webhook_secret_state(world.org_id).previous_secrets_expire_at == []
    # the next rotation sweeps it away
    core.rotate_webhook_secret(world.org_id)
    with core.store.read() as c:
        assert c.execute(sa.select(sa.func.count()).select_from(
            t.retired_webhook_secrets)).scalar() == 1


@pytest.mark.parametrize("grace", [timedelta(seconds=-1), timedelta(days=7, seconds=1)])
def test_a_grace_out_of_range_is_refused(world: World, grace: timedelta) -> None:
    first = world.core.webhook_secret(world.org_id)
    with pytest.raises(ValidationError) as caught:
        world.core.rotate_webhook_secret(world.org_id, grace=grace)
    assert [d.path for d in caught.value.details] == ["graceSeconds"]
    assert world.core.webhook_secret(world.org_id) == first


def test_rotating_an_unknown_organization_is_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        world.core.rotate_webhook_secret("org_nope")


def test_the_retired_secrets_migrate_both_ways(empty_db_url: str,
                                                settings_for: Callable[..., Any]) -> None:
    core = Chat33(settings_for(empty_db_url), load_plugins=False)
    _alembic(core.store, "upgrade", "0003_partial_post_indexes")
    org = core.create_user("me@example.com", PASSWORD, "Acme").org_id
    with core.store.begin() as c:  # a secret made before 0004
        c.execute(t.organizations.update().values(
            webhook_secret_enc=core.vault.encrypt("whsec_b2xk")))
    core.store.migrate()
    assert core.webhook_signing_secrets(org) == ["whsec_b2xk"]
    rotated = core.rotate_webhook_secret(org)
    assert core.webhook_signing_secrets(org) == [rotated.secret, "whsec_b2xk"]

    _alembic(core.store, "downgrade", "0003_partial_post_indexes")
    with core.store.engine.connect() as conn:
        assert "retired_webhook_secrets" not in sa.inspect(conn).get_table_names()
        current = conn.execute(sa.select(t.organizations.c.webhook_secret_enc)).scalar()
    assert core.vault.decrypt(current) == rotated.secret  # the current secret stays
    core.store.migrate()
    assert core.webhook_signing_secrets(org) == [rotated.secret]
    core.store.dispose()
