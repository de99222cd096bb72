"""X's POST /2/tweets window, shared by all workers: the plugin declares it, and what X
says in its ``x-rate-limit-*`` headers goes into the store's count (SQLite and
PostgreSQL), over real HTTP to the sandbox."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chat33_core.errors import TransientError
from chat33_core.scheduling.limits import SharedLimits
from chat33_core.store import Store
from chat33_core.store import platform_limits as stored

from .conftest import Sandbox, account

KEY = "x:tweets-per-user:chan_x"


def test_the_platforms_headers_set_the_shared_window(sandbox: Sandbox, store: Store) -> None:
    sandbox.config(limits={"tweets": 5}, window_s=900)
    limits = SharedLimits(store)
    channel = account()
    assert limits.reserve(sandbox.platform, channel, items=3) is None
    ctx = sandbox.context(["one", "two", "three"],
                          limits=limits.reporter(sandbox.platform, channel))
    sandbox.platform.publish(ctx)
    used, resets_at = stored.windows(store, [KEY])[KEY]
    # X's window (5 for this sandbox user) has 2 left, whatever the declared 100 says;
    # its reset time (epoch seconds) replaced the declared 15 minutes
    assert used == 98
    assert resets_at.microsecond == 0 and resets_at > datetime.now(UTC)
    # two more fit, a third waits for X's reset time, not the declared 15 minutes
    assert limits.reserve(sandbox.platform, channel, items=2) is None
    wait = limits.reserve(sandbox.platform, channel, items=1)
    assert wait is not None and wait.until == resets_at
    assert "X's limit of 100 posts per 15 minutes for this channel" in wait.message


def test_a_429_still_tells_the_core_the_window_is_spent(sandbox: Sandbox, store: Store) -> None:
    sandbox.config(limits={"tweets": 1}, window_s=900)
    sandbox.platform.publish(sandbox.context(["first"]))  # not through chat33's count
    limits = SharedLimits(store)
    ctx = sandbox.context(["second"], limits=limits.reporter(sandbox.platform, account()))
    with pytest.raises(TransientError):
        sandbox.platform.publish(ctx)
    used, _ = stored.windows(store, [KEY])[KEY]
    assert used == 100  # remaining 0: the whole window is spent for every worker
