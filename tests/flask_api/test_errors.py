"""The error shape for everything, operations endpoints, request ids, access log."""

from __future__ import annotations

import json
import logging

import pytest

from .conftest import Api


def _is_error(response, status: int, code: str) -> dict:
    assert response.status_code == status
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error", "message", "details"}
    assert body["error"] == code
    return body


def test_unknown_route_is_404_in_the_error_shape(sqlite_api: Api) -> None:
    _is_error(sqlite_api.get("/nothing-here"), 404, "Not found")
    _is_error(sqlite_api.client.get("/elsewhere"), 404, "Not found")


def test_wrong_method_is_405_in_the_error_shape(sqlite_api: Api) -> None:
    response = sqlite_api.client.put("/api/v1/posts", headers=sqlite_api.org.headers)
    _is_error(response, 405, "METHOD_NOT_ALLOWED")
    assert "GET" in response.headers["Allow"]


def test_options_lists_only_the_methods_a_path_has(sqlite_api: Api) -> None:
    """/posts/validate is a resource of its own, not the post "validate" of /posts/{id}
    (OpenAPI matches concrete paths first): it has POST only."""
    client = sqlite_api.client

    def allowed(path: str) -> set[str]:
        response = client.options("/api/v1" + path)
        assert response.status_code == 200
        return {m.strip() for m in response.headers["Allow"].split(",")}

    assert allowed("/posts/validate") == {"POST", "OPTIONS"}
    assert allowed("/posts/post_0123") == {"GET", "HEAD", "PATCH", "DELETE", "OPTIONS"}
    assert allowed("/posts/post_0123/logs") == {"GET", "HEAD", "OPTIONS"}
    response = sqlite_api.get("/posts/validate")
    _is_error(response, 405, "METHOD_NOT_ALLOWED")
    assert {m.strip() for m in response.headers["Allow"].split(",")} == {"POST", "OPTIONS"}
    post_id = sqlite_api.create()["posts"][0]["id"]
    assert sqlite_api.get(f"/posts/{post_id}").status_code == 200


def test_a_url_or_headers_over_the_limits_are_414_and_431_in_the_error_shape(
        sqlite_api: Api) -> None:
    long_url = sqlite_api.get("/posts?q=" + "a" * 5000)
    _is_error(long_url, 414, "URI_TOO_LONG")
    big = sqlite_api.get("/posts", headers={"x-big": "b" * 9000})
    body = _is_error(big, 431, "REQUEST_HEADER_FIELDS_TOO_LARGE")
    assert body["details"][0]["path"] == "headers.x-big"
    many = sqlite_api.get("/posts", headers={f"x-h{i}": "v" for i in range(120)})
    _is_error(many, 431, "REQUEST_HEADER_FIELDS_TOO_LARGE")
    assert sqlite_api.get("/posts?channelId=chan_" + "a" * 3000, headers={"x-ok": "c" * 8000}
                          ).status_code == 200


def test_malformed_json_is_400(sqlite_api: Api) -> None:
    response = sqlite_api.post("/posts", data=b'{"accountIds": [', content_type="application/json")
    body = _is_error(response, 400, "VALIDATION_ERROR")
    assert body["details"][0]["path"] == "body"


@pytest.mark.parametrize("value", [b"123456789012345678901234567890", b"NaN", b"-Infinity"])
def test_json_numbers_beyond_64_bits_and_nan_are_read_as_json_reads_them(
        sqlite_api: Api, value: bytes) -> None:
    """The body parser takes what Python's json takes: such a value is judged where it
    stands (a number is no post text), not refused as malformed JSON."""
    response = sqlite_api.post("/posts", data=b'{"accountIds": [], "text": ' + value + b"}",
                               content_type="application/json")
    body = _is_error(response, 400, "VALIDATION_ERROR")
    assert [d["path"] for d in body["details"]] == ["text"]


@pytest.mark.parametrize("payload", [b"[]", b'"text"', b"42", b"null"])
def test_json_that_is_not_an_object_is_400(sqlite_api: Api, payload: bytes) -> None:
    response = sqlite_api.post("/posts", data=payload, content_type="application/json")
    body = _is_error(response, 400, "VALIDATION_ERROR")
    assert body["details"][0]["path"] == "body"


def test_non_json_body_is_415(sqlite_api: Api) -> None:
    response = sqlite_api.post("/posts", data=b"accountIds=1", content_type="text/plain")
    _is_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_huge_json_body_is_413(sqlite_api: Api) -> None:
    big = json.dumps({"accountIds": [], "text": "x" * (2 * 1024 * 1024)})
    response = sqlite_api.post("/posts", data=big, content_type="application/json")
    _is_error(response, 413, "PAYLOAD_TOO_LARGE")


def test_invalid_utf8_is_400_not_500(sqlite_api: Api) -> None:
    response = sqlite_api.post("/posts", data=b'{"text": "\xff\xfe"}',
                               content_type="application/json")
    _is_error(response, 400, "VALIDATION_ERROR")


def test_healthz_answers_without_the_database(sqlite_api: Api) -> None:
    response = sqlite_api.client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_pings_the_store(api: Api) -> None:
    response = api.client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready"}


def test_readyz_is_503_when_the_database_is_unreachable(tmp_path, settings_for) -> None:
    from chat33_core.service import Chat33

    from .conftest import make_app

    core = Chat33(settings_for(f"sqlite:///{tmp_path / 'missing' / 'dir' / 'x.db'}"))
    response = make_app(core).test_client().get("/readyz")
    body = _is_error(response, 503, "NOT_READY")
    assert "database" in body["message"]


def test_a_locked_sqlite_database_holds_readiness_and_reads_a_second_not_30(
        sqlite_api: Api) -> None:
    """Another process holds SQLite's write lock: /readyz says so within a second or two
    (it waited the 30 s busy timeout), and a read whose key is due for its "last used"
    bookkeeping write answers without it (it waited 30 s, then was a 503)."""
    import sqlite3
    import time

    path = sqlite_api.core.store.engine.url.database
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("UPDATE api_keys SET last_used_at = '2000-01-01 00:00:00.000000'")
    locker.execute("BEGIN IMMEDIATE")
    locker.execute("UPDATE organizations SET name = name")
    try:
        started = time.monotonic()
        body = _is_error(sqlite_api.client.get("/readyz"), 503, "NOT_READY")
        assert "locked" in body["message"]
        assert time.monotonic() - started < 10
        started = time.monotonic()
        listed = sqlite_api.get("/posts")
        assert listed.status_code == 200
        assert time.monotonic() - started < 10
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert sqlite_api.client.get("/readyz").status_code == 200


def _is_unavailable(response) -> None:
    body = _is_error(response, 503, "SERVICE_UNAVAILABLE")
    assert "database" in body["message"] and body["details"] == []
    assert response.headers["Retry-After"] == "1"


@pytest.mark.parametrize("url", ["sqlite:///{tmp}/missing/dir/x.db",
                                 "postgresql+psycopg://chat33@127.0.0.1:1/none"])
def test_a_database_that_cannot_be_reached_is_a_503_with_retry_after(
        tmp_path, settings_for, url: str) -> None:
    from chat33_core.service import Chat33

    from .conftest import make_app

    core = Chat33(settings_for(url.format(tmp=tmp_path)))
    client = make_app(core).test_client()
    _is_unavailable(client.get("/api/v1/posts", headers={"x-api-key": "sk_live_whatever"}))
    _is_unavailable(client.post("/api/v1/posts", json={"accountIds": ["chan_1"], "text": "hi"},
                                headers={"x-api-key": "sk_live_whatever"}))
    _is_unavailable(client.post("/api/v1/auth/login",
                                json={"email": "me@example.com", "password": "a password"}))
    core.store.dispose()


def test_a_driver_error_on_the_fast_path_is_a_503_not_a_500(sqlite_api: Api) -> None:
    """The per-request reads run on the driver's connection: its own operational error
    (here a table gone from under the running app) is answered like SQLAlchemy's."""
    import sqlite3

    path = sqlite_api.core.store.engine.url.database
    other = sqlite3.connect(path)
    other.execute("DROP TABLE api_keys")
    other.commit()
    other.close()
    _is_unavailable(sqlite_api.get("/posts"))


def test_the_openapi_document_names_the_503_of_database_operations(sqlite_api: Api) -> None:
    doc = sqlite_api.client.get("/api/v1/openapi.json").get_json()
    listed = doc["paths"]["/posts"]["get"]["responses"]["503"]
    assert "Retry-After" in listed["headers"]
    assert listed["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"}
    assert all("503" in op["responses"] for path in doc["paths"].values()
               for op in path.values())


def test_every_answer_has_a_request_id(sqlite_api: Api) -> None:
    ids = {sqlite_api.get("/posts").headers["x-request-id"],
           sqlite_api.client.get("/nowhere").headers["x-request-id"],
           sqlite_api.client.get("/healthz").headers["x-request-id"]}
    assert len(ids) == 3 and all(ids)


def test_a_given_request_id_is_echoed(sqlite_api: Api) -> None:
    response = sqlite_api.get("/posts", headers={"x-request-id": "trace-abc-123"})
    assert response.headers["x-request-id"] == "trace-abc-123"
    odd = sqlite_api.get("/posts", headers={"x-request-id": "bad id\twith spaces"})
    assert odd.headers["x-request-id"] != "bad id\twith spaces"


def test_one_json_log_line_per_request(sqlite_api: Api, caplog: pytest.LogCaptureFixture
                                       ) -> None:
    sqlite_api.client.get("/healthz")  # the checked client reads the OpenAPI doc first
    with caplog.at_level(logging.INFO, logger="chat33.http"):
        sqlite_api.get("/posts", headers={"x-request-id": "log-me"})
    # (the requests before it may be logged too when an earlier test of this process
    # set up logging at INFO, as `chat33 worker` run in-process does)
    records = [r for r in caplog.records if r.name == "chat33.http"
               and getattr(r, "fields", {}).get("requestId") == "log-me"]
    assert len(records) == 1
    assert records[0].getMessage() == "GET /api/v1/posts 200"
    line = records[0].fields  # type: ignore[attr-defined]
    assert line["requestId"] == "log-me"
    assert (line["method"], line["path"], line["status"]) == ("GET", "/api/v1/posts", 200)
    assert line["orgId"] == sqlite_api.org.id and line["via"] == "key"
    assert line["durationMs"] >= 0


def test_mounted_in_another_app_only_the_api_speaks_json(sqlite_api: Api) -> None:
    from chat33_flask import init_app
    from flask import Flask

    host = Flask("host")

    @host.get("/")
    def home() -> str:
        return "<h1>my site</h1>"

    init_app(host, core=sqlite_api.core)
    client = host.test_client()
    assert client.get("/").data == b"<h1>my site</h1>"
    assert client.get("/?q=" + "a" * 5000).data == b"<h1>my site</h1>"  # its own limits
    assert client.get("/api/v1/accounts?q=" + "a" * 5000).status_code == 414
    assert client.get("/missing").mimetype == "text/html"
    assert client.get("/api/v1/missing").get_json()["error"] == "Not found"
    response = client.get("/api/v1/accounts", headers=sqlite_api.org.headers)
    assert response.status_code == 200
    assert host.extensions["chat33"] is sqlite_api.core


def test_an_unexpected_failure_is_a_500_without_internals(sqlite_api: Api,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    from flask.testing import FlaskClient

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(sqlite_api.core, "list_accounts", broken)
    response = FlaskClient(sqlite_api.app).get("/api/v1/accounts",
                                               headers=sqlite_api.org.headers)
    body = _is_error(response, 500, "INTERNAL")
    assert "secret" not in response.get_data(as_text=True)
    assert body["message"] == "internal server error"
    assert response.headers["x-request-id"]


def test_huge_page_numbers_are_a_range_error(sqlite_api: Api) -> None:
    response = sqlite_api.get("/posts?page=" + "9" * 40)
    assert response.status_code == 400
    assert response.get_json()["details"] == [{"path": "page",
                                               "message": "must be between 1 and 1000000000"}]
