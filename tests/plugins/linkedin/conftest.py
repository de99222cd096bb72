"""Fixtures for the LinkedIn plugin: real media files and the sandbox over real HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
from chat33_linkedin import LinkedInPlatform
from chat33_linkedin.sandbox import DEMO_ACCOUNT

from chat33_core.config import Settings
from chat33_core.media import inspect
from chat33_core.models import Account, Credentials, new_id
from chat33_core.platforms import MediaFile, MemoryCheckpoints, PublishContext, PublishItem
from chat33_core.testing import make_gif, make_image, make_video, publish_context, sandbox_env

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

    def make(name: str) -> MediaFile:
        path = media_dir / name
        return MediaFile(path=path, info=inspect(path), url=f"http://127.0.0.1:9/{name}",
                         name=name)

    return make


def account(**changes: Any) -> Account:
    """The account ``accounts add --external-id urn:li:person:… --username …`` adds."""
    base = Account(id="chan_linkedin", org_id="org_test", platform="linkedin",
                   name="LinkedIn test", username=DEMO_ACCOUNT["username"],
                   external_id=DEMO_ACCOUNT["urn"])
    return attrs.evolve(base, **changes)


class Sandbox:
    """The running sandbox: its URL, settings pointing LinkedIn at it, and control calls."""

    def __init__(self, url: str, settings: Settings, http: httpx.Client) -> None:
        self.url = url
        self.settings = settings
        self.platform = LinkedInPlatform(settings)
        self.http = http

    def state(self) -> dict[str, Any]:
        return self.http.get(f"{self.url}/_sandbox/state").json()

    def posts(self, live: bool = True) -> list[dict[str, Any]]:
        return [p for p in self.state()["posts"] if not (live and p["deleted"])]

    def fault(self, **spec: Any) -> None:
        assert self.http.post(f"{self.url}/_sandbox/faults", json=spec).status_code == 201

    def config(self, **changes: Any) -> None:
        self.http.post(f"{self.url}/_sandbox/config", json=changes).raise_for_status()

    def add_token(self, token: str, **spec: Any) -> None:
        self.http.post(f"{self.url}/_sandbox/tokens", json={"token": token, **spec}
                       ).raise_for_status()

    def context(self, texts: Sequence[str | None] = ("hello from chat33",), *,
                media: Sequence[Sequence[MediaFile]] = (), **kwargs: Any) -> PublishContext:
        """A publish context for a post (one text) or a thread (several)."""
        thread = new_id("post")
        items = [PublishItem(post_id=thread if i == 0 else f"{thread}_{i}", text=text,
                             media=list(media[i]) if i < len(media) else [], position=i)
                 for i, text in enumerate(texts)]
        kwargs.setdefault("account", account())
        kwargs.setdefault("http", self.http)
        kwargs.setdefault("credentials", Credentials(access_token=TOKEN))
        return publish_context(self.platform, settings=self.settings, items=items, **kwargs)


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[Sandbox]:
    platform = LinkedInPlatform(Settings.from_env({}))
    with sandbox_env(platform) as (url, settings), httpx.Client(timeout=10) as http:
        yield Sandbox(url, settings, http)


@pytest.fixture
def sandbox(sandbox_server: Sandbox) -> Sandbox:
    """The sandbox, emptied for each test (one server for the session), small parts."""
    sandbox_server.http.post(f"{sandbox_server.url}/_sandbox/reset").raise_for_status()
    sandbox_server.config(part_bytes=PART_BYTES)
    return sandbox_server


class WorkerCrash(BaseException):
    """The worker process dying (not an error the plugin could catch)."""


class Checkpoints(MemoryCheckpoints):
    """Checkpoints that kill the 'worker' right after the first save where ``when(data)``
    holds (the saved state is kept, as the database keeps it)."""

    def __init__(self, when: Callable[[dict[str, Any]], bool]) -> None:
        super().__init__()
        self.when = when
        self.armed = True
        self.saves: list[dict[str, Any]] = []

    def save(self, data: Any) -> None:
        super().save(data)
        self.saves.append(dict(data))
        if self.armed and self.when(self.data):
            self.armed = False
            raise WorkerCrash("the worker died")
