"""/media/upload (multipart and URL ingestion), the media files, SSRF refusals."""

from __future__ import annotations

import hashlib
import io
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
from chat33_flask.views.media import MAX_UPLOAD_BYTES

from chat33_core.models import MediaAsset, PostStatus, new_id
from chat33_core.sandbox import serve
from chat33_core.testing import make_image, make_sparse_file, make_video, serve_directory

from .conftest import Api, make_app, make_core, make_org

MEDIA_KEYS = {"url", "type", "size", "name", "contentType"}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("files")
    make_image(root / "square.jpg", 1080, 1080)
    make_image(root / "wide.png", 1200, 628, fmt="PNG")
    make_video(root / "clip.mp4", 320, 240, seconds=1.0)
    (root / "notes.txt").write_bytes(b"just some text, not media at all\n" * 20)
    make_sparse_file(root / "huge.jpg", MAX_UPLOAD_BYTES + 1,
                     head=(root / "square.jpg").read_bytes())
    return root


def upload(api: Api, path: Path, name: str | None = None) -> Any:
    with path.open("rb") as fh:
        return api.post("/media/upload", json=None, content_type="multipart/form-data",
                        data={"file": (fh, name or path.name)})


def test_upload_an_image(sqlite_api: Api, files: Path) -> None:
    response = upload(sqlite_api, files / "square.jpg")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert set(body) >= MEDIA_KEYS
    assert body["type"] == "image"
    assert body["contentType"] == "image/jpeg"
    assert body["size"] == (files / "square.jpg").stat().st_size
    assert body["name"] == "square.jpg"
    assert body["url"].startswith("http://127.0.0.1:8000/media/")


def test_upload_a_video(sqlite_api: Api, files: Path) -> None:
    body = upload(sqlite_api, files / "clip.mp4").get_json()
    assert body["type"] == "video"
    assert body["contentType"] == "video/mp4"


def test_upload_type_comes_from_the_bytes_not_the_name(sqlite_api: Api, files: Path) -> None:
    body = upload(sqlite_api, files / "wide.png", name="photo.mp4").get_json()
    assert (body["type"], body["contentType"]) == ("image", "image/png")


def test_upload_of_a_file_that_is_not_media_is_400(sqlite_api: Api, files: Path) -> None:
    response = upload(sqlite_api, files / "notes.txt", name="fake.jpg")
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "VALIDATION_ERROR"
    assert [d["path"] for d in body["details"]] == ["file"]


def test_upload_of_an_empty_file_is_400(sqlite_api: Api) -> None:
    response = sqlite_api.post("/media/upload", json=None, content_type="multipart/form-data",
                               data={"file": (io.BytesIO(b""), "empty.jpg")})
    assert response.status_code == 400
    assert [d["path"] for d in response.get_json()["details"]] == ["file"]


def test_upload_over_4_5_mb_is_413(sqlite_api: Api, files: Path) -> None:
    response = upload(sqlite_api, files / "huge.jpg")
    assert response.status_code == 413
    body = response.get_json()
    assert body["error"] == "PAYLOAD_TOO_LARGE"
    assert [d["path"] for d in body["details"]] == ["file"]
    # the answer says how to send the file instead: by URL, the server fetching it
    assert "4.5 MB (4,718,592 bytes)" in body["message"]
    assert 'POST /api/v1/media/upload with JSON {"url": ' in body["message"]
    assert "mediaUrls" in body["message"]
    # and the direct upload of any size
    assert "POST /api/v1/media/presign, PUT the file to the uploadUrl" in body["message"]
    assert body["details"][0]["message"] == \
        f"{MAX_UPLOAD_BYTES + 1:,} bytes is over the 4,718,592-byte multipart limit"


def test_upload_of_a_body_without_length_over_the_limit_says_how_to_send_it(
        sqlite_api: Api) -> None:
    def chunks() -> Iterator[bytes]:  # sent chunked, over real HTTP: no Content-Length
        yield (b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
               b"Content-Type: image/jpeg\r\n\r\n")
        for _ in range(MAX_UPLOAD_BYTES // 65536 + 4):
            yield b"\0" * 65536
        yield b"\r\n--b--\r\n"

    with serve(sqlite_api.app) as base:
        response = httpx.post(f"{base}/api/v1/media/upload", content=chunks(), timeout=30,
                              headers={**sqlite_api.org.headers,
                                       "Content-Type": "multipart/form-data; boundary=b"})
    assert response.status_code == 413
    body = response.json()
    assert body["error"] == "PAYLOAD_TOO_LARGE" and '{"url": ' in body["message"]
    assert body["details"] == [{"path": "file", "message": "the body is over the "
                                                           "4,718,592-byte multipart limit"}]


def test_the_413_names_the_large_upload_path_once_the_server_has_one(
        settings_for: Any, tmp_path: Path, files: Path) -> None:
    from chat33_flask import create_app
    from flask import Blueprint

    core = make_core(settings_for(f"sqlite:///{tmp_path / 'api.db'}"))
    app = create_app({"CHAT33_CORE": core, "TESTING": True})
    presign = Blueprint("presign_route", __name__)
    presign.add_url_rule("/api/v1/media/presign", "presign", lambda: ("", 201),
                         methods=["POST"])
    app.register_blueprint(presign)
    org = make_org(core, "Acme")
    with (files / "huge.jpg").open("rb") as fh:
        response = app.test_client().post(
            "/api/v1/media/upload", headers=org.headers, content_type="multipart/form-data",
            data={"file": (fh, "huge.jpg")})
    assert response.status_code == 413
    message = response.get_json()["message"]
    assert 'POST /api/v1/media/upload with JSON {"url": ' in message
    assert ("POST /api/v1/media/presign, PUT the file to the uploadUrl it answers, then "
            "POST /api/v1/media/{id}/complete") in message
    core.store.dispose()


def test_upload_without_the_file_field_is_400(sqlite_api: Api) -> None:
    response = sqlite_api.post("/media/upload", json=None, content_type="multipart/form-data",
                               data={"other": "value"})
    assert response.status_code == 400
    assert [d["path"] for d in response.get_json()["details"]] == ["file"]


def test_upload_with_another_content_type_is_415(sqlite_api: Api) -> None:
    response = sqlite_api.post("/media/upload", json=None, data=b"\xff\xd8\xff",
                               content_type="image/jpeg")
    assert response.status_code == 415
    assert response.get_json()["error"] == "UNSUPPORTED_MEDIA_TYPE"


def test_media_files_are_served_with_type_etag_and_ranges(sqlite_api: Api, files: Path) -> None:
    body = upload(sqlite_api, files / "clip.mp4").get_json()
    path = "/media/" + body["url"].rsplit("/", 1)[1]
    data = (files / "clip.mp4").read_bytes()
    # real HTTP: platforms fetch video with ranges
    with serve(sqlite_api.app) as base, httpx.Client(base_url=base) as http:
        whole = http.get(path)
        assert whole.status_code == 200
        assert whole.content == data
        assert whole.headers["content-type"] == "video/mp4"
        assert whole.headers["accept-ranges"] == "bytes"
        etag = whole.headers["etag"]
        part = http.get(path, headers={"Range": "bytes=100-199"})
        assert part.status_code == 206
        assert part.content == data[100:200]
        assert part.headers["content-range"] == f"bytes 100-199/{len(data)}"
        assert http.get(path, headers={"If-None-Match": etag}).status_code == 304
        beyond = http.get(path, headers={"Range": f"bytes={len(data) + 10}-"})
        assert beyond.status_code == 416


def test_a_jpeg_with_html_inside_is_served_as_a_jpeg_browsers_must_not_sniff(
        sqlite_api: Api, tmp_path: Path) -> None:
    page = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"
    polyglot = make_image(tmp_path / "polyglot.jpg", 64, 48, comment=page)
    assert page in polyglot.read_bytes()
    body = upload(sqlite_api, polyglot).get_json()
    assert body["contentType"] == "image/jpeg"
    served = sqlite_api.client.get("/media/" + body["url"].rsplit("/", 1)[1])
    assert served.status_code == 200
    assert served.data == polyglot.read_bytes()
    assert served.headers["Content-Type"] == "image/jpeg"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in served.headers["Content-Security-Policy"]
    assert served.headers["Content-Disposition"].startswith("inline")


def test_a_kept_file_that_is_not_an_image_or_video_is_only_a_download(sqlite_api: Api
                                                                      ) -> None:
    """Inspection keeps only images and videos; should a row say otherwise (an older
    version, a hand-made row), the file is still never shown as a page."""
    core = sqlite_api.core
    data = b"<html><script>alert(1)</script></html>"
    name = hashlib.sha256(data).hexdigest() + ".html"
    core.media.files.root.mkdir(parents=True, exist_ok=True)
    (core.media.files.root / name).write_bytes(data)
    core.store.add_media(MediaAsset(
        id=new_id("med"), org_id=sqlite_api.org.id, name=name,
        path=str(core.media.files.root / name), url=core.media.files.url_for(name),
        kind="image", content_type="text/html", size=len(data),
        sha256=hashlib.sha256(data).hexdigest()))
    served = sqlite_api.client.get(f"/media/{name}")
    assert served.status_code == 200
    assert served.headers["Content-Type"] == "application/octet-stream"
    assert served.headers["Content-Disposition"].startswith("attachment")
    assert served.headers["X-Content-Type-Options"] == "nosniff"


def test_unknown_media_file_is_404_json(sqlite_api: Api) -> None:
    for name in ("0" * 64 + ".jpg", "med_missing.jpg", "..%2Fchat33.db", ".incoming"):
        response = sqlite_api.client.get(f"/media/{name}")
        assert response.status_code == 404
        assert response.get_json()["error"] == "Not found"


def test_ingest_from_a_url(sqlite_api: Api, files: Path) -> None:
    with serve_directory(files) as base:
        response = sqlite_api.post("/media/upload", {"url": f"{base}/square.jpg",
                                                     "filename": "from-the-web.jpg"})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert (body["type"], body["name"]) == ("image", "from-the-web.jpg")
    assert body["sourceUrl"] == f"{base}/square.jpg"
    assert body["url"].startswith("http://127.0.0.1:8000/media/")


def test_ingest_of_a_missing_url_is_400(sqlite_api: Api, files: Path) -> None:
    with serve_directory(files) as base:
        response = sqlite_api.post("/media/upload", {"url": f"{base}/nothing.jpg"})
    assert response.status_code == 400
    assert [d["path"] for d in response.get_json()["details"]] == ["url"]


@pytest.mark.parametrize(("body", "path"), [({}, "url"), ({"url": 3}, "url"),
                                            ({"url": "x", "more": 1}, "more")])
def test_ingest_body_validation(sqlite_api: Api, body: dict, path: str) -> None:
    response = sqlite_api.post("/media/upload", body)
    assert response.status_code == 400
    assert path in [d["path"] for d in response.get_json()["details"]]


# --- SSRF: private addresses refused when CHAT33_ALLOW_PRIVATE_URLS is off ------------------


@pytest.fixture
def strict_api(settings_for: Any, tmp_path: Path) -> Iterator[Api]:
    core = make_core(settings_for(f"sqlite:///{tmp_path / 'strict.db'}",
                                  CHAT33_ALLOW_PRIVATE_URLS="0"))
    app = make_app(core)
    yield Api(app=app, core=core, client=app.test_client(), org=make_org(core, "Acme"),
              other=make_org(core, "Rival"))
    core.store.dispose()


def _refused(api: Api, url: str) -> str:
    response = api.post("/media/upload", {"url": url})
    assert response.status_code == 400, response.get_json()
    body = response.get_json()
    assert body["error"] == "VALIDATION_ERROR"
    assert [d["path"] for d in body["details"]] == ["url"]
    return body["message"]


def test_ssrf_loopback_is_refused(strict_api: Api, files: Path) -> None:
    with serve_directory(files) as base:
        _refused(strict_api, f"{base}/square.jpg")
        _refused(strict_api, base.replace("127.0.0.1", "localhost") + "/square.jpg")
        _refused(strict_api, base.replace("127.0.0.1", "[::ffff:127.0.0.1]") + "/square.jpg")


def test_ssrf_metadata_address_is_refused(strict_api: Api) -> None:
    assert "metadata" in _refused(strict_api, "http://169.254.169.254/latest/meta-data/")


def test_ssrf_name_resolving_to_loopback_is_refused(strict_api: Api, files: Path) -> None:
    name = socket.gethostname()
    assert "127.0.0.1" in {a[4][0] for a in socket.getaddrinfo(name, 80)}, \
        "this test needs a host name that resolves to 127.0.0.1 (/etc/hosts)"
    with serve_directory(files) as base:
        _refused(strict_api, base.replace("127.0.0.1", name) + "/square.jpg")


def test_ssrf_redirect_to_a_refused_address_is_refused(sqlite_api: Api) -> None:
    """Every hop is checked: a loopback server (allowed here) redirecting to the cloud
    metadata address (refused even when private URLs are allowed)."""

    def redirect(environ: dict, start_response: Any) -> list[bytes]:
        start_response("302 Found", [("Location", "http://169.254.169.254/latest/")])
        return [b""]

    with serve(redirect) as base:
        _refused(sqlite_api, f"{base}/image.jpg")


# --- media in posts ------------------------------------------------------------------------


def test_post_with_uploaded_media_and_delete_where_the_platform_cannot(api: Api,
                                                                        files: Path) -> None:
    url = upload(api, files / "square.jpg").get_json()["url"]
    body = api.create(accountIds=[api.org.accounts["instagram"]], text="pic", mediaUrls=[url])
    post_id = body["posts"][0]["id"]
    post = api.get(f"/posts/{post_id}").get_json()
    assert (post["mediaUrls"], post["mediaType"]) == ([url], "image")
    stored = api.core.store.get_post(post_id)
    api.core.store.save_post(attrs.evolve(stored, status=PostStatus.PUBLISHED))
    response = api.delete(f"/posts/{post_id}?fromPlatform=true")
    assert response.status_code == 409
    assert "Instagram" in response.get_json()["message"]
    assert api.delete(f"/posts/{post_id}").get_json()["status"] == "CANCELLED"


def test_post_with_a_media_url_keeps_the_file_at_creation(sqlite_api: Api, files: Path) -> None:
    api = sqlite_api
    with serve_directory(files) as base:
        body = api.create(accountIds=[api.org.accounts["instagram"]], text="remote",
                          mediaUrls=[f"{base}/square.jpg"])
    post = api.get(f"/posts/{body['posts'][0]['id']}").get_json()
    assert post["mediaType"] == "image"
    assert post["mediaUrls"] == [f"{base}/square.jpg"]


def test_validate_reports_media_facts_and_keeps_nothing(sqlite_api: Api, files: Path) -> None:
    api = sqlite_api
    with serve_directory(files) as base:
        response = api.post("/posts/validate", {"accountIds": [api.org.accounts["instagram"]],
                                                "text": "t", "mediaUrls": [f"{base}/clip.mp4"]})
    assert response.status_code == 200
    report = response.get_json()
    (media,) = report["media"]
    assert media["url"] == f"{base}/clip.mp4" and media["path"] == "mediaUrls[0]"
    assert media["valid"] is True
    assert api.core.store.find_media_by_url(api.org.id, f"{base}/clip.mp4") is None


def test_ssrf_in_post_media_urls_is_refused(strict_api: Api) -> None:
    response = strict_api.post("/posts", {"accountIds": [strict_api.org.accounts["x"]],
                                          "text": "t",
                                          "mediaUrls": ["http://169.254.169.254/img.jpg"]})
    assert response.status_code == 400
    assert "mediaUrls[0]" in [d["path"] for d in response.get_json()["details"]]
