"""Bluesky's XRPC errors mapped to what the worker must do, over real HTTP."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from chat33_bluesky.xrpc import QUOTA_WAIT_S, RateLimitedByBluesky

from chat33_core.errors import (
    CredentialsExpired,
    PermanentError,
    QuotaExceeded,
    TransientError,
    UnknownOutcome,
)
from chat33_core.platforms import MediaFile

from .conftest import Sandbox

Media = Callable[[str], MediaFile]
CREATE = "com.atproto.repo.createRecord"
UPLOAD = "com.atproto.repo.uploadBlob"


def test_an_expired_access_jwt_is_a_400_that_means_refresh(sandbox: Sandbox) -> None:
    ctx = sandbox.context(["later"])
    sandbox.advance(7201)
    with pytest.raises(CredentialsExpired) as caught:
        sandbox.platform.publish(ctx)
    assert caught.value.platform_code == "ExpiredToken"
    assert sandbox.posts() == []


def test_a_forged_token_means_refresh(sandbox: Sandbox) -> None:
    ctx = sandbox.context(["forged"])
    head, body, _sig = ctx.credentials.access_token.split(".")
    import attrs

    ctx.credentials = attrs.evolve(ctx.credentials, access_token=f"{head}.{body}.AAAA")
    with pytest.raises(CredentialsExpired) as caught:
        sandbox.platform.publish(ctx)
    assert caught.value.platform_code == "InvalidToken"


def test_a_missing_token_is_a_401_that_means_refresh(sandbox: Sandbox) -> None:
    sandbox.fault(method="POST", path=CREATE, status=401,
                  body={"error": "AuthMissing", "message": "Authentication Required"})
    with pytest.raises(CredentialsExpired) as caught:
        sandbox.platform.publish(sandbox.context(["x"]))
    assert caught.value.platform_code == "AuthMissing"


def test_publishing_without_a_session_asks_for_one(sandbox: Sandbox) -> None:
    from chat33_core.models import Credentials

    ctx = sandbox.context(["x"], credentials=Credentials(access_token="sandbox-token"))
    with pytest.raises(CredentialsExpired) as caught:
        sandbox.platform.publish(ctx)
    assert caught.value.platform_code == "no-session"


def test_a_rate_limit_that_resets_soon_is_retried_after_the_reset(sandbox: Sandbox) -> None:
    reset = int(time.time()) + 120
    sandbox.fault(method="POST", path=CREATE, status=429,
                  headers={"RateLimit-Reset": str(reset), "RateLimit-Remaining": "0"},
                  body={"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"})
    with pytest.raises(RateLimitedByBluesky) as caught:
        sandbox.platform.publish(sandbox.context(["x"]))
    assert caught.value.retry_after is not None and 100 < caught.value.retry_after <= 120
    assert sandbox.posts() == []


def test_a_spent_hourly_write_budget_defers_until_it_resets(sandbox: Sandbox) -> None:
    sandbox.config(write_points=4)  # one post costs 3 points
    sandbox.platform.publish(sandbox.context(["first"]))
    with pytest.raises(QuotaExceeded) as caught:
        sandbox.platform.publish(sandbox.context(["second"]))
    assert caught.value.retry_at is not None
    wait = caught.value.retry_at.timestamp() - time.time()
    assert QUOTA_WAIT_S < wait <= 3600
    assert len(sandbox.posts()) == 1


def test_too_many_logins_are_rate_limited_not_a_reconnect(sandbox: Sandbox) -> None:
    sandbox.config(create_session_limit=1)
    sandbox.login()
    with pytest.raises(RateLimitedByBluesky) as caught:
        sandbox.login()
    assert caught.value.retry_after is not None and caught.value.retry_after <= 300


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_before_the_post_are_transient(sandbox: Sandbox, media: Media,
                                                     status: int) -> None:
    sandbox.fault(method="POST", path=UPLOAD, status=status,
                  body={"error": "InternalServerError", "message": "Internal Server Error"})
    with pytest.raises(TransientError) as caught:
        sandbox.platform.publish(sandbox.context(["x"], media=[[media("photo.jpg")]]))
    assert str(status) in caught.value.message
    assert sandbox.posts() == []


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_on_the_post_itself_are_unknown_outcomes(sandbox: Sandbox,
                                                               status: int) -> None:
    sandbox.fault(method="POST", path=CREATE, status=status,
                  body={"error": "UpstreamFailure", "message": "Upstream Failure"})
    with pytest.raises(UnknownOutcome) as caught:
        sandbox.platform.publish(sandbox.context(["x"]))
    assert caught.value.platform_code == "UpstreamFailure"


def test_a_record_bluesky_refuses_is_permanent_with_its_message(sandbox: Sandbox) -> None:
    with pytest.raises(PermanentError) as caught:
        sandbox.platform.publish(sandbox.context(["a" * 301]))  # validation skipped
    assert caught.value.platform_code == "InvalidRequest"
    assert "must not be longer than 300 graphemes" in caught.value.message
    # refused, so the next attempt may send again: nothing is marked as in flight
    assert sandbox.posts() == []


def test_an_upload_over_the_pds_limit_is_permanent(sandbox: Sandbox, media: Media) -> None:
    sandbox.config(upload_limit_bytes=1000)
    with pytest.raises(PermanentError) as caught:
        sandbox.platform.publish(sandbox.context(["x"], media=[[media("photo.jpg")]]))
    assert caught.value.platform_code == "PayloadTooLarge"


def test_an_image_over_the_blob_limit_is_refused_by_the_record(sandbox: Sandbox,
                                                               media: Media) -> None:
    sandbox.config(image_max_bytes=1000)
    with pytest.raises(PermanentError) as caught:
        sandbox.platform.publish(sandbox.context(["x"], media=[[media("photo.jpg")]]))
    assert "file size too large" in caught.value.message


def test_a_method_the_server_lacks_is_permanent(sandbox: Sandbox) -> None:
    sandbox.fault(method="POST", path=CREATE, status=501,
                  body={"error": "MethodNotImplemented", "message": "Method Not Implemented"})
    with pytest.raises(PermanentError) as caught:
        sandbox.platform.publish(sandbox.context(["x"]))
    assert caught.value.platform_code == "MethodNotImplemented"


def test_an_answer_that_is_not_json_is_handled(sandbox: Sandbox) -> None:
    sandbox.fault(method="POST", path=CREATE, status=200, body="<html>proxy</html>")
    with pytest.raises(UnknownOutcome) as caught:
        sandbox.platform.publish(sandbox.context(["x"]))
    assert caught.value.platform_code == "bad-response"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_pds_that_cannot_be_reached_is_transient(sandbox: Sandbox) -> None:
    import attrs

    ctx = sandbox.context(["x"])
    extra = {**ctx.credentials.extra, "pds": f"http://127.0.0.1:{_closed_port()}"}
    ctx.credentials = attrs.evolve(ctx.credentials, extra=extra)
    with pytest.raises(TransientError) as caught:
        sandbox.platform.publish(ctx)
    assert caught.value.platform_code == "network"


@contextmanager
def hanging_up_server() -> Iterator[tuple[str, list[bytes]]]:
    """A server on loopback that reads each request and closes without answering."""
    received: list[bytes] = []
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.05)  # accept() wakes up to notice the end of the test
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                received.append(conn.recv(65536))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}", received
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()


def test_a_connection_dropped_after_sending_the_post_is_an_unknown_outcome(
        sandbox: Sandbox) -> None:
    import attrs

    ctx = sandbox.context(["x"])
    with hanging_up_server() as (url, received):
        ctx.credentials = attrs.evolve(ctx.credentials,
                                       extra={**ctx.credentials.extra, "pds": url})
        with pytest.raises(UnknownOutcome) as caught:
            sandbox.platform.publish(ctx)
    assert caught.value.platform_code == "network"
    assert received and CREATE.encode() in received[0]
    assert ctx.checkpoints.load()["items"]["0"]["sent"] is True


def test_a_429_without_ratelimit_headers_falls_back_to_retry_after(sandbox: Sandbox) -> None:
    sandbox.fault(method="POST", path=CREATE, status=429, headers={"Retry-After": "42"},
                  body={"error": "RateLimitExceeded", "message": "slow down"})
    with pytest.raises(RateLimitedByBluesky) as caught:
        sandbox.platform.publish(sandbox.context(["x"]))
    assert caught.value.retry_after == 42.0


def test_a_request_timeout_answer_is_transient(sandbox: Sandbox) -> None:
    sandbox.fault(method="POST", path=CREATE, status=408, body="request timeout")
    with pytest.raises(TransientError) as caught:
        sandbox.platform.publish(sandbox.context(["x"]))
    assert not isinstance(caught.value, RateLimitedByBluesky)
    assert caught.value.platform_code == "408"
    assert sandbox.posts() == []
