"""Requests to the Threads Graph API and what its errors mean (platforms-more.md §3.7).

Threads answers with Meta's Graph envelope, so the plugin kit's mapping
(:mod:`chat33_core.graph`) decides; :data:`THREADS` is what Threads adds to it as data.
The token travels as the documented ``access_token`` form field on POST; on GET and
DELETE it goes in an ``Authorization: Bearer`` header instead of the query, so that it
never appears in a URL (httpx logs URLs at DEBUG). Meta's Graph hosts take both.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import httpx

from chat33_core.errors import TransientError, UnknownOutcome
from chat33_core.graph import GraphPlatform, graph_error
from chat33_core.http import send

#: the publishing quota is a moving 24 h window: look again in an hour
QUOTA_WAIT = timedelta(hours=1)
#: the subcode of a publish whose container is not FINISHED yet (Meta's media family;
#: the reference leaves Threads' own code open, so the Instagram one is assumed)
NOT_READY_SUBCODE = 2207027
THREADS = GraphPlatform(
    # a token Threads refuses (190) is expired or revoked, and neither can be refreshed
    # (refresh needs a live token): every token error means connecting again
    name="Threads", refreshable_tokens=False,
    scopes="threads_basic,threads_content_publish,threads_delete",
    user_messages={
        2207051: "Threads restricted this activity (it looked like spam).",
        4279013: "The Threads user is restricted; open the app to fix it.",
        2207052: "Threads could not fetch the media from its URL.",
    },
    # a spent publishing or reply quota (code 9, as Meta's other publishing APIs)
    quota_codes=frozenset({9}), quota_wait=QUOTA_WAIT,
    permanent_subcodes=frozenset({2207051, 4279013}),
    transient_codes=frozenset({-2, -1}),
    retry_subcodes={NOT_READY_SUBCODE: "the container is still being processed"},
)


class Graph:
    """``{base}/{version}/...`` calls with one account's token; failures raise."""

    def __init__(self, http: httpx.Client, base: str, version: str, token: str) -> None:
        self.http = http
        self.base = base.rstrip("/")
        self.version = version
        self.token = token

    def call(self, method: str, path: str, values: Mapping[str, Any] | None = None, *,
             what: str, creates: bool = False, allow: tuple[int, ...] = ()
             ) -> tuple[int, dict[str, Any]]:
        """One request; answers (status, JSON object). A failed answer raises the mapped
        error unless its status is in ``allow``."""
        clean = {k: ("true" if v else "false") if isinstance(v, bool) else str(v)
                 for k, v in (values or {}).items() if v is not None}
        where: dict[str, Any]
        if method == "POST":
            where = {"data": {**clean, "access_token": self.token}}
        else:
            where = {"params": clean, "headers": {"Authorization": f"Bearer {self.token}"}}
        url = f"{self.base}/{self.version}/{path.lstrip('/')}"
        response = send(self.http, method, url, platform="Threads", what=what,
                        creates=creates, **where)
        if response.status_code >= 400 and response.status_code not in allow:
            raise graph_error(response, THREADS, creates=creates, what=what)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            error = UnknownOutcome if creates else TransientError
            raise error(f"{what}: Threads answered without a JSON object",
                        platform_code="bad-response")
        return response.status_code, body

    def get(self, path: str, values: Mapping[str, Any] | None = None, *,
            what: str) -> dict[str, Any]:
        return self.call("GET", path, values, what=what)[1]

    def post(self, path: str, values: Mapping[str, Any] | None = None, *, what: str,
             creates: bool = False) -> dict[str, Any]:
        return self.call("POST", path, values, what=what, creates=creates)[1]
