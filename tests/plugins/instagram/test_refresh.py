"""Instagram Login long-lived tokens: when to refresh, and the refresh itself."""

from __future__ import annotations

import time
from datetime import timedelta

import httpx
import pytest
from chat33_instagram import InstagramPlatform

from chat33_core.config import Settings
from chat33_core.errors import ReconnectRequired
from chat33_core.models import Credentials, utcnow
from chat33_core.platforms import RefreshContext
from chat33_core.testing import publish_context

DAY = 86_400


def creds(age: timedelta, left: timedelta, token: str = "tok", **extra: str) -> Credentials:
    now = utcnow()
    return Credentials(access_token=token, issued_at=now - age, expires_at=now + left,
                       extra=dict(extra))


def refresh_ctx(platform: InstagramPlatform) -> RefreshContext:
    return RefreshContext(account=None, http=httpx.Client(timeout=10),  # type: ignore[arg-type]
                          settings=platform.settings)


@pytest.mark.parametrize(("age", "left", "expected"), [
    (timedelta(days=55), timedelta(days=5), True),      # old enough, inside the window
    (timedelta(days=10), timedelta(days=50), False),    # far from expiry
    (timedelta(hours=2), timedelta(days=5), False),     # under 24 h: Instagram refuses
    (timedelta(days=61), timedelta(days=-1), False),    # expired: only a new login helps
])
def test_needs_refresh_only_when_old_enough_and_close_to_expiry(age, left, expected):
    assert InstagramPlatform(Settings.from_env({})).needs_refresh(creds(age, left)) is expected


def test_refresh_window_is_configurable():
    platform = InstagramPlatform(Settings.from_env({
        "CHAT33_INSTAGRAM_REFRESH_WINDOW_HOURS": str(30 * 24)}))
    assert platform.needs_refresh(creds(timedelta(days=20), timedelta(days=25)))


def test_facebook_login_tokens_are_not_refreshed():
    platform = InstagramPlatform(Settings.from_env({}))
    fb = creds(timedelta(days=55), timedelta(days=5), login="facebook")
    assert not platform.needs_refresh(fb)
    with pytest.raises(ReconnectRequired):
        platform.refresh_credentials(fb, refresh_ctx(platform))


def test_refresh_exchanges_the_token_for_a_new_60_day_one(platform, control):
    old = creds(timedelta(days=55), timedelta(days=5), token="long-lived-1", login="instagram")
    control("POST", "/_sandbox/tokens", json={"token": "long-lived-1",
                                              "issuedAt": time.time() - 55 * DAY,
                                              "expiresAt": time.time() + 5 * DAY})
    new = platform.refresh_credentials(old, refresh_ctx(platform))

    assert new.access_token != "long-lived-1"
    assert new.refresh_token is None
    assert new.issued_at is not None and utcnow() - new.issued_at < timedelta(minutes=1)
    assert new.expires_at is not None
    assert timedelta(days=59) < new.expires_at - utcnow() <= timedelta(days=60)
    assert new.extra == {"login": "instagram"}
    tokens = {t["token"]: t for t in control("GET", "/_sandbox/state")["tokens"]}
    assert tokens[new.access_token]["refreshedFrom"] == "long-lived-1"


def test_refreshed_token_publishes(platform, settings, media, control):
    new = platform.refresh_credentials(creds(timedelta(days=55), timedelta(days=5)),
                                       refresh_ctx(platform))
    ctx = publish_context(platform, settings=settings, media=[media("square.jpg")],
                          credentials=new)
    platform.publish(ctx)
    assert len(control("GET", "/_sandbox/state")["published"]) == 1


def test_platform_refuses_a_young_token_and_the_account_must_reconnect(platform, control):
    control("POST", "/_sandbox/tokens", json={"token": "young",
                                              "issuedAt": time.time() - 3600})
    unknown_age = Credentials(access_token="young", expires_at=utcnow() + timedelta(days=59))
    with pytest.raises(ReconnectRequired):
        platform.refresh_credentials(unknown_age, refresh_ctx(platform))


def test_expired_token_cannot_be_refreshed(platform, control):
    expired = creds(timedelta(days=61), timedelta(seconds=-5))
    with pytest.raises(ReconnectRequired):
        platform.refresh_credentials(expired, refresh_ctx(platform))
    assert not control("GET", "/_sandbox/state")["requests"], "no call was needed"


def test_token_the_platform_says_expired_needs_reconnect(platform, control):
    control("POST", "/_sandbox/tokens", json={"token": "dead", "expiresAt": 1,
                                              "issuedAt": 0})
    with pytest.raises(ReconnectRequired) as caught:
        platform.refresh_credentials(Credentials(access_token="dead"), refresh_ctx(platform))
    assert caught.value.platform_code == "190/463"
