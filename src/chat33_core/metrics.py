"""chat33's Prometheus metrics: every name defined here, once, and how they are scraped.

The API records HTTP requests and created posts; the worker records publish attempts,
their duration and their delay from ``scheduledAt``, webhook deliveries, token refreshes
and platform limit waits. The queue depth is read from the database at scrape time.

Under gunicorn the API runs in several processes: ``chat33 serve`` gives them one fresh
directory (:func:`enable_multiprocess`, prometheus_client's multiprocess mode) and every
scrape adds up the files of all of them (:func:`exposition`). A ``chat33 worker`` is one
process and serves its own (``--metrics-port``).

Every metric has labels, so that no value is made before :func:`enable_multiprocess` has
chosen where values live (prometheus_client makes a labelled metric's values at the first
``labels()``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

if TYPE_CHECKING:
    from .store import Store

log = logging.getLogger(__name__)

#: prometheus_client's setting for the multiprocess directory
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST

#: seconds: API latency (1 ms to 10 s)
_HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: seconds: a publish (a text post to minutes of video upload)
_PUBLISH_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)
#: seconds past ``scheduledAt`` (the target is well under 1 s)
_DELAY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

HTTP_REQUEST_DURATION = Histogram(
    "chat33_http_request_duration_seconds",
    "API requests by route (the URL rule, 'unmatched' for none), method and status; its "
    "_count is the number of requests",
    ["route", "method", "status"], buckets=_HTTP_BUCKETS)
POSTS_CREATED = Counter(
    "chat33_posts_created", "Posts created (each thread item and each account counts one)",
    ["platform"])
PUBLISH_ATTEMPTS = Counter(
    "chat33_publish_attempts",
    "Publish attempts by outcome: published, failed, retry, deferred, lost, stalled",
    ["platform", "outcome"])
PUBLISH_DURATION = Histogram(
    "chat33_publish_duration_seconds", "How long one publish attempt took", ["platform"],
    buckets=_PUBLISH_BUCKETS)
PUBLISH_DELAY = Histogram(
    "chat33_publish_delay_seconds",
    "From scheduledAt (or creation, for a post to publish now) to the start of its first "
    "attempt", ["platform"], buckets=_DELAY_BUCKETS)
WEBHOOK_DELIVERIES = Counter(
    "chat33_webhook_deliveries",
    "Webhook delivery attempts by outcome: delivered, retry, failed (for good)", ["outcome"])
TOKEN_REFRESHES = Counter(
    "chat33_token_refreshes",
    "Token refreshes by outcome: refreshed, reused (another process refreshed first), "
    "reconnect (the platform refused), transient, failed", ["platform", "outcome"])
PLATFORM_LIMIT_WAITS = Counter(
    "chat33_platform_limit_waits",
    "Posts that waited for a platform limit (a rate window, a quota, a daily cap) to open",
    ["platform"])
#: the gauge made at scrape time from the database (see :class:`QueueDepth`)
QUEUE_POSTS = "chat33_queue_posts"

#: every metric name chat33 exposes, as PromQL sees them (a histogram's series end in
#: _bucket, _sum and _count, a counter's in _total)
NAMES: dict[str, str] = {
    "chat33_http_request_duration_seconds": "histogram",
    "chat33_posts_created_total": "counter",
    "chat33_publish_attempts_total": "counter",
    "chat33_publish_duration_seconds": "histogram",
    "chat33_publish_delay_seconds": "histogram",
    "chat33_webhook_deliveries_total": "counter",
    "chat33_token_refreshes_total": "counter",
    "chat33_platform_limit_waits_total": "counter",
    QUEUE_POSTS: "gauge",
}


def series_names() -> set[str]:
    """Every series name a query may use (``..._bucket``, ``..._sum``, ``..._count`` of
    the histograms besides the names themselves)."""
    names = set(NAMES)
    for name, kind in NAMES.items():
        if kind == "histogram":
            names |= {name + "_bucket", name + "_sum", name + "_count"}
    return names


# --- recording ------------------------------------------------------------------------------


def record_request(route: str, method: str, status: int, seconds: float) -> None:
    HTTP_REQUEST_DURATION.labels(route, method, str(status)).observe(seconds)


def record_posts_created(platforms: list[str]) -> None:
    for platform in platforms:
        POSTS_CREATED.labels(platform).inc()


def record_attempt(platform: str, outcome: str, seconds: float) -> None:
    PUBLISH_ATTEMPTS.labels(platform, outcome).inc()
    PUBLISH_DURATION.labels(platform).observe(seconds)


def record_delay(platform: str, due: datetime, started: datetime) -> None:
    """``started - due`` (naive datetimes are UTC), 0 when early."""
    if due.tzinfo is None:
        due = due.replace(tzinfo=UTC)
    if started.tzinfo is None:
        started = started.replace(tzinfo=UTC)
    PUBLISH_DELAY.labels(platform).observe(max(0.0, (started - due).total_seconds()))


def record_webhook(outcome: str) -> None:
    WEBHOOK_DELIVERIES.labels(outcome).inc()


def record_token_refresh(platform: str, outcome: str) -> None:
    TOKEN_REFRESHES.labels(platform, outcome).inc()


def record_limit_wait(platform: str) -> None:
    """A post waits for a platform limit shared by the deployment (counted once per wait)."""
    PLATFORM_LIMIT_WAITS.labels(platform).inc()


# --- scraping -------------------------------------------------------------------------------


def enable_multiprocess(directory: str | os.PathLike[str]) -> None:
    """Record into ``directory`` from now on, in this process and the processes it forks
    (it must be empty when the first of them starts, and shared by all of them only)."""
    os.environ[MULTIPROC_ENV] = os.fspath(directory)
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def process_exited(pid: int) -> None:
    """gunicorn's ``child_exit``: the files of a dead worker are kept (its counts stay in
    the totals); only the live-gauge files are dropped."""
    from prometheus_client import multiprocess

    if multiprocess_dir():
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


class QueueDepth:
    """``chat33_queue_posts{state="due"|"leased"}``, counted in the database per scrape.
    It is the deployment's whole queue: every process reports the same figure."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        from .errors import StoreUnavailable
        from .models import utcnow

        try:
            counts = self.store.queue_depth(utcnow())
        except StoreUnavailable as exc:  # the scrape still answers; the gap is the sign
            log.warning("queue depth not read: %s", exc.reason)
            return
        family = GaugeMetricFamily(QUEUE_POSTS, "Posts due now and not claimed (due), and "
                                   "posts leased by a worker (leased)", labels=["state"])
        for state in ("due", "leased"):
            family.add_metric([state], counts[state])
        yield family


class _Merged:
    """One registry's worth of collectors (the process's or all processes', and ``extra``)."""

    def __init__(self, *collectors: Any) -> None:
        self.collectors = collectors

    def collect(self) -> Iterator[Metric]:
        for collector in self.collectors:
            yield from collector.collect()


def registry(store: Store | None = None) -> CollectorRegistry:
    """What a scrape shows: all processes' metrics in multiprocess mode (else this
    process's), and the queue depth when ``store`` is given."""
    scrape = CollectorRegistry(auto_describe=False)
    collectors: list[Any] = []
    directory = multiprocess_dir()
    if directory:
        collectors.append(MultiProcessCollector(None, path=directory))  # type: ignore[no-untyped-call]
    else:
        collectors.append(REGISTRY)
    if store is not None:
        collectors.append(QueueDepth(store))
    scrape.register(_Merged(*collectors))
    return scrape


def exposition(store: Store | None = None) -> bytes:
    """The Prometheus text of one scrape."""
    return bytes(generate_latest(registry(store)))


def serve_metrics(port: int, host: str, store: Store | None = None
                  ) -> tuple[int, Callable[[], None]]:
    """Serve ``/metrics`` on ``host:port`` (0: a free port) in a daemon thread (``chat33
    worker --metrics-port``); returns the port and the function that stops it."""
    from prometheus_client import start_http_server

    server, thread = start_http_server(port, addr=host, registry=registry(store))

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(5)

    return int(server.server_port), stop


__all__ = [
    "CONTENT_TYPE",
    "NAMES",
    "enable_multiprocess",
    "exposition",
    "record_attempt",
    "record_delay",
    "record_limit_wait",
    "record_posts_created",
    "record_request",
    "record_token_refresh",
    "record_webhook",
    "registry",
    "series_names",
    "serve_metrics",
]
