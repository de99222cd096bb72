"""chat33 platform plugin: Example (a template to copy for a new platform).

chat33 imports this module through the ``chat33.platforms`` entry point and calls the
hook below; nothing else happens at import time.
"""

from __future__ import annotations

from collections.abc import Callable

from chat33_core.hookspecs import hookimpl
from chat33_core.platforms import PlatformBase

from .platform import ExamplePlatform

__all__ = ["ExamplePlatform"]


@hookimpl
def chat33_register_platforms(register: Callable[[type[PlatformBase]], None]) -> None:
    register(ExamplePlatform)
