"""Fixtures for the X plugin: real media files, the sandbox over real HTTP, contexts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from chat33_x import XPlatform

from chat33_core.media import inspect
from chat33_core.models import Account, Credentials
from chat33_core.platforms import MediaFile
from chat33_core.testing import SandboxClient, make_gif, make_image, make_video

USER_ID = "1784140000000000"
USERNAME = "chat33test"
#: small append segments so that every upload in these tests takes several
SEGMENT_BYTES = 2048


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("x-media")
    make_image(root / "photo.jpg", width=600, height=400)
    make_image(root / "photo2.png", width=400, height=400, fmt="PNG")
    make_gif(root / "anim.gif")
    make_video(root / "clip.mp4", width=320, height=240, seconds=1.0)
    (root / "broken.mp4").write_bytes(b"\0\0\0\x08free" + b"not a video at all" * 1000)
    return root


@pytest.fixture
def media(media_dir: Path) -> Callable[[str], MediaFile]:
    """``media("photo.jpg")`` -> a MediaFile with inspected facts (X uploads from disk)."""

    def make(name: str) -> MediaFile:
        path = media_dir / name
        info = inspect(path) if name != "broken.mp4" else attrs.evolve(
            inspect(media_dir / "clip.mp4"), size=path.stat().st_size)
        return MediaFile(path=path, info=info, url=f"http://127.0.0.1:9/media/{name}",
                         name=name)

    return make


class Sandbox(SandboxClient):
    """The running sandbox: settings pointing X at it, and control calls (one HTTP client
    for the session: building one loads the CA bundle, ~0.15 s)."""

    def tweets(self, live: bool = True) -> list[dict[str, Any]]:
        return [t for t in self.state()["tweets"] if not (live and t["deleted"])]

    def revoke(self, token: str) -> None:
        self.control("revoke", {"access_token": token})

    def add_user(self, **spec: Any) -> None:
        self.control("users", spec)

    def credentials(self, account: Account) -> Credentials | None:
        return None  # publish_context's: a token and a refresh token


def account(**changes: Any) -> Account:
    base = Account(id="chan_x", org_id="org_test", platform="x", name="X test",
                   username=USERNAME, external_id=USER_ID)
    return attrs.evolve(base, **changes)


def credentials(token: str = "sandbox-token", refresh: str | None = "sandbox-refresh"
                ) -> Credentials:
    return Credentials(access_token=token, refresh_token=refresh)


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[Sandbox]:
    env = {"CHAT33_X_SEGMENT_BYTES": str(SEGMENT_BYTES), "CHAT33_POLL_INTERVAL_S": "0.01"}
    with Sandbox.serving(XPlatform, env, account=account) as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(sandbox_server: Sandbox) -> Sandbox:
    """The sandbox, emptied for each test (one server for the session: starting and
    stopping one per test costs half a second each)."""
    sandbox_server.reset()
    return sandbox_server


def after_posts(n: int) -> Callable[[dict[str, Any]], bool]:
    return lambda data: len(data.get("posted") or []) >= n


