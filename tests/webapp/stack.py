"""The whole job on loopback for the web app's browser tests and screenshots: every
installed platform's sandbox (in this process), the real server (``chat33 serve``, a
process of its own) and worker passes (``chat33 worker --once``), on one database.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
from attrs import define

from chat33_core.config import Settings
from chat33_core.demo_setup import DEMO_ACCOUNTS
from chat33_core.models import Account, Credentials, User, utcnow
from chat33_core.plugins import PluginHost
from chat33_core.sandboxes import sandbox_env_lines, serve_sandboxes
from chat33_core.service import Chat33

EMAIL = "ada@example.com"
PASSWORD = "correct horse battery"
#: the platforms whose accounts the stack connects (sandbox credentials)
PLATFORMS = ("x", "mastodon", "bluesky")
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def chromium() -> str | None:
    """The operating system's Chromium, or None."""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@define
class Stack:
    url: str
    env: dict[str, str]
    core: Chat33
    user: User
    accounts: dict[str, Account]
    log: Path

    @property
    def app(self) -> str:
        return self.url + "/app"

    def worker_pass(self) -> None:
        """Publish what is due now: one ``chat33 worker --once``."""
        done = subprocess.run([sys.executable, "-m", "chat33_core.cli", "worker", "--once"],
                              env=self.env, capture_output=True, timeout=120)
        assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]


@contextlib.contextmanager
def web_stack(folder: Path, database_url: str | None = None) -> Iterator[Stack]:
    host = PluginHost(Settings.from_env({}))
    host.load_entry_points()
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with serve_sandboxes(host) as (sandbox_url, _apps):
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT33_")}
        env.update({
            "CHAT33_DATABASE_URL": database_url or f"sqlite:///{folder / 'chat33.db'}",
            "CHAT33_MEDIA_DIR": str(folder / "media"),
            "CHAT33_PUBLIC_BASE_URL": url,
            "CHAT33_SECRET_KEY": "web-app-tests-secret-key-0123456789",
            "CHAT33_ALLOW_PRIVATE_URLS": "1",
            "CHAT33_POLL_INTERVAL_S": "0.05",
            **sandbox_env_lines(host, sandbox_url),
        })
        core = Chat33(Settings.from_env(env))
        core.store.migrate()
        user = core.create_user(EMAIL, PASSWORD, "Acme")
        accounts = {}
        for name in PLATFORMS:
            username, external_id, token = DEMO_ACCOUNTS.get(name) or (
                "acme", f"sandbox-{name}", None)
            accounts[name] = core.add_account(
                user.org_id, name, f"Acme on {host.platform(name).display_name}",
                username=username, external_id=external_id,
                credentials=Credentials(access_token=token or "sandbox-token",
                                        refresh_token="sandbox-refresh",
                                        expires_at=utcnow() + timedelta(days=50),
                                        issued_at=utcnow()))
        log = folder / "server.log"
        with log.open("wb") as out:
            server = subprocess.Popen(
                [sys.executable, "-m", "chat33_core.cli", "serve", "--port", str(port),
                 "--workers", "1", "--threads", "8"],
                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            _wait_ready(url, server, log)
            yield Stack(url=url, env=env, core=core, user=user, accounts=accounts, log=log)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(5)
            core.store.dispose()


def _wait_ready(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.poll() is None, log.read_text(errors="replace")[-3000:]
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("the server did not become ready:\n"
                         + log.read_text(errors="replace")[-3000:])


__all__ = ["EMAIL", "PASSWORD", "Stack", "chromium", "web_stack"]
