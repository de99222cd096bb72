"""The checks every platform plugin passes."""

from __future__ import annotations

from chat33_threads import ThreadsPlatform

from chat33_core.testing import PlatformContract


class TestThreadsContract(PlatformContract):
    platform_class = ThreadsPlatform
