"""The one place that owns the API's JSON shape (camelCase, ISO 8601 instants).

``converter.unstructure(model)`` gives the wire dict; :func:`structure` turns request JSON
into a model or raises :class:`~chat33_core.errors.ValidationError` whose ``details`` carry
a ``path`` into the request and a message for every problem.
"""

from __future__ import annotations

import enum
import re
import typing
from datetime import UTC, datetime
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.errors import (
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from .errors import Chat33Error, Issue, ValidationError
from .media import MediaInfo
from .models import (
    Account,
    AccountResult,
    ApiKey,
    DeleteOutcome,
    LogEvent,
    MediaAsset,
    MediaType,
    Platform,
    Post,
    PostRequest,
    PostStatus,
    PostSummary,
    ThreadItem,
    ValidationReport,
    WebhookSecret,
)

T = TypeVar("T")


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def isoformat(value: datetime) -> str:
    """``2026-04-01T14:00:00.000Z`` — UTC with milliseconds, as JavaScript clients expect."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    # isoformat() without arguments is the fastest formatting (lists format thousands);
    # it leaves the fraction out when it is zero
    text = value.isoformat()
    return text[:23] + "Z" if value.microsecond else text[:19] + ".000Z"


converter = cattrs.Converter(forbid_extra_keys=True)
converter.register_unstructure_hook(datetime, isoformat)


def _structure_datetime(value: Any, _: type) -> datetime:
    if not isinstance(value, str):
        raise ValueError("expected an ISO 8601 string")
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


converter.register_structure_hook(datetime, _structure_datetime)


def _strict_str(value: Any, _: type) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return value


def _strict_bool(value: Any, _: type) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {type(value).__name__}")
    return value


def _strict_int(value: Any, _: type) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {type(value).__name__}")
    return value


def _strict_dict(value: Any, _: type) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"expected an object, got {type(value).__name__}")
    return value


converter.register_structure_hook(str, _strict_str)
converter.register_structure_hook(bool, _strict_bool)
converter.register_structure_hook(int, _strict_int)
converter.register_structure_hook_func(lambda cl: cl == dict[str, Any], _strict_dict)


def _structure_enum(value: Any, cl: type[enum.Enum]) -> enum.Enum:
    try:
        return cl(value)
    except ValueError:
        allowed = ", ".join(str(m.value) for m in cl)
        raise ValueError(f"must be one of {allowed}; got {value!r}") from None


for _enum in (MediaType, PostStatus, Platform):
    # registered per class: str's hook would otherwise win for these str subclasses
    converter.register_structure_hook(_enum, _structure_enum)
    converter.register_unstructure_hook(_enum, lambda v: v.value)


def _structure_list(value: Any, cl: Any) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"expected an array, got {type(value).__name__}")
    (item_type,) = typing.get_args(cl) or (Any,)
    out, errors = [], []
    for index, item in enumerate(value):
        try:
            out.append(converter.structure(item, item_type))
        except Exception as exc:
            exc.__notes__ = [*getattr(exc, "__notes__", []),
                             IterableValidationNote(f"index {index}", index, item_type)]
            errors.append(exc)
    if errors:
        raise IterableValidationError(f"while structuring {cl}", errors, cl)
    return out


def _is_list(cl: Any) -> bool:
    return typing.get_origin(cl) is list


converter.register_structure_hook_func(_is_list, _structure_list)


#: per wired class: (attribute, JSON key) of every field the converter writes, in its order
_WIRE_KEYS: dict[type, tuple[tuple[str, str], ...]] = {}


def _wire(cls: type, *, omit: tuple[str, ...] = (), rename: dict[str, str] | None = None) -> None:
    """camelCase in and out for ``cls``; ``omit`` fields never leave the process."""
    rename = rename or {}
    _WIRE_KEYS[cls] = tuple((a.name, rename.get(a.name, camel(a.name)))
                            for a in attrs.fields(cls) if a.name not in omit)
    overrides: dict[str, Any] = {
        a.name: override(omit=True) if a.name in omit
        else override(rename=rename.get(a.name, camel(a.name)))
        for a in attrs.fields(cls)
    }
    converter.register_unstructure_hook(cls, make_dict_unstructure_fn(cls, converter, **overrides))
    structure_overrides: dict[str, Any] = {
        a.name: override(rename=rename.get(a.name, camel(a.name))) for a in attrs.fields(cls)}
    converter.register_structure_hook(
        cls, make_dict_structure_fn(cls, converter, _cattrs_forbid_extra_keys=True,
                                    **structure_overrides))


_wire(Account, omit=("org_id",))
_wire(Post, omit=("org_id", "media_ids", "publish_with_head", "lease_owner",
                  "lease_expires_at", "account_id"))
_wire(PostSummary)
_wire(ApiKey, omit=("org_id", "user_id", "key_hash"))
_wire(LogEvent)
_wire(MediaAsset, omit=("org_id", "path", "info"))
_wire(ThreadItem)
_wire(WebhookSecret)
_wire(PostRequest)
#: an error's details as the API answers them: where and what
_wire(Issue, omit=("code", "severity"))


def error_json(exc: Chat33Error) -> dict[str, Any]:
    """A chat33 error as the API answers it: ``{"error", "message", "details"}``."""
    return {"error": exc.code, "message": exc.message,
            "details": converter.unstructure(exc.details, list[Issue])}


# A file's inspected facts as stored with its asset (``info``): every field, snake_case
# keys; read back ignoring keys a newer or older chat33 does not know.
converter.register_unstructure_hook(MediaInfo, make_dict_unstructure_fn(MediaInfo, converter))
converter.register_structure_hook(MediaInfo, make_dict_structure_fn(
    MediaInfo, converter, _cattrs_forbid_extra_keys=False))


def media_info_json(info: MediaInfo) -> dict[str, Any]:
    """``info`` as an asset stores it (:func:`media_info_of` reads it back)."""
    data: dict[str, Any] = converter.unstructure(info)
    return data


def media_info_of(data: Any) -> MediaInfo:
    """The :class:`MediaInfo` an asset stores (:func:`media_info_json`)."""
    return converter.structure(data, MediaInfo)


def _reported(issues: list[Issue]) -> list[dict[str, str]]:
    """Issues as a validation report lists them (an error's ``details`` carry only
    ``path`` and ``message``)."""
    return [{"path": i.path, "code": i.code, "message": i.message} for i in issues]


def _wire_verdict(cls: type, keys: tuple[str, ...], *, omit: tuple[str, ...] = (),
                  rename: dict[str, str] | None = None) -> None:
    """camelCase out for a verdict of validation (``cls``), its issue lists as
    :func:`_reported`, with its ``valid`` property, written in the order of ``keys``."""
    rename = rename or {}
    overrides: dict[str, Any] = {
        a.name: override(omit=True) if a.name in omit else override(
            rename=rename.get(a.name, camel(a.name)),
            unstruct_hook=_reported if a.type in ("list[Issue]", list[Issue]) else None)
        for a in attrs.fields(cls)}
    fields: typing.Callable[[Any], dict[str, Any]] = make_dict_unstructure_fn(
        cls, converter, **overrides)

    def unstructure(verdict: Any) -> dict[str, Any]:
        data = fields(verdict)
        data["valid"] = verdict.valid
        return {key: data[key] for key in keys}

    converter.register_unstructure_hook(cls, unstructure)


_wire_verdict(AccountResult, ("accountId", "platform", "valid", "errors", "warnings"))
# scheduled_at and media_types are for creating the posts, not the API's answer
_wire_verdict(ValidationReport, ("valid", "errors", "warnings", "results", "media"),
              omit=("scheduled_at", "media_types"),
              rename={"request_errors": "errors", "request_warnings": "warnings"})


def _unstructure_deletion(outcome: DeleteOutcome) -> dict[str, Any]:
    """``platformDeleted`` and ``platformError`` only when the platform was asked."""
    data = _delete_fields(outcome)
    if outcome.platform_deleted is None:
        del data["platformDeleted"], data["platformError"]
    return data


_delete_renames: dict[str, Any] = {a.name: override(rename=camel(a.name))
                                   for a in attrs.fields(DeleteOutcome)}
_delete_fields = make_dict_unstructure_fn(DeleteOutcome, converter, **_delete_renames)
converter.register_unstructure_hook(DeleteOutcome, _unstructure_deletion)



def utc_text(value: datetime) -> str:
    """An instant as UTC text with microseconds and no offset,
    ``YYYY-MM-DDTHH:MM:SS.ffffff``: the form in which a post's rows hand instants to
    :class:`PostRows` (the wire form is a cut of it)."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="microseconds")


class PostRows:
    """The one renderer of a post as the API documents it, over a row of its values.

    A list of posts is the API's biggest answer; building a Post and unstructuring it
    costs several times more than reading the row, so lists render the store's rows
    (``Store.list_post_rows(..., utc_text=True)``) and :func:`post_json` renders a Post
    through its row (:meth:`row`). The keys, their order and the attributes left out
    come from the converter's registration of Post (the one field specification), with
    ``channelId`` (the account id) last. :attr:`columns` are the Post attributes of a
    row, in order. Row values are what the Post holds (JSON decoded; enums may be their
    values), except instants: :func:`utc_text`'s text, of which the wire form is a cut.
    """

    def __init__(self) -> None:
        wired = [*_WIRE_KEYS[Post], ("account_id", "channelId")]
        self.columns: tuple[str, ...] = tuple(name for name, _ in wired)
        self.keys: tuple[str, ...] = tuple(key for _, key in wired)
        types = typing.get_type_hints(Post)

        def kinds(*wanted: type) -> tuple[int, ...]:
            return tuple(i for i, name in enumerate(self.columns)
                         if {types[name], *typing.get_args(types[name]),
                             typing.get_origin(types[name])} & set(wanted))

        self.instants = kinds(datetime)
        self.enums = kinds(PostStatus, MediaType)
        #: JSON values (lists, objects): copied from a Post, never shared with it
        self.containers = kinds(list, dict)

    def json(self, row: typing.Sequence[Any]) -> dict[str, Any]:
        values = list(row)
        for i in self.instants:
            value = values[i]
            if value is not None:
                values[i] = f"{value[:23]}Z"  # milliseconds, cut as isoformat() cuts them
        return dict(zip(self.keys, values, strict=True))

    def row(self, post: Post) -> list[Any]:
        """``post``'s row, as the store's rows hold it."""
        values = [getattr(post, name) for name in self.columns]
        for i in self.instants:
            if values[i] is not None:
                values[i] = utc_text(values[i])
        for i in self.enums:
            if values[i] is not None:
                values[i] = values[i].value
        for i in self.containers:
            values[i] = _json_copy(values[i])
        return values


def _json_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_copy(v) for v in value]
    return value


post_rows = PostRows()


def post_json(post: Post) -> dict[str, Any]:
    """A Post as the API documents it (``channelId`` is the account id)."""
    return post_rows.json(post_rows.row(post))


# the converter renders a Post as the API does (schemas and tools that unstructure a
# model get the same answer)
converter.register_unstructure_hook(Post, post_json)


def summary_json(post: Post) -> dict[str, Any]:
    data: dict[str, Any] = converter.unstructure(post.summary())
    return data


def structure(data: Any, cls: type[T], *, path: str = "") -> T:
    """Structure request JSON into ``cls``; every problem becomes a detail with a path."""
    if not isinstance(data, dict):
        raise ValidationError("the request body must be a JSON object",
                              details=[Issue(path or "body", "expected a JSON object")])
    try:
        return converter.structure(data, cls)
    except (ClassValidationError, IterableValidationError, ForbiddenExtraKeysError) as exc:
        issues = list(_issues(exc, path))
        summary = "; ".join(f"{i.path}: {i.message}" for i in issues[:3])
        raise ValidationError(f"invalid request: {summary}", details=issues) from None


def _issues(exc: BaseException, path: str) -> typing.Iterator[Issue]:
    if isinstance(exc, ForbiddenExtraKeysError):
        for key in sorted(exc.extra_fields):
            yield Issue(_join(path, key), "unknown field", code="unknown_field")
        return
    if isinstance(exc, (ClassValidationError, IterableValidationError)):
        with_notes, _ = exc.group_exceptions()
        for sub, note in with_notes:
            name = getattr(note, "name", None)
            if name is None:
                name = f"[{getattr(note, 'index', '?')}]"
            elif isinstance(name, str):
                name = camel(name)
            sub_path = f"{path}{name}" if str(name).startswith("[") else _join(path, str(name))
            yield from _issues(sub, sub_path)
        for sub in exc.exceptions:
            if not any(sub is s for s, _ in with_notes):
                yield from _issues(sub, path)
        return
    if isinstance(exc, KeyError):
        yield Issue(path or "body", "this field is required", code="required")
        return
    message = str(exc) or type(exc).__name__
    if isinstance(exc, ValueError) and "is not a valid" in message:
        message = message.replace("'", "")
    yield Issue(path or "body", message, code="invalid")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
