"""The guarded outbound client, against real HTTP servers on loopback."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.wrappers import Request, Response

from chat33_core.config import Settings
from chat33_core.errors import ConfigurationError, ValidationError
from chat33_core.fetch import (
    BlockedAddress,
    FetchError,
    GuardedClient,
    check_url,
    url_problem,
)
from chat33_core.sandbox import serve

from ..peers import MisbehavingPeer, misbehaving_peer

PRIVATE_OK = Settings(allow_private_urls=True)
STRICT = Settings(allow_private_urls=False)


class Origin:
    """A small web server: files, redirects, slow and endless bodies, a webhook sink."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, dict[str, str], bytes]] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        self.seen.append((request.method, request.full_path.rstrip("?"),
                          dict(request.headers), request.get_data()))
        return self.route(request)(environ, start_response)

    def route(self, request: Request) -> Response:
        path, args = request.path, request.args
        if path.startswith("/bytes/"):
            return Response(b"x" * int(path.rsplit("/", 1)[1]), content_type="image/jpeg")
        if path == "/redirect":
            return Response(status=int(args.get("status", 302)),
                            headers={"Location": args["to"]})
        if path == "/loop":
            return Response(status=302, headers={"Location": "/loop"})
        if path == "/host":
            return Response(request.host, content_type="text/plain")
        if path == "/endless":
            def body() -> Iterator[bytes]:
                for _ in range(10_000):
                    yield b"y" * 65536
            return Response(body(), content_type="video/mp4")  # no Content-Length
        if path == "/declared":
            # a generator body keeps werkzeug from correcting the declared length
            return Response(iter([b"z" * 10]), headers={"Content-Length": "999999999"})
        if path == "/slow":
            time.sleep(1.0)
            return Response(b"late")
        if path == "/hook":
            return Response(b'{"ok": true}', status=int(args.get("status", 200)),
                            content_type="application/json")
        return Response(b"missing", status=404)


@pytest.fixture(scope="module")
def _server() -> Iterator[tuple[str, Origin]]:
    app = Origin()
    with serve(app) as url:
        yield url, app


@pytest.fixture
def origin(_server: tuple[str, Origin]) -> tuple[str, Origin]:
    _server[1].seen.clear()
    return _server


def resolver_for(table: dict[str, list[str]], calls: list[str] | None = None) -> Any:
    def resolve(host: str, port: int) -> list[str]:
        if calls is not None:
            calls.append(host)
        return table[host]
    return resolve


# --- the address rules ------------------------------------------------------------------


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/", "http://10.1.2.3/a.jpg", "http://192.168.0.10/", "http://172.16.5.4/",
    "http://169.254.10.1/", "http://[::1]/", "http://[::ffff:127.0.0.1]/", "http://[fe80::1]/",
    "http://[fc00::1]/", "http://2130706433/", "http://0x7f.1/", "http://0.0.0.0/",
    "http://224.0.0.1/", "http://localhost/", "http://LOCALHOST./x", "http://api.localhost/",
    "http://100.64.0.1/", "http://[2002:7f00:1::]/",
])
def test_private_loopback_and_reserved_literals_are_refused(url: str) -> None:
    with pytest.raises(BlockedAddress):
        check_url(url)


@pytest.mark.parametrize("url", [
    "http://169.254.169.254/latest/meta-data/", "http://metadata.google.internal/",
    "http://[fd00:ec2::254]/", "http://100.100.100.200/", "http://[::ffff:169.254.169.254]/",
])
def test_metadata_is_refused_even_when_private_urls_are_allowed(url: str) -> None:
    with pytest.raises(BlockedAddress, match="metadata"):
        check_url(url, allow_private=True)


@pytest.mark.parametrize(("url", "why"), [
    ("ftp://example.com/a.jpg", "only absolute http(s)"), ("/relative/a.jpg", "no scheme"),
    ("file:///etc/passwd", "only absolute http(s)"), ("http:///nohost", "no host"),
    ("https://exa mple.com/", "not a valid URL"),
])
def test_malformed_urls_are_named(url: str, why: str) -> None:
    assert why in (url_problem(url) or "")


def test_public_addresses_and_names_pass_the_static_check() -> None:
    assert url_problem("https://93.184.216.34/a.jpg") is None
    assert url_problem("https://cdn.example.com/a.jpg?x=1") is None
    assert url_problem("http://10.0.0.1/", allow_private=True) is None


def test_fetch_error_is_a_validation_error_at_the_callers_path() -> None:
    with pytest.raises(FetchError) as info:
        check_url("http://10.0.0.1/", path="mediaUrls[2]")
    assert isinstance(info.value, ValidationError)
    assert info.value.details[0].path == "mediaUrls[2]"
    assert info.value.details[0].code == "blocked_address"


# --- downloads ------------------------------------------------------------------------


def test_loopback_is_refused_by_default_without_a_request(origin: tuple[str, Origin],
                                                          tmp_path: Path) -> None:
    url, app = origin
    with GuardedClient(STRICT) as client, pytest.raises(BlockedAddress, match="loopback"):
        client.download(f"{url}/bytes/10", tmp_path / "f", path="mediaUrls[0]")
    assert app.seen == [] and not (tmp_path / "f").exists()


def test_private_urls_are_fetched_when_allowed(origin: tuple[str, Origin],
                                               tmp_path: Path) -> None:
    url, _ = origin
    with GuardedClient(PRIVATE_OK) as client:
        content_type, size = client.download(f"{url}/bytes/1000", tmp_path / "f")
    assert (content_type, size) == ("image/jpeg", 1000)
    assert (tmp_path / "f").read_bytes() == b"x" * 1000


def test_an_allowed_network_passes_while_other_private_addresses_do_not(
        origin: tuple[str, Origin], tmp_path: Path) -> None:
    url, app = origin
    port = url.rsplit(":", 1)[1]
    with GuardedClient(STRICT, allowed_networks=["127.0.0.1/32"]) as client:
        assert client.download(f"{url}/bytes/5", tmp_path / "ok")[1] == 5
        hop = f"http://127.0.0.2:{port}/bytes/5"
        with pytest.raises(BlockedAddress, match=r"127\.0\.0\.2 is a loopback address"):
            client.download(f"{url}/redirect?to={hop}", tmp_path / "no")
    assert [p for _, p, _, _ in app.seen] == ["/bytes/5", f"/redirect?to={hop}"]


def test_a_redirect_to_a_private_address_is_refused(origin: tuple[str, Origin],
                                                     tmp_path: Path) -> None:
    url, app = origin
    with GuardedClient(STRICT, allowed_networks=["127.0.0.1/32"]) as client:
        for target in ("http://10.0.0.7/a.jpg", "http://localhost/a.jpg",
                       "http://169.254.169.254/latest/meta-data/iam"):
            with pytest.raises(BlockedAddress):
                client.download(f"{url}/redirect?to={target}", tmp_path / "f")
    assert len(app.seen) == 3, "only the first hop of each reached the network"


def test_redirects_are_followed_and_bounded(origin: tuple[str, Origin], tmp_path: Path) -> None:
    url, _ = origin
    with GuardedClient(PRIVATE_OK, max_redirects=3) as client:
        assert client.download(f"{url}/redirect?to=/bytes/7&status=307", tmp_path / "f")[1] == 7
        with pytest.raises(FetchError, match="redirected more than 3 times") as info:
            client.download(f"{url}/loop", tmp_path / "f")
    assert info.value.reason == "too_many_redirects"


def test_a_name_resolving_to_loopback_is_refused_at_connect_time(
        origin: tuple[str, Origin], tmp_path: Path) -> None:
    url, app = origin
    port = url.rsplit(":", 1)[1]
    calls: list[str] = []
    resolve = resolver_for({"media.example.test": ["127.0.0.1"]}, calls)
    with GuardedClient(STRICT, resolver=resolve) as client, \
            pytest.raises(BlockedAddress, match="resolves to a loopback address"):
        client.download(f"http://media.example.test:{port}/bytes/3", tmp_path / "f")
    assert calls == ["media.example.test"] and app.seen == []


def test_a_name_with_any_private_answer_is_refused(tmp_path: Path) -> None:
    resolve = resolver_for({"mixed.example.test": ["93.184.216.34", "10.0.0.1"]})
    with GuardedClient(STRICT, resolver=resolve) as client, pytest.raises(BlockedAddress):
        client.download("http://mixed.example.test/a.jpg", tmp_path / "f")


def test_the_connection_is_pinned_to_the_resolved_address_and_keeps_the_host(
        origin: tuple[str, Origin], tmp_path: Path) -> None:
    url, _ = origin
    port = url.rsplit(":", 1)[1]
    resolve = resolver_for({"media.example.test": ["127.0.0.1"]})
    with GuardedClient(PRIVATE_OK, resolver=resolve) as client:
        client.download(f"http://media.example.test:{port}/host", tmp_path / "host")
    assert (tmp_path / "host").read_text() == f"media.example.test:{port}"


def test_metadata_address_is_refused_without_connecting(tmp_path: Path) -> None:
    calls: list[str] = []
    with GuardedClient(PRIVATE_OK, resolver=resolver_for({}, calls)) as client, \
            pytest.raises(BlockedAddress, match="cloud metadata"):
        client.download("http://169.254.169.254/latest/meta-data/", tmp_path / "f")
    assert calls == []


def test_size_cap_is_enforced_while_streaming(origin: tuple[str, Origin],
                                              tmp_path: Path) -> None:
    url, _ = origin
    with GuardedClient(PRIVATE_OK) as client, pytest.raises(FetchError) as info:
        client.download(f"{url}/endless", tmp_path / "big", max_bytes=200_000,
                        path="mediaUrls[1]")
    assert info.value.reason == "too_large" and "limit" in info.value.message
    assert info.value.details[0].path == "mediaUrls[1]"
    assert not (tmp_path / "big").exists(), "a partial download is removed"


def test_declared_length_over_the_cap_is_refused_before_the_body(
        origin: tuple[str, Origin], tmp_path: Path) -> None:
    url, _ = origin
    with GuardedClient(PRIVATE_OK) as client, pytest.raises(FetchError, match="over the"):
        client.download(f"{url}/declared", tmp_path / "f", max_bytes=1000)


def test_http_errors_timeouts_and_refused_connections_are_fetch_errors(
        origin: tuple[str, Origin], tmp_path: Path) -> None:
    url, _ = origin
    with GuardedClient(PRIVATE_OK, timeout=0.3) as client:
        with pytest.raises(FetchError, match="answered HTTP 404") as info:
            client.download(f"{url}/missing", tmp_path / "f")
        assert info.value.status == 404
        with pytest.raises(FetchError, match="timed out"):
            client.download(f"{url}/slow", tmp_path / "f")
        with pytest.raises(FetchError) as refused:
            client.download("http://127.0.0.1:9/nothing", tmp_path / "f")
        assert refused.value.reason == "unreachable"


# --- webhooks -------------------------------------------------------------------------


def test_post_json_sends_bytes_as_given_and_returns_the_answer(
        origin: tuple[str, Origin]) -> None:
    url, app = origin
    body = b'{"postId":"post_1","status":"PUBLISHED"}'
    with GuardedClient(PRIVATE_OK) as client:
        reply = client.post_json(f"{url}/hook", body, {"webhook-id": "msg_1"})
        assert reply.status_code == 200 and reply.json() == {"ok": True}
        as_dict = client.post_json(f"{url}/hook?status=500", {"a": 1})
        assert as_dict.status_code == 500
    method, _, headers, sent = app.seen[0]
    assert (method, sent, headers["Webhook-Id"]) == ("POST", body, "msg_1")
    assert headers["Content-Type"] == "application/json"
    assert app.seen[1][3] == b'{"a":1}'


def test_post_json_does_not_follow_redirects(origin: tuple[str, Origin]) -> None:
    url, app = origin
    with GuardedClient(PRIVATE_OK) as client:
        reply = client.post_json(f"{url}/redirect?to=/hook", {"a": 1})
    assert reply.status_code == 302 and len(app.seen) == 1


def test_post_json_refuses_private_callbacks_by_default(origin: tuple[str, Origin]) -> None:
    url, app = origin
    with GuardedClient(STRICT) as client, pytest.raises(BlockedAddress) as info:
        client.post_json(f"{url}/hook", {"a": 1}, path="callbackUrl")
    assert info.value.details[0].path == "callbackUrl" and app.seen == []


def self_signed(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A certificate for ``name`` only (not for 127.0.0.1), and its key."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_tls_checks_the_host_name_while_connecting_to_the_pinned_address(
        tmp_path: Path) -> None:
    import ssl
    import threading

    from werkzeug.serving import make_server

    cert, key = self_signed(tmp_path, "media.example.test")
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    app = Origin()
    server = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=server_ctx)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        trust = ssl.create_default_context(cafile=str(cert))
        resolve = resolver_for({"media.example.test": ["127.0.0.1"],
                                "other.example.test": ["127.0.0.1"]})
        with GuardedClient(PRIVATE_OK, resolver=resolve, verify=trust) as client:
            url = f"https://media.example.test:{server.port}/host"
            client.download(url, tmp_path / "host")
            assert (tmp_path / "host").read_text() == f"media.example.test:{server.port}"
            # same address, another name: the certificate does not match it
            with pytest.raises(FetchError, match="cannot be reached"):
                client.download(f"https://other.example.test:{server.port}/host",
                                tmp_path / "other")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --- deadlines and broken transfers (a peer that misbehaves on purpose) -----------------


@pytest.fixture(scope="module")
def peer() -> Iterator[MisbehavingPeer]:
    with misbehaving_peer() as found:
        yield found


@pytest.mark.parametrize("path", ["/trickle-headers?every=0.1", "/silent",
                                  "/trickle-body?every=0.1"])
def test_one_deadline_covers_the_whole_fetch_however_the_peer_paces_it(
        peer: MisbehavingPeer, tmp_path: Path, path: str) -> None:
    # the per-operation timeout (20 s) never fires: a byte comes every 0.1 s; without a
    # deadline over the whole fetch this took the peer's 20 s
    with GuardedClient(PRIVATE_OK, total_timeout=1.0, min_rate=0) as client, \
            pytest.raises(FetchError) as info:
        started = time.monotonic()
        client.download(peer.url + path, tmp_path / "f", path="mediaUrls[0]")
    assert time.monotonic() - started < 6
    assert info.value.reason == "timeout"
    assert info.value.message == f"{peer.url + path} timed out: the fetch took longer than 1 s"
    assert info.value.details[0].path == "mediaUrls[0]"
    assert not (tmp_path / "f").exists()


def test_downloads_given_one_deadline_share_it(peer: MisbehavingPeer, tmp_path: Path) -> None:
    with GuardedClient(PRIVATE_OK, total_timeout=30.0, min_rate=0) as client:
        deadline = time.monotonic() + 1.0
        started = time.monotonic()
        for _ in range(3):
            with pytest.raises(FetchError, match="took longer than"):
                client.download(peer.url + "/trickle-body?every=0.1", tmp_path / "f",
                                deadline=deadline)
    assert time.monotonic() - started < 6


def test_a_body_under_the_minimum_rate_is_cut_off_before_the_deadline(
        peer: MisbehavingPeer, tmp_path: Path) -> None:
    with GuardedClient(PRIVATE_OK, total_timeout=30.0, min_rate=10_000,
                       rate_grace_s=0.5) as client, pytest.raises(FetchError) as info:
        started = time.monotonic()
        client.download(peer.url + "/trickle-body?every=0.1", tmp_path / "f")
    assert time.monotonic() - started < 6
    assert info.value.reason == "too_slow"
    assert "sending too slowly" in info.value.message
    assert "under the minimum of 10000 bytes a second" in info.value.message


def test_a_fast_body_passes_the_rate_check(origin: tuple[str, Origin], tmp_path: Path) -> None:
    url, _ = origin
    with GuardedClient(PRIVATE_OK, min_rate=1024, rate_grace_s=0.0) as client:
        assert client.download(f"{url}/bytes/500000", tmp_path / "f")[1] == 500_000


@pytest.mark.parametrize(("path", "said"), [
    ("/hangup", "hung up before its answer was complete"),
    ("/reset", "the connection broke off mid-transfer"),
    ("/reset-at-once", ""),
])
def test_a_peer_that_hangs_up_or_resets_is_a_fetch_error_naming_the_url(
        peer: MisbehavingPeer, tmp_path: Path, path: str, said: str) -> None:
    with GuardedClient(PRIVATE_OK) as client, pytest.raises(FetchError) as info:
        client.download(peer.url + path, tmp_path / "f", path="url")
    assert info.value.reason == "interrupted"
    assert info.value.message.startswith(peer.url + path)
    assert said in info.value.message
    assert info.value.details[0].path == "url"
    assert not (tmp_path / "f").exists()


def test_a_webhook_to_a_trickling_receiver_ends_at_the_deadline(
        peer: MisbehavingPeer) -> None:
    with GuardedClient(PRIVATE_OK, total_timeout=1.0) as client, \
            pytest.raises(FetchError, match="took longer than 1 s"):
        started = time.monotonic()
        client.post_json(peer.url + "/trickle-headers?every=0.1", {"event": "x"})
    assert time.monotonic() - started < 6


def test_the_fetch_timeout_comes_from_the_settings() -> None:
    settings = Settings.from_env({"CHAT33_FETCH_TIMEOUT_S": "7.5"})
    with GuardedClient(settings) as client:
        assert client.total_timeout == 7.5
    assert Settings.from_env({}).fetch_timeout_s == 60.0
    with pytest.raises(ConfigurationError, match="CHAT33_FETCH_TIMEOUT_S"):
        Settings.from_env({"CHAT33_FETCH_TIMEOUT_S": "0"})
