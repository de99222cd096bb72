"""Token refresh at /v2/oauth/token/: rotating refresh tokens and the OAuth error shape."""

from __future__ import annotations

import httpx
import pytest

from chat33_core.config import Settings
from chat33_core.errors import ReconnectRequired, TransientError
from chat33_core.models import Credentials, utcnow
from chat33_core.platforms import RefreshContext

from .conftest import TT


def refresh(tt: TT, refresh_token: str = "sandbox-refresh") -> Credentials:
    ctx = RefreshContext(account=tt.account, http=tt.http, settings=tt.settings)
    return tt.platform.refresh_credentials(
        Credentials(access_token="old", refresh_token=refresh_token), ctx)


def test_refresh_returns_a_new_access_and_refresh_token(tt: TT) -> None:
    fresh = refresh(tt)
    assert fresh.access_token.startswith("act.")
    assert fresh.refresh_token and fresh.refresh_token.startswith("rft.")
    assert fresh.expires_at is not None and fresh.expires_at > utcnow()
    assert fresh.extra["openId"] == "sandbox-open-id"
    assert "refreshExpiresAt" in fresh.extra
    # the new access token works for publishing
    tt.platform.publish(tt.ctx(tt.media("clip.mp4"), token=fresh.access_token))
    assert len(tt.state()["posts"]) == 1


def test_refresh_tokens_rotate_and_the_old_one_is_refused(tt: TT) -> None:
    first = refresh(tt)
    assert first.refresh_token is not None
    second = refresh(tt, first.refresh_token)
    assert second.refresh_token not in (first.refresh_token, "sandbox-refresh")
    with pytest.raises(ReconnectRequired) as err:
        refresh(tt, first.refresh_token)
    assert err.value.platform_code == "invalid_grant"
    assert "Refresh token is invalid" in err.value.message
    assert tt.state()["refreshTokens"] == [second.refresh_token]


def test_refused_client_credentials(tt: TT) -> None:
    tt.configure(clientSecret="the-real-secret")
    with pytest.raises(ReconnectRequired) as err:
        refresh(tt)
    assert err.value.platform_code == "invalid_client"
    assert "CHAT33_TIKTOK_CLIENT" in err.value.message


def test_no_refresh_token_or_no_client_key_needs_a_reconnect(tt: TT) -> None:
    ctx = RefreshContext(account=tt.account, http=tt.http, settings=tt.settings)
    with pytest.raises(ReconnectRequired):
        tt.platform.refresh_credentials(Credentials(access_token="a"), ctx)
    bare = RefreshContext(account=tt.account, http=tt.http,
                          settings=Settings.from_env({"CHAT33_TIKTOK_API_BASE": tt.url}))
    with pytest.raises(ReconnectRequired):
        tt.platform.refresh_credentials(Credentials(access_token="a", refresh_token="r"), bare)


def test_server_trouble_during_refresh_is_transient(tt: TT) -> None:
    tt.fault(method="POST", path="oauth/token", status=503, body="busy")
    with pytest.raises(TransientError):
        refresh(tt)


def test_token_url_defaults_to_the_api_base_and_can_be_overridden(tt: TT) -> None:
    assert tt.platform.token_url() == f"{tt.url}/v2/oauth/token/"
    from chat33_tiktok import TikTokPlatform

    assert TikTokPlatform(Settings.from_env({})).token_url() == \
        "https://open.tiktokapis.com/v2/oauth/token/"
    moved = TikTokPlatform(Settings.from_env({
        "CHAT33_TIKTOK_API_BASE": "http://127.0.0.1:9",
        "CHAT33_TIKTOK_TOKEN_URL": f"{tt.url}/v2/oauth/token/"}))
    assert moved.token_url() == f"{tt.url}/v2/oauth/token/"
    ctx = RefreshContext(account=tt.account, http=tt.http, settings=tt.settings)
    fresh = moved.refresh_credentials(
        Credentials(access_token="a", refresh_token="sandbox-refresh"), ctx)
    assert fresh.refresh_token


def test_oauth_errors_come_in_their_own_shape(tt: TT) -> None:
    body = httpx.post(f"{tt.url}/v2/oauth/token/", data={
        "client_key": "k", "client_secret": "s", "grant_type": "refresh_token",
        "refresh_token": "nope"}, timeout=5).json()
    assert body["error"] == "invalid_grant" and body["error_description"] and body["log_id"]
