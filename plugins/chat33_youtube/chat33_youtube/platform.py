"""YouTube: the platform object chat33's core calls."""

from __future__ import annotations

from chat33_core.platforms import PlatformBase


class YouTubePlatform(PlatformBase):
    name = "youtube"
    display_name = "YouTube"
    default_api_base = "https://www.googleapis.com"
