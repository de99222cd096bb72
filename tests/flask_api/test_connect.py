"""Connecting accounts by OAuth through the REST API, every way it can go wrong: the
echo test platform's sandbox is the authorization server, on loopback; the browser's
part (opening the authorization URL) is plain HTTP to it, and its redirect back goes to
the app. Each answer is checked against the OpenAPI document."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import attrs
import httpx
import pytest
from flask.testing import FlaskClient

from chat33_core import testplatform
from chat33_core.models import ALL_SCOPES, Credentials, PostStatus, utcnow
from chat33_core.sandbox import serve
from chat33_core.sandbox_oauth import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET
from chat33_core.service import Chat33
from chat33_core.store import tables as t
from chat33_core.testplatform import EchoSandbox

from .conftest import PASSWORD, make_app, make_core

PUBLIC = "https://chat33.example"


@attrs.define
class Flow:
    core: Chat33
    client: FlaskClient
    sandbox: EchoSandbox
    sandbox_url: str
    key: str
    org_id: str
    user_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"x-api-key": self.key}

    def start(self, **body: Any) -> dict[str, Any]:
        body.setdefault("platform", "echo")
        r = self.client.post("/api/v1/accounts/connect", json=body, headers=self.headers)
        assert r.status_code == 201, r.get_json()
        data: dict[str, Any] = r.get_json()
        return data

    def consent(self, authorization_url: str) -> str:
        """What the browser does at the platform: the URL it is sent back to."""
        r = httpx.get(authorization_url)
        assert r.status_code == 302, r.text
        location = r.headers["location"]
        assert location.startswith(f"{PUBLIC}/api/v1/oauth/echo/callback?")
        return location

    def back(self, location: str, **kw: Any) -> Any:
        """The browser's request to the callback (no API key)."""
        return self.client.get(location.removeprefix(PUBLIC), **kw)

    def get(self, cid: str) -> dict[str, Any]:
        r = self.client.get(f"/api/v1/accounts/connect/{cid}", headers=self.headers)
        assert r.status_code == 200
        data: dict[str, Any] = r.get_json()
        return data

    def configure(self, path: str, **body: Any) -> None:
        assert httpx.post(f"{self.sandbox_url}{path}", json=body).status_code == 200


@pytest.fixture
def flow(db_url: str, settings_for: Any, tmp_path: Path) -> Iterator[Flow]:
    sandbox = EchoSandbox()
    with serve(sandbox) as url:
        settings = settings_for(
            db_url, CHAT33_ECHO_API_BASE=url, CHAT33_PUBLIC_BASE_URL=PUBLIC,
            CHAT33_ECHO_CLIENT_ID=SANDBOX_CLIENT_ID,
            CHAT33_ECHO_CLIENT_SECRET=SANDBOX_CLIENT_SECRET,
            CHAT33_ALLOWED_RETURN_ORIGINS="http://localhost:3000")
        core = make_core(settings)
        core.host.register(testplatform, name="echo")
        user = core.create_user("owner@example.com", PASSWORD, "Acme")
        _, key = core.create_api_key(user.org_id, user.id, "tests", sorted(ALL_SCOPES))
        try:
            yield Flow(core=core, client=make_app(core).test_client(), sandbox=sandbox,
                       sandbox_url=url, key=key, org_id=user.org_id, user_id=user.id)
        finally:
            core.store.dispose()


# --- starting ---------------------------------------------------------------------------


def test_connect_answers_a_pending_connection_with_state_and_pkce(flow: Flow) -> None:
    started = flow.start()
    assert started["status"] == "pending" and started["connectionId"].startswith("conn_")
    query = parse_qs(urlsplit(started["authorizationUrl"]).query)
    assert query["redirect_uri"] == [f"{PUBLIC}/api/v1/oauth/echo/callback"]
    assert len(query["state"][0]) >= 22  # at least 128 bits, URL-safe
    assert query["code_challenge_method"] == ["S256"]
    # the state is stored hashed, the verifier encrypted
    with flow.core.store.read() as c:
        row = c.execute(t.oauth_connections.select()).mappings().one()
    assert row["state_hash"] != query["state"][0] and len(row["state_hash"]) == 64
    assert row["verifier_enc"] and query["code_challenge"][0] not in row["verifier_enc"]
    for value in (query["state"][0], row["verifier_enc"]):
        assert value not in str(flow.get(started["connectionId"]))


def test_two_connections_never_share_a_state(flow: Flow) -> None:
    states = {parse_qs(urlsplit(flow.start()["authorizationUrl"]).query)["state"][0]
              for _ in range(3)}
    assert len(states) == 3


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"platform": "nowhere"}, 400, "VALIDATION_ERROR"),
    ({"platform": "x"}, 422, "NOT_CONFIGURED"),  # installed, no CHAT33_X_CLIENT_ID
    ({"platform": "echo", "returnUrl": "https://evil.example/back"}, 400, "VALIDATION_ERROR"),
    ({"platform": "echo", "returnUrl": "javascript:alert(1)"}, 400, "VALIDATION_ERROR"),
    ({"platform": "echo", "returnUrl": f"{PUBLIC}@evil.example/"}, 400, "VALIDATION_ERROR"),
    ({}, 400, "VALIDATION_ERROR"),
])
def test_connect_refuses_bad_requests(flow: Flow, body: dict[str, Any], status: int,
                                      code: str) -> None:
    r = flow.client.post("/api/v1/accounts/connect", json=body, headers=flow.headers)
    assert r.status_code == status, r.get_json()
    assert r.get_json()["error"] == code
    assert "CLIENT_ID" in r.get_json()["message"] or status != 422


def test_a_platform_without_oauth_is_refused(flow: Flow) -> None:
    assert flow.core.host.has_platform("instant")  # installed beside echo, no OAuth
    r = flow.client.post("/api/v1/accounts/connect", json={"platform": "instant"},
                         headers=flow.headers)
    assert r.status_code == 400
    assert "cannot be connected by OAuth" in r.get_json()["message"]


def test_a_key_without_accounts_write_cannot_connect(flow: Flow) -> None:
    _, key = flow.core.create_api_key(flow.org_id, flow.user_id, "read only")
    r = flow.client.post("/api/v1/accounts/connect", json={"platform": "echo"},
                         headers={"x-api-key": key})
    assert r.status_code == 403


def test_return_urls_on_listed_origins_are_accepted(flow: Flow) -> None:
    for url in (f"{PUBLIC}/app/accounts", "http://localhost:3000/done?x=1"):
        assert flow.start(returnUrl=url)["status"] == "pending"


# --- the redirect back ------------------------------------------------------------------


def test_callback_connects_and_redirects_to_the_return_url(flow: Flow) -> None:
    started = flow.start(returnUrl=f"{PUBLIC}/app/accounts?tab=1")
    r = flow.back(flow.consent(started["authorizationUrl"]))
    assert r.status_code == 303
    assert r.headers["location"] == (f"{PUBLIC}/app/accounts?tab=1&connectionId="
                                     f"{started['connectionId']}&status=connected")
    assert r.headers["Cache-Control"] == "no-store"
    connection = flow.get(started["connectionId"])
    assert connection["status"] == "connected" and connection["error"] is None
    [account] = connection["accounts"]
    assert account["externalId"] == "echo-user-ch1" and account["platform"] == "echo"


def test_callback_without_return_url_shows_a_page(flow: Flow) -> None:
    started = flow.start()
    r = flow.back(flow.consent(started["authorizationUrl"]))
    assert r.status_code == 200 and r.mimetype == "text/html"
    assert "Account connected" in r.get_data(as_text=True)


def test_denied_consent_fails_the_connection(flow: Flow) -> None:
    flow.configure("/_sandbox/oauth", deny=True)
    started = flow.start(returnUrl=f"{PUBLIC}/back")
    r = flow.back(flow.consent(started["authorizationUrl"]))
    assert r.status_code == 303 and r.headers["location"].endswith("status=failed")
    connection = flow.get(started["connectionId"])
    assert connection["status"] == "failed" and connection["accounts"] == []
    assert connection["error"]["error"] == "access_denied"
    assert "denied" in connection["error"]["message"]


def test_a_used_state_is_refused(flow: Flow) -> None:
    started = flow.start()
    location = flow.consent(started["authorizationUrl"])
    assert flow.back(location).status_code == 200
    again = flow.back(location)
    assert again.status_code == 400 and again.mimetype == "text/html"
    assert "already used" in again.get_data(as_text=True)
    assert flow.get(started["connectionId"])["status"] == "connected"  # unchanged


@pytest.mark.parametrize("query", ["", "?code=abc", "?state=forged&code=abc",
                                   "?state=&error=access_denied"])
def test_a_missing_or_unknown_state_is_refused(flow: Flow, query: str) -> None:
    flow.start()
    r = flow.client.get(f"/api/v1/oauth/echo/callback{query}")
    assert r.status_code == 400 and r.mimetype == "text/html"
    assert "not valid" in r.get_data(as_text=True)


def test_a_state_for_another_platform_is_refused(flow: Flow) -> None:
    location = flow.consent(flow.start()["authorizationUrl"])
    r = flow.back(location.replace("/oauth/echo/", "/oauth/x/"))
    assert r.status_code == 400


def test_an_expired_connection_is_refused(flow: Flow) -> None:
    started = flow.start(returnUrl=f"{PUBLIC}/back")
    location = flow.consent(started["authorizationUrl"])
    with flow.core.store.begin() as c:
        c.execute(t.oauth_connections.update().values(
            expires_at=utcnow() - timedelta(seconds=1)))
    r = flow.back(location)
    assert r.status_code == 303 and r.headers["location"].endswith("status=expired")
    connection = flow.get(started["connectionId"])
    assert connection["status"] == "expired" and connection["error"]["error"] == "expired"
    assert flow.core.list_accounts(flow.org_id) == []


def test_a_pending_connection_reads_expired_once_past_its_time(flow: Flow) -> None:
    started = flow.start()
    with flow.core.store.begin() as c:
        c.execute(t.oauth_connections.update().values(
            expires_at=utcnow() - timedelta(seconds=1)))
    assert flow.get(started["connectionId"])["status"] == "expired"


def test_a_failed_code_exchange_fails_the_connection(flow: Flow) -> None:
    started = flow.start()
    location = flow.consent(started["authorizationUrl"])
    r = flow.back(location.replace("code=", "code=tampered"))
    assert r.status_code == 200 and "Connection failed" in r.get_data(as_text=True)
    connection = flow.get(started["connectionId"])
    assert connection["status"] == "failed"
    assert connection["error"]["error"] == "invalid_grant"


def test_an_unreachable_token_endpoint_fails_the_connection(flow: Flow) -> None:
    started = flow.start()
    location = flow.consent(started["authorizationUrl"])
    flow.core.settings = attrs.evolve(flow.core.settings, env={
        **flow.core.settings.env, "CHAT33_ECHO_TOKEN_URL": "http://127.0.0.1:9/token"})
    for plugin in flow.core.host.platforms.values():
        plugin.settings = flow.core.settings
    r = flow.back(location)
    assert r.status_code == 200
    connection = flow.get(started["connectionId"])
    assert connection["status"] == "failed"
    assert connection["error"]["error"] == "exchange_failed"


def test_a_session_started_connection_needs_the_same_session(flow: Flow) -> None:
    login = flow.client.post("/api/v1/auth/login", json={
        "email": "owner@example.com", "password": PASSWORD})
    csrf = login.get_json()["csrfToken"]
    r = flow.client.post("/api/v1/accounts/connect", json={"platform": "echo"},
                         headers={"x-csrf-token": csrf})
    assert r.status_code == 201
    started = r.get_json()
    location = flow.consent(started["authorizationUrl"])
    stranger = make_app(flow.core).test_client()  # another browser: no session cookie
    assert stranger.get(location.removeprefix(PUBLIC)).status_code == 200
    connection = flow.get(started["connectionId"])
    assert connection["status"] == "failed"
    assert connection["error"]["error"] == "session_mismatch"
    # the same browser, with its session, completes
    started = flow.client.post("/api/v1/accounts/connect", json={"platform": "echo"},
                               headers={"x-csrf-token": csrf}).get_json()
    assert flow.back(flow.consent(started["authorizationUrl"])).status_code == 200
    assert flow.get(started["connectionId"])["status"] == "connected"


# --- several targets: the selection -------------------------------------------------------


def test_several_targets_wait_for_a_selection(flow: Flow) -> None:
    flow.configure("/_sandbox/config", channels=3)
    started = flow.start(returnUrl=f"{PUBLIC}/back")
    r = flow.back(flow.consent(started["authorizationUrl"]))
    assert r.headers["location"].endswith("status=select")
    cid = started["connectionId"]
    connection = flow.get(cid)
    assert connection["status"] == "select" and connection["accounts"] == []
    assert [t["externalId"] for t in connection["targets"]] == [
        "echo-user-ch1", "echo-user-ch2", "echo-user-ch3"]
    path = f"/api/v1/accounts/connect/{cid}/select"
    for bad in ({"externalIds": []}, {"externalIds": ["echo-user-ch9"]}, {}):
        r = flow.client.post(path, json=bad, headers=flow.headers)
        assert r.status_code == 400, bad
    r = flow.client.post(path, json={"externalIds": ["echo-user-ch1", "echo-user-ch3"]},
                         headers=flow.headers)
    assert r.status_code == 200
    chosen = r.get_json()
    assert chosen["status"] == "connected"
    assert sorted(a["externalId"] for a in chosen["accounts"]) == ["echo-user-ch1",
                                                                  "echo-user-ch3"]
    # once only; the tokens of the targets not chosen are forgotten
    again = flow.client.post(path, json={"externalIds": ["echo-user-ch2"]},
                             headers=flow.headers)
    assert again.status_code == 409
    with flow.core.store.read() as c:
        assert c.execute(t.oauth_connections.select()).mappings().one()["targets_enc"] is None


def test_select_refuses_a_connection_not_waiting_for_one(flow: Flow) -> None:
    started = flow.start()
    r = flow.client.post(f"/api/v1/accounts/connect/{started['connectionId']}/select",
                         json={"externalIds": ["echo-user-ch1"]}, headers=flow.headers)
    assert r.status_code == 409


def test_connections_of_another_organization_are_not_found(flow: Flow) -> None:
    started = flow.start()
    other = flow.core.create_user("other@example.com", PASSWORD, "Other")
    _, key = flow.core.create_api_key(other.org_id, other.id, "x", sorted(ALL_SCOPES))
    cid = started["connectionId"]
    assert flow.client.get(f"/api/v1/accounts/connect/{cid}",
                           headers={"x-api-key": key}).status_code == 404
    assert flow.client.post(f"/api/v1/accounts/connect/{cid}/select", json={
        "externalIds": ["a"]}, headers={"x-api-key": key}).status_code == 404


# --- the same account again, reconnect, disconnect ---------------------------------


def _connect(flow: Flow, **body: Any) -> dict[str, Any]:
    started = flow.start(**body)
    flow.back(flow.consent(started["authorizationUrl"]))
    return flow.get(started["connectionId"])


def test_connecting_the_same_account_twice_updates_it(flow: Flow) -> None:
    [first] = _connect(flow)["accounts"]
    with flow.core.store.begin() as c:
        c.execute(t.accounts.update().values(needs_reconnect=True))
    old = flow.core.account_credentials(first["id"])
    [second] = _connect(flow)["accounts"]
    assert second["id"] == first["id"] and second["needsReconnect"] is False
    new = flow.core.account_credentials(first["id"])
    assert old is not None and new is not None and new.access_token != old.access_token
    assert len(flow.core.list_accounts(flow.org_id)) == 1


def test_reconnect_must_sign_in_the_same_identity(flow: Flow) -> None:
    [account] = _connect(flow)["accounts"]
    before = flow.core.account_credentials(account["id"])
    flow.configure("/_sandbox/config", user="someone-else")
    r = flow.client.post(f"/api/v1/accounts/{account['id']}/reconnect", json={},
                         headers=flow.headers)
    assert r.status_code == 201
    started = r.get_json()
    flow.back(flow.consent(started["authorizationUrl"]))
    connection = flow.get(started["connectionId"])
    assert connection["status"] == "failed"
    assert connection["error"]["error"] == "account_mismatch"
    assert flow.core.account_credentials(account["id"]) == before  # untouched


@pytest.mark.parametrize("account_id", ["chan_missing"])
def test_reconnect_of_an_unknown_account_is_404(flow: Flow, account_id: str) -> None:
    r = flow.client.post(f"/api/v1/accounts/{account_id}/reconnect", json={},
                         headers=flow.headers)
    assert r.status_code == 404


def test_reconnect_of_a_removed_account_is_refused(flow: Flow) -> None:
    [account] = _connect(flow)["accounts"]
    flow.client.delete(f"/api/v1/accounts/{account['id']}", headers=flow.headers)
    r = flow.client.post(f"/api/v1/accounts/{account['id']}/reconnect", json={},
                         headers=flow.headers)
    assert r.status_code == 409


def test_disconnect_revokes_forgets_and_cancels_queued_posts(flow: Flow) -> None:
    [account] = _connect(flow)["accounts"]
    token = flow.core.account_credentials(account["id"])
    assert token is not None
    later = (utcnow() + timedelta(days=1)).isoformat()
    r = flow.client.post("/api/v1/posts", json={
        "accountIds": [account["id"]], "text": "later", "scheduledAt": later},
        headers=flow.headers)
    assert r.status_code == 201
    r = flow.client.delete(f"/api/v1/accounts/{account['id']}", headers=flow.headers)
    assert r.status_code == 200 and r.get_json() == {"success": True, "cancelledPosts": 1}
    assert token.access_token in flow.sandbox.revoked
    assert flow.core.account_credentials(account["id"]) is None
    [post] = flow.core.list_posts(flow.org_id).items
    assert post.status is PostStatus.CANCELLED
    assert "removed" in flow.core.store.list_logs(post.id)[-1].message
    assert flow.client.delete("/api/v1/accounts/chan_nope",
                              headers=flow.headers).status_code == 404


def test_disconnect_without_revocation_still_forgets(flow: Flow) -> None:
    account = flow.core.add_account(flow.org_id, "echo", "by hand",
                                    credentials=Credentials(access_token="by-hand"))
    flow.sandbox.auth.client_id = "another-app"  # the platform refuses the revocation
    r = flow.client.delete(f"/api/v1/accounts/{account.id}", headers=flow.headers)
    assert r.status_code == 200
    assert flow.core.account_credentials(account.id) is None


def test_codes_tokens_and_verifiers_never_reach_logs_or_answers(
        flow: Flow, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="chat33")
    caplog.set_level(logging.DEBUG, logger="chat33_core")
    started = flow.start()
    location = flow.consent(started["authorizationUrl"])
    code = parse_qs(urlsplit(location).query)["code"][0]
    page = flow.back(location).get_data(as_text=True)
    connection = flow.get(started["connectionId"])
    [account] = connection["accounts"]
    credentials = flow.core.account_credentials(account["id"])
    assert credentials is not None and credentials.refresh_token
    with flow.core.store.read() as c:
        row = c.execute(t.oauth_connections.select()).mappings().one()
    verifier = flow.core.vault.decrypt(row["verifier_enc"])
    secrets = [code, verifier, credentials.access_token, credentials.refresh_token]
    answers = page + str(connection) + str(flow.client.get(
        "/api/v1/accounts", headers=flow.headers).get_json())
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "connected" in logged
    for secret in secrets:
        assert secret not in answers and secret not in logged
