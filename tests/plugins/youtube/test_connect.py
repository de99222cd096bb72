"""Connecting YouTube channels by Google OAuth 2, plugin side, over real HTTP against the
sandbox: the consent URL with PKCE, the code exchange, the channels, an upload with the
new tokens, a refresh, the revocation after which the tokens are refused, and every
refusal as an ``OAuthError``."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import attrs
import httpx
import pytest
from chat33_youtube import YouTubePlatform

from chat33_core.config import Settings
from chat33_core.errors import CredentialsExpired, OAuthError, ReconnectRequired
from chat33_core.models import Account, Credentials, MediaType
from chat33_core.oauth import AuthorizationRequest, Grant, OAuthContext, code_challenge_s256
from chat33_core.platforms import MediaFile, RefreshContext
from chat33_core.sandbox_oauth import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET
from chat33_core.testing import authorization_request, follow_authorization, oauth_context

SCOPE = "https://www.googleapis.com/auth/youtube.force-ssl"


class Connect:
    def __init__(self, url: str, http: httpx.Client, **env: str) -> None:
        self.url, self.http = url, http
        self.platform = YouTubePlatform(Settings.from_env({
            "CHAT33_YOUTUBE_API_BASE": url, "CHAT33_POLL_INTERVAL_S": "0.001",
            "CHAT33_YOUTUBE_CLIENT_ID": SANDBOX_CLIENT_ID,
            "CHAT33_YOUTUBE_CLIENT_SECRET": SANDBOX_CLIENT_SECRET, **env}))
        self.ctx: OAuthContext = oauth_context(self.platform, http)

    def authorize(self, force_consent: bool = False,
                  ) -> tuple[dict[str, str], AuthorizationRequest]:
        request = authorization_request(self.ctx, force_consent)
        return follow_authorization(self.http, self.platform.authorization_url(request)), request

    def grant(self, force_consent: bool = False) -> Grant:
        back, request = self.authorize(force_consent)
        return self.platform.exchange_code(back["code"], request, self.ctx)

    def control(self, path: str, body: dict[str, Any]) -> None:
        assert self.http.post(f"{self.url}/_sandbox/{path}", json=body).status_code < 300

    def refresh(self, credentials: Credentials) -> Credentials:
        account = Account(id="chan_yt", org_id="org", platform="youtube", name="yt")
        return self.platform.refresh_credentials(credentials, RefreshContext(
            account=account, http=self.http, settings=self.platform.settings))


@pytest.fixture
def yt(url: str, http: httpx.Client) -> Connect:
    return Connect(url, http)


def test_the_consent_url_asks_for_offline_access_with_pkce(yt: Connect) -> None:
    request = authorization_request(yt.ctx)
    url = urlsplit(yt.platform.authorization_url(request))
    assert f"{url.scheme}://{url.netloc}" == yt.url and url.path == "/o/oauth2/v2/auth"
    params = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert params == {
        "client_id": SANDBOX_CLIENT_ID, "redirect_uri": yt.ctx.client.redirect_uri,
        "response_type": "code", "scope": SCOPE, "state": request.state,
        "access_type": "offline", "include_granted_scopes": "true",
        "code_challenge": code_challenge_s256(request.code_verifier),
        "code_challenge_method": "S256"}
    again = authorization_request(yt.ctx, force_consent=True)
    assert "prompt=consent" in yt.platform.authorization_url(again)
    real = YouTubePlatform(Settings.from_env({}))
    assert real.authorization_url(request).startswith(
        "https://accounts.google.com/o/oauth2/v2/auth?")


def test_a_channel_connects_uploads_refreshes_and_dies_with_the_revoked_grant(
        yt: Connect, context: Any, video: MediaFile, state: Any) -> None:
    back, request = yt.authorize()
    assert back["state"] == request.state
    assert (back["scope"], back["authuser"]) == (SCOPE, "0")  # Google's extras
    grant = yt.platform.exchange_code(back["code"], request, yt.ctx)
    assert grant.scopes == (SCOPE,) and grant.credentials.refresh_token
    assert yt.platform.long_lived(grant, yt.ctx) == grant  # Google has no such exchange
    [channel] = yt.platform.list_targets(grant, yt.ctx)
    assert (channel.external_id, channel.name, channel.username) == (
        "UCsandbox0000000000000000", "Sandbox Channel", "@sandboxchannel")
    assert channel.picture_url and channel.credentials == grant.credentials

    account = Account(id="chan_yt", org_id="org", platform="youtube", name=channel.name,
                      external_id=channel.external_id)
    ctx, _ = context(media=[video], media_type=MediaType.VIDEO, account=account,
                     credentials=channel.credentials, platform=yt.platform,
                     settings=yt.platform.settings)
    first = yt.platform.publish(ctx).first

    # Google sends no new refresh token: the stored one stays (as the worker saves it)
    fresh = grant.credentials.replaced_by(yt.refresh(grant.credentials))
    assert fresh.access_token != grant.credentials.access_token
    assert fresh.refresh_token == grant.credentials.refresh_token
    ctx, _ = context(media=[video], media_type=MediaType.VIDEO, account=account,
                     credentials=fresh, platform=yt.platform, settings=yt.platform.settings)
    second = yt.platform.publish(ctx).first
    assert {v["id"] for v in state()["videos"]} == {first.external_id, second.external_id}

    yt.platform.revoke(fresh, yt.ctx)
    yt.platform.revoke(fresh, yt.ctx)  # already revoked: nothing left to do
    ctx, _ = context(media=[video], media_type=MediaType.VIDEO, account=account,
                     credentials=fresh, platform=yt.platform, settings=yt.platform.settings)
    with pytest.raises(CredentialsExpired):
        yt.platform.publish(ctx)
    with pytest.raises(ReconnectRequired) as dead:
        yt.refresh(fresh)
    assert dead.value.platform_code == "invalid_grant"
    info = yt.http.get(f"{yt.url}/tokeninfo", params={"access_token": fresh.access_token})
    assert info.status_code == 400


def test_a_refresh_token_comes_only_on_the_first_consent_or_when_asked_again(
        yt: Connect) -> None:
    assert yt.grant().credentials.refresh_token
    assert yt.grant().credentials.refresh_token is None
    assert yt.grant(force_consent=True).credentials.refresh_token


def test_online_access_gets_no_refresh_token(yt: Connect) -> None:
    request = authorization_request(yt.ctx)
    url = yt.platform.authorization_url(request).replace("access_type=offline",
                                                         "access_type=online")
    back = follow_authorization(yt.http, url)
    grant = yt.platform.exchange_code(back["code"], request, yt.ctx)
    assert grant.credentials.refresh_token is None
    info = yt.http.get(f"{yt.url}/tokeninfo",
                       params={"access_token": grant.credentials.access_token}).json()
    assert (info["scope"], info["access_type"]) == (SCOPE, "online")


@pytest.mark.parametrize("channels, names", [
    ([], []),
    ([{"id": "UCone", "title": "One"}, {"id": "UCtwo", "title": "Two", "customUrl": "@two"}],
     ["One", "Two"]),
])
def test_no_channel_or_several(yt: Connect, channels: list[dict[str, Any]],
                               names: list[str]) -> None:
    yt.control("config", {"channels": channels})
    assert [t.name for t in yt.platform.list_targets(yt.grant(), yt.ctx)] == names


def test_a_partial_grant_is_refused_naming_the_scope(yt: Connect) -> None:
    yt.control("oauth", {"granted_scopes": []})
    with pytest.raises(OAuthError) as refused:
        yt.grant()
    assert refused.value.error == "insufficient_scope" and SCOPE in str(refused.value)


def test_denial_comes_back_with_the_state(yt: Connect) -> None:
    yt.control("oauth", {"deny": True})
    back, request = yt.authorize()
    assert back["error"] == "access_denied" and back["state"] == request.state
    assert "code" not in back


def test_bad_reused_and_pkce_mismatched_codes_are_invalid_grant(yt: Connect) -> None:
    back, request = yt.authorize()
    with pytest.raises(OAuthError) as bad:
        yt.platform.exchange_code("4/not-a-code", request, yt.ctx)
    assert bad.value.error == "invalid_grant"
    yt.platform.exchange_code(back["code"], request, yt.ctx)
    with pytest.raises(OAuthError) as reused:
        yt.platform.exchange_code(back["code"], request, yt.ctx)
    assert reused.value.error == "invalid_grant"
    back, request = yt.authorize()
    other = attrs.evolve(request, code_verifier=authorization_request(yt.ctx).code_verifier)
    with pytest.raises(OAuthError) as mismatch:
        yt.platform.exchange_code(back["code"], other, yt.ctx)
    assert mismatch.value.error == "invalid_grant" and "code_verifier" in str(mismatch.value)


def test_an_unknown_redirect_uri_gets_an_error_page_not_a_redirect(yt: Connect) -> None:
    request = authorization_request(yt.ctx)
    url = yt.platform.authorization_url(request).replace("callback", "elsewhere")
    page = yt.http.get(url)
    assert page.status_code == 400 and "location" not in page.headers


def test_a_wrong_client_secret_is_invalid_client(yt: Connect) -> None:
    back, request = yt.authorize()
    wrong = oauth_context(yt.platform, yt.http, client_secret="nope")
    with pytest.raises(OAuthError) as refused:
        yt.platform.exchange_code(back["code"], request, wrong)
    assert refused.value.error == "invalid_client"


@pytest.mark.parametrize("status, body, error", [
    (503, {"error": "backendError"}, "server_error"),
    (200, "<html>not json</html>", "exchange_failed"),
])
def test_a_failing_token_endpoint_is_an_oauth_error(yt: Connect, status: int, body: Any,
                                                    error: str) -> None:
    back, request = yt.authorize()
    yt.control("faults", {"method": "POST", "path": "^/token$", "status": status,
                          "body": body})
    with pytest.raises(OAuthError) as failed:
        yt.platform.exchange_code(back["code"], request, yt.ctx)
    assert failed.value.error == error


def test_a_failing_channel_list_is_an_oauth_error(yt: Connect) -> None:
    grant = yt.grant()
    yt.control("faults", {"method": "GET", "path": "/channels$", "status": 403, "body": {
        "error": {"code": 403, "message": "Insufficient Permission",
                  "errors": [{"reason": "insufficientPermissions"}]}}})
    with pytest.raises(OAuthError) as refused:
        yt.platform.list_targets(grant, yt.ctx)
    assert refused.value.error == "insufficient_scope"
    yt.control("faults", {"method": "GET", "path": "/channels$", "status": 500})
    with pytest.raises(OAuthError) as failed:
        yt.platform.list_targets(grant, yt.ctx)
    assert failed.value.error == "server_error"


def test_the_token_url_setting_replaces_only_the_token_endpoint(yt: Connect) -> None:
    moved = Connect(yt.url, yt.http, CHAT33_YOUTUBE_TOKEN_URL="http://127.0.0.1:9/token")
    back, request = moved.authorize()  # the consent page is still on the API base
    with pytest.raises(OAuthError) as unreachable:
        moved.platform.exchange_code(back["code"], request, moved.ctx)
    assert unreachable.value.error == "temporarily_unavailable"


def test_the_token_endpoint_wants_a_form(yt: Connect) -> None:
    answer = yt.http.post(f"{yt.url}/token", json={"grant_type": "authorization_code"})
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"


def test_an_app_in_testing_status_loses_its_refresh_tokens_after_7_days(yt: Connect) -> None:
    yt.control("config", {"testingMode": True})
    credentials = yt.grant().credentials
    yt.control("clock", {"advance": 6 * 86_400})
    assert yt.refresh(credentials).access_token
    yt.control("clock", {"advance": 2 * 86_400})
    with pytest.raises(ReconnectRequired) as dead:
        yt.refresh(credentials)
    assert dead.value.platform_code == "invalid_grant"


def test_an_expired_code_is_invalid_grant(yt: Connect) -> None:
    back, request = yt.authorize()
    yt.control("clock", {"advance": 3600})
    with pytest.raises(OAuthError) as expired:
        yt.platform.exchange_code(back["code"], request, yt.ctx)
    assert expired.value.error == "invalid_grant" and "expired" in str(expired.value)


@pytest.mark.parametrize("expires_in", ["soon", None, -5, [1]])
def test_a_token_answer_with_a_strange_lifetime_still_connects(yt: Connect,
                                                               expires_in: Any) -> None:
    back, request = yt.authorize()
    yt.control("faults", {"method": "POST", "path": "^/token$", "status": 200, "body": {
        "access_token": "ya29.odd", "expires_in": expires_in, "scope": SCOPE,
        "token_type": "Bearer"}})
    grant = yt.platform.exchange_code(back["code"], request, yt.ctx)
    assert grant.credentials.access_token == "ya29.odd"
    assert grant.credentials.expires_at is None
