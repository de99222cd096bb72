"""The checks every chat33 platform plugin passes, for Instagram."""

from __future__ import annotations

from datetime import timedelta

from chat33_instagram import InstagramPlatform
from chat33_instagram.sandbox import InstagramSandbox

from chat33_core.testing import PlatformContract


class TestInstagramContract(PlatformContract):
    platform_class = InstagramPlatform


def test_declares_what_instagram_can_do() -> None:
    caps = InstagramPlatform.capabilities
    assert (caps.threads, caps.delete, caps.text_only) == (False, False, False)
    limits = InstagramPlatform.limits
    assert limits.caption_length == 2200
    # one declaration of the 24-hour publishing limit: the shared RateLimit (100)
    assert limits.daily_cap is None
    [posts] = [lim for lim in InstagramPlatform.rate_limits if lim.name == "posts"]
    assert (posts.units, posts.window, posts.per) == (100, timedelta(hours=24), "account")
    assert limits.max_images == 10
    assert limits.max_image_bytes == 8 * 1024 * 1024


def test_accepts_the_documented_platform_config_keys() -> None:
    assert {o.name for o in InstagramPlatform.options} == {
        "type", "shareToFeed", "coverUrl", "thumbOffsetMs", "collaborators", "userTags",
        "locationId", "altText", "firstComment"}


def test_default_api_base_is_instagram_login_graph_host() -> None:
    assert InstagramPlatform.default_api_base == "https://graph.instagram.com"


def test_sandbox_returns_a_new_instance_each_time() -> None:
    platform = InstagramPlatform()
    first, second = platform.sandbox(), platform.sandbox()
    assert isinstance(first, InstagramSandbox) and isinstance(second, InstagramSandbox)
    assert first is not second
