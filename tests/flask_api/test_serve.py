"""``chat33 serve``: gunicorn over real HTTP; refuses to start without a secret key."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from chat33_flask.cli import serve
from click.testing import CliRunner

from .conftest import make_core, make_org


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_refuses_without_a_secret_key(monkeypatch: Any) -> None:
    monkeypatch.delenv("CHAT33_SECRET_KEY", raising=False)
    result = CliRunner().invoke(serve, ["--port", "0"])
    assert result.exit_code == 2
    assert "CHAT33_SECRET_KEY" in result.output


def test_serve_is_a_chat33_command() -> None:
    from chat33_core.cli import main

    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0
    assert "--workers" in result.output and "--dev" in result.output


def test_serve_runs_gunicorn_workers_over_http(settings_for: Any, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'served.db'}"
    settings = settings_for(url)
    core = make_core(settings)
    org = make_org(core, "Served")
    core.store.dispose()
    port = _free_port()
    env = {**os.environ, **settings.env}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from chat33_core.cli import main; main()", "serve",
         "--port", str(port), "--workers", "2"],
        env=env, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + "/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "the server did not come up"
                time.sleep(0.1)
        created = httpx.post(base + "/api/v1/posts", headers={**org.headers,
                                                              "x-request-id": "over-http"},
                             json={"accountIds": [org.accounts["x"]], "text": "served"})
        assert created.status_code == 201
        assert created.headers["x-request-id"] == "over-http"
        listed = httpx.get(base + "/api/v1/posts", headers=org.headers).json()
        assert listed["total"] == 1
        assert httpx.get(base + "/readyz").json() == {"status": "ready"}
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(line["requestId"] == "over-http" and line["status"] == 201 for line in lines)
    assert "gunicorn" in err
