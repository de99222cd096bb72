"""The checks every chat33 platform plugin passes (entry point, declarations, sandbox)."""

from __future__ import annotations

from chat33_example import ExamplePlatform

from chat33_core.testing import PlatformContract


class TestExampleContract(PlatformContract):
    platform_class = ExamplePlatform
