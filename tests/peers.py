"""A media server that misbehaves on purpose, over raw sockets on loopback.

Paths (each takes ``?every=SECONDS``, the pace of a trickle, and ``?for=SECONDS``, how
long a trickle goes on before the answer is finished properly, so a client without a
deadline ends up waiting that long rather than forever):

* ``/trickle-headers``: the status line, then a header one byte at a time;
* ``/silent``: reads the request and sends nothing;
* ``/trickle-body``: complete headers (a 1 MB Content-Length), then the body a byte at a
  time;
* ``/hangup``: headers for 100,000 bytes, 1,000 of them, then an orderly close (FIN);
* ``/reset``: the same, then a reset (RST) instead of a close;
* ``/reset-at-once``: a reset as soon as the request is read.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qs, urlsplit

_JPEG_START = b"\xff\xd8\xff\xe0"


class MisbehavingPeer:
    """Serves the paths above on 127.0.0.1 until :meth:`stop`; ``url`` is its origin."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        #: connections accepted so far
        self.accepted = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(5)
        self._listener.close()
        with self._lock:
            for conn in list(self._open):
                conn.close()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._open.add(conn)
                self.accepted += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            self._answer(conn)
        except OSError:
            pass  # the client gave up: that is what these paths are for
        finally:
            with self._lock:
                self._open.discard(conn)
            conn.close()

    def _answer(self, conn: socket.socket) -> None:
        request = b""
        while b"\r\n\r\n" not in request:
            data = conn.recv(4096)
            if not data:
                return
            request += data
        target = request.split(b" ", 2)[1].decode()
        parts = urlsplit(target)
        args = {k: float(v[0]) for k, v in parse_qs(parts.query).items()}
        every, lasting = args.get("every", 0.5), args.get("for", 20.0)
        path = parts.path
        if path == "/trickle-headers":
            conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            self._trickle(conn, every, lasting)
            conn.sendall(b"\r\nContent-Length: 4\r\nContent-Type: image/jpeg\r\n\r\n"
                         + _JPEG_START)
        elif path == "/silent":
            self._stopping.wait(lasting)
        elif path == "/trickle-body":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\n"
                         b"Content-Length: 1000000\r\n\r\n" + _JPEG_START)
            self._trickle(conn, every, lasting)
        elif path in ("/hangup", "/reset"):
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\n"
                         b"Content-Length: 100000\r\n\r\n" + _JPEG_START + b"x" * 996)
            time.sleep(0.05)
            if path == "/reset":
                _reset(conn)
        elif path == "/reset-at-once":
            _reset(conn)
        else:
            conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")

    def _trickle(self, conn: socket.socket, every: float, lasting: float) -> None:
        end = time.monotonic() + lasting
        while time.monotonic() < end and not self._stopping.wait(every):
            conn.sendall(b"x")


def _reset(conn: socket.socket) -> None:
    """Close with RST: a zero linger timeout discards the connection at once."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


@contextmanager
def misbehaving_peer() -> Iterator[MisbehavingPeer]:
    peer = MisbehavingPeer()
    try:
        yield peer
    finally:
        peer.stop()
