"""Fixtures for the Telegram plugin: real media files, the sandbox over real HTTP, contexts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
from chat33_telegram import TelegramPlatform
from chat33_telegram.sandbox import DEMO_BOT, DEMO_CHANNEL

from chat33_core.models import Account
from chat33_core.platforms import MediaFile
from chat33_core.testing import SandboxClient, make_image, make_video, media_file

TOKEN = DEMO_BOT["token"]
CHANNEL = f"@{DEMO_CHANNEL['username']}"
CHANNEL_ID = DEMO_CHANNEL["id"]


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("telegram-media")
    make_image(root / "photo.jpg", width=600, height=400)
    make_image(root / "photo2.png", width=300, height=500, fmt="PNG")
    make_image(root / "strip.png", width=2100, height=100, fmt="PNG")
    make_video(root / "clip.mp4", width=320, height=240, seconds=1.0)
    return root


@pytest.fixture
def media(media_dir: Path) -> Callable[[str], MediaFile]:
    """``media("photo.jpg")`` -> a MediaFile with inspected facts (uploaded from disk)."""

    return lambda name: media_file(media_dir / name, "http://127.0.0.1:9")


def account(**changes: Any) -> Account:
    base = Account(id="chan_tg", org_id="org_test", platform="telegram", name="Telegram test",
                   username=DEMO_BOT["username"], external_id=CHANNEL)
    return attrs.evolve(base, **changes)


class Sandbox(SandboxClient):
    """The running sandbox: settings pointing Telegram at it, and control calls."""

    access_token = TOKEN

    def messages(self, chat_id: int = CHANNEL_ID) -> list[dict[str, Any]]:
        return [m for m in self.state()["messages"] if m["chat"]["id"] == chat_id]

    def chat(self, **spec: Any) -> None:
        self.control("chats", spec)

    def bot(self, **spec: Any) -> None:
        self.control("bots", spec)

    def call(self, method: str, token: str = TOKEN, **kwargs: Any) -> httpx.Response:
        return self.http.post(f"{self.url}/bot{token}/{method}", **kwargs)


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[Sandbox]:
    with Sandbox.serving(TelegramPlatform, account=account) as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(sandbox_server: Sandbox) -> Sandbox:
    """The sandbox, emptied for each test (one server for the session)."""
    sandbox_server.reset()
    return sandbox_server


def after_posted(n: int) -> Callable[[dict[str, Any]], bool]:
    return lambda data: len(data.get("posted") or []) >= n


def sending(index: int) -> Callable[[dict[str, Any]], bool]:
    return lambda data: (data.get("sending") or {}).get("index") == index
