"""Deleting Telegram messages (within 48 hours) and checking a bot token with getMe."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from chat33_telegram.sandbox import DEMO_BOT, OLD_GROUP

from chat33_core.errors import NotSupported, PermanentError, ReconnectRequired
from chat33_core.models import Account, Credentials, utcnow
from chat33_core.platforms import DeleteContext, MediaFile, RefreshContext

from .conftest import TOKEN, Sandbox, account


def delete(sandbox: Sandbox, ids: list[str], who: Account | None = None,
           events: list[str] | None = None) -> None:
    def log(event: str, message: str, **data: Any) -> None:
        if events is not None:
            events.append(message)

    sandbox.platform.delete(DeleteContext(
        account=who or account(), credentials=Credentials(access_token=TOKEN),
        http=sandbox.http, settings=sandbox.settings, external_ids=ids, log=log))


def test_a_thread_with_an_album_is_deleted(sandbox: Sandbox,
                                           media: Callable[[str], MediaFile]) -> None:
    result = sandbox.platform.publish(sandbox.context(
        ["text", "album"], media=[[], [media("photo.jpg"), media("photo2.png")]]))
    assert len(sandbox.messages()) == 3
    delete(sandbox, [r.external_id for r in result.receipts])
    assert sandbox.messages() == []


def test_a_message_already_gone_counts_as_deleted(sandbox: Sandbox) -> None:
    result = sandbox.platform.publish(sandbox.context(["once"]))
    events: list[str] = []
    delete(sandbox, [result.first.external_id])
    delete(sandbox, [result.first.external_id], events=events)
    assert events == ["message(s) 1 were already gone"]


def test_after_48_hours_deletion_is_not_supported(sandbox: Sandbox) -> None:
    result = sandbox.platform.publish(sandbox.context(["old news"]))
    sandbox.advance(48 * 3600 + 60)
    with pytest.raises(NotSupported) as caught:
        delete(sandbox, [result.first.external_id])
    assert caught.value.http_status == 409
    assert "48 hours" in caught.value.message
    assert len(sandbox.messages()) == 1


def test_within_48_hours_deletion_works(sandbox: Sandbox) -> None:
    result = sandbox.platform.publish(sandbox.context(["recent"]))
    sandbox.advance(47 * 3600)
    delete(sandbox, [result.first.external_id])
    assert sandbox.messages() == []


def test_deletion_follows_a_migrated_group(sandbox: Sandbox) -> None:
    old = account(external_id=str(OLD_GROUP["id"]))
    result = sandbox.platform.publish(sandbox.context(["moved"], account=old))
    delete(sandbox, [result.first.external_id], who=old)
    assert sandbox.messages(OLD_GROUP["migrated_to"]) == []


def test_a_malformed_id_is_refused(sandbox: Sandbox) -> None:
    with pytest.raises(PermanentError, match="not a Telegram message id"):
        delete(sandbox, ["at://nope"])


def test_get_me_checks_the_token_and_notes_the_bot(sandbox: Sandbox) -> None:
    ctx = RefreshContext(account=account(), http=sandbox.http, settings=sandbox.settings)
    # whatever expiry the stored credentials carry, a bot token does not expire
    credentials = Credentials(access_token=TOKEN, refresh_token="r",
                              expires_at=utcnow() + timedelta(minutes=1))
    assert not sandbox.platform.needs_refresh(credentials)
    checked = sandbox.platform.refresh_credentials(credentials, ctx)
    assert checked.access_token == TOKEN
    assert checked.expires_at is None and checked.refresh_token is None
    assert checked.extra["botUsername"] == DEMO_BOT["username"]
    sandbox.bot(token=TOKEN, revoked=True)
    with pytest.raises(ReconnectRequired, match="revoked"):
        sandbox.platform.refresh_credentials(credentials, ctx)
