"""The sandbox itself, spoken to directly: what platforms-more.md §1.11 says a faithful
imitation must reproduce."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from .conftest import DID, HANDLE, PASSWORD, Sandbox

POST = "app.bsky.feed.post"


class Client:
    """Raw XRPC calls to the sandbox's PDS with a fresh session."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        login = sandbox.http.post(f"{sandbox.url}/xrpc/com.atproto.server.createSession",
                                  json={"identifier": HANDLE, "password": PASSWORD})
        assert login.status_code == 200, login.text
        self.session = login.json()
        self.pds = self.session["didDoc"]["service"][0]["serviceEndpoint"]
        self.auth = {"Authorization": f"Bearer {self.session['accessJwt']}"}

    def post(self, nsid: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.auth, **kwargs.pop("headers", {})}
        return self.sandbox.http.post(f"{self.pds}/xrpc/{nsid}", headers=headers, **kwargs)

    def get(self, nsid: str, **params: Any) -> httpx.Response:
        return self.sandbox.http.get(f"{self.pds}/xrpc/{nsid}", params=params,
                                     headers=self.auth)

    def create(self, record: dict[str, Any], **body: Any) -> httpx.Response:
        return self.post("com.atproto.repo.createRecord", json={
            "repo": DID, "collection": POST, "record": record, **body})

    def blob(self, data: bytes = b"\x89PNG....", mime: str = "image/png") -> dict[str, Any]:
        answer = self.post("com.atproto.repo.uploadBlob", content=data,
                           headers={"Content-Type": mime})
        assert answer.status_code == 200, answer.text
        blob: dict[str, Any] = answer.json()["blob"]
        return blob


def post(text: str = "hi", **fields: Any) -> dict[str, Any]:
    return {"$type": POST, "text": text, "createdAt": "2026-12-02T10:00:00.000Z", **fields}


@pytest.fixture
def client(sandbox: Sandbox) -> Client:
    return Client(sandbox)


def refused(answer: httpx.Response, status: int = 400, error: str = "InvalidRequest") -> str:
    assert (answer.status_code, answer.json()["error"]) == (status, error), answer.text
    message: str = answer.json()["message"]
    return message


def test_the_did_document_names_a_pds_other_than_the_login_host(client: Client) -> None:
    assert client.pds == f"{client.sandbox.url}/pds"
    service = client.session["didDoc"]["service"][0]
    assert service["id"] == "#atproto_pds" and service["type"] == "AtprotoPersonalDataServer"


def test_record_text_limits_in_graphemes_and_bytes(client: Client) -> None:
    assert client.create(post("👨‍❤️‍👨" * 150)).status_code == 200  # 150 graphemes, 3,000 bytes
    assert "300 graphemes" in refused(client.create(post("a" * 301)))
    assert "3000" in refused(client.create(post("👨‍❤️‍👨" * 151)))


def test_langs_facets_and_replies_are_validated(client: Client) -> None:
    assert "langs" in refused(client.create(post(langs=["en", "de", "fr", "es"])))
    link = {"$type": "app.bsky.richtext.facet#link", "uri": "https://a.test"}
    outside = [{"index": {"byteStart": 0, "byteEnd": 3}, "features": [link]}]
    assert "outside" in refused(client.create(post("hi", facets=outside)))
    overlap = [{"index": {"byteStart": 0, "byteEnd": 2}, "features": [link]},
               {"index": {"byteStart": 1, "byteEnd": 2}, "features": [link]}]
    assert "overlaps" in refused(client.create(post("hi", facets=overlap)))
    first = client.create(post("root")).json()
    ref = {"uri": first["uri"], "cid": first["cid"]}
    assert "parent" in refused(client.create(post("re", reply={"root": ref})))
    wrong = {"uri": first["uri"], "cid": "bafyreiwrong"}
    assert "existing" in refused(client.create(post("re", reply={"root": ref,
                                                                 "parent": wrong})))
    assert client.create(post("re", reply={"root": ref, "parent": ref})).status_code == 200


def test_images_need_alt_at_most_four_and_a_blob_within_the_limit(client: Client) -> None:
    blob = client.blob()
    image = {"image": blob, "alt": ""}
    images = {"$type": "app.bsky.embed.images"}
    assert client.create(post(embed={**images, "images": [image] * 4})).status_code == 200
    assert "1 to 4" in refused(client.create(post(embed={**images, "images": [image] * 5})))
    assert "alt" in refused(client.create(post(embed={**images, "images": [{"image": blob}]})))
    client.sandbox.config(image_max_bytes=4)
    assert "too large" in refused(client.create(post(embed={**images, "images": [image]})))
    text_blob = client.blob(b"plain", "text/plain")
    refused(client.create(post(embed={**images, "images": [{"image": text_blob, "alt": ""}]})),
            error="InvalidMimeType")


def test_blobs_are_content_addressed_and_dropped_when_unreferenced(client: Client) -> None:
    assert client.blob(b"same bytes") == client.blob(b"same bytes")
    blob = client.blob(b"forgotten")
    client.sandbox.advance(601)
    answer = client.create(post(embed={"$type": "app.bsky.embed.images",
                                       "images": [{"image": blob, "alt": ""}]}))
    refused(answer, error="BlobNotFound")


def test_an_upload_over_the_pds_limit_is_a_413(client: Client) -> None:
    client.sandbox.config(upload_limit_bytes=10)
    answer = client.post("com.atproto.repo.uploadBlob", content=b"x" * 11,
                         headers={"Content-Type": "image/png"})
    assert "too large" in refused(answer, 413, "PayloadTooLarge")


def test_a_chosen_record_key_is_honoured_once(client: Client) -> None:
    rkey = "3kaaaaaaaaaab"
    first = client.create(post("one"), rkey=rkey)
    assert first.json()["uri"].endswith(f"/{rkey}")
    assert "already exists" in refused(client.create(post("two"), rkey=rkey))
    assert "TID" in refused(client.create(post("three"), rkey="not-a-tid"))


def test_get_list_and_idempotent_delete(client: Client) -> None:
    uris = [client.create(post(f"p{i}")).json()["uri"] for i in range(3)]
    rkey = uris[0].rsplit("/", 1)[1]
    found = client.get("com.atproto.repo.getRecord", repo=HANDLE, collection=POST, rkey=rkey)
    assert found.json()["uri"] == uris[0] and found.json()["value"]["text"] == "p0"
    page = client.get("com.atproto.repo.listRecords", repo=DID, collection=POST, limit=2)
    assert [r["value"]["text"] for r in page.json()["records"]] == ["p2", "p1"]
    rest = client.get("com.atproto.repo.listRecords", repo=DID, collection=POST, limit=2,
                      cursor=page.json()["cursor"])
    assert [r["value"]["text"] for r in rest.json()["records"]] == ["p0"]
    assert "cursor" not in rest.json()
    for _ in range(2):
        gone = client.post("com.atproto.repo.deleteRecord",
                           json={"repo": DID, "collection": POST, "rkey": rkey})
        assert gone.status_code == 200
    refused(client.get("com.atproto.repo.getRecord", repo=DID, collection=POST, rkey=rkey),
            error="RecordNotFound")


def test_tokens_expired_forged_missing_and_of_the_wrong_kind(client: Client) -> None:
    refresh = {"Authorization": f"Bearer {client.session['refreshJwt']}"}
    assert "scope" in refused(client.post("com.atproto.repo.createRecord", json={},
                                          headers=refresh), error="InvalidToken")
    answer = client.sandbox.http.post(f"{client.pds}/xrpc/com.atproto.repo.createRecord",
                                      json={})
    refused(answer, 401, "AuthMissing")
    client.sandbox.advance(7201)
    assert refused(client.create(post()), error="ExpiredToken") == "Token has expired"


def test_create_session_is_rate_limited_with_ratelimit_headers(sandbox: Sandbox) -> None:
    sandbox.config(create_session_limit=2)
    Client(sandbox)
    Client(sandbox)
    answer = sandbox.http.post(f"{sandbox.url}/xrpc/com.atproto.server.createSession",
                               json={"identifier": HANDLE, "password": PASSWORD})
    refused(answer, 429, "RateLimitExceeded")
    assert answer.headers["RateLimit-Limit"] == "2"
    assert answer.headers["RateLimit-Remaining"] == "0"
    assert answer.headers["RateLimit-Policy"] == "2;w=300"
    assert time.time() < float(answer.headers["RateLimit-Reset"]) <= time.time() + 301


def test_write_points_run_out_at_5000_an_hour_by_default(client: Client) -> None:
    client.sandbox.config(write_points=7)  # two creates (3 each) and a delete (1)
    first = client.create(post("a")).json()
    client.create(post("b"))
    client.post("com.atproto.repo.deleteRecord", json={
        "repo": DID, "collection": POST, "rkey": first["uri"].rsplit("/", 1)[1]})
    answer = client.create(post("c"))
    refused(answer, 429, "RateLimitExceeded")
    assert answer.headers["RateLimit-Policy"] == "7;w=3600"


def test_service_auth_expiry_is_bounded(client: Client) -> None:
    aud = "did:web:127.0.0.1"
    ok = client.get("com.atproto.server.getServiceAuth", aud=aud,
                    lxm="com.atproto.repo.uploadBlob", exp=int(time.time()) + 1800)
    assert ok.json()["token"].count(".") == 2
    late = client.get("com.atproto.server.getServiceAuth", aud=aud,
                      exp=int(time.time()) + 7200)
    refused(late, error="BadExpiration")


def test_video_jobs_step_through_states_to_a_blob(client: Client) -> None:
    token = client.get("com.atproto.server.getServiceAuth", aud="did:web:x",
                       lxm="com.atproto.repo.uploadBlob").json()["token"]
    video = client.sandbox.http.post(
        f"{client.sandbox.url}/xrpc/app.bsky.video.uploadVideo",
        params={"did": DID, "name": "v.mp4"}, content=b"\0\0\0\x18ftypmp42rest",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "video/mp4"})
    job = video.json()
    assert job["state"] == "JOB_STATE_CREATED" and "jobStatus" not in job  # top level
    states = []
    for _ in range(3):
        status = client.sandbox.http.get(
            f"{client.sandbox.url}/xrpc/app.bsky.video.getJobStatus",
            params={"jobId": job["jobId"]}).json()["jobStatus"]
        states.append(status["state"])
    assert states == ["JOB_STATE_ENCODING", "JOB_STATE_SCANNING", "JOB_STATE_COMPLETED"]
    assert status["blob"]["mimeType"] == "video/mp4"
    again = client.sandbox.http.post(
        f"{client.sandbox.url}/xrpc/app.bsky.video.uploadVideo",
        params={"did": DID, "name": "v.mp4"}, content=b"\0\0\0\x18ftypmp42rest",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "video/mp4"})
    assert again.json()["error"] == "already_exists" and again.json()["blob"]


def test_a_file_that_is_not_a_video_fails_processing(client: Client) -> None:
    token = client.get("com.atproto.server.getServiceAuth", aud="did:web:x",
                       lxm="com.atproto.repo.uploadBlob").json()["token"]
    job = client.sandbox.http.post(
        f"{client.sandbox.url}/xrpc/app.bsky.video.uploadVideo",
        params={"did": DID, "name": "v.mp4"}, content=b"not a video",
        headers={"Authorization": f"Bearer {token}"}).json()
    client.sandbox.config(video_steps=1)
    status = client.sandbox.http.get(f"{client.sandbox.url}/xrpc/app.bsky.video.getJobStatus",
                                     params={"jobId": job["jobId"]}).json()["jobStatus"]
    assert (status["state"], status["failureCode"]) == ("JOB_STATE_FAILED",
                                                        "validation_failure")


def test_unknown_methods_and_options(sandbox: Sandbox) -> None:
    answer = sandbox.http.post(f"{sandbox.url}/xrpc/com.example.nothing", json={})
    refused(answer, 501, "MethodNotImplemented")
    bad = sandbox.http.post(f"{sandbox.url}/_sandbox/config", json={"nope": 1})
    assert bad.status_code == 400 and "write_points" in bad.json()["options"]
