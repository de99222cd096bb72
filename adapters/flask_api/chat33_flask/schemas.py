"""JSON Schemas of the API's bodies, generated from the attrs models the code uses.

Nothing here is a hand copy of a model: a response schema lists exactly the keys that the
renderer (``serialization.post_json`` and friends) gives for a sample value of the model,
typed from the model's annotations; a request schema lists the fields that the cattrs
converter accepts. A renamed or added model field therefore changes the OpenAPI document
by itself, and :func:`model_schema` fails loudly on a rendered key it cannot type.

The adapter's own request bodies (PATCH, duplicate, API key, login, media URL) are attrs
classes defined here and structured by the same converter (camelCase, unknown keys refused).
"""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import attrs
from attrs import field, frozen
from cattrs.gen import make_dict_structure_fn, override

from chat33_core import options
from chat33_core.connecting import STATUSES, ConnectionView
from chat33_core.models import (
    DEFAULT_SCOPES,
    Account,
    ApiKey,
    LogEvent,
    MediaAsset,
    MediaType,
    Post,
    PostRequest,
    PostStatus,
    PostSummary,
    ThreadItem,
    User,
    WebhookSecret,
)
from chat33_core.platforms import PlatformBase
from chat33_core.serialization import camel, converter, post_json
from chat33_core.validation import MAX_ACCOUNTS, MAX_MEDIA_URLS, MAX_THREAD_ITEMS


class _Unset:
    """Marks a PATCH field that the body did not mention (``null`` is a value there)."""

    _instance: _Unset | None = None

    def __new__(cls) -> _Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Any = _Unset()

# --- the adapter's request bodies --------------------------------------------------------


def _enum_of(*members: enum.Enum) -> dict[str, Any]:
    return {"schema": {"type": "string", "enum": [m.value for m in members]}}


@frozen
class UpdatePostRequest:
    """``PATCH /posts/{id}``: every field optional; ``scheduledAt: null`` = publish now."""

    text: str | None = UNSET
    media_urls: list[str] = UNSET
    media_type: MediaType | None = UNSET
    cover_image_url: str | None = UNSET
    platform_config: dict[str, Any] = UNSET
    callback_url: str | None = UNSET
    scheduled_at: str | None = UNSET
    timezone: str = UNSET
    status: PostStatus = field(default=UNSET, metadata=_enum_of(
        PostStatus.DRAFT, PostStatus.QUEUED, PostStatus.CANCELLED))

    def changes(self) -> dict[str, Any]:
        """The fields the body set, snake_case, typed (what ``Chat33.update_post`` takes)."""
        return {a.name: getattr(self, a.name) for a in attrs.fields(type(self))
                if getattr(self, a.name) is not UNSET}


@frozen
class DuplicatePostRequest:
    """``POST /posts/{id}/duplicate``."""

    scheduled_at: str | None = None
    account_ids: list[str] | None = None
    status: PostStatus = field(default=PostStatus.DRAFT,
                               metadata=_enum_of(PostStatus.DRAFT, PostStatus.QUEUED))


@frozen
class CreateApiKeyRequest:
    """``POST /api-keys``; ``scopes`` (additive): the key's scopes, the default ones when
    left out (``accounts:write`` and ``settings:write`` only when asked for)."""

    name: str = "Default API Key"
    scopes: list[str] | None = None


@frozen
class ConnectRequest:
    """``POST /accounts/connect``: the platform, and where to send the browser back."""

    platform: str
    return_url: str | None = None


@frozen
class ReconnectRequest:
    """``POST /accounts/{id}/reconnect``."""

    return_url: str | None = None


@frozen
class SelectTargetsRequest:
    """``POST /accounts/connect/{connectionId}/select``: the targets to connect."""

    external_ids: list[str]


@frozen
class LoginRequest:
    email: str
    password: str


@frozen
class MediaUrlRequest:
    """``POST /media/upload`` as JSON: fetch ``url`` (guarded) and keep it."""

    url: str
    filename: str | None = None


@frozen
class PresignRequest:
    """``POST /media/presign``: the file a client is about to upload directly."""

    filename: str = field(metadata={"schema": {"type": "string", "minLength": 1,
                                               "maxLength": 200}})
    content_type: str = field(metadata={"schema": {"type": "string", "minLength": 1,
                                                   "maxLength": 100}})
    size: int = field(metadata={"schema": {"type": "integer", "minimum": 1}})


@frozen
class RotateWebhookSecretRequest:
    """``POST /webhooks/secret/rotate``: how long the replaced secret keeps signing
    deliveries beside the new one (0: it stops at once, for a leaked secret)."""

    grace_seconds: int = field(default=86400, metadata={"schema": {
        "type": "integer", "minimum": 0, "maximum": 604800, "default": 86400}})


REQUEST_MODELS: tuple[type, ...] = (UpdatePostRequest, DuplicatePostRequest,
                                    CreateApiKeyRequest, LoginRequest, MediaUrlRequest,
                                    PresignRequest, RotateWebhookSecretRequest,
                                    ConnectRequest, ReconnectRequest, SelectTargetsRequest)

for _cls in REQUEST_MODELS:
    _renames: dict[str, Any] = {a.name: override(rename=camel(a.name))
                                for a in attrs.fields(_cls)}
    converter.register_structure_hook(_cls, make_dict_structure_fn(
        _cls, converter, _cattrs_forbid_extra_keys=True, **_renames))


# --- renderers: the one place a response body is made from a model -------------------------


def account_json(account: Account) -> dict[str, Any]:
    data: dict[str, Any] = converter.unstructure(account)
    return data


def connection_json(view: ConnectionView) -> dict[str, Any]:
    """A connection as the API answers it (never its state, code or tokens)."""
    c = view.connection
    data: dict[str, Any] = {
        "connectionId": c.id, "platform": c.platform, "status": c.status,
        "expiresAt": c.expires_at.isoformat().replace("+00:00", "Z"),
        "targets": [dict(t) for t in c.targets],
        "accounts": [account_json(a) for a in view.accounts], "error": view.error}
    if view.authorization_url is not None:
        data["authorizationUrl"] = view.authorization_url
    return data


def api_key_json(key: ApiKey) -> dict[str, Any]:
    data: dict[str, Any] = converter.unstructure(key)
    return data


def log_json(event: LogEvent) -> dict[str, Any]:
    data: dict[str, Any] = converter.unstructure(event)
    return data


def media_json(asset: MediaAsset) -> dict[str, Any]:
    """The upload answer: the documented ``{url, type, size, name, contentType}`` plus
    the asset's other public facts (id, sha256, sourceUrl, createdAt)."""
    data: dict[str, Any] = converter.unstructure(asset)
    data["type"] = asset.kind
    return data


def library_json(asset: MediaAsset, queued_posts: int) -> dict[str, Any]:
    """A media library entry: the media object plus its dimensions, duration and how
    many posts not yet done (draft, queued, publishing) use it."""
    data = media_json(asset)
    info = asset.info or {}
    data.update(width=info.get("width"), height=info.get("height"),
                durationS=info.get("duration_s"), queuedPosts=queued_posts)
    return data


def webhook_secret_json(secret: WebhookSecret) -> dict[str, Any]:
    data: dict[str, Any] = converter.unstructure(secret)
    return data


def user_json(user: User) -> dict[str, Any]:
    return {"id": user.id, "email": user.email, "orgId": user.org_id,
            "createdAt": converter.unstructure(user.created_at)}


# --- JSON Schema from annotations ----------------------------------------------------------


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    if set(schema) == {"type"} and isinstance(schema["type"], str):
        return {"type": [schema["type"], "null"]}
    if "enum" in schema and set(schema) <= {"type", "enum"}:
        return {"type": [schema.get("type", "string"), "null"], "enum": [*schema["enum"], None]}
    return {"anyOf": [schema, {"type": "null"}]}


def type_schema(tp: Any, names: Mapping[type, str]) -> dict[str, Any]:
    """The JSON Schema of a Python annotation as the converter puts it on the wire."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        inner = type_schema(rest[0], names) if len(rest) == 1 else {
            "anyOf": [type_schema(a, names) for a in rest]}
        return _nullable(inner) if len(rest) < len(args) else inner
    if origin is list:
        return {"type": "array", "items": type_schema(args[0] if args else Any, names)}
    if origin is dict or tp is dict:
        return {"type": "object"}
    if tp is Any:
        return {}
    if isinstance(tp, type):
        if tp in names:
            return ref(names[tp])
        if issubclass(tp, enum.Enum):
            return {"type": "string", "enum": [m.value for m in tp]}
        if issubclass(tp, bool):
            return {"type": "boolean"}
        if issubclass(tp, int):
            return {"type": "integer"}
        if issubclass(tp, float):
            return {"type": "number"}
        if issubclass(tp, str):
            return {"type": "string"}
        if issubclass(tp, datetime):
            return {"type": "string", "format": "date-time"}
    raise TypeError(f"no JSON Schema for {tp!r}")


def _sample(cls: type) -> Any:
    """A value of ``cls`` with placeholder data in its required fields."""
    hints = typing.get_type_hints(cls)
    values = {}
    for a in attrs.fields(cls):
        if a.default is attrs.NOTHING:
            values[a.name] = _placeholder(hints[a.name])
    return cls(**values)


def _placeholder(tp: Any) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return None if type(None) in args else _placeholder(args[0])
    if origin is list:
        return []
    if origin is dict:
        return {}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return next(iter(tp))
    if tp is datetime:
        return datetime.now().astimezone()
    if isinstance(tp, type) and attrs.has(tp):
        return _sample(tp)
    return tp()


def model_schema(cls: type, names: Mapping[type, str], *,
                 render: Callable[[Any], Mapping[str, Any]] | None = None,
                 extra: Mapping[str, dict[str, Any]] | None = None,
                 overrides: Mapping[str, dict[str, Any]] | None = None,
                 description: str | None = None) -> dict[str, Any]:
    """The response schema of ``cls`` as ``render`` (default: the converter) emits it.

    Every rendered key is required (the renderer always emits it). A key that is neither a
    field of ``cls`` nor in ``extra`` is an error: the schema would not describe it.
    """
    render = render or converter.unstructure
    rendered = render(_sample(cls))
    hints = typing.get_type_hints(cls)
    by_wire = {camel(a.name): a.name for a in attrs.fields(cls)}
    extra, overrides = dict(extra or {}), dict(overrides or {})
    props: dict[str, Any] = {}
    for key in rendered:
        if key in overrides:
            props[key] = overrides[key]
        elif key in extra:
            props[key] = extra[key]
        elif key in by_wire:
            props[key] = type_schema(hints[by_wire[key]], names)
        else:
            raise TypeError(f"{cls.__name__} renders {key!r}, which has no schema")
    schema: dict[str, Any] = {"type": "object", "properties": props,
                              "required": list(rendered), "additionalProperties": False}
    if description:
        schema["description"] = description
    return schema


def request_schema(cls: type, names: Mapping[type, str], *,
                   overrides: Mapping[str, dict[str, Any]] | None = None,
                   description: str | None = None) -> dict[str, Any]:
    """The body the converter accepts for ``cls``: camelCase fields, unknown keys refused;
    fields without a default are required."""
    hints = typing.get_type_hints(cls)
    overrides = dict(overrides or {})
    props: dict[str, Any] = {}
    required = []
    for a in attrs.fields(cls):
        key = camel(a.name)
        schema = dict(overrides.get(key) or a.metadata.get("schema")
                      or type_schema(hints[a.name], names))
        if a.default is attrs.NOTHING:
            required.append(key)
        elif isinstance(a.default, (str, int, bool)) and not isinstance(a.default, _Unset):
            schema["default"] = a.default.value if isinstance(a.default, enum.Enum) \
                else a.default
        props[key] = schema
    out: dict[str, Any] = {"type": "object", "properties": props,
                           "additionalProperties": False}
    if required:
        out["required"] = required
    if description:
        out["description"] = description
    return out


def platform_config_schemas(platforms: Mapping[str, PlatformBase]) -> dict[str, Any]:
    """``PlatformConfig`` (an object keyed by platform name) and one
    ``PlatformConfig_<name>`` per platform, from the options it declares."""
    out: dict[str, Any] = {}
    props: dict[str, Any] = {}
    for name in sorted(platforms):
        platform = platforms[name]
        label = platform.display_name or name
        out[f"PlatformConfig_{name}"] = options.object_schema(
            platform.options, description=f"{label} options (platformConfig.{name})")
        props[name] = ref(f"PlatformConfig_{name}")
    out["PlatformConfig"] = {
        "type": "object", "properties": props, "additionalProperties": False,
        "description": "Options per platform, keyed by platform name. Each platform's "
        "options are checked against its schema; options of a platform required there "
        "must be set when the post goes to an account of that platform."}
    return out


_TARGET = {"type": "object", "required": ["externalId", "name", "username", "pictureUrl"],
           "properties": {"externalId": {"type": "string"}, "name": {"type": "string"},
                          "username": {"type": ["string", "null"]},
                          "pictureUrl": {"type": ["string", "null"]}}}
_CONNECTION = {
    "type": "object",
    "required": ["connectionId", "platform", "status", "expiresAt", "targets", "accounts",
                 "error"],
    "description": "An attempt to connect accounts by OAuth. `pending`: waiting for the "
    "platform's redirect back; `select`: choose among `targets`; `connected`: `accounts` "
    "are connected; `failed` / `expired`: `error` says why.",
    "properties": {
        "connectionId": {"type": "string"}, "platform": {"type": "string"},
        "status": {"type": "string", "enum": list(STATUSES)},
        "authorizationUrl": {"type": "string", "description": "Where to send the browser "
                             "(only in the answer that started the connection)."},
        "expiresAt": {"type": "string", "format": "date-time"},
        "targets": {"type": "array", "items": _TARGET},
        "accounts": {"type": "array", "items": {"$ref": "#/components/schemas/Account"}},
        "error": {"anyOf": [{"type": "null"}, {
            "type": "object", "required": ["error", "message"], "properties": {
                "error": {"type": "string"}, "message": {"type": "string"}}}]},
    },
}


def components(platforms: Mapping[str, PlatformBase]) -> dict[str, Any]:
    """Every schema of the API, keyed by component name. ``platforms`` are the installed
    platforms by name (third-party plugins add theirs)."""
    names: dict[type, str] = {
        ThreadItem: "ThreadItem", MediaType: "MediaType", PostStatus: "PostStatus",
    }
    platform = ({"type": "string", "enum": sorted(platforms)} if platforms
                else {"type": "string"})
    p_ref = {"platform": ref("Platform")}
    config_ref = {"platformConfig": ref("PlatformConfig")}
    schemas: dict[str, Any] = {
        **platform_config_schemas(platforms),
        "Platform": platform,
        "MediaType": type_schema(MediaType, {}),
        "PostStatus": type_schema(PostStatus, {}),
        "Error": {
            "type": "object",
            "required": ["error", "message", "details"],
            "properties": {
                "error": {"type": "string",
                          "description": "Error code, e.g. VALIDATION_ERROR, RATE_LIMIT"},
                "message": {"type": "string"},
                "details": {"type": "array", "items": {
                    "type": "object", "required": ["path", "message"],
                    "properties": {"path": {"type": "string"}, "message": {"type": "string"}},
                }},
            },
        },
        "Account": model_schema(Account, names, render=account_json, overrides=p_ref),
        "Post": model_schema(Post, names, render=post_json, overrides=p_ref | config_ref,
                             extra={"channelId": {"type": "string"}}),
        "PostSummary": model_schema(PostSummary, names, overrides=p_ref),
        "ApiKey": model_schema(ApiKey, names, render=api_key_json),
        "LogEvent": model_schema(LogEvent, names, render=log_json),
        "Media": model_schema(MediaAsset, names, render=media_json, extra={
            "type": {"type": "string", "enum": ["image", "video"]}}),
        "User": model_schema(User, names, render=user_json, extra={"orgId": {"type": "string"}}),
        "ThreadItem": request_schema(ThreadItem, names),
        # the limits validation refuses a post for, so the document allows no less
        "CreatePostRequest": _limited(
            request_schema(PostRequest, names, overrides=config_ref),
            accountIds={"minItems": 1, "maxItems": MAX_ACCOUNTS, "uniqueItems": True,
                        "items": {"type": "string", "minLength": 1}},
            mediaUrls={"maxItems": MAX_MEDIA_URLS}, thread={"maxItems": MAX_THREAD_ITEMS}),
        "UpdatePostRequest": request_schema(
            UpdatePostRequest, names, overrides=config_ref,
            description="Only the fields sent are changed. "
            "scheduledAt null publishes on the next worker tick."),
        "DuplicatePostRequest": request_schema(DuplicatePostRequest, names),
        "CreateApiKeyRequest": _limited(
            request_schema(CreateApiKeyRequest, names),
            name={"minLength": 1, "maxLength": 200, "pattern": r"\S"},
            scopes={"anyOf": [{"type": "array", "minItems": 1,
                               "items": {"type": "string", "enum": list(DEFAULT_SCOPES)}},
                              {"type": "null"}]}),
        "LoginRequest": request_schema(LoginRequest, names),
        "ConnectRequest": request_schema(ConnectRequest, names, overrides=p_ref),
        "ReconnectRequest": request_schema(ReconnectRequest, names),
        "SelectTargetsRequest": _limited(request_schema(SelectTargetsRequest, names),
                                         externalIds={"minItems": 1}),
        "Connection": _CONNECTION,
        "MediaUrlRequest": _limited(request_schema(MediaUrlRequest, names),
                                    url={"minLength": 1}),
        "RotateWebhookSecretRequest": request_schema(RotateWebhookSecretRequest, names),
        "PresignRequest": request_schema(PresignRequest, names),
        "MediaItem": model_schema(MediaAsset, names, render=lambda a: library_json(a, 0),
                                  extra={
            "type": {"type": "string", "enum": ["image", "video"]},
            "width": {"type": ["integer", "null"]}, "height": {"type": ["integer", "null"]},
            "durationS": {"type": ["number", "null"]},
            "queuedPosts": {"type": "integer", "minimum": 0}}),
        "WebhookSecret": model_schema(
            WebhookSecret, names, render=webhook_secret_json,
            description="The organization's Standard Webhooks signing secret, and until "
            "when each secret it replaced still signs deliveries (latest first)."),
    }
    issue = {"type": "object", "required": ["path", "code", "message"], "properties": {
        "path": {"type": "string"}, "code": {"type": "string"}, "message": {"type": "string"}}}
    issues = {"type": "array", "items": issue}
    schemas["ValidationReport"] = {
        "type": "object", "required": ["valid", "errors", "warnings", "results", "media"],
        "description": "The validation engine's report: request-wide issues, one result per "
        "account (its errors include the request-wide ones), and the inspected facts of "
        "each media URL.",
        "properties": {
            "valid": {"type": "boolean"}, "errors": issues, "warnings": issues,
            "results": {"type": "array", "items": {
                "type": "object",
                "required": ["accountId", "platform", "valid", "errors", "warnings"],
                "properties": {"accountId": {"type": "string"},
                               "platform": {"type": ["string", "null"]},
                               "valid": {"type": "boolean"}, "errors": issues,
                               "warnings": issues}}},
            "media": {"type": "array", "items": {"type": "object"}},
        },
    }
    schemas["ApiKeyCreated"] = _with(schemas["ApiKey"], key={
        "type": "string", "description": "The raw API key. Shown only once."})
    return schemas


def _limited(schema: dict[str, Any], **limits: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with ``limits`` added to the properties they name (``anyOf`` replaces
    the property's schema: a nullable one's limits go on its non-null branch)."""
    props = dict(schema["properties"])
    for name, more in limits.items():
        props[name] = dict(more) if "anyOf" in more else {**props[name], **more}
    return {**schema, "properties": props}


def _with(schema: dict[str, Any], **props: dict[str, Any]) -> dict[str, Any]:
    out = {**schema, "properties": {**schema["properties"], **props}}
    out["required"] = [*schema["required"], *props]
    return out


__all__ = [
    "UNSET",
    "ConnectRequest",
    "CreateApiKeyRequest",
    "DuplicatePostRequest",
    "LoginRequest",
    "MediaUrlRequest",
    "PresignRequest",
    "ReconnectRequest",
    "RotateWebhookSecretRequest",
    "SelectTargetsRequest",
    "UpdatePostRequest",
    "account_json",
    "api_key_json",
    "components",
    "connection_json",
    "library_json",
    "log_json",
    "media_json",
    "model_schema",
    "ref",
    "request_schema",
    "type_schema",
    "user_json",
    "webhook_secret_json",
]
