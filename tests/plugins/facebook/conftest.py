"""Fixtures for the Facebook plugin: real media files, a media server, the sandbox over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from chat33_facebook import FacebookPlatform
from chat33_facebook.sandbox import FacebookSandbox

from chat33_core.config import Settings
from chat33_core.models import Account, MediaType
from chat33_core.platforms import MediaFile, MemoryCheckpoints, PublishContext
from chat33_core.sandbox import serve
from chat33_core.testing import make_image, make_video, media_file, publish_context, serve_directory

PAGE_ID = "104500000000001"
APP_ID = "4242000000"


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("facebook-media")
    make_image(root / "one.jpg", width=800, height=600)
    make_image(root / "two.png", width=640, height=640, fmt="PNG")
    make_image(root / "three.jpg", width=600, height=800, color=(10, 200, 10))
    make_video(root / "reel.mp4", width=540, height=960, seconds=3.2, fps=24)
    make_video(root / "clip.mp4", width=320, height=240, seconds=1.0, fps=24)
    (root / "not-an-image.jpg").write_bytes(b"this is text, not a JPEG" * 10)
    return root


@pytest.fixture(scope="session")
def media_url(media_dir: Path) -> Iterator[str]:
    with serve_directory(media_dir) as url:
        yield url


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FacebookSandbox, str]]:
    app = FacebookSandbox()
    with serve(app) as url:
        yield app, url


class FB:
    """The platform pointed at a fresh sandbox, and helpers to publish through it."""

    def __init__(self, app: FacebookSandbox, url: str, media_dir: Path, media_url: str) -> None:
        self.app, self.url = app, url
        self.media_dir, self.media_url = media_dir, media_url
        self.settings = Settings.from_env({
            "CHAT33_FACEBOOK_API_BASE": url, "CHAT33_POLL_INTERVAL_S": "0.001",
            "CHAT33_FACEBOOK_APP_ID": APP_ID,
        })
        self.platform = FacebookPlatform(self.settings)
        self.http = httpx.Client(timeout=30)
        self.account = Account(id="chan_fb", org_id="org_test", platform="facebook",
                               name="Test Page", external_id=PAGE_ID)

    def media(self, *names: str) -> list[MediaFile]:
        return [media_file(self.media_dir / n, self.media_url) for n in names]

    def ctx(self, text: str | None = "hello from chat33", media: list[MediaFile] | None = None,
            config: dict[str, Any] | None = None, media_type: MediaType | None = None,
            checkpoints: MemoryCheckpoints | None = None,
            events: list[tuple[str, str, dict[str, Any]]] | None = None) -> PublishContext:
        return publish_context(
            self.platform, settings=self.settings, text=text, media=media or [],
            media_type=media_type, platform_config={"facebook": config or {}},
            account=self.account, checkpoints=checkpoints, http=self.http, events=events)

    def state(self) -> dict[str, Any]:
        return self.http.get(f"{self.url}/_sandbox/state").json()

    def fault(self, **spec: Any) -> None:
        assert self.http.post(f"{self.url}/_sandbox/faults", json=spec).status_code == 201

    def configure(self, **options: Any) -> None:
        assert self.http.post(f"{self.url}/_sandbox/config", json=options).status_code == 200


@pytest.fixture
def fb(served: tuple[FacebookSandbox, str], media_dir: Path, media_url: str) -> Iterator[FB]:
    app, url = served
    helper = FB(app, url, media_dir, media_url)
    helper.http.post(f"{url}/_sandbox/reset").raise_for_status()
    yield helper
    helper.http.close()
