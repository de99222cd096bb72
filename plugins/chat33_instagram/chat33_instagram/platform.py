"""Instagram: the platform object chat33's core calls."""

from __future__ import annotations

from chat33_core.platforms import PlatformBase


class InstagramPlatform(PlatformBase):
    name = "instagram"
    display_name = "Instagram"
    default_api_base = "https://graph.instagram.com"
