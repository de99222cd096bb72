"""The README's main job: ``chat33 demo`` on a fresh temporary database, as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys


def test_chat33_demo_publishes_everything_and_exits_0() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT33_")}
    result = subprocess.run([sys.executable, "-m", "chat33_core.cli", "demo"], env=env,
                            capture_output=True, text=True, timeout=240, check=False)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-4000:]
    for platform in ("instagram", "facebook", "tiktok", "youtube", "x"):
        assert f" {platform} " in out and "PUBLISHED" in out
    assert "FAILED" not in out and "missing" not in out
    assert "dry run of an invalid post" in out
    assert "scheduled post published" in out
    assert out.count("verified") >= 10
    # the retried post shows its second attempt
    retried = [line for line in out.splitlines() if "retried" in line]
    assert retried and " 2 " in retried[0]
