"""A thin Graph API client: one base URL, one token, errors translated at the edge by
the plugin kit (:mod:`chat33_core.graph`) with Instagram's own codes (platforms.md §1.7)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import httpx

from chat33_core.graph import GraphPlatform, app_usage_percent, graph_error
from chat33_core.http import send
from chat33_core.platforms import EventLog, LimitReport

#: subcodes after which a container is dead and a new one must be created
RECREATE_SUBCODES = frozenset({2207020, 2207053, 2207008})
#: the 24 h publishing window is rolling; without a better hint, look again in an hour
QUOTA_RETRY_AFTER = timedelta(hours=1)
#: what a user-fixable subcode means, when Meta sends no ``error_user_msg``
USER_MESSAGES: Mapping[int, str] = {
    2207004: "The image is larger than 8 MiB.",
    2207005: "The image format is not supported; Instagram takes JPEG.",
    2207006: "Instagram could not find the media (missing permission or expired token).",
    2207009: "The image's aspect ratio is outside 4:5 to 1.91:1.",
    2207010: "The caption is too long (2,200 characters, 30 hashtags, 20 @ tags).",
    2207023: "Instagram does not know this media type.",
    2207026: "The video format is not supported (MOV/MP4, H.264/HEVC, AAC).",
    2207028: "A carousel needs 2 to 10 items.",
    2207040: "The caption has more than 20 @ tags.",
    2207050: "The Instagram account is restricted or checkpointed; open the app to fix it.",
    2207051: "Instagram restricted this activity as spam.",
    2207052: "Instagram could not fetch the media from its URL.",
    2207057: "The thumbnail offset is outside the video's duration.",
}
INSTAGRAM = GraphPlatform(
    name="Instagram", scopes="instagram_business_content_publish",
    user_messages=USER_MESSAGES,
    quota_codes=frozenset({9}), quota_subcodes=frozenset({2207042}),
    quota_wait=QUOTA_RETRY_AFTER,
    # code 4 (throttling) with 2207051 is spam, code 1 (transient) with 2207057 a bad offset
    permanent_subcodes=frozenset({2207050, 2207051, 2207057}),
    # the IG -1/-2 family: server failures; 9007 without a subcode: media not ready
    transient_codes=frozenset({-2, -1, 9007}),
    transient_subcodes=frozenset({2207001, 2207003, 2207032}),
    retry_subcodes={
        **{sub: "the media container was dropped; a new one will be created"
           for sub in RECREATE_SUBCODES},
        2207027: "the media is still being processed",
    },
)

#: log a warning when Meta reports this share of the app's call budget used
USAGE_WARNING_PERCENT = 80.0


class Graph:
    """Calls ``{base}/{version}/...`` with the account's token.

    The token travels in the ``Authorization`` header, never in the URL, so it does not
    end up in request logs. Failures raise chat33 platform errors.
    """

    def __init__(self, http: httpx.Client, base: str, version: str, token: str,
                 log: EventLog | None = None, limits: LimitReport | None = None) -> None:
        self.http = http
        #: where the app's usage (``X-App-Usage``) is reported to the core's shared count
        self.limits = limits
        self.base = base.rstrip("/")
        self.version = version
        self.token = token
        self.log = log

    def url(self, path: str) -> str:
        return f"{self.base}/{self.version}/{path.lstrip('/')}"

    def get(self, path: str, params: Mapping[str, Any] | None = None,
            what: str = "request") -> dict[str, Any]:
        return self._send("GET", path, params=params, what=what)

    def post(self, path: str, data: Mapping[str, Any] | None = None, what: str = "request",
             creating: bool = False) -> dict[str, Any]:
        return self._send("POST", path, data=data, what=what, creating=creating)

    def _send(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
              data: Mapping[str, Any] | None = None, what: str,
              creating: bool = False) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.token}"}
        response = send(self.http, method, self.url(path), platform="Instagram", what=what,
                        creates=creating, params=_clean(params), data=_clean(data),
                        headers=headers)
        self._watch_usage(response, what)
        if response.status_code >= 400:
            error = graph_error(response, INSTAGRAM, creates=creating, what=what)
            raise error from _status_error(response)
        try:
            body = response.json()
        except ValueError as exc:
            raise graph_error(response, INSTAGRAM, creates=creating, what=what) from exc
        return body if isinstance(body, dict) else {"data": body}

    def _watch_usage(self, response: httpx.Response, what: str) -> None:
        usage = app_usage_percent(response.headers)
        if usage is not None and self.limits is not None:
            self.limits("app-usage", remaining=max(0, 100 - math.ceil(usage)))
        if usage is not None and usage >= USAGE_WARNING_PERCENT and self.log is not None:
            self.log("rate_limit_warning",
                     f"Instagram reports {usage:.0f}% of the app's call budget used",
                     usage=usage, request=what)


def _clean(values: Mapping[str, Any] | None) -> dict[str, str] | None:
    """Form/query values as Meta expects them: no Nones, booleans lower-case."""
    if values is None:
        return None
    out: dict[str, str] = {}
    for key, value in values.items():
        if value is None:
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


def _status_error(response: httpx.Response) -> httpx.HTTPStatusError:
    return httpx.HTTPStatusError(
        f"{response.status_code} from {response.request.method} {response.request.url.path}",
        request=response.request, response=response)
