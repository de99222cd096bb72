"""LinkedIn's error answers become the chat33 errors that tell the worker what to do;
token refresh and reconnect."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from chat33_linkedin import LinkedInPlatform

from chat33_core.config import Settings
from chat33_core.errors import (
    CredentialsExpired,
    PermanentError,
    QuotaExceeded,
    ReconnectRequired,
    TransientError,
    UnknownOutcome,
)
from chat33_core.models import Credentials, utcnow
from chat33_core.platforms import MediaFile, RefreshContext

from .conftest import Sandbox, account

Media = Callable[[str], MediaFile]
POSTS = "^/rest/posts$"


def test_an_invalid_token_asks_for_reconnect(sandbox: Sandbox) -> None:
    ctx = sandbox.context(credentials=Credentials(access_token="revoked"))
    with pytest.raises(ReconnectRequired, match="Invalid access token") as info:
        sandbox.platform.publish(ctx)
    assert info.value.platform_code == "INVALID_ACCESS_TOKEN"


def test_an_expired_token_is_refreshed_first(sandbox: Sandbox) -> None:
    sandbox.add_token("old-token", expiresIn=-1)
    with pytest.raises(CredentialsExpired):
        sandbox.platform.publish(sandbox.context(
            credentials=Credentials(access_token="old-token")))


def test_a_page_the_member_does_not_administer_is_a_permission_error(
        sandbox: Sandbox) -> None:
    ctx = sandbox.context(account=account(external_id="urn:li:organization:999"))
    with pytest.raises(PermanentError, match="w_organization_social") as info:
        sandbox.platform.publish(ctx)
    assert info.value.platform_code == "ACCESS_DENIED"


def test_a_refused_post_is_permanent_with_linkedins_message(sandbox: Sandbox) -> None:
    sandbox.config(max_characters=10)
    with pytest.raises(PermanentError, match="length exceeds 10"):
        sandbox.platform.publish(sandbox.context(["longer than ten"]))
    sandbox.fault(method="POST", path=POSTS, status=400,
                  body={"status": 400, "code": "ILLEGAL_ARGUMENT", "message": "bad field"})
    with pytest.raises(PermanentError, match="bad field"):
        sandbox.platform.publish(sandbox.context(["short"]))
    assert sandbox.posts() == []


def test_a_duplicate_is_permanent_with_its_code(sandbox: Sandbox) -> None:
    sandbox.platform.publish(sandbox.context(["same words"]))
    with pytest.raises(PermanentError, match="duplicate of urn:li:share:") as info:
        sandbox.platform.publish(sandbox.context(["same words"]))
    assert info.value.platform_code == "DUPLICATE_POST"


def test_the_daily_limit_defers_until_midnight_utc(sandbox: Sandbox) -> None:
    sandbox.config(daily_posts=0)
    with pytest.raises(QuotaExceeded) as info:
        sandbox.platform.publish(sandbox.context())
    midnight = datetime.combine(datetime.now(UTC).date() + timedelta(days=1),
                                datetime.min.time(), tzinfo=UTC)
    assert info.value.retry_at == midnight
    sandbox.fault(method="POST", path=POSTS, status=429, headers={"Retry-After": "120"},
                  body={"status": 429, "message": "slow down"})
    sandbox.config(daily_posts=10)
    with pytest.raises(QuotaExceeded) as info:
        sandbox.platform.publish(sandbox.context())
    assert info.value.retry_at is not None
    assert timedelta(seconds=100) < info.value.retry_at - datetime.now(UTC) \
        <= timedelta(seconds=121)


def test_server_errors_are_transient_but_unknown_on_the_creating_call(
        sandbox: Sandbox, media: Media) -> None:
    sandbox.fault(method="POST", path="^/rest/images$", status=503,
                  body={"status": 503, "message": "busy"})
    with pytest.raises(TransientError) as transient:
        sandbox.platform.publish(sandbox.context(media=[[media("photo.jpg")]]))
    assert not isinstance(transient.value, UnknownOutcome)
    sandbox.fault(method="POST", path=POSTS, status=500,
                  body={"status": 500, "message": "Internal Server Error"})
    with pytest.raises(UnknownOutcome, match="may or may not exist"):
        sandbox.platform.publish(sandbox.context(["x"]))


def test_a_sunset_version_names_the_setting(sandbox: Sandbox) -> None:
    settings = Settings.from_env({**sandbox.settings.env, "CHAT33_LINKEDIN_VERSION": "202507"})
    platform = LinkedInPlatform(settings)
    ctx = sandbox.context()
    ctx.settings = settings
    with pytest.raises(PermanentError, match="CHAT33_LINKEDIN_VERSION"):
        platform.publish(ctx)


def refresh(sandbox: Sandbox, credentials: Credentials) -> Credentials:
    return sandbox.platform.refresh_credentials(
        credentials, RefreshContext(account=account(), http=sandbox.http,
                                    settings=sandbox.settings))


def test_a_refresh_token_renews_the_access_token(sandbox: Sandbox) -> None:
    old = Credentials(access_token="sandbox-token", refresh_token="sandbox-refresh",
                      expires_at=utcnow() + timedelta(hours=2))
    assert sandbox.platform.needs_refresh(old)
    new = refresh(sandbox, old)
    assert new.access_token != "sandbox-token"
    assert old.replaced_by(new).refresh_token == "sandbox-refresh"  # rotated or kept
    assert new.expires_at is not None and new.expires_at > utcnow() + timedelta(days=59)
    assert not sandbox.platform.needs_refresh(new)
    # the new token publishes
    sandbox.platform.publish(sandbox.context(credentials=new))
    assert len(sandbox.posts()) == 1


def test_without_a_refresh_token_the_owner_reconnects_before_expiry(
        sandbox: Sandbox) -> None:
    soon = Credentials(access_token="sandbox-token", expires_at=utcnow() + timedelta(hours=5))
    assert sandbox.platform.needs_refresh(soon)
    assert not sandbox.platform.needs_refresh(
        Credentials(access_token="x", expires_at=utcnow() + timedelta(days=30)))
    with pytest.raises(ReconnectRequired, match="no refresh token"):
        refresh(sandbox, soon)


def test_a_refused_refresh_asks_for_reconnect(sandbox: Sandbox) -> None:
    sandbox.config(refresh_enabled=False)
    with pytest.raises(ReconnectRequired, match="refresh token is invalid"):
        refresh(sandbox, Credentials(access_token="a", refresh_token="sandbox-refresh"))


def test_a_video_linkedin_cannot_process_is_permanent_and_not_posted(
        sandbox: Sandbox, media: Media) -> None:
    sandbox.config(fail_processing=True)
    with pytest.raises(PermanentError, match="could not process") as info:
        sandbox.platform.publish(sandbox.context(["clip"], media=[[media("clip.mp4")]]))
    assert info.value.platform_code == "PROCESSING_FAILED"
    assert sandbox.posts() == []
