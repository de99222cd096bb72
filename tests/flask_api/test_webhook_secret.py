"""GET /webhooks/secret and POST /webhooks/secret/rotate: scope ``settings:write``
(sessions have it; keys only when created with it), the grace period, bad bodies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from .conftest import PASSWORD, Api, Org


def _settings_key(api: Api, org: Org | None = None) -> dict[str, str]:
    org = org or api.org
    _, raw = api.core.create_api_key(org.id, org.user_id, "settings", ["settings:write"])
    return {"x-api-key": raw}


def test_read_and_rotate_with_a_settings_key(api: Api) -> None:
    headers = _settings_key(api)
    first = api.get("/webhooks/secret", headers=headers)
    assert first.status_code == 200, first.get_json()
    body = first.get_json()
    assert body["secret"].startswith("whsec_") and body["previousSecretsExpireAt"] == []
    assert body["secret"] == api.core.webhook_secret(api.org.id)
    assert api.get("/webhooks/secret", headers=headers).get_json() == body

    rotated = api.post("/webhooks/secret/rotate", headers=headers)
    assert rotated.status_code == 200, rotated.get_json()
    new = rotated.get_json()
    assert new["secret"] != body["secret"]
    (until,) = new["previousSecretsExpireAt"]
    left = datetime.fromisoformat(until.replace("Z", "+00:00")) - datetime.now(UTC)
    assert timedelta(hours=23) < left <= timedelta(hours=24)
    assert api.core.webhook_signing_secrets(api.org.id) == [new["secret"], body["secret"]]
    assert api.get("/webhooks/secret", headers=headers).get_json() == new
    # another organization's secret is untouched and its own
    theirs = api.get("/webhooks/secret", org=api.other, headers=_settings_key(api, api.other))
    assert theirs.get_json()["secret"] not in (body["secret"], new["secret"])


def test_a_grace_of_zero_ends_the_old_secrets_at_once(sqlite_api: Api) -> None:
    api = sqlite_api
    headers = _settings_key(api)
    api.post("/webhooks/secret/rotate", {"graceSeconds": 3600}, headers=headers)
    response = api.post("/webhooks/secret/rotate", {"graceSeconds": 0}, headers=headers)
    assert response.get_json()["previousSecretsExpireAt"] == []
    assert api.core.webhook_signing_secrets(api.org.id) == [response.get_json()["secret"]]


@pytest.mark.parametrize("body", [{"graceSeconds": -1}, {"graceSeconds": 604801},
                                  {"graceSeconds": 10**30}, {"graceSeconds": "1h"},
                                  {"graceSeconds": 1.5}, {"grace": 60}])
def test_bad_rotation_bodies_are_400_and_change_nothing(sqlite_api: Api, body: Any) -> None:
    api = sqlite_api
    headers = _settings_key(api)
    before = api.core.webhook_secret(api.org.id)
    response = api.post("/webhooks/secret/rotate", body, headers=headers)
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["error"] == "VALIDATION_ERROR"
    assert [d["path"] for d in response.get_json()["details"]] == [next(iter(body))]
    assert api.core.webhook_signing_secrets(api.org.id) == [before]


def test_a_default_key_lacks_the_scope(api: Api) -> None:
    before = api.core.webhook_secret(api.org.id)
    for response in (api.get("/webhooks/secret"), api.post("/webhooks/secret/rotate")):
        assert response.status_code == 403
        assert response.get_json()["error"] == "Insufficient scope"
        assert "settings:write" in response.get_json()["message"]
    assert api.core.webhook_signing_secrets(api.org.id) == [before]


def test_a_signed_in_user_may_and_needs_the_csrf_token_to_rotate(sqlite_api: Api) -> None:
    api = sqlite_api
    login = api.client.post("/api/v1/auth/login",
                            json={"email": api.org.email, "password": PASSWORD})
    csrf = login.get_json()["csrfToken"]
    me = api.client.get("/api/v1/auth/me").get_json()
    assert "settings:write" in me["scopes"]
    secret = api.client.get("/api/v1/webhooks/secret").get_json()["secret"]
    assert api.client.post("/api/v1/webhooks/secret/rotate").status_code == 403
    rotated = api.client.post("/api/v1/webhooks/secret/rotate",
                              headers={"x-csrf-token": csrf})
    assert rotated.status_code == 200
    assert rotated.get_json()["secret"] != secret


def test_keys_may_be_created_with_the_settings_scope(sqlite_api: Api) -> None:
    api = sqlite_api
    login = api.client.post("/api/v1/auth/login",
                            json={"email": api.org.email, "password": PASSWORD})
    created = api.client.post("/api/v1/api-keys", json={"scopes": ["settings:write"]},
                              headers={"x-csrf-token": login.get_json()["csrfToken"]})
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["scopes"] == ["settings:write"]
    key = {"x-api-key": created.get_json()["key"]}
    assert api.get("/webhooks/secret", headers=key).status_code == 200
    assert api.get("/posts", headers=key).status_code == 403  # that scope only


def test_the_openapi_document_describes_both(sqlite_api: Api) -> None:
    doc = sqlite_api.client.get("/api/v1/openapi.json").get_json()
    get = doc["paths"]["/webhooks/secret"]["get"]
    rotate = doc["paths"]["/webhooks/secret/rotate"]["post"]
    assert get["x-required-scopes"] == rotate["x-required-scopes"] == ["settings:write"]
    assert rotate["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "RotateWebhookSecretRequest")
    schema = doc["components"]["schemas"]["RotateWebhookSecretRequest"]
    assert schema["properties"]["graceSeconds"] == {
        "type": "integer", "minimum": 0, "maximum": 604800, "default": 86400}
