"""Fixtures for the Bluesky plugin: real media files, the sandbox over real HTTP, sessions."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from chat33_bluesky import BlueskyPlatform
from chat33_bluesky.sandbox import DEMO_ACCOUNT

from chat33_core.models import Account, Credentials
from chat33_core.platforms import MediaFile, RefreshContext
from chat33_core.testing import SandboxClient, make_image, make_video, media_file

DID = DEMO_ACCOUNT["did"]
HANDLE = DEMO_ACCOUNT["handle"]
PASSWORD = DEMO_ACCOUNT["password"]


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bluesky-media")
    make_image(root / "photo.jpg", width=600, height=400)
    make_image(root / "photo2.png", width=300, height=500, fmt="PNG")
    make_image(root / "thumb.jpg", width=200, height=100)
    make_video(root / "clip.mp4", width=320, height=240, seconds=1.0)
    return root


@pytest.fixture
def media(media_dir: Path) -> Callable[[str], MediaFile]:
    """``media("photo.jpg")`` -> a MediaFile with inspected facts (uploaded from disk)."""

    return lambda name: media_file(media_dir / name, "http://127.0.0.1:9")


def account(**changes: Any) -> Account:
    base = Account(id="chan_bsky", org_id="org_test", platform="bluesky", name="Bluesky test",
                   username=HANDLE, external_id=DID)
    return attrs.evolve(base, **changes)


class Sandbox(SandboxClient):
    """The running sandbox: settings pointing Bluesky at it, control calls, and publish
    contexts logged in."""

    def posts(self, live: bool = True) -> list[dict[str, Any]]:
        return [p for p in self.state()["posts"] if not (live and p["deleted"])]

    def add_account(self, **spec: Any) -> None:
        self.control("accounts", spec)

    def login(self, who: Account | None = None, password: str = PASSWORD) -> Credentials:
        """A session opened the way the worker opens it (``refresh_credentials`` on the
        credentials ``accounts add`` stores: the app password as the token)."""
        who = who or account()
        return self.platform.refresh_credentials(
            Credentials(access_token=password),
            RefreshContext(account=who, http=self.http, settings=self.settings))

    def credentials(self, account: Account) -> Credentials:
        return self.login(account)


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[Sandbox]:
    with Sandbox.serving(BlueskyPlatform, account=account) as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(sandbox_server: Sandbox) -> Sandbox:
    """The sandbox, emptied for each test (one server for the session)."""
    sandbox_server.reset()
    return sandbox_server


def sent(index: int = 0) -> Callable[[dict[str, Any]], bool]:
    """True once item ``index`` is marked as sent (createRecord about to go out)."""
    return lambda data: bool(((data.get("items") or {}).get(str(index)) or {}).get("sent"))


def after_posts(n: int) -> Callable[[dict[str, Any]], bool]:
    return lambda data: len(data.get("posted") or []) >= n
