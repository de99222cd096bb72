"""Fixtures for the LinkedIn plugin: real media files and the sandbox over real HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from chat33_linkedin import LinkedInPlatform
from chat33_linkedin.sandbox import DEMO_ACCOUNT

from chat33_core.models import Account
from chat33_core.platforms import MediaFile
from chat33_core.testing import SandboxClient, make_gif, make_image, make_video, media_file

TOKEN = DEMO_ACCOUNT["token"]
#: small upload parts, so the test video (a few hundred KB) goes up in several
PART_BYTES = 65_536


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("linkedin-media")
    make_image(root / "photo.jpg", width=600, height=400)
    make_image(root / "photo2.png", width=300, height=500, fmt="PNG")
    make_gif(root / "moving.gif", width=160, height=120, frames=4)
    make_video(root / "clip.mp4", width=960, height=720, seconds=4.0)
    make_video(root / "short.mp4", width=320, height=240, seconds=1.0)
    return root


@pytest.fixture
def media(media_dir: Path) -> Callable[[str], MediaFile]:
    """``media("photo.jpg")`` -> a MediaFile with inspected facts (uploaded from disk)."""

    return lambda name: media_file(media_dir / name, "http://127.0.0.1:9")


def account(**changes: Any) -> Account:
    """The account ``accounts add --external-id urn:li:person:… --username …`` adds."""
    base = Account(id="chan_linkedin", org_id="org_test", platform="linkedin",
                   name="LinkedIn test", username=DEMO_ACCOUNT["username"],
                   external_id=DEMO_ACCOUNT["urn"])
    return attrs.evolve(base, **changes)


class Sandbox(SandboxClient):
    """The running sandbox: settings pointing LinkedIn at it, and control calls."""

    access_token = TOKEN

    def posts(self, live: bool = True) -> list[dict[str, Any]]:
        return [p for p in self.state()["posts"] if not (live and p["deleted"])]

    def add_token(self, token: str, **spec: Any) -> None:
        self.control("tokens", {"token": token, **spec})


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[Sandbox]:
    with Sandbox.serving(LinkedInPlatform, account=account) as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(sandbox_server: Sandbox) -> Sandbox:
    """The sandbox, emptied for each test (one server for the session), small parts."""
    sandbox_server.reset()
    sandbox_server.config(part_bytes=PART_BYTES)
    return sandbox_server


