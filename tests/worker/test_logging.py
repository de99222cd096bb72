"""What ``chat33 worker`` says at INFO: one line per attempt, no HTTP chatter; one JSON
object a line by default, text with ``CHAT33_LOG_FORMAT=text``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from chat33_core.models import PostStatus

from .conftest import ROOT, Env

WORKER = [sys.executable, "-c", "from chat33_core.cli import main; main()", "worker",
          "--plugin", "chat33_core.testplatform", "--once"]


def run_worker(env: Env, *args: str, **extra_env: str) -> str:
    full = {k: v for k, v in os.environ.items() if k not in ("CHAT33_LOG_LEVEL",
                                                             "CHAT33_LOG_FORMAT")}
    full.update({**env.env, "CHAT33_LOAD_PLUGINS": "none", "CHAT33_LOG_FORMAT": "text",
                 **extra_env})
    done = subprocess.run([*WORKER, *args], env=full, cwd=ROOT, capture_output=True,
                          timeout=120, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stderr


def test_info_logs_one_line_per_attempt_and_no_http_requests(env: Env) -> None:
    published, retried = env.posts(2)
    # the second post's create is refused with a 429 once: a retry, scheduled later
    env.sandbox.add_fault(method="POST", path="/v1/posts$", status=429, count=1,
                          headers={"Retry-After": "3600"}, body={"error": "slow down"})
    err = run_worker(env)
    lines = [line for line in err.splitlines() if "attempt 1:" in line]
    assert len(lines) == 2, err
    by_post = {pid: next(line for line in lines if pid in line)
               for pid in (published.id, retried.id)}
    outcomes = {pid: re.search(r"attempt 1: (\w+) in (\d+\.\d\d) s", line).group(1)  # type: ignore[union-attr]
                for pid, line in by_post.items()}
    assert sorted(outcomes.values()) == ["published", "retry"]
    retry_id = next(pid for pid, kind in outcomes.items() if kind == "retry")
    assert " INFO chat33_core.scheduling.publisher: " in by_post[retry_id]
    assert "on echo" in by_post[retry_id]
    assert env.get(retry_id).next_attempt_at is not None
    when = env.get(retry_id).next_attempt_at.isoformat(timespec="seconds")  # type: ignore[union-attr]
    assert f"next attempt at {when}" in by_post[retry_id]
    assert "slow down" in by_post[retry_id]
    assert {env.get(p).status for p in by_post} == {PostStatus.PUBLISHED, PostStatus.QUEUED}
    # httpx logs each request at INFO: not shown unless asked for
    assert "HTTP Request" not in err and "httpcore" not in err


def test_debug_from_the_environment_shows_http_requests(env: Env) -> None:
    env.posts(1)
    err = run_worker(env, CHAT33_LOG_LEVEL="DEBUG")
    assert "attempt 1: published" in err
    assert re.search(r"httpx: HTTP Request: POST http://127\.0\.0\.1:\d+/v1/posts", err), err
    assert "httpcore" in err


def test_json_lines_carry_the_post_account_org_platform_and_attempt(env: Env) -> None:
    post, = env.posts(1)
    err = run_worker(env, CHAT33_LOG_FORMAT="json")
    lines = [json.loads(line) for line in err.splitlines()]  # every line is one object
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    attempt = next(line for line in lines if "attempt 1: published" in line["message"])
    assert attempt["level"] == "INFO"
    assert attempt["logger"] == "chat33_core.scheduling.publisher"
    assert (attempt["postId"], attempt["accountId"], attempt["orgId"], attempt["platform"],
            attempt["attempt"]) == (post.id, post.account_id, post.org_id, "echo", 1)
    # lines about no post in particular carry no post fields
    started = next(line for line in lines if " started (concurrency" in line["message"])
    assert "postId" not in started


def test_an_unknown_log_format_is_refused_before_anything_runs(env: Env) -> None:
    full = {**os.environ, **env.env, "CHAT33_LOAD_PLUGINS": "none",
            "CHAT33_LOG_FORMAT": "yaml"}
    done = subprocess.run([*WORKER], env=full, cwd=ROOT, capture_output=True, timeout=120,
                          text=True)
    assert done.returncode != 0
    assert "CHAT33_LOG_FORMAT must be json or text, not 'yaml'" in done.stderr
