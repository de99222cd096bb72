"""The OpenAPI 3.1 document, built from the route table and the model schemas.

Every path, method, scope, parameter, body and answer comes from the
:class:`~chat33_flask.routing.Operation` records the views were registered with, and every
schema from :mod:`chat33_flask.schemas`; nothing here describes an endpoint by hand.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from .routing import MAX_HEADER_BYTES, MAX_HEADERS, MAX_URL_BYTES, Operation, Param, ops
from .schemas import components

_ERRORS = {
    400: "VALIDATION_ERROR: the request is invalid (an unknown query parameter too); "
         "`details[].path` points into it",
    401: "Unauthorized: no, a bad, an expired or a revoked credential",
    403: "Insufficient scope (or a cookie session without its x-csrf-token)",
    404: "Not found (also another organization's ids)",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT: the post's status does not allow this (or, for media, the state of "
         "the upload or the posts using it)",
    410: "GONE: the upload URL has expired",
    413: "PAYLOAD_TOO_LARGE",
    414: f"URI_TOO_LONG: the URL is over {MAX_URL_BYTES} bytes",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "NOT_CONFIGURED: the operator has not set what this needs (a platform's OAuth "
         "app credentials)",
    429: "RATE_LIMIT: see Retry-After. An allowance per period that is spent also sends "
         "RateLimit-*; too many requests of the organization fetching media URLs at once "
         "sends Retry-After alone",
    431: f"REQUEST_HEADER_FIELDS_TOO_LARGE: a header over {MAX_HEADER_BYTES} bytes, or over "
         f"{MAX_HEADERS} headers",
    503: "SERVICE_UNAVAILABLE: the database cannot be reached right now; retry after "
         "Retry-After seconds",
}
_REQUEST_ID = {"x-request-id": {
    "description": "The request's id (echoed when the request sent one)",
    "required": True, "schema": {"type": "string"}}}
_RATE_HEADERS = {
    name: {"description": text, "required": True, "schema": {"type": "integer"}}
    for name, text in (("RateLimit-Limit", "requests allowed per period"),
                       ("RateLimit-Remaining", "requests left now"),
                       ("RateLimit-Reset", "seconds until the allowance is full again"))
}


def build(app: Flask, prefix: str) -> dict[str, Any]:
    core = app.extensions["chat33"]
    platforms = core.host.platforms
    paths: dict[str, dict[str, Any]] = {}
    limited: list[Operation] = []
    for bp in app.blueprints.values():
        for op in ops(bp):
            paths.setdefault(op.path, {})[op.method.lower()] = _operation(op)
            if op.rate_limit:
                limited.append(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Chat33 API", "version": "1.0.0",
            "description": "Schedule and publish content to Instagram, Facebook, TikTok, "
            "YouTube, and X (Twitter). All endpoints support API key (x-api-key header) or "
            "session auth (cookie; state-changing requests then need x-csrf-token). Errors "
            "are `{error, message, details}`. Every answer carries `x-request-id`. Media "
            "files are served at `/media/{name}` on the public base URL (outside this API "
            "prefix, no auth, with ETag and Range support).\n\n" + limits_table(core, limited),
        },
        "servers": [{"url": prefix}],
        "paths": paths,
        "components": {
            "schemas": _resolve(components(platforms)),
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
                "session": {"type": "apiKey", "in": "cookie", "name": "chat33_session"},
            },
        },
    }


def limits_table(core: Any, limited: list[Operation]) -> str:
    """The rate limits as a Markdown table: each limited operation and its allowance,
    read from the core's ``rate_limits`` (what the API enforces)."""
    from chat33_core.store import human_period

    rows = ["**Rate limits** (per organization; `POST /api-keys` per user), kept in the "
            "database so they hold across processes:", "", "| operation | limit |",
            "| --- | --- |"]
    for op in sorted(limited, key=lambda o: (o.path, o.method)):
        name = op.rate_limit or ""
        limit, period = core.rate_limits[name]
        what = {"posts.create": "posts", "media.upload": "uploads"}.get(name, "requests")
        rows.append(f"| `{op.method} {op.path}` | {limit} {what} per {human_period(period)} "
                    f"(`{name}`) |")
    rows += ["", "A post counts once per account and once per thread part. Media that a "
             "post, an edit or a duplicate fetches from `mediaUrls` counts as an upload and "
             "needs the scope `media:write`."]
    return "\n".join(rows)


def _operation(op: Operation) -> dict[str, Any]:
    out: dict[str, Any] = {"operationId": op.endpoint, "summary": op.summary,
                           "tags": [op.tag]}
    description = op.description
    if op.scope:
        description += f"\n\n**Required scope(s):** `{op.scope}`"
    if op.session_only:
        description += "\n\n**Session auth only.**"
    if description.strip():
        out["description"] = description.strip()
    if op.scope:
        out["x-required-scopes"] = [op.scope]
    if not op.auth:
        out["security"] = []
    elif op.session_only:
        out["security"] = [{"session": []}]
    else:
        out["security"] = [{"apiKey": []}, {"session": []}]
    params = [_param(p) for p in op.params]
    params += [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
               for name in _path_names(op.path)]
    if params:
        out["parameters"] = params
    if op.body:
        out["requestBody"] = {"required": op.body_required, "content": {
            ctype: {"schema": _schema(schema)} for ctype, schema in op.body.items()}}
    responses: dict[str, Any] = {}
    for status, (text, schema) in op.responses.items():
        headers = dict(_REQUEST_ID)
        if op.rate_limit:
            headers |= _RATE_HEADERS
        entry: dict[str, Any] = {"description": text, "headers": headers}
        if schema is not None:
            entry["content"] = {op.content_type: {"schema": _schema(schema)}}
        responses[str(status)] = entry
    for status in _error_statuses(op):
        if status in op.responses:
            continue
        headers = dict(_REQUEST_ID)
        if status == 429:  # not with a concurrency refusal (no allowance to describe)
            headers |= {name: {**h, "required": False} for name, h in _RATE_HEADERS.items()}
        if status in (429, 503):
            headers |= {"Retry-After": {"description": "seconds to wait", "required": True,
                                        "schema": {"type": "integer"}}}
        responses[str(status)] = {"description": _ERRORS[status], "headers": headers,
                                  "content": {"application/json": {
                                      "schema": {"$ref": "#/components/schemas/Error"}}}}
    out["responses"] = responses
    return out


def _error_statuses(op: Operation) -> list[int]:
    found = set(op.errors)
    found.add(503)  # every operation reads the database (signing in too)
    found |= {414, 431}  # any request may be too long (MAX_URL_BYTES, MAX_HEADER_BYTES)
    found.add(400)  # an unknown query parameter, on every operation
    if op.auth:
        found |= {401, 403}  # 403: scope, or a cookie request without its CSRF token
    if op.body:
        found |= {400, 413, 415}
    if _path_names(op.path):
        found.add(404)
    if op.rate_limit:
        found.add(429)
    return sorted(found)


def _param(p: Param) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer" if p.kind == "integer" else
                              "boolean" if p.kind == "boolean" else "string"}
    if p.kind == "platform":
        schema = {"$ref": "#/components/schemas/Platform"}
    if p.kind == "instant":
        schema["format"] = "date-time"
    if p.enum:
        schema["enum"] = list(p.enum)
    if p.default is not None:
        schema["default"] = p.default
    if p.minimum is not None:
        schema["minimum"] = p.minimum
    if p.maximum is not None:
        schema["maximum"] = p.maximum
    out: dict[str, Any] = {"name": p.name, "in": "query", "required": False, "schema": schema}
    if p.description:
        out["description"] = p.description
    return out


def _path_names(path: str) -> list[str]:
    import re

    return re.findall(r"\{(\w+)\}", path)


def _schema(spec: Any) -> Any:
    if isinstance(spec, str):
        return {"$ref": f"#/components/schemas/{spec}"}
    return _resolve(spec)


def _resolve(value: Any) -> Any:
    """Short ``{"$ref": "Post"}`` in inline schemas -> the component reference."""
    if isinstance(value, dict):
        out = {k: _resolve(v) for k, v in value.items()}
        target = out.get("$ref")
        if isinstance(target, str) and not target.startswith("#"):
            out["$ref"] = f"#/components/schemas/{target}"
        return out
    if isinstance(value, list):
        return [_resolve(v) for v in value]
    return value


__all__ = ["build"]
