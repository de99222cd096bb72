"""Building blocks for platform sandboxes: WSGI apps that imitate a platform's API.

Every sandbox built on :class:`SandboxApp` also answers a small control API under
``/_sandbox/`` so tests and the demo can steer it over HTTP:

* ``POST /_sandbox/faults`` ``{"method": "POST", "path": "regex", "status": 503,
  "body": {...}, "headers": {...}, "count": 1, "after_body": false}`` — the next
  ``count`` matching requests answer with that status. With ``after_body`` true the
  request is handled for real first and the fault replaces the answer (an unknown
  outcome: the platform acted, the client never heard).
* ``GET /_sandbox/state`` — the sandbox's state as JSON (what it published);
* ``POST /_sandbox/reset`` — forget everything.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(data), status=status, headers=headers,
                    content_type="application/json")


def raw_header(request: Request, name: str) -> str | None:
    """A request header by its exact name, underscores included (``file_offset``).

    Served by :func:`serve`, the name is matched as sent (so ``File-Offset`` is not
    ``file_offset``); under a server that maps such headers into the environ itself,
    ``HTTP_FILE_OFFSET`` is the fallback."""
    raw = request.environ.get(RAW_HEADERS)
    if raw is not None:
        wanted = name.lower()
        return next((v for k, v in raw if k.lower() == wanted), None)
    value: str | None = request.environ.get("HTTP_" + name.upper().replace("-", "_"))
    return value


#: leading bytes → format name, for :func:`sniff`
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"), (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"), (b"BM", "BMP"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"),
)


def sniff(head: bytes) -> str | None:
    """The file format by its first bytes (16 are enough), as a sandbox checks an upload
    without decoding it: ``JPEG``, ``PNG``, ``GIF``, ``BMP``, ``TIFF``, ``WEBP``, ``MP4``
    (any ISO media file: an ``ftyp`` box first) or ``None``."""
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[4:8] == b"ftyp":
        return "MP4"
    return None


class Fault:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.method = (spec.get("method") or "").upper() or None
        self.path = re.compile(spec.get("path") or ".*")
        self.status = int(spec.get("status", 503))
        self.body = spec.get("body", {"error": "injected fault"})
        self.headers = {str(k): str(v) for k, v in (spec.get("headers") or {}).items()}
        self.count = int(spec.get("count", 1))
        self.after_body = bool(spec.get("after_body", False))

    def matches(self, request: Request) -> bool:
        if self.method and request.method != self.method:
            return False
        return bool(self.path.search(request.path))

    def response(self) -> Response:
        body = self.body if isinstance(self.body, str) else json.dumps(self.body)
        return Response(body, status=self.status, headers=self.headers,
                        content_type="application/json")


class SandboxApp:
    """A WSGI app with werkzeug routing, thread-safe state and fault injection.

    Subclasses call :meth:`route` in ``__init__`` and keep their state under
    ``self.lock``; :meth:`state` returns what ``GET /_sandbox/state`` shows.
    """

    name = "sandbox"

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.url_map = Map(strict_slashes=False)
        self._handlers: dict[str, Callable[..., Response]] = {}
        self._faults: list[Fault] = []
        self.requests: list[tuple[str, str]] = []
        self.route("/_sandbox/faults", self._add_fault, methods=["POST"])
        self.route("/_sandbox/state", lambda req: json_response(self.state()), methods=["GET"])
        self.route("/_sandbox/reset", self._reset, methods=["POST"])

    def configurable(self, **defaults: Any) -> None:
        """Declare the knobs ``POST /_sandbox/config`` may set. ``self.config`` starts
        from ``defaults`` (a subclass's ``reset`` restores them); unknown keys are
        refused with a 400 that lists the known ones."""
        self.defaults: dict[str, Any] = dict(defaults)
        self.config: dict[str, Any] = dict(defaults)
        self.route("/_sandbox/config", self._set_config, methods=["POST"])

    def _set_config(self, request: Request) -> Response:
        body = request.get_json(force=True) or {}
        unknown = sorted(set(body) - set(self.defaults))
        if unknown:
            return json_response({"error": f"unknown option(s): {', '.join(unknown)}",
                                  "options": sorted(self.defaults)}, 400)
        with self.lock:
            self.config.update(body)
            return json_response(dict(self.config))

    def route(self, rule: str, handler: Callable[..., Response], methods: list[str]) -> None:
        endpoint = f"{handler.__name__}:{rule}:{','.join(methods)}"
        self.url_map.add(Rule(rule, endpoint=endpoint, methods=methods))
        self._handlers[endpoint] = handler

    # --- control API -----------------------------------------------------------

    def add_fault(self, **spec: Any) -> None:
        with self.lock:
            self._faults.append(Fault(spec))

    def _add_fault(self, request: Request) -> Response:
        self.add_fault(**(request.get_json(force=True) or {}))
        return json_response({"ok": True}, 201)

    def _reset(self, request: Request) -> Response:
        with self.lock:
            self._faults.clear()
            self.requests.clear()
            self.reset()
        return json_response({"ok": True})

    def reset(self) -> None:
        """Forget the platform state (override)."""

    def state(self) -> dict[str, Any]:
        """What the sandbox holds, for tests and the demo (override)."""
        return {}

    def _take_fault(self, request: Request) -> Fault | None:
        if request.path.startswith("/_sandbox/"):
            return None
        with self.lock:
            for fault in self._faults:
                if fault.count > 0 and fault.matches(request):
                    fault.count -= 1
                    if fault.count == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    # --- WSGI --------------------------------------------------------------------

    def dispatch(self, request: Request) -> Response:
        adapter = self.url_map.bind_to_environ(request.environ)
        try:
            endpoint, args = adapter.match()
        except NotFound:
            return self.not_found(request)
        except HTTPException as exc:
            return json_response({"error": exc.name}, exc.code or 400)
        return self._handlers[endpoint](request, **args)

    def not_found(self, request: Request) -> Response:
        return json_response({"error": "not found", "path": request.path}, 404)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        with self.lock:
            self.requests.append((request.method, request.path))
        fault = self._take_fault(request)
        if fault is not None and not fault.after_body:
            response = fault.response()
        else:
            response = self.dispatch(request)
            if fault is not None:
                response = fault.response()
        return response(environ, start_response)


class PrefixDispatcher:
    """Serves several WSGI apps on one port, each under ``/<prefix>``."""

    def __init__(self, apps: dict[str, Callable[..., Any]]) -> None:
        self.apps = apps

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        prefix, _, rest = path.lstrip("/").partition("/")
        app = self.apps.get(prefix)
        if app is None:
            return json_response({"error": "no sandbox here", "sandboxes": sorted(self.apps)},
                                 404)(environ, start_response)
        environ = dict(environ)
        environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + "/" + prefix
        environ["PATH_INFO"] = "/" + rest
        return app(environ, start_response)


RAW_HEADERS = "chat33.raw_headers"


class KeepUnderscoreHeaders(WSGIRequestHandler):
    """werkzeug's server drops request headers whose names contain ``_`` (an anti-spoofing
    default). Meta's upload hosts take ``file_offset``, ``file_size`` and ``file_url``, so
    sandboxes are served by this handler, which keeps the headers exactly as sent under
    ``environ["chat33.raw_headers"]``; read them with :func:`raw_header`."""

    def make_environ(self) -> dict[str, Any]:
        environ: dict[str, Any] = super().make_environ()
        environ[RAW_HEADERS] = list(self.headers.items())
        return environ

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Quiet: sandboxes run inside tests and the demo."""


@contextmanager
def serve(app: Callable[..., Any], host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``app`` over real HTTP on loopback in a thread; yields its base URL."""
    server: BaseWSGIServer = make_server(host, port, app, threaded=True,
                                         request_handler=KeepUnderscoreHeaders)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,),
                              name=f"serve:{server.port}",
                              daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
