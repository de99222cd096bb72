"""``chat33 sandbox``: every installed platform's sandbox on one port, and the env lines."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
from click.testing import CliRunner

from chat33_core.cli import main
from chat33_core.sandbox_oauth import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET

PLATFORMS = ("instagram", "facebook", "tiktok", "youtube", "x", "bluesky", "telegram",
             "mastodon", "threads", "linkedin")


def test_print_env_names_every_platform_and_exits() -> None:
    result = CliRunner().invoke(main, ["sandbox", "--port", "8123", "--print-env"])
    assert result.exit_code == 0
    lines = dict(line.removeprefix("export ").split("=", 1)
                 for line in result.stdout.splitlines())
    for platform in PLATFORMS:
        assert lines[f"CHAT33_{platform.upper()}_API_BASE"] == (
            f"http://127.0.0.1:8123/{platform}")
    # Google's token endpoint lives on another origin: the sandbox serves it too
    assert lines["CHAT33_YOUTUBE_TOKEN_URL"] == "http://127.0.0.1:8123/youtube/token"
    # the app credentials the sandboxes accept, for the plugins that connect by OAuth
    for platform in ("x", "tiktok"):
        assert lines[f"CHAT33_{platform.upper()}_CLIENT_ID"] == SANDBOX_CLIENT_ID
        assert lines[f"CHAT33_{platform.upper()}_CLIENT_SECRET"] == SANDBOX_CLIENT_SECRET


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get_when_up(url: str) -> httpx.Response:
    for _ in range(100):
        try:
            return httpx.get(url, timeout=2)
        except httpx.ConnectError:
            time.sleep(0.1)
    raise AssertionError(f"{url} never answered")


def test_serves_all_sandboxes_until_sigterm() -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT33_")}
    proc = subprocess.Popen([sys.executable, "-m", "chat33_core.cli", "sandbox", "--port",
                             str(port)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        bases: list[str] = []
        while len(bases) < len(PLATFORMS):
            line = proc.stdout.readline().strip()
            assert line.startswith("export CHAT33_"), line
            if "_API_BASE=" in line:
                bases.append(line.split("=", 1)[1])
        assert len(bases) == len(PLATFORMS)
        for base in bases:
            r = _get_when_up(f"{base}/_sandbox/state")
            assert r.status_code == 200 and isinstance(r.json(), dict)
        missing = httpx.get(f"http://127.0.0.1:{port}/myspace/x", timeout=2)
        assert missing.status_code == 404 and "x" in missing.json()["sandboxes"]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
