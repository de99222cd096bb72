"""Direct uploads (presign, PUT, complete) and the media library, on both media
backends: the folder and an S3 server (moto, a real process)."""

from __future__ import annotations

import hashlib
import io
import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from chat33_core.models import utcnow
from chat33_core.sandbox import serve
from chat33_core.testing import make_image, make_video
from tests.s3server import S3_ENV

from .conftest import Api, make_app, make_core, make_org


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("direct")
    make_image(root / "photo.jpg", 640, 480)
    make_image(root / "other.png", 30, 30, fmt="PNG")
    make_video(root / "clip.mp4", 320, 240, seconds=1.0)
    return root


@pytest.fixture(params=["folder", "s3"])
def media_api(request: pytest.FixtureRequest, db_url: str, settings_for: Any
              ) -> Iterator[Api]:
    env: dict[str, str] = {}
    if request.param == "s3":
        from tests.core.test_blobs import make_bucket

        endpoint = request.getfixturevalue("s3_endpoint")
        env = {**S3_ENV, "CHAT33_MEDIA_STORE": f"s3://{make_bucket(endpoint)}/media",
               "CHAT33_S3_ENDPOINT_URL": endpoint}
    core = make_core(settings_for(db_url, **env))
    app = make_app(core)
    yield Api(app=app, core=core, client=app.test_client(), org=make_org(core, "Acme"),
              other=make_org(core, "Rival"))
    core.store.dispose()


def presign(api: Api, path: Path, content_type: str, size: int | None = None,
            **kw: Any) -> Any:
    return api.post("/media/presign", {"filename": path.name, "contentType": content_type,
                                       "size": path.stat().st_size if size is None else size},
                    **kw)


def put(api: Api, ticket: dict[str, Any], data: bytes,
        headers: dict[str, str] | None = None) -> Any:
    """PUT ``data`` to the ticket's uploadUrl: the bucket over HTTP, or our route."""
    url = ticket["uploadUrl"]
    sent = {**ticket["headers"], **(headers or {})}
    sent.pop("Content-Length", None)
    if api.core.media.files.local:
        return api.client.put(urlsplit(url).path, data=data, headers=sent)
    return httpx.put(url, content=data, headers=sent)


def direct_upload(api: Api, path: Path, content_type: str) -> dict[str, Any]:
    response = presign(api, path, content_type)
    assert response.status_code == 201, response.get_json()
    ticket = response.get_json()
    assert put(api, ticket, path.read_bytes()).status_code == 200
    done = api.post(f"/media/{ticket['mediaId']}/complete")
    assert done.status_code == 201, done.get_json()
    body: dict[str, Any] = done.get_json()
    return body


def test_presign_put_complete(media_api: Api, files: Path) -> None:
    path = files / "clip.mp4"
    response = presign(media_api, path, "video/mp4")
    assert response.status_code == 201, response.get_json()
    ticket = response.get_json()
    assert ticket["method"] == "PUT" and ticket["mediaId"].startswith("media_")
    if media_api.core.media.files.local:
        assert "/api/v1/media/uploads/" in ticket["uploadUrl"]
    else:  # straight to the bucket, size and type signed
        assert ticket["uploadUrl"].startswith(media_api.core.settings.env[
            "CHAT33_S3_ENDPOINT_URL"])
        assert ticket["headers"]["Content-Length"] == str(path.stat().st_size)
    assert put(media_api, ticket, path.read_bytes()).status_code == 200
    done = media_api.post(f"/media/{ticket['mediaId']}/complete")
    assert done.status_code == 201, done.get_json()
    media = done.get_json()
    assert media["id"] == ticket["mediaId"] and media["url"] == ticket["url"]
    assert (media["type"], media["contentType"], media["size"], media["name"]) == (
        "video", "video/mp4", path.stat().st_size, "clip.mp4")
    # served from the store, ranges too
    served = media_api.client.get(urlsplit(media["url"]).path)
    assert served.status_code == 200 and served.data == path.read_bytes()
    part = media_api.client.get(urlsplit(media["url"]).path, headers={"Range": "bytes=4-11"})
    assert part.status_code == 206 and part.data == path.read_bytes()[4:12]
    # and it can be posted
    post = media_api.create(mediaUrls=[media["url"]], scheduledAt=(
        utcnow() + timedelta(days=1)).isoformat())
    shown = media_api.get(f"/posts/{post['posts'][0]['id']}").get_json()
    assert shown["mediaUrls"] == [media["url"]]


@pytest.mark.parametrize("body, path", [
    ({"filename": "a.exe", "contentType": "application/x-msdownload", "size": 10},
     "contentType"),
    ({"filename": "a.mp4", "contentType": "video/mp4", "size": 0}, "size"),
    ({"filename": "a.mp4", "contentType": "video/mp4", "size": 5 * 1024 ** 3 + 1}, "size"),
    ({"filename": "a.jpg", "contentType": "image/jpeg", "size": 11 * 1024 * 1024}, "size"),
    ({"filename": " ", "contentType": "video/mp4", "size": 10}, "filename"),
    ({"contentType": "video/mp4", "size": 10}, "filename"),
])
def test_presign_refuses_what_cannot_be_kept(media_api: Api, body: dict[str, Any],
                                             path: str) -> None:
    response = media_api.post("/media/presign", body)
    assert response.status_code == 400, response.get_json()
    assert path in [d["path"] for d in response.get_json()["details"]]


def test_presign_counts_against_the_upload_limit(media_api: Api, files: Path) -> None:
    response = presign(media_api, files / "photo.jpg", "image/jpeg")
    assert response.headers["RateLimit-Limit"] == "50"
    assert response.headers["RateLimit-Remaining"] == "49"


def test_a_file_of_another_type_is_refused_and_deleted(media_api: Api, files: Path) -> None:
    path = files / "other.png"
    ticket = presign(media_api, path, "video/mp4").get_json()
    put(media_api, ticket, path.read_bytes())
    refused = media_api.post(f"/media/{ticket['mediaId']}/complete")
    assert refused.status_code == 400
    detail = refused.get_json()["details"][0]
    assert detail["path"] == "contentType"
    assert "is image/png, not the video/mp4 declared" in detail["message"]
    assert not media_api.core.media.files.exists(ticket["url"].rsplit("/", 1)[1])
    assert media_api.post(f"/media/{ticket['mediaId']}/complete").status_code == 404


def test_bytes_that_are_not_media_are_refused(media_api: Api, tmp_path: Path) -> None:
    path = tmp_path / "fake.mp4"
    path.write_bytes(b"<html>not a video</html>" * 10)
    ticket = presign(media_api, path, "video/mp4").get_json()
    put(media_api, ticket, path.read_bytes())
    refused = media_api.post(f"/media/{ticket['mediaId']}/complete")
    assert refused.status_code == 400
    assert refused.get_json()["details"][0]["path"] == "file"
    assert "it was deleted" in refused.get_json()["message"]


def test_a_file_of_another_size_is_refused(media_api: Api, files: Path) -> None:
    path = files / "photo.jpg"
    ticket = presign(media_api, path, "image/jpeg", size=path.stat().st_size - 1).get_json()
    response = put(media_api, ticket, path.read_bytes())
    if media_api.core.media.files.local:
        assert response.status_code == 400  # refused as it arrives
        assert response.get_json()["details"][0]["path"] == "Content-Length"
        return
    # a real S3 refuses it against the signature; a server that took it all the same
    # (the test server checks no signatures) is caught at completion
    refused = media_api.post(f"/media/{ticket['mediaId']}/complete")
    assert refused.status_code == 400
    assert "declared; it was deleted" in refused.get_json()["message"]
    assert not media_api.core.media.files.exists(ticket["url"].rsplit("/", 1)[1])


def test_complete_before_the_bytes_then_twice(media_api: Api, files: Path) -> None:
    path = files / "photo.jpg"
    ticket = presign(media_api, path, "image/jpeg").get_json()
    early = media_api.post(f"/media/{ticket['mediaId']}/complete")
    assert early.status_code == 400
    assert "nothing has been uploaded yet" in early.get_json()["message"]
    put(media_api, ticket, path.read_bytes())
    assert media_api.post(f"/media/{ticket['mediaId']}/complete").status_code == 201
    again = media_api.post(f"/media/{ticket['mediaId']}/complete")
    assert again.status_code == 409 and again.get_json()["error"] == "CONFLICT"


def test_unknown_and_foreign_uploads_are_not_found(media_api: Api, files: Path) -> None:
    assert media_api.post("/media/media_0123456789abcdef0123456789abcdef/complete"
                          ).status_code == 404
    ticket = presign(media_api, files / "photo.jpg", "image/jpeg").get_json()
    put(media_api, ticket, (files / "photo.jpg").read_bytes())
    other = media_api.post(f"/media/{ticket['mediaId']}/complete", org=media_api.other)
    assert other.status_code == 404


def test_presign_needs_media_write(media_api: Api, files: Path) -> None:
    user = media_api.org
    _, raw = media_api.core.create_api_key(user.id, user.user_id, "read only",
                                           scopes=["posts:read"])
    response = presign(media_api, files / "photo.jpg", "image/jpeg",
                       headers={"x-api-key": raw})
    assert response.status_code == 403


# --- the API's own upload route (the folder backend) --------------------------------------

@pytest.fixture
def folder_api(sqlite_api: Api) -> Api:
    return sqlite_api


def upload_path(ticket: dict[str, Any]) -> str:
    return urlsplit(ticket["uploadUrl"]).path


def test_resume_with_content_range(folder_api: Api, files: Path) -> None:
    data = (files / "clip.mp4").read_bytes()
    size, half = len(data), len(data) // 2
    ticket = presign(folder_api, files / "clip.mp4", "video/mp4").get_json()
    target = upload_path(ticket)
    first = folder_api.client.put(target, data=data[:half],
                                  headers={"Content-Range": f"bytes 0-{half - 1}/{size}"})
    assert first.get_json() == {"mediaId": ticket["mediaId"], "received": half,
                                "size": size, "complete": False}
    asked = folder_api.client.put(target, headers={"Content-Range": f"bytes */{size}"})
    assert asked.get_json()["received"] == half
    incomplete = folder_api.post(f"/media/{ticket['mediaId']}/complete")
    assert incomplete.status_code == 400
    assert f"resume the PUT from byte {half}" in incomplete.get_json()["message"]
    gap = folder_api.client.put(target, data=data[half + 1:],
                                headers={"Content-Range": f"bytes {half + 1}-{size - 1}/{size}"})
    assert gap.status_code == 409 and f"resume from byte {half}" in gap.get_json()["message"]
    rest = folder_api.client.put(target, data=data[half:],
                                 headers={"Content-Range": f"bytes {half}-{size - 1}/{size}"})
    assert rest.get_json()["complete"] is True
    assert folder_api.post(f"/media/{ticket['mediaId']}/complete").status_code == 201
    after = folder_api.client.put(target, data=data)
    assert after.status_code == 409


@pytest.mark.parametrize("header", ["bytes 0-9/11", "bytes=0-9/10", "bytes 5-2/10",
                                    "bytes 0-10/10", "items 0-1/10"])
def test_bad_content_ranges(folder_api: Api, tmp_path: Path, header: str) -> None:
    path = tmp_path / "ten.jpg"
    path.write_bytes(b"0123456789")
    ticket = presign(folder_api, path, "image/jpeg").get_json()
    response = folder_api.client.put(upload_path(ticket), data=b"0123456789",
                                     headers={"Content-Range": header})
    assert response.status_code == 400
    assert response.get_json()["error"] == "VALIDATION_ERROR"


def test_unknown_and_expired_tokens(folder_api: Api, files: Path) -> None:
    missing = folder_api.client.put("/api/v1/media/uploads/not-a-token", data=b"x")
    assert missing.status_code == 404
    path = files / "photo.jpg"
    ticket = folder_api.core.media.uploads.presign(
        folder_api.org.id, "photo.jpg", "image/jpeg", path.stat().st_size,
        now=utcnow() - timedelta(days=2))
    expired = folder_api.client.put(f"/api/v1/media/uploads/{ticket.token}",
                                    data=path.read_bytes())
    assert expired.status_code == 410 and expired.get_json()["error"] == "GONE"
    # the sweep removes uploads never completed once their URL expired
    assert folder_api.core.media.sweep() == 0
    assert folder_api.post(f"/media/{ticket.upload.id}/complete").status_code == 404


def test_a_broken_connection_keeps_what_arrived(tmp_path: Path, settings_for: Any,
                                                files: Path) -> None:
    """Over real HTTP: the client sends half its body and hangs up; the bytes that
    arrived are kept and the upload resumes from there."""
    core = make_core(settings_for(f"sqlite:///{tmp_path / 'api.db'}"))
    app = make_app(core)
    org = make_org(core, "Acme")
    data = (files / "clip.mp4").read_bytes()
    size, half = len(data), len(data) // 2
    with serve(app) as base:
        ticket = httpx.post(f"{base}/api/v1/media/presign", headers=org.headers, json={
            "filename": "clip.mp4", "contentType": "video/mp4", "size": size}).json()
        target = upload_path(ticket)
        host, port = urlsplit(base).hostname, urlsplit(base).port
        with socket.create_connection((host, port)) as sock:
            sock.sendall(f"PUT {target} HTTP/1.1\r\nHost: x\r\nContent-Type: video/mp4\r\n"
                         f"Content-Length: {size}\r\n\r\n".encode() + data[:half])
            sock.shutdown(socket.SHUT_WR)
            sock.recv(65536)
        asked = httpx.put(base + target, headers={"Content-Range": f"bytes */{size}"})
        received = asked.json()["received"]
        assert received == half
        rest = httpx.put(base + target, content=data[received:], headers={
            "Content-Range": f"bytes {received}-{size - 1}/{size}"})
        assert rest.json()["complete"] is True
        done = httpx.post(f"{base}/api/v1/media/{ticket['mediaId']}/complete",
                          headers=org.headers)
        assert done.status_code == 201
        assert httpx.get(done.json()["url"].replace("http://127.0.0.1:8000", base)
                         ).content == data
    core.store.dispose()


# --- bodies past the declared size, and the content hash ----------------------------------

def chunked(data: bytes, size: int = 4096) -> Iterator[bytes]:
    """``data`` as a body without Content-Length (Transfer-Encoding: chunked)."""
    for at in range(0, len(data), size):
        yield data[at:at + size]


def test_a_chunked_body_past_the_declared_size_is_refused(media_api: Api, files: Path
                                                          ) -> None:
    """Over real HTTP, a body without Content-Length that goes on past the declared size
    is refused in the error shape and nothing past the size is kept: on the folder
    backend at the PUT (the upload resumes from where it stood), on S3 at completion
    (the file is deleted)."""
    data = (files / "photo.jpg").read_bytes()
    size = len(data)
    ticket = presign(media_api, files / "photo.jpg", "image/jpeg").get_json()
    name = ticket["url"].rsplit("/", 1)[1]
    blobs = media_api.core.media.files.blobs
    headers = {"Content-Type": "image/jpeg"}
    if media_api.core.media.files.local:
        with serve(media_api.app) as base:
            target = base + upload_path(ticket)
            half = size // 2
            first = httpx.put(target, content=chunked(data[:half]), headers={
                **headers, "Content-Range": f"bytes 0-{half - 1}/{size}"})
            assert first.json()["received"] == half
            # the rest, and then some: refused, and the file is as it was before
            over = httpx.put(target, content=chunked(data[half:] + b"\0" * 3000), headers={
                **headers, "Content-Range": f"bytes {half}-{size - 1}/{size}"})
            assert over.status_code == 400, over.text
            error = over.json()
            assert error["error"] == "VALIDATION_ERROR"
            assert error["details"][0]["path"] == "body"
            assert "longer than" in error["details"][0]["message"]
            assert f"resume from byte {half}" in error["message"]
            assert blobs.size(name) == half
            # the whole file again, without a range: refused the same way, nothing kept
            whole = httpx.put(target, content=chunked(data + b"\0"), headers=headers)
            assert whole.status_code == 400 and blobs.size(name) == 0
            asked = httpx.put(target, headers={"Content-Range": f"bytes */{size}"})
            assert asked.json()["received"] == 0
            # the right bytes, chunked, complete the upload
            right = httpx.put(target, content=chunked(data), headers=headers)
            assert right.json() == {"mediaId": ticket["mediaId"], "received": size,
                                    "size": size, "complete": True}
        done = media_api.post(f"/media/{ticket['mediaId']}/complete")
        assert done.status_code == 201 and done.get_json()["size"] == size
        assert media_api.client.get(urlsplit(ticket["url"]).path).data == data
        return
    # S3: the bucket may refuse a body of another length than the signed one; one that
    # took it (the test server checks no signatures) is refused at completion
    httpx.put(ticket["uploadUrl"], content=chunked(data + b"\0" * 3000), headers=headers)
    refused = media_api.post(f"/media/{ticket['mediaId']}/complete")
    assert refused.status_code == 400, refused.get_json()
    assert refused.get_json()["details"][0]["path"] in {"size", "mediaId"}
    assert blobs.size(name) is None


def test_direct_uploads_are_hashed_like_uploads(media_api: Api, files: Path) -> None:
    """A direct upload's sha256 is its content hash, as for POST /media/upload: the
    library shows it and both share one thumbnail."""
    from chat33_flask.webapp import thumbs

    path = files / "photo.jpg"
    data = path.read_bytes()
    expected = hashlib.sha256(data).hexdigest()
    direct = direct_upload(media_api, path, "image/jpeg")
    assert direct["sha256"] == expected
    uploaded = media_api.client.post("/api/v1/media/upload", headers=media_api.org.headers,
                                     data={"file": (io.BytesIO(data), "photo.jpg")})
    assert uploaded.status_code == 201 and uploaded.get_json()["sha256"] == expected
    listed = {m["id"]: m for m in media_api.get("/media").get_json()["items"]}
    assert listed[direct["id"]]["sha256"] == listed[uploaded.get_json()["id"]]["sha256"]
    assert media_api.get(f"/media/{direct['id']}").get_json()["sha256"] == expected
    store = media_api.core.store
    assert thumbs.key(store.get_media(direct["id"])) == thumbs.key(
        store.get_media(uploaded.get_json()["id"])) == expected
    # a video, read back from the store in chunks
    clip = files / "clip.mp4"
    video = direct_upload(media_api, clip, "video/mp4")
    assert video["sha256"] == hashlib.sha256(clip.read_bytes()).hexdigest()
