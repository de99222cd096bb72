"""The Example platform's HTTP API, and how its answers become chat33 errors.

The protocol (JSON, ``Authorization: Bearer <access token>``):

* ``POST /v1/media`` ``{url}`` -> ``202 {id, status: "processing"}``: the platform fetches
  the image from our media URL; ``GET /v1/media/<id>`` -> ``{id, status: processing |
  ready | failed, error}``;
* ``POST /v1/posts`` ``{text, mediaIds, visibility, sensitive, clientRef}`` -> ``201
  {id, url}``; ``clientRef`` is chat33's post id, so a post whose answer was lost can be
  found again: ``GET /v1/posts?clientRef=R`` -> ``{data: [{id, url, clientRef}]}``;
* ``DELETE /v1/posts/<id>`` -> ``204``;
* ``POST /oauth/token`` ``{grant_type: "refresh_token", refresh_token}`` -> ``{access_token,
  refresh_token, expires_in}`` (the refresh token rotates).

Errors are ``{error, message}``: 401 ``token_expired``, 403 ``revoked``, 400 (the message
is for the user), 429 with ``Retry-After``, 5xx.
"""

from __future__ import annotations

from typing import Any

import httpx

from chat33_core.errors import (
    CredentialsExpired,
    PermanentError,
    ReconnectRequired,
    TransientError,
    UnknownOutcome,
)
from chat33_core.http import send


class ExampleApi:
    """One access token's calls. Every failure leaves as a chat33 error, ``from`` the
    HTTP error, so the worker knows what to do without seeing a status code."""

    def __init__(self, http: httpx.Client, base: str, token: str) -> None:
        self.http = http
        self.base = base
        self.token = token

    def call(self, method: str, path: str, *, creating: bool = False,
             **kw: Any) -> dict[str, Any]:
        """The JSON answer of a 2xx. ``creating`` marks the request that creates the
        post: when its answer is lost, nobody knows whether the post exists (the core's
        transport rule, :func:`chat33_core.http.send`, raises ``UnknownOutcome``)."""
        headers = {"Authorization": f"Bearer {self.token}"}
        response = send(self.http, method, self.base + path, platform="Example",
                        what=f"{method} {path}", creates=creating, headers=headers, **kw)
        return answer(response, creating=creating)


def answer(response: httpx.Response, *, creating: bool = False) -> dict[str, Any]:
    """A 2xx answer's JSON body; any other status raised as the worker's error class."""
    status = response.status_code
    if 200 <= status < 300:
        body: dict[str, Any] = response.json() if response.content else {}
        return body
    try:
        data = response.json()
    except ValueError:
        data = {}
    code = str(data.get("error") or status)
    message = str(data.get("message") or data.get("error") or f"HTTP {status}")
    cause = httpx.HTTPStatusError(message, request=response.request, response=response)
    if status == 401:
        raise CredentialsExpired(message, platform_code=code) from cause
    if status == 403:
        raise ReconnectRequired(f"Example revoked access ({message}): reconnect the account",
                                platform_code=code) from cause
    if status == 429:
        after = response.headers.get("Retry-After")
        raise TransientError(message, platform_code=code,
                             retry_after=float(after) if after else None) from cause
    if status >= 500:
        if creating:
            raise UnknownOutcome(f"Example answered {status} to the post: {message}",
                                 platform_code=code) from cause
        raise TransientError(message, platform_code=code) from cause
    raise PermanentError(message, platform_code=code) from cause
