"""The checks every platform plugin passes."""

from __future__ import annotations

from chat33_linkedin import LinkedInPlatform

from chat33_core.testing import PlatformContract


class TestLinkedInContract(PlatformContract):
    platform_class = LinkedInPlatform
