"""The LinkedIn sandbox itself, spoken to over HTTP the way LinkedIn is: what it refuses
is what the plugin must get right."""

from __future__ import annotations

from typing import Any

import httpx
from chat33_linkedin.sandbox import DEMO_ACCOUNT, unescaped

from .conftest import Sandbox

HEADERS = {"Authorization": f"Bearer {DEMO_ACCOUNT['token']}", "LinkedIn-Version": "202601",
           "X-Restli-Protocol-Version": "2.0.0"}
POST = {"author": DEMO_ACCOUNT["urn"], "commentary": "hi", "visibility": "PUBLIC",
        "distribution": {"feedDistribution": "MAIN_FEED"}, "lifecycleState": "PUBLISHED"}


def call(sandbox: Sandbox, method: str, path: str, headers: dict[str, str] | None = None,
         **kwargs: Any) -> httpx.Response:
    return sandbox.http.request(method, f"{sandbox.url}{path}",
                                headers=HEADERS if headers is None else headers, **kwargs)


def test_version_and_restli_headers_are_required(sandbox: Sandbox) -> None:
    no_version = {k: v for k, v in HEADERS.items() if k != "LinkedIn-Version"}
    answer = call(sandbox, "POST", "/rest/posts", no_version, json=POST)
    assert answer.status_code == 400 and answer.json()["code"] == "VERSION_MISSING"
    answer = call(sandbox, "POST", "/rest/posts", {**HEADERS, "LinkedIn-Version": "202507"},
                  json=POST)
    assert answer.status_code == 426
    no_restli = {k: v for k, v in HEADERS.items() if k != "X-Restli-Protocol-Version"}
    assert call(sandbox, "POST", "/rest/posts", no_restli, json=POST).status_code == 400
    assert sandbox.posts() == []


def test_a_post_answers_201_with_an_empty_body_and_the_urn_in_a_header(
        sandbox: Sandbox) -> None:
    answer = call(sandbox, "POST", "/rest/posts", json=POST)
    assert answer.status_code == 201 and answer.content == b""
    assert answer.headers["x-restli-id"].startswith("urn:li:share:")


def test_an_unescaped_reserved_character_silently_cuts_the_post(sandbox: Sandbox) -> None:
    answer = call(sandbox, "POST", "/rest/posts", json=POST | {"commentary": "see (this) #x"})
    assert answer.status_code == 201
    [post] = sandbox.posts()
    assert post["text"] == "see "
    assert unescaped(r"a \(b\) \\ c") == r"a (b) \ c"


def test_a_bad_token_is_401_with_linkedins_error_body(sandbox: Sandbox) -> None:
    answer = call(sandbox, "POST", "/rest/posts", {**HEADERS, "Authorization": "Bearer no"},
                  json=POST)
    assert answer.status_code == 401
    assert answer.json() == {"status": 401, "serviceErrorCode": 65600,
                             "code": "INVALID_ACCESS_TOKEN", "message": "Invalid access token"}


def test_multi_image_takes_2_to_20_uploaded_images(sandbox: Sandbox) -> None:
    init = call(sandbox, "POST", "/rest/images?action=initializeUpload",
                json={"initializeUploadRequest": {"owner": DEMO_ACCOUNT["urn"]}}).json()
    urn = init["value"]["image"]
    one = POST | {"content": {"multiImage": {"images": [{"id": urn}]}}}
    assert call(sandbox, "POST", "/rest/posts", json=one).status_code == 422
    # not uploaded yet
    single = POST | {"content": {"media": {"id": urn}}}
    answer = call(sandbox, "POST", "/rest/posts", json=single)
    assert answer.status_code == 400 and answer.json()["code"] == "MEDIA_NOT_READY"


def test_finalize_checks_the_etags_in_order(sandbox: Sandbox) -> None:
    sandbox.config(part_bytes=16)
    data = b"\x00\x00\x00\x18ftypmp42" + bytes(20)
    init = call(sandbox, "POST", "/rest/videos?action=initializeUpload",
                json={"initializeUploadRequest": {"owner": DEMO_ACCOUNT["urn"],
                                                  "fileSizeBytes": len(data)}}).json()["value"]
    etags = []
    for part in init["uploadInstructions"]:
        put = sandbox.http.put(part["uploadUrl"], headers=HEADERS,
                               content=data[part["firstByte"]:part["lastByte"] + 1])
        etags.append(put.headers["ETag"])
    assert len(etags) == 2
    finalize = {"finalizeUploadRequest": {"video": init["video"],
                                          "uploadToken": init["uploadToken"],
                                          "uploadedPartIds": list(reversed(etags))}}
    assert call(sandbox, "POST", "/rest/videos?action=finalizeUpload",
                json=finalize).status_code == 400
    finalize["finalizeUploadRequest"]["uploadedPartIds"] = etags
    assert call(sandbox, "POST", "/rest/videos?action=finalizeUpload",
                json=finalize).status_code == 200
    path = "/rest/videos/" + init["video"].replace(":", "%3A")
    statuses = [call(sandbox, "GET", path).json()["status"] for _ in range(3)]
    assert statuses == ["PROCESSING", "PROCESSING", "AVAILABLE"]


def test_a_token_refresh_is_only_for_apps_that_have_it(sandbox: Sandbox) -> None:
    form = {"grant_type": "refresh_token", "refresh_token": DEMO_ACCOUNT["refresh_token"],
            "client_id": "c", "client_secret": "s"}
    answer = sandbox.http.post(f"{sandbox.url}/oauth/v2/accessToken", data=form)
    assert answer.status_code == 200 and answer.json()["expires_in"] == 60 * 24 * 3600
    sandbox.config(refresh_enabled=False)
    assert sandbox.http.post(f"{sandbox.url}/oauth/v2/accessToken",
                             data=form).status_code == 400


def test_delete_is_204_then_404(sandbox: Sandbox) -> None:
    urn = call(sandbox, "POST", "/rest/posts", json=POST).headers["x-restli-id"]
    path = "/rest/posts/" + urn.replace(":", "%3A")
    assert call(sandbox, "DELETE", path).status_code == 204
    assert call(sandbox, "DELETE", path).status_code == 404


def test_an_upload_needs_the_bearer_token(sandbox: Sandbox) -> None:
    init = call(sandbox, "POST", "/rest/images?action=initializeUpload",
                json={"initializeUploadRequest": {"owner": DEMO_ACCOUNT["urn"]}}).json()
    url = init["value"]["uploadUrl"]
    assert sandbox.http.put(url, content=b"\xff\xd8\xff\xe0").status_code == 401
    assert sandbox.http.put(url, content=b"\xff\xd8\xff\xe0",
                            headers=HEADERS).status_code == 201
    [image] = sandbox.state()["images"]
    assert image["status"] == "AVAILABLE"
