"""chat33 platform plugin: LinkedIn."""

from __future__ import annotations

from collections.abc import Callable

from chat33_core.hookspecs import hookimpl
from chat33_core.platforms import PlatformBase

from .platform import LinkedInPlatform

__all__ = ["LinkedInPlatform"]


@hookimpl
def chat33_register_platforms(register: Callable[[type[PlatformBase]], None]) -> None:
    register(LinkedInPlatform)
