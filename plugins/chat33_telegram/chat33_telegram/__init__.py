"""chat33 platform plugin: Telegram (Bot API)."""

from __future__ import annotations

from collections.abc import Callable

from chat33_core.hookspecs import hookimpl
from chat33_core.platforms import PlatformBase

from .platform import TelegramPlatform

__all__ = ["TelegramPlatform"]


@hookimpl
def chat33_register_platforms(register: Callable[[type[PlatformBase]], None]) -> None:
    register(TelegramPlatform)
