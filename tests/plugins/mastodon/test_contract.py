"""The checks every platform plugin passes."""

from __future__ import annotations

from chat33_mastodon import MastodonPlatform

from chat33_core.testing import PlatformContract


class TestMastodonContract(PlatformContract):
    platform_class = MastodonPlatform
