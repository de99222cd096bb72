"""Fixtures for the YouTube plugin: generated files, the sandbox over real HTTP."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from chat33_youtube import YouTubePlatform
from chat33_youtube.sandbox import YouTubeSandbox

from chat33_core.config import Settings
from chat33_core.media import IMAGE, VIDEO, MediaInfo
from chat33_core.platforms import MediaFile, PublishContext
from chat33_core.sandbox import serve
from chat33_core.testing import make_image, publish_context

UNIT = 262_144
#: small chunks so a few-MB file takes several of them
CHUNK = 4 * UNIT
CONFIG = {"youtube": {"title": "A sandbox video", "selfDeclaredMadeForKids": False}}


def video_info(size: int, width: int = 1920, height: int = 1080,
               seconds: float = 600.0) -> MediaInfo:
    return MediaInfo(kind=VIDEO, format="MPEG-4", mime_type="video/mp4", size=size,
                     width=width, height=height, duration_s=seconds, frame_rate=30.0,
                     video_codec="h264", audio_codec="aac", has_audio=True)


def write_video_bytes(path: Path, size: int) -> Path:
    """A file of ``size`` bytes whose content varies (so a misplaced or repeated chunk
    changes its checksum). YouTube's upload does not parse it; the sandbox neither."""
    block = os.urandom(UNIT - 7)  # odd length: no chunk repeats at chunk boundaries
    with path.open("wb") as fh:
        left = size
        while left:
            piece = block[: min(len(block), left)]
            fh.write(piece)
            left -= len(piece)
    return path


@pytest.fixture(scope="session")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("youtube-media")
    write_video_bytes(root / "video.mp4", 3 * CHUNK + 12_345)
    make_image(root / "thumb.jpg", width=1280, height=720)
    make_image(root / "thumb.png", width=1280, height=720, fmt="PNG")
    return root


@pytest.fixture
def video(files: Path) -> MediaFile:
    path = files / "video.mp4"
    return MediaFile(path=path, info=video_info(path.stat().st_size),
                     url="http://127.0.0.1:9/video.mp4", name=path.name)


@pytest.fixture
def short_video(files: Path) -> MediaFile:
    path = files / "video.mp4"
    return MediaFile(path=path, info=video_info(path.stat().st_size, 1080, 1920, 45.0),
                     url="http://127.0.0.1:9/video.mp4", name=path.name)


@pytest.fixture
def thumbnail(files: Path) -> MediaFile:
    path = files / "thumb.jpg"
    info = MediaInfo(kind=IMAGE, format="JPEG", mime_type="image/jpeg",
                     size=path.stat().st_size, width=1280, height=720)
    return MediaFile(path=path, info=info, url="http://127.0.0.1:9/thumb.jpg", name=path.name)


@pytest.fixture(scope="session")
def http() -> Iterator[httpx.Client]:
    """One client for the whole session: building one (TLS context) costs ~0.1 s."""
    with httpx.Client(timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def sandbox_server(http: httpx.Client) -> Iterator[tuple[YouTubeSandbox, str]]:
    # one server for the session (stopping one costs time); reset per test
    app = YouTubeSandbox()
    with serve(app) as url:
        yield app, url


@pytest.fixture
def sandbox(sandbox_server: tuple[YouTubeSandbox, str],
            http: httpx.Client) -> tuple[YouTubeSandbox, str]:
    http.post(f"{sandbox_server[1]}/_sandbox/reset").raise_for_status()
    return sandbox_server


@pytest.fixture
def url(sandbox: tuple[YouTubeSandbox, str]) -> str:
    return sandbox[1]


@pytest.fixture
def settings(url: str) -> Settings:
    return Settings.from_env({
        "CHAT33_YOUTUBE_API_BASE": url, "CHAT33_YOUTUBE_TOKEN_URL": f"{url}/token",
        "CHAT33_YOUTUBE_CLIENT_ID": "client-1", "CHAT33_YOUTUBE_CLIENT_SECRET": "secret-1",
        "CHAT33_YOUTUBE_CHUNK_SIZE": str(CHUNK), "CHAT33_POLL_INTERVAL_S": "0.001"})


@pytest.fixture
def platform(settings: Settings) -> YouTubePlatform:
    return YouTubePlatform(settings)


@pytest.fixture
def control(url: str, http: httpx.Client) -> Any:
    """``control("POST", "/_sandbox/drops", json=...)`` on the sandbox, over HTTP."""

    def call(method: str, path: str, **kw: Any) -> Any:
        response = http.request(method, f"{url}{path}", **kw)
        response.raise_for_status()
        return response.json()

    return call


@pytest.fixture
def state(control: Any) -> Any:
    return lambda: control("GET", "/_sandbox/state")


@pytest.fixture
def context(platform: YouTubePlatform, settings: Settings, http: httpx.Client) -> Any:
    """``ctx, events = context(media=[...], cover=..., checkpoints=...)``: a
    PublishContext on the shared client, and the list its log events go to."""

    def make(**kw: Any) -> tuple[PublishContext, list[Any]]:
        events: list[Any] = []
        kw.setdefault("platform_config", CONFIG)
        kw.setdefault("text", "A description\nsecond line")
        cover = kw.pop("cover", None)
        ctx = publish_context(kw.pop("platform", platform), settings=kw.pop("settings", settings),
                              http=http, events=events, **kw)
        ctx.cover_image = cover
        return ctx, events

    return make
