"""``chat33 worker --metrics-port``: every chat33 metric, and counts that add up over
two worker processes sharing one database."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from chat33_core.metrics import NAMES
from chat33_core.models import Credentials, PostStatus, utcnow
from chat33_core.sandbox import serve
from chat33_core.scheduling.cli import worker

from ..metrics_text import families, value
from .conftest import WORKER_CMD, Env, spawn_worker, stop_all, wait_until
from .test_processes import status_counts


def _metrics_port(log: Path) -> int:
    """The port a worker started with ``--metrics-port 0`` says it listens on."""
    found: list[int] = []

    def said() -> bool:
        for line in log.read_text().splitlines():
            if not line.endswith("}"):
                continue  # a line still being written
            match = re.search(r"metrics on http://127\.0\.0\.1:(\d+)/metrics",
                              json.loads(line)["message"])
            if match:
                found.append(int(match[1]))
        return bool(found)

    wait_until(said, 30, f"the metrics port in {log}")
    return found[0]


def _ok(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def test_two_workers_serve_metrics_that_add_up(make_env: Any, tmp_path: Path) -> None:
    # a token close to expiry: the first attempt refreshes it
    env: Env = make_env(credentials=Credentials(
        access_token="echo-initial", refresh_token="echo-rt-0",
        expires_at=utcnow() + timedelta(seconds=30)))
    # the first create is refused for a quota: that post waits for the platform's limit
    env.sandbox.add_fault(method="POST", path="/v1/posts$", status=429, count=1, body={
        "error": "quota", "retryAt": (utcnow() + timedelta(hours=2)).isoformat()})
    with serve(_ok) as hook_url:
        env.posts(10)
        env.posts(1, callback_url=hook_url + "/hook")
        logs = [tmp_path / f"worker{i}.log" for i in range(2)]
        procs = [spawn_worker(env.env, "--metrics-port", "0", "--log-level", "INFO", log=log)
                 for log in logs]
        try:
            ports = [_metrics_port(log) for log in logs]
            wait_until(lambda: status_counts(env).get(PostStatus.PUBLISHED.value) == 10, 60,
                       "10 posts published")

            def scrape() -> list[str]:
                return [httpx.get(f"http://127.0.0.1:{port}/metrics").text for port in ports]

            def total(name: str, **labels: str) -> float:
                return sum(value(text, name, **labels) for text in scrape())

            wait_until(lambda: total("chat33_webhook_deliveries_total") == 1, 30,
                       "the webhook delivered")
            texts = scrape()
        finally:
            codes = stop_all(procs)
    assert codes == [0, 0], logs[0].read_text()[-3000:] + logs[1].read_text()[-3000:]
    for text in texts:
        assert set(NAMES) <= families(text)

    def summed(name: str, **labels: str) -> float:
        return sum(value(text, name, **labels) for text in texts)

    assert summed("chat33_publish_attempts_total", platform="echo", outcome="published") == 10
    assert summed("chat33_publish_attempts_total", outcome="deferred") == 1
    assert summed("chat33_publish_attempts_total") == 11
    assert summed("chat33_publish_duration_seconds_count", platform="echo") == 11
    # every post's first start, the deferred one's too (its later start is not a first)
    assert summed("chat33_publish_delay_seconds_count", platform="echo") == 11
    assert summed("chat33_platform_limit_waits_total", platform="echo") == 1
    assert summed("chat33_webhook_deliveries_total", outcome="delivered") == 1
    assert summed("chat33_token_refreshes_total", platform="echo", outcome="refreshed") >= 1
    assert summed("chat33_token_refreshes_total", outcome="failed") == 0
    # the deferred post is neither due nor leased: it waits for its quota window
    for text in texts:
        assert value(text, "chat33_queue_posts", state="due") == 0
        assert value(text, "chat33_queue_posts", state="leased") == 0


@pytest.mark.parametrize("port", ["-1", "70000", "http"])
def test_a_bad_metrics_port_is_refused(port: str) -> None:
    result = CliRunner().invoke(worker, ["--metrics-port", port])
    assert result.exit_code == 2
    assert "--metrics-port" in result.output


def test_a_metrics_port_in_use_is_one_clear_error(env: Env) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run([*WORKER_CMD, "--once", "--metrics-port", str(port)],
                              env={**os.environ, **env.env, "CHAT33_LOAD_PLUGINS": "none"},
                              capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert f"--metrics-port: cannot listen on 127.0.0.1:{port}" in done.stderr
