"""Instagram's app-wide call budget (``X-App-Usage``), shared by all workers: what the
sandbox reports goes into the store's count (SQLite and PostgreSQL), and at 100 % every
worker's next Instagram post waits."""

from __future__ import annotations

from typing import Any

from chat33_core.models import Account
from chat33_core.scheduling.limits import SharedLimits
from chat33_core.store import Store
from chat33_core.store import platform_limits as stored
from chat33_core.testing import publish_context

KEY = "instagram:app-usage:app"


def test_app_usage_reported_by_meta_is_shared(platform: Any, settings: Any, media: Any,
                                              control: Any, store: Store) -> None:
    control("POST", "/_sandbox/config", json={"callsPerHour": 4})
    limits = SharedLimits(store)
    channel = Account(id="chan_ig", org_id="org_test", platform="instagram", name="IG",
                      username="chat33test", external_id="1784140000000000")
    assert limits.reserve(platform, channel) is None
    ctx = publish_context(platform, settings=settings, media=[media("square.jpg")],
                          account=channel, limits=limits.reporter(platform, channel))
    platform.publish(ctx)
    used, _ = stored.windows(store, [KEY])[KEY]
    assert used >= 100  # the publish's calls spent the sandbox app's hourly budget
    wait = limits.reserve(platform, channel)
    assert wait is not None and wait.limits == ("app-usage",)
    assert "X-App-Usage" in wait.message
