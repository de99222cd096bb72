"""Deleting Threads posts and refreshing the long-lived token, against the sandbox."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from chat33_core.errors import ReconnectRequired, TransientError
from chat33_core.models import Credentials, utcnow
from chat33_core.platforms import DeleteContext, RefreshContext

from .conftest import TOKEN, Sandbox, account


def delete(sandbox: Sandbox, ids: list[str]) -> None:
    sandbox.platform.delete(DeleteContext(account=account(),
                                          credentials=Credentials(access_token=TOKEN),
                                          http=sandbox.http, settings=sandbox.settings,
                                          external_ids=ids))


def test_deleting_a_thread_deletes_every_post(sandbox: Sandbox) -> None:
    result = sandbox.platform.publish(sandbox.context(["one", "two"]))
    delete(sandbox, [r.external_id for r in result.receipts])
    assert sandbox.posts() == []
    assert sandbox.state()["deletes"] == 2


def test_a_post_already_gone_counts_as_deleted(sandbox: Sandbox) -> None:
    result = sandbox.platform.publish(sandbox.context(["gone"]))
    delete(sandbox, [result.first.external_id])
    delete(sandbox, [result.first.external_id])
    assert sandbox.state()["deletes"] == 1


def test_the_daily_delete_limit_is_a_clear_wait(sandbox: Sandbox) -> None:
    sandbox.config(deleteLimit=1)
    result = sandbox.platform.publish(sandbox.context(["a", "b"]))
    with pytest.raises(TransientError, match="throttling") as caught:
        delete(sandbox, [r.external_id for r in result.receipts])
    assert caught.value.retry_after and caught.value.retry_after > 0
    assert len(sandbox.posts()) == 1


def refresh(sandbox: Sandbox, token: str) -> Credentials:
    credentials = Credentials(access_token=token, expires_at=utcnow() + timedelta(days=3),
                              issued_at=utcnow() - timedelta(days=57))
    return sandbox.platform.refresh_credentials(
        credentials, RefreshContext(account=account(), http=sandbox.http,
                                    settings=sandbox.settings))


def test_the_long_lived_token_is_refreshed_for_sixty_days(sandbox: Sandbox) -> None:
    fresh = refresh(sandbox, TOKEN)
    assert fresh.access_token != TOKEN and fresh.expires_at is not None
    assert fresh.expires_at - utcnow() > timedelta(days=59)
    [entry] = [t for t in sandbox.state()["tokens"] if t["token"] == fresh.access_token]
    assert entry["expiresAt"] > entry["issuedAt"]
    # the new token publishes
    sandbox.platform.publish(sandbox.context(["renewed"],
                                             credentials=Credentials(fresh.access_token)))
    assert len(sandbox.posts()) == 1


def test_a_refused_refresh_asks_for_a_reconnect(sandbox: Sandbox) -> None:
    sandbox.token(token="young", issuedAt=time.time() - 3600)
    with pytest.raises(ReconnectRequired, match="24 hours"):
        refresh(sandbox, "young")
    sandbox.token(token="revoked", revoked=True)
    with pytest.raises(ReconnectRequired):
        refresh(sandbox, "revoked")


def test_an_expired_token_is_not_sent_for_refresh(sandbox: Sandbox) -> None:
    credentials = Credentials(access_token=TOKEN, expires_at=utcnow() - timedelta(hours=1))
    with pytest.raises(ReconnectRequired, match="expired"):
        sandbox.platform.refresh_credentials(
            credentials, RefreshContext(account=account(), http=sandbox.http,
                                        settings=sandbox.settings))
    assert not any("refresh_access_token" in r for r in sandbox.state()["requests"])


def test_needs_refresh_only_near_expiry_and_after_a_day(sandbox: Sandbox) -> None:
    now = utcnow()
    near = Credentials(access_token="t", expires_at=now + timedelta(days=3),
                       issued_at=now - timedelta(days=57))
    far = Credentials(access_token="t", expires_at=now + timedelta(days=30),
                      issued_at=now - timedelta(days=30))
    young = Credentials(access_token="t", expires_at=now + timedelta(days=3),
                        issued_at=now - timedelta(hours=2))
    expired = Credentials(access_token="t", expires_at=now - timedelta(seconds=1))
    platform = sandbox.platform
    assert platform.needs_refresh(near, now) and not platform.needs_refresh(far, now)
    assert not platform.needs_refresh(young, now)
    assert not platform.needs_refresh(expired, now)
