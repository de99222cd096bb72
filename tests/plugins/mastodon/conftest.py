"""Fixtures for the Mastodon plugin: real media files and the sandbox over real HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from chat33_mastodon import MastodonPlatform
from chat33_mastodon.sandbox import DEMO_ACCOUNT

from chat33_core.models import Account
from chat33_core.platforms import MediaFile
from chat33_core.testing import SandboxClient, make_gif, make_image, make_video, media_file

TOKEN = DEMO_ACCOUNT["token"]


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mastodon-media")
    make_image(root / "photo.jpg", width=600, height=400)
    make_image(root / "photo2.png", width=300, height=500, fmt="PNG")
    make_gif(root / "moving.gif", width=160, height=120, frames=4)
    make_video(root / "clip.mp4", width=320, height=240, seconds=1.0)
    return root


@pytest.fixture
def media(media_dir: Path) -> Callable[[str], MediaFile]:
    """``media("photo.jpg")`` -> a MediaFile with inspected facts (uploaded from disk)."""

    return lambda name: media_file(media_dir / name, "http://127.0.0.1:9")


def account(**changes: Any) -> Account:
    """The account ``accounts add --external-id ID --username chat33@instance`` adds."""
    base = Account(id="chan_masto", org_id="org_test", platform="mastodon",
                   name="Mastodon test", username=f"{DEMO_ACCOUNT['username']}@sandbox.test",
                   external_id=DEMO_ACCOUNT["id"])
    return attrs.evolve(base, **changes)


class Sandbox(SandboxClient):
    """The running sandbox: settings pointing Mastodon at it, and control calls."""

    access_token = TOKEN

    def statuses(self, live: bool = True) -> list[dict[str, Any]]:
        return [s for s in self.state()["statuses"] if not (live and s["deleted"])]


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[Sandbox]:
    with Sandbox.serving(MastodonPlatform, account=account) as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(sandbox_server: Sandbox) -> Sandbox:
    """The sandbox, emptied for each test (one server for the session)."""
    sandbox_server.reset()
    return sandbox_server


