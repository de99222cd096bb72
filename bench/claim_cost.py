"""What one claim costs as the backlog grows, before and after a change.

    .venv/bin/python bench/claim_cost.py [--before main] [--postgres URL]
                                         [--backlogs 1000,20000,50000] [--claims 15]
                                         [--limit 16]

For two source trees, ``--before`` (a git revision, its ``src/`` extracted to a temporary
directory) and this worktree's ``src/`` ("after"), and for each engine (SQLite on a
temporary file; PostgreSQL on a new database of the server of ``--postgres`` or
``CHAT33_TEST_POSTGRES_URL``, when given): the world of ``bench/scale.py`` (200
organizations, 2,000 channels; one post due now on every channel of the others), then
the first organization (100 channels) dumps a backlog of due posts, grown to each of
``--backlogs`` in turn. At each size ``Leases.claim_due`` runs ``--claims`` times with
``--limit``; after each claim the posts it took go back to the queue untimed, so every
claim sees the same backlog. It prints the median claim time per engine, tree and
backlog size, and the ratios: each size against the smallest, and before / after.

Each tree is measured in a process of its own (``--measure SRC``, which prints JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from datetime import timedelta
from io import BytesIO
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def measure(src: str, engine: str, server: str | None, backlogs: list[int], claims: int,
            limit: int) -> dict[str, float]:
    """Median seconds per claim for each backlog size, with the code of ``src``."""
    sys.path.insert(0, src)
    from chat33_core.store import leases  # the measured tree's, loaded before scale.py's

    sys.path.insert(0, str(ROOT / "bench"))
    import scale

    from chat33_core.models import utcnow
    from chat33_core.store import tables as t

    assert Path(leases.__file__ or "").is_relative_to(src), leases.__file__
    out: dict[str, float] = {}

    def run(url: str) -> None:
        world = scale.build(url, 200, 2000, big_channels=100)
        try:
            now = utcnow()
            others = [o for o in world.orgs if o != world.big]
            scale.add(world, [p for o in others for p in scale.posts_for(
                world, o, [now - timedelta(seconds=5)] * len(world.orgs[o]), "other")])
            have = 0
            for size in backlogs:
                scale.add(world, scale.posts_for(
                    world, world.big, [now - timedelta(seconds=60)] * (size - have), "dump"))
                have = size
                store = world.core.store
                times = []
                for _ in range(claims):
                    at = utcnow()
                    t0 = time.perf_counter()
                    got = store.claim_due("bench", limit, at, at + timedelta(minutes=5))
                    times.append(time.perf_counter() - t0)
                    assert got, "nothing claimed"
                    ids = [i for cl in got for i in cl.ids]
                    with store.begin() as c:  # back to the queue, untimed
                        c.execute(t.post_logs.delete().where(t.post_logs.c.post_id.in_(ids)))
                        c.execute(t.posts.update().where(t.posts.c.id.in_(ids)).values(
                            status="QUEUED", lease_owner=None, lease_expires_at=None))
                out[str(size)] = statistics.median(times)
                print(f"  {engine} {size}: {out[str(size)] * 1000:.1f} ms", file=sys.stderr)
        finally:
            world.core.store.engine.dispose()

    if engine == "postgresql":
        assert server
        with scale.database(server) as url:
            run(url)
    else:
        with tempfile.TemporaryDirectory() as d:
            run(f"sqlite:///{d}/claim.db")
    return out


def extract(rev: str, into: str) -> str:
    """``rev``'s ``src/`` under ``into``; returns its path."""
    data = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "src"], check=True,
                          capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return str(Path(into) / "src")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--before", default="main")
    ap.add_argument("--postgres", default=os.environ.get("CHAT33_TEST_POSTGRES_URL"))
    ap.add_argument("--backlogs", default="1000,20000,50000")
    ap.add_argument("--claims", type=int, default=15)
    ap.add_argument("--limit", type=int, default=16)
    ap.add_argument("--measure", metavar="SRC", help=argparse.SUPPRESS)
    ap.add_argument("--engine", default="sqlite", help=argparse.SUPPRESS)
    args = ap.parse_args()
    backlogs = [int(b) for b in args.backlogs.split(",")]
    if args.measure:
        print(json.dumps(measure(args.measure, args.engine, args.postgres, backlogs,
                                 args.claims, args.limit)))
        return
    engines = ["sqlite"] + (["postgresql"] if args.postgres else [])
    results: dict[tuple[str, str], dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"before": extract(args.before, tmp), "after": str(ROOT / "src")}
        for engine in engines:
            for name, src in trees.items():
                print(f"{engine}, {name} ({src}):", file=sys.stderr)
                cmd = [sys.executable, __file__, "--measure", src, "--engine", engine,
                       "--backlogs", args.backlogs, "--claims", str(args.claims),
                       "--limit", str(args.limit)]
                if args.postgres:
                    cmd += ["--postgres", args.postgres]
                done = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True)
                results[engine, name] = json.loads(done.stdout)
    report(engines, backlogs, results, args)


def report(engines: list[str], backlogs: list[int],
           results: dict[tuple[str, str], dict[str, float]], args: Any) -> None:
    print(f"median claim time (limit {args.limit}, {args.claims} claims per size; "
          f"200 orgs, 2,000 channels, backlog of one org over 100 channels; "
          f"before = {args.before})")
    print(f"{'engine':<11}{'backlog':>8}{'before ms':>11}{'x smallest':>11}"
          f"{'after ms':>10}{'x smallest':>11}{'before/after':>13}")
    for engine in engines:
        before, after = results[engine, "before"], results[engine, "after"]
        b0, a0 = before[str(backlogs[0])], after[str(backlogs[0])]
        for size in backlogs:
            b, a = before[str(size)], after[str(size)]
            print(f"{engine:<11}{size:>8}{b * 1000:>11.1f}{b / b0:>11.2f}"
                  f"{a * 1000:>10.1f}{a / a0:>11.2f}{b / a:>13.2f}")


if __name__ == "__main__":
    main()
