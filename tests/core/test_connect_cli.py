"""``chat33 accounts connect`` / ``reconnect`` / ``remove`` as an operator runs them: a
real process prints the authorization URL and takes the platform's redirect back on
the loopback address of CHAT33_PUBLIC_BASE_URL; the X sandbox is the platform."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from chat33_core.config import Settings
from chat33_core.plugins import PluginHost
from chat33_core.sandbox import serve
from chat33_core.sandbox_oauth import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET
from chat33_core.service import Chat33


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def setup(db_url: str, tmp_path: Path) -> Iterator[tuple[dict[str, str], Chat33, Any]]:
    host = PluginHost(Settings())
    host.load_entry_points()
    sandbox = host.platform("x").sandbox()
    with serve(sandbox) as url:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT33_")}
        env |= {"CHAT33_DATABASE_URL": db_url,
                "CHAT33_SECRET_KEY": "cli-test-secret-0123456789abcdef",
                "CHAT33_MEDIA_DIR": str(tmp_path / "media"),
                "CHAT33_PUBLIC_BASE_URL": f"http://127.0.0.1:{_free_port()}",
                "CHAT33_X_API_BASE": url, "CHAT33_X_CLIENT_ID": SANDBOX_CLIENT_ID,
                "CHAT33_X_CLIENT_SECRET": SANDBOX_CLIENT_SECRET}
        core = Chat33(Settings.from_env(env))
        core.store.migrate()
        core.create_user("ops@example.com", "password1", "Acme")
        yield env, core, sandbox
        core.store.dispose()


def _run(env: dict[str, str], *args: str, consent: bool = True
         ) -> tuple[int, str, str]:
    """Run ``chat33 *args``; open the URL it prints as a browser would."""
    proc = subprocess.Popen([sys.executable, "-m", "chat33_core.cli", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    url = proc.stdout.readline().strip()
    if url.startswith("http") and consent:
        # the sandbox redirects to the callback the command serves, which shows a page
        page = httpx.get(url, follow_redirects=True, timeout=30)
        assert page.status_code == 200, page.text
    out, err = proc.communicate(timeout=120)
    return proc.returncode, url + "\n" + out, err


def test_connect_reconnect_and_remove_from_the_command_line(setup: Any) -> None:
    env, core, sandbox = setup
    code, out, err = _run(env, "accounts", "connect", "--org", "Acme", "--platform", "x")
    assert code == 0, err
    url, account_id = out.split()
    assert "/i/oauth2/authorize?" in url and "code_challenge=" in url
    assert "connected x account" in err
    [account] = core.list_accounts(core.store.find_org_by_name("Acme").id)
    assert account.id == account_id and account.external_id == "1784140000000000"

    code, out, err = _run(env, "accounts", "reconnect", account_id)
    assert code == 0, err
    assert out.split()[1] == account_id

    code, out, err = _run(env, "accounts", "remove", account_id, "--yes")
    assert code == 0, err
    assert core.account_credentials(account_id) is None
    assert "xrt-" in sandbox.state()["revoked"]


def test_connect_refuses_what_it_cannot_do(setup: Any) -> None:
    env, _, _ = setup
    code, _, err = _run(env, "accounts", "connect", "--org", "Nobody", "--platform", "x")
    assert code == 2 and "no organization named" in err
    code, _, err = _run(env, "accounts", "connect", "--org", "Acme", "--platform", "bluesky")
    assert code == 2 and "cannot be connected by OAuth" in err
    code, _, err = _run({**env, "CHAT33_X_CLIENT_ID": ""}, "accounts", "connect", "--org",
                        "Acme", "--platform", "x")
    assert code == 2 and "CHAT33_X_CLIENT_ID" in err


def test_a_denied_consent_ends_the_command_with_the_reason(setup: Any) -> None:
    env, _, _ = setup
    assert httpx.post(f"{env['CHAT33_X_API_BASE']}/_sandbox/oauth",
                      json={"deny": True}).status_code == 200
    code, _, err = _run(env, "accounts", "connect", "--org", "Acme", "--platform", "x")
    assert code == 2 and "denied" in err
