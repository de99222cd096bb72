"""Fixtures for the worker tests: a core with the ``echo`` test platform registered, its
sandbox served over real HTTP on loopback, an organization, a user and a channel."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
from werkzeug.serving import WSGIRequestHandler, make_server

from chat33_core import testplatform
from chat33_core.models import (
    DEFAULT_SCOPES,
    Account,
    Credentials,
    Organization,
    Post,
    PostStatus,
    User,
    new_id,
    utcnow,
)
from chat33_core.scheduling import Worker
from chat33_core.service import Chat33, Principal
from chat33_core.testplatform import EchoSandbox

ROOT = Path(__file__).resolve().parents[2]


@attrs.define
class Env:
    """One test's world: the core, the echo sandbox, an org, a user and a channel."""

    core: Chat33
    sandbox: EchoSandbox
    sandbox_url: str
    principal: Principal
    account: Account
    env: dict[str, str]

    @property
    def store(self) -> Any:
        return self.core.store

    def posts(self, n: int = 1, *, account: Account | None = None, **fields: Any) -> list[Post]:
        """Add ``n`` QUEUED posts straight to the store (fields override the defaults)."""
        account = account or self.account
        now = utcnow()
        made = []
        for i in range(n):
            values: dict[str, Any] = {
                "id": new_id("post"), "org_id": account.org_id, "account_id": account.id,
                "platform": account.platform, "account_name": account.name,
                "created_by": self.principal.user_id, "status": PostStatus.QUEUED,
                "text": f"post {i}", "created_at": now, "updated_at": now}
            values.update(fields)
            if "scheduled_at" in fields and "next_attempt_at" not in fields:
                values["next_attempt_at"] = fields["scheduled_at"]
            made.append(Post(**values))
        return self.store.add_posts(made)

    def spread(self, n: int, channels: int | None = None, **fields: Any) -> list[Post]:
        """``n`` QUEUED posts over ``channels`` new channels (one each by default), in
        turn: the worker publishes one post of a channel at a time, so posts on channels
        of their own can be published together."""
        accounts = [self.core.add_account(
            self.account.org_id, "echo", f"Echo channel {i + 2}",
            credentials=Credentials(access_token="echo-initial", refresh_token="echo-rt-0",
                                    expires_at=utcnow() + timedelta(days=30)))
            for i in range(channels or n)]
        made = []
        for i, account in enumerate(accounts):
            made += self.posts(len(range(i, n, len(accounts))), account=account, **fields)
        return made

    def thread(self, texts: Sequence[str], **fields: Any) -> list[Post]:
        """A thread published with its head (echo has threads)."""
        head_id = new_id("post")
        now = utcnow()
        posts = []
        for i, text in enumerate(texts):
            posts.append(Post(
                id=head_id if i == 0 else new_id("post"), org_id=self.account.org_id,
                account_id=self.account.id, platform="echo", account_name=self.account.name,
                created_by=self.principal.user_id, text=text, thread_id=head_id,
                thread_position=i, publish_with_head=i > 0, created_at=now, updated_at=now,
                **fields))
        return self.store.add_posts(posts)

    def get(self, post_id: str) -> Post:
        return self.store.get_post(post_id)

    def worker(self, **kw: Any) -> Worker:
        kw.setdefault("once", True)
        kw.setdefault("concurrency", 2)
        kw.setdefault("grace_s", 5.0)
        return Worker(self.core, **kw)

    def run_once(self, settle_s: float = 2.0, **kw: Any) -> Worker:
        """``worker --once``, again while a retry falls due within ``settle_s``."""
        stats: Counter[str] = Counter()
        while True:
            w = self.worker(**kw)
            assert w.run() == 0
            stats.update(w.stats)
            due = [d for d in (w.queue.next_due(), w.webhooks.next_due()) if d]
            wait = (min(due) - utcnow()).total_seconds() if due else None
            if wait is None or wait > settle_s:
                w.stats = stats
                return w
            time.sleep(max(0.0, wait))

    def events(self, post_id: str) -> list[str]:
        return [e.event for e in self.store.list_logs(post_id)]

    def fault(self, **spec: Any) -> None:
        self.sandbox.add_fault(**spec)


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kw: Any) -> None:
        pass  # thousands of requests: logging them would cost more than serving them


@contextmanager
def quiet_serve(app: Any) -> Iterator[str]:
    """Like :func:`chat33_core.sandbox.serve` (real HTTP on loopback, a thread per
    connection) without a log line per request."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def make_env(db_url: str, settings_for: Callable[..., Any]) -> Iterator[Callable[..., Env]]:
    cores: list[Chat33] = []
    servers: list[Any] = []

    def make(*, credentials: Credentials | None = None, **env: str) -> Env:
        app = EchoSandbox()
        server = quiet_serve(app)
        url = server.__enter__()
        servers.append(server)
        full = {"CHAT33_ECHO_API_BASE": url, "CHAT33_RETRY_BASE_S": "0.01",
                "CHAT33_WORKER_POLL_S": "0.05", **env}
        settings = settings_for(db_url, **full)
        core = Chat33(settings, load_plugins=False)
        core.host.register(testplatform, name="echo")
        core.store.migrate()
        cores.append(core)
        # straight to the store: the password hash is not what these tests are about
        org = core.store.find_org_by_name("Acme") or core.store.add_org(Organization.new("Acme"))
        user = core.store.add_user(User(id=new_id("user"), org_id=org.id,
                                        email=f"u{len(cores)}@example.com", password_hash="-"))
        principal = Principal(org_id=user.org_id, user_id=user.id,
                              scopes=frozenset(DEFAULT_SCOPES), via="key")
        account = core.add_account(user.org_id, "echo", "Echo channel", credentials=(
            credentials or Credentials(access_token="echo-initial",
                                       refresh_token="echo-rt-0",
                                       expires_at=utcnow() + timedelta(days=30))))
        return Env(core=core, sandbox=app, sandbox_url=url, principal=principal,
                   account=account, env={**settings.env})

    yield make
    for core in cores:
        core.store.dispose()
    for server in servers:
        server.__exit__(None, None, None)


@pytest.fixture
def env(make_env: Callable[..., Env]) -> Env:
    return make_env()


def wait_for_refused_credentials(make_env: Callable[..., Env]) -> tuple[Env, Post]:
    """A post left waiting in QUEUED because the platform refused the token and its
    refresh token alike (the account is marked needs_reconnect)."""
    env = make_env(credentials=Credentials(access_token="echo-initial",
                                           refresh_token="revoked-rt"))
    env.sandbox.revoked.add("echo-initial")
    (post,) = env.posts(1)
    env.run_once()
    waiting = env.get(post.id)
    assert waiting.status is PostStatus.QUEUED
    return env, waiting


# --- worker processes ---------------------------------------------------------------------

WORKER_CMD = [sys.executable, "-c", "from chat33_core.cli import main; main()", "worker",
              "--plugin", "chat33_core.testplatform", "--log-level", "WARNING"]


def spawn_worker(env: dict[str, str], *args: str, log: Path | None = None
                 ) -> subprocess.Popen[bytes]:
    full = {**os.environ, **env, "CHAT33_LOAD_PLUGINS": "none"}
    out = log.open("ab") if log else subprocess.DEVNULL
    return subprocess.Popen([*WORKER_CMD, *args], env=full, stdout=subprocess.DEVNULL,
                            stderr=out, cwd=ROOT)


def wait_until(check: Callable[[], bool], timeout: float, what: str,
               interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def stop_all(procs: Sequence[subprocess.Popen[bytes]]) -> list[int]:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    codes = []
    for p in procs:
        try:
            codes.append(p.wait(timeout=30))
        except subprocess.TimeoutExpired:
            p.kill()
            codes.append(p.wait())
    return codes
