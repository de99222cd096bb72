"""Rate limits live in the store: two app instances (separate cores) on one database
share them, and answer 429 RATE_LIMIT with Retry-After and RateLimit-* headers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from chat33_core.testing import CORRUPT_JPEGS, make_corrupt_jpeg, make_image

from .conftest import PASSWORD, make_org, two_apps_on

LIMITS = {"posts.create": (3, timedelta(hours=1)), "media.upload": (2, timedelta(hours=1)),
          "api_keys.create": (2, timedelta(hours=1))}


@pytest.fixture
def two_apps(db_url: str, settings_for: Any) -> Iterator[Any]:
    with two_apps_on(settings_for(db_url), LIMITS) as apps:
        yield apps


def _assert_429(response: Any, limit: int) -> None:
    assert response.status_code == 429
    body = response.get_json()
    assert body["error"] == "RATE_LIMIT"
    assert set(body) == {"error", "message", "details"}
    assert int(response.headers["Retry-After"]) >= 1
    assert response.headers["RateLimit-Limit"] == str(limit)
    assert response.headers["RateLimit-Remaining"] == "0"
    assert int(response.headers["RateLimit-Reset"]) >= 1


def test_post_limit_is_shared_by_two_apps_on_one_database(two_apps: Any) -> None:
    clients, org = two_apps
    body = {"accountIds": [org.accounts["x"]], "text": "limited"}
    remaining = []
    for i in range(3):
        response = clients[i % 2].post("/api/v1/posts", json=body, headers=org.headers)
        assert response.status_code == 201
        assert response.headers["RateLimit-Limit"] == "3"
        remaining.append(int(response.headers["RateLimit-Remaining"]))
        assert int(response.headers["RateLimit-Reset"]) >= 1
    assert remaining == [2, 1, 0]
    for client in clients:
        _assert_429(client.post("/api/v1/posts", json=body, headers=org.headers), 3)


def test_rejected_posts_do_not_count(two_apps: Any) -> None:
    clients, org = two_apps
    for _ in range(4):
        bad = clients[0].post("/api/v1/posts", json={"accountIds": ["chan_nope"]},
                              headers=org.headers)
        assert bad.status_code == 400
    good = clients[1].post("/api/v1/posts", json={"accountIds": [org.accounts["x"]],
                                                  "text": "counted"}, headers=org.headers)
    assert good.headers["RateLimit-Remaining"] == "2"


def _upload(client: Any, org: Any, path: Path) -> Any:
    with path.open("rb") as fh:
        return client.post("/api/v1/media/upload", headers=org.headers,
                           content_type="multipart/form-data", data={"file": (fh, path.name)})


def test_upload_limit_is_shared_and_refused_uploads_do_not_count(two_apps: Any,
                                                                 tmp_path: Path) -> None:
    clients, org = two_apps
    refused = [make_corrupt_jpeg(tmp_path / f"{how}.jpg", how) for how in CORRUPT_JPEGS]
    (tmp_path / "notes.jpg").write_bytes(b"not media at all")
    refused.append(tmp_path / "notes.jpg")
    for i, path in enumerate(refused):
        response = _upload(clients[i % 2], org, path)
        assert response.status_code == 400, response.get_json()
        assert [d["path"] for d in response.get_json()["details"]] == ["file"]
        assert "JPEG" in response.get_json()["message"] or "not an image" in \
            response.get_json()["message"]
    no_file = clients[0].post("/api/v1/media/upload", headers=org.headers,
                              content_type="multipart/form-data", data={"other": "x"})
    assert no_file.status_code == 400
    unreachable = clients[1].post("/api/v1/media/upload", headers=org.headers,
                                  json={"url": "http://127.0.0.1:9/x.jpg"})
    assert unreachable.status_code == 400
    # none of the refused uploads used the allowance of 2
    image = make_image(tmp_path / "ok.jpg", 64, 48)
    remaining = []
    for client in clients:
        response = _upload(client, org, image)
        assert response.status_code == 201, response.get_json()
        remaining.append(response.headers["RateLimit-Remaining"])
    assert remaining == ["1", "0"]
    _assert_429(_upload(clients[0], org, image), 2)
    _assert_429(clients[1].post("/api/v1/media/upload", headers=org.headers, json={
        "url": "http://127.0.0.1:9/x.jpg"}), 2)


def test_api_key_creation_limit_is_per_user_and_shared(two_apps: Any) -> None:
    clients, org = two_apps
    tokens = []
    for client in clients:
        login = client.post("/api/v1/auth/login", json={"email": org.email,
                                                        "password": PASSWORD})
        tokens.append({"x-csrf-token": login.get_json()["csrfToken"]})
    ok = clients[0].post("/api/v1/api-keys", headers=tokens[0])
    assert ok.status_code == 201
    assert ok.headers["RateLimit-Remaining"] == "1"
    assert clients[1].post("/api/v1/api-keys", headers=tokens[1]).status_code == 201
    _assert_429(clients[1].post("/api/v1/api-keys", headers=tokens[1]), 2)


def test_limits_are_per_organization(two_apps: Any) -> None:
    clients, org = two_apps
    core = clients[0].application.extensions["chat33"]
    rival = make_org(core, "Rival")
    for _ in range(3):
        clients[0].post("/api/v1/posts", json={"accountIds": [org.accounts["x"]], "text": "a"},
                        headers=org.headers)
    response = clients[1].post("/api/v1/posts", json={"accountIds": [rival.accounts["x"]],
                                                      "text": "b"}, headers=rival.headers)
    assert response.status_code == 201


# --- the post limit counts posts, not requests ----------------------------------------


def test_a_post_to_two_accounts_counts_two(api: Any) -> None:
    response = api.post("/posts", {"accountIds": [api.org.accounts["x"],
                                                  api.org.accounts["facebook"]],
                                   "text": "twice"})
    assert response.status_code == 201
    assert response.headers["RateLimit-Limit"] == "30"
    assert response.headers["RateLimit-Remaining"] == "28"


def test_a_thread_counts_each_of_its_parts_on_each_account(api: Any) -> None:
    response = api.post("/posts", {"accountIds": [api.org.accounts["x"],
                                                  api.org.accounts["facebook"]],
                                   "text": "1/3", "thread": [{"text": "2/3"}, {"text": "3/3"}]})
    assert response.status_code == 201 and len(response.get_json()["posts"]) == 6
    assert response.headers["RateLimit-Remaining"] == "24"


def test_a_request_that_would_go_over_creates_none_of_its_posts(two_apps: Any) -> None:
    clients, org = two_apps
    pair = {"accountIds": [org.accounts["x"], org.accounts["facebook"]], "text": "pair"}
    first = clients[0].post("/api/v1/posts", json=pair, headers=org.headers)
    assert first.headers["RateLimit-Remaining"] == "1"
    refused = clients[1].post("/api/v1/posts", json=pair, headers=org.headers)
    assert refused.status_code == 429
    assert refused.get_json()["error"] == "RATE_LIMIT"
    assert "this request counts 2, 1 left" in refused.get_json()["message"]
    assert refused.headers["RateLimit-Remaining"] == "1"
    assert int(refused.headers["Retry-After"]) >= 1
    listed = clients[0].get("/api/v1/posts", headers=org.headers).get_json()
    assert listed["total"] == 2  # nothing of the refused request
    single = clients[0].post("/api/v1/posts", json={"accountIds": [org.accounts["x"]],
                                                    "text": "fits"}, headers=org.headers)
    assert single.status_code == 201 and single.headers["RateLimit-Remaining"] == "0"


def test_a_request_bigger_than_the_whole_limit_is_a_validation_error(two_apps: Any) -> None:
    clients, org = two_apps
    response = clients[0].post("/api/v1/posts", headers=org.headers, json={
        "accountIds": [org.accounts["x"], org.accounts["facebook"]], "text": "1/2",
        "thread": [{"text": "2/2"}]})
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "VALIDATION_ERROR"
    assert body["details"] == [{"path": "accountIds",
                                "message": "4 posts is over the limit of 3"}]
    assert "4 posts (one per account and thread part), over the limit of 3 posts per hour" \
        in body["message"]
    assert clients[0].get("/api/v1/posts", headers=org.headers).get_json()["total"] == 0


def test_duplicates_count_against_the_post_limit(two_apps: Any) -> None:
    clients, org = two_apps
    created = clients[0].post("/api/v1/posts", headers=org.headers, json={
        "accountIds": [org.accounts["x"]], "text": "original"}).get_json()
    post_id = created["posts"][0]["id"]
    copies = clients[1].post(f"/api/v1/posts/{post_id}/duplicate", headers=org.headers,
                             json={"accountIds": [org.accounts["x"], org.accounts["facebook"]]})
    assert copies.status_code == 201
    assert copies.headers["RateLimit-Remaining"] == "0"
    _assert_429(clients[0].post(f"/api/v1/posts/{post_id}/duplicate", headers=org.headers,
                                json={}), 3)
