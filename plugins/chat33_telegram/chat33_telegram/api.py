"""Calls to the Bot API and its errors translated into chat33's (platforms-more.md §5.1, §5.4).

Every call is ``POST {base}/bot<token>/<method>``; every answer is the envelope
``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code", "description",
"parameters": {"retry_after" | "migrate_to_chat_id"}}``. What the worker must do:

=====================================  ===================================================
429 (``parameters.retry_after``)       :class:`RateLimitedByTelegram` with that wait (a
                                       wait over :data:`QUOTA_WAIT_S` is
                                       :class:`QuotaExceeded`); flood control refused
                                       the message, so nothing was sent
400 with ``migrate_to_chat_id``        :class:`ChatMigrated` (the group became a
                                       supergroup): the caller sends again there
401, 404 (token unknown or revoked),   :class:`ReconnectRequired`: a bot token does not
403 (bot kicked, no right to post)     expire and cannot be refreshed; the owner must act
400, other 4xx                         :class:`PermanentError` with Telegram's description
5xx                                    :class:`TransientError`; :class:`UnknownOutcome` for
                                       a request that sends a message (Telegram may have
                                       delivered it)
no answer                              by :mod:`chat33_core.http`'s rule
=====================================  ===================================================
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from chat33_core.errors import (
    PermanentError,
    QuotaExceeded,
    ReconnectRequired,
    Throttled,
    TransientError,
    UnknownOutcome,
)
from chat33_core.http import send

#: a flood wait longer than this defers the post instead of counting a failed attempt
QUOTA_WAIT_S = 900.0


class RateLimitedByTelegram(Throttled):
    """A 429: Telegram's flood control; retry after ``retry_after`` seconds."""


class ChatMigrated(PermanentError):
    """The group was upgraded to a supergroup: its messages now go to ``new_chat_id``."""

    def __init__(self, message: str, *, new_chat_id: int, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.new_chat_id = new_chat_id


def envelope(response: httpx.Response) -> Mapping[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, Mapping) else None


def raise_for_response(response: httpx.Response, *, creates: bool, what: str) -> Any:
    """The ``result`` of a successful answer; otherwise raise the chat33 error.

    ``creates`` marks a request that sends a message: a 5xx there (or an answer that is
    not the envelope) may hide a delivered message, so it is an :class:`UnknownOutcome`.
    """
    body = envelope(response)
    if body is not None and body.get("ok") is True and response.is_success:
        return body.get("result")
    status = response.status_code
    code = int(body.get("error_code") or status) if body is not None else status
    description = str(body.get("description") or "") if body is not None else ""
    description = description or response.text.strip()[:300] or f"HTTP {status}"
    parameters = body.get("parameters") if body is not None else None
    parameters = parameters if isinstance(parameters, Mapping) else {}
    text = f"{what}: {description}"
    platform_code = str(code)
    if code == 429:
        wait = _seconds(parameters.get("retry_after"))
        if wait is not None and wait > QUOTA_WAIT_S:
            raise QuotaExceeded(f"Telegram flood control: {description}",
                                retry_at=datetime.fromtimestamp(time.time() + wait, UTC),
                                platform_code=platform_code)
        raise RateLimitedByTelegram(f"Telegram flood control: {description}",
                                    retry_after=wait, platform_code=platform_code)
    if parameters.get("migrate_to_chat_id") is not None:
        raise ChatMigrated(f"{text} (the group is now the supergroup "
                           f"{parameters['migrate_to_chat_id']})",
                           new_chat_id=int(parameters["migrate_to_chat_id"]),
                           platform_code="migrated")
    if code in (401, 404):
        raise ReconnectRequired(f"Telegram refused the bot token ({description}): it was "
                                "revoked or mistyped; add the account again with the "
                                "token from @BotFather", platform_code=platform_code)
    if code == 403:
        raise ReconnectRequired(f"Telegram refused the bot ({description}): add the bot "
                                "to the chat again, as an admin allowed to post",
                                platform_code=platform_code)
    if code >= 500 or body is None:
        if creates:
            raise UnknownOutcome(f"{text} (HTTP {status}): the message may or may not "
                                 "have been sent", platform_code=platform_code)
        raise TransientError(f"{text} (HTTP {status})", platform_code=platform_code)
    raise PermanentError(text, platform_code=platform_code)


def _seconds(value: Any) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None


class BotApi:
    """Bot API methods called with one bot token."""

    def __init__(self, http: httpx.Client, base: str, token: str) -> None:
        self.http = http
        self.base = base.rstrip("/")
        self.token = token

    def url(self, method: str) -> str:
        return f"{self.base}/bot{self.token}/{method}"

    def call(self, method: str, *, creates: bool = False, what: str = "",
             json: Mapping[str, Any] | None = None, data: Mapping[str, str] | None = None,
             files: Mapping[str, Any] | None = None) -> Any:
        """Send one method call and return its ``result``; failures raise the chat33
        error (the token never appears in a message: it is part of the URL)."""
        what = what or f"Telegram {method}"
        kwargs: dict[str, Any] = {"json": dict(json)} if json is not None else {
            "data": dict(data or {}), "files": dict(files or {})}
        try:
            response = send(self.http, "POST", self.url(method), platform="Telegram",
                            what=what, creates=creates, **kwargs)
        except Exception as exc:
            _hide_token(exc, self.token)
            raise
        return raise_for_response(response, creates=creates, what=what)


def _hide_token(exc: BaseException, token: str) -> None:
    """Keep the bot token, part of every URL, out of error messages and logs."""
    message = getattr(exc, "message", None)
    if isinstance(message, str) and token in message:
        exc.message = message.replace(token, "<token>")  # type: ignore[attr-defined]
        exc.args = (exc.message,)  # type: ignore[attr-defined]
