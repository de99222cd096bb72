"""TikTok: the platform object chat33's core calls."""

from __future__ import annotations

from chat33_core.platforms import PlatformBase


class TikTokPlatform(PlatformBase):
    name = "tiktok"
    display_name = "TikTok"
    default_api_base = "https://open.tiktokapis.com"
