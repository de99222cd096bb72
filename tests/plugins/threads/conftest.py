"""Fixtures for the Threads plugin: real media served over HTTP (Threads pulls it) and
the sandbox over real HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
from chat33_threads import ThreadsPlatform
from chat33_threads.sandbox import DEMO_ACCOUNT

from chat33_core.config import Settings
from chat33_core.models import Account, Credentials, new_id
from chat33_core.platforms import MediaFile, MemoryCheckpoints, PublishContext, PublishItem
from chat33_core.testing import (
    make_image,
    make_video,
    media_file,
    publish_context,
    sandbox_env,
    serve_directory,
)

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


class Sandbox:
    """The running sandbox: its URL, settings pointing Threads at it, control calls."""

    def __init__(self, url: str, settings: Settings, http: httpx.Client) -> None:
        self.url = url
        self.settings = settings
        self.platform = ThreadsPlatform(settings)
        self.http = http

    def state(self) -> dict[str, Any]:
        return self.http.get(f"{self.url}/_sandbox/state").json()

    def posts(self) -> list[dict[str, Any]]:
        return [p for p in self.state()["posts"] if not p["deleted"]]

    def publishes(self) -> int:
        return sum(1 for r in self.state()["requests"] if r.endswith("/threads_publish"))

    def fault(self, **spec: Any) -> None:
        assert self.http.post(f"{self.url}/_sandbox/faults", json=spec).status_code == 201

    def config(self, **changes: Any) -> None:
        self.http.post(f"{self.url}/_sandbox/config", json=changes).raise_for_status()

    def advance(self, seconds: float) -> None:
        self.http.post(f"{self.url}/_sandbox/clock", json={"advance": seconds}
                       ).raise_for_status()

    def token(self, **spec: Any) -> None:
        self.http.post(f"{self.url}/_sandbox/tokens", json=spec).raise_for_status()

    def context(self, texts: Sequence[str | None] = ("hello from chat33",), *,
                media: Sequence[Sequence[MediaFile]] = (), **kwargs: Any) -> PublishContext:
        """A publish context for a post (one text) or a thread (several)."""
        head = new_id("post")
        items = [PublishItem(post_id=head if i == 0 else f"{head}_{i}", text=text,
                             media=list(media[i]) if i < len(media) else [], position=i)
                 for i, text in enumerate(texts)]
        kwargs.setdefault("account", account())
        kwargs.setdefault("http", self.http)
        kwargs.setdefault("credentials", Credentials(access_token=TOKEN))
        return publish_context(self.platform, settings=self.settings, items=items, **kwargs)


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[Sandbox]:
    platform = ThreadsPlatform(Settings.from_env({}))
    with sandbox_env(platform) as (url, settings), httpx.Client(timeout=10) as http:
        yield Sandbox(url, settings, http)


@pytest.fixture
def sandbox(sandbox_server: Sandbox) -> Sandbox:
    """The sandbox, emptied for each test (one server for the session)."""
    sandbox_server.http.post(f"{sandbox_server.url}/_sandbox/reset").raise_for_status()
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

    def save(self, data: Any) -> None:
        super().save(data)
        if self.armed and self.when(self.data):
            self.armed = False
            raise WorkerCrash("the worker died")
