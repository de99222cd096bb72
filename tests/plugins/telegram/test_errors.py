"""Telegram's error envelope mapped to chat33's error classes, each over real HTTP."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from chat33_telegram.api import RateLimitedByTelegram

from chat33_core.errors import (
    PermanentError,
    QuotaExceeded,
    ReconnectRequired,
    TransientError,
    UnknownOutcome,
)
from chat33_core.models import Credentials
from chat33_core.platforms import MediaFile
from chat33_core.testing import RecordingSleep

from .conftest import TOKEN, Sandbox, account


def flood(seconds: int) -> dict[str, object]:
    return {"ok": False, "error_code": 429,
            "description": f"Too Many Requests: retry after {seconds}",
            "parameters": {"retry_after": seconds}}


def test_a_short_flood_wait_is_slept_through(sandbox: Sandbox) -> None:
    sandbox.fault(method="POST", path="sendMessage", status=429, body=flood(3))
    sleep = RecordingSleep()
    ctx = sandbox.context(["patient"])
    ctx.sleep = sleep
    sandbox.platform.publish(ctx)
    assert sleep.waits == [3]
    assert [m["text"] for m in sandbox.messages()] == ["patient"]


def test_a_long_flood_wait_is_a_retry_after_that_wait(sandbox: Sandbox) -> None:
    sandbox.fault(method="POST", path="sendMessage", status=429, body=flood(35))
    ctx = sandbox.context(["later"])
    with pytest.raises(RateLimitedByTelegram) as caught:
        sandbox.platform.publish(ctx)
    assert isinstance(caught.value, TransientError)
    assert caught.value.retry_after == 35
    assert ctx.checkpoints.load()["sending"] is None  # refused: nothing was sent
    assert sandbox.messages() == []


def test_the_sandbox_flood_control_is_honoured_and_the_thread_resumes(
        sandbox: Sandbox) -> None:
    sandbox.config(flood_limit=2, flood_window_s=60)
    ctx = sandbox.context(["1", "2", "3"])
    with pytest.raises(RateLimitedByTelegram) as caught:
        sandbox.platform.publish(ctx)
    assert 55 <= (caught.value.retry_after or 0) <= 60
    assert [r.external_id for r in caught.value.posted] == ["1", "2"]
    sandbox.advance(61)
    result = sandbox.platform.publish(ctx)
    assert [r.external_id for r in result.receipts] == ["1", "2", "3"]
    assert [m["text"] for m in sandbox.messages()] == ["1", "2", "3"]


def test_an_hours_long_flood_wait_defers_the_post(sandbox: Sandbox) -> None:
    sandbox.fault(method="POST", path="sendMessage", status=429, body=flood(7200))
    with pytest.raises(QuotaExceeded) as caught:
        sandbox.platform.publish(sandbox.context(["tomorrow"]))
    assert caught.value.retry_at is not None


def test_a_revoked_token_asks_for_reconnect(sandbox: Sandbox) -> None:
    sandbox.bot(token=TOKEN, revoked=True)
    with pytest.raises(ReconnectRequired) as caught:
        sandbox.platform.publish(sandbox.context(["never"]))
    assert caught.value.platform_code == "401"
    assert "BotFather" in caught.value.message
    assert TOKEN not in caught.value.message


def test_a_kicked_bot_asks_for_reconnect(sandbox: Sandbox) -> None:
    from .conftest import CHANNEL_ID

    sandbox.chat(id=CHANNEL_ID, kicked=True)
    with pytest.raises(ReconnectRequired) as caught:
        sandbox.platform.publish(sandbox.context(["never"]))
    assert caught.value.platform_code == "403"
    assert "kicked" in caught.value.message


def test_bad_request_is_permanent_with_the_description(sandbox: Sandbox) -> None:
    ctx = sandbox.context(["lost"], account=account(external_id="@nosuchchannel"))
    with pytest.raises(PermanentError) as caught:
        sandbox.platform.publish(ctx)
    assert caught.value.platform_code == "400"
    assert "chat not found" in caught.value.message
    assert ctx.checkpoints.load()["sending"] is None


def test_the_sandbox_refuses_what_validation_refuses(sandbox: Sandbox,
                                                     media: Callable[[str], MediaFile]) -> None:
    # the plugin's limits and the platform's agree: a caption over 1,024 units is a 400
    with pytest.raises(PermanentError, match="caption is too long"):
        sandbox.platform.publish(sandbox.context(["😀" * 513], media=[[media("photo.jpg")]]))
    with pytest.raises(PermanentError, match="message is too long"):
        sandbox.platform.publish(sandbox.context(["a" * 4097]))


def test_a_5xx_on_a_send_is_an_unknown_outcome(sandbox: Sandbox) -> None:
    sandbox.fault(method="POST", path="sendMessage", status=502, after_body=True,
                  body={"ok": False, "error_code": 502, "description": "Bad Gateway"})
    ctx = sandbox.context(["maybe"])
    with pytest.raises(UnknownOutcome):
        sandbox.platform.publish(ctx)
    assert ctx.checkpoints.load()["sending"] == {"index": 0}


def test_a_5xx_elsewhere_is_transient(sandbox: Sandbox) -> None:
    from chat33_core.platforms import RefreshContext

    sandbox.fault(method="POST", path="getMe", status=500,
                  body={"ok": False, "error_code": 500, "description": "Internal Server Error"})
    with pytest.raises(TransientError) as caught:
        sandbox.platform.refresh_credentials(
            Credentials(access_token=TOKEN),
            RefreshContext(account=account(), http=sandbox.http, settings=sandbox.settings))
    assert not isinstance(caught.value, UnknownOutcome)
    assert caught.value.platform_code == "500"


def test_no_connection_is_transient_and_nothing_is_pending(sandbox: Sandbox) -> None:
    from chat33_telegram import TelegramPlatform

    from chat33_core.config import Settings

    closed = Settings.from_env({"CHAT33_TELEGRAM_API_BASE": "http://127.0.0.1:9"})
    ctx = sandbox.context(["nowhere"])
    with pytest.raises(TransientError) as caught:
        TelegramPlatform(closed).publish(ctx)
    assert caught.value.platform_code == "network"
    assert not isinstance(caught.value, UnknownOutcome)
    assert ctx.checkpoints.load()["sending"] is None


def test_a_404_means_the_token_is_unknown(sandbox: Sandbox) -> None:
    # the Bot API answers 404 for a token it does not know on some routes
    sandbox.fault(method="POST", path="sendMessage", status=404,
                  body={"ok": False, "error_code": 404, "description": "Not Found"})
    with pytest.raises(ReconnectRequired) as caught:
        sandbox.platform.publish(sandbox.context(["never"]))
    assert caught.value.platform_code == "404"
    assert sandbox.messages() == []
