"""The one guarded HTTP client for every outbound fetch chat33 makes on a user's behalf.

Media URL ingestion and webhook deliveries send requests to addresses users choose, so
they must not become a way into the operator's own network (SSRF). :class:`GuardedClient`:

* refuses loopback, private, link-local, reserved, multicast and unspecified addresses
  (unless ``Settings.allow_private_urls``, i.e. ``CHAT33_ALLOW_PRIVATE_URLS=1``), and
  cloud-metadata addresses and host names always;
* resolves DNS itself at connect time, checks every address, and connects to the
  checked address (the pin): the ``Host`` header, TLS SNI and certificate check keep
  the URL's host name, so a name cannot resolve to a public address for the check and
  a private one for the connection;
* follows redirects itself (bounded), checking each hop;
* streams downloads with a size cap, and never uses environment proxies (a proxy would
  bypass the pin);
* gives every fetch one wall-clock deadline (``CHAT33_FETCH_TIMEOUT_S``, 60 s) for
  connecting, TLS, the headers and the body together: every socket operation waits at
  most until the deadline, so a peer that trickles a byte at a time cannot stretch it;
  and a body still coming in after :data:`RATE_GRACE_S` must average
  :data:`MIN_RATE_BYTES_S`, so a trickle is cut off early instead of at the deadline.

Every refusal and every transport failure raises :class:`FetchError` (a
``ValidationError``: the URL came from the user) naming the URL and what went wrong,
with a ``reason`` code and, when the caller names one, a path into the request.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import socket
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import httpcore
import httpx

from .config import Settings
from .errors import Issue, ValidationError

MB = 1024 * 1024
#: the API doc's limits: images 10 MB, videos 100 MB
MAX_IMAGE_BYTES = 10 * MB
MAX_VIDEO_BYTES = 100 * MB
MAX_REDIRECTS = 5
#: how much of a webhook receiver's answer is kept
MAX_REPLY_BYTES = 64 * 1024
USER_AGENT = "chat33/0.1 (+https://github.com/chat33)"
#: a body still downloading after this many seconds must average MIN_RATE_BYTES_S
RATE_GRACE_S = 10.0
MIN_RATE_BYTES_S = 32 * 1024

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
#: ``resolve(host, port)`` -> the addresses to try, in order
Resolver = Callable[[str, int], list[str]]

#: refused even when private URLs are allowed: nothing legitimate lives there
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean...
    "169.254.170.2",  # AWS ECS task metadata
    "fd00:ec2::254",  # AWS IPv6 metadata
    "100.100.100.200",  # Alibaba Cloud
    "168.63.129.16",  # Azure wire server
))
METADATA_HOSTS = frozenset({
    "metadata", "metadata.google.internal", "metadata.goog", "instance-data",
    "instance-data.ec2.internal", "metadata.azure.com",
})


class FetchError(ValidationError):
    """An outbound fetch was refused or failed. ``reason`` is a short code:
    ``invalid_url``, ``blocked_address``, ``too_large``, ``http_status``, ``timeout``,
    ``too_slow``, ``unreachable``, ``interrupted`` (the connection broke or the peer
    hung up mid-answer), ``bad_response`` (not a readable HTTP answer),
    ``too_many_redirects``."""

    def __init__(self, message: str, *, reason: str, path: str | None = None,
                 status: int | None = None) -> None:
        details = [Issue(path, message, code=reason)] if path else []
        super().__init__(message, details=details)
        self.reason = reason
        self.status = status
        #: body bytes received before the failure (a download's)
        self.received = 0

    def at(self, path: str) -> FetchError:
        """The same error (same class), reported at ``path`` of the request."""
        located = type(self).__new__(type(self))
        Exception.__init__(located, self.message)
        located.__dict__.update(self.__dict__)
        located.details = [Issue(path, self.message, code=self.reason)]
        return located


class BlockedAddress(FetchError):
    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message, reason="blocked_address", path=path)


# --- address rules -------------------------------------------------------------------


def address_problem(ip: IPAddress, *, allow_private: bool = False,
                    allowed: Collection[IPNetwork] = ()) -> str | None:
    """Why chat33 will not connect to ``ip`` (``"a loopback address"``), or None.

    ``allowed`` networks pass although private (the operator's own media server);
    metadata, multicast and unspecified addresses never pass.
    """
    ip = _embedded_ipv4(ip)
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_unspecified:
        return "an unspecified address"
    if allow_private or any(ip in net for net in allowed):
        return None
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_private:
        return "a private address"
    if ip.is_reserved:
        return "a reserved address"
    if not ip.is_global:
        return "a non-public address"
    return None


def _embedded_ipv4(ip: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, Teredo, NAT64), else itself."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
        if ip.teredo is not None:
            return ip.teredo[1]
        if ip in ipaddress.IPv6Network("64:ff9b::/96"):
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def _literal_ip(host: str) -> IPAddress | None:
    """``host`` as an IP address when it is one, including legacy IPv4 spellings
    (``2130706433``, ``0x7f.1``) that resolvers accept."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    if re.fullmatch(r"[0-9a-fA-Fx.]+", host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def check_url(url: str, *, allow_private: bool = False, path: str | None = None,
              allowed: Collection[IPNetwork] = ()) -> httpx.URL:
    """Check what can be checked without the network: an absolute http(s) URL whose host
    is not a refused literal address or a metadata/loopback name. Returns the parsed URL.

    Names are checked again against every address they resolve to at connect time.
    """
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise FetchError(f"not a valid URL: {exc}", reason="invalid_url", path=path) from None
    if parsed.scheme not in ("http", "https"):
        shown = parsed.scheme or "no scheme"
        raise FetchError(f"only absolute http(s) URLs are accepted, got {shown}: {url[:200]}",
                         reason="invalid_url", path=path)
    host = parsed.host.rstrip(".").lower()
    if not host:
        raise FetchError(f"the URL has no host: {url[:200]}", reason="invalid_url", path=path)
    raw_host = parsed.raw_host.decode("ascii", "replace").strip("[]")
    if not re.fullmatch(r"[A-Za-z0-9._:-]+", raw_host):
        raise FetchError(f"not a valid URL: the host {host!r} has characters a host name "
                         "cannot have", reason="invalid_url", path=path)
    if host in METADATA_HOSTS:
        raise BlockedAddress(f"{host} is a cloud metadata host", path=path)
    ip = _literal_ip(host)
    if ip is not None:
        problem = address_problem(ip, allow_private=allow_private, allowed=allowed)
        if problem:
            raise BlockedAddress(f"{host} is {problem}", path=path)
    elif not allow_private and (host == "localhost" or host.endswith(".localhost")):
        raise BlockedAddress(f"{host} is a loopback address", path=path)
    return parsed


def url_problem(url: str, *, allow_private: bool = False) -> str | None:
    """:func:`check_url` as a message, or None when the URL passes."""
    try:
        check_url(url, allow_private=allow_private)
    except FetchError as exc:
        return exc.message
    return None


def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's resolver (``getaddrinfo``), addresses in its order."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise FetchError(f"{host} cannot be resolved: {exc.strerror}",
                         reason="unreachable") from None
    seen: list[str] = []
    for *_, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in seen:
            seen.append(address)
    return seen


# --- the deadline -----------------------------------------------------------------------

#: the monotonic instant the current thread's fetch must be done by (GuardedClient sets
#: it around each fetch; the pooled connections read it on every socket operation, so
#: a connection reused by another fetch obeys that fetch's deadline)
_DEADLINE: ContextVar[float | None] = ContextVar("chat33_fetch_deadline", default=None)


def _bounded(timeout: float | None, error: type[Exception]) -> float | None:
    """``timeout`` cut to what is left before the current deadline; ``error`` (an
    httpcore timeout, which httpx maps to its own) when nothing is left."""
    deadline = _DEADLINE.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise error("the fetch deadline has passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read, write and TLS handshake waits at most until the
    current fetch's deadline: httpcore's own timeouts restart with each operation, so a
    peer sending one byte every few seconds would otherwise never time out."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _bounded(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _bounded(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.start_tls(
            ssl_context, server_hostname, _bounded(timeout, httpcore.ConnectTimeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


# --- the pinned transport ---------------------------------------------------------------


class _GuardedBackend(httpcore.NetworkBackend):
    """Resolves, checks every address, then connects to a checked one (the pin).

    httpcore still does TLS with ``server_hostname`` from the URL, so SNI and the
    certificate check use the name, not the address.
    """

    def __init__(self, *, allow_private: bool, resolver: Resolver,
                 allowed: Collection[IPNetwork]) -> None:
        self._inner = httpcore.SyncBackend()
        self._allow_private = allow_private
        self._allowed = allowed
        self._resolve = resolver

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None,
                    socket_options: Any = None) -> httpcore.NetworkStream:
        literal = _literal_ip(host)
        addresses = [str(literal)] if literal is not None else self._resolve(host, port)
        if not addresses:
            raise FetchError(f"{host} has no address", reason="unreachable")
        for address in addresses:
            problem = address_problem(ipaddress.ip_address(address),
                                      allow_private=self._allow_private, allowed=self._allowed)
            if problem:
                # Any bad address refuses the name: a resolver that mixes public and
                # private answers is how rebinding attacks slip through.
                raise BlockedAddress(f"{host} is {problem}" if literal is not None
                                     else f"{host} resolves to {problem}")
        error: Exception | None = None
        for address in addresses:
            try:
                return _DeadlineStream(self._inner.connect_tcp(
                    address, port, timeout=_bounded(timeout, httpcore.ConnectTimeout),
                    local_address=local_address, socket_options=socket_options))
            except httpcore.ConnectError as exc:
                error = exc
        assert error is not None
        raise error

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Any = None) -> httpcore.NetworkStream:
        raise BlockedAddress("unix sockets are never fetched")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _GuardedTransport(httpx.HTTPTransport):
    """httpx's own transport (same error mapping), its pool built on the guarded backend."""

    def __init__(self, *, allow_private: bool, resolver: Resolver,
                 allowed: Collection[IPNetwork], verify: Any = True) -> None:
        super().__init__(verify=verify, trust_env=False)
        # httpx has no public hook for the network backend; the pool is rebuilt with the
        # same TLS context. tests/core/test_fetch.py proves the backend is in use.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            max_connections=20,
            network_backend=_GuardedBackend(allow_private=allow_private, resolver=resolver,
                                            allowed=allowed),
        )


# --- the client ---------------------------------------------------------------------------


class GuardedClient:
    """One guarded client for media ingestion and webhooks. Thread-safe; close it (or use
    it as a context manager) when done.

    :param settings: ``allow_private_urls`` lifts the private-address refusal (tests,
        demo); ``fetch_timeout_s`` is the default ``total_timeout``.
    :param timeout: per-operation timeouts (connect, read, write) in seconds: how long a
        peer may stay silent.
    :param total_timeout: every fetch (connecting, TLS, headers and body; a webhook
        delivery) must be done within this many seconds, however the peer paces it.
    :param min_rate: bytes per second a body still downloading after ``rate_grace_s``
        seconds must average.
    :param resolver: ``resolve(host, port) -> [address, ...]``; the system's by default.
    :param allowed_networks: networks allowed although private, e.g. ``["10.1.2.3/32"]``
        for the operator's own media server (``CHAT33_ALLOW_PRIVATE_URLS`` allows all).
    """

    def __init__(self, settings: Settings, *, timeout: float = 20.0,
                 total_timeout: float | None = None, min_rate: float = MIN_RATE_BYTES_S,
                 rate_grace_s: float = RATE_GRACE_S, max_redirects: int = MAX_REDIRECTS,
                 resolver: Resolver | None = None, allowed_networks: Iterable[str] = (),
                 verify: Any = True) -> None:
        self.allow_private = settings.allow_private_urls
        self.allowed = tuple(ipaddress.ip_network(n, strict=False) for n in allowed_networks)
        self.total_timeout = (settings.fetch_timeout_s if total_timeout is None
                              else total_timeout)
        self.min_rate = min_rate
        self.rate_grace_s = rate_grace_s
        self.max_redirects = max_redirects
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 10.0))
        self._client = httpx.Client(
            transport=_GuardedTransport(allow_private=self.allow_private,
                                        resolver=resolver or system_resolver,
                                        allowed=self.allowed, verify=verify),
            timeout=self._timeout,
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": USER_AGENT},
        )

    def __enter__(self) -> GuardedClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def check(self, url: str, path: str | None = None) -> httpx.URL:
        """The static URL check with this client's address rules."""
        return check_url(url, allow_private=self.allow_private, path=path,
                         allowed=self.allowed)

    def deadline(self) -> float:
        """The :func:`time.monotonic` instant a fetch starting now must be done by; pass
        it as ``deadline`` to several downloads to give them one deadline together."""
        return time.monotonic() + self.total_timeout

    @contextmanager
    def _within(self, deadline: float | None) -> Iterator[None]:
        """Run a fetch under its deadline: ``total_timeout`` from now, or the caller's
        ``deadline`` when that comes first."""
        own = self.deadline()
        token = _DEADLINE.set(own if deadline is None else min(own, deadline))
        try:
            yield
        finally:
            _DEADLINE.reset(token)

    # --- downloads -------------------------------------------------------------------

    def download(self, url: str, dest_path: str | os.PathLike[str],
                 max_bytes: int = MAX_VIDEO_BYTES, *, path: str | None = None,
                 deadline: float | None = None) -> tuple[str | None, int]:
        """GET ``url`` into ``dest_path``, following checked redirects, refusing more
        than ``max_bytes`` while streaming, within ``total_timeout`` (or by ``deadline``,
        a :meth:`deadline` instant, when that comes first). Returns ``(content_type,
        size)``; the Content-Type is the server's claim only (inspection decides the
        real type).

        On any failure ``dest_path`` is removed and :class:`FetchError` raised (with
        ``path`` as the issue path when given).
        """
        dest = Path(dest_path)
        size = 0
        try:
            with self._within(deadline), self._get(url) as response:
                if not 200 <= response.status_code < 300:
                    raise FetchError(f"{_short(url)} answered HTTP {response.status_code}",
                                     reason="http_status", status=response.status_code)
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > max_bytes:
                    raise FetchError(f"{_short(url)} is {size_text(int(declared))}, over the "
                                     f"{size_text(max_bytes)} limit", reason="too_large")
                started = time.monotonic()
                with dest.open("wb") as out:
                    try:
                        # iter_bytes decodes gzip/deflate: the cap applies to what we
                        # keep; no chunk size, so each read is checked as it arrives
                        for chunk in response.iter_bytes():
                            size += len(chunk)
                            if size > max_bytes:
                                raise FetchError(f"{_short(url)} is over the "
                                                 f"{size_text(max_bytes)} limit",
                                                 reason="too_large")
                            self._check_rate(url, size, started)
                            out.write(chunk)
                    except httpx.HTTPError as exc:
                        raise self._failure(url, exc) from None
                return response.headers.get("content-type"), size
        except FetchError as exc:
            dest.unlink(missing_ok=True)
            exc.received = size
            raise exc.at(path) if path else exc from None
        except BaseException:
            dest.unlink(missing_ok=True)
            raise

    def _check_rate(self, url: str, size: int, started: float) -> None:
        elapsed = time.monotonic() - started
        if elapsed > self.rate_grace_s and size < self.min_rate * elapsed:
            raise FetchError(f"{_short(url)} is sending too slowly: {size_text(size)} in "
                             f"{elapsed:.0f} s, under the minimum of "
                             f"{size_text(int(self.min_rate))} a second", reason="too_slow")

    @contextmanager
    def _get(self, url: str) -> Iterator[httpx.Response]:
        """A streamed GET whose every redirect hop was checked; yields the final answer."""
        current = url
        for _hop in range(self.max_redirects + 1):
            self.check(current)
            response = self._send("GET", current)
            location = response.headers.get("location")
            if response.is_redirect and location:
                response.close()
                try:
                    current = str(response.url.join(location))
                except (httpx.InvalidURL, ValueError):
                    raise FetchError(f"{_short(current)} redirected to an invalid URL: "
                                     f"{_short(location)}", reason="invalid_url") from None
                continue
            try:
                yield response
            finally:
                response.close()
            return
        raise FetchError(f"{_short(url)} redirected more than {self.max_redirects} times",
                         reason="too_many_redirects")

    def _send(self, method: str, url: str, **kw: Any) -> httpx.Response:
        deadline = _DEADLINE.get()
        if deadline is not None:  # waiting for a pooled connection counts too
            left = max(0.001, deadline - time.monotonic())
            kw["timeout"] = httpx.Timeout(self._timeout.read, connect=self._timeout.connect,
                                          pool=min(self._timeout.pool or left, left))
        try:
            request = self._client.build_request(method, url, **kw)
            return self._client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise self._failure(url, exc) from None

    def _failure(self, url: str, exc: httpx.HTTPError) -> FetchError:
        """A transport failure as a FetchError that names the URL and what went wrong."""
        u = _short(url)
        detail = (str(exc) or type(exc).__name__)[:200]
        if isinstance(exc, httpx.TimeoutException):
            deadline = _DEADLINE.get()
            if deadline is not None and time.monotonic() >= deadline - 0.05:
                return FetchError(f"{u} timed out: the fetch took longer than "
                                  f"{self.total_timeout:g} s", reason="timeout")
            waited = (self._timeout.connect if isinstance(exc, httpx.ConnectTimeout)
                      else self._timeout.read)
            return FetchError(f"{u} timed out: nothing came for {waited:g} s",
                              reason="timeout")
        if isinstance(exc, httpx.ConnectError):
            return FetchError(f"{u} cannot be reached: {detail}", reason="unreachable")
        if isinstance(exc, httpx.RemoteProtocolError):
            return FetchError(f"{u} hung up before its answer was complete: {detail}",
                              reason="interrupted")
        if isinstance(exc, httpx.NetworkError):  # read or write failed: reset, broken pipe
            return FetchError(f"{u}: the connection broke off mid-transfer: {detail}",
                              reason="interrupted")
        if isinstance(exc, httpx.DecodingError):
            return FetchError(f"{u} sent a body that cannot be decoded: {detail}",
                              reason="bad_response")
        if isinstance(exc, httpx.ProtocolError):
            return FetchError(f"{u} did not answer in readable HTTP: {detail}",
                              reason="bad_response")
        return FetchError(f"{u} cannot be fetched: {detail}", reason="unreachable")

    # --- webhooks --------------------------------------------------------------------

    def post_json(self, url: str, body: Any, headers: Mapping[str, str] | None = None, *,
                  path: str | None = None) -> httpx.Response:
        """POST ``body`` as JSON (``bytes`` are sent as they are, so a signature made
        over them stays valid) within ``total_timeout``. Redirects are not followed: a
        3xx is returned as the answer. The reply body is kept up to 64 KB. Refusals and
        transport failures raise :class:`FetchError`; any HTTP status is returned."""
        content = body if isinstance(body, bytes) else json.dumps(
            body, separators=(",", ":")).encode()
        try:
            self.check(url)
            all_headers = {"Content-Type": "application/json", **(headers or {})}
            with self._within(None):
                response = self._send("POST", url, content=content, headers=all_headers)
                try:
                    kept = bytearray()
                    for chunk in response.iter_bytes(16 * 1024):
                        kept += chunk[: MAX_REPLY_BYTES - len(kept)]
                        if len(kept) >= MAX_REPLY_BYTES:
                            break
                except httpx.HTTPError:
                    pass  # the status is what matters; a broken reply body does not
                finally:
                    response.close()
        except FetchError as exc:
            raise exc.at(path) if path else exc from None
        # the kept body is already decoded: drop the headers that describe the wire form
        reply_headers = [(k, v) for k, v in response.headers.multi_items()
                         if k.lower() not in ("content-encoding", "content-length",
                                              "transfer-encoding")]
        return httpx.Response(response.status_code, headers=reply_headers,
                              content=bytes(kept), request=response.request)


def _short(url: str) -> str:
    return url if len(url) <= 120 else url[:117] + "..."


def size_text(n: int) -> str:
    """``n`` bytes as the fetcher's messages say it: ``12.5 MB`` or ``900 bytes``."""
    return f"{n / MB:.1f} MB" if n >= MB else f"{n} bytes"
