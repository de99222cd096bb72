"""Small helpers shared by the YouTube tests."""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

from chat33_core.platforms import MemoryCheckpoints


class Crash(BaseException):
    """The worker process dies (not an error the plugin could catch and handle)."""


class HookedCheckpoints(MemoryCheckpoints):
    """Checkpoints that run ``hook(data)`` before each save (to crash, or to act on the
    sandbox at an exact moment of the upload)."""

    def __init__(self, hook: Any, data: dict[str, Any] | None = None) -> None:
        super().__init__(dict(data or {}))
        self.hook = hook

    def save(self, data: Any) -> None:
        self.hook(dict(data), dict(self.data))
        super().save(data)


def crash_when(predicate: Any) -> HookedCheckpoints:
    def hook(new: dict[str, Any], old: dict[str, Any]) -> None:
        if predicate(new, old):
            raise Crash(repr(new))

    return HookedCheckpoints(hook)


def crc32_of(path: Path) -> int:
    crc = 0
    with path.open("rb") as fh:
        while piece := fh.read(1 << 20):
            crc = zlib.crc32(piece, crc)
    return crc


def events_named(events: list[Any], name: str) -> list[str]:
    return [message for event, message, _ in events if event == name]
