"""The route table: one :class:`Operation` per endpoint, used for everything.

``@route(bp, "POST", "/posts", scope="posts:write", body="CreatePostRequest", ...)``
registers the Flask URL rule *and* records the operation; the same record then drives
authentication and scope checks, query parsing, rate-limit headers and the OpenAPI
document (:mod:`chat33_flask.openapi`). What the docs say and what the code does cannot
drift apart because they are read from one place.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from functools import wraps
from typing import Any, TypeVar

import orjson
from attrs import define, field, frozen
from flask import Blueprint, current_app, g, request
from flask.sansio.blueprints import Blueprint as SansioBlueprint
from werkzeug.routing import BaseConverter

from chat33_core.errors import Issue, ValidationError
from chat33_core.models import Account
from chat33_core.serialization import structure
from chat33_core.service import Chat33, Principal
from chat33_core.validation import MAX_ACCOUNTS

from .auth import authenticate
from .errors import ApiError

T = TypeVar("T")

#: a JSON body is small; media files go through multipart with their own limit
MAX_JSON_BYTES = 1024 * 1024
#: the longest URL (path and query) and header (name and value) the API reads, and how
#: many headers: gunicorn's own defaults, checked by the app so the answer is in the
#: error shape (414, 431); `chat33 serve` lets gunicorn read more before it answers itself
MAX_URL_BYTES = 4094
MAX_HEADER_BYTES = 8190
MAX_HEADERS = 100
#: levels of nesting a JSON body may have: a post needs five or so; the JSON encoders
#: and the database's JSON recurse, so a body nested hundreds deep is refused up front
MAX_JSON_DEPTH = 32
_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


@frozen
class Param:
    """A query parameter: ``kind`` is "string", "integer", "boolean", "instant" (ISO
    8601; UTC when it has no offset) or "platform" (one of the installed platforms);
    ``enum`` restricts a string."""

    name: str
    kind: str = "string"
    description: str = ""
    enum: tuple[str, ...] = ()
    default: Any = None
    minimum: int | None = None
    maximum: int | None = None


@frozen
class Operation:
    method: str
    path: str  # OpenAPI form: /posts/{id}
    endpoint: str
    summary: str
    tag: str
    description: str = ""
    scope: str | None = None
    #: False: no authentication at all (login, health)
    auth: bool = True
    session_only: bool = False
    #: content type -> component schema name
    body: Mapping[str, str] = field(factory=dict)
    body_required: bool = False
    params: Sequence[Param] = ()
    #: status -> (description, component schema name, inline schema or None)
    responses: Mapping[int, tuple[str, Any]] = field(factory=dict)
    #: rate-limited operation name in the core (``posts.create``...)
    rate_limit: str | None = None
    #: the body names accounts (``accountIds``): read them with the API key
    reads_accounts: bool = False
    errors: Sequence[int] = ()
    #: the media type of the operation's own answers (``responses``), when not JSON
    content_type: str = "application/json"
    #: query parameters beyond ``params`` are let through (a platform's redirect back
    #: carries what the platform chooses to add)
    open_query: bool = False


@define(slots=True)
class RequestState:
    """What the adapter keeps about the current request (``g.chat33``, one lookup)."""

    request_id: str
    started: float
    operation: Operation | None = None
    principal: Principal | None = None
    #: the accounts the body names, read with the API key (``reads_accounts``): each id
    #: -> the organization's Account or None; None when they were not read
    accounts: dict[str, Account | None] | None = None
    #: the rate-limit count of the request: (limit, remaining, seconds until full)
    rate: tuple[int, int, float] | None = None
    #: the JSON body, once parsed (body_read)
    body: Any = None
    body_read: bool = False


def state() -> RequestState:
    """The current request's :class:`RequestState`."""
    found: RequestState = g.chat33
    return found


def ops(bp: SansioBlueprint) -> list[Operation]:
    """The operations registered on ``bp`` (the blueprint keeps its own list)."""
    found: list[Operation] = bp.__dict__.setdefault("chat33_operations", [])
    return found


def route(bp: Blueprint, method: str, path: str, *, summary: str, tag: str,
          responses: Mapping[int, tuple[str, Any]], **options: Any
          ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a view for ``method path`` and record its :class:`Operation`.

    The view is called as ``view(principal, **path_args)`` once the caller is
    authenticated, has the scope, and (for cookie sessions) sent the CSRF token.
    """

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        op = Operation(method=method, path=path, endpoint=view.__name__, summary=summary,
                       tag=tag, responses=responses, **options)
        ops(bp).append(op)

        @wraps(view)
        def run(**path_args: Any) -> Any:
            current = g.chat33
            current.operation = op
            principal = None
            if op.auth:
                accounts = _account_ids(current) if op.reads_accounts else ()
                principal, current.accounts = authenticate(
                    core(), csrf=op.method in _UNSAFE, accounts=accounts)
                current.principal = principal
                if op.session_only:
                    principal.require_session()
                if op.scope:
                    principal.require(op.scope)
            if request.query_string and not op.open_query:
                _refuse_unknown_params(op)
            return view(principal, **path_args)

        rule = re.sub(r"\{(\w+)\}", rf"<{PARAM_CONVERTER}:\1>", path)
        bp.add_url_rule(rule, view.__name__, run, methods=[method])
        return run

    return decorate


#: the URL converter of path parameters (``{id}``), registered on the app by init_app
PARAM_CONVERTER = "chat33_param"


def param_converter(bps: Sequence[SansioBlueprint]) -> type[BaseConverter]:
    """The URL converter of path parameters for the operations of ``bps``: one segment,
    but never a word their paths use literally.

    ``/posts/validate`` is a resource of its own, not the post ``validate``: as OpenAPI
    matches concrete paths before templated ones, ``GET /posts/validate`` is a 405 and
    ``OPTIONS`` lists only its own methods (werkzeug matched ``/posts/{id}`` for the
    others). Ids never are such words (``post_019ab7...``)."""
    words = sorted({part for bp in bps for op in ops(bp) for part in op.path.split("/")
                    if part and "{" not in part})
    taken = "|".join(re.escape(w) for w in words)

    class ParamConverter(BaseConverter):
        regex = rf"(?!(?:{taken})\Z)[^/]+" if words else "[^/]+"

    return ParamConverter


def core() -> Chat33:
    """The app's :class:`~chat33_core.service.Chat33`."""
    found: Chat33 = current_app.extensions["chat33"]
    return found


def count_request(key: str) -> None:
    """Count the current request against its operation's ``rate_limit`` for ``key``
    (an organization or user id): RateLimited when over, else the count is answered in
    the ``RateLimit-*`` headers."""
    op = state().operation
    assert op is not None and op.rate_limit, "count_request() is for rate-limited views"
    counted(core().hit_rate_limit(op.rate_limit, key))


def counted(rate: tuple[int, int, float]) -> None:
    """Answer ``rate`` (limit, remaining, seconds until full: a count the core made for
    the current operation) in the ``RateLimit-*`` headers."""
    state().rate = rate


# --- parsing ------------------------------------------------------------------------------


def json_body(cls: type[T], *, required: bool = True) -> T:
    """The request's JSON object structured into ``cls``. Malformed JSON, a body that is
    not an object, and wrong fields are 400 VALIDATION_ERROR with paths; another content
    type is 415. An empty body counts as ``{}``."""
    req = request._get_current_object()  # type: ignore[attr-defined]
    req.max_content_length = MAX_JSON_BYTES
    raw = req.get_data(cache=True)
    if not raw or raw.isspace():
        return structure({}, cls)
    if not req.is_json:
        raise ApiError(415, "UNSUPPORTED_MEDIA_TYPE",
                       f"send the body as application/json (got {req.mimetype or 'none'})",
                       details=[Issue("body", "expected Content-Type: application/json")])
    current = state()
    if current.body_read:
        return structure(current.body, cls)
    try:
        data = _loads(raw)
    except ValueError as exc:  # UnicodeDecodeError, orjson's and json's errors
        raise ValidationError("the request body is not valid JSON",
                              details=[Issue("body", f"malformed JSON: {exc}")]) from None
    return structure(data, cls)


def _loads(raw: bytes) -> Any:
    """The JSON value of a request body: orjson's parse, or where orjson refuses what
    :mod:`json` takes (integers beyond 64 bits, ``NaN``), :mod:`json`'s, so the body
    means what it always meant; :mod:`json`'s error otherwise (its message names the
    place). A body nested deeper than ``MAX_JSON_DEPTH`` or with a string that is not
    text (a lone UTF-16 surrogate such as ``"\\udc00"``, which :mod:`json` takes and
    orjson does not) is a ValidationError naming where: nothing downstream (encoders,
    the database) could handle it."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        try:
            data = json.loads(raw)
        except RecursionError:  # json parses recursively; orjson stops at 1,024 levels
            raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels") from None
        _check_text(data)
    # each level opens a bracket: a body with few of them cannot be deep (no walk)
    if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH:
        _check_depth(data)
    return data


def _walk(data: Any) -> Iterator[tuple[str, int, Any]]:
    """Every value of a parsed body with its path (``thread[0].text``) and depth,
    without recursion (a body may be nested as deep as the parser allows)."""
    stack: list[tuple[str, int, Any]] = [("", 0, data)]
    while stack:
        path, depth, value = stack.pop()
        yield path, depth, value
        if isinstance(value, dict):
            stack.extend((f"{path}.{k}" if path else str(k), depth + 1, v)
                         for k, v in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", depth + 1, v)
                         for i, v in reversed(list(enumerate(value))))


def _check_depth(data: Any) -> None:
    for path, depth, _ in _walk(data):
        if depth >= MAX_JSON_DEPTH:
            raise ValidationError(
                f"the request body is nested deeper than {MAX_JSON_DEPTH} levels",
                details=[Issue(path or "body", f"nested deeper than {MAX_JSON_DEPTH} levels")])


def _check_text(data: Any) -> None:
    issues = []
    for path, _, value in _walk(data):
        keys = value.keys() if isinstance(value, dict) else ()
        if any(not _is_text(k) for k in keys):
            issues.append(Issue(path or "body", "a key is not valid Unicode text (it has a "
                                                "lone UTF-16 surrogate)"))
        elif isinstance(value, str) and not _is_text(value):
            issues.append(Issue(path or "body", "not valid Unicode text: it has a lone "
                                                "UTF-16 surrogate (such as \\udc00)"))
    if issues:
        first = issues[0]
        raise ValidationError(f"{first.path}: {first.message}", details=issues)


def _is_text(value: str) -> bool:
    """No lone surrogates: the string can be written as UTF-8 (the database's encoding)."""
    if value.isascii():
        return True
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def _account_ids(current: RequestState) -> Sequence[str]:
    """The ``accountIds`` of the request's JSON body, to read with the API key; nothing
    when the body is not a readable JSON object (never an error: :func:`json_body`
    judges the body once the caller is authenticated)."""
    req = request._get_current_object()  # type: ignore[attr-defined]
    length = req.content_length
    if not length or length > MAX_JSON_BYTES or not req.is_json:
        return ()
    req.max_content_length = MAX_JSON_BYTES  # as json_body reads it
    try:
        current.body = _loads(req.get_data(cache=True))
    except (ValueError, ValidationError):  # judged by json_body, after authentication
        return ()
    current.body_read = True
    ids = current.body.get("accountIds") if isinstance(current.body, dict) else None
    if not isinstance(ids, list) or len(ids) > MAX_ACCOUNTS:
        return ()
    return [i for i in ids if isinstance(i, str)]


def query() -> dict[str, Any]:
    """The current operation's query parameters, typed; bad values are 400
    VALIDATION_ERROR with the parameter's name as the path."""
    op = state().operation
    assert op is not None, "query() is for the views of @route"
    platforms = sorted(core().host.platforms)
    values: dict[str, Any] = {}
    issues: list[Issue] = []
    for p in op.params:
        raw = request.args.get(p.name)
        if raw is None:
            values[p.name] = p.default
            continue
        value: Any = raw
        if p.kind == "integer":
            if not re.fullmatch(r"[+-]?\d+", raw.strip()):
                issues.append(Issue(p.name, f"must be an integer, got {raw[:50]!r}"))
                continue
            # a huge number of digits is out of range, not a reason to build a bignum
            value = int(raw) if len(raw.strip()) <= 12 else 10**12
            low = p.minimum is not None and value < p.minimum
            high = p.maximum is not None and value > p.maximum
            if low or high:
                issues.append(Issue(p.name, _range(p)))
                continue
        elif p.kind == "instant":
            value = _instant(raw)
            if value is None:
                issues.append(Issue(p.name, "must be an ISO 8601 instant such as "
                                            f"2026-04-01T14:00:00Z, got {raw[:50]!r}"))
                continue
        elif p.kind == "boolean":
            if raw.lower() not in ("true", "false", "1", "0"):
                issues.append(Issue(p.name, f"must be true or false, got {raw[:50]!r}"))
                continue
            value = raw.lower() in ("true", "1")
        choices = tuple(platforms) if p.kind == "platform" else p.enum
        if choices and value not in choices:
            issues.append(Issue(p.name, f"must be one of {', '.join(choices)}; got "
                                        f"{raw[:50]!r}"))
            continue
        values[p.name] = value
    if issues:
        first = issues[0]
        raise ValidationError(f"{first.path}: {first.message}", details=issues)
    return values


def _refuse_unknown_params(op: Operation) -> None:
    """A query parameter the operation does not know is a mistake (a misspelt filter
    would otherwise be ignored and answer more than was asked for): 400 naming it."""
    known = {p.name for p in op.params}
    unknown = [name for name in dict.fromkeys(request.args) if name not in known]
    if unknown:
        hint = f"known: {', '.join(p.name for p in op.params)}" if op.params else \
            "this endpoint takes no query parameters"
        raise ValidationError(
            f"unknown query parameter{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(n[:50]) for n in unknown)} ({hint})",
            details=[Issue(name[:100], f"unknown query parameter ({hint})",
                           code="unknown_parameter") for name in unknown])


def _instant(raw: str) -> datetime | None:
    """An ISO 8601 instant of a query string; UTC when it has no offset. A ``+`` of an
    offset that arrived unencoded (read as a space) is put back."""
    text = re.sub(r" (\d\d(:?\d\d)?)$", r"+\1", raw)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.utcoffset() is not None else value.replace(tzinfo=UTC)


def _range(p: Param) -> str:
    if p.minimum is not None and p.maximum is not None:
        return f"must be between {p.minimum} and {p.maximum}"
    if p.minimum is not None:
        return f"must be {p.minimum} or more"
    return f"must be {p.maximum} or less"


__all__ = ["Operation", "Param", "core", "count_request", "counted", "json_body", "ops",
           "query", "route"]
