"""The checks every chat33 platform plugin passes, for YouTube."""

from __future__ import annotations

from chat33_youtube import YouTubePlatform
from chat33_youtube.sandbox import YouTubeSandbox

from chat33_core.config import Settings
from chat33_core.testing import PlatformContract


class TestYouTubeContract(PlatformContract):
    platform_class = YouTubePlatform


def test_declares_what_youtube_can_do() -> None:
    caps = YouTubePlatform.capabilities
    assert (caps.threads, caps.delete, caps.text_only, caps.images, caps.video) == (
        False, True, False, False, True)
    limits = YouTubePlatform.limits
    assert limits.daily_cap == 6
    assert limits.caption_length == 5000
    assert limits.max_videos == 1


def test_accepts_the_video_resource_keys() -> None:
    assert {"title", "privacyStatus", "publishAt", "categoryId", "tags",
            "selfDeclaredMadeForKids", "containsSyntheticMedia", "defaultLanguage",
            "embeddable", "license", "publicStatsViewable", "notifySubscribers",
            } <= {o.name for o in YouTubePlatform.options}


def test_one_google_origin_and_the_oauth_token_endpoint() -> None:
    assert YouTubePlatform.default_api_base == "https://www.googleapis.com"
    assert YouTubePlatform.sandbox_token_path == "/token"


def test_chunk_size_is_a_multiple_of_256_kib() -> None:
    def size(value: str | None) -> int:
        env = {} if value is None else {"CHAT33_YOUTUBE_CHUNK_SIZE": value}
        return YouTubePlatform(Settings.from_env(env)).chunk_size()

    assert size(None) == 16 * 1024 * 1024
    assert size("1000000") == 3 * 262_144
    assert size("5") == 262_144
    assert size(str(8 * 262_144)) == 8 * 262_144


def test_sandbox_returns_a_new_instance_each_time() -> None:
    platform = YouTubePlatform(Settings.from_env({}))
    first, second = platform.sandbox(), platform.sandbox()
    assert isinstance(first, YouTubeSandbox) and first is not second
