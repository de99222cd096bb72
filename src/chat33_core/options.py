"""Platform options: what a post may carry under ``platformConfig.<platform>``.

A plugin declares its options once, as :class:`Option` values in
``PlatformBase.options``. The one declaration feeds:

* validation — :func:`check` (types, allowed values, ranges, required options, unknown
  keys; issues in the API's error shape at ``platformConfig.<platform>.<option>``). The
  core runs it before the plugin's ``validate``; a plugin then sees only declared options
  whose values passed, so it never re-checks a type;
* the OpenAPI document — :func:`object_schema`, a JSON Schema per platform;
* the README's per-platform tables — :func:`markdown_table`
  (``python -m chat33_core.options [NAME...]`` prints them for installed plugins).

Defaults are documentation: the plugin applies them (``ctx.config(name).get(...)``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from attrs import field, frozen

from .errors import Issue

#: the JSON Schema types an option may have
TYPES = ("string", "boolean", "integer", "number", "array", "object")
_PHRASES = {"string": "a string", "boolean": "true or false", "integer": "a whole number",
            "number": "a number", "array": "a list", "object": "an object"}
_PLURALS = {"string": "strings", "boolean": "true/false values", "integer": "whole numbers",
            "number": "numbers", "array": "lists", "object": "objects"}


class _NoDefault:
    def __repr__(self) -> str:
        return "NO_DEFAULT"


NO_DEFAULT: Any = _NoDefault()


def _types(value: str | Sequence[str]) -> tuple[str, ...]:
    found = (value,) if isinstance(value, str) else tuple(value)
    unknown = [t for t in found if t not in TYPES]
    if not found or unknown:
        raise ValueError(f"option types must be among {', '.join(TYPES)}, got {value!r}")
    return found


def _tuple(values: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(values)


@frozen
class Option:
    """One option of a platform (or one field of an object option).

    :param name: the key under ``platformConfig.<platform>`` (camelCase, as the API).
    :param type: a JSON Schema type name, or several (``("string", "integer")``).
    :param description: one sentence for the API document and the README.
    :param choices: the allowed values, when there is a fixed set.
    :param default: what the plugin does when the option is absent (documentation).
    :param required: a post to this platform must set it.
    :param minimum: / :param maximum: bounds of a number.
    :param items: the declaration of each element of an array (its name is not used).
    :param fields: the fields of an object; other keys are refused.
    """

    name: str
    type: tuple[str, ...] = field(converter=_types)
    description: str
    choices: tuple[Any, ...] = field(default=(), converter=_tuple)
    default: Any = NO_DEFAULT
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None
    items: Option | None = None
    fields: tuple[Option, ...] = field(default=(), converter=_tuple)

    @property
    def has_default(self) -> bool:
        return self.default is not NO_DEFAULT


# --- validation ----------------------------------------------------------------------------


def check(options: Sequence[Option], value: Any, path: str, *, label: str,
          required: bool = True) -> tuple[dict[str, Any], list[Issue]]:
    """Check ``value`` (the object under ``path``) against ``options``.

    Returns the options that passed (what the plugin gets to see) and every issue.
    ``required=False`` skips the required options (a platform no account of the request
    is on). ``label`` names the platform in messages.
    """
    if not isinstance(value, Mapping):
        return {}, [Issue(path, "must be an object of options", "invalid")]
    declared = {o.name: o for o in options}
    clean: dict[str, Any] = {}
    issues: list[Issue] = []
    for key, item in value.items():
        option = declared.get(key) if isinstance(key, str) else None
        if option is None:
            accepted = ", ".join(sorted(declared)) or "none"
            issues.append(Issue(f"{path}.{key}", f"unknown option {key!r} for {label} "
                                                 f"(accepted: {accepted})", "unknown_key"))
            continue
        found = _check_value(option, item, f"{path}.{key}")
        if found:
            issues += found
        else:
            clean[key] = item
    if required:
        issues += missing(options, value, path, label=label)
    return clean, issues


def missing(options: Sequence[Option], value: Any, path: str, *, label: str) -> list[Issue]:
    """An issue per required option that ``value`` (an object, or None) does not set."""
    given = value if isinstance(value, Mapping) else {}
    return [Issue(f"{path}.{o.name}", f"{o.name} is required by {label}: {_expected(o)}",
                  "required") for o in options if o.required and o.name not in given]


def _check_value(option: Option, value: Any, path: str) -> list[Issue]:
    if not any(_is(value, t) for t in option.type):
        return [Issue(path, f"must be {_expected(option)}, got {_show(value)}",
                      "invalid_type")]
    if option.choices and value not in option.choices:
        return [Issue(path, f"{_show(value)} is not one of "
                            f"{', '.join(str(c) for c in option.choices)}", "invalid_choice")]
    if _is(value, "number"):
        low, high = option.minimum, option.maximum
        if (low is not None and value < low) or (high is not None and value > high):
            message = (f"{option.name} {value!r} is outside {_range(option)}"
                       if low is not None and high is not None
                       else f"{option.name} must be {_range(option)}, got {value!r}")
            return [Issue(path, message, "out_of_range")]
    if option.items is not None and isinstance(value, list | tuple):
        return [issue for i, item in enumerate(value)
                for issue in _check_value(option.items, item, f"{path}[{i}]")]
    if option.fields and isinstance(value, Mapping):
        names = {f.name: f for f in option.fields}
        issues: list[Issue] = []
        for key, item in value.items():
            sub = names.get(key) if isinstance(key, str) else None
            if sub is None:
                issues.append(Issue(f"{path}.{key}", f"unknown field {key!r} (fields: "
                                                     f"{', '.join(names)})", "unknown_key"))
            else:
                issues += _check_value(sub, item, f"{path}.{key}")
        issues += [Issue(f"{path}.{f.name}", f"{f.name} is required: {_expected(f)}",
                         "required") for f in option.fields
                   if f.required and f.name not in value]
        return issues
    return []


def _is(value: Any, type_name: str) -> bool:
    if type_name == "string":
        return isinstance(value, str)
    if type_name == "boolean":
        return isinstance(value, bool)
    if type_name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if type_name == "number":
        return (isinstance(value, int | float) and not isinstance(value, bool)
                and math.isfinite(value))
    if type_name == "array":
        return isinstance(value, list | tuple)
    return isinstance(value, Mapping)


def _expected(option: Option) -> str:
    if option.choices:
        return "one of " + ", ".join(str(c) for c in option.choices)
    what = " or ".join(_PHRASES[t] for t in option.type)
    if option.items is not None:
        what = "a list of " + " or ".join(_PLURALS[t] for t in option.items.type)
    if option.minimum is not None or option.maximum is not None:
        what += f" ({_range(option)})"
    return what


def _range(option: Option) -> str:
    low, high = option.minimum, option.maximum
    if low is not None and high is not None:
        return f"{_number(low)}-{_number(high)}"
    if low is not None:
        return f"{_number(low)} or more"
    return f"{_number(high)} or less" if high is not None else "any value"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --- JSON Schema ---------------------------------------------------------------------------


def json_schema(option: Option, *, described: bool = True) -> dict[str, Any]:
    """The JSON Schema of one option's value."""
    schema: dict[str, Any] = {"type": option.type[0] if len(option.type) == 1
                              else list(option.type)}
    if described and option.description:
        schema["description"] = option.description
    if option.choices:
        schema["enum"] = list(option.choices)
    if option.has_default:
        schema["default"] = option.default
    if option.minimum is not None:
        schema["minimum"] = option.minimum
    if option.maximum is not None:
        schema["maximum"] = option.maximum
    if option.items is not None:
        schema["items"] = json_schema(option.items)
    if option.fields:
        schema.update(object_schema(option.fields))
    return schema


def object_schema(options: Sequence[Option], description: str | None = None
                  ) -> dict[str, Any]:
    """The JSON Schema of an object of ``options``: ``platformConfig.<platform>``."""
    schema: dict[str, Any] = {"type": "object",
                              "properties": {o.name: json_schema(o) for o in options},
                              "additionalProperties": False}
    required = [o.name for o in options if o.required]
    if required:
        schema["required"] = required
    if description:
        schema["description"] = description
    return schema


# --- the README ----------------------------------------------------------------------------


def markdown_table(options: Sequence[Option]) -> str:
    """The options as a Markdown table: option, type, values, default, description."""
    lines = ["| option | type | values | default | description |",
             "| --- | --- | --- | --- | --- |"]
    for option in options:
        kind = " or ".join(option.type)
        if option.items is not None:
            kind += " of " + " or ".join(option.items.type)
        if option.required:
            kind += ", required"
        values = ", ".join(f"`{c}`" for c in option.choices)
        if not values and (option.minimum is not None or option.maximum is not None):
            values = _range(option)
        inner = option.items.fields if option.items is not None else option.fields
        if inner:
            values = "{" + ", ".join(f"`{f.name}`" for f in inner) + "}"
        default = f"`{_markdown_value(option.default)}`" if option.has_default else ""
        lines.append(f"| `{option.name}` | {kind} | {values} | {default} | "
                     f"{option.description.replace('|', '/')} |")
    return "\n".join(lines)


def _markdown_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def readme_section(platforms: Mapping[str, Any]) -> str:
    """Every platform's table, in name order, as the README shows them."""
    parts = []
    for name in sorted(platforms):
        platform = platforms[name]
        title = getattr(platform, "display_name", "") or name
        parts.append(f"#### {title} (`platformConfig.{name}`)\n\n"
                     f"{markdown_table(platform.options)}")
    return "\n\n".join(parts)


def main(names: Sequence[str] = ()) -> None:
    """Print the README's option tables for the installed platform plugins (or those
    named: ``python -m chat33_core.options facebook instagram tiktok x youtube``)."""
    from .config import Settings
    from .plugins import PluginHost

    host = PluginHost(Settings.from_env({}))
    host.load_entry_points({"CHAT33_LOAD_PLUGINS": ",".join(names)} if names else {})
    print(readme_section(host.platforms))


if __name__ == "__main__":  # pragma: no cover
    import sys

    main(sys.argv[1:])
