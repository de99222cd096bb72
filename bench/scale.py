"""Scale benchmark: many organizations on PostgreSQL, one of them dumping a backlog.

    .venv/bin/python bench/scale.py [--postgres URL] [--orgs 200] [--accounts 2000]
                                    [--posts 50000] [--dump 20000] [--minutes 5]
                                    [--big-channels 100] [--workers 4]
                                    [--baseline-posts 5000]

On a database of its own (created on the server of ``--postgres`` or
``CHAT33_TEST_POSTGRES_URL``, dropped at the end): ``--orgs`` organizations with
``--accounts`` channels of the zero-latency ``instant`` platform between them, and
``--workers`` ``chat33 worker --concurrency 4`` processes. ``--posts`` posts are due over
``--minutes`` minutes: ``--posts`` less ``--dump`` of them scheduled evenly over the run
for every organization but the first, and, half way through, the first organization (an
agency with ``--big-channels`` channels; the others share the rest) dumps ``--dump``
posts due at once. A channel publishes one post at a time, so the dump's own pace is
bounded by its channels.

It prints:

* throughput (published posts per second of the run);
* the delay from ``scheduledAt`` to the start of the publish (the ``attempt_started``
  log), p50 / p99 / max, for the big organization and for everyone else, and for
  everyone else while the dump is being worked off;
* the database's committed transactions per published post (``pg_stat_database``);
* each worker process's peak RSS (``VmHWM``);
* duplicates (posts started more than once; there must be none);
* a baseline from the same run: ``--baseline-posts`` posts due at once over every
  channel, published by the bare claim loop of ``bench/scheduler.py`` (the worker's own
  claim query and finishing statement, nothing else) and then by the workers; the ratio
  worker / bare loop is what the worker's own work costs.

``scale_run`` is also what ``tests/worker/test_scale.py`` runs, at a few thousand posts.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from scheduler import spawn, stop  # noqa: E402

from chat33_core.config import Settings  # noqa: E402
from chat33_core.models import Credentials, Post, new_id, utcnow  # noqa: E402
from chat33_core.service import Chat33  # noqa: E402
from chat33_core.store import tables as t  # noqa: E402

SECRET = "bench-secret-key-0123456789abcdef"
PLATFORM = "instant"


@attrs.define
class World:
    core: Chat33
    url: str
    env: dict[str, str]
    #: organization id -> its channels' ids; the first organization is the big one
    orgs: dict[str, list[str]]

    @property
    def big(self) -> str:
        return next(iter(self.orgs))


@contextmanager
def database(server_url: str) -> Iterator[str]:
    """A new, empty database on the server (so that its statistics are the run's own)."""
    name = "chat33_scale_" + secrets.token_hex(4)
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def build(url: str, n_orgs: int, n_accounts: int, big_channels: int | None = None) -> World:
    """``n_orgs`` organizations with ``n_accounts`` channels between them: the first (the
    big one) has ``big_channels`` (by default its share), the others share the rest."""
    env = {"CHAT33_DATABASE_URL": url, "CHAT33_SECRET_KEY": SECRET,
           "CHAT33_LOAD_PLUGINS": "none", "CHAT33_MEDIA_DIR": "/tmp/chat33-scale-media"}
    core = Chat33(Settings.from_env(env), load_plugins=False)
    core.store.migrate()
    now = utcnow()
    enc = core.vault.encrypt_credentials(Credentials(access_token="bench"))
    orgs: dict[str, list[str]] = {}
    org_rows, account_rows = [], []
    for i in range(n_orgs):
        org_id = new_id("org")
        org_rows.append({"id": org_id, "name": f"scale-{i:04d}", "created_at": now})
        orgs[org_id] = []
    ids = list(orgs)
    big = big_channels if big_channels is not None else n_accounts // n_orgs
    for i in range(n_accounts):
        org_id = ids[0] if i < big else ids[1 + (i - big) % (n_orgs - 1)]
        account_id = new_id("acc")
        orgs[org_id].append(account_id)
        account_rows.append({"id": account_id, "org_id": org_id, "platform": PLATFORM,
                             "name": f"channel {i}", "is_active": True,
                             "needs_reconnect": False, "metadata": {},
                             "credentials_enc": enc, "created_at": now})
    with core.store.begin() as c:
        c.execute(t.organizations.insert(), org_rows)
        c.execute(t.accounts.insert(), account_rows)
    return World(core=core, url=url, env=env, orgs=orgs)


def posts_for(world: World, org_id: str, due: list[datetime], tag: str) -> list[Post]:
    """Posts of ``org_id`` due at ``due``, round-robin over its channels."""
    channels = world.orgs[org_id]
    now = utcnow()
    return [Post(id=new_id("post"), org_id=org_id, account_id=channels[i % len(channels)],
                 platform=PLATFORM, account_name="bench", created_by="bench",
                 text=f"{tag} {i}", scheduled_at=at, next_attempt_at=at, created_at=now,
                 updated_at=now) for i, at in enumerate(due)]


def add(world: World, posts: list[Post], chunk: int = 5000) -> None:
    for i in range(0, len(posts), chunk):
        world.core.store.add_posts(posts[i:i + chunk])


def counts(world: World) -> dict[str, int]:
    with world.core.store.read() as c:
        return dict(c.execute(sa.select(t.posts.c.status, sa.func.count())
                              .group_by(t.posts.c.status)).all())


def wait_published(world: World, total: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while counts(world).get("PUBLISHED", 0) < total:
        if time.monotonic() > deadline:
            raise RuntimeError(f"not all published in {timeout_s:.0f} s: {counts(world)}")
        time.sleep(0.5)


def starts(world: World) -> list[tuple[int, str, str, datetime, datetime]]:
    """Every ``attempt_started`` log: (log id, post id, org id, scheduledAt, started),
    in the order the database wrote them."""
    p, lg = t.posts, t.post_logs
    with world.core.store.read() as c:
        return [tuple(r) for r in c.execute(
            sa.select(lg.c.id, p.c.id, p.c.org_id, p.c.scheduled_at, lg.c.created_at)
            .join(p, p.c.id == lg.c.post_id).where(lg.c.event == "attempt_started")
            .order_by(lg.c.id)).all()]


def commits(world: World) -> int:
    with world.core.store.read() as c:
        return int(c.execute(sa.text(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        )).scalar_one())


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@attrs.frozen
class ScaleResult:
    started: list[tuple[int, str, str, datetime, datetime]]
    big: str
    dump_at: datetime
    dump_ids: frozenset[str]
    run_s: float
    published: int
    commits: int
    rss_mb: list[float]

    def delays(self, which: str) -> list[float]:
        """Seconds from scheduledAt to the first start: ``big``, ``others`` or
        ``others_during_dump`` (due between the dump and its last start)."""
        first: dict[str, tuple[str, datetime, datetime]] = {}
        for _, post_id, org_id, scheduled, started in self.started:
            first.setdefault(post_id, (org_id, scheduled, started))
        dump_end = max((s for _, pid, _, _, s in self.started if pid in self.dump_ids),
                       default=self.dump_at)
        out = []
        for org_id, scheduled, started in first.values():
            if which == "big" and org_id != self.big:
                continue
            if which.startswith("others") and org_id == self.big:
                continue
            if which == "others_during_dump" and not self.dump_at <= scheduled <= dump_end:
                continue
            out.append((started - scheduled).total_seconds())
        return sorted(out)

    @property
    def duplicates(self) -> int:
        seen: dict[str, int] = {}
        for _, post_id, *_ in self.started:
            seen[post_id] = seen.get(post_id, 0) + 1
        return sum(1 for n in seen.values() if n > 1)


def scale_run(world: World, *, posts: int, dump: int, run_s: float, workers: int,
              timeout_s: float, stats: bool = True) -> ScaleResult:
    """The run: the steady posts scheduled in advance, the workers started, the dump
    added half way, everything published."""
    others = [o for o in world.orgs if o != world.big]
    steady = posts - dump
    procs = spawn("worker", workers, world.env, world.url)
    try:
        # the first post is due once all are inserted (about a second per 2,000 here)
        start = utcnow() + timedelta(seconds=3 + steady / 1000)
        by_org: dict[str, list[datetime]] = {o: [] for o in others}
        for i in range(steady):
            by_org[others[i % len(others)]].append(
                start + timedelta(seconds=run_s * i / steady))
        add(world, [p for o, due in by_org.items()
                    for p in posts_for(world, o, due, "steady")])
        if utcnow() >= start:
            raise RuntimeError("inserting the scheduled posts took longer than planned")
        before = commits(world) if stats else 0
        dump_at = start + timedelta(seconds=run_s / 2)
        backlog = posts_for(world, world.big, [dump_at] * dump, "dump")
        while utcnow() < dump_at:
            time.sleep(0.01)
        add(world, backlog)  # at once: one transaction per 5,000
        wait_published(world, posts, timeout_s)
        rss = [peak_rss_mb(p.pid) for p in procs]
    finally:
        stop(procs)
    done = commits(world) if stats else 0
    started = starts(world)
    last = max(s for *_, s in started)
    return ScaleResult(started=started, big=world.big, dump_at=dump_at,
                       dump_ids=frozenset(p.id for p in backlog),
                       run_s=(last - start).total_seconds(), published=posts,
                       commits=done - before, rss_mb=rss)


def baseline(world: World, posts: int, workers: int) -> tuple[float, float]:
    """Posts/s of the bare claim loop and of the workers, each on ``posts`` posts due
    now over every channel."""
    rates = []
    for kind in ("bare", "worker"):
        with world.core.store.begin() as c:
            c.execute(t.post_logs.delete())
            c.execute(t.posts.delete())
        procs = spawn(kind, workers, world.env, world.url)
        try:
            now = utcnow()
            ids = list(world.orgs)
            by_org: dict[str, list[datetime]] = {o: [] for o in ids}
            for i in range(posts):
                by_org[ids[i % len(ids)]].append(now)
            add(world, [p for o, due in by_org.items()
                        for p in posts_for(world, o, due, kind)])
            t0 = time.monotonic()
            wait_published(world, posts, 900)
            rates.append(posts / (time.monotonic() - t0))
        finally:
            stop(procs)
    return rates[0], rates[1]


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(len(values) * q))] if values else float("nan")


def row(name: str, values: list[float]) -> str:
    if not values:
        return f"| {name} | 0 | - | - | - |"
    return (f"| {name} | {len(values)} | {statistics.median(values) * 1000:.0f} ms "
            f"| {pct(values, 0.99) * 1000:.0f} ms | {max(values) * 1000:.0f} ms |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default=os.environ.get("CHAT33_TEST_POSTGRES_URL"))
    parser.add_argument("--orgs", type=int, default=200)
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--posts", type=int, default=50_000)
    parser.add_argument("--dump", type=int, default=20_000)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--big-channels", type=int, default=100,
                        help="channels of the organization that dumps (it publishes one "
                        "post per channel at a time)")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--baseline-posts", type=int, default=5_000)
    args = parser.parse_args()
    if not args.postgres:
        parser.error("PostgreSQL is needed: --postgres URL or CHAT33_TEST_POSTGRES_URL")
    with database(args.postgres) as url:
        world = build(url, args.orgs, args.accounts, args.big_channels)
        try:
            result = scale_run(world, posts=args.posts, dump=args.dump,
                               run_s=args.minutes * 60, workers=args.workers,
                               timeout_s=args.minutes * 60 + 1800)
            bare, worker = baseline(world, args.baseline_posts, args.workers)
        finally:
            world.core.store.dispose()
    report(args, result, bare, worker)


def report(args: Any, result: ScaleResult, bare: float, worker: float) -> None:
    print(f"\n{args.orgs} organizations, {args.accounts} channels, {args.posts} posts due over "
          f"{args.minutes:g} min ({args.dump} of them dumped at once by one organization half "
          f"way, over its {args.big_channels} channels), {args.workers} worker processes x 4 "
          "threads, PostgreSQL\n")
    print(f"throughput: {result.published / result.run_s:.0f} posts/s "
          f"({result.published} in {result.run_s:.0f} s)")
    print(f"transactions per published post: {result.commits / result.published:.2f}")
    print(f"duplicates: {result.duplicates}")
    print("peak RSS per worker process: "
          + ", ".join(f"{mb:.0f} MB" for mb in result.rss_mb) + "\n")
    print("| delay from scheduledAt to publish start | posts | p50 | p99 | max |")
    print("| --- | ---: | ---: | ---: | ---: |")
    print(row("big organization (the dump)", result.delays("big")))
    print(row("everyone else", result.delays("others")))
    print(row("everyone else, during the dump", result.delays("others_during_dump")))
    print(f"\nbaseline, {args.baseline_posts} posts due at once over every channel: bare "
          f"claim loop {bare:.0f} posts/s, workers {worker:.0f} posts/s, ratio "
          f"{worker / bare:.2f}")


if __name__ == "__main__":
    main()
