"""``chat33 sandbox``: every installed platform's sandbox served on one port (a path
prefix each), and the environment that points chat33 at them (also what the demo and
the web app's tests serve)."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import click

from .config import Settings
from .plugins import PluginHost
from .sandbox import PrefixDispatcher, serve


def sandbox_apps(host: PluginHost) -> dict[str, Callable[..., Any]]:
    apps = {}
    for platform in host:
        app = platform.sandbox()
        if app is not None:
            apps[platform.name] = app
    return apps


def sandbox_env_lines(host: PluginHost, base_url: str) -> dict[str, str]:
    """``CHAT33_<P>_API_BASE`` (and ``_TOKEN_URL``) pointing every plugin at the sandboxes,
    and the sandboxes' app credentials (``_CLIENT_ID``, ``_CLIENT_SECRET``) for the
    plugins that connect accounts by OAuth."""
    from .sandbox_oauth import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET

    env: dict[str, str] = {}
    for platform in host:
        if platform.sandbox() is None:
            continue
        prefix = platform.name.upper()
        env[f"CHAT33_{prefix}_API_BASE"] = f"{base_url}/{platform.name}"
        if platform.sandbox_token_path:
            env[f"CHAT33_{prefix}_TOKEN_URL"] = (
                f"{base_url}/{platform.name}{platform.sandbox_token_path}")
        if platform.supports_connect:
            env[f"CHAT33_{prefix}_CLIENT_ID"] = SANDBOX_CLIENT_ID
            env[f"CHAT33_{prefix}_CLIENT_SECRET"] = SANDBOX_CLIENT_SECRET
    return env


@contextlib.contextmanager
def serve_sandboxes(host: PluginHost, bind: str = "127.0.0.1", port: int = 0,
                    ) -> Iterator[tuple[str, dict[str, Any]]]:
    apps = sandbox_apps(host)
    with serve(PrefixDispatcher(apps), host=bind, port=port) as url:
        yield url, apps


@click.command("sandbox")
@click.option("--host", "bind", default="127.0.0.1", show_default=True)
@click.option("--port", default=8100, show_default=True, type=int)
@click.option("--print-env", is_flag=True,
              help="Only print the export lines for a sandbox on HOST:PORT, then exit.")
def sandbox_command(bind: str, port: int, print_env: bool) -> None:
    """Serve every installed platform's sandbox on one port (a path prefix each).

    Prints `export CHAT33_<PLATFORM>_API_BASE=...` lines on stdout, so
    `eval "$(chat33 sandbox --print-env)"` points a shell at a running sandbox.
    """
    host = PluginHost(Settings.from_env())
    host.load_entry_points()
    base = f"http://{bind}:{port}"
    lines = sandbox_env_lines(host, base)
    for key, value in lines.items():
        click.echo(f"export {key}={value}")
    if print_env:
        return
    sys.stdout.flush()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with serve_sandboxes(host, bind, port) as (url, apps):
        click.echo(f"sandboxes for {', '.join(sorted(apps))} on {url} (Ctrl-C to stop)",
                   err=True)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
