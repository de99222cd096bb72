"""The checks every chat33 platform plugin passes, for Facebook."""

from __future__ import annotations

from chat33_facebook import FacebookPlatform
from chat33_facebook.sandbox import FacebookSandbox

from chat33_core.config import Settings
from chat33_core.testing import PlatformContract


class TestFacebookContract(PlatformContract):
    platform_class = FacebookPlatform


def test_declares_what_facebook_can_do() -> None:
    caps = FacebookPlatform.capabilities
    assert (caps.threads, caps.delete, caps.text_only, caps.video) == (False, True, True, True)
    limits = FacebookPlatform.limits
    assert limits.caption_length == 63_206
    assert limits.daily_cap == 50
    assert limits.max_images == 10
    assert limits.max_image_bytes == 10 * 1024 * 1024


def test_accepts_the_documented_platform_config_keys() -> None:
    assert {o.name for o in FacebookPlatform.options} == {"type", "link", "title", "firstComment"}


def test_sandbox_returns_a_new_instance_each_time() -> None:
    platform = FacebookPlatform(Settings.from_env({}))
    first, second = platform.sandbox(), platform.sandbox()
    assert isinstance(first, FacebookSandbox) and isinstance(second, FacebookSandbox)
    assert first is not second


def test_page_tokens_are_never_refreshed_ahead() -> None:
    from datetime import timedelta

    from chat33_core.models import Credentials, utcnow

    platform = FacebookPlatform(Settings.from_env({}))
    creds = Credentials(access_token="t", refresh_token="r", expires_at=utcnow() + timedelta(1))
    assert platform.needs_refresh(creds, utcnow() + timedelta(days=2)) is False
