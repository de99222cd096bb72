"""``chat33 serve``: the REST API under gunicorn (the Flask dev server only with ``--dev``).

Registered as a top-level ``chat33`` command through the ``chat33.cli`` entry point.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

import click

DEFAULT_PORT = 8000


def _refuse(message: str) -> None:
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


def _configure_logging() -> None:
    # one JSON line per request (chat33.http) on stderr, nothing else added around it
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    http = logging.getLogger("chat33.http")
    http.addHandler(handler)
    http.setLevel(logging.INFO)
    http.propagate = False


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on.")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 256),
              help="gunicorn worker processes.")
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 256),
              help="Threads per worker (gthread).")
@click.option("--dev", is_flag=True, help="Use Flask's development server instead of "
              "gunicorn (one process, for development only).")
def serve(host: str, port: int, workers: int, threads: int, dev: bool) -> None:
    """Serve the REST API (/api/v1, /media, /healthz, /readyz)."""
    if not os.environ.get("CHAT33_SECRET_KEY"):
        _refuse("CHAT33_SECRET_KEY is not set: the API refuses to serve sessions or store "
                "credentials without it (generate one with `python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))'`)")
    from chat33_core.config import Settings
    from chat33_core.service import Chat33

    from .app import create_app

    settings = Settings.from_env()
    # fail before forking when the database is unreachable or unmigrated
    probe = Chat33(settings, load_plugins=False)
    try:
        probe.store.ping()
    except Exception as exc:
        _refuse(f"the database is not reachable: {exc}")
    finally:
        probe.store.dispose()
    _configure_logging()
    click.echo(f"chat33: serving the API on http://{host}:{port} "
               f"({'Flask dev server' if dev else f'gunicorn, {workers} workers'})", err=True)
    if dev:
        create_app({"CHAT33_SETTINGS": settings}).run(host=host, port=port, debug=False,
                                                       use_reloader=False, threaded=True)
        return
    GunicornServer(lambda: create_app({"CHAT33_SETTINGS": Settings.from_env()}), {
        "bind": f"{host}:{port}", "workers": workers, "threads": threads,
        "worker_class": "gthread" if threads > 1 else "sync", "accesslog": None,
        "errorlog": "-", "loglevel": "warning", "timeout": 120, "graceful_timeout": 10,
        "proc_name": "chat33-api",
    }).run()


__all__ = ["GunicornServer", "serve"]
