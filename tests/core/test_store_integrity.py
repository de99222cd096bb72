"""A unique or foreign key violation of any table leaves the store as a
:class:`Conflict` naming the table (and the columns when the driver says them), never as
a driver's or SQLAlchemy's error, and never quoting SQL or the values; a value the
database cannot hold is a :class:`ValidationError`. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import attrs
import pytest

from chat33_core.errors import Conflict, ValidationError
from chat33_core.models import (
    Account,
    ApiKey,
    LogEvent,
    MediaAsset,
    Organization,
    Post,
    User,
    new_id,
    utcnow,
)
from chat33_core.store import Store


def _org_user(store: Store) -> tuple[Organization, User]:
    org = store.add_org(Organization.new("Acme"))
    user = store.add_user(User(id=new_id("user"), org_id=org.id, email="me@ex.com",
                               password_hash="hash"))
    return org, user


def _account(org_id: str) -> Account:
    return Account(id=new_id("chan"), org_id=org_id, platform="x", name="X main")


def _post(org_id: str, account: Account, user_id: str) -> Post:
    return Post(id=new_id("post"), org_id=org_id, account_id=account.id, platform="x",
                account_name=account.name, created_by=user_id)


def _refused(caught: pytest.ExceptionInfo[Conflict], *words: str) -> None:
    message = caught.value.message
    for word in words:
        assert word in message, message
    assert "INSERT" not in message and "UPDATE" not in message
    # the driver's error stays behind it for the logs, not in the message
    assert caught.value.__cause__ is not None
    assert "IntegrityError" in {c.__name__ for c in type(caught.value.__cause__).__mro__}


def test_a_duplicate_organization_name_is_a_conflict(store: Store) -> None:
    store.add_org(Organization.new("Acme"))
    with pytest.raises(Conflict) as caught:
        store.add_org(Organization.new("Acme"))
    assert caught.value.message == (
        "organizations (name): a row with the same value already exists")
    _refused(caught)


def test_a_duplicate_api_key_hash_is_a_conflict(store: Store) -> None:
    org, user = _org_user(store)
    key = store.add_api_key(ApiKey(id=new_id("key"), org_id=org.id, user_id=user.id,
                                   name="ci", key_prefix="sk_live_ab", key_hash="h" * 64))
    with pytest.raises(Conflict) as caught:
        store.add_api_key(attrs.evolve(key, id=new_id("key")))
    _refused(caught, "api_keys (key_hash)", "already exists")
    assert "h" * 64 not in caught.value.message


def test_an_account_of_an_unknown_organization_is_a_conflict(store: Store) -> None:
    with pytest.raises(Conflict) as caught:
        store.add_account(_account("org_gone"), credentials_enc=None)
    _refused(caught, "refers to a row that does not exist")
    assert "org_gone" not in caught.value.message


def test_a_post_of_an_unknown_account_is_a_conflict_on_every_insert_path(
        store: Store) -> None:
    org, user = _org_user(store)
    ghost = _account(org.id)  # never stored
    with pytest.raises(Conflict) as caught:
        store.add_posts([_post(org.id, ghost, user.id)])
    _refused(caught, "refers to a row that does not exist")
    # the counted insert of the API (group commit on the driver's connection)
    with pytest.raises(Conflict) as caught:
        store.add_posts_counted("posts:acme", 1, timedelta(hours=1),
                                [_post(org.id, ghost, user.id)])
    _refused(caught, "refers to a row that does not exist")
    # the failed insert did not use the allowance of 1
    account = store.add_account(_account(org.id), credentials_enc=None)
    remaining, _ = store.add_posts_counted("posts:acme", 1, timedelta(hours=1),
                                           [_post(org.id, account, user.id)])
    assert remaining == 0


def test_a_session_of_an_unknown_user_is_a_conflict(store: Store) -> None:
    with pytest.raises(Conflict) as caught:
        store.add_session("s" * 64, "user_gone", "c" * 64, utcnow() + timedelta(hours=1))
    _refused(caught, "refers to a row that does not exist")


def test_a_duplicate_media_asset_is_a_conflict(store: Store) -> None:
    org, _ = _org_user(store)
    asset = MediaAsset(id=new_id("med"), org_id=org.id, name="a.png", path="a.png",
                       url="http://127.0.0.1/a.png", kind="image", content_type="image/png",
                       size=3, sha256="0" * 64)
    store.add_media(asset)
    with pytest.raises(Conflict) as caught:
        store.add_media(asset)
    _refused(caught, "media_assets (id)", "already exists")


def test_a_log_without_a_message_is_a_conflict_naming_the_column(store: Store) -> None:
    org, user = _org_user(store)
    account = store.add_account(_account(org.id), credentials_enc=None)
    (post,) = store.add_posts([_post(org.id, account, user.id)])
    bad = LogEvent(id=None, post_id=post.id, event="x", message=None)  # type: ignore[arg-type]
    with pytest.raises(Conflict) as caught:
        store.add_log(bad)
    _refused(caught, "post_logs (message)", "missing or not allowed")


def test_a_value_too_long_for_its_column_is_a_validation_error(store: Store) -> None:
    org, _ = _org_user(store)
    account = store.add_account(_account(org.id), credentials_enc=None)
    long_name = "n" * 201  # accounts.name holds 200 characters
    if not store.is_postgres:  # SQLite stores any length
        assert store.rename_account(org.id, account.id, long_name).name == long_name
        return
    with pytest.raises(ValidationError) as caught:
        store.rename_account(org.id, account.id, long_name)
    assert "too long or out of range" in caught.value.message
    assert long_name not in caught.value.message
    assert store.get_account(account.id).name == "X main"
