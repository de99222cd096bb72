"""Fixtures for the Instagram plugin: real media files, a media server, the sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from chat33_instagram import InstagramPlatform
from chat33_instagram.sandbox import InstagramSandbox

from chat33_core.config import Settings
from chat33_core.media import GIF, IMAGE, VIDEO, MediaInfo
from chat33_core.platforms import MediaFile
from chat33_core.sandbox import serve
from chat33_core.testing import make_gif, make_image, make_video, serve_directory

# name -> (maker, kwargs, MediaInfo facts); MediaInfo is written by hand so these tests
# do not depend on the inspector being finished
IMAGES = {
    "square.jpg": dict(width=1080, height=1080),
    "portrait.jpg": dict(width=1080, height=1350),
    "landscape.jpg": dict(width=1080, height=566),
    "tall.jpg": dict(width=540, height=960),
}
VIDEOS = {
    "reel.mp4": dict(width=360, height=640, seconds=3.5, fps=24),
    "clip.mp4": dict(width=320, height=320, seconds=3.2, fps=24),
    "short.mp4": dict(width=320, height=240, seconds=1.0, fps=24),
}


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("instagram-media")
    for name, size in IMAGES.items():
        make_image(root / name, **size)
    make_image(root / "picture.png", width=1080, height=1080, fmt="PNG")
    make_gif(root / "anim.gif")
    for name, spec in VIDEOS.items():
        make_video(root / name, **spec)
    (root / "fake.mp4").write_bytes(b"\0\0\0\x08free" + b"not a video" * 100)
    return root


@pytest.fixture(scope="session")
def media_url(media_dir: Path) -> Iterator[str]:
    with serve_directory(media_dir) as url:
        yield url


def info_for(path: Path) -> MediaInfo:
    """Hand-built facts for the generated files (as the inspector would report them)."""
    name = path.name
    size = path.stat().st_size
    if name.endswith(".jpg"):
        return MediaInfo(kind=IMAGE, format="JPEG", mime_type="image/jpeg", size=size,
                         **IMAGES.get(name, dict(width=1080, height=1080)))
    if name == "picture.png":
        return MediaInfo(kind=IMAGE, format="PNG", mime_type="image/png", size=size,
                         width=1080, height=1080)
    if name == "anim.gif":
        return MediaInfo(kind=GIF, format="GIF", mime_type="image/gif", size=size,
                         width=320, height=240, frames=5, animated=True)
    spec = VIDEOS.get(name, dict(width=320, height=240, seconds=3.5, fps=24))
    return MediaInfo(kind=VIDEO, format="MPEG-4", mime_type="video/mp4", size=size,
                     width=spec["width"], height=spec["height"], duration_s=spec["seconds"],
                     frame_rate=float(spec["fps"]), video_codec="h264", audio_codec="aac",
                     audio_sample_rate=44100, has_audio=True)


@pytest.fixture
def media(media_dir: Path, media_url: str) -> Any:
    """``media("square.jpg")`` -> a MediaFile served by the media server."""

    def make(name: str) -> MediaFile:
        path = media_dir / name
        return MediaFile(path=path, info=info_for(path), url=f"{media_url}/{name}", name=name)

    return make


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[tuple[InstagramSandbox, str]]:
    # one server for the session (stopping one costs half a second); reset per test
    app = InstagramSandbox()
    with serve(app) as url:
        yield app, url


@pytest.fixture(scope="session")
def control_client(sandbox_server: tuple[InstagramSandbox, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox_server[1], timeout=10) as client:
        yield client


@pytest.fixture
def sandbox(sandbox_server: tuple[InstagramSandbox, str],
            control_client: httpx.Client) -> tuple[InstagramSandbox, str]:
    control_client.post("/_sandbox/reset").raise_for_status()
    return sandbox_server


@pytest.fixture
def settings(sandbox: tuple[InstagramSandbox, str]) -> Settings:
    return Settings.from_env({"CHAT33_INSTAGRAM_API_BASE": sandbox[1],
                              "CHAT33_POLL_INTERVAL_S": "0.001"})


@pytest.fixture
def platform(settings: Settings) -> InstagramPlatform:
    return InstagramPlatform(settings)


@pytest.fixture
def control(sandbox: tuple[InstagramSandbox, str], control_client: httpx.Client) -> Any:
    """``control("POST", "/_sandbox/throttle", json=...)`` on the sandbox, over HTTP."""

    def call(method: str, path: str, **kw: Any) -> Any:
        response = control_client.request(method, path, **kw)
        response.raise_for_status()
        return response.json()

    return call
