"""A thin Graph API client over the publish's shared httpx client.

Every call goes to ``<api base>/<version>/<path>``: one base stands in for Meta's
``graph``, ``graph-video`` and ``rupload`` hosts (DESIGN.md), while URLs Facebook returns
(a reel's ``upload_url``) are used as returned. The token travels in the
``Authorization: OAuth`` header, never in a URL that could end up in a log. Errors are
translated by the plugin kit (:mod:`chat33_core.graph`); the upload host's own error
shape (``debug_info``) is read here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import httpx

from chat33_core.errors import PermanentError, PlatformError, TransientError, UnknownOutcome
from chat33_core.graph import GraphPlatform, graph_error
from chat33_core.http import send

DEFAULT_VERSION = "v25.0"
#: bytes read from disk per step of an upload body; the file is never read whole
CHUNK_BYTES = 4 * 1024 * 1024
#: Page tokens never refresh: every token error needs the Page connected again
FACEBOOK = GraphPlatform(
    name="Facebook", account="Page", refreshable_tokens=False,
    scopes="pages_manage_posts, pages_read_engagement (and publish_video for videos)")
#: upload-host errors cured by asking the offset and sending the rest again
RESUMABLE_UPLOAD_ERRORS = frozenset({"OffsetInvalidError", "PartialRequestError"})


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
        response = send(self.http, method, self.url(path), platform="Facebook", what=action,
                        creates=creates, params=params, data=data, headers=all_headers,
                        content=content)
        if response.status_code >= 400:
            raise facebook_error(response, action, creates=creates)
        try:
            body = response.json()
        except ValueError as exc:
            if creates:
                raise UnknownOutcome(f"Facebook answered {action} with something that is not "
                                     "JSON; it may have acted") from exc
            raise TransientError(f"Facebook answered {action} with something that is not "
                                 "JSON") from exc
        return body if isinstance(body, dict) else {"data": body}


def facebook_error(response: httpx.Response, action: str = "the request", *,
                   creates: bool = False) -> PlatformError:
    """The chat33 error for a failed answer, from the upload host or the Graph API."""
    return upload_error(response, action) or graph_error(response, FACEBOOK, creates=creates,
                                                         what=action)


def upload_error(response: httpx.Response, action: str) -> PlatformError | None:
    """The error of the upload host (rupload), which answers
    ``{"debug_info": {"type", "message"}}`` instead of a Graph envelope: an offset or
    partial-request error resumes from the host's offset, any other fails the post."""
    try:
        body = response.json()
    except ValueError:
        return None
    info = body.get("debug_info") if isinstance(body, dict) else None
    if not isinstance(info, dict):
        return None
    kind, text = str(info.get("type") or "UploadError"), str(info.get("message") or "")
    if kind in RESUMABLE_UPLOAD_ERRORS:
        return TransientError(f"Facebook's upload host refused {action} ({kind}: {text}); "
                              "resume from its offset", platform_code=kind)
    return PermanentError(f"Facebook could not take {action} ({kind}): {text}",
                          platform_code=kind)


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
