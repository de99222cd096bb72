"""The plugin kit's Graph API errors: the envelope a sandbox writes is the one the mapper
reads, and a platform's own codes are data (here an imagined Threads)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from werkzeug.wrappers import Request, Response

from chat33_core.errors import (
    CredentialsExpired,
    PermanentError,
    QuotaExceeded,
    ReconnectRequired,
    Throttled,
    TransientError,
    UnknownOutcome,
)
from chat33_core.graph import (
    DEFAULT_THROTTLE_WAIT_S,
    GraphError,
    GraphFailure,
    GraphPlatform,
    app_usage_percent,
    envelope_error,
    graph_error,
    usage_wait_s,
)
from chat33_core.sandbox import SandboxApp, json_response, serve

THREADS = GraphPlatform(name="Threads", scopes="threads_content_publish",
                        quota_subcodes=frozenset({4279009}), quota_wait=timedelta(hours=2),
                        permanent_subcodes=frozenset({4279001}),
                        transient_subcodes=frozenset({4279002}),
                        retry_subcodes={4279003: "the container is not ready"},
                        user_messages={4279004: "The post has too many links."})
PAGES = GraphPlatform(name="Pages", account="Page", refreshable_tokens=False)


class Failing(SandboxApp):
    """Answers every ``POST /v1.0/me/threads`` with the failure the test set."""

    def __init__(self) -> None:
        super().__init__()
        self.failure: GraphFailure | None = None
        self.route("/v1.0/me/threads", self.create, methods=["POST"])

    def create(self, request: Request) -> Response:
        if self.failure is not None:
            raise self.failure
        return json_response({"id": "1"})

    def dispatch(self, request: Request) -> Response:
        try:
            return super().dispatch(request)
        except GraphFailure as failure:
            return failure.response()


def fail_over_http(failure: GraphFailure, *, creates: bool = False) -> Any:
    app = Failing()
    app.failure = failure
    with serve(app) as url:
        response = httpx.post(f"{url}/v1.0/me/threads")
    return response, graph_error(response, THREADS, creates=creates, what="creating a post")


def envelope(code: int | None, subcode: int | None = None, **extra: Any) -> GraphError:
    parsed = GraphError.parse({"error": {"message": "m", "code": code,
                                         "error_subcode": subcode, **extra}})
    assert parsed is not None
    return parsed


def test_the_envelope_a_sandbox_writes_is_the_one_meta_sends():
    response, _ = fail_over_http(GraphFailure(
        36000, "The image size is too large.", subcode=2207004, user_title="Too large",
        user_msg="Less than 8 MiB, please.", headers={"X-App-Usage": '{"call_count": 5}'}))
    assert response.status_code == 400
    error = response.json()["error"]
    assert {k: error[k] for k in ("message", "type", "code", "error_subcode", "is_transient",
                                  "error_user_title", "error_user_msg")} == {
        "message": "The image size is too large.", "type": "OAuthException", "code": 36000,
        "error_subcode": 2207004, "is_transient": False, "error_user_title": "Too large",
        "error_user_msg": "Less than 8 MiB, please."}
    assert error["fbtrace_id"]
    assert response.headers["X-App-Usage"] == '{"call_count": 5}'


def test_a_user_fixable_error_over_http_carries_the_platforms_message():
    _, error = fail_over_http(GraphFailure(100, "Invalid parameter", user_title="Too long",
                                           user_msg="Shorten the text."))
    assert type(error) is PermanentError
    assert error.message == "Too long: Shorten the text." and error.platform_code == "100"


def test_throttling_waits_for_metas_estimate_or_the_default():
    buc = json.dumps({"1": [{"type": "threads", "estimated_time_to_regain_access": 9}]})
    _, estimated = fail_over_http(GraphFailure(
        80002, "Too many calls", is_transient=True,
        headers={"X-Business-Use-Case-Usage": buc}), creates=True)
    _, default = fail_over_http(GraphFailure(4, "App limit"), creates=True)
    # the platform's rate limit: the post waits for it without spending an attempt
    assert type(estimated) is Throttled and estimated.retry_after == 9 * 60
    assert type(default) is Throttled and default.retry_after == DEFAULT_THROTTLE_WAIT_S
    assert DEFAULT_THROTTLE_WAIT_S == 300


def test_a_transient_failure_of_a_creating_request_is_an_unknown_outcome():
    failure = GraphFailure(2, "Service temporarily unavailable", is_transient=True, status=500)
    _, creating = fail_over_http(failure, creates=True)
    _, other = fail_over_http(failure)
    assert type(creating) is UnknownOutcome and type(other) is TransientError


def test_the_platforms_codes_are_data():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    quota = envelope_error(envelope(9, 4279009), THREADS, now=now)
    assert isinstance(quota, QuotaExceeded) and quota.retry_at == now + timedelta(hours=2)
    # subcode 4279001 fails the post although code 1 alone is transient
    assert type(envelope_error(envelope(1, 4279001), THREADS)) is PermanentError
    assert type(envelope_error(envelope(1), THREADS)) is TransientError
    # a retry subcode is certain: the platform did not act, even for a creating request
    assert type(envelope_error(envelope(100, 4279003), THREADS, creates=True)) \
        is TransientError
    assert type(envelope_error(envelope(100, 4279002), THREADS, creates=True)) \
        is UnknownOutcome
    assert envelope_error(envelope(100, 4279004), THREADS).message == \
        "The post has too many links."
    # the same subcodes mean nothing to another platform
    assert type(envelope_error(envelope(1, 4279001), PAGES)) is TransientError


@pytest.mark.parametrize(("subcode", "threads", "pages"), [
    (None, CredentialsExpired, ReconnectRequired),
    (463, CredentialsExpired, ReconnectRequired),
    (460, ReconnectRequired, ReconnectRequired),
    (492, ReconnectRequired, ReconnectRequired),
])
def test_token_errors_refresh_only_where_the_platform_can(subcode, threads, pages):
    assert type(envelope_error(envelope(190, subcode), THREADS)) is threads
    refused = envelope_error(envelope(190, subcode), PAGES)
    assert type(refused) is pages and "reconnect the Page" in refused.message


def test_permission_errors_name_the_scopes_to_grant():
    error = envelope_error(envelope(200), THREADS, what="publishing")
    assert type(error) is ReconnectRequired
    assert "threads_content_publish" in error.message


@pytest.mark.parametrize(("code", "text"), [(368, "policy"), (506, "duplicate")])
def test_policy_blocks_and_duplicates_fail(code, text):
    error = envelope_error(envelope(code), PAGES)
    assert type(error) is PermanentError and text in error.message


@pytest.mark.parametrize(("status", "creates", "expected"), [
    (500, True, UnknownOutcome), (503, False, TransientError), (408, True, UnknownOutcome),
    (429, True, Throttled), (401, False, CredentialsExpired), (404, True, PermanentError),
])
def test_an_answer_without_an_envelope_is_read_by_its_status(status, creates, expected):
    response = httpx.Response(status, text="<html>gateway</html>")
    error = graph_error(response, THREADS, creates=creates)
    assert type(error) is expected and error.platform_code == f"http-{status}"


def test_a_401_without_an_envelope_needs_a_reconnect_where_tokens_do_not_refresh():
    assert type(graph_error(httpx.Response(401), PAGES)) is ReconnectRequired


@pytest.mark.parametrize("body", [None, [], "text", {"error": "a string"}, {"data": {}},
                                  {"error": []}])
def test_bodies_without_an_envelope_parse_to_none(body):
    assert GraphError.parse(body) is None


def test_odd_envelope_values_do_not_break_the_mapping():
    parsed = GraphError.parse({"error": {"code": "not a number", "error_subcode": "x"}})
    assert parsed is not None and parsed.code is None and parsed.platform_code is None
    error = envelope_error(parsed, THREADS)
    assert type(error) is PermanentError


def test_usage_headers_are_read_case_insensitively_and_bad_ones_ignored():
    buc = json.dumps({"1": [{"estimated_time_to_regain_access": 3},
                            {"estimated_time_to_regain_access": 0}, "junk"]})
    assert usage_wait_s({"x-business-use-case-usage": buc}) == 180
    assert usage_wait_s({"X-Business-Use-Case-Usage": "{not json"}) is None
    assert usage_wait_s({}) is None
    assert app_usage_percent({"X-App-Usage": '{"call_count": 97, "total_time": 12}'}) == 97
    assert app_usage_percent({"X-App-Usage": "[1, 2]"}) is None
