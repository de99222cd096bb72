"""Connecting Pages by Facebook Login, plugin side, over real HTTP against the sandbox:
the dialog URL, the code and long-lived exchanges, the Pages with their Page tokens,
publishing with one, revoking the grant, and every refusal as an ``OAuthError``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import attrs
import httpx
import pytest
from chat33_facebook import FacebookPlatform
from chat33_facebook.sandbox import FacebookSandbox

from chat33_core.config import Settings
from chat33_core.errors import NotSupported, OAuthError, ReconnectRequired
from chat33_core.models import Account, Credentials, utcnow
from chat33_core.oauth import AuthorizationRequest, Grant, OAuthContext
from chat33_core.testing import (
    authorization_request,
    follow_authorization,
    oauth_context,
    publish_context,
)


class Connect:
    def __init__(self, url: str, http: httpx.Client, **env: str) -> None:
        self.url, self.http = url, http
        self.platform = FacebookPlatform(Settings.from_env({
            "CHAT33_FACEBOOK_API_BASE": url, "CHAT33_POLL_INTERVAL_S": "0.001", **env}))
        self.ctx: OAuthContext = oauth_context(self.platform, http)

    def authorize(self, request: AuthorizationRequest | None = None,
                  ) -> tuple[dict[str, str], AuthorizationRequest]:
        request = request or authorization_request(self.ctx)
        return follow_authorization(self.http, self.platform.authorization_url(request)), request

    def grant(self) -> Grant:
        back, request = self.authorize()
        return self.platform.exchange_code(back["code"], request, self.ctx)

    def control(self, path: str, body: dict[str, Any]) -> None:
        assert self.http.post(f"{self.url}/_sandbox/{path}", json=body).status_code < 300

    def state(self) -> dict[str, Any]:
        return self.http.get(f"{self.url}/_sandbox/state").json()


@pytest.fixture
def fb(served: tuple[FacebookSandbox, str]) -> Iterator[Connect]:
    _, url = served
    with httpx.Client(timeout=30) as http:
        http.post(f"{url}/_sandbox/reset")
        yield Connect(url, http)


def test_the_authorization_url_is_the_versioned_dialog_with_comma_scopes(fb: Connect) -> None:
    request = authorization_request(fb.ctx)
    url = urlsplit(fb.platform.authorization_url(request))
    assert f"{url.scheme}://{url.netloc}" == fb.url and url.path == "/v25.0/dialog/oauth"
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert query == {"client_id": fb.ctx.client.client_id, "state": request.state,
                     "redirect_uri": fb.ctx.client.redirect_uri, "response_type": "code",
                     "scope": "pages_show_list,pages_manage_posts,pages_read_engagement,"
                              "publish_video"}
    again = authorization_request(fb.ctx, force_consent=True)
    assert "auth_type=rerequest" in fb.platform.authorization_url(again)
    real = FacebookPlatform(Settings.from_env({}))
    assert real.authorization_url(request).startswith(
        "https://www.facebook.com/v25.0/dialog/oauth?")


def test_a_page_connects_publishes_and_its_token_dies_with_the_revoked_grant(
        fb: Connect) -> None:
    back, request = fb.authorize()
    assert back["state"] == request.state and back["#"] == "_=_"
    short = fb.platform.exchange_code(back["code"], request, fb.ctx)
    assert short.subject and {"pages_manage_posts", "pages_show_list"} <= set(short.scopes)
    grant = fb.platform.long_lived(short, fb.ctx)
    assert grant.credentials.access_token != short.credentials.access_token
    assert grant.credentials.expires_at is not None
    assert grant.credentials.expires_at - utcnow() > timedelta(days=59)

    targets = fb.platform.list_targets(grant, fb.ctx)
    # the Page the user may only analyze is not offered; Facebook always asks to select
    assert [t.name for t in targets] == ["Sandbox Bakery", "Sandbox Books"]
    assert fb.platform.oauth_always_select
    page = targets[1]
    assert page.credentials is not None and page.picture_url
    assert page.credentials.access_token not in (grant.credentials.access_token,
                                                 targets[0].credentials.access_token)  # type: ignore[union-attr]
    assert page.credentials.extra["user_id"] == grant.subject

    account = Account(id="chan_fb", org_id="org", platform="facebook", name=page.name,
                      external_id=page.external_id)
    ctx = publish_context(fb.platform, settings=fb.platform.settings, text="Connected!",
                          account=account, credentials=page.credentials, http=fb.http,
                          platform_config={"facebook": {}})
    receipt = fb.platform.publish(ctx).first
    assert receipt.external_id.startswith(page.external_id + "_")
    assert [p["message"] for p in fb.state()["posts"]] == ["Connected!"]
    # a Page token acts on its own Page only
    other = attrs.evolve(account, external_id=targets[0].external_id)
    with pytest.raises(ReconnectRequired):
        fb.platform.publish(publish_context(
            fb.platform, settings=fb.platform.settings, text="Wrong Page", account=other,
            credentials=page.credentials, http=fb.http, platform_config={"facebook": {}}))

    fb.platform.revoke(page.credentials, fb.ctx)
    assert fb.state()["revocations"] == [grant.subject]
    again = publish_context(fb.platform, settings=fb.platform.settings, text="After",
                            account=account, credentials=page.credentials, http=fb.http,
                            platform_config={"facebook": {}})
    with pytest.raises(ReconnectRequired) as refused:
        fb.platform.publish(again)
    assert refused.value.platform_code == "190/458"
    with pytest.raises(OAuthError) as dead:
        fb.platform.list_targets(grant, fb.ctx)
    assert dead.value.error == "invalid_grant"


def test_every_page_is_listed_across_the_cursor_pages(fb: Connect) -> None:
    fb.control("pages", {"pageSize": 1})
    grant = fb.platform.long_lived(fb.grant(), fb.ctx)
    assert len(fb.platform.list_targets(grant, fb.ctx)) == 2
    assert fb.state()["calls"]["0"] >= 3  # /me/accounts three times, one Page each


@pytest.mark.parametrize("pages", [
    [],
    [{"id": "1045", "name": "Analytics only", "tasks": ["ANALYZE", "ADVERTISE"]}],
])
def test_no_page_to_post_on_gives_no_targets(fb: Connect, pages: list[dict[str, Any]]) -> None:
    fb.control("pages", {"pages": pages})
    assert fb.platform.list_targets(fb.grant(), fb.ctx) == []


def test_a_declined_permission_is_refused_naming_it(fb: Connect) -> None:
    fb.control("oauth", {"granted_scopes": ["pages_show_list", "pages_read_engagement",
                                            "publish_video"]})
    with pytest.raises(OAuthError) as refused:
        fb.grant()
    assert refused.value.error == "insufficient_scope"
    assert "pages_manage_posts" in str(refused.value)


def test_the_sandbox_reports_declined_permissions_and_denials_like_facebook(
        fb: Connect) -> None:
    fb.control("oauth", {"granted_scopes": ["pages_show_list"]})
    back, request = fb.authorize()
    token = fb.http.get(f"{fb.url}/v25.0/oauth/access_token", params={
        "client_id": fb.ctx.client.client_id, "client_secret": fb.ctx.client.client_secret,
        "redirect_uri": fb.ctx.client.redirect_uri, "code": back["code"]}).json()
    permissions = fb.http.get(f"{fb.url}/v25.0/me/permissions", headers={
        "Authorization": f"OAuth {token['access_token']}"}).json()["data"]
    assert {"permission": "pages_manage_posts", "status": "declined"} in permissions
    assert {"permission": "pages_show_list", "status": "granted"} in permissions

    fb.control("oauth", {"deny": True})
    denied, request = fb.authorize()
    assert denied["error"] == "access_denied" and denied["error_reason"] == "user_denied"
    assert denied["state"] == request.state and "code" not in denied


def test_a_config_id_stands_for_the_configured_permissions(fb: Connect) -> None:
    request = authorization_request(fb.ctx)
    back = follow_authorization(fb.http, f"{fb.url}/v25.0/dialog/oauth?" + "&".join([
        f"client_id={fb.ctx.client.client_id}", "config_id=1234567890", "response_type=code",
        f"redirect_uri={fb.ctx.client.redirect_uri}", f"state={request.state}"]))
    grant = fb.platform.exchange_code(back["code"], request, fb.ctx)
    assert "pages_manage_posts" in grant.scopes


def test_bad_reused_and_mismatched_codes_are_invalid_grant(fb: Connect) -> None:
    back, request = fb.authorize()
    with pytest.raises(OAuthError) as bad:
        fb.platform.exchange_code("not-a-code", request, fb.ctx)
    assert bad.value.error == "invalid_grant"
    fb.platform.exchange_code(back["code"], request, fb.ctx)
    with pytest.raises(OAuthError) as reused:
        fb.platform.exchange_code(back["code"], request, fb.ctx)
    assert reused.value.error == "invalid_grant"
    back, request = fb.authorize()
    elsewhere = oauth_context(fb.platform, fb.http,
                              redirect_uri=fb.ctx.client.redirect_uri + "/other")
    with pytest.raises(OAuthError) as mismatch:
        fb.platform.exchange_code(back["code"], request, elsewhere)
    assert mismatch.value.error == "invalid_grant"


def test_a_wrong_app_secret_is_invalid_client(fb: Connect) -> None:
    back, request = fb.authorize()
    wrong = oauth_context(fb.platform, fb.http, client_secret="not-the-secret")
    with pytest.raises(OAuthError) as refused:
        fb.platform.exchange_code(back["code"], request, wrong)
    assert refused.value.error == "invalid_client"


@pytest.mark.parametrize("status, body, error", [
    (503, {"error": "busy"}, "server_error"),
    (500, "<html>oops</html>", "server_error"),
    (200, "not json", "exchange_failed"),
    (400, {"unexpected": True}, "exchange_failed"),
])
def test_a_failing_token_endpoint_is_an_oauth_error(fb: Connect, status: int, body: Any,
                                                    error: str) -> None:
    back, request = fb.authorize()
    fb.control("faults", {"method": "GET", "path": "/oauth/access_token$", "status": status,
                          "body": body})
    with pytest.raises(OAuthError) as refused:
        fb.platform.exchange_code(back["code"], request, fb.ctx)
    assert refused.value.error == error


def test_failures_after_the_exchange_are_oauth_errors_too(fb: Connect) -> None:
    grant = fb.grant()
    fb.control("faults", {"method": "GET", "path": "/oauth/access_token$", "status": 502})
    with pytest.raises(OAuthError):
        fb.platform.long_lived(grant, fb.ctx)
    fb.control("faults", {"method": "GET", "path": "/me/accounts$", "status": 503})
    with pytest.raises(OAuthError) as accounts:
        fb.platform.list_targets(grant, fb.ctx)
    assert accounts.value.error == "server_error"


def test_the_token_url_setting_replaces_only_the_token_endpoint(fb: Connect) -> None:
    moved = Connect(fb.url, fb.http, CHAT33_FACEBOOK_TOKEN_URL="http://127.0.0.1:9/token")
    back, request = moved.authorize()  # the dialog is still on the API base
    with pytest.raises(OAuthError) as unreachable:
        moved.platform.exchange_code(back["code"], request, moved.ctx)
    assert unreachable.value.error == "temporarily_unavailable"
    assert "client_secret" not in str(unreachable.value)


def test_a_hand_added_page_has_no_grant_to_revoke(fb: Connect) -> None:
    with pytest.raises(NotSupported):
        fb.platform.revoke(Credentials(access_token="pasted-page-token"), fb.ctx)


def test_refusals_never_carry_the_secret_the_code_or_a_token(fb: Connect) -> None:
    """Meta puts the app secret, the code and tokens in query strings: an OAuthError
    says what failed without any of them."""
    back, request = fb.authorize()
    grant = fb.platform.long_lived(fb.platform.exchange_code(back["code"], request, fb.ctx),
                                   fb.ctx)
    secrets_ = [fb.ctx.client.client_secret, back["code"], grant.credentials.access_token]
    messages = []
    for status in (400, 500):
        fb.control("faults", {"method": "GET", "path": "/oauth/access_token$",
                              "status": status, "body": {"error": {
                                  "message": "Error validating verification code",
                                  "type": "OAuthException", "code": 100}}})
        with pytest.raises(OAuthError) as refused:
            fb.platform.exchange_code(back["code"], request, fb.ctx)
        messages.append(str(refused.value))
        fb.control("faults", {"method": "GET", "path": "/oauth/access_token$",
                              "status": status})
        with pytest.raises(OAuthError) as refused:
            fb.platform.long_lived(grant, fb.ctx)
        messages.append(str(refused.value))
    moved = Connect(fb.url, fb.http, CHAT33_FACEBOOK_TOKEN_URL="http://127.0.0.1:9/t")
    with pytest.raises(OAuthError) as unreachable:
        moved.platform.exchange_code(back["code"], request, moved.ctx)
    messages.append(str(unreachable.value))
    assert all(s not in m for s in secrets_ for m in messages), messages


def test_return_scopes_reports_granted_and_denied_scopes_on_the_redirect(fb: Connect) -> None:
    fb.control("oauth", {"granted_scopes": ["pages_show_list", "publish_video"]})
    request = authorization_request(fb.ctx)
    back = follow_authorization(fb.http, fb.platform.authorization_url(request)
                                + "&return_scopes=true")
    assert back["granted_scopes"] == "pages_show_list,publish_video"
    assert back["denied_scopes"] == "pages_manage_posts,pages_read_engagement"
    assert "granted_scopes" not in fb.authorize()[0]


def test_the_sandbox_takes_the_code_exchange_as_a_post_too(fb: Connect) -> None:
    back, _ = fb.authorize()
    answer = fb.http.post(f"{fb.url}/v25.0/oauth/access_token", data={
        "client_id": fb.ctx.client.client_id, "client_secret": fb.ctx.client.client_secret,
        "redirect_uri": fb.ctx.client.redirect_uri, "code": back["code"],
        "grant_type": "authorization_code"})
    assert answer.status_code == 200 and answer.json()["token_type"] == "bearer"
    reused = fb.http.post(f"{fb.url}/v25.0/oauth/access_token", data={
        "client_id": fb.ctx.client.client_id, "client_secret": fb.ctx.client.client_secret,
        "redirect_uri": fb.ctx.client.redirect_uri, "code": back["code"]})
    error = reused.json()["error"]
    assert reused.status_code == 400 and (error["type"], error["code"]) == ("OAuthException",
                                                                           100)
