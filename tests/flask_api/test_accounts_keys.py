"""/accounts and /api-keys."""

from __future__ import annotations

import pytest
from chat33_flask.auth import SESSION_COOKIE

from .conftest import PASSWORD, Api

ACCOUNT_KEYS = {"id", "platform", "name", "username", "isActive", "metadata", "createdAt"}
KEY_KEYS = {"id", "name", "keyPrefix", "scopes", "lastUsedAt", "expiresAt", "isActive",
            "createdAt"}


def _session(api: Api) -> dict[str, str]:
    response = api.client.post("/api/v1/auth/login",
                               json={"email": api.org.email, "password": PASSWORD})
    assert api.client.get_cookie(SESSION_COOKIE) is not None
    return {"x-csrf-token": response.get_json()["csrfToken"]}


def test_accounts_list_has_the_documented_fields(api: Api) -> None:
    response = api.get("/accounts")
    assert response.status_code == 200
    items = response.get_json()["items"]
    assert len(items) == 5
    for item in items:
        assert set(item) >= ACCOUNT_KEYS  # plus needsReconnect and externalId (additive)
        assert item["isActive"] is True
    x = next(i for i in items if i["platform"] == "x")
    assert (x["name"], x["username"]) == ("Acme on x", "acme_x")


def test_accounts_filter_by_platform(api: Api) -> None:
    items = api.get("/accounts?platform=youtube").get_json()["items"]
    assert [i["id"] for i in items] == [api.org.accounts["youtube"]]


def test_accounts_unknown_platform_is_400(sqlite_api: Api) -> None:
    response = sqlite_api.get("/accounts?platform=myspace")
    assert response.status_code == 400
    assert [d["path"] for d in response.get_json()["details"]] == ["platform"]


def test_api_keys_refuse_api_key_auth(api: Api) -> None:
    for method in ("GET", "POST"):
        response = api.client.open("/api/v1/api-keys", method=method, headers=api.org.headers)
        assert response.status_code == 401
        assert response.get_json()["error"] == "Unauthorized"
    assert api.delete("/api-keys/key_x").status_code == 401


def test_create_key_returns_the_raw_key_once(api: Api) -> None:
    csrf = _session(api)
    response = api.client.post("/api/v1/api-keys", json={"name": "CI"}, headers=csrf)
    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == KEY_KEYS | {"key"}
    assert body["key"].startswith(body["keyPrefix"]) and len(body["keyPrefix"]) == 12
    assert body["name"] == "CI"
    assert body["scopes"] == ["accounts:read", "posts:read", "posts:write", "media:write"]
    listed = api.client.get("/api/v1/api-keys").get_json()["items"]
    assert body["id"] in {k["id"] for k in listed}
    assert all("key" not in k and set(k) == KEY_KEYS for k in listed)
    assert api.client.get("/api/v1/accounts", headers={"x-api-key": body["key"]}
                          ).status_code == 200


def test_create_key_default_name_and_narrow_scopes(api: Api) -> None:
    csrf = _session(api)
    plain = api.client.post("/api/v1/api-keys", headers=csrf).get_json()
    assert plain["name"] == "Default API Key"
    narrow = api.client.post("/api/v1/api-keys", json={"scopes": ["posts:read"]}, headers=csrf)
    assert narrow.get_json()["scopes"] == ["posts:read"]


@pytest.mark.parametrize(("body", "path"), [
    ({"name": "   "}, "name"), ({"name": "n" * 201}, "name"), ({"name": 5}, "name"),
    ({"scopes": ["root"]}, "scopes"),
    ({"extra": 1}, "extra"),
])
def test_create_key_validation(sqlite_api: Api, body: dict, path: str) -> None:
    csrf = _session(sqlite_api)
    response = sqlite_api.client.post("/api/v1/api-keys", json=body, headers=csrf)
    assert response.status_code == 400
    assert [d["path"] for d in response.get_json()["details"]] == [path]


def test_create_key_needs_the_csrf_token(sqlite_api: Api) -> None:
    _session(sqlite_api)
    assert sqlite_api.client.post("/api/v1/api-keys").status_code == 403


def test_revoke_key(api: Api) -> None:
    csrf = _session(api)
    created = api.client.post("/api/v1/api-keys", headers=csrf).get_json()
    response = api.client.delete(f"/api/v1/api-keys/{created['id']}", headers=csrf)
    assert response.status_code == 200
    assert response.get_json() == {"revoked": True}
    assert api.client.get("/api/v1/posts", headers={"x-api-key": created["key"]}
                          ).status_code == 401
    listed = {k["id"]: k for k in api.client.get("/api/v1/api-keys").get_json()["items"]}
    assert listed[created["id"]]["isActive"] is False


def test_revoke_unknown_or_foreign_key_is_404(api: Api) -> None:
    csrf = _session(api)
    foreign, _ = api.core.create_api_key(api.other.id, api.other.user_id, "theirs")
    for key_id in ("key_missing", foreign.id):
        response = api.client.delete(f"/api/v1/api-keys/{key_id}", headers=csrf)
        assert response.status_code == 404
        assert response.get_json()["error"] == "Not found"
