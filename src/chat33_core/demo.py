"""``chat33 demo``: the whole job on this machine, no credentials.

The demo runs the real pieces as separate processes — the REST API (``chat33 serve``), a
worker (``chat33 worker``) — against a temporary SQLite database, with every installed
platform's sandbox served on loopback, and drives them through the REST API only, as a
client would. Its user, accounts and webhook receiver are set up by :mod:`.demo_setup`;
the sandboxes are served as ``chat33 sandbox`` serves them (:mod:`.sandboxes`).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import httpx

from .config import Settings
from .demo_setup import DEMO_ACCOUNTS, DEMO_EMAIL, WebhookReceiver, add_accounts
from .plugins import PluginHost
from .sandbox import serve
from .sandboxes import sandbox_env_lines, serve_sandboxes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class DemoFailed(Exception):
    pass


class Stopped(BaseException):
    """SIGTERM or SIGINT arrived: unwind (stopping the processes, removing the folder).
    A BaseException, like KeyboardInterrupt, so no ``except Exception`` swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class Steps:
    """The demo's progress: rich progress bars on a terminal; otherwise (a log, CI) one
    line per step as it starts, since bars there only show their last state."""

    def __init__(self, console: Any, total: int) -> None:
        self.console = console
        self.total = total
        self.number = 0
        self.progress: Any = None
        if console.is_terminal:
            from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn

            self.progress = Progress(
                SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                TextColumn("{task.completed}/{task.total}"), console=console,
                transient=False)

    def __enter__(self) -> Steps:
        if self.progress is not None:
            self.progress.__enter__()
            self.task = self.progress.add_task("", total=self.total)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.progress is not None:
            self.progress.__exit__(*exc)

    def step(self, description: str) -> None:
        """A step starts."""
        self.number += 1
        if self.progress is not None:
            self.progress.update(self.task, description=description)
        else:
            self.console.print(f"[{self.number}/{self.total}] {description}", markup=False,
                               highlight=False)

    def done(self) -> None:
        """The current step is over."""
        if self.progress is not None:
            self.progress.advance(self.task)

    def counter(self, description: str, total: int) -> Callable[[], None]:
        """A bar of its own for ``total`` things (a no-op without a terminal)."""
        if self.progress is None:
            return lambda: None
        task = self.progress.add_task(description, total=total)
        return lambda: self.progress.advance(task)


class Demo:
    """Runs the scenario; every expectation that fails is collected, not hidden."""

    def __init__(self, workdir: Path, console: Any, stack: contextlib.ExitStack,
                 keep_running: bool = False, port: int | None = None) -> None:
        self.stack = stack
        self.workdir = workdir
        self.console = console
        self.keep_running = keep_running
        self.procs: list[subprocess.Popen[bytes]] = []
        self.problems: list[str] = []
        self.rows: list[dict[str, Any]] = []
        self.receiver = WebhookReceiver()
        #: the secret values the demo made (key, password, API key, webhook secret): what
        #: no log line may ever show
        self.secrets: list[str] = []
        self.api_port = port or _free_port()
        self.api = f"http://127.0.0.1:{self.api_port}"
        self.password = ""

    # --- processes ----------------------------------------------------------------------

    def spawn(self, name: str, args: list[str], env: dict[str, str]) -> None:
        log = (self.workdir / f"{name}.log").open("wb")
        proc = subprocess.Popen([sys.executable, "-m", "chat33_core.cli", *args], env=env,
                                stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.procs.append(proc)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)

    def log_tail(self, name: str, lines: int = 15) -> str:
        path = self.workdir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    # --- helpers ------------------------------------------------------------------------

    def connect(self, platform: str) -> str:
        """Connect a ``platform`` account as a user would: start a connection, let a
        browser sign in at the sandbox and come back, pick the first target when asked."""
        r = self.call("POST", "/accounts/connect", json={"platform": platform})
        if r.status_code != 201:
            raise DemoFailed(f"connecting {platform}: {r.text}")
        started = r.json()
        with httpx.Client(follow_redirects=True, timeout=30) as browser:
            page = browser.get(started["authorizationUrl"])
        connection = self.call("GET", f"/accounts/connect/{started['connectionId']}").json()
        if connection["status"] == "select":
            connection = self.call(
                "POST", f"/accounts/connect/{started['connectionId']}/select",
                json={"externalIds": [connection["targets"][0]["externalId"]]}).json()
        if connection.get("status") != "connected":
            raise DemoFailed(f"connecting {platform}: {connection.get('error')} "
                             f"(page: HTTP {page.status_code})")
        return str(connection["accounts"][0]["id"])

    def expect(self, ok: bool, problem: str) -> bool:
        if not ok:
            self.problems.append(problem)
            self.console.print(f"[red]✗ {problem}[/red]")
        return ok

    def call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return self.http.request(method, f"{self.api}/api/v1{path}", **kw)

    def wait_terminal(self, post_ids: list[str], timeout: float,
                      settled: Callable[[], None] = lambda: None
                      ) -> dict[str, dict[str, Any]]:
        final: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(final) < len(post_ids):
            for post_id in post_ids:
                if post_id in final:
                    continue
                post = self.call("GET", f"/posts/{post_id}").json()
                if post.get("status") in ("PUBLISHED", "FAILED", "CANCELLED"):
                    final[post_id] = post
                    settled()
            time.sleep(0.2)
        for post_id in post_ids:
            if post_id not in final:
                final[post_id] = self.call("GET", f"/posts/{post_id}").json()
        return final

    # --- the scenario -------------------------------------------------------------------

    def run(self) -> int:
        from .models import ALL_SCOPES
        from .service import Chat33
        from .testing import make_image, make_video

        started = time.monotonic()
        host = PluginHost(Settings.from_env({}))
        host.load_entry_points()
        expected_platforms = ["instagram", "facebook", "tiktok", "youtube", "x", *DEMO_ACCOUNTS]
        missing = [p for p in expected_platforms if not host.has_platform(p)]
        if missing:
            raise DemoFailed(f"platform plugins not installed: {', '.join(missing)} "
                             "(pip install -r requirements.txt)")
        stack = self.stack
        with Steps(self.console, total=9) as steps:
            steps.step("starting sandboxes, API and worker")
            sandbox_url, _apps = stack.enter_context(serve_sandboxes(host))
            hook_url = stack.enter_context(serve(self.receiver))
            env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT33_")}
            env.update({
                "CHAT33_DATABASE_URL": f"sqlite:///{self.workdir / 'chat33.db'}",
                "CHAT33_MEDIA_DIR": str(self.workdir / "media"),
                "CHAT33_PUBLIC_BASE_URL": self.api,
                "CHAT33_SECRET_KEY": secrets.token_urlsafe(32),
                "CHAT33_ALLOW_PRIVATE_URLS": "1",
                "CHAT33_POLL_INTERVAL_S": "0.2",
                "CHAT33_RETRY_BASE_S": "1",
                **sandbox_env_lines(host, sandbox_url),
            })
            settings = Settings.from_env(env)
            core = Chat33(settings)
            core.store.migrate()
            password = secrets.token_urlsafe(12)
            user = core.create_user(DEMO_EMAIL, password, "Demo Org")
            self.password = password
            _key, raw_key = core.create_api_key(user.org_id, user.id, "demo",
                                                sorted(ALL_SCOPES))
            self.receiver.secret = core.webhook_secret(user.org_id)
            self.secrets += [env["CHAT33_SECRET_KEY"], password, raw_key,
                             self.receiver.secret]
            # the plugins that connect by OAuth connect through the flow once the API is up
            by_oauth = [n for n in expected_platforms if host.platform(n).supports_connect]
            accounts = add_accounts(core, host, user.org_id,
                                    [n for n in expected_platforms if n not in by_oauth])
            core.store.dispose()
            self.spawn("api", ["serve", "--port", str(self.api_port), "--workers", "2"], env)
            self.spawn("worker", ["worker", "--concurrency", "4"], env)
            self.http = stack.enter_context(httpx.Client(
                headers={"x-api-key": raw_key}, timeout=30))
            if not self._wait_ready(30):
                raise DemoFailed("the API did not become ready:\n" + self.log_tail("api"))
            for name in by_oauth:
                accounts[name] = self.connect(name)
            steps.done()

            # media the demo makes itself
            steps.step("uploading generated media")
            image = make_image(self.workdir / "photo.jpg", 1080, 1080)
            video = make_video(self.workdir / "clip.mp4", 720, 1280, seconds=4.0, fps=30)
            media = {}
            for path, mime in ((image, "image/jpeg"), (video, "video/mp4")):
                with path.open("rb") as fh:
                    r = self.call("POST", "/media/upload", files={"file": (path.name, fh, mime)})
                if not self.expect(r.status_code == 201, f"upload of {path.name}: {r.text}"):
                    raise DemoFailed("media upload failed")
                media[path.suffix] = r.json()["url"]
            steps.done()

            callback = f"{hook_url}/hooks"
            posts: dict[str, str] = {}  # post id → what it is

            steps.step(f"posting to all {len(expected_platforms)} platforms now")
            r = self.call("POST", "/posts", json={
                "accountIds": [accounts[p] for p in ("instagram", "facebook", "x", "bluesky",
                                                        "mastodon", "telegram", "threads",
                                                        "linkedin")],
                "text": "Hello from chat33 👋 #opensource", "mediaUrls": [media[".jpg"]],
                "mediaType": "image", "callbackUrl": callback,
                "platformConfig": {"bluesky": {"altText": "a generated test picture"},
                                   "mastodon": {"altText": "a generated test picture"}}})
            self._collect(r, posts, "image post")
            r = self.call("POST", "/posts", json={
                "accountIds": [accounts["tiktok"], accounts["youtube"]],
                "text": "A short clip published by chat33", "mediaUrls": [media[".mp4"]],
                "mediaType": "video", "callbackUrl": callback,
                "platformConfig": {
                    "tiktok": {"privacyLevel": "SELF_ONLY"},
                    "youtube": {"title": "chat33 demo clip", "privacyStatus": "unlisted",
                                "selfDeclaredMadeForKids": False},
                }})
            self._collect(r, posts, "video post")
            steps.done()

            steps.step("scheduling a post 4 s ahead")
            due = datetime.now(UTC) + timedelta(seconds=4)
            r = self.call("POST", "/posts", json={
                "accountIds": [accounts["x"]], "text": f"Scheduled by chat33 for {due:%H:%M:%S}",
                "scheduledAt": due.isoformat(), "callbackUrl": callback})
            scheduled = self._collect(r, posts, "scheduled")
            steps.done()

            steps.step("posting a 3-part thread on X")
            r = self.call("POST", "/posts", json={
                "accountIds": [accounts["x"]], "text": "A thread from chat33 (1/3)",
                "thread": [{"text": "Threads are replies on X (2/3)"},
                           {"text": "and separate posts elsewhere (3/3)"}],
                "callbackUrl": callback})
            thread_ids = self._collect(r, posts, "thread")
            steps.done()

            steps.step("dry-running an invalid post")
            r = self.call("POST", "/posts/validate", json={
                "accountIds": [accounts["instagram"], accounts["youtube"],
                               accounts["x"]],
                "text": "x" * 300})
            report = r.json() if r.status_code == 200 else {}
            self.expect(r.status_code == 200 and report.get("valid") is False,
                        f"the dry run should find the post invalid: {r.status_code} {r.text}")
            self.report = report
            steps.done()

            steps.step("posting into an injected sandbox failure")
            httpx.post(f"{sandbox_url}/facebook/_sandbox/faults", json={
                "method": "POST", "path": r"/feed$", "status": 500, "count": 1,
                "body": {"error": {"message": "An unknown error occurred", "type":
                                   "OAuthException", "code": 1, "is_transient": True,
                                   "fbtrace_id": "demo"}}})
            r = self.call("POST", "/posts", json={
                "accountIds": [accounts["facebook"]],
                "text": "This one meets a transient failure first", "callbackUrl": callback})
            retried = self._collect(r, posts, "retried")
            steps.done()

            steps.step("waiting for the worker")
            final = self.wait_terminal(list(posts), timeout=60,
                                       settled=steps.counter("published", len(posts)))
            steps.done()

            steps.step("waiting for the webhooks")
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not all(
                    self.receiver.for_post(pid) for pid, post in final.items()
                    if post.get("status") in ("PUBLISHED", "FAILED")):
                time.sleep(0.2)
            steps.done()

        # --- judge and show --------------------------------------------------------------
        for post_id, post in final.items():
            kind = posts[post_id]
            logs = self.call("GET", f"/posts/{post_id}/logs").json().get("logs", [])
            attempts = sum(1 for e in logs if e.get("event") == "attempt_started") or (
                post.get("retryCount", 0) + 1)
            hooks = self.receiver.for_post(post_id)
            verified = bool(hooks) and all(h["verified"] for h in hooks)
            self.rows.append({"id": post_id, "kind": kind, "platform": post.get("platform"),
                              "status": post.get("status"),
                              "url": post.get("externalPostUrl") or "",
                              "attempts": attempts, "webhook": verified,
                              "error": post.get("errorMessage")})
            self.expect(post.get("status") == "PUBLISHED",
                        f"{kind} on {post.get('platform')} ended {post.get('status')}: "
                        f"{post.get('errorMessage')}")
            self.expect(verified, f"no verified webhook for {kind} on {post.get('platform')}")
        for post_id in retried:
            self.expect(any(r["attempts"] >= 2 for r in self.rows if r["id"] == post_id),
                        "the post into the injected failure should have been retried")
        for post_id in scheduled:
            published_at = final[post_id].get("publishedAt")
            if published_at:
                at = datetime.fromisoformat(published_at.replace("Z", "+00:00"))
                self.delay = (at - due).total_seconds()
                self.expect(self.delay >= 0, f"published {-self.delay:.1f} s before its time")
        self.expect(len(thread_ids) == 3, "the thread should be three posts")
        self.elapsed = time.monotonic() - started
        return 0 if not self.problems else 1

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self.procs):
                return False
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.api}/readyz", timeout=2).status_code == 200:
                    return True
            time.sleep(0.2)
        return False

    def _collect(self, response: httpx.Response, posts: dict[str, str], kind: str) -> list[str]:
        if not self.expect(response.status_code == 201,
                           f"creating the {kind}: {response.status_code} {response.text}"):
            return []
        ids = [p["id"] for p in response.json()["posts"]]
        for post_id in ids:
            posts[post_id] = kind
        return ids

    def show(self) -> None:
        from rich import box
        from rich.table import Table

        narrow = self.console.width < 120  # a log (80 columns) or a small terminal
        table = Table(title="chat33 demo", box=box.SIMPLE_HEAD, show_edge=False,
                      pad_edge=False, collapse_padding=True)
        for col in ("post", "platform", "status", "external URL", "tries", "webhook"):
            # URLs have no spaces to wrap at: folded, so a narrow log keeps them whole
            table.add_column(col, overflow="fold" if col == "external URL" else "ellipsis")
        for row in self.rows:
            status = row["status"]
            colour = "green" if status == "PUBLISHED" else "red"
            url = row["url"]
            if narrow:  # x.com/... is still a link to paste, in two lines instead of four
                url = re.sub(r"^https?://(www\.)?", "", url)
            table.add_row(row["kind"], row["platform"], f"[{colour}]{status}[/{colour}]",
                          url or (row["error"] or "")[:60], str(row["attempts"]),
                          "verified" if row["webhook"] else "[red]missing[/red]")
        self.console.print(table)
        if getattr(self, "report", None):
            self.console.print("dry run of an invalid post (POST /posts/validate):")
            for result in self.report.get("results", []):
                for err in result.get("errors", []):
                    self.console.print(f"  {result.get('platform'):>9}  {err.get('path')}: "
                                       f"{err.get('message')}")
        if hasattr(self, "delay"):
            self.console.print(f"scheduled post published {self.delay:.2f} s after scheduledAt")
        if hasattr(self, "elapsed"):
            self.console.print(f"done in {self.elapsed:.1f} s")


@click.command("demo")
@click.option("--keep-running", is_flag=True,
              help="Leave the API and worker up afterwards and print how to try them "
                   "(Ctrl-C or SIGTERM stops them and removes the demo's folder).")
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help="Port of the demo's API (default: a free one).")
def demo_command(keep_running: bool, port: int | None) -> None:
    """Publish sample posts to every platform through the sandboxes and show what happened.

    Runs on a temporary SQLite database with the REST API and a worker as real processes;
    exits 0 only if every expected outcome happened.
    """
    from rich.console import Console

    console = Console(stderr=True)  # not a terminal: 80 columns (or $COLUMNS)
    workdir = Path(tempfile.mkdtemp(prefix="chat33-demo-"))
    console.print(f"chat33 demo: working in {workdir}", markup=False, highlight=False)
    stack = contextlib.ExitStack()
    demo = Demo(workdir, console, stack, keep_running, port)
    code = 1
    stopped: int | None = None

    def stop(signum: int, frame: Any) -> None:
        raise Stopped(signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        with stack:
            code = demo.run()
            demo.show()
            if keep_running and code == 0:
                _keep_running(demo, console)
    except Stopped as exc:
        stopped = exc.signum
        if code != 0:  # stopped before the demo was over
            code = 128 + exc.signum
        console.print(f"chat33 demo: stopped by {signal.Signals(exc.signum).name}")
    except DemoFailed as exc:
        console.print(f"[red]demo failed: {exc}[/red]")
        for name in ("api", "worker"):
            tail = demo.log_tail(name)
            if tail:
                console.print(f"--- {name} log ---\n{tail}")
    finally:
        # a second signal must not cut the clean-up short
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)
        demo.stop_all()
        if code == 0 or stopped is not None:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            for problem in demo.problems:
                console.print(f"[red]✗ {problem}[/red]")
            console.print(f"logs kept in {workdir}")
    sys.exit(code)


def _keep_running(demo: Demo, console: Any) -> None:
    key = demo.http.headers["x-api-key"]
    console.print(f"\nWeb app: {demo.api}/app   sign in as {DEMO_EMAIL} with password "
                  f"{demo.password}\n"
                  f"API: {demo.api}/api/v1   key: {key}\n"
                  f"  curl -s -H 'x-api-key: {key}' {demo.api}/api/v1/accounts\n"
                  f"  curl -s -H 'x-api-key: {key}' '{demo.api}/api/v1/posts?limit=5'\n"
                  "Ctrl-C (or SIGTERM) stops the API and the worker.", markup=False,
                  highlight=False, soft_wrap=True)
    while all(p.poll() is None for p in demo.procs):
        time.sleep(0.5)
