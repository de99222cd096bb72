"""JSON bodies the parser must refuse cleanly: nested beyond reason, or with strings that
are not text (lone UTF-16 surrogates). A 400 in the error shape naming where, never a 500,
before authentication as after it."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Api

JSON = "application/json"


def _error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    body: dict[str, Any] = response.get_json()
    assert set(body) == {"error", "message", "details"}
    assert body["error"] == code
    return body


DEEP = {
    "lists": b"[" * 1025 + b"]" * 1025,
    "objects": b'{"a":' * 1025 + b"1" + b"}" * 1025,
    "inside a post": b'{"accountIds": [], "text": ' + b"[" * 1025 + b"]" * 1025 + b"}",
}


@pytest.mark.parametrize("body", DEEP.values(), ids=DEEP.keys())
def test_deeply_nested_json_is_a_400_before_authentication(sqlite_api: Api, body: bytes
                                                          ) -> None:
    login = sqlite_api.client.post("/api/v1/auth/login", data=body, content_type=JSON)
    assert _error(login, 400, "VALIDATION_ERROR")["details"][0]["path"] == "body"
    # without a key the caller is told so (the body is judged once it is authenticated)
    anonymous = sqlite_api.client.post("/api/v1/posts", data=body, content_type=JSON)
    _error(anonymous, 401, "Unauthorized")
    for path in ("/posts", "/posts/validate"):
        _error(sqlite_api.post(path, data=body, content_type=JSON), 400, "VALIDATION_ERROR")


def test_nesting_the_parser_takes_is_refused_beyond_32_levels(sqlite_api: Api) -> None:
    """orjson takes 1,023 levels; the encoders and the database's JSON recurse, so such a
    value failed on its way to the store (a 500 after validation). Refused up front."""
    account = sqlite_api.org.accounts["x"]
    deep = b"[" * 1000 + b"]" * 1000
    # an option of a platform the post does not target is only warned about, and kept
    body = (b'{"accountIds": ["' + account.encode() + b'"], "text": "hi", '
            b'"platformConfig": {"facebook": {"link": ' + deep + b"}}}")
    for path in ("/posts", "/posts/validate"):
        response = sqlite_api.post(path, data=body, content_type=JSON)
        details = _error(response, 400, "VALIDATION_ERROR")["details"]
        assert details[0]["path"] == "platformConfig.facebook.link" + "[0]" * 29
        assert "nested deeper than 32 levels" in details[0]["message"]
    assert sqlite_api.get("/posts").get_json()["total"] == 0
    shallow = b'{"accountIds": ["' + account.encode() + b'"], "text": "' + b"[" * 40 + b'"}'
    assert sqlite_api.post("/posts", data=shallow, content_type=JSON).status_code == 201


SURROGATES = {
    "text": (b'"text": "\\udc00"', "text"),
    "text after a letter": (b'"text": "caf\\u00e9 \\ud800 x"', "text"),
    "a thread item": (b'"text": "ok", "thread": [{"text": "fine"}, {"text": "\\udfff"}]',
                      "thread[1].text"),
    "platformConfig": (b'"text": "ok", "platformConfig": {"x": {"reply_settings": '
                       b'"\\ud83d"}}', "platformConfig.x.reply_settings"),
    "a key": (b'"text": "ok", "platformConfig": {"x": {"\\udc00": 1}}', "platformConfig.x"),
    "a media URL": (b'"mediaUrls": ["http://example.com/\\udc00.jpg"]', "mediaUrls[0]"),
}


@pytest.mark.parametrize(("fields", "where"), SURROGATES.values(), ids=SURROGATES.keys())
def test_a_lone_surrogate_is_a_400_naming_the_field(sqlite_api: Api, fields: bytes,
                                                   where: str) -> None:
    account = sqlite_api.org.accounts["x"]
    body = b'{"accountIds": ["' + account.encode() + b'"], ' + fields + b"}"
    for path in ("/posts", "/posts/validate"):
        response = sqlite_api.post(path, data=body, content_type=JSON)
        error = _error(response, 400, "VALIDATION_ERROR")
        assert [d["path"] for d in error["details"]] == [where]
        assert "surrogate" in error["details"][0]["message"]
    assert sqlite_api.get("/posts").get_json()["total"] == 0
    # a pair of surrogates is one character, and fine
    pair = b'{"accountIds": ["' + account.encode() + b'"], "text": "\\ud83d\\ude00"}'
    created = sqlite_api.post("/posts", data=pair, content_type=JSON)
    assert created.status_code == 201
    post = sqlite_api.get(f"/posts/{created.get_json()['posts'][0]['id']}").get_json()
    assert post["text"] == "\U0001f600"


def test_a_lone_surrogate_in_a_patch_or_login_is_a_400(sqlite_api: Api) -> None:
    post_id = sqlite_api.create(scheduledAt="2099-01-01T00:00:00Z")["posts"][0]["id"]
    response = sqlite_api.client.patch(f"/api/v1/posts/{post_id}", data=b'{"text": "\\udc00"}',
                                       content_type=JSON, headers=sqlite_api.org.headers)
    assert _error(response, 400, "VALIDATION_ERROR")["details"][0]["path"] == "text"
    login = sqlite_api.client.post("/api/v1/auth/login", content_type=JSON,
                                   data=b'{"email": "a\\udc00@example.com", "password": "x"}')
    assert _error(login, 400, "VALIDATION_ERROR")["details"][0]["path"] == "email"
