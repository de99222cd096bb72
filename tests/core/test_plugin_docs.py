"""docs/plugins.md documents everything a plugin author touches: every hook, every
attribute of the contexts, the platform class, option declarations, the sandbox helpers
and the testing helpers. A new public name without a line in the docs fails here."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import attrs
import pytest

from chat33_core import hookspecs, testing
from chat33_core.options import Option
from chat33_core.platforms import DeleteContext, PlatformBase, PublishContext, RefreshContext
from chat33_core.sandbox import SandboxApp

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "plugins.md").read_text()


def public_names(cls: type) -> list[str]:
    """Fields, properties and methods a plugin may use (not dunder or private)."""
    names = {a.name for a in attrs.fields(cls)} if attrs.has(cls) else set()
    names |= {n for n, v in vars(cls).items() if not n.startswith("_")
              and (callable(v) or isinstance(v, property))}
    return sorted(names)


def test_every_hook_is_documented_with_its_signature() -> None:
    for name in hookspecs.hook_names():
        assert re.search(rf"`{name}\(", DOC), f"{name} is missing from docs/plugins.md"


@pytest.mark.parametrize("cls", [PublishContext, DeleteContext, RefreshContext])
def test_every_context_attribute_is_documented(cls: type) -> None:
    missing = [n for n in public_names(cls) if f"`ctx.{n}" not in DOC]
    assert not missing, f"{cls.__name__}: {missing} missing from docs/plugins.md"


def test_every_platform_attribute_and_method_is_documented() -> None:
    attributes = [n for n, v in vars(PlatformBase).items()
                  if not n.startswith("_") and not callable(v)]
    methods = [n for n, v in vars(PlatformBase).items()
               if not n.startswith("_") and callable(v)]
    assert "options" in attributes and "sandbox" in methods
    missing = [n for n in attributes if f"| `{n}` |" not in DOC]
    missing += [n for n in methods if f"`{n}(" not in DOC]
    assert not missing, f"PlatformBase: {missing} missing from docs/plugins.md"


def test_every_option_field_is_documented() -> None:
    signature = re.search(r"Option\(name, type, description, .*?\)\n", DOC, re.S)
    assert signature, "the Option signature is missing from docs/plugins.md"
    for field in attrs.fields(Option):
        assert re.search(rf"\b{field.name}\b", signature.group(0)), field.name
        assert f"`{field.name}" in DOC or field.name in ("name", "description"), field.name


def test_every_sandbox_helper_is_documented() -> None:
    helpers = ["route", "configurable", "add_fault", "reset", "state"]
    assert all(callable(getattr(SandboxApp, h)) for h in helpers)
    missing = [h for h in helpers if f"{h}(" not in DOC]
    missing += [a for a in ("self.lock", "self.requests", "self.defaults", "self.config",
                            "json_response(", "raw_header(", "serve(app)") if a not in DOC]
    missing += [p for p in ("/_sandbox/faults", "/_sandbox/state", "/_sandbox/reset",
                            "/_sandbox/config") if p not in DOC]
    assert not missing, f"sandbox helpers {missing} missing from docs/plugins.md"


def test_every_testing_helper_is_documented() -> None:
    names = [n for n in testing.__all__ if inspect.isfunction(getattr(testing, n))
             or inspect.isclass(getattr(testing, n))]
    # every helper defined in the package is exported
    defined = {n for module in (testing.contexts, testing.contract, testing.media,
                                testing.worker)
               for n, v in vars(module).items() if not n.startswith("_")
               and (inspect.isfunction(v) or inspect.isclass(v))
               and getattr(v, "__module__", "") == module.__name__}
    assert defined == set(names), defined ^ set(names)
    assert {"PlatformContract", "validate_draft", "publish_context"} <= set(names)
    missing = [n for n in names if f"`{n}" not in DOC]
    assert not missing, f"chat33_core.testing: {missing} missing from docs/plugins.md"


def test_the_example_the_docs_point_to_exists() -> None:
    assert "(../examples/chat33_example)" in DOC
    package = ROOT / "examples" / "chat33_example" / "chat33_example"
    for name in ("api.py", "platform.py", "sandbox.py"):
        assert (package / name).is_file() and f"`{name}`" in DOC
