"""Mastodon's error answers mapped to what the worker must do, over real HTTP
(platforms-more.md §2.7)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from chat33_mastodon import MastodonPlatform
from chat33_mastodon.api import RateLimitedByMastodon, reset_wait

from chat33_core.config import Settings
from chat33_core.errors import PermanentError, ReconnectRequired, TransientError, UnknownOutcome
from chat33_core.models import Credentials
from chat33_core.platforms import MediaFile
from chat33_core.testing import publish_context

from .conftest import Sandbox

Media = Callable[[str], MediaFile]
STATUSES = "^/api/v1/statuses$"


def test_an_invalid_token_means_connect_again(sandbox: Sandbox) -> None:
    ctx = sandbox.context(["never"], credentials=Credentials(access_token="revoked"))
    with pytest.raises(ReconnectRequired) as caught:
        sandbox.platform.publish(ctx)
    assert caught.value.platform_code == "401"
    assert "The access token is invalid" in caught.value.message


def test_403_is_permanent_with_mastodon_s_message(sandbox: Sandbox) -> None:
    sandbox.fault(method="POST", path=STATUSES, status=403,
                  body={"error": "Your login is missing a confirmed e-mail address"})
    with pytest.raises(PermanentError) as caught:
        sandbox.platform.publish(sandbox.context(["no"]))
    assert caught.value.platform_code == "403"
    assert "confirmed e-mail" in caught.value.message


def test_a_reply_to_a_missing_status_is_404_permanent(sandbox: Sandbox) -> None:
    ctx = sandbox.context(["orphan"], platform_config={"mastodon": {"inReplyToId": "42"}})
    with pytest.raises(PermanentError) as caught:
        sandbox.platform.publish(ctx)
    assert caught.value.platform_code == "404" and "Record not found" in caught.value.message


def test_422_validation_is_permanent_with_the_message(sandbox: Sandbox) -> None:
    sandbox.config(max_characters=10)
    with pytest.raises(PermanentError) as caught:
        sandbox.platform.publish(sandbox.context(["eleven char"]))
    assert caught.value.platform_code == "422"
    assert "Text character limit of 10 exceeded" in caught.value.message
    assert sandbox.statuses() == []
    # nothing is left "sent": a later attempt is a fresh request
    sandbox.config(max_characters=500)


def test_a_bad_file_is_refused_at_upload(sandbox: Sandbox, tmp_path: Path,
                                         media: Media) -> None:
    photo = media("photo.jpg")
    garbage = tmp_path / "not.jpg"
    garbage.write_bytes(b"this is text, not a picture" * 10)
    bad = MediaFile(path=garbage, info=photo.info, url=photo.url, name="not.jpg")
    with pytest.raises(PermanentError) as caught:
        sandbox.platform.publish(sandbox.context(["x"], media=[[bad]]))
    assert "File content type is invalid" in caught.value.message


def test_429_waits_until_the_iso_reset(sandbox: Sandbox) -> None:
    sandbox.config(rate_limit=2, rate_period_s=300)
    sandbox.platform.publish(sandbox.context(["one"]))  # instance is free; status uses 1
    sandbox.platform.publish(sandbox.context(["two"]))
    with pytest.raises(RateLimitedByMastodon) as caught:
        sandbox.platform.publish(sandbox.context(["three"]))
    assert caught.value.retry_after is not None and 1 <= caught.value.retry_after <= 300
    assert len(sandbox.statuses()) == 2
    sandbox.advance(301)  # the next window
    sandbox.platform.publish(sandbox.context(["three"]))
    assert len(sandbox.statuses()) == 3


def test_the_reset_header_is_an_iso_instant_not_epoch_seconds() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    later = (now + timedelta(seconds=90)).isoformat().replace("+00:00", "Z")
    assert reset_wait({"X-RateLimit-Reset": later}, now) == 90.0
    assert reset_wait({"X-RateLimit-Reset": "1767225690"}, now) is None
    assert reset_wait({}, now) is None
    assert reset_wait({"X-RateLimit-Reset": now.isoformat()}, now) == 1.0


def test_a_429_without_reset_still_waits(sandbox: Sandbox) -> None:
    sandbox.fault(method="POST", path=STATUSES, status=429,
                  body={"error": "Too many requests"})
    with pytest.raises(RateLimitedByMastodon) as caught:
        sandbox.platform.publish(sandbox.context(["later"]))
    assert caught.value.retry_after == 60.0


def test_the_media_bucket_is_separate(sandbox: Sandbox, media: Media) -> None:
    sandbox.config(media_limit=1)
    sandbox.platform.publish(sandbox.context(["one"], media=[[media("photo.jpg")]]))
    with pytest.raises(RateLimitedByMastodon):
        sandbox.platform.publish(sandbox.context(["two"], media=[[media("photo.jpg")]]))
    sandbox.platform.publish(sandbox.context(["text still goes"]))


def test_503_is_transient(sandbox: Sandbox) -> None:
    sandbox.fault(method="POST", path=STATUSES, status=503,
                  body={"error": "Service Unavailable"})
    with pytest.raises(TransientError) as caught:
        sandbox.platform.publish(sandbox.context(["soon"]))
    assert not isinstance(caught.value, UnknownOutcome)
    assert caught.value.platform_code == "503"
    sandbox.platform.publish(sandbox.context(["soon"]))


def test_a_500_on_upload_is_transient_and_on_the_status_unknown(sandbox: Sandbox,
                                                                media: Media) -> None:
    sandbox.fault(method="POST", path="^/api/v2/media$", status=500,
                  body={"error": "Error processing thumbnail for uploaded media"})
    with pytest.raises(TransientError) as upload:
        sandbox.platform.publish(sandbox.context(["x"], media=[[media("photo.jpg")]]))
    assert not isinstance(upload.value, UnknownOutcome)
    sandbox.fault(method="POST", path=STATUSES, status=502, body={"error": "Bad Gateway"})
    with pytest.raises(UnknownOutcome):
        sandbox.platform.publish(sandbox.context(["y"]))


def test_media_still_processing_is_transient(sandbox: Sandbox, media: Media) -> None:
    sandbox.fault(method="POST", path=STATUSES, status=422, body={
        "error": "Cannot attach files that have not finished processing. Try again in a "
                 "moment!"})
    ctx = sandbox.context(["x"], media=[[media("photo.jpg")]])
    with pytest.raises(TransientError) as caught:
        sandbox.platform.publish(ctx)
    assert caught.value.platform_code == "processing" and caught.value.retry_after == 5.0
    sandbox.platform.publish(ctx)  # the same attachment, polled again, then attached
    assert len(sandbox.state()["media"]) == 1 and len(sandbox.statuses()) == 1


def test_a_server_that_cannot_be_reached_is_transient() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = Settings.from_env({"CHAT33_MASTODON_API_BASE": f"http://127.0.0.1:{port}"})
    platform = MastodonPlatform(settings)
    ctx = publish_context(platform, settings=settings, http=httpx.Client(timeout=2))
    with pytest.raises(TransientError) as caught:
        platform.publish(ctx)
    assert caught.value.platform_code == "network"
