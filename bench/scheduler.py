"""Scheduler benchmark: worker throughput next to a bare claim loop, and publish delay.

    .venv/bin/python bench/scheduler.py [--posts 2000] [--postgres URL] [--procs 1,4,8]
                                        [--skip-throughput] [--skip-delay]

For SQLite (a temporary file) and PostgreSQL (``CHAT33_TEST_POSTGRES_URL`` or
``--postgres``; a fresh schema per run), with 1, 4 and 8 processes:

* **bare claim loop**: processes that claim due posts with the worker's own claim query
  (leased, in the worker's batch size, without the checkpoint and account reads) and
  mark each PUBLISHED in its own transaction with the worker's finishing statement:
  the database's ceiling for what the worker must do at least;
* **worker**: ``chat33 worker --concurrency 4`` processes publishing every post through
  the zero-latency ``instant`` platform (in process, at no cost): everything the worker
  does itself (claims, attempts, logs, final states with their outbox check), nothing
  the platform does. Its ratio to the bare loop is the worker's efficiency (target:
  at least 0.5);
* **worker + HTTP**: the same with the ``echo`` platform, over real HTTP to its sandbox
  (a separate process, on the same 2 CPUs): a checkpoint and a request per post, the
  cost of talking to a platform at all.

Processes are started and idle before the posts are inserted (one transaction); the
clock runs from the first claim (the first ``attempt_started`` log) to the last
``published_at``, both stamped by the database's writers: the rate of publishing, not
how soon an idle process notices work (a worker polls SQLite every 0.5 s, the bare loop
every 5 ms; the delay table below measures waking up). Then the delay from
``scheduledAt`` to the start of the publish (the ``attempt_started`` log) for 1,000
posts due evenly over 10 s, with one worker process: p50 and p99.

Prints a table; not a test.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from chat33_core import testplatform  # noqa: E402
from chat33_core.config import Settings  # noqa: E402
from chat33_core.models import Credentials, Organization, Post, new_id, utcnow  # noqa: E402
from chat33_core.scheduling.worker import PREFETCH  # noqa: E402
from chat33_core.service import Chat33  # noqa: E402
from chat33_core.store import tables as t  # noqa: E402

LOGS = Path(tempfile.mkdtemp(prefix="chat33-bench-"))
SECRET = "bench-secret-key-0123456789abcdef"

SANDBOX = """
import sys
from werkzeug.serving import WSGIRequestHandler, make_server
from chat33_core.testplatform import EchoSandbox

class Quiet(WSGIRequestHandler):
    def log_request(self, *a, **k):
        pass

server = make_server("127.0.0.1", 0, EchoSandbox(), threaded=True, request_handler=Quiet)
print(server.port, flush=True)
server.serve_forever()
"""

BARE = """
import sys, time
import attrs
from chat33_core.models import PostStatus, utcnow
from chat33_core.store import Store
from chat33_core.scheduling.queue import Queue

store = Store(sys.argv[1])
queue = Queue(store, "bare-" + sys.argv[2], lease_s=60)
batch = int(sys.argv[3])
print("ready", flush=True)
full = False
while True:
    # the worker's claim (same batch size, no due-check read while a backlog lasts) without
    # the reads only publishing needs (checkpoints, accounts)
    claims = queue.claim(batch, check_due=not full, details=False)
    full = len(claims) == batch
    if not claims:
        time.sleep(0.005)
        continue
    for claim in claims:
        # one transaction per post, with the worker's own lease-checked finishing statement
        now = utcnow()
        done = attrs.evolve(claim.post, status=PostStatus.PUBLISHED, published_at=now,
                            lease_owner=None, lease_expires_at=None)
        queue.finish(done, now)
"""


def new_database(kind: str, pg_url: str | None, tmp: Path) -> tuple[str, str | None]:
    if kind == "sqlite":
        return f"sqlite:///{tmp / (secrets.token_hex(4) + '.db')}", None
    assert pg_url
    schema = "bench_" + secrets.token_hex(4)
    engine = sa.create_engine(pg_url)
    with engine.begin() as c:
        c.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    sep = "&" if "?" in pg_url else "?"
    return f"{pg_url}{sep}options=-csearch_path%3D{schema}", schema


def drop_schema(pg_url: str, schema: str) -> None:
    engine = sa.create_engine(pg_url)
    with engine.begin() as c:
        c.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


def setup(url: str, sandbox_url: str, tmp: Path, platform: str = "echo"
          ) -> tuple[Chat33, str, str, dict[str, str]]:
    env = {"CHAT33_DATABASE_URL": url, "CHAT33_SECRET_KEY": SECRET,
           "CHAT33_MEDIA_DIR": str(tmp / "media"), "CHAT33_ECHO_API_BASE": sandbox_url,
           "CHAT33_LOAD_PLUGINS": "none"}
    core = Chat33(Settings.from_env(env), load_plugins=False)
    core.host.register(testplatform, name="echo")
    core.store.migrate()
    org = core.store.add_org(Organization.new("bench-" + secrets.token_hex(3)))
    account = core.add_account(org.id, platform, "Bench", credentials=Credentials(
        access_token="bench", refresh_token="bench-rt"))
    return core, org.id, account.id, env


def add_posts(core: Chat33, org_id: str, account_id: str, n: int,
              due: list | None = None, platform: str = "echo") -> None:
    now = utcnow()
    core.store.add_posts([Post(
        id=new_id("post"), org_id=org_id, account_id=account_id, platform=platform,
        account_name="Bench", created_by="bench", text=f"bench {i}",
        scheduled_at=due[i] if due else None, next_attempt_at=due[i] if due else None,
        created_at=now, updated_at=now) for i in range(n)])


def published(core: Chat33) -> int:
    with core.store.read() as c:
        return int(c.execute(sa.select(sa.func.count()).select_from(t.posts).where(
            t.posts.c.status == "PUBLISHED")).scalar_one())


def wait_ready(procs: list[subprocess.Popen[str]], marker: str) -> None:
    for p in procs:
        stream = p.stdout
        assert stream is not None
        while True:
            line = stream.readline()
            if not line:
                raise RuntimeError("a process died before it was ready")
            if marker in line:
                break


def spawn(kind: str, n: int, env: dict[str, str], url: str, concurrency: int = 4
          ) -> list[subprocess.Popen[str]]:
    full = {**os.environ, **env, "PYTHONPATH": str(ROOT / "src")}
    procs = []
    for i in range(n):
        if kind == "bare":
            # the worker's claim batch: concurrency + max(concurrency, PREFETCH)
            batch = concurrency + max(concurrency, PREFETCH)
            cmd = [sys.executable, "-c", BARE, url, str(i), str(batch)]
            procs.append(subprocess.Popen(cmd, env=full, stdout=subprocess.PIPE, text=True))
        else:
            cmd = [sys.executable, "-c", "from chat33_core.cli import main; main()",
                   "worker", "--concurrency", str(concurrency),
                   "--plugin", "chat33_core.testplatform", "--log-level", "INFO"]
            log = LOGS / f"worker-{secrets.token_hex(3)}.log"
            procs.append(subprocess.Popen(cmd, env=full, stderr=log.open("w"), text=True,
                                          stdout=subprocess.DEVNULL))
            procs[-1].log = log  # type: ignore[attr-defined]
    if kind == "bare":
        wait_ready(procs, "ready")
    else:
        # a worker logs "started" once it is ready (stderr goes to a file: a pipe nobody
        # reads would fill and block the worker)
        for p in procs:
            while "started" not in p.log.read_text():  # type: ignore[attr-defined]
                if p.poll() is not None:
                    raise RuntimeError(p.log.read_text())  # type: ignore[attr-defined]
                time.sleep(0.05)
    return procs


def stop(procs: list[subprocess.Popen[str]]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def throughput(kind: str, engine: str, n_procs: int, n_posts: int, pg_url: str | None,
               sandbox_url: str, tmp: Path) -> float:
    """Posts/s of ``kind``: ``bare``, ``worker`` (instant platform), ``http`` (echo)."""
    platform = "echo" if kind == "http" else "instant"
    url, schema = new_database(engine, pg_url, tmp)
    core, org_id, account_id, env = setup(url, sandbox_url, tmp, platform)
    procs = spawn(kind, n_procs, env, url)
    try:
        add_posts(core, org_id, account_id, n_posts, platform=platform)
        while published(core) < n_posts:
            time.sleep(0.01)
        with core.store.read() as c:
            first = c.execute(sa.select(sa.func.min(t.post_logs.c.created_at)).where(
                t.post_logs.c.event == "attempt_started")).scalar_one()
            last = c.execute(sa.select(sa.func.max(t.posts.c.published_at))).scalar_one()
        elapsed = (last - first).total_seconds()
    finally:
        stop(procs)
        core.store.dispose()
        if schema and pg_url:
            drop_schema(pg_url, schema)
    return n_posts / elapsed


def delays(engine: str, pg_url: str | None, sandbox_url: str, tmp: Path,
           n_posts: int = 1000, spread_s: float = 10.0, concurrency: int = 8
           ) -> tuple[float, float]:
    url, schema = new_database(engine, pg_url, tmp)
    core, org_id, account_id, env = setup(url, sandbox_url, tmp)
    procs = spawn("worker", 1, env, url, concurrency=concurrency)
    try:
        first = utcnow() + timedelta(seconds=2)
        due = [first + timedelta(seconds=spread_s * i / n_posts) for i in range(n_posts)]
        add_posts(core, org_id, account_id, n_posts, due)
        while published(core) < n_posts:
            time.sleep(0.05)
        with core.store.read() as c:
            rows = c.execute(sa.select(t.posts.c.scheduled_at, t.post_logs.c.created_at)
                             .join(t.post_logs, t.post_logs.c.post_id == t.posts.c.id)
                             .where(t.post_logs.c.event == "attempt_started")).all()
        waits = sorted((started - scheduled).total_seconds() for scheduled, started in rows)
    finally:
        stop(procs)
        core.store.dispose()
        if schema and pg_url:
            drop_schema(pg_url, schema)
    p50 = statistics.median(waits)
    p99 = waits[min(len(waits) - 1, int(len(waits) * 0.99))]
    return p50, p99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=2000)
    parser.add_argument("--postgres", default=os.environ.get("CHAT33_TEST_POSTGRES_URL"))
    parser.add_argument("--procs", default="1,4,8")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-delay", action="store_true")
    args = parser.parse_args()
    engines = ["sqlite"] + (["postgres"] if args.postgres else [])
    counts = [int(x) for x in args.procs.split(",")]
    sandbox = subprocess.Popen([sys.executable, "-c", SANDBOX], stdout=subprocess.PIPE,
                               text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert sandbox.stdout is not None
    sandbox_url = f"http://127.0.0.1:{sandbox.stdout.readline().strip()}"
    rows = []
    try:
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            for engine in engines if not args.skip_throughput else []:
                for n in counts:
                    bare, work, http = (throughput(kind, engine, n, args.posts,
                                                   args.postgres, sandbox_url, tmp)
                                        for kind in ("bare", "worker", "http"))
                    rows.append((engine, n, bare, work, http))
                    print(f"  {engine} x{n}: bare {bare:.0f}/s, worker {work:.0f}/s, "
                          f"worker + HTTP {http:.0f}/s", file=sys.stderr)
            delay_rows = [(engine, *delays(engine, args.postgres, sandbox_url, tmp))
                          for engine in (engines if not args.skip_delay else [])]
    finally:
        sandbox.terminate()
        sandbox.wait()
    print(f"\nThroughput, {args.posts} posts (posts/s; worker = 4 threads per process; "
          "ratios to the bare claim loop)\n")
    print("| engine | processes | bare claim loop | worker (instant) | ratio "
          "| worker + HTTP (echo) | ratio |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for engine, n, bare, work, http in rows:
        print(f"| {engine} | {n} | {bare:.0f} | {work:.0f} | {work / bare:.2f} "
              f"| {http:.0f} | {http / bare:.2f} |")
    print("\nDelay from scheduledAt to publish start, 1,000 posts due over 10 s, one worker "
          "process with 8 threads\n")
    print("| engine | p50 | p99 |")
    print("| --- | ---: | ---: |")
    for engine, p50, p99 in delay_rows:
        print(f"| {engine} | {p50 * 1000:.0f} ms | {p99 * 1000:.0f} ms |")


if __name__ == "__main__":
    main()
