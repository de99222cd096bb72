"""App-password sessions (createSession / refreshSession) and deletion on Bluesky."""

from __future__ import annotations

from datetime import timedelta

import attrs
import httpx
import pytest
from chat33_bluesky import BlueskyPlatform
from chat33_bluesky.session import jwt_expiry

from chat33_core.config import Settings
from chat33_core.errors import PermanentError, ReconnectRequired
from chat33_core.models import Credentials, utcnow
from chat33_core.platforms import DeleteContext, RefreshContext
from chat33_core.testing import PlatformContract

from .conftest import DID, HANDLE, PASSWORD, Sandbox, account


class TestContract(PlatformContract):
    platform_class = BlueskyPlatform


def refresh(sandbox: Sandbox, credentials: Credentials, **changes: object) -> Credentials:
    return sandbox.platform.refresh_credentials(credentials, RefreshContext(
        account=account(**changes), http=sandbox.http, settings=sandbox.settings))


# --- sessions ------------------------------------------------------------------------------


def test_the_app_password_opens_a_session_on_the_first_refresh(sandbox: Sandbox) -> None:
    added = Credentials(access_token=PASSWORD)  # what `accounts add --token` stores
    assert sandbox.platform.needs_refresh(added)
    session = refresh(sandbox, added)
    assert session.extra["appPassword"] == PASSWORD
    assert session.extra["did"] == DID and session.extra["handle"] == HANDLE
    assert session.extra["pds"] == f"{sandbox.url}/pds"  # from the DID document
    assert session.access_token.count(".") == 2 and session.refresh_token
    assert session.expires_at is not None
    assert timedelta(minutes=119) < session.expires_at - utcnow() <= timedelta(minutes=120)
    assert not sandbox.platform.needs_refresh(session)
    assert sandbox.state()["sessions"] == {"created": 1, "refreshed": 0}


def test_the_session_is_refreshed_15_minutes_before_it_expires(sandbox: Sandbox) -> None:
    session = sandbox.login()
    assert session.expires_at is not None
    assert not sandbox.platform.needs_refresh(session, session.expires_at
                                              - timedelta(minutes=16))
    assert sandbox.platform.needs_refresh(session, session.expires_at - timedelta(minutes=14))


def test_refresh_rotates_the_refresh_jwt_and_keeps_the_app_password(sandbox: Sandbox) -> None:
    first = sandbox.login()
    second = refresh(sandbox, first)
    assert second.refresh_token != first.refresh_token
    assert second.access_token != first.access_token
    assert second.extra["appPassword"] == PASSWORD
    assert sandbox.state()["sessions"] == {"created": 1, "refreshed": 1}
    # the rotated-out refresh JWT is refused by Bluesky ...
    answer = sandbox.http.post(f"{sandbox.url}/pds/xrpc/com.atproto.server.refreshSession",
                               headers={"Authorization": f"Bearer {first.refresh_token}"})
    assert answer.status_code == 400 and answer.json()["error"] == "ExpiredToken"
    # ... so refreshing from it again (another worker's stale copy) logs in anew
    third = refresh(sandbox, first)
    assert third.extra["did"] == DID
    assert sandbox.state()["sessions"] == {"created": 2, "refreshed": 1}


def test_an_expired_refresh_jwt_falls_back_to_the_app_password(sandbox: Sandbox) -> None:
    old = sandbox.login()
    sandbox.advance(91 * 86400)
    fresh = refresh(sandbox, old)
    assert fresh.expires_at is not None and fresh.expires_at > utcnow() + timedelta(days=90)
    assert sandbox.state()["sessions"]["created"] == 2


def test_a_refused_app_password_means_reconnect(sandbox: Sandbox) -> None:
    with pytest.raises(ReconnectRequired) as caught:
        sandbox.login(password="wrong-wrong-wrong-wrong")
    assert caught.value.platform_code == "AuthenticationRequired"
    assert "app password" in caught.value.message


def test_a_revoked_app_password_means_reconnect_once_the_session_ends(sandbox: Sandbox) -> None:
    session = sandbox.login()
    sandbox.add_account(did=DID, handle=HANDLE, password="a-new-password")
    sandbox.advance(91 * 86400)  # the refresh JWT is gone too
    with pytest.raises(ReconnectRequired):
        refresh(sandbox, session)


def test_the_login_is_by_the_account_s_did_so_another_s_password_is_refused(
        sandbox: Sandbox) -> None:
    sandbox.add_account(did="did:plc:someoneelse234567abcdefg", handle="else.test",
                        password="else-pass")
    # the handle names the other account, but the DID (external id) is ours
    with pytest.raises(ReconnectRequired) as caught:
        refresh(sandbox, Credentials(access_token="else-pass"), username="else.test")
    assert caught.value.platform_code == "AuthenticationRequired"


def test_an_account_without_did_or_handle_cannot_log_in(sandbox: Sandbox) -> None:
    with pytest.raises(ReconnectRequired):
        refresh(sandbox, Credentials(access_token=PASSWORD), username=None, external_id=None)


def test_a_handle_alone_is_enough_to_log_in(sandbox: Sandbox) -> None:
    session = refresh(sandbox, Credentials(access_token=PASSWORD), external_id=None)
    assert session.extra["did"] == DID


@pytest.mark.parametrize(("token", "expected"), [
    ("a.eyJleHAiOjE4MDAwMDAwMDB9.c", 1_800_000_000),   # {"exp":1800000000}
    ("not-a-jwt", None),
    ("a.!!!.c", None),
    ("a.eyJzdWIiOiJ4In0.c", None),                     # no exp
])
def test_jwt_expiry_reads_exp_without_trusting_anything_else(token: str,
                                                             expected: int | None) -> None:
    found = jwt_expiry(token)
    assert (found.timestamp() if found else None) == expected


# --- delete ---------------------------------------------------------------------------------


def delete_context(sandbox: Sandbox, ids: list[str], credentials: Credentials
                   ) -> DeleteContext:
    return DeleteContext(account=account(), credentials=credentials, http=sandbox.http,
                         settings=sandbox.settings, external_ids=ids)


def test_deleting_a_thread_deletes_every_post_replies_first(sandbox: Sandbox) -> None:
    ctx = sandbox.context(["1", "2", "3"])
    result = sandbox.platform.publish(ctx)
    ids = [r.external_id for r in result.receipts]
    sandbox.platform.delete(delete_context(sandbox, ids, ctx.credentials))
    assert sandbox.posts() == []
    deletes = [c for c in sandbox.state()["calls"] if c[1] == "com.atproto.repo.deleteRecord"]
    assert deletes == [["pds", "com.atproto.repo.deleteRecord"]] * 3


def test_deleting_what_is_already_gone_succeeds(sandbox: Sandbox) -> None:
    ctx = sandbox.context(["gone"])
    ids = [sandbox.platform.publish(ctx).first.external_id]
    sandbox.platform.delete(delete_context(sandbox, ids, ctx.credentials))
    sandbox.platform.delete(delete_context(sandbox, ids, ctx.credentials))
    assert sandbox.posts() == []


def test_deleting_with_an_expired_session_logs_in_for_the_deletion_only(
        sandbox: Sandbox) -> None:
    ctx = sandbox.context(["old post"])
    ids = [sandbox.platform.publish(ctx).first.external_id]
    sandbox.advance(3 * 3600)  # the access JWT has expired; the stored session is kept
    stale = attrs.evolve(ctx.credentials, expires_at=utcnow() - timedelta(hours=1))
    sandbox.platform.delete(delete_context(sandbox, ids, stale))
    assert sandbox.posts() == []
    # the stored refresh JWT was not rotated by the deletion: it still refreshes
    assert refresh(sandbox, ctx.credentials).extra["did"] == DID
    assert sandbox.state()["sessions"] == {"created": 2, "refreshed": 1}


def test_a_token_refused_during_deletion_is_retried_with_a_new_login(sandbox: Sandbox) -> None:
    ctx = sandbox.context(["post"])
    ids = [sandbox.platform.publish(ctx).first.external_id]
    sandbox.fault(method="POST", path="deleteRecord", status=400,
                  body={"error": "ExpiredToken", "message": "Token has expired"})
    sandbox.platform.delete(delete_context(sandbox, ids, ctx.credentials))
    assert sandbox.posts() == []


def test_an_id_that_is_not_a_post_uri_is_reported_after_the_others(sandbox: Sandbox) -> None:
    ctx = sandbox.context(["post"])
    good = sandbox.platform.publish(ctx).first.external_id
    with pytest.raises(PermanentError) as caught:
        sandbox.platform.delete(delete_context(sandbox, ["12345", good], ctx.credentials))
    assert "12345" in caught.value.message
    assert sandbox.posts() == []


def test_default_hosts_are_bluesky_s_own() -> None:
    platform = BlueskyPlatform(Settings.from_env({}))
    assert platform.api_base() == "https://bsky.social"
    assert platform.video_base() == "https://video.bsky.app"
    local = BlueskyPlatform(Settings.from_env({"CHAT33_BLUESKY_API_BASE": "http://127.0.0.1:9"}))
    assert local.video_base() == "http://127.0.0.1:9"


def test_the_sandbox_refuses_requests_without_a_token(sandbox: Sandbox) -> None:
    answer = httpx.post(f"{sandbox.url}/pds/xrpc/com.atproto.repo.createRecord", json={})
    assert answer.status_code == 401 and answer.json()["error"] == "AuthMissing"
