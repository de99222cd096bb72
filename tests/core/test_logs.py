"""chat33_core.logs: context fields, the JSON and text formats, masking of secret-looking
values, and the CHAT33_LOG_FORMAT check."""

from __future__ import annotations

import json
import logging
import sys
import threading

import httpx
import pytest

from chat33_core import logs
from chat33_core.errors import ConfigurationError


def _record(message: str, *args: object, exc: bool = False, **fields: object
            ) -> logging.LogRecord:
    record = logging.LogRecord("chat33.test", logging.INFO, __file__, 1, message, args,
                               sys.exc_info() if exc else None)
    if fields:
        record.fields = fields
    return record


def test_context_fields_nest_leave_out_none_and_end_with_their_block() -> None:
    with logs.context(postId="post_1", attempt=None):
        with logs.context(platform="x", attempt=2):
            assert logs.current() == {"postId": "post_1", "platform": "x", "attempt": 2}
        assert logs.current() == {"postId": "post_1"}
    assert logs.current() == {}


def test_context_is_per_thread() -> None:
    seen: list[dict[str, object]] = []
    with logs.context(postId="post_main"):
        thread = threading.Thread(target=lambda: seen.append(logs.current()))
        thread.start()
        thread.join()
    assert seen == [{}]


def test_json_lines_carry_context_and_record_fields() -> None:
    token = logs.bind(requestId="req-1")
    try:
        with logs.context(postId="post_1"):
            line = logs.JsonFormatter().format(_record("hello %s", "there", status=201))
    finally:
        logs.unbind(token)
    record = json.loads(line)
    assert record["message"] == "hello there" and record["level"] == "INFO"
    assert record["logger"] == "chat33.test" and record["time"].endswith("Z")
    assert (record["requestId"], record["postId"], record["status"]) == ("req-1", "post_1", 201)
    assert "\n" not in line


def test_text_lines_end_with_the_fields() -> None:
    with logs.context(postId="post_1"):
        line = logs.TextFormatter().format(_record("done", status=200))
    assert line.endswith(' INFO chat33.test: done postId="post_1" status=200')


@pytest.mark.parametrize("text, masked", [
    ("GET https://graph.example/me?access_token=EAAB123&fields=id",
     "GET https://graph.example/me?access_token=***&fields=id"),
    ("grant_type=refresh_token&refresh_token=rt-42&client_secret=s3cr3t",
     "grant_type=refresh_token&refresh_token=***&client_secret=***"),
    ("callback?code=AUTHCODE&state=1", "callback?code=***&state=***"),
    ("password=hunter22 api_key=sk_live_1", "password=*** api_key=***"),
    ("GET /v25.0/oauth/access_token?grant_type=fb_exchange_token&fb_exchange_token=EAAU1",
     "GET /v25.0/oauth/access_token?grant_type=fb_exchange_token&fb_exchange_token=***"),
    ("code_verifier=v1 input_token=t1 accessToken=t2 clientSecret=s1",
     "code_verifier=*** input_token=*** accessToken=*** clientSecret=***"),
    ('{"access_token": "EAAB1", "expires_in": 3600}',
     '{"access_token": "***", "expires_in": 3600}'),
    ("GET https://alice:pa55@example.com/x", "GET https://***@example.com/x"),
    ("POST https://api.telegram.org/bot123456:AAH-x_y9/sendMessage",
     "POST https://api.telegram.org/bot123456:***/sendMessage"),
    ("Authorization: Bearer ya29.a0AfB_byC-xyz0123", "Authorization: Bearer ***"),
])
def test_secret_looking_values_are_masked(text: str, masked: str) -> None:
    assert logs.redact(text) == masked


def test_ordinary_pairs_are_kept() -> None:
    text = ("statusCode=429 platformCode=quota retryCount=2 post_id=post_1 the OAuth flow "
            "GET https://example.com/bot/x")
    assert logs.redact(text) == text


def test_at_debug_no_library_logs_a_secret_of_a_request(debug_logs) -> None:  # type: ignore[no-untyped-def]
    """httpx and httpcore at DEBUG log each request's URL and the answer's headers: the
    records themselves (what every handler gets) and chat33's lines are masked."""
    from chat33_core.sandbox import serve

    secrets = ["APPSECRET1", "AUTHCODE1", "EXCHANGED1", "BOTTOKEN1", "PASSWORD1", "STATE1"]

    def app(environ, start_response):  # type: ignore[no-untyped-def]
        start_response("302 Found", [("Location", "/back?code=AUTHCODE1&state=STATE1")])
        return [b""]

    caught = []
    handler = logging.Handler()
    handler.emit = caught.append  # type: ignore[method-assign]
    logging.getLogger().addHandler(handler)
    try:
        with serve(app) as base:
            host = base.removeprefix("http://")
            with httpx.Client() as client:
                client.get(f"{base}/v25.0/oauth/access_token", params={
                    "client_id": "app", "client_secret": "APPSECRET1", "code": "AUTHCODE1"})
                client.get(f"{base}/access_token?grant_type=fb_exchange_token"
                           "&fb_exchange_token=EXCHANGED1")
                client.post(f"{base}/bot42:BOTTOKEN1/sendMessage")
                client.get(f"http://user:PASSWORD1@{host}/me")
            try:
                raise RuntimeError(f"failed: {base}/?access_token=EXCHANGED1")
            except RuntimeError:
                logging.getLogger("chat33.test").exception("oops")
    finally:
        logging.getLogger().removeHandler(handler)
    output = debug_logs.getvalue()
    records = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caught)
    assert "HTTP Request: GET" in output and "httpcore" in output  # DEBUG did log them
    assert "client_secret=***" in records and "/bot42:***/" in records
    for secret in secrets:
        assert secret not in records, secret
        assert secret not in output, secret


def test_a_record_with_nothing_secret_keeps_its_arguments(debug_logs) -> None:  # type: ignore[no-untyped-def]
    record = logging.getLogger("chat33.test").makeRecord(
        "chat33.test", logging.INFO, __file__, 1, "posted %s", ("post_1",), None)
    assert logging.getLogRecordFactory() is not logging.LogRecord
    made = logging.getLogRecordFactory()("chat33.test", logging.INFO, __file__, 1,
                                         "token=%s", ("t-1",), None)
    assert record.args == ("post_1",)
    assert made.getMessage() == "token=***" and made.args == ()


def test_a_traceback_is_masked_too() -> None:
    try:
        raise RuntimeError("fetch failed: https://x.example/?access_token=LEAKED")
    except RuntimeError:
        line = logs.JsonFormatter().format(_record("oops", exc=True))
    record = json.loads(line)
    assert "LEAKED" not in line and "access_token=***" in record["exception"]


@pytest.mark.parametrize("given, wanted", [(None, "json"), ("TEXT", "text"), (" json ", "json")])
def test_the_log_format_is_read_from_the_environment(given: str | None, wanted: str) -> None:
    env = {} if given is None else {"CHAT33_LOG_FORMAT": given}
    assert logs.log_format(env) == wanted


def test_an_unknown_log_format_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="CHAT33_LOG_FORMAT must be json or text"):
        logs.log_format({"CHAT33_LOG_FORMAT": "xml"})


def test_configure_replaces_only_its_own_handler() -> None:
    root = logging.getLogger()
    others = list(root.handlers)
    level = root.level
    try:
        first = logs.configure("json")
        second = logs.configure("text", "WARNING")
        assert first not in root.handlers and second in root.handlers
        assert all(h in root.handlers for h in others)
        assert logging.getLogger("httpx").level == logging.WARNING
    finally:
        for handler in list(root.handlers):
            if handler.get_name() == "chat33":
                root.removeHandler(handler)
        root.setLevel(level)
