"""Graph error envelopes from the Threads sandbox mapped to chat33's errors over real HTTP:
transient, permanent, auth, rate-limited with its wait, unknown outcome."""

from __future__ import annotations

import json

import pytest
from chat33_threads.graph import THREADS

from chat33_core.errors import (
    PermanentError,
    QuotaExceeded,
    ReconnectRequired,
    TransientError,
    UnknownOutcome,
)
from chat33_core.graph import GraphError, envelope_error

from .conftest import TOKEN, Sandbox


def envelope(code: int, subcode: int | None = None, **extra: object) -> dict[str, object]:
    return GraphError(code=code, message=f"code {code}", subcode=subcode).body() | extra


def test_a_server_failure_while_creating_a_container_is_transient(sandbox: Sandbox) -> None:
    sandbox.fault(method="POST", path="/threads$", status=500,
                  body=envelope(2, is_transient=True))
    with pytest.raises(TransientError) as caught:
        sandbox.platform.publish(sandbox.context(["x"]))
    assert not isinstance(caught.value, UnknownOutcome)
    assert sandbox.posts() == []


def test_a_server_failure_of_threads_publish_is_an_unknown_outcome(sandbox: Sandbox) -> None:
    sandbox.fault(method="POST", path="/threads_publish$", status=500, body=envelope(2))
    with pytest.raises(UnknownOutcome):
        sandbox.platform.publish(sandbox.context(["x"]))


def test_a_lost_connection_during_threads_publish_is_an_unknown_outcome(
        sandbox: Sandbox) -> None:
    sandbox.fault(method="POST", path="/threads_publish$", status=504, body="",
                  after_body=True)
    with pytest.raises(UnknownOutcome):
        sandbox.platform.publish(sandbox.context(["x"]))
    assert len(sandbox.posts()) == 1  # it got through: confirm must find it


def test_an_expired_token_asks_for_a_reconnect(sandbox: Sandbox) -> None:
    """Threads refreshes only live tokens: once expired, only a new login helps."""
    sandbox.token(token=TOKEN, expiresAt=0)
    with pytest.raises(ReconnectRequired, match="token expired"):
        sandbox.platform.publish(sandbox.context(["x"]))


def test_a_revoked_token_asks_for_a_reconnect(sandbox: Sandbox) -> None:
    sandbox.token(token=TOKEN, revoked=True)
    with pytest.raises(ReconnectRequired):
        sandbox.platform.publish(sandbox.context(["x"]))


def test_a_missing_permission_asks_for_a_reconnect(sandbox: Sandbox) -> None:
    sandbox.fault(method="POST", path="/threads$", status=403, body=envelope(10))
    with pytest.raises(ReconnectRequired, match="threads_content_publish"):
        sandbox.platform.publish(sandbox.context(["x"]))


def test_throttling_waits_as_long_as_meta_says(sandbox: Sandbox) -> None:
    usage = {"1": [{"type": "threads", "estimated_time_to_regain_access": 7}]}
    sandbox.fault(method="POST", path="/threads$", status=400, body=envelope(4),
                  headers={"X-Business-Use-Case-Usage": json.dumps(usage)})
    with pytest.raises(TransientError) as caught:
        sandbox.platform.publish(sandbox.context(["x"]))
    assert caught.value.retry_after == 7 * 60


def test_a_spent_quota_at_publish_defers(sandbox: Sandbox) -> None:
    sandbox.fault(method="POST", path="/threads_publish$", status=400, body=envelope(9))
    with pytest.raises(QuotaExceeded):
        sandbox.platform.publish(sandbox.context(["x"]))


def test_too_many_links_is_permanent_with_threads_message(sandbox: Sandbox) -> None:
    text = " ".join(f"https://e.com/{i}" for i in range(6))
    with pytest.raises(PermanentError, match="LINK_LIMIT_EXCEEDED"):
        sandbox.platform.publish(sandbox.context([text]))


def test_a_restricted_user_is_permanent_with_a_readable_message() -> None:
    error = envelope_error(GraphError(code=1, message="x", subcode=4279013), THREADS,
                           creates=True)
    assert isinstance(error, PermanentError) and "restricted" in error.message


def test_an_unfinished_container_is_retried_not_failed() -> None:
    error = envelope_error(GraphError(code=9007, message="not ready", subcode=2207027),
                           THREADS, creates=True)
    assert type(error) is TransientError
