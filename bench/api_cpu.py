"""CPU per request of the REST API in one process, without a server, next to a bare Flask
endpoint: what ``bench/api.py`` measures, minus the server, the client and the network.

    .venv/bin/python bench/api_cpu.py [--requests 1500] [--repeats 5] [--threads 1 4]

Each request is a WSGI call on a prepared environ (``app.wsgi_app``), as a server makes
it. Loads: ``bare`` (Flask, a constant JSON answer), ``GET /posts?limit=50`` and
``POST /posts`` (one X post), on the same database ``bench/api.py`` prepares (SQLite
unless ``CHAT33_BENCH_DATABASE_URL``). With one thread the table shows the code's own
cost; with several (one process, as a gthread worker runs them) it shows what threads
handing the GIL over to each other add. Process CPU time, the best of ``--repeats``;
the ratio is bare's CPU per request over the endpoint's (comparable to the throughput
ratio of ``bench/api.py`` when CPU is what limits both). Prints a table.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import api  # bench/api.py: the same apps and the same data


def _environ(method: str, path: str, query: str, headers: dict[str, str],
             body: bytes) -> Callable[[], dict[str, Any]]:
    base: dict[str, Any] = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr, "wsgi.multithread": True,
        "wsgi.multiprocess": True, "wsgi.run_once": False, "HTTP_HOST": "127.0.0.1:8000",
        "REMOTE_ADDR": "127.0.0.1",
        **{"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()}}
    if body:
        base.update({"CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body))})

    def make() -> dict[str, Any]:
        return {**base, "wsgi.input": io.BytesIO(body)}

    return make


def _call(app: Any, make: Callable[[], dict[str, Any]]) -> None:
    status: list[str] = []

    def start(s: str, headers: Any, exc_info: Any = None) -> None:
        status.append(s)

    body = app.wsgi_app(make(), start)
    try:
        b"".join(body)
    finally:
        getattr(body, "close", lambda: None)()
    if not status or status[0][0] != "2":
        raise RuntimeError(f"the bench request failed: {status}")


def cpu_per_request(app: Any, make: Callable[[], dict[str, Any]], *, requests: int,
                    threads: int, repeats: int) -> float:
    """The best of ``repeats``: process CPU seconds per request, ``threads`` threads each
    making ``requests`` requests."""
    for _ in range(200):
        _call(app, make)
    best = float("inf")
    for _ in range(repeats):
        def run() -> None:
            for _ in range(requests):
                _call(app, make)

        workers = [threading.Thread(target=run) for _ in range(threads)]
        start = time.process_time()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        best = min(best, (time.process_time() - start) / (requests * threads))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1500, help="per thread and repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args()
    logging.getLogger("chat33.http").disabled = True

    with tempfile.TemporaryDirectory() as tmp, api.database(tmp) as db_url:
        media = str(Path(tmp) / "media")
        key, writer_key, account_id = api.prepare(db_url, media)
        bare, chat33 = api.bare_app(), api.chat33_app(db_url, media)
        post = json.dumps({"accountIds": [account_id], "text": "bench"}).encode()
        loads = [
            ("bare GET (constant JSON)", bare,
             _environ("GET", "/api/v1/posts", "", {}, b"")),
            ("GET /posts?limit=50", chat33,
             _environ("GET", "/api/v1/posts", "limit=50", {"x-api-key": key}, b"")),
            ("POST /posts", chat33,
             _environ("POST", "/api/v1/posts", "", {"x-api-key": writer_key}, post)),
        ]
        table = {(name, n): cpu_per_request(app, make, requests=args.requests, threads=n,
                                            repeats=args.repeats)
                 for n in args.threads for name, app, make in loads}
        chat33.extensions["chat33"].store.dispose()

    engine = db_url.split(":", 1)[0].split("+", 1)[0]
    print(f"\nCPU per request in one process (WSGI calls, no server), {engine}, best of "
          f"{args.repeats} x {args.requests} requests per thread\n")
    labels = {n: f"{n} thread{'s' * (n > 1)} us" for n in args.threads}
    print(f"| {'endpoint':<26} |" + "".join(f" {labels[n]} | vs bare |" for n in args.threads))
    print(f"|{'-' * 28}|" + "".join(f"{'-' * (len(labels[n]) + 2)}|{'-' * 9}|"
                                    for n in args.threads))
    for name, *_ in loads:
        cells = ""
        for n in args.threads:
            us = table[(name, n)] * 1e6
            ratio = table[("bare GET (constant JSON)", n)] / table[(name, n)]
            cells += f" {us:>{len(labels[n])}.0f} | {ratio:>7.2f} |"
        print(f"| {name:<26} |{cells}")


if __name__ == "__main__":
    main()
