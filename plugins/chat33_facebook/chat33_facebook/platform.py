"""Facebook: the platform object chat33's core calls."""

from __future__ import annotations

from chat33_core.platforms import PlatformBase


class FacebookPlatform(PlatformBase):
    name = "facebook"
    display_name = "Facebook"
    default_api_base = "https://graph.facebook.com"
