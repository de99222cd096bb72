"""The X sandbox itself, spoken to over HTTP as X's own clients would."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator

import httpx
import pytest

from .conftest import USER_ID, Sandbox

AUTH = {"Authorization": "Bearer sandbox-token"}


@pytest.fixture(scope="module")
def client(sandbox_server: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox_server.url, headers=AUTH, timeout=10) as client:
        yield client


@pytest.fixture
def x(sandbox: Sandbox, client: httpx.Client) -> httpx.Client:
    """An X API client of the default sandbox user, on a freshly reset sandbox."""
    return client


def initialize(x: httpx.Client, total: int, category: str = "tweet_video",
               media_type: str = "video/mp4") -> str:
    response = x.post("/2/media/upload/initialize", json={
        "media_type": media_type, "total_bytes": total, "media_category": category})
    assert response.status_code == 200, response.text
    return response.json()["data"]["id"]


def test_video_processing_state_machine(sandbox: Sandbox, x: httpx.Client, media) -> None:
    data = media("clip.mp4").path.read_bytes()
    media_id = initialize(x, len(data))
    half = len(data) // 2
    for index, chunk in enumerate((data[:half], data[half:])):
        response = x.post(f"/2/media/upload/{media_id}/append",
                          data={"segment_index": str(index)}, files={"media": chunk})
        assert response.status_code == 200 and response.json()["data"]["expires_at"] > 0
    info = x.post(f"/2/media/upload/{media_id}/finalize").json()["data"]["processing_info"]
    assert info == {"state": "pending", "check_after_secs": 1, "progress_percent": 0}

    # attaching before processing succeeded is refused
    early = x.post("/2/tweets", json={"text": "too early", "media": {"media_ids": [media_id]}})
    assert early.status_code == 400
    assert early.json()["errors"][0]["message"] == "Your media IDs are invalid."

    states = []
    for _ in range(2):
        status = x.get("/2/media/upload", params={"media_id": media_id, "command": "STATUS"})
        states.append(status.json()["data"]["processing_info"]["state"])
    assert states == ["in_progress", "succeeded"]
    assert x.post("/2/tweets", json={"text": "now", "media": {"media_ids": [media_id]}}
                  ).status_code == 201


def test_json_base64_append_and_segment_totals(x: httpx.Client, media) -> None:
    data = media("photo.jpg").path.read_bytes()
    media_id = initialize(x, len(data) + 10, "tweet_image", "image/jpeg")
    x.post(f"/2/media/upload/{media_id}/append", json={
        "media": base64.b64encode(data).decode(), "segment_index": 0})
    short = x.post(f"/2/media/upload/{media_id}/finalize")
    assert short.status_code == 400
    assert "do not add up" in short.json()["errors"][0]["message"]


def test_garbage_image_is_refused_at_finalize(x: httpx.Client) -> None:
    media_id = initialize(x, 100, "tweet_image", "image/png")
    x.post(f"/2/media/upload/{media_id}/append", data={"segment_index": "0"},
           files={"media": b"x" * 100})
    response = x.post(f"/2/media/upload/{media_id}/finalize")
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"


def test_rate_limit_headers_and_429_without_retry_after(sandbox: Sandbox,
                                                        x: httpx.Client) -> None:
    sandbox.config(limits={"tweets": 2})
    first = x.post("/2/tweets", json={"text": "one"})
    assert first.headers["x-rate-limit-limit"] == "2"
    assert first.headers["x-rate-limit-remaining"] == "1"
    assert int(first.headers["x-rate-limit-reset"]) > time.time()
    x.post("/2/tweets", json={"text": "two"})
    third = x.post("/2/tweets", json={"text": "three"})
    assert third.status_code == 429 and "retry-after" not in third.headers
    assert third.headers["x-rate-limit-remaining"] == "0"
    assert third.json()["title"] == "Too Many Requests"
    # limits are per user
    sandbox.add_user(id="5", username="five", access_token="five-token")
    other = x.post("/2/tweets", json={"text": "three"},
                   headers={"Authorization": "Bearer five-token"})
    assert other.status_code == 201


def test_state_lists_tweets_with_reply_chains(sandbox: Sandbox, x: httpx.Client) -> None:
    root = x.post("/2/tweets", json={"text": "root"}).json()["data"]
    assert root["edit_history_tweet_ids"] == [root["id"]]
    reply = x.post("/2/tweets", json={"text": "reply", "reply": {
        "in_reply_to_tweet_id": root["id"]}}).json()["data"]
    tweets = sandbox.state()["tweets"]
    assert [(t["id"], t["in_reply_to"]) for t in tweets] == [(root["id"], None),
                                                            (reply["id"], root["id"])]
    missing = x.post("/2/tweets", json={"text": "to nothing",
                                        "reply": {"in_reply_to_tweet_id": "1"}})
    assert missing.status_code == 400


def test_user_tweets_newest_first_with_pagination(x: httpx.Client) -> None:
    for i in range(7):
        x.post("/2/tweets", json={"text": f"post {i}"})
    first = x.get(f"/2/users/{USER_ID}/tweets", params={"max_results": 5}).json()
    assert [t["text"] for t in first["data"]] == [f"post {i}" for i in (6, 5, 4, 3, 2)]
    rest = x.get(f"/2/users/{USER_ID}/tweets", params={
        "max_results": 5, "pagination_token": first["meta"]["next_token"]}).json()
    assert [t["text"] for t in rest["data"]] == ["post 1", "post 0"]
    assert "next_token" not in rest["meta"]
    assert x.get("/2/users/me").json()["data"]["id"] == USER_ID


def test_too_long_text_and_unknown_token(x: httpx.Client) -> None:
    assert x.post("/2/tweets", json={"text": "a" * 281}).status_code == 403
    assert x.post("/2/tweets", json={"text": "日" * 140}).status_code == 201
    refused = x.post("/2/tweets", json={"text": "hi"},
                     headers={"Authorization": "Bearer nope"})
    assert refused.status_code == 401


def test_reset_forgets_everything(sandbox: Sandbox, x: httpx.Client) -> None:
    x.post("/2/tweets", json={"text": "soon gone"})
    sandbox.http.post(f"{sandbox.url}/_sandbox/reset").raise_for_status()
    assert sandbox.state()["tweets"] == []
