"""chat33 platform plugin: Threads (Meta)."""

from __future__ import annotations

from collections.abc import Callable

from chat33_core.hookspecs import hookimpl
from chat33_core.platforms import PlatformBase

from .platform import ThreadsPlatform

__all__ = ["ThreadsPlatform"]


@hookimpl
def chat33_register_platforms(register: Callable[[type[PlatformBase]], None]) -> None:
    register(ThreadsPlatform)
