"""``chat33 serve``: gunicorn over real HTTP; refuses to start without a secret key."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from chat33_flask.cli import serve
from click.testing import CliRunner

from ..peers import misbehaving_peer
from .conftest import make_core, make_org


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_refuses_without_a_secret_key(monkeypatch: Any) -> None:
    monkeypatch.delenv("CHAT33_SECRET_KEY", raising=False)
    result = CliRunner().invoke(serve, ["--port", "0"])
    assert result.exit_code == 2
    assert "CHAT33_SECRET_KEY" in result.output


def test_serve_is_a_chat33_command() -> None:
    from chat33_core.cli import main

    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0
    assert "--workers" in result.output and "--dev" in result.output


def test_serve_runs_gunicorn_workers_over_http(settings_for: Any, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'served.db'}"
    settings = settings_for(url)
    core = make_core(settings)
    org = make_org(core, "Served")
    core.store.dispose()
    port = _free_port()
    env = {**os.environ, **settings.env}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from chat33_core.cli import main; main()", "serve",
         "--port", str(port), "--workers", "2"],
        env=env, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + "/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "the server did not come up"
                time.sleep(0.1)
        created = httpx.post(base + "/api/v1/posts", headers={**org.headers,
                                                              "x-request-id": "over-http"},
                             json={"accountIds": [org.accounts["x"]], "text": "served"})
        assert created.status_code == 201
        assert created.headers["x-request-id"] == "over-http"
        listed = httpx.get(base + "/api/v1/posts", headers=org.headers).json()
        assert listed["total"] == 1
        assert httpx.get(base + "/readyz").json() == {"status": "ready"}
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(line.get("requestId") == "over-http" and line.get("status") == 201
               for line in lines)
    assert "gunicorn" in err


def _start(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", "from chat33_core.cli import main; main()", "serve", *args],
        env={**env, "CHAT33_LOG_FORMAT": "text"}, cwd=cwd, stderr=subprocess.PIPE, text=True)


def _until_serving(proc: subprocess.Popen[str]) -> list[str]:
    """stderr lines up to and including the "serving the API" one."""
    assert proc.stderr is not None
    lines: list[str] = []
    while not lines or "serving the API" not in lines[-1]:
        line = proc.stderr.readline()
        assert line, "serve exited: " + "".join(lines)
        lines.append(line)
    return lines


def _up(base: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(base + "/healthz").status_code == 200:
                return
        except httpx.TransportError:
            assert proc.poll() is None, "serve exited"
            assert time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.1)


def test_default_settings_serve_their_own_media_on_the_chosen_port(
        tmp_path: Path, monkeypatch: Any) -> None:
    """No CHAT33_MEDIA_DIR (relative ./chat33-media) and no CHAT33_PUBLIC_BASE_URL: the
    media URLs name the port given to serve, and fetching them answers the file."""
    from chat33_core.config import Settings
    from chat33_core.testing import make_image

    from ..conftest import SECRET

    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT33_")}
    env["CHAT33_SECRET_KEY"] = SECRET
    monkeypatch.chdir(tmp_path)  # the defaults are relative to the working directory
    core = make_core(Settings.from_env(env))
    org = make_org(core, "Served")
    core.store.dispose()
    port = _free_port()
    proc = _start(["--port", str(port), "--workers", "1"], env, tmp_path)
    try:
        _until_serving(proc)
        base = f"http://127.0.0.1:{port}"
        _up(base, proc)
        photo = make_image(tmp_path / "photo.jpg", 640, 480)
        uploaded = httpx.post(base + "/api/v1/media/upload", headers=org.headers,
                              files={"file": ("photo.jpg", photo.read_bytes(), "image/jpeg")})
        assert uploaded.status_code == 201, uploaded.text
        url = uploaded.json()["url"]
        assert url.startswith(f"{base}/media/"), url
        served = httpx.get(url)
        assert served.status_code == 200, served.text
        assert served.content == photo.read_bytes()
        assert (tmp_path / "chat33-media" / url.rsplit("/", 1)[1]).is_file()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


def test_a_public_base_url_on_another_port_is_warned_about(tmp_path: Path,
                                                           settings_for: Any) -> None:
    settings = settings_for(f"sqlite:///{tmp_path / 'served.db'}")
    make_core(settings).store.dispose()
    env = {**os.environ, **settings.env, "CHAT33_PUBLIC_BASE_URL": "http://127.0.0.1:8000"}
    proc = _start(["--port", "0", "--workers", "1", "--dev"], env, tmp_path)
    try:
        lines = _until_serving(proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    port = int(lines[-1].split("http://127.0.0.1:", 1)[1].split(",")[0])
    assert port not in (0, 8000)
    warning = [line for line in lines if "warning" in line]
    assert warning == [
        f"chat33: warning: CHAT33_PUBLIC_BASE_URL is http://127.0.0.1:8000 but the API "
        f"listens on 127.0.0.1:{port}: platforms will fetch media from "
        "http://127.0.0.1:8000/media/ (unset it to use this server's address)\n"]
    assert "media URLs at http://127.0.0.1:8000/media/" in lines[-1]


def test_a_public_base_url_elsewhere_is_no_warning(tmp_path: Path, settings_for: Any) -> None:
    settings = settings_for(f"sqlite:///{tmp_path / 'served.db'}")
    make_core(settings).store.dispose()
    env = {**os.environ, **settings.env,
           "CHAT33_PUBLIC_BASE_URL": "https://media.example.com"}  # a proxy in front
    proc = _start(["--port", "0", "--dev"], env, tmp_path)
    try:
        lines = _until_serving(proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert not [line for line in lines if "warning" in line]
    assert "media URLs at https://media.example.com/media/" in lines[-1]


def test_serve_refuses_a_media_dir_it_cannot_use(tmp_path: Path, settings_for: Any) -> None:
    not_a_dir = tmp_path / "media-file"
    not_a_dir.write_text("a file where the media directory should be")
    settings = settings_for(f"sqlite:///{tmp_path / 'served.db'}",
                            CHAT33_MEDIA_DIR=str(not_a_dir))
    make_core(settings).store.dispose()
    result = CliRunner(env=dict(settings.env)).invoke(serve, ["--port", "0"])
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        f"chat33: error: CHAT33_MEDIA_DIR {str(not_a_dir)!r} cannot keep media files: "
        "Not a directory"]


def test_serve_refuses_a_port_in_use(tmp_path: Path, settings_for: Any) -> None:
    settings = settings_for(f"sqlite:///{tmp_path / 'served.db'}")
    make_core(settings).store.dispose()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner(env=dict(settings.env)).invoke(serve, ["--port", str(port)])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"chat33: error: cannot listen on 127.0.0.1:{port}: Address already in use"]


def test_readyz_is_not_ready_when_the_media_dir_is_unusable(tmp_path: Path,
                                                            settings_for: Any) -> None:
    from .conftest import make_app

    media = tmp_path / "media"
    core = make_core(settings_for(f"sqlite:///{tmp_path / 'ready.db'}",
                                  CHAT33_MEDIA_DIR=str(media)))
    client = make_app(core).test_client()
    assert client.get("/readyz").get_json() == {"status": "ready"}
    (media / ".incoming").rmdir()
    media.rmdir()
    media.write_text("the directory was replaced by a file")
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.get_json() == {
        "error": "NOT_READY", "details": [],
        "message": f"CHAT33_MEDIA_DIR {str(media)!r} cannot keep media files: Not a directory"}
    core.store.dispose()


@pytest.mark.slow
def test_slow_media_urls_do_not_take_the_servers_threads(settings_for: Any,
                                                         tmp_path: Path) -> None:
    """Ten requests whose media URL trickles its headers a byte at a time, against one
    gunicorn worker of 4 threads: they end at the fetch deadline (or are refused at once
    beyond the organization's 2 fetch slots), and /healthz and GET /posts answer within a
    second all along. Without the deadline and the slots, the ten held every thread for
    the peer's whole minute."""
    url = f"sqlite:///{tmp_path / 'served.db'}"
    settings = settings_for(url, CHAT33_FETCH_TIMEOUT_S="3")
    core = make_core(settings)
    org = make_org(core, "Served")
    core.store.dispose()
    answers: list[tuple[int, float]] = []
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _start(["--port", str(port), "--workers", "1", "--threads", "4"],
                  {**os.environ, **settings.env}, tmp_path)
    try:
        _up(base, proc)
        with misbehaving_peer() as peer:
            slow = f"{peer.url}/trickle-headers?every=0.5&for=60"
            paths = ["/posts/validate", "/posts", "/media/upload"]

            def send(i: int) -> None:
                path = paths[i % 3]
                body = ({"url": slow} if path == "/media/upload" else
                        {"accountIds": [org.accounts["x"]], "text": "slow",
                         "mediaUrls": [slow]})
                started = time.monotonic()
                response = httpx.post(base + "/api/v1" + path, json=body, headers=org.headers,
                                      timeout=60)
                answers.append((response.status_code, time.monotonic() - started))

            senders = [threading.Thread(target=send, args=(i,)) for i in range(10)]
            for th in senders:
                th.start()
            checks = 0
            with httpx.Client(base_url=base, headers=org.headers, timeout=5) as client:
                end = time.monotonic() + 5
                while time.monotonic() < end:
                    for path in ("/healthz", "/api/v1/posts"):
                        started = time.monotonic()
                        assert client.get(path).status_code == 200
                        assert time.monotonic() - started < 1.0, f"{path} waited"
                        checks += 1
                    time.sleep(0.1)
            for th in senders:
                th.join(30)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert checks >= 10
    assert len(answers) == 10
    # each slow request ended by the 3 s deadline (plus queueing behind the others), or
    # was refused at once for want of a fetch slot
    assert all(seconds < 20 for _, seconds in answers), answers
    assert {status for status, _ in answers} <= {200, 400, 429}
    assert any(status == 429 for status, _ in answers)


def _raw(base: str, request: bytes) -> tuple[int, bytes, bytes]:
    """Send ``request`` as it is; (status, headers block, body) of the answer."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        conn.sendall(request)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), head, body


def test_oversized_requests_are_answered_in_the_error_shape_under_gunicorn(
        settings_for: Any, tmp_path: Path) -> None:
    settings = settings_for(f"sqlite:///{tmp_path / 'served.db'}")
    make_core(settings).store.dispose()

    def request(path: str, headers: Sequence[tuple[str, str]] = ()) -> bytes:
        lines = [f"GET {path} HTTP/1.1", "Host: x", "Connection: close",
                 *(f"{k}: {v}" for k, v in headers)]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    too_big = [
        (414, "URI_TOO_LONG", request("/api/v1/posts?q=" + "a" * 5000)),
        (431, "REQUEST_HEADER_FIELDS_TOO_LARGE",
         request("/api/v1/posts", [("x-big", "b" * 10_000)])),
        # 150 headers: over the app's 100, under gunicorn's 200
        (431, "REQUEST_HEADER_FIELDS_TOO_LARGE",
         request("/api/v1/posts", [(f"x-h{i}", "v") for i in range(150)])),
    ]
    port = _free_port()
    proc = _start(["--port", str(port), "--workers", "1"], {**os.environ, **settings.env},
                  tmp_path)
    try:
        base = f"http://127.0.0.1:{port}"
        _up(base, proc)
        for expected, code, sent in too_big:
            status, head, body = _raw(base, sent)
            assert status == expected, body
            assert b"application/json" in head.lower()
            error = json.loads(body)
            assert set(error) == {"error", "message", "details"}
            assert error["error"] == code
        # past gunicorn's own limits it answers itself, not in the error shape (README)
        status, head, _ = _raw(base, request("/api/v1/posts?q=" + "a" * 9000))
        assert status == 414 and b"application/json" not in head.lower()
        # within the limits nothing changes
        assert _raw(base, request("/healthz", [("x-ok", "c" * 4000)]))[0] == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
