"""The contract every chat33 platform plugin passes."""

from __future__ import annotations

from chat33_tiktok import TikTokPlatform

from chat33_core.testing import PlatformContract


class TestTikTokContract(PlatformContract):
    platform_class = TikTokPlatform


def test_declares_no_delete_and_the_daily_cap() -> None:
    assert TikTokPlatform.capabilities.delete is False
    assert TikTokPlatform.capabilities.text_only is False
    assert TikTokPlatform.limits.daily_cap == 20
    assert TikTokPlatform.default_api_base == "https://open.tiktokapis.com"
