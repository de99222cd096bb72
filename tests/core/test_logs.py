"""chat33_core.logs: context fields, the JSON and text formats, masking of secret-looking
values, and the CHAT33_LOG_FORMAT check."""

from __future__ import annotations

import json
import logging
import sys
import threading

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
    ("callback?code=AUTHCODE&state=1", "callback?code=***&state=1"),
    ("password=hunter22 api_key=sk_live_1", "password=*** api_key=***"),
])
def test_secret_looking_values_are_masked(text: str, masked: str) -> None:
    assert logs.redact(text) == masked


def test_ordinary_pairs_are_kept() -> None:
    text = "statusCode=429 platformCode=quota retryCount=2 post_id=post_1"
    assert logs.redact(text) == text


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
