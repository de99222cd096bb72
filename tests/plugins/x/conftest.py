"""Fixtures for the X plugin: real media files, the sandbox over real HTTP, contexts."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
from chat33_x import XPlatform

from chat33_core.config import Settings
from chat33_core.media import inspect
from chat33_core.models import Account, Credentials, new_id
from chat33_core.platforms import MediaFile, MemoryCheckpoints, PublishContext, PublishItem
from chat33_core.testing import make_gif, make_image, make_video, publish_context, sandbox_env

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


class Sandbox:
    """The running sandbox: its URL, settings pointing X at it, and control calls."""

    def __init__(self, url: str, settings: Settings, http: httpx.Client) -> None:
        self.url = url
        self.settings = settings
        self.platform = XPlatform(settings)
        # one client for the session: building one loads the CA bundle (~0.15 s)
        self.http = http

    def state(self) -> dict[str, Any]:
        return self.http.get(f"{self.url}/_sandbox/state").json()

    def tweets(self, live: bool = True) -> list[dict[str, Any]]:
        return [t for t in self.state()["tweets"] if not (live and t["deleted"])]

    def fault(self, **spec: Any) -> None:
        assert self.http.post(f"{self.url}/_sandbox/faults", json=spec).status_code == 201

    def config(self, **changes: Any) -> None:
        self.http.post(f"{self.url}/_sandbox/config", json=changes).raise_for_status()

    def revoke(self, token: str) -> None:
        self.http.post(f"{self.url}/_sandbox/revoke",
                       json={"access_token": token}).raise_for_status()

    def add_user(self, **spec: Any) -> None:
        self.http.post(f"{self.url}/_sandbox/users", json=spec).raise_for_status()

    def context(self, texts: Sequence[str | None] = ("hello from chat33",), *,
                media: Sequence[Sequence[MediaFile]] = (), **kwargs: Any) -> PublishContext:
        """A publish context for a post (one text) or a thread (several)."""
        thread = new_id("post")
        items = [PublishItem(post_id=thread if i == 0 else f"{thread}_{i}", text=text,
                             media=list(media[i]) if i < len(media) else [], position=i)
                 for i, text in enumerate(texts)]
        kwargs.setdefault("account", account())
        kwargs.setdefault("http", self.http)
        return publish_context(self.platform, settings=self.settings, items=items, **kwargs)


def account(**changes: Any) -> Account:
    base = Account(id="chan_x", org_id="org_test", platform="x", name="X test",
                   username=USERNAME, external_id=USER_ID)
    return attrs.evolve(base, **changes)


def credentials(token: str = "sandbox-token", refresh: str | None = "sandbox-refresh"
                ) -> Credentials:
    return Credentials(access_token=token, refresh_token=refresh)


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[Sandbox]:
    platform = XPlatform(Settings.from_env({}))
    env = {"CHAT33_X_SEGMENT_BYTES": str(SEGMENT_BYTES), "CHAT33_POLL_INTERVAL_S": "0.01"}
    with sandbox_env(platform, extra_env=env) as (url, settings), \
            httpx.Client(timeout=10) as http:
        yield Sandbox(url, settings, http)


@pytest.fixture
def sandbox(sandbox_server: Sandbox) -> Sandbox:
    """The sandbox, emptied for each test (one server for the session: starting and
    stopping one per test costs half a second each)."""
    sandbox_server.http.post(f"{sandbox_server.url}/_sandbox/reset").raise_for_status()
    return sandbox_server


class RecordingSleep:
    """``ctx.sleep`` that records the waits instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


class Checkpoints(MemoryCheckpoints):
    """Checkpoints that do something once, right after the save where ``when(data)`` first
    holds: by default kill the 'worker' (the saved state is kept, as the database keeps
    it), or run ``hook`` (inject a sandbox fault at that exact moment, say)."""

    def __init__(self, when: Callable[[dict[str, Any]], bool],
                 hook: Callable[[], None] | None = None) -> None:
        super().__init__()
        self.when = when
        self.hook = hook
        self.armed = True

    def save(self, data: Any) -> None:
        super().save(data)
        if self.armed and self.when(self.data):
            self.armed = False
            if self.hook is None:
                raise WorkerCrash("the worker died")
            self.hook()


def after_posts(n: int) -> Callable[[dict[str, Any]], bool]:
    return lambda data: len(data.get("posted") or []) >= n


class WorkerCrash(BaseException):
    """The worker process dying (not an error the plugin could catch)."""
