"""The transport rule of the plugin kit, against a real loopback server that drops the
connection before or after it has read the request."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Literal

import httpx
import pytest

from chat33_core.errors import TransientError, UnknownOutcome
from chat33_core.http import reaching, send

Mode = Literal["drop-before", "drop-after", "silent", "answer"]


class Server:
    """A TCP server that reads each request in full (headers and body) and then, by
    ``mode``: closes without reading (``drop-before``), closes without answering
    (``drop-after``), never answers (``silent``) or answers 500 (``answer``)."""

    def __init__(self, mode: Mode) -> None:
        self.mode = mode
        self.requests: list[bytes] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1/posts"
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if self.mode == "drop-before":
                # RST at once: the connection never carries a request
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
                conn.close()
                continue
            self.requests.append(read_request(conn))
            if self.mode == "drop-after":
                conn.close()
            elif self.mode == "silent":
                self.held.append(conn)
            else:
                conn.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n")
                conn.close()

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


def read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        body += conn.recv(65536)
    return head + b"\r\n\r\n" + body


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    srv = Server(request.param)
    yield srv
    srv.close()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=httpx.Timeout(2.0, read=0.5)) as http:
        yield http


def closed_port_url() -> str:
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/v1/posts"


@pytest.mark.parametrize("creates", [True, False])
def test_a_refused_connection_is_transient_even_for_a_creating_request(client, creates):
    with pytest.raises(TransientError) as caught:
        send(client, "POST", closed_port_url(), platform="Echo", what="create",
             creates=creates, json={"text": "hi"})
    assert caught.value.platform_code == "network"
    assert "could not reach Echo" in caught.value.message
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


@pytest.mark.parametrize("server", ["drop-after"], indirect=True)
def test_a_creating_request_whose_answer_was_lost_is_an_unknown_outcome(server, client):
    with pytest.raises(UnknownOutcome) as caught:
        send(client, "POST", server.url, platform="Echo", what="create", creates=True,
             json={"text": "hi"})
    assert server.requests and server.requests[0].endswith(b'{"text":"hi"}')
    assert caught.value.platform_code == "network"
    assert "may or may not exist" in caught.value.message


@pytest.mark.parametrize("server", ["drop-after"], indirect=True)
def test_any_other_request_whose_answer_was_lost_is_transient(server, client):
    with pytest.raises(TransientError) as caught:
        send(client, "GET", server.url, platform="Echo", what="lookup", creates=False)
    assert type(caught.value) is TransientError
    assert "Echo did not answer" in caught.value.message


@pytest.mark.parametrize("server", ["drop-before"], indirect=True)
def test_a_connection_reset_before_the_request_follows_which_side_it_landed_on(
        server, client):
    """The server resets each connection as it accepts it, without reading. Whether the
    reset reaches the client while it sets the connection up (httpx: ConnectError, the
    request never went out) or after it wrote the request (a read or write error: it may
    have been read) is a race; each side must get its own answer."""
    for _ in range(5):
        with pytest.raises((TransientError, UnknownOutcome)) as caught:
            send(client, "POST", server.url, platform="Echo", what="create", creates=True,
                 json={"text": "hi"})
        if isinstance(caught.value.__cause__, httpx.ConnectError):
            assert type(caught.value) is TransientError
        else:
            assert isinstance(caught.value.__cause__, httpx.TransportError)
            assert type(caught.value) is UnknownOutcome
    assert server.requests == []


@pytest.mark.parametrize("server", ["silent"], indirect=True)
def test_a_read_timeout_after_sending_is_an_unknown_outcome(server, client):
    with pytest.raises(UnknownOutcome) as caught:
        send(client, "POST", server.url, platform="Echo", what="create", creates=True,
             json={"text": "hi"})
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)
    assert server.requests


@pytest.mark.parametrize("server", ["silent"], indirect=True)
def test_waiting_for_a_pooled_connection_is_transient(server):
    """A pool timeout: the request never left this process."""
    limits = httpx.Limits(max_connections=1)
    timeout = httpx.Timeout(5.0, pool=0.2)
    with httpx.Client(limits=limits, timeout=timeout) as http:
        done = threading.Event()

        def hold() -> None:
            with pytest.raises(httpx.ReadTimeout):
                http.post(server.url, json={}, timeout=httpx.Timeout(1.0))
            done.set()

        holder = threading.Thread(target=hold)
        holder.start()
        while not server.requests:  # the one connection is taken
            threading.Event().wait(0.01)
        with pytest.raises(TransientError) as caught:
            send(http, "POST", server.url, platform="Echo", what="create", creates=True)
        holder.join()
    assert done.is_set()
    assert type(caught.value) is TransientError
    assert isinstance(caught.value.__cause__, httpx.PoolTimeout)
    assert len(server.requests) == 1


@pytest.mark.parametrize("server", ["answer"], indirect=True)
def test_an_error_answer_is_returned_for_the_platform_to_read(server, client):
    response = send(client, "POST", server.url, platform="Echo", what="create", creates=True)
    assert response.status_code == 500


def test_an_unsupported_url_never_leaves_the_process(client):
    with pytest.raises(TransientError) as caught:
        send(client, "POST", "ftp://127.0.0.1/x", platform="Echo", what="create",
             creates=True)
    assert type(caught.value) is TransientError


@pytest.mark.parametrize("server", ["drop-after"], indirect=True)
def test_reaching_wraps_a_request_built_by_the_plugin_and_keeps_what_was_posted(
        server, client):
    posted = ["receipt-1"]
    with pytest.raises(UnknownOutcome) as caught, \
            reaching("Echo", "reply", creates=True, posted=posted):
        client.post(server.url, content=b"second item")
    assert caught.value.posted == posted


def test_reaching_lets_other_errors_through():
    with pytest.raises(ValueError), reaching("Echo", "x", creates=True):
        raise ValueError("not a transport error")
