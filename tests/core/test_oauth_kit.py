"""The OAuth building blocks every plugin shares: PKCE, platform URLs, the sandbox's
authorization server (codes, redirect URIs, PKCE, state, denial)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from chat33_core.config import Settings
from chat33_core.oauth import code_challenge_s256, missing_scopes, new_code_verifier, new_state
from chat33_core.sandbox import SandboxApp, json_response, serve
from chat33_core.sandbox_oauth import (
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    AuthorizationServer,
    GrantRefused,
)

REDIRECT = "http://127.0.0.1:9/api/v1/oauth/demo/callback"


def test_the_s256_challenge_matches_rfc_7636_appendix_b() -> None:
    assert (code_challenge_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
            == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")


def test_states_and_verifiers_are_long_fresh_and_url_safe() -> None:
    states = {new_state() for _ in range(100)}
    assert len(states) == 100 and all(len(s) >= 43 for s in states)
    verifier = new_code_verifier()
    assert 43 <= len(verifier) <= 128
    assert set(verifier) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                "0123456789-._~")


def test_missing_scopes_keeps_the_required_order() -> None:
    assert missing_scopes(["b"], ["a", "b", "c"]) == ["a", "c"]
    assert missing_scopes(["a", "b"], ["a", "b"]) == []


def test_platform_url_replaces_only_the_origin_when_an_api_base_is_set() -> None:
    plain = Settings.from_env({"CHAT33_SECRET_KEY": "k" * 32})
    url = "https://accounts.google.com/o/oauth2/v2/auth?x=1"
    assert plain.platform_url("youtube", url) == url
    local = Settings.from_env({"CHAT33_SECRET_KEY": "k" * 32,
                               "CHAT33_YOUTUBE_API_BASE": "http://127.0.0.1:8/yt/"})
    assert local.platform_url("youtube", url) == "http://127.0.0.1:8/yt/o/oauth2/v2/auth?x=1"


class Demo(SandboxApp):
    def __init__(self) -> None:
        super().__init__()
        self.auth = AuthorizationServer("demo", self, pkce="required")
        self.route("/authorize", self.authorize, methods=["GET"])
        self.route("/token", self.token, methods=["POST"])

    def reset(self) -> None:
        self.auth.reset()

    def authorize(self, request):  # type: ignore[no-untyped-def]
        return self.auth.authorize(request, subject="user-1", allowed_scopes=["read", "write"])

    def token(self, request):  # type: ignore[no-untyped-def]
        form = request.form
        try:
            consent = self.auth.redeem(form.get("code"), client_id=form.get("client_id"),
                                       client_secret=form.get("client_secret"),
                                       redirect_uri=form.get("redirect_uri"),
                                       code_verifier=form.get("code_verifier"))
        except GrantRefused as refused:
            return json_response(refused.body(), 400)
        return json_response({"subject": consent.subject, "scope": " ".join(consent.scopes)})


@pytest.fixture
def sandbox():  # type: ignore[no-untyped-def]
    app = Demo()
    with serve(app) as base, httpx.Client(base_url=base) as http:
        yield http


def authorize(http: httpx.Client, **overrides: str) -> httpx.Response:
    params = {"client_id": SANDBOX_CLIENT_ID, "redirect_uri": REDIRECT,
              "response_type": "code", "scope": "read write", "state": "s t&ate",
              "code_challenge": code_challenge_s256("v" * 43),
              "code_challenge_method": "S256", **overrides}
    return http.get("/authorize", params=params)


def redirected(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(REDIRECT + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def exchange(http: httpx.Client, code: str, **overrides: str) -> httpx.Response:
    form = {"code": code, "client_id": SANDBOX_CLIENT_ID, "client_secret": SANDBOX_CLIENT_SECRET,
            "redirect_uri": REDIRECT, "code_verifier": "v" * 43, **overrides}
    return http.post("/token", data=form)


def test_a_code_is_exchanged_once_with_its_verifier_and_state_comes_back_as_sent(
        sandbox) -> None:  # type: ignore[no-untyped-def]
    http = sandbox
    back = redirected(authorize(http))
    assert back["state"] == "s t&ate"
    first = exchange(http, back["code"])
    assert first.json() == {"subject": "user-1", "scope": "read write"}
    again = exchange(http, back["code"])
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


@pytest.mark.parametrize("overrides, error", [
    ({"code_verifier": "w" * 43}, "invalid_grant"),
    ({"redirect_uri": REDIRECT + "x"}, "invalid_grant"),
    ({"client_secret": "nope"}, "invalid_client"),
    ({"client_id": "someone-else"}, "invalid_client"),
])
def test_a_code_is_refused_when_anything_bound_to_it_differs(
        sandbox, overrides: dict[str, str], error: str) -> None:  # type: ignore[no-untyped-def]
    http = sandbox
    code = redirected(authorize(http))["code"]
    refused = exchange(http, code, **overrides)
    assert refused.status_code == 400 and refused.json()["error"] == error


def test_an_expired_code_is_invalid_grant(sandbox) -> None:  # type: ignore[no-untyped-def]
    http = sandbox
    http.post("/_sandbox/oauth", json={"code_lifetime": -1})
    code = redirected(authorize(http))["code"]
    assert exchange(http, code).json()["error"] == "invalid_grant"


def test_an_unknown_client_or_redirect_uri_gets_an_error_page_not_a_redirect(
        sandbox) -> None:  # type: ignore[no-untyped-def]
    http = sandbox
    for overrides in ({"client_id": "stranger"},
                      {"redirect_uri": "https://evil.example/steal"}):
        page = authorize(http, **overrides)
        assert page.status_code == 400 and "location" not in page.headers
        assert page.headers["content-type"].startswith("text/html")


def test_denial_missing_pkce_and_unknown_scopes_redirect_with_an_error_and_the_state(
        sandbox) -> None:  # type: ignore[no-untyped-def]
    http = sandbox
    assert redirected(authorize(http, code_challenge="", code_challenge_method=""))[
        "error"] == "invalid_request"
    assert redirected(authorize(http, scope="read admin"))["error"] == "invalid_scope"
    http.post("/_sandbox/oauth", json={"deny": True})
    denied = redirected(authorize(http))
    assert denied["error"] == "access_denied" and denied["state"] == "s t&ate"
    assert "code" not in denied


def test_a_partial_grant_reports_only_the_granted_scopes(sandbox) -> None:  # type: ignore[no-untyped-def]
    http = sandbox
    http.post("/_sandbox/oauth", json={"granted_scopes": ["read"]})
    code = redirected(authorize(http))["code"]
    assert exchange(http, code).json()["scope"] == "read"


def test_unknown_switches_are_refused_and_reset_forgets_them(sandbox) -> None:  # type: ignore[no-untyped-def]
    http = sandbox
    assert http.post("/_sandbox/oauth", json={"denyy": True}).status_code == 400
    http.post("/_sandbox/oauth", json={"deny": True})
    http.post("/_sandbox/reset")
    assert "code" in redirected(authorize(http))


@pytest.mark.parametrize(("old", "new", "kept"), [
    ("rt-old", None, "rt-old"),      # a grant or refresh without one: the stored one stays
    ("rt-old", "rt-new", "rt-new"),  # rotated: the new one replaces it
    (None, None, None),              # the platform has none (Meta, Telegram)
    (None, "rt-new", "rt-new"),
])
def test_new_credentials_keep_the_stored_refresh_token_only_when_they_have_none(
        old: str | None, new: str | None, kept: str | None) -> None:
    from chat33_core.models import Credentials

    stored = Credentials(access_token="at-old", refresh_token=old)
    fresh = Credentials(access_token="at-new", refresh_token=new, extra={"scope": "s"})
    saved = stored.replaced_by(fresh)
    assert (saved.access_token, saved.refresh_token, saved.extra) == ("at-new", kept,
                                                                      {"scope": "s"})


def test_the_refresh_tokens_switch_is_one_of_the_known_options() -> None:
    app = SandboxApp()
    AuthorizationServer("demo", app)
    with serve(app) as url:
        answer = httpx.post(f"{url}/_sandbox/oauth", json={"refresh_tokens": False})
        assert answer.status_code == 200 and answer.json()["refresh_tokens"] is False
        wrong = httpx.post(f"{url}/_sandbox/oauth", json={"refresh_token": False})
        assert wrong.status_code == 400 and "refresh_tokens" in wrong.json()["options"]
