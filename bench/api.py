"""Throughput and tail latency of the REST API under gunicorn, next to a bare Flask endpoint.

    .venv/bin/python bench/api.py [--seconds 1.5] [--rounds 6] [--concurrency 8]
                                  [--workers 2] [--threads 4]

Two servers run under the same gunicorn settings on loopback:

* ``bare``: a Flask app whose one endpoint returns a constant JSON object (the ceiling);
* ``chat33`` for ``POST /posts`` (one X post, text only, API key auth, validation, rate
  limit counted in the store) and ``GET /posts?limit=50`` (a page of 50 of 300 posts;
  the POSTs go to another organization, so the listed one keeps its 300 posts).

The three loads take turns, ``--rounds`` times, so a neighbour's load on a shared machine
weighs on all of them alike. Each round opens its connections anew (in an unmeasured
half-second warm-up), and which gunicorn worker accepts each connection is chance: a 6/2
split leaves one worker saturated and the other half idle, and moves a round's rate by
10% or more. Many short rounds average over many splits; a few long ones do not.

The load comes from ``--concurrency`` client threads, each with one keep-alive
connection and a minimal HTTP client (far cheaper per request than the server's
cheapest endpoint, so the server, not the client, sets the rates). Client
and server share the machine's CPUs, so absolute numbers are modest; the ratios to the
bare endpoint are the point (floor: each at least 0.25). The database is a temporary
SQLite file unless ``CHAT33_BENCH_DATABASE_URL`` names another (e.g. PostgreSQL).
Prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

SECRET = "bench-secret-key-0123456789abcdef"
NO_LIMIT = (10**9, timedelta(hours=1))


def _settings(db_url: str, media: str) -> Any:
    from chat33_core.config import Settings

    return Settings.from_env({**os.environ, "CHAT33_DATABASE_URL": db_url,
                              "CHAT33_SECRET_KEY": SECRET, "CHAT33_MEDIA_DIR": media})


def bare_app() -> Any:
    from flask import Flask

    app = Flask("bare")

    @app.get("/api/v1/posts")
    def constant() -> Any:
        return {"items": [], "total": 0, "page": 1, "limit": 50, "hasMore": False}

    @app.get("/healthz")
    def healthz() -> Any:
        return {"status": "ok"}

    return app


def chat33_app(db_url: str, media: str) -> Any:
    from chat33_flask import create_app

    from chat33_core.service import Chat33

    core = Chat33(_settings(db_url, media), rate_limits={
        "posts.create": NO_LIMIT, "media.upload": NO_LIMIT, "api_keys.create": NO_LIMIT})
    return create_app({"CHAT33_CORE": core})


def run_server(kind: str, port: int, workers: int, threads: int, db_url: str,
               media: str) -> None:
    """The child process: one gunicorn, as ``chat33 serve`` runs it."""
    import logging

    from chat33_flask.cli import GunicornServer

    logging.getLogger("chat33.http").disabled = True  # the bench measures, it does not log
    factory = bare_app if kind == "bare" else (lambda: chat33_app(db_url, media))
    GunicornServer(factory, {
        "bind": f"127.0.0.1:{port}", "workers": workers, "threads": threads,
        "worker_class": "gthread" if threads > 1 else "sync", "accesslog": None,
        "loglevel": "warning", "keepalive": 30,
    }).run()


def prepare(db_url: str, media: str) -> tuple[str, str, str]:
    """A migrated database with an organization with an API key, an X account and 300
    posts (listed); a second organization with a key and an X account (posted to).
    Returns (reader's key, writer's key, writer's account id)."""
    from chat33_core.models import PostRequest
    from chat33_core.service import Chat33

    core = Chat33(_settings(db_url, media), rate_limits={"posts.create": NO_LIMIT})
    core.store.migrate()
    user = core.create_user("bench@example.com", "bench password", "Bench")
    _, key = core.create_api_key(user.org_id, user.id, "bench")
    account = core.add_account(user.org_id, "x", "Bench on X", username="bench")
    principal = core.authenticate_key(key)
    for i in range(300):
        core.create_posts(principal, PostRequest(account_ids=[account.id], text=f"seed {i}"))
    writer = core.create_user("writer@example.com", "bench password", "Bench writer")
    _, writer_key = core.create_api_key(writer.org_id, writer.id, "bench")
    writer_account = core.add_account(writer.org_id, "x", "Writer on X", username="writer")
    core.store.dispose()
    return key, writer_key, writer_account.id


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, kind: str, args: argparse.Namespace, db_url: str, media: str) -> None:
        self.port = _free_port()
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", kind, "--port", str(self.port),
             "--workers", str(args.workers), "--threads", str(args.threads),
             "--db", db_url, "--media", media])
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(self.base + "/healthz")
                return
            except httpx.TransportError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"{kind} server did not start") from None
                time.sleep(0.1)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


class _Connection:
    """A minimal HTTP/1.1 keep-alive client: one prepared request, sent again and again.

    The load generator shares the CPUs with the server, so it must cost far less per
    request than the cheapest endpoint, or it (not the server) sets the bare rate and
    flatters every ratio. httpx costs about as much per request as a bare Flask endpoint;
    this costs a fraction (a send, a recv, a header scan)."""

    def __init__(self, base: str, method: str, path: str, headers: dict[str, str],
                 body: Any) -> None:
        host, port = base.removeprefix("http://").split(":")
        self.address = (host, int(port))
        payload = b"" if body is None else json.dumps(body).encode()
        lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: keep-alive",
                 "Accept: application/json", *(f"{k}: {v}" for k, v in headers.items())]
        if body is not None:
            lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
        self.request = ("\r\n".join(lines) + "\r\n\r\n").encode() + payload
        self.sock: socket.socket | None = None
        self.buffer = b""

    def send(self) -> int:
        """One request and its whole response; returns the status."""
        if self.sock is None:
            self.sock = socket.create_connection(self.address)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.buffer = b""
        self.sock.sendall(self.request)
        while b"\r\n\r\n" not in self.buffer:
            self._read()
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = None
        close = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        if length is None:
            raise RuntimeError("the bench client needs Content-Length responses")
        self.buffer = rest
        while len(self.buffer) < length:
            self._read()
        self.buffer = self.buffer[length:]
        if close:
            self.close()
        return status

    def _read(self) -> None:
        assert self.sock is not None
        chunk = self.sock.recv(262144)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self.buffer += chunk

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def load(base: str, method: str, path: str, *, headers: dict[str, str], body: Any,
         seconds: float, concurrency: int) -> dict[str, Any]:
    """``concurrency`` keep-alive clients for ``seconds`` (after a short warm-up).
    Returns the sorted latencies and the error count."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    start_at = time.perf_counter() + 0.5
    stop_at = start_at + seconds

    def worker() -> None:
        nonlocal errors
        mine: list[float] = []
        bad = 0
        conn = _Connection(base, method, path, headers, body)
        try:
            while True:
                t0 = time.perf_counter()
                if t0 >= stop_at:
                    break
                status = conn.send()
                t1 = time.perf_counter()
                if t0 >= start_at:
                    mine.append(t1 - t0)
                    bad += status >= 400
        finally:
            conn.close()
        with lock:
            latencies.extend(mine)
            errors += bad

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"latencies": latencies, "errors": errors, "seconds": seconds}


def summary(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Rate and latency percentiles over all rounds of one endpoint."""
    latencies = sorted(x for r in runs for x in r["latencies"])
    seconds = sum(r["seconds"] for r in runs)
    n = len(latencies)
    return {"rps": n / seconds, "p50": latencies[n // 2] * 1000 if n else float("nan"),
            "p99": latencies[min(n - 1, int(n * 0.99))] * 1000 if n else float("nan"),
            "n": n, "errors": sum(r["errors"] for r in runs)}


@contextmanager
def database(tmp: str) -> Iterator[str]:
    """A SQLite file in ``tmp``, or a fresh schema in ``CHAT33_BENCH_DATABASE_URL``'s
    PostgreSQL database (dropped afterwards)."""
    url = os.environ.get("CHAT33_BENCH_DATABASE_URL")
    if not url:
        yield f"sqlite:///{Path(tmp)}/bench.db"
        return
    import secrets

    import sqlalchemy as sa

    schema = "bench_" + secrets.token_hex(4)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        sep = "&" if "?" in url else "?"
        yield f"{url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1.5, help="per endpoint and round")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--serve", choices=["bare", "chat33"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--media", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        run_server(args.serve, args.port, args.workers, args.threads, args.db, args.media)
        return

    with tempfile.TemporaryDirectory() as tmp, database(tmp) as db_url:
        media = str(Path(tmp) / "media")
        key, writer_key, account_id = prepare(db_url, media)
        common = {"seconds": args.seconds, "concurrency": args.concurrency}
        # both servers stay up and the three loads take turns for --rounds rounds: a
        # neighbour's load on the shared machine then weighs on every endpoint alike
        bare_server = Server("bare", args, db_url, media)
        chat33_server = Server("chat33", args, db_url, media)
        headers = {"x-api-key": key}
        plan = [
            ("bare GET (constant JSON)", bare_server, "GET", "/api/v1/posts", {}, None),
            ("GET /posts?limit=50", chat33_server, "GET", "/api/v1/posts?limit=50", headers,
             None),
            ("POST /posts", chat33_server, "POST", "/api/v1/posts", {"x-api-key": writer_key},
             {"accountIds": [account_id], "text": "bench"}),
        ]
        raw: dict[str, list[dict[str, Any]]] = {name: [] for name, *_ in plan}
        try:
            for _ in range(args.rounds):
                for name, server, method, path, hdrs, body in plan:
                    raw[name].append(load(server.base, method, path, headers=hdrs, body=body,
                                          **common))
        finally:
            bare_server.stop()
            chat33_server.stop()
        runs = {name: summary(r) for name, r in raw.items()}

    bare = runs["bare GET (constant JSON)"]["rps"]
    engine = db_url.split(":", 1)[0].split("+", 1)[0]
    print(f"\ngunicorn gthread, {args.workers} workers x {args.threads} threads, "
          f"{args.concurrency} keep-alive clients, {args.rounds} rounds of {args.seconds:g} s "
          f"per endpoint, {engine}, "
          f"{os.cpu_count()} CPUs (client and server share them)\n")
    print(f"| {'endpoint':<26} | {'req/s':>8} | {'p50 ms':>7} | {'p99 ms':>7} | "
          f"{'vs bare':>7} | {'errors':>6} |")
    print(f"|{'-' * 28}|{'-' * 10}|{'-' * 9}|{'-' * 9}|{'-' * 9}|{'-' * 8}|")
    for name, r in runs.items():
        print(f"| {name:<26} | {r['rps']:>8.0f} | {r['p50']:>7.1f} | {r['p99']:>7.1f} | "
              f"{r['rps'] / bare:>7.2f} | {r['errors']:>6.0f} |")


if __name__ == "__main__":
    main()
