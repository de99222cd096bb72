"""Log lines of the API and the worker: one JSON object a line, or text.

``CHAT33_LOG_FORMAT=json`` (the default of ``chat33 serve`` and ``chat33 worker``) writes
each record as one JSON object: ``time``, ``level``, ``logger``, ``message``, the fields
of the work in hand (:func:`context`: ``postId``, ``accountId``, ``orgId``, ``platform``,
``attempt``, ``requestId`` where they apply) and a record's own ``fields`` (the access
log's). ``text`` writes ``time level logger: message`` followed by the same fields as
``key=value``.

Log messages never carry a token, an authorization code, an API key, a password or a
secret. Libraries log what chat33 cannot choose: at DEBUG, httpx logs every request's
full URL, and Meta's token endpoints take the app secret, the code and tokens in the
query string (oauth.md §1). So :func:`configure` makes every log record of the process,
whichever library writes it and at whatever level, pass through :func:`redact` as it is
made (:func:`scrub`): secret-looking ``name=value`` pairs (a query string, a form body)
and ``"name": "value"`` pairs, URL userinfo, Telegram's bot token in a URL path and
``Bearer`` credentials are masked before any handler sees the record. The formatters
redact once more (a record made before :func:`configure`).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

FORMATS = ("json", "text")
#: the fields a context may carry, in the order lines show them
FIELDS = ("requestId", "orgId", "accountId", "postId", "platform", "attempt")
#: libraries that log every request at INFO: WARNING unless DEBUG is asked for
HTTP_LOGGERS = ("httpx", "httpcore")
#: the schema check at start would log alembic's plugin setup line by line
QUIET_LOGGERS = (*HTTP_LOGGERS, "alembic")

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_context: ContextVar[Mapping[str, Any]] = ContextVar("chat33_log_context", default=_EMPTY)
#: names of secret values: ``token``, ``secret``, ``password``, ``key``, ``signature``,
#: ``verifier``, ``assertion`` alone or as the last word of a snake_case name
#: (``fb_exchange_token``, ``client_secret``, ``code_verifier``); ``code``, ``state``
#: (an OAuth callback's), ``apikey``; camelCase ones (``accessToken``, ``clientSecret``)
_SECRET_WORDS = frozenset({"token", "secret", "password", "passwd", "key", "signature",
                           "verifier", "assertion"})
_SECRET_NAMES = frozenset({"code", "state", "apikey"})
_CAMEL_ENDS = ("Token", "Secret", "Password")
#: a ``name=value`` pair and a JSON ``"name": "value"`` pair (possessive: linear time)
_PAIR = re.compile(r"\b(\w++)=([^&\s\"',;]++)")
_JSON_PAIR = re.compile(r"(\"(\w++)\"\s*+:\s*+\")([^\"]++)\"")
#: ``scheme://user:password@host``
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*+://)[^/\s@?#]++@")
#: Telegram's Bot API puts the bot token in the path: ``/bot123456:AA.../sendMessage``
_BOT_TOKEN = re.compile(r"/bot(\d++):[\w-]++")
_BEARER = re.compile(r"(?i)\b(Bearer|Basic|OAuth)\s+[\w.~+/=:-]{16,}")


@contextmanager
def context(**fields: Any) -> Iterator[None]:
    """Add ``fields`` (None values are left out) to every line logged inside the block,
    in this thread or task."""
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items()
                                               if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def bind(**fields: Any) -> object:
    """Like :func:`context` for code that cannot wrap a block (a request's hooks): the
    returned token goes to :func:`unbind`."""
    return _context.set({**_context.get(), **{k: v for k, v in fields.items()
                                              if v is not None}})


def unbind(token: object) -> None:
    _context.reset(token)  # type: ignore[arg-type]


def current() -> dict[str, Any]:
    return dict(_context.get())


def _secret_name(name: str) -> bool:
    lowered = name.lower()
    return (lowered in _SECRET_NAMES or lowered.rpartition("_")[2] in _SECRET_WORDS
            or (name[:1].islower() and name.endswith(_CAMEL_ENDS)))


def redact(text: str) -> str:
    """``text`` with its secret-looking values masked (see the module's docstring)."""
    if "=" in text:
        text = _PAIR.sub(lambda m: f"{m[1]}=***" if _secret_name(m[1]) else m[0], text)
    if '"' in text:
        text = _JSON_PAIR.sub(lambda m: f'{m[1]}***"' if _secret_name(m[2]) else m[0], text)
    if "@" in text:
        text = _USERINFO.sub(lambda m: f"{m[1]}***@", text)
    if "/bot" in text:
        text = _BOT_TOKEN.sub(lambda m: f"/bot{m[1]}:***", text)
    return _BEARER.sub(lambda m: f"{m[1]} ***", text)


def scrub(record: logging.LogRecord) -> logging.LogRecord:
    """``record`` with its message (and its exception's text) redacted in place: the
    message is formatted once with its arguments, and kept as it was when nothing in it
    looks secret."""
    try:
        message = record.getMessage()
    except Exception:  # arguments that do not fit: logging reports it when it emits
        return record
    clean = redact(message)
    if clean != message:
        record.msg, record.args = clean, ()
    if record.exc_info and not record.exc_text:
        record.exc_text = redact(_EXCEPTIONS.formatException(record.exc_info))
    return record


_EXCEPTIONS = logging.Formatter()


def _scrubbing_factory() -> None:
    """Make every log record of the process go through :func:`scrub` (once)."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, "chat33_scrubs", False):
        return

    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return scrub(factory(*args, **kwargs))

    make.chat33_scrubs = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(make)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = dict(_context.get())
    own = getattr(record, "fields", None)
    if isinstance(own, Mapping):
        fields.update(own)
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object a line (see the module's docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname, "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for key, value in _fields(record).items():
            line.setdefault(key, value)
        if record.exc_info:
            line["exception"] = redact(record.exc_text
                                       or self.formatException(record.exc_info))
        if record.stack_info:
            line["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``time level logger: message key=value ...``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = redact(super().format(record))
        fields = _fields(record)
        if fields:
            text += " " + " ".join(f"{k}={json.dumps(v, default=str)}"
                                   for k, v in fields.items())
        return text


def formatter(fmt: str) -> logging.Formatter:
    return JsonFormatter() if fmt == "json" else TextFormatter()


def log_format(env: Mapping[str, str], default: str = "json") -> str:
    """``CHAT33_LOG_FORMAT`` (json or text), refused clearly when it is neither."""
    from .errors import ConfigurationError

    value = (env.get("CHAT33_LOG_FORMAT") or default).strip().lower()
    if value not in FORMATS:
        raise ConfigurationError(f"CHAT33_LOG_FORMAT must be json or text, not {value!r}")
    return value


def configure(fmt: str, level: str = "INFO") -> logging.Handler:
    """The process's logging: one handler on stderr, for every logger, in ``fmt`` (the
    handlers others added, a test runner's, are kept);
    ``level`` for chat33, HTTP client libraries at WARNING unless ``level`` is DEBUG;
    every record of the process redacted as it is made (:func:`scrub`)."""
    level = level.upper()
    _scrubbing_factory()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(fmt))
    handler.set_name("chat33")
    root = logging.getLogger()
    for old in list(root.handlers):
        if old.get_name() == "chat33":  # configured before in this process: replaced
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if level == "DEBUG" else logging.WARNING)
    return handler


__all__ = ["FIELDS", "FORMATS", "JsonFormatter", "TextFormatter", "bind", "configure",
           "context", "current", "formatter", "log_format", "redact", "scrub", "unbind"]
