"""``text_count``: the live "N / limit" counter of the web app's compose page."""

from __future__ import annotations

from chat33_x.platform import XPlatform

from chat33_core.config import Settings
from chat33_core.models import Account
from chat33_core.platforms import PlatformBase


def _account(**metadata: object) -> Account:
    return Account(id="chan_1", org_id="org_1", platform="x", name="X", metadata=metadata)


def test_x_counts_urls_as_23_and_emoji_as_2_against_the_accounts_limit() -> None:
    x = XPlatform(Settings.from_env({}))
    assert x.text_count("hello https://example.com/a/very/long/path/indeed", _account()) == (
        6 + 23, 280)
    assert x.text_count("👋", _account()) == (2, 280)
    assert x.text_count("", _account()) == (0, 280)
    assert x.text_count("hi", _account(premium=True)) == (2, 25_000)


def test_the_default_counts_code_points_against_the_caption_length() -> None:
    class Plain(PlatformBase):
        name = "plain"

    assert Plain(Settings.from_env({})).text_count("👋 hi", _account()) == (4, 2200)
