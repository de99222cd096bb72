"""Connecting Instagram accounts, plugin side, over real HTTP against the sandbox: through
Facebook Login (the default: the professional accounts linked to the user's Pages) and
through Instagram Login (``CHAT33_INSTAGRAM_LOGIN=instagram``), each from the
authorization URL to a published post, then refresh or revocation, and every refusal
as an ``OAuthError``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import attrs
import httpx
import pytest
from chat33_instagram import InstagramPlatform
from chat33_instagram.sandbox import IG_LOGIN_USER, InstagramSandbox

from chat33_core.config import Settings
from chat33_core.errors import NotSupported, OAuthError, ReconnectRequired
from chat33_core.models import Account, Credentials, MediaType, utcnow
from chat33_core.oauth import AuthorizationRequest, Grant, OAuthContext, Target
from chat33_core.platforms import RefreshContext
from chat33_core.testing import (
    authorization_request,
    follow_authorization,
    oauth_context,
    publish_context,
)

LINKED_IG = "17841400000000001"


class Connect:
    def __init__(self, url: str, http: httpx.Client, login: str = "facebook",
                 **env: str) -> None:
        self.url, self.http = url, http
        self.platform = InstagramPlatform(Settings.from_env({
            "CHAT33_INSTAGRAM_API_BASE": url, "CHAT33_POLL_INTERVAL_S": "0.001",
            "CHAT33_INSTAGRAM_LOGIN": login, **env}))
        self.ctx: OAuthContext = oauth_context(self.platform, http)

    def authorize(self) -> tuple[dict[str, str], AuthorizationRequest]:
        request = authorization_request(self.ctx)
        return follow_authorization(self.http, self.platform.authorization_url(request)), request

    def grant(self) -> Grant:
        back, request = self.authorize()
        return self.platform.exchange_code(back["code"], request, self.ctx)

    def control(self, path: str, body: dict[str, Any]) -> None:
        assert self.http.post(f"{self.url}/_sandbox/{path}", json=body).status_code < 300

    def publish(self, target: Target, credentials: Credentials, media: Any) -> str:
        account = Account(id="chan_ig", org_id="org", platform="instagram", name=target.name,
                          username=target.username, external_id=target.external_id)
        ctx = publish_context(self.platform, settings=self.platform.settings, text="Hello",
                              media=[media("square.jpg")], media_type=MediaType.IMAGE,
                              account=account, credentials=credentials, http=self.http)
        return self.platform.publish(ctx).first.external_id

    def state(self) -> dict[str, Any]:
        return dict(self.http.get(f"{self.url}/_sandbox/state").json())

    def published(self) -> list[dict[str, Any]]:
        return list(self.state()["published"])


@pytest.fixture
def http() -> Any:
    with httpx.Client(timeout=30) as client:
        yield client


@pytest.fixture
def fb(sandbox: tuple[InstagramSandbox, str], http: httpx.Client) -> Connect:
    return Connect(sandbox[1], http)


@pytest.fixture
def ig(sandbox: tuple[InstagramSandbox, str], http: httpx.Client) -> Connect:
    return Connect(sandbox[1], http, login="instagram")


def query(url: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(url)
    return parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}


def test_facebook_login_is_the_default_and_instagram_login_has_its_own_page(
        fb: Connect, ig: Connect) -> None:
    request = authorization_request(fb.ctx)
    path, params = query(fb.platform.authorization_url(request))
    assert path == "/v25.0/dialog/oauth" and params["state"] == request.state
    assert params["scope"] == ("instagram_basic,instagram_content_publish,pages_show_list,"
                               "pages_read_engagement")
    path, params = query(ig.platform.authorization_url(request))
    assert path == "/oauth/authorize"
    assert params == {"client_id": ig.ctx.client.client_id, "response_type": "code",
                      "redirect_uri": ig.ctx.client.redirect_uri, "state": request.state,
                      "scope": "instagram_business_basic,instagram_business_content_publish"}
    again = authorization_request(ig.ctx, force_consent=True)
    assert query(ig.platform.authorization_url(again))[1]["force_reauth"] == "true"
    real = InstagramPlatform(Settings.from_env({}))
    assert real.authorization_url(request).startswith(
        "https://www.facebook.com/v25.0/dialog/oauth?")
    real_ig = InstagramPlatform(Settings.from_env({"CHAT33_INSTAGRAM_LOGIN": "instagram"}))
    assert real_ig.authorization_url(request).startswith(
        "https://www.instagram.com/oauth/authorize?")


def test_through_facebook_login_the_linked_account_publishes_until_the_grant_is_revoked(
        fb: Connect, media: Any) -> None:
    back, request = fb.authorize()
    assert back["#"] == "_=_" and back["state"] == request.state
    grant = fb.platform.long_lived(
        fb.platform.exchange_code(back["code"], request, fb.ctx), fb.ctx)
    targets = fb.platform.list_targets(grant, fb.ctx)
    # the Page without a linked professional account gives nothing
    assert [(t.external_id, t.username) for t in targets] == [(LINKED_IG, "sandbox.studio")]
    target = targets[0]
    assert target.credentials is not None and target.picture_url
    assert target.credentials.extra["login"] == "facebook"
    assert target.metadata["pageId"] == "104600000000001"
    assert not fb.platform.needs_refresh(target.credentials)

    media_id = fb.publish(target, target.credentials, media)
    assert [m["id"] for m in fb.published()] == [media_id]
    assert {c["user"] for c in fb.state()["containers"]} == {LINKED_IG}

    fb.platform.revoke(target.credentials, fb.ctx)
    with pytest.raises(ReconnectRequired) as refused:
        fb.publish(target, target.credentials, media)
    assert refused.value.platform_code == "190/458"


@pytest.mark.parametrize("shape", ["flat", "data"])
def test_through_instagram_login_the_account_publishes_and_refreshes(
        ig: Connect, media: Any, shape: str) -> None:
    ig.control("config", {"tokenShape": shape})
    back, request = ig.authorize()
    assert back["#"] == "_" and back["state"] == request.state
    short = ig.platform.exchange_code(back["code"], request, ig.ctx)
    assert short.subject == IG_LOGIN_USER["user_id"]
    assert set(short.scopes) == {"instagram_business_basic",
                                 "instagram_business_content_publish"}
    grant = ig.platform.long_lived(short, ig.ctx)
    assert grant.credentials.expires_at is not None
    assert grant.credentials.expires_at - utcnow() > timedelta(days=59)
    [target] = ig.platform.list_targets(grant, ig.ctx)
    assert (target.external_id, target.username) == (IG_LOGIN_USER["user_id"], "chat33sandbox")
    assert target.credentials is not None and target.metadata["accountType"] == "BUSINESS"
    ig.publish(target, target.credentials, media)

    # a day later the 60-day token refreshes, and the new one publishes
    ig.control("clock", {"advance": 25 * 3600})
    aged = attrs.evolve(target.credentials, issued_at=utcnow() - timedelta(hours=25))
    account = Account(id="chan_ig", org_id="org", platform="instagram", name=target.name)
    fresh = ig.platform.refresh_credentials(
        aged, RefreshContext(account=account, http=ig.http, settings=ig.platform.settings))
    assert fresh.access_token != aged.access_token
    ig.publish(target, fresh, media)
    assert len(ig.published()) == 2

    with pytest.raises(NotSupported):
        ig.platform.revoke(fresh, ig.ctx)


def test_the_token_url_override_replaces_the_code_exchange_only(
        sandbox: tuple[InstagramSandbox, str], http: httpx.Client) -> None:
    """``CHAT33_INSTAGRAM_TOKEN_URL`` stands for api.instagram.com/oauth/access_token;
    the long-lived exchange and the refresh stay on graph.instagram.com (the API base)."""
    url = sandbox[1]
    ig = Connect(url, http, login="instagram",
                 CHAT33_INSTAGRAM_TOKEN_URL=f"{url}/oauth/access_token")
    short = ig.grant()
    elsewhere = Connect(url, http, login="instagram",
                        CHAT33_INSTAGRAM_TOKEN_URL="http://127.0.0.1:9/oauth/access_token")
    grant = elsewhere.platform.long_lived(short, elsewhere.ctx)
    ig.control("clock", {"advance": 25 * 3600})
    aged = attrs.evolve(grant.credentials, issued_at=utcnow() - timedelta(hours=25))
    account = Account(id="chan_ig", org_id="org", platform="instagram", name="ig")
    fresh = elsewhere.platform.refresh_credentials(aged, RefreshContext(
        account=account, http=http, settings=elsewhere.platform.settings))
    assert fresh.access_token != aged.access_token
    back, request = elsewhere.authorize()
    with pytest.raises((OAuthError, httpx.TransportError)):
        elsewhere.platform.exchange_code(back["code"], request, elsewhere.ctx)


def test_no_linked_professional_account_gives_no_targets(fb: Connect) -> None:
    fb.control("pages", {"pages": [{"id": "1046", "name": "Plain Page",
                                    "tasks": ["CREATE_CONTENT"]}]})
    grant = fb.platform.long_lived(fb.grant(), fb.ctx)
    assert fb.platform.list_targets(grant, fb.ctx) == []


@pytest.mark.parametrize("login, granted, missing", [
    ("facebook", ["instagram_basic", "pages_show_list", "pages_read_engagement"],
     "instagram_content_publish"),
    ("instagram", ["instagram_business_basic"], "instagram_business_content_publish"),
])
def test_a_declined_permission_is_refused_naming_it(
        sandbox: tuple[InstagramSandbox, str], http: httpx.Client, login: str,
        granted: list[str], missing: str) -> None:
    connect = Connect(sandbox[1], http, login=login)
    connect.control("oauth", {"granted_scopes": granted})
    with pytest.raises(OAuthError) as refused:
        connect.grant()
    assert refused.value.error == "insufficient_scope" and missing in str(refused.value)


def test_instagram_login_denial_carries_the_reason_and_the_state(ig: Connect) -> None:
    ig.control("oauth", {"deny": True})
    back, request = ig.authorize()
    assert (back["error"], back["error_reason"]) == ("access_denied", "user_denied")
    assert back["state"] == request.state and "code" not in back


def test_bad_and_reused_codes_are_invalid_grant(ig: Connect) -> None:
    back, request = ig.authorize()
    with pytest.raises(OAuthError) as bad:
        ig.platform.exchange_code("nope", request, ig.ctx)
    assert bad.value.error == "invalid_grant"
    ig.platform.exchange_code(back["code"], request, ig.ctx)
    with pytest.raises(OAuthError) as reused:
        ig.platform.exchange_code(back["code"], request, ig.ctx)
    assert reused.value.error == "invalid_grant"


def test_a_code_of_one_login_is_refused_by_the_other(
        fb: Connect, ig: Connect) -> None:
    back, request = fb.authorize()
    with pytest.raises(OAuthError) as refused:
        ig.platform.exchange_code(back["code"], request, ig.ctx)
    assert refused.value.error == "invalid_grant"


def test_a_wrong_app_secret_is_invalid_client(ig: Connect) -> None:
    back, request = ig.authorize()
    wrong = oauth_context(ig.platform, ig.http, client_secret="wrong")
    with pytest.raises(OAuthError) as refused:
        ig.platform.exchange_code(back["code"], request, wrong)
    assert refused.value.error == "invalid_client"


@pytest.mark.parametrize("method, path, step", [
    ("POST", "^/oauth/access_token$", "exchange"),
    ("GET", "^/access_token$", "long_lived"),
    ("GET", "/me$", "targets"),
])
def test_instagram_login_5xx_at_any_step_is_an_oauth_error(
        ig: Connect, method: str, path: str, step: str) -> None:
    back, request = ig.authorize()
    grant = None
    if step != "exchange":
        grant = ig.platform.exchange_code(back["code"], request, ig.ctx)
    ig.control("faults", {"method": method, "path": path, "status": 503})
    with pytest.raises(OAuthError) as failed:
        if grant is None:
            ig.platform.exchange_code(back["code"], request, ig.ctx)
        elif step == "long_lived":
            ig.platform.long_lived(grant, ig.ctx)
        else:
            ig.platform.list_targets(grant, ig.ctx)
    assert failed.value.error == "server_error"


def test_facebook_login_5xx_is_an_oauth_error(fb: Connect) -> None:
    back, request = fb.authorize()
    fb.control("faults", {"method": "GET", "path": "/oauth/access_token$", "status": 500})
    with pytest.raises(OAuthError) as failed:
        fb.platform.exchange_code(back["code"], request, fb.ctx)
    assert failed.value.error == "server_error"


def test_a_short_lived_instagram_token_cannot_be_exchanged_twice_for_nothing(
        ig: Connect) -> None:
    """ig_exchange_token takes only a short-lived Instagram Login token."""
    grant = ig.platform.long_lived(ig.grant(), ig.ctx)
    with pytest.raises(OAuthError) as refused:
        ig.platform.long_lived(grant, ig.ctx)
    assert refused.value.error == "invalid_grant"


def test_the_instagram_token_endpoint_takes_multipart_and_answers_errors_its_own_way(
        ig: Connect) -> None:
    back, _ = ig.authorize()
    fields = {"client_id": ig.ctx.client.client_id, "client_secret": ig.ctx.client.client_secret,
              "grant_type": "authorization_code", "redirect_uri": ig.ctx.client.redirect_uri,
              "code": back["code"]}
    multipart = {k: (None, v) for k, v in fields.items()}
    answer = ig.http.post(f"{ig.url}/oauth/access_token", files=multipart)
    assert answer.status_code == 200
    assert answer.json()["user_id"] == IG_LOGIN_USER["user_id"]
    again = ig.http.post(f"{ig.url}/oauth/access_token", data=fields)
    assert again.status_code == 400
    assert set(again.json()) == {"error_type", "code", "error_message"}
    as_json = ig.http.post(f"{ig.url}/oauth/access_token", json=fields)
    assert as_json.status_code == 400 and as_json.json()["error_type"] == "OAuthException"
