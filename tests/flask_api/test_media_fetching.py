"""Media fetched from URLs by the API: scopes, limits, the per-request byte cap, fetch
slots, and peers that hang up or trickle (real HTTP on loopback)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from werkzeug.wrappers import Request, Response

from chat33_core.errors import ConcurrencyLimited
from chat33_core.mediaservice import FetchSlots
from chat33_core.sandbox import serve
from chat33_core.testing import make_image

from ..peers import MisbehavingPeer, misbehaving_peer
from .conftest import Api, Org, make_app, make_core, make_org


class Files:
    """Serves a few real images and remembers which paths were asked for."""

    def __init__(self, root: Path) -> None:
        self.bodies = {}
        for i, color in enumerate([(200, 60, 40), (40, 160, 60), (20, 40, 200)]):
            path = make_image(root / f"{i}.jpg", 800, 600, color=color, quality=95)
            self.bodies[f"/{i}.jpg"] = path.read_bytes()
        self.asked: list[str] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        self.asked.append(request.path)
        body = self.bodies.get(request.path)
        response = (Response(body, content_type="image/jpeg") if body is not None
                    else Response(b"missing", status=404))
        return response(environ, start_response)


@pytest.fixture
def files(tmp_path: Path) -> Iterator[tuple[str, Files]]:
    app = Files(tmp_path)
    with serve(app) as url:
        yield url, app


@pytest.fixture(scope="module")
def peer() -> Iterator[MisbehavingPeer]:
    with misbehaving_peer() as found:
        yield found


def posts_only_key(api: Api, org: Org) -> dict[str, str]:
    _, raw = api.core.create_api_key(org.id, org.user_id, "posts only",
                                     scopes=["posts:read", "posts:write"])
    return {"x-api-key": raw}


def limited_api(db_url: str, settings_for: Any, names: tuple[str, str] = ("Acme", "Rival"),
                **env: str) -> Api:
    """An API with small upload and validate limits and ``env`` settings; its two
    organizations are called ``names``."""
    limits = {"media.upload": (2, timedelta(hours=1)), "posts.validate": (2, timedelta(hours=1))}
    core = make_core(settings_for(db_url, **env), **limits)
    app = make_app(core)
    return Api(app=app, core=core, client=app.test_client(), org=make_org(core, names[0]),
               other=make_org(core, names[1]))


@pytest.fixture
def limited(db_url: str, settings_for: Any) -> Iterator[Api]:
    api = limited_api(db_url, settings_for)
    yield api
    api.core.store.dispose()


# --- scope: fetching a URL needs media:write ----------------------------------------------


@pytest.mark.parametrize("path", ["/posts", "/posts/validate"])
def test_a_key_without_media_write_cannot_make_chat33_fetch_a_url(
        api: Api, files: tuple[str, Files], path: str) -> None:
    url, served = files
    response = api.post(path, {"accountIds": [api.org.accounts["x"]], "text": "pic",
                               "mediaUrls": [f"{url}/0.jpg"]},
                        headers=posts_only_key(api, api.org))
    assert response.status_code == 403
    body = response.get_json()
    assert body["error"] == "Insufficient scope"
    assert "needs the scope media:write" in body["message"] and f"{url}/0.jpg" in body["message"]
    assert served.asked == []  # refused before fetching
    assert api.get("/posts").get_json()["total"] == 0


def test_an_edit_that_adds_a_new_media_url_needs_media_write(
        api: Api, files: tuple[str, Files]) -> None:
    url, served = files
    post_id = api.create()["posts"][0]["id"]
    key = posts_only_key(api, api.org)
    refused = api.patch(f"/posts/{post_id}", {"mediaUrls": [f"{url}/1.jpg"]}, headers=key)
    assert refused.status_code == 403 and "media:write" in refused.get_json()["message"]
    assert served.asked == []
    assert api.patch(f"/posts/{post_id}", {"text": "edited"}, headers=key).status_code == 200
    assert api.patch(f"/posts/{post_id}", {"mediaUrls": [f"{url}/1.jpg"]}).status_code == 200


def test_a_key_without_media_write_may_post_media_chat33_already_holds(
        api: Api, files: tuple[str, Files]) -> None:
    url, served = files
    held = api.post("/media/upload", {"url": f"{url}/0.jpg"})
    assert held.status_code == 201
    media_url = held.get_json()["url"]
    for source in (media_url, f"{url}/0.jpg"):  # our own URL, and a URL fetched already
        response = api.post("/posts", {"accountIds": [api.org.accounts["x"]], "text": "pic",
                                       "mediaUrls": [source]},
                            headers=posts_only_key(api, api.org))
        assert response.status_code == 201, response.get_json()
    assert served.asked == ["/0.jpg"]


# --- limits: fetched media counts as uploads; validate is counted ---------------------------


def test_media_fetched_by_a_post_counts_against_the_upload_limit(
        limited: Api, files: tuple[str, Files]) -> None:
    url, _ = files
    created = limited.post("/posts", {"accountIds": [limited.org.accounts["x"]], "text": "two",
                                      "mediaUrls": [f"{url}/0.jpg", f"{url}/1.jpg"]})
    assert created.status_code == 201, created.get_json()
    # the answer's RateLimit-* are the post limit's, not the uploads counted on the way
    assert created.headers["RateLimit-Limit"] == "30"
    assert created.headers["RateLimit-Remaining"] == "29"
    upload = limited.post("/media/upload", {"url": f"{url}/2.jpg"})
    assert upload.status_code == 429 and upload.headers["RateLimit-Limit"] == "2"
    refused = limited.post("/posts", {"accountIds": [limited.org.accounts["x"]], "text": "3",
                                      "mediaUrls": [f"{url}/2.jpg"]})
    assert refused.status_code == 429
    body = refused.get_json()
    assert body["error"] == "RATE_LIMIT"
    assert body["message"].startswith("media fetched from mediaUrls counts against the upload "
                                      "limit: rate limit of 2 per hour reached")
    assert refused.headers["RateLimit-Limit"] == "2"
    assert int(refused.headers["Retry-After"]) >= 1
    assert limited.get("/posts").get_json()["total"] == 1
    # media chat33 holds is not fetched again, so it does not count
    again = limited.post("/posts", {"accountIds": [limited.org.accounts["x"]], "text": "same",
                                    "mediaUrls": [f"{url}/0.jpg"]})
    assert again.status_code == 201


def test_validate_is_rate_limited_and_counts_no_uploads(
        limited: Api, files: tuple[str, Files]) -> None:
    url, _ = files
    body = {"accountIds": [limited.org.accounts["x"]], "text": "dry",
            "mediaUrls": [f"{url}/0.jpg", f"{url}/1.jpg"]}
    for remaining in ("1", "0"):
        response = limited.post("/posts/validate", body)
        assert response.status_code == 200 and response.get_json()["valid"]
        assert response.headers["RateLimit-Limit"] == "2"
        assert response.headers["RateLimit-Remaining"] == remaining
    refused = limited.post("/posts/validate", body)
    assert refused.status_code == 429 and refused.get_json()["error"] == "RATE_LIMIT"
    # the dry runs fetched 4 files and kept none: the upload allowance is whole
    assert limited.post("/media/upload", {"url": f"{url}/2.jpg"}).headers[
        "RateLimit-Remaining"] == "1"


def test_limits_table_lists_validate(api: Api) -> None:
    doc = api.client.get("/api/v1/openapi.json").get_json()
    assert "| `POST /posts/validate` | 120 requests per hour (`posts.validate`) |" \
        in doc["info"]["description"]
    assert doc["paths"]["/posts/validate"]["post"]["responses"]["429"]


# --- the bytes one request may fetch ------------------------------------------------------


def test_one_request_fetches_at_most_its_byte_cap(db_url: str, settings_for: Any,
                                                 files: tuple[str, Files]) -> None:
    url, served = files
    urls = [f"{url}/{i}.jpg" for i in range(3)]
    sizes = [len(served.bodies[f"/{i}.jpg"]) for i in range(3)]
    body = {"text": "big", "mediaUrls": urls}
    half = limited_api(db_url, settings_for,
                       CHAT33_FETCH_REQUEST_MAX_BYTES=str(sizes[0] + sizes[1] // 2))
    exact = limited_api(db_url, settings_for, ("Exact", "ExactRival"),
                        CHAT33_FETCH_REQUEST_MAX_BYTES=str(sizes[0] + sizes[1]))
    try:
        report = half.post("/posts/validate", {**body, "accountIds": [half.org.accounts["x"]],
                                               "mediaUrls": urls[:2]}).get_json()
        assert not report["valid"]
        (error,) = report["errors"]
        assert error["path"] == "mediaUrls[1]"
        assert error["message"] == (f"{urls[1]} is more than the {sizes[1] // 2} bytes left "
                                    f"of the {sizes[0] + sizes[1] // 2} bytes one request "
                                    "may fetch")
        served.asked.clear()
        created = exact.post("/posts", {**body, "accountIds": [exact.org.accounts["x"]]})
        assert created.status_code == 400
        (detail,) = created.get_json()["details"]
        assert detail["path"] == "mediaUrls[2]"
        assert detail["message"].startswith(f"{urls[2]} was not fetched: this request has "
                                            f"fetched {sizes[0] + sizes[1]} bytes already")
        assert served.asked == ["/0.jpg", "/1.jpg"]  # the third was never asked for
        # /media/upload by URL: one file, the same cap
        over = half.post("/media/upload", {"url": urls[0]}, org=half.other)
        assert over.status_code == 201
        tiny = limited_api(db_url, settings_for, ("Tiny", "TinyRival"),
                           CHAT33_FETCH_REQUEST_MAX_BYTES="1000")
        refused = tiny.post("/media/upload", {"url": urls[0]}, org=tiny.org)
        assert refused.status_code == 400
        assert "over the 1000 bytes limit" in refused.get_json()["message"]
        tiny.core.store.dispose()
    finally:
        half.core.store.dispose()
        exact.core.store.dispose()


# --- peers that hang up, reset or trickle ---------------------------------------------


@pytest.mark.parametrize(("path", "said"), [
    ("/hangup", "hung up before its answer was complete"),
    ("/reset", "the connection broke off mid-transfer"),
])
def test_a_media_server_that_breaks_off_is_a_400_naming_the_url(
        sqlite_api: Api, peer: MisbehavingPeer, path: str, said: str) -> None:
    api, url = sqlite_api, peer.url + path
    upload = api.post("/media/upload", {"url": url})
    assert upload.status_code == 400
    assert upload.get_json()["details"] == [{"path": "url", "message": upload.get_json()[
        "message"]}]
    assert upload.get_json()["message"].startswith(url) and said in upload.get_json()["message"]
    post = api.post("/posts", {"accountIds": [api.org.accounts["x"]], "text": "x",
                               "mediaUrls": [url]})
    assert post.status_code == 400
    (detail,) = post.get_json()["details"]
    assert detail["path"] == "mediaUrls[0]" and said in detail["message"]
    report = api.post("/posts/validate", {"accountIds": [api.org.accounts["x"]], "text": "x",
                                          "mediaUrls": [url]})
    assert report.status_code == 200
    (error,) = report.get_json()["errors"]
    assert error["path"] == "mediaUrls[0]" and said in error["message"]


def test_fetch_slots_refuse_one_more_than_allowed_per_organization() -> None:
    slots = FetchSlots(2)
    with slots.hold("org_a"), slots.hold("org_a"), slots.hold("org_b"):
        with pytest.raises(ConcurrencyLimited) as busy, slots.hold("org_a"):
            pass
        assert busy.value.retry_after > 0 and busy.value.limit is None
    with slots.hold("org_a"), slots.hold("org_a"):  # released again
        pass


def test_an_organization_fetching_too_much_at_once_gets_a_429(
        db_url: str, settings_for: Any, peer: MisbehavingPeer,
        files: tuple[str, Files]) -> None:
    api = limited_api(db_url, settings_for, CHAT33_FETCH_CONCURRENCY="1",
                      CHAT33_FETCH_TIMEOUT_S="3")
    slow = f"{peer.url}/trickle-body?every=0.2&for=30"
    answers: list[Any] = []

    def fetch_slowly() -> None:
        client = api.app.test_client()
        answers.append(client.post("/api/v1/posts/validate", headers=api.org.headers, json={
            "accountIds": [api.org.accounts["x"]], "text": "slow", "mediaUrls": [slow]}))

    try:
        before = peer.accepted
        worker = threading.Thread(target=fetch_slowly)
        started = time.monotonic()
        worker.start()
        while peer.accepted == before:  # the slow fetch holds the organization's slot
            assert time.monotonic() - started < 10
            time.sleep(0.02)
        busy = api.post("/media/upload", {"url": f"{files[0]}/0.jpg"})
        assert busy.status_code == 429
        assert busy.get_json()["error"] == "RATE_LIMIT"
        assert "requests fetching media from URLs" in busy.get_json()["message"]
        assert int(busy.headers["Retry-After"]) >= 1
        assert "RateLimit-Limit" not in busy.headers
        # another organization has slots of its own
        theirs = api.post("/media/upload", {"url": f"{files[0]}/0.jpg"}, org=api.other)
        assert theirs.status_code == 201
        worker.join(30)
        (slow_answer,) = answers
        assert time.monotonic() - started < 15  # the deadline ended the trickle
        (error,) = slow_answer.get_json()["errors"]
        assert "took longer than 3 s" in error["message"] or "too slowly" in error["message"]
        # the slot is free again
        assert api.post("/media/upload", {"url": f"{files[0]}/1.jpg"}).status_code == 201
    finally:
        api.core.store.dispose()
