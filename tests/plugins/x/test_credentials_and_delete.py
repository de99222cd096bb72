"""OAuth 2 refresh with rotating refresh tokens, and deleting posts (threads included)."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from chat33_x import XPlatform

from chat33_core.config import Settings
from chat33_core.errors import CredentialsExpired, PermanentError, ReconnectRequired, TransientError
from chat33_core.models import Credentials, utcnow
from chat33_core.platforms import DeleteContext, RefreshContext
from chat33_core.sandbox import SandboxApp, json_response, serve

from .conftest import Sandbox, account, credentials


def refresh(sandbox: Sandbox, creds: Credentials, platform: XPlatform | None = None
            ) -> Credentials:
    platform = platform or sandbox.platform
    return platform.refresh_credentials(creds, RefreshContext(
        account=account(), http=sandbox.http, settings=platform.settings))


# --- refresh -------------------------------------------------------------------------------


def test_refresh_rotates_the_refresh_token(sandbox: Sandbox) -> None:
    fresh = refresh(sandbox, credentials())
    assert fresh.access_token != "sandbox-token"
    assert fresh.refresh_token and fresh.refresh_token != "sandbox-refresh"
    assert fresh.expires_at is not None
    assert timedelta(minutes=119) < fresh.expires_at - utcnow() <= timedelta(hours=2)
    assert "offline.access" in fresh.extra["scope"]
    # the new access token works; the spent refresh token does not
    sandbox.platform.publish(sandbox.context(["with a fresh token"],
                                             credentials=fresh))
    with pytest.raises(ReconnectRequired) as info:
        refresh(sandbox, credentials())
    assert "Value passed for the token was invalid." in info.value.message
    # and the rotated one refreshes again
    again = refresh(sandbox, fresh)
    assert again.refresh_token not in (fresh.refresh_token, "sandbox-refresh")
    assert sandbox.state()["refreshes"] == 2


def test_expired_token_then_refresh_then_publish(sandbox: Sandbox) -> None:
    """What the worker does on CredentialsExpired: refresh once, publish again."""
    sandbox.revoke("sandbox-token")
    ctx = sandbox.context(["after a refresh"])
    with pytest.raises(CredentialsExpired):
        sandbox.platform.publish(ctx)
    ctx.credentials = refresh(sandbox, ctx.credentials)
    sandbox.platform.publish(ctx)
    assert [t["text"] for t in sandbox.tweets()] == ["after a refresh"]


def test_no_refresh_token_means_reconnect(sandbox: Sandbox) -> None:
    with pytest.raises(ReconnectRequired):
        refresh(sandbox, credentials(refresh=None))


def test_needs_refresh_ten_minutes_before_expiry() -> None:
    platform = XPlatform(Settings.from_env({}))
    soon = Credentials(access_token="a", refresh_token="r",
                       expires_at=utcnow() + timedelta(minutes=5))
    later = Credentials(access_token="a", refresh_token="r",
                        expires_at=utcnow() + timedelta(hours=2))
    assert platform.needs_refresh(soon) and not platform.needs_refresh(later)


class TokenEndpoint(SandboxApp):
    """Records what a refresh sends (client authentication differs by client type)."""

    def __init__(self, status: int = 200) -> None:
        super().__init__()
        self.status = status
        self.seen: list[dict[str, str]] = []
        self.route("/oauth/token", self.token, methods=["POST"])

    def token(self, request):  # type: ignore[no-untyped-def]
        self.seen.append({**request.form, "authorization":
                          request.headers.get("Authorization", "")})
        if self.status != 200:
            return json_response({"error": "server_error"}, self.status)
        return json_response({"token_type": "bearer", "expires_in": 7200,
                              "access_token": "new-access", "scope": "tweet.write"})


def test_token_url_override_and_confidential_client(sandbox: Sandbox) -> None:
    endpoint = TokenEndpoint()
    with serve(endpoint) as url:
        platform = XPlatform(Settings.from_env({
            "CHAT33_X_TOKEN_URL": f"{url}/oauth/token", "CHAT33_X_CLIENT_ID": "cid",
            "CHAT33_X_CLIENT_SECRET": "secret"}))
        fresh = refresh(sandbox, credentials(), platform)
    (seen,) = endpoint.seen
    assert seen["grant_type"] == "refresh_token" and seen["refresh_token"] == "sandbox-refresh"
    assert seen["authorization"] == "Basic " + base64.b64encode(b"cid:secret").decode()
    assert "client_id" not in seen
    # X sent no new refresh token this time: the old one stays (the core's rule)
    assert fresh.access_token == "new-access" and fresh.refresh_token is None
    assert credentials().replaced_by(fresh).refresh_token == "sandbox-refresh"


def test_public_client_sends_its_id_in_the_body(sandbox: Sandbox) -> None:
    endpoint = TokenEndpoint()
    with serve(endpoint) as url:
        platform = XPlatform(Settings.from_env({
            "CHAT33_X_TOKEN_URL": f"{url}/oauth/token", "CHAT33_X_CLIENT_ID": "public-id"}))
        refresh(sandbox, credentials(), platform)
    (seen,) = endpoint.seen
    assert seen["client_id"] == "public-id" and seen["authorization"] == ""


def test_token_endpoint_outage_is_transient(sandbox: Sandbox) -> None:
    with serve(TokenEndpoint(status=503)) as url:
        platform = XPlatform(Settings.from_env({"CHAT33_X_TOKEN_URL": f"{url}/oauth/token"}))
        with pytest.raises(TransientError):
            refresh(sandbox, credentials(), platform)


def test_default_token_url_follows_the_api_base() -> None:
    platform = XPlatform(Settings.from_env({"CHAT33_X_API_BASE": "http://127.0.0.1:1234"}))
    assert platform.token_url() == "http://127.0.0.1:1234/2/oauth2/token"
    assert XPlatform(Settings.from_env({})).token_url() == "https://api.x.com/2/oauth2/token"


# --- delete ---------------------------------------------------------------------------------


def delete(sandbox: Sandbox, ids: list[str], token: str = "sandbox-token") -> list[str]:
    events: list[str] = []
    sandbox.platform.delete(DeleteContext(
        account=account(), credentials=credentials(token), http=sandbox.http,
        settings=sandbox.settings, external_ids=ids,
        log=lambda event, message, **data: events.append(message)))
    return events


def test_delete_removes_every_post_of_a_thread(sandbox: Sandbox) -> None:
    result = sandbox.platform.publish(sandbox.context(["one", "two", "three"]))
    ids = [r.external_id for r in result.receipts]
    events = delete(sandbox, ids)
    assert sandbox.tweets() == []
    assert all(t["deleted"] for t in sandbox.tweets(live=False))
    # replies first, so no orphaned reply is left if deleting stops half-way
    assert events == [f"post {i} deleted on X" for i in reversed(ids)]


def test_delete_of_a_post_already_gone_succeeds(sandbox: Sandbox) -> None:
    tweet_id = sandbox.platform.publish(sandbox.context(["short-lived"])).first.external_id
    delete(sandbox, [tweet_id])
    assert delete(sandbox, [tweet_id]) == [f"post {tweet_id} was already gone"]


def test_delete_of_someone_elses_post_fails_after_trying_the_rest(sandbox: Sandbox) -> None:
    sandbox.add_user(id="77", username="other", access_token="other-token")
    theirs = sandbox.platform.publish(sandbox.context(
        ["not yours"], account=account(external_id="77"),
        credentials=credentials("other-token"))).first.external_id
    mine = sandbox.platform.publish(sandbox.context(["mine"])).first.external_id
    with pytest.raises(PermanentError) as info:
        delete(sandbox, [mine, theirs])
    assert theirs in info.value.message and "not allowed" in info.value.message
    assert [t["id"] for t in sandbox.tweets()] == [theirs]


def test_delete_with_a_revoked_token_asks_for_a_refresh(sandbox: Sandbox) -> None:
    tweet_id = sandbox.platform.publish(sandbox.context(["keep"])).first.external_id
    sandbox.revoke("sandbox-token")
    with pytest.raises(CredentialsExpired):
        delete(sandbox, [tweet_id])


def test_delete_stops_at_a_rate_limit(sandbox: Sandbox) -> None:
    result = sandbox.platform.publish(sandbox.context(["a", "b", "c"]))
    sandbox.config(limits={"delete": 1})
    with pytest.raises(TransientError) as info:
        delete(sandbox, [r.external_id for r in result.receipts])
    assert info.value.retry_after is not None and info.value.retry_after > 0
    assert len(sandbox.tweets()) == 2
