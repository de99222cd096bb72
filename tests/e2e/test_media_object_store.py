"""Two API processes and a worker, each in its own working directory with no folder in
common, on one S3 store (a moto server process) and one database: media uploaded on API
A (multipart and direct), posts made on API B, published by the worker to the Instagram
sandbox, which pulls the media by URL, and to the YouTube sandbox, which is sent the
bytes (the worker reads them from the bucket)."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from chat33_core.config import Settings
from chat33_core.models import Credentials, utcnow
from chat33_core.sandbox import serve
from chat33_core.service import Chat33
from chat33_core.testing import make_image, make_video
from tests.core.test_blobs import make_bucket
from tests.s3server import S3_ENV, free_port

pytestmark = pytest.mark.slow


def wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = check()
        except httpx.TransportError:
            found = None
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def instagram() -> Iterator[tuple[Any, str]]:
    from chat33_instagram.sandbox import InstagramSandbox

    app = InstagramSandbox(processing_polls=0)
    with serve(app) as url:
        yield app, url


@pytest.fixture
def youtube() -> Iterator[tuple[Any, str]]:
    from chat33_youtube.sandbox import YouTubeSandbox

    app = YouTubeSandbox()
    with serve(app) as url:
        yield app, url


def test_two_apis_and_a_worker_share_one_object_store(
        tmp_path: Path, db_url: str, s3_endpoint: str, instagram: tuple[Any, str],
        youtube: tuple[Any, str]) -> None:
    sandbox, sandbox_url = instagram
    tube, tube_url = youtube
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT33_")}
    env.update({
        **S3_ENV, "CHAT33_DATABASE_URL": db_url, "CHAT33_SECRET_KEY": secrets.token_urlsafe(32),
        "CHAT33_MEDIA_STORE": f"s3://{make_bucket(s3_endpoint)}/media",
        "CHAT33_S3_ENDPOINT_URL": s3_endpoint, "CHAT33_ALLOW_PRIVATE_URLS": "1",
        "CHAT33_INSTAGRAM_API_BASE": sandbox_url, "CHAT33_YOUTUBE_API_BASE": tube_url,
        "CHAT33_YOUTUBE_TOKEN_URL": tube_url + "/token", "CHAT33_WORKER_POLL_S": "0.2",
        "CHAT33_RETRY_BASE_S": "0.5",
    })
    core = Chat33(Settings.from_env(env))
    core.store.migrate()
    user = core.create_user("e2e@example.com", "correct horse battery", "Acme")
    _, key = core.create_api_key(user.org_id, user.id, "e2e")
    account = core.add_account(user.org_id, "instagram", "Acme on Instagram",
                               username="acme", external_id="17841400000000001",
                               credentials=Credentials(access_token="ig-token",
                                                       expires_at=utcnow() + timedelta(days=50)))
    channel = core.add_account(user.org_id, "youtube", "Acme on YouTube", username="acme",
                               external_id="UCsandbox0000000000000000",
                               credentials=Credentials(access_token="yt-token",
                                                       refresh_token="yt-refresh",
                                                       expires_at=utcnow() + timedelta(days=1)))
    core.store.dispose()

    procs: list[subprocess.Popen[bytes]] = []

    def spawn(name: str, *args: str) -> None:
        workdir = tmp_path / name  # its own folder: no media folder in common
        workdir.mkdir()
        log = (workdir / "out.log").open("wb")
        procs.append(subprocess.Popen([sys.executable, "-m", "chat33_core.cli", *args],
                                      cwd=workdir, env=env, stdout=log,
                                      stderr=subprocess.STDOUT, start_new_session=True))

    ports = {"api-a": free_port(), "api-b": free_port()}
    for name, port in ports.items():
        spawn(name, "serve", "--dev", "--host", "127.0.0.1", "--port", str(port))
    spawn("worker", "worker", "--concurrency", "2")
    a, b = (f"http://127.0.0.1:{ports[n]}/api/v1" for n in ("api-a", "api-b"))
    headers = {"x-api-key": key}
    try:
        for base in (a, b):
            wait_for(lambda base=base: httpx.get(base.rsplit("/api", 1)[0] + "/healthz"
                                                 ).status_code == 200, 60, base)
        photo = make_image(tmp_path / "photo.jpg", 1080, 1080)
        clip = make_video(tmp_path / "clip.mp4", 320, 240, seconds=1.0)
        other = make_image(tmp_path / "other.jpg", 1080, 1350)
        # on API A: a multipart upload and a direct one (straight to the bucket)
        with photo.open("rb") as fh:
            first = httpx.post(f"{a}/media/upload", headers=headers,
                               files={"file": ("photo.jpg", fh, "image/jpeg")})
        assert first.status_code == 201, first.text
        ticket = httpx.post(f"{a}/media/presign", headers=headers, json={
            "filename": "other.jpg", "contentType": "image/jpeg",
            "size": other.stat().st_size}).json()
        assert ticket["uploadUrl"].startswith(s3_endpoint)
        put = httpx.put(ticket["uploadUrl"], content=other.read_bytes(),
                        headers={"Content-Type": "image/jpeg"})
        assert put.status_code == 200
        second = httpx.post(f"{a}/media/{ticket['mediaId']}/complete", headers=headers)
        assert second.status_code == 201, second.text
        urls = [first.json()["url"], second.json()["url"]]
        ticket = httpx.post(f"{a}/media/presign", headers=headers, json={
            "filename": "clip.mp4", "contentType": "video/mp4",
            "size": clip.stat().st_size}).json()
        httpx.put(ticket["uploadUrl"], content=clip.read_bytes(),
                  headers={"Content-Type": "video/mp4"}).raise_for_status()
        video = httpx.post(f"{a}/media/{ticket['mediaId']}/complete", headers=headers)
        assert video.status_code == 201, video.text
        # nothing is in API A's own folder
        assert not any((tmp_path / "api-a").rglob("*.jpg"))
        # on API B: the posts (a carousel of both images; the video)
        created = httpx.post(f"{b}/posts", headers=headers, json={
            "accountIds": [account.id], "text": "from two machines", "mediaUrls": urls})
        assert created.status_code == 201, created.text
        uploaded = httpx.post(f"{b}/posts", headers=headers, json={
            "accountIds": [channel.id], "text": "the video", "mediaUrls": [video.json()["url"]],
            "platformConfig": {"youtube": {"title": "From the bucket",
                                           "selfDeclaredMadeForKids": False}}})
        assert uploaded.status_code == 201, uploaded.text
        for post_id in (created.json()["posts"][0]["id"], uploaded.json()["posts"][0]["id"]):
            done = wait_for(lambda post_id=post_id: (r := httpx.get(
                f"{b}/posts/{post_id}", headers=headers).json())["status"] in (
                "PUBLISHED", "FAILED") and r, 90, "the worker to publish")
            assert done["status"] == "PUBLISHED", done
        # YouTube was sent the video's bytes, which the worker read from the bucket
        (sent,) = tube.videos.values()
        assert sent["size"] == clip.stat().st_size
        # from its own local copies (in its own folder), never from API A's
        copies = {p.name for p in (tmp_path / "worker").rglob(".cache/*")}
        assert video.json()["url"].rsplit("/", 1)[1] in copies
        # the sandbox pulled both files by URL, from the object store
        fetched = [f for f in sandbox.fetches if f["status"] == 200]
        assert len(fetched) == 2
        assert all(f["url"].startswith(s3_endpoint) for f in fetched)
        assert sorted(f["bytes"] for f in fetched) == sorted(
            p.stat().st_size for p in (photo, other))
        # and both API processes serve the files from the store
        for url in urls:
            name = url.rsplit("/", 1)[1]
            for port in ports.values():
                got = httpx.get(f"http://127.0.0.1:{port}/media/{name}")
                assert got.status_code == 200
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
