"""Fixtures for the Threads plugin: real media served over HTTP (Threads pulls it) and
the sandbox over real HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from chat33_threads import ThreadsPlatform
from chat33_threads.sandbox import DEMO_ACCOUNT

from chat33_core.models import Account
from chat33_core.platforms import MediaFile
from chat33_core.testing import SandboxClient, make_image, make_video, media_file, serve_directory

TOKEN = DEMO_ACCOUNT["token"]


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("threads-media")
    make_image(root / "photo.jpg", width=600, height=400)
    make_image(root / "photo2.png", width=400, height=500, fmt="PNG")
    make_image(root / "photo.webp", width=300, height=300, fmt="WEBP")
    make_video(root / "clip.mp4", width=320, height=240, seconds=1.0)
    (root / "broken.mp4").write_bytes(b"not a video at all, just text" * 10)
    return root


@pytest.fixture(scope="session")
def media_url(media_dir: Path) -> Iterator[str]:
    with serve_directory(media_dir) as url:
        yield url


@pytest.fixture
def media(media_dir: Path, media_url: str) -> Callable[[str], MediaFile]:
    """``media("photo.jpg")`` -> a MediaFile served over HTTP, inspected."""

    def make(name: str) -> MediaFile:
        if name == "broken.mp4":  # not inspectable: borrow a real video's facts
            info = media_file(media_dir / "clip.mp4", media_url).info
            return media_file(media_dir / name, media_url, info=info)
        return media_file(media_dir / name, media_url)

    return make


def account(**changes: Any) -> Account:
    """The account ``accounts add --external-id ID --username chat33`` adds."""
    base = Account(id="chan_threads", org_id="org_test", platform="threads",
                   name="Threads test", username=DEMO_ACCOUNT["username"],
                   external_id=DEMO_ACCOUNT["id"])
    return attrs.evolve(base, **changes)


class Sandbox(SandboxClient):
    """The running sandbox: settings pointing Threads at it, control calls."""

    access_token = TOKEN

    def posts(self) -> list[dict[str, Any]]:
        return self.live("posts")

    def publishes(self) -> int:
        return sum(1 for r in self.state()["requests"] if r.endswith("/threads_publish"))

    def token(self, **spec: Any) -> None:
        self.control("tokens", spec)


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[Sandbox]:
    with Sandbox.serving(ThreadsPlatform, account=account) as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(sandbox_server: Sandbox) -> Sandbox:
    """The sandbox, emptied for each test (one server for the session)."""
    sandbox_server.reset()
    return sandbox_server


