"""A thin Graph API client over the publish's shared httpx client.

Every call goes to ``<api base>/<version>/<path>``: one base stands in for Meta's
``graph``, ``graph-video`` and ``rupload`` hosts (DESIGN.md), while URLs Facebook returns
(a reel's ``upload_url``) are used as returned. The token travels in the
``Authorization: OAuth`` header, never in a URL that could end up in a log.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import httpx

from chat33_core.errors import TransientError, UnknownOutcome

from .graph_errors import graph_error

DEFAULT_VERSION = "v25.0"
#: bytes read from disk per step of an upload body; the file is never read whole
CHUNK_BYTES = 4 * 1024 * 1024


class Graph:
    """Graph calls for one Page token. Failures raise chat33 platform errors."""

    def __init__(self, http: httpx.Client, base: str, token: str,
                 version: str = DEFAULT_VERSION) -> None:
        self.http = http
        self.base = base.rstrip("/")
        self.token = token
        self.version = version

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base}/{self.version}/{path.lstrip('/')}"

    def get(self, path: str, action: str, **params: Any) -> dict[str, Any]:
        return self.call("GET", path, action, params=params)

    def post(self, path: str, action: str, *, creates: bool = False,
             data: Mapping[str, Any] | None = None, params: Mapping[str, Any] | None = None,
             ) -> dict[str, Any]:
        return self.call("POST", path, action, data=data, params=params, creates=creates)

    def delete(self, path: str, action: str) -> dict[str, Any]:
        return self.call("DELETE", path, action)

    def call(self, method: str, path: str, action: str, *, creates: bool = False,
             params: Mapping[str, Any] | None = None, data: Mapping[str, Any] | None = None,
             headers: Mapping[str, str] | None = None, content: Any = None,
             ) -> dict[str, Any]:
        """Send one request; return the JSON answer or raise the mapped error.

        ``creates``: the request creates the post, so a lost answer is an unknown outcome
        (a refused connection is not: nothing reached Facebook).
        """
        all_headers = {"Authorization": f"OAuth {self.token}", **(headers or {})}
        try:
            response = self.http.request(method, self.url(path), params=params, data=data,
                                         headers=all_headers, content=content)
        except httpx.ConnectError as exc:
            raise TransientError(f"could not reach Facebook while {action}: {exc}") from exc
        except httpx.TransportError as exc:
            if creates:
                raise UnknownOutcome(f"no answer from Facebook while {action} ({exc}); it may "
                                     "have acted") from exc
            raise TransientError(f"connection to Facebook failed while {action}: "
                                 f"{exc}") from exc
        if response.status_code >= 400:
            raise graph_error(response, creates=creates, action=action)
        try:
            body = response.json()
        except ValueError as exc:
            if creates:
                raise UnknownOutcome(f"Facebook answered {action} with something that is not "
                                     "JSON; it may have acted") from exc
            raise TransientError(f"Facebook answered {action} with something that is not "
                                 "JSON") from exc
        return body if isinstance(body, dict) else {"data": body}


def file_body(path: Path, offset: int, chunk: int = CHUNK_BYTES) -> Iterator[bytes]:
    """The bytes of ``path`` from ``offset`` on, ``chunk`` at a time (constant memory)."""
    fh: BinaryIO
    with path.open("rb") as fh:
        fh.seek(offset)
        while True:
            block = fh.read(chunk)
            if not block:
                return
            yield block
