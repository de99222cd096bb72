"""Authentication: API keys, sessions with CSRF, scopes, organizations kept apart."""

from __future__ import annotations

from chat33_flask.auth import SESSION_COOKIE

from .conftest import PASSWORD, Api


def _login(api: Api, email: str | None = None, password: str = PASSWORD) -> tuple[str, str]:
    response = api.client.post("/api/v1/auth/login",
                               json={"email": email or api.org.email, "password": password})
    assert response.status_code == 200, response.get_json()
    cookie = api.client.get_cookie(SESSION_COOKIE)
    assert cookie is not None
    return cookie.value, response.get_json()["csrfToken"]


def test_missing_api_key_is_401(api: Api) -> None:
    response = api.client.get("/api/v1/accounts")
    assert response.status_code == 401
    assert response.get_json()["error"] == "Unauthorized"
    assert "x-api-key" in response.get_json()["message"]


def test_bad_api_key_is_401(api: Api) -> None:
    response = api.client.get("/api/v1/posts", headers={"x-api-key": "sk_live_nope"})
    assert response.status_code == 401
    assert response.get_json() == {"error": "Unauthorized", "message": "invalid API key",
                                   "details": []}


def test_revoked_api_key_is_401(api: Api) -> None:
    key, raw = api.core.create_api_key(api.org.id, api.org.user_id, "short-lived")
    assert api.client.get("/api/v1/posts", headers={"x-api-key": raw}).status_code == 200
    api.core.revoke_api_key(api.org.id, key.id)
    response = api.client.get("/api/v1/posts", headers={"x-api-key": raw})
    assert response.status_code == 401
    assert "revoked" in response.get_json()["message"]


def test_key_without_the_scope_is_403_insufficient_scope(api: Api) -> None:
    _, raw = api.core.create_api_key(api.org.id, api.org.user_id, "reader",
                                     scopes=["posts:read"])
    headers = {"x-api-key": raw}
    assert api.client.get("/api/v1/posts", headers=headers).status_code == 200
    for method, path in (("GET", "/accounts"), ("POST", "/posts"), ("POST", "/media/upload"),
                         ("POST", "/posts/validate")):
        response = api.client.open("/api/v1" + path, method=method, headers=headers,
                                   json={"accountIds": []})
        assert response.status_code == 403, path
        body = response.get_json()
        assert body["error"] == "Insufficient scope"
        assert body["details"] == []


def test_login_sets_an_httponly_samesite_lax_cookie(api: Api) -> None:
    response = api.client.post("/api/v1/auth/login",
                               json={"email": api.org.email, "password": PASSWORD})
    assert response.status_code == 200
    body = response.get_json()
    assert body["user"]["email"] == api.org.email
    assert body["user"]["orgId"] == api.org.id
    assert body["csrfToken"]
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(SESSION_COOKIE + "=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie


def test_wrong_password_is_401(api: Api) -> None:
    response = api.client.post("/api/v1/auth/login",
                               json={"email": api.org.email, "password": "wrong password"})
    assert response.status_code == 401
    assert response.get_json()["error"] == "Unauthorized"
    assert api.client.get_cookie(SESSION_COOKIE) is None


def test_login_body_fields_are_validated_with_paths(api: Api) -> None:
    response = api.client.post("/api/v1/auth/login", json={"email": api.org.email})
    assert response.status_code == 400
    assert [d["path"] for d in response.get_json()["details"]] == ["password"]


def test_session_reads_need_no_csrf_token(api: Api) -> None:
    _login(api)
    response = api.client.get("/api/v1/auth/me")
    assert response.status_code == 200
    assert response.get_json()["via"] == "session"
    assert response.get_json()["user"]["id"] == api.org.user_id
    assert api.client.get("/api/v1/posts").status_code == 200


def test_session_writes_need_the_csrf_token(api: Api) -> None:
    _, csrf = _login(api)
    body = {"accountIds": [api.org.accounts["x"]], "text": "from the browser"}
    refused = api.client.post("/api/v1/posts", json=body)
    assert refused.status_code == 403
    assert "x-csrf-token" in refused.get_json()["message"]
    wrong = api.client.post("/api/v1/posts", json=body, headers={"x-csrf-token": "nope"})
    assert wrong.status_code == 403
    accepted = api.client.post("/api/v1/posts", json=body, headers={"x-csrf-token": csrf})
    assert accepted.status_code == 201


def test_api_key_writes_need_no_csrf_token_even_with_a_cookie(api: Api) -> None:
    _login(api)
    response = api.post("/posts", {"accountIds": [api.org.accounts["x"]], "text": "key"})
    assert response.status_code == 201


def test_logout_ends_the_session(api: Api) -> None:
    _, csrf = _login(api)
    response = api.client.post("/api/v1/auth/logout", headers={"x-csrf-token": csrf})
    assert response.status_code == 200
    assert response.get_json() == {"loggedOut": True}
    assert api.client.get_cookie(SESSION_COOKIE) is None
    assert api.client.get("/api/v1/auth/me").status_code == 401


def test_stolen_cookie_after_logout_is_refused(api: Api) -> None:
    token, csrf = _login(api)
    api.client.post("/api/v1/auth/logout", headers={"x-csrf-token": csrf})
    api.client.set_cookie(SESSION_COOKIE, token)
    assert api.client.get("/api/v1/auth/me").status_code == 401


def test_me_with_an_api_key(api: Api) -> None:
    response = api.get("/auth/me")
    assert response.status_code == 200
    body = response.get_json()
    assert body["via"] == "key"
    assert body["user"]["email"] == api.org.email
    assert set(body["scopes"]) == {"accounts:read", "posts:read", "posts:write", "media:write"}


def test_other_organizations_ids_are_404(api: Api) -> None:
    theirs = api.create(org=api.other)["posts"][0]["id"]
    for method, path in (("GET", f"/posts/{theirs}"), ("PATCH", f"/posts/{theirs}"),
                         ("DELETE", f"/posts/{theirs}"), ("GET", f"/posts/{theirs}/logs"),
                         ("POST", f"/posts/{theirs}/duplicate")):
        response = api.client.open("/api/v1" + path, method=method, headers=api.org.headers,
                                   json={})
        assert response.status_code == 404, (method, path)
        assert response.get_json()["error"] == "Not found"
    assert api.get(f"/posts/{theirs}", org=api.other).status_code == 200


def test_other_organizations_rows_never_appear_in_lists(api: Api) -> None:
    api.create(org=api.other)
    mine = api.create()["posts"][0]["id"]
    posts = api.get("/posts").get_json()
    assert [p["id"] for p in posts["items"]] == [mine]
    assert posts["total"] == 1
    accounts = api.get("/accounts").get_json()["items"]
    assert {a["id"] for a in accounts} == set(api.org.accounts.values())


def test_posting_to_another_organizations_channel_is_refused(api: Api) -> None:
    response = api.post("/posts", {"accountIds": [api.other.accounts["x"]], "text": "hi"})
    assert response.status_code == 400
    assert [d["path"] for d in response.get_json()["details"]] == ["accountIds[0]"]


def test_a_post_body_is_judged_only_once_the_caller_is_known(api: Api) -> None:
    """POST /posts reads the accounts its body names along with the API key; the body
    still cannot change the answer to a caller without a valid key."""
    mine, theirs = api.org.accounts["x"], api.other.accounts["x"]
    for body in (b'{"accountIds": [', b'{"accountIds": "nope"}', b"[]",
                 b'{"accountIds": [%s]}' % f'"{mine}"'.encode()):
        for headers in ({}, {"x-api-key": "sk_live_nope"}):
            response = api.client.post("/api/v1/posts", data=body, headers=headers,
                                       content_type="application/json")
            assert response.status_code == 401, (body, headers)
    response = api.post("/posts", data=b'{"accountIds": [', content_type="application/json")
    assert response.status_code == 400 and response.get_json()["details"][0]["path"] == "body"
    response = api.post("/posts", {"accountIds": [theirs], "text": "not mine"})
    assert response.status_code == 400
    assert response.get_json()["details"][0]["path"].startswith("accountIds")
    created = api.post("/posts", {"accountIds": [mine], "text": "mine"})
    assert created.status_code == 201
    assert [p["accountId"] for p in created.get_json()["posts"]] == [mine]
