"""Fixtures for the TikTok plugin: real media files, a media server, the sandbox over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from chat33_tiktok import TikTokPlatform
from chat33_tiktok.sandbox import TikTokSandbox

from chat33_core.config import Settings
from chat33_core.models import Account, Credentials
from chat33_core.platforms import MediaFile, MemoryCheckpoints, PublishContext
from chat33_core.sandbox import serve
from chat33_core.testing import make_image, make_video, media_file, publish_context, serve_directory

MB = 1024 * 1024


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiktok-media")
    make_video(root / "clip.mp4", width=360, height=640, seconds=1.0, fps=24)
    make_image(root / "one.jpg", width=1080, height=1080)
    make_image(root / "two.webp", width=800, height=1000, fmt="WEBP")
    make_image(root / "three.png", width=600, height=600, fmt="PNG")
    return root


@pytest.fixture(scope="session")
def media_url(media_dir: Path) -> Iterator[str]:
    with serve_directory(media_dir) as url:
        yield url


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[TikTokSandbox, str]]:
    app = TikTokSandbox()
    with serve(app) as url:
        yield app, url


class TT:
    """The platform pointed at a fresh sandbox, and helpers to publish through it."""

    def __init__(self, app: TikTokSandbox, url: str, media_dir: Path, media_url: str,
                 **env: str) -> None:
        self.app, self.url = app, url
        self.media_dir, self.media_url = media_dir, media_url
        self.settings = Settings.from_env({
            "CHAT33_TIKTOK_API_BASE": url, "CHAT33_POLL_INTERVAL_S": "0.001",
            "CHAT33_TIKTOK_CLIENT_KEY": "sandbox-key", "CHAT33_TIKTOK_CLIENT_SECRET": "s3cret",
            **env,
        })
        self.platform = TikTokPlatform(self.settings)
        self.http = httpx.Client(timeout=30)
        self.account = Account(id="chan_tt", org_id="org_test", platform="tiktok",
                               name="Test TikTok", username="chat33test")

    def media(self, *names: str) -> list[MediaFile]:
        return [media_file(self.media_dir / n, self.media_url) for n in names]

    def file(self, path: Path) -> MediaFile:
        return media_file(path, self.media_url)

    def ctx(self, media: list[MediaFile], text: str | None = "hello from chat33 #test",
            config: dict[str, Any] | None = None, token: str = "sandbox-token",
            checkpoints: MemoryCheckpoints | None = None,
            events: list[tuple[str, str, dict[str, Any]]] | None = None) -> PublishContext:
        cfg = {"privacyLevel": "PUBLIC_TO_EVERYONE", **(config or {})}
        return publish_context(
            self.platform, settings=self.settings, text=text, media=media,
            platform_config={"tiktok": cfg}, account=self.account, checkpoints=checkpoints,
            http=self.http, events=events,
            credentials=Credentials(access_token=token, refresh_token="sandbox-refresh"))

    def state(self) -> dict[str, Any]:
        return httpx.get(f"{self.url}/_sandbox/state", timeout=5).json()

    def fault(self, **spec: Any) -> None:
        assert httpx.post(f"{self.url}/_sandbox/faults", json=spec, timeout=5).status_code == 201

    def configure(self, **options: Any) -> None:
        response = httpx.post(f"{self.url}/_sandbox/config", json=options, timeout=5)
        assert response.status_code == 200, response.text

    def paths(self) -> list[str]:
        """API paths requested so far (control calls left out)."""
        return [p for _, p in self.state()["requests"] if not p.startswith("/_sandbox/")]


@pytest.fixture
def tt(served: tuple[TikTokSandbox, str], media_dir: Path, media_url: str) -> Iterator[TT]:
    app, url = served
    httpx.post(f"{url}/_sandbox/reset", timeout=5).raise_for_status()
    helper = TT(app, url, media_dir, media_url)
    yield helper
    helper.http.close()
