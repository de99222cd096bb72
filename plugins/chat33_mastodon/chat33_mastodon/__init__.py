"""chat33 platform plugin: Mastodon."""

from __future__ import annotations

from collections.abc import Callable

from chat33_core.hookspecs import hookimpl
from chat33_core.platforms import PlatformBase

from .platform import MastodonPlatform

__all__ = ["MastodonPlatform"]


@hookimpl
def chat33_register_platforms(register: Callable[[type[PlatformBase]], None]) -> None:
    register(MastodonPlatform)
