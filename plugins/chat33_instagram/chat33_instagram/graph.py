"""A thin Graph API client: one base URL, one token, errors translated at the edge."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from chat33_core.platforms import EventLog

from .graph_errors import app_usage_percent, response_error, transport_error

#: log a warning when Meta reports this share of the app's call budget used
USAGE_WARNING_PERCENT = 80.0


class Graph:
    """Calls ``{base}/{version}/...`` with the account's token.

    The token travels in the ``Authorization`` header, never in the URL, so it does not
    end up in request logs. Failures raise chat33 platform errors.
    """

    def __init__(self, http: httpx.Client, base: str, version: str, token: str,
                 log: EventLog | None = None) -> None:
        self.http = http
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
        try:
            response = self.http.request(
                method, self.url(path), params=_clean(params), data=_clean(data),
                headers=headers)
        except httpx.HTTPError as exc:
            raise transport_error(exc, creating=creating, what=what) from exc
        self._watch_usage(response, what)
        if response.status_code >= 400:
            error = response_error(response, creating=creating, what=what)
            raise error from _status_error(response)
        try:
            body = response.json()
        except ValueError as exc:
            raise response_error(response, creating=creating, what=what) from exc
        return body if isinstance(body, dict) else {"data": body}

    def _watch_usage(self, response: httpx.Response, what: str) -> None:
        usage = app_usage_percent(response.headers)
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
