"""The TikTok sandbox itself, spoken to over HTTP as TikTok's clients would."""

from __future__ import annotations

from typing import Any

import httpx

from .conftest import MB, TT

H = {"Authorization": "Bearer sandbox-token"}
PRIVACY = {"privacy_level": "SELF_ONLY"}


def init(tt: TT, size: int, chunk: int, count: int, token: str = "sandbox-token") -> Any:
    return httpx.post(f"{tt.url}/v2/post/publish/video/init/", headers={
        "Authorization": f"Bearer {token}"}, json={"post_info": PRIVACY, "source_info": {
            "source": "FILE_UPLOAD", "video_size": size, "chunk_size": chunk,
            "total_chunk_count": count}}, timeout=5)


def put(url: str, data: bytes, first: int, total: int, **headers: str) -> httpx.Response:
    h = {"Content-Type": "video/mp4",
         "Content-Range": f"bytes {first}-{first + len(data) - 1}/{total}", **headers}
    return httpx.put(url, content=data, headers=h, timeout=10)


def test_success_is_http_200_with_code_ok(tt: TT) -> None:
    response = httpx.post(f"{tt.url}/v2/post/publish/creator_info/query/", headers=H,
                          timeout=5)
    body = response.json()
    assert response.status_code == 200 and body["error"]["code"] == "ok"
    assert body["error"]["log_id"]
    assert body["data"]["privacy_level_options"] == [
        "PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"]


def test_private_account_variant_by_token(tt: TT) -> None:
    body = httpx.post(f"{tt.url}/v2/post/publish/creator_info/query/", timeout=5,
                      headers={"Authorization": "Bearer private-1"}).json()
    assert body["data"]["privacy_level_options"] == [
        "FOLLOWER_OF_CREATOR", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"]


def test_the_daily_cap_answers_http_200_with_an_error(tt: TT) -> None:
    tt.configure(dailyCap=0)
    response = httpx.post(f"{tt.url}/v2/post/publish/creator_info/query/", headers=H,
                          timeout=5)
    assert response.status_code == 200
    assert response.json()["error"]["code"] == "spam_risk_too_many_posts"


def test_init_refuses_plans_against_the_rules(tt: TT) -> None:
    response = init(tt, 100 * MB, 10 * MB, 11)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_param"
    assert "floor" in response.json()["error"]["message"]
    assert init(tt, 100 * MB, 100 * MB, 1).status_code == 400


def test_upload_url_is_absolute_on_this_server(tt: TT) -> None:
    url = init(tt, 1000, 1000, 1).json()["data"]["upload_url"]
    assert url.startswith(f"{tt.url}/video/?upload_id=")


def test_chunks_answer_206_then_201_with_content_range(tt: TT) -> None:
    size = 11 * MB
    url = init(tt, size, 5 * MB, 2).json()["data"]["upload_url"]
    first = put(url, bytes(5 * MB), 0, size)
    assert first.status_code == 206
    assert first.headers["Content-Range"] == f"bytes 0-{5 * MB - 1}/{size}"
    last = put(url, bytes(6 * MB), 5 * MB, size)
    assert last.status_code == 201
    assert last.headers["Content-Range"] == f"bytes 0-{size - 1}/{size}"


def test_out_of_order_chunk_is_416_with_the_range_held(tt: TT) -> None:
    size = 11 * MB
    url = init(tt, size, 5 * MB, 2).json()["data"]["upload_url"]
    early = put(url, bytes(6 * MB), 5 * MB, size)
    assert early.status_code == 416 and early.headers["Content-Range"] == f"bytes */{size}"
    assert put(url, bytes(5 * MB), 0, size).status_code == 206
    again = put(url, bytes(5 * MB), 0, size)
    assert again.status_code == 416
    assert again.headers["Content-Range"] == f"bytes 0-{5 * MB - 1}/{size}"


def test_bad_chunk_headers_and_lengths_are_400(tt: TT) -> None:
    size = 11 * MB
    url = init(tt, size, 5 * MB, 2).json()["data"]["upload_url"]
    # a chunk that is not the plan's first chunk
    assert put(url, bytes(4 * MB), 0, size).status_code == 400
    # the wrong total
    assert put(url, bytes(5 * MB), 0, size + 1).status_code == 400
    # a content type TikTok does not take
    assert put(url, bytes(5 * MB), 0, size, **{"Content-Type": "image/gif"}).status_code == 400
    state = tt.state()["publishes"]
    assert next(iter(state.values()))["uploadedBytes"] == 0


def test_expired_and_unknown_upload_urls(tt: TT) -> None:
    url = init(tt, 1000, 1000, 1).json()["data"]["upload_url"]
    assert put(url.replace("upload_token=", "upload_token=x"), bytes(1000), 0,
               1000).status_code == 404
    tt.configure(expireUploads=True)
    assert put(url, bytes(1000), 0, 1000).status_code == 403


def test_status_moves_from_upload_to_complete(tt: TT) -> None:
    data = init(tt, 1000, 1000, 1).json()["data"]

    def status() -> dict[str, Any]:
        return httpx.post(f"{tt.url}/v2/post/publish/status/fetch/", headers=H, timeout=5,
                          json={"publish_id": data["publish_id"]}).json()["data"]

    assert status()["status"] == "PROCESSING_UPLOAD"
    put(data["upload_url"], bytes(1000), 0, 1000)
    assert status() == {"status": "PROCESSING_UPLOAD", "publicaly_available_post_id": [],
                        "uploaded_bytes": 1000}
    done = status()
    assert done["status"] == "PUBLISH_COMPLETE" and len(done["publicaly_available_post_id"]) == 1
    assert len(tt.state()["posts"]) == 1


def test_per_token_rate_limit_on_status(tt: TT) -> None:
    tt.configure(rateLimits={"status": 2})
    codes = [httpx.post(f"{tt.url}/v2/post/publish/status/fetch/", headers=H, timeout=5,
                        json={"publish_id": "x"}).status_code for _ in range(3)]
    assert codes == [400, 400, 429]


def test_reset_forgets_everything(tt: TT) -> None:
    init(tt, 1000, 1000, 1)
    assert tt.state()["inits"] == 1
    httpx.post(f"{tt.url}/_sandbox/reset", timeout=5)
    assert tt.state()["inits"] == 0 and tt.state()["publishes"] == {}
