"""``chat33 serve``: the REST API under gunicorn (the Flask dev server only with ``--dev``).

Registered as a top-level ``chat33`` command through the ``chat33.cli`` entry point.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

import click

if TYPE_CHECKING:
    from chat33_core.config import Settings

DEFAULT_PORT = 8000


def gunicorn_limits() -> dict[str, int]:
    """gunicorn answers requests over its limits itself, in plain text; its limits are
    set above the app's (:data:`chat33_flask.routing.MAX_URL_BYTES`...), so the app
    answers those in the error shape, and gunicorn only what is past them (a request line
    over 8,190 bytes, its most; headers over twice the app's) or malformed HTTP (400)."""
    from .routing import MAX_HEADER_BYTES, MAX_HEADERS

    return {"limit_request_line": 8190, "limit_request_fields": 2 * MAX_HEADERS,
            "limit_request_field_size": 2 * MAX_HEADER_BYTES}


def _refuse(message: str) -> NoReturn:
    click.echo(f"chat33: error: {message}", err=True)
    sys.exit(2)


class GunicornServer:
    """gunicorn run programmatically (``gunicorn.app.base.BaseApplication``): no config
    file, no command line of its own; the app is built in each worker after the fork."""

    def __new__(cls, factory: Callable[[], Any], options: Mapping[str, Any]) -> Any:
        from gunicorn.app.base import BaseApplication

        class _App(BaseApplication):  # type: ignore[misc]
            def load_config(self) -> None:
                for key, value in options.items():
                    if key in self.cfg.settings and value is not None:
                        self.cfg.set(key, value)

            def load(self) -> Any:
                return factory()

        return _App()


def _say(log_format: str, message: str, level: int = logging.INFO) -> None:
    """A line of ``serve``'s own on stderr: a log record in JSON, as it is in text."""
    if log_format == "json":
        logging.getLogger("chat33.serve").log(level, "%s", message.removeprefix("chat33: "))
    else:
        click.echo(message, err=True)


def _gunicorn_logger(fmt: str) -> type:
    """gunicorn's logger class, its own lines (workers starting, timeouts) in ``fmt``."""
    from gunicorn.glogging import Logger

    from chat33_core import logs

    class _Logger(Logger):  # type: ignore[misc]
        def setup(self, cfg: Any) -> None:
            super().setup(cfg)
            for handler in self.error_log.handlers:
                handler.setFormatter(logs.formatter(fmt))

    return _Logger


def _child_exit(server: Any, worker: Any) -> None:
    from chat33_core import metrics

    metrics.process_exited(worker.pid)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free port).")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 256),
              help="gunicorn worker processes.")
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 256),
              help="Threads per worker (gthread).")
@click.option("--dev", is_flag=True, help="Use Flask's development server instead of "
              "gunicorn (one process, for development only).")
def serve(host: str, port: int, workers: int, threads: int, dev: bool) -> None:
    """Serve the REST API (/api/v1, /media, /healthz, /readyz, /metrics).

    Logs are one JSON object a line unless CHAT33_LOG_FORMAT=text.

    Media URLs start with CHAT33_PUBLIC_BASE_URL, or, when it is unset, with the
    address the API listens on.
    """
    from chat33_core import logs, metrics
    from chat33_core.config import Settings
    from chat33_core.errors import ConfigurationError
    from chat33_core.mediastore import MediaStore
    from chat33_core.service import Chat33

    from .app import create_app

    try:
        settings = Settings.from_env()
        log_format = logs.log_format(settings.env)
        settings.require_secret_key()
        MediaStore.from_settings(settings).check()
    except ConfigurationError as exc:
        _refuse(exc.message)
    # fail before forking when the database is unreachable or unmigrated
    probe = Chat33(settings, load_plugins=False)
    try:
        probe.store.require_schema()
    except ConfigurationError as exc:
        _refuse(exc.message)
    except Exception as exc:
        # a StoreUnavailable says what the driver said in .reason (its message is generic)
        reason = str(getattr(exc, "reason", "") or exc)
        _refuse("the database is not reachable: " + " ".join(reason.split()))
    finally:
        probe.store.dispose()
    try:
        # bound here, not by gunicorn, so that the port is known (--port 0) before the
        # media URLs are decided, and a port in use is one clear line
        listener = socket.create_server((host, port), backlog=2048, family=(
            socket.AF_INET6 if ":" in host else socket.AF_INET))
    except OSError as exc:
        _refuse(f"cannot listen on {host}:{port}: "
                f"{os.strerror(exc.errno) if exc.errno else exc}")
    port = listener.getsockname()[1]
    logs.configure(log_format, settings.env.get("CHAT33_LOG_LEVEL") or "INFO")
    settings = _public_base_url(settings, host, port, log_format)
    _say(log_format, f"chat33: serving the API on http://{_url_host(host)}:{port}, media URLs at "
               f"{settings.media_base_url}/media/ "
               f"({'Flask dev server' if dev else f'gunicorn, {workers} workers'})")
    if dev:
        from werkzeug.serving import make_server

        server = make_server(host, port, create_app({"CHAT33_SETTINGS": settings}),
                             threaded=True, fd=listener.fileno())
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
        return
    # the workers' metrics meet in a directory of this run (prometheus_client's
    # multiprocess mode): made before the first fork, removed when the server stops
    metrics_dir = tempfile.mkdtemp(prefix="chat33-metrics-")
    metrics.enable_multiprocess(metrics_dir)
    try:
        GunicornServer(lambda: create_app({"CHAT33_SETTINGS": settings}), {
            "bind": f"fd://{listener.fileno()}", "workers": workers, "threads": threads,
            "worker_class": "gthread" if threads > 1 else "sync", "accesslog": None,
            "errorlog": "-", "loglevel": "warning", "timeout": 120, "graceful_timeout": 10,
            "proc_name": "chat33-api", "logger_class": _gunicorn_logger(log_format),
            "child_exit": _child_exit, **gunicorn_limits(),
        }).run()
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


_LOOPBACK = {"localhost", "127.0.0.1", "::1", "0.0.0.0", "::", ""}


def _url_host(host: str) -> str:
    """The host part of a URL that reaches this machine's ``host`` listener."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _public_base_url(settings: Settings, host: str, port: int, log_format: str = "text"
                     ) -> Settings:
    """``settings`` with media URLs that reach this server: derived from the address it
    listens on when CHAT33_PUBLIC_BASE_URL is unset; when it is set and points at this
    machine on another port, a warning (it may be a proxy in front, so it is kept)."""
    if not settings.public_base_url:
        return settings.with_(public_base_url=f"http://{_url_host(host)}:{port}")
    parts = urlsplit(settings.public_base_url)
    try:
        given_port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        given_port = None
    here = (parts.hostname or "") in _LOOPBACK | {host} or (
        parts.hostname or "").startswith("127.")
    if here and given_port != port:
        _say(log_format, f"chat33: warning: CHAT33_PUBLIC_BASE_URL is "
             f"{settings.public_base_url} but the API listens on {host}:{port}: platforms "
             f"will fetch media from {settings.media_base_url}/media/ (unset it to use this "
             "server's address)", logging.WARNING)
    return settings


__all__ = ["GunicornServer", "serve"]
