"""X: the platform object chat33's core calls."""

from __future__ import annotations

from chat33_core.platforms import PlatformBase


class XPlatform(PlatformBase):
    name = "x"
    display_name = "X"
    default_api_base = "https://api.x.com"
