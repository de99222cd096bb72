"""``chat33 worker``: the scheduler/publisher loop as a command."""

from __future__ import annotations

import importlib
import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from .. import logs
from ..config import Settings
from ..errors import ConfigurationError

if TYPE_CHECKING:
    from ..service import Chat33

log = logging.getLogger(__name__)


def _load(spec: str) -> object:
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(f"--plugin {spec}: cannot import {module_name}: {exc}") from None
    if not attr:
        return module
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ConfigurationError(f"--plugin {spec}: {module_name} has no {attr!r}") from None


def _serve_metrics(host: str, port: int | None, core: Chat33) -> Callable[[], None]:
    """The worker's ``/metrics`` (with the queue depth), or nothing without a port."""
    if port is None:
        return lambda: None
    from .. import metrics

    try:
        port, stop = metrics.serve_metrics(port, host, core.store)
    except OSError as exc:
        raise ConfigurationError(f"--metrics-port: cannot listen on {host}:{port}: "
                                 f"{os.strerror(exc.errno) if exc.errno else exc}") from None
    log.info("metrics on http://%s:%d/metrics", host, port)
    return stop


@click.command()
@click.option("--once", is_flag=True,
              help="Publish what is due now (and deliver due webhooks), then exit.")
@click.option("--concurrency", type=click.IntRange(1, 256), default=4, show_default=True,
              help="Posts published at the same time by this process.")
@click.option("--plugin", "plugins", multiple=True, metavar="MODULE[:ATTR]",
              help="Also register this plugin object (a platform that is not installed as "
                   "a distribution, e.g. chat33_core.testplatform). Repeatable.")
@click.option("--id", "worker_id", default=None,
              help="This worker's name in leases and logs (default host:pid:random).")
@click.option("--log-level", default="INFO", show_default=True, envvar="CHAT33_LOG_LEVEL",
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
              help="INFO: one line per publish attempt. DEBUG adds every HTTP request "
                   "(httpx, httpcore). Also read from CHAT33_LOG_LEVEL.")
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=None,
              help="Serve this worker's Prometheus metrics on http://HOST:PORT/metrics "
                   "(0: a free port, logged at start).")
@click.option("--metrics-host", default="127.0.0.1", show_default=True,
              help="The address --metrics-port listens on (0.0.0.0: every interface).")
def worker(once: bool, concurrency: int, plugins: tuple[str, ...], worker_id: str | None,
           log_level: str, metrics_port: int | None, metrics_host: str) -> None:
    """Publish due posts and deliver webhooks, on time and exactly once.

    Run as many as you like, on any number of machines sharing one PostgreSQL database
    (or several processes on one SQLite file). SIGTERM stops it gracefully: no new
    claims, in-flight posts finish or are handed back, exit code 0.
    """
    from ..service import Chat33
    from ..store import Store
    from ..store.core import make_engine
    from .worker import Worker

    settings = Settings.from_env()
    log_format = logs.log_format(settings.env)
    settings.require_secret_key()
    logs.configure(log_format, log_level)
    # room for every publishing thread, the loop, the heartbeat and the webhook threads
    engine = make_engine(settings.database_url, pool_size=concurrency + 4, max_overflow=4)
    core = Chat33(settings, store=Store(engine))
    # an unreachable or uninitialized database is one line and a non-zero exit, before
    # any claim (chat33's command group reports the error)
    core.store.require_schema()
    for spec in plugins:
        core.host.register(_load(spec), name=spec)
    runner = Worker(core, concurrency=concurrency, worker_id=worker_id, once=once)
    runner.install_signal_handlers()
    stop_metrics = _serve_metrics(metrics_host, metrics_port, core)
    code = runner.run()
    stop_metrics()
    core.store.dispose()
    sys.stderr.flush()
    if any(t.is_alive() and not t.daemon for t in threading.enumerate()
           if t is not threading.main_thread()):
        # a publish stuck past the grace period: its lease is released; do not hang
        os._exit(code)
    sys.exit(code)
