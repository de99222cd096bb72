"""The plugin host: finds plugins through entry points and keeps the platforms."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from importlib.metadata import entry_points
from typing import Any

import pluggy

from . import hookspecs
from .config import Settings
from .errors import NotFound, PluginError
from .options import Option
from .platforms import PlatformBase

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "chat33.platforms"


class PluginHost:
    """Owns one pluggy manager and the platform objects plugins registered.

    Nothing is loaded at import time: call :meth:`load_entry_points` (the service does)
    or :meth:`register` a plugin object yourself. One broken plugin is logged and
    skipped, never fatal. ``CHAT33_LOAD_PLUGINS`` (comma list) selects entry points by
    name; ``CHAT33_DISABLED_PLUGINS`` blocks some.
    """

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings.from_env()
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self._platforms: dict[str, PlatformBase] = {}
        self.broken: dict[str, str] = {}

    # --- loading -----------------------------------------------------------------

    def load_entry_points(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        only = _names(env.get("CHAT33_LOAD_PLUGINS"))
        blocked = _names(env.get("CHAT33_DISABLED_PLUGINS"))
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if (only and ep.name not in only) or ep.name in blocked:
                continue
            if self.pm.has_plugin(ep.name):
                continue
            try:
                plugin = ep.load()
                self.register(plugin, name=ep.name)
            except Exception as exc:  # a broken plugin must not take the host down
                log.warning("chat33 plugin %r failed to load and is skipped: %s", ep.name, exc)
                self.broken[ep.name] = f"{type(exc).__name__}: {exc}"

    def register(self, plugin: Any, name: str | None = None) -> None:
        """Register a plugin object (a module or instance with ``@hookimpl`` functions)
        and collect the platforms it registers."""
        found: list[type[PlatformBase]] = []
        added: list[str] = []
        self.pm.register(plugin, name=name)
        try:
            self.pm.check_pending()
            impl = getattr(plugin, "chat33_register_platforms", None)
            if impl is not None:
                impl(register=found.append)
            for cls in found:
                added.append(self._add_platform(cls, plugin_name=name))
        except Exception:
            self.pm.unregister(plugin)
            for platform_name in added:
                del self._platforms[platform_name]
            raise

    def _add_platform(self, cls: type[PlatformBase], plugin_name: str | None) -> str:
        if not (isinstance(cls, type) and issubclass(cls, PlatformBase)):
            raise PluginError(
                f"plugin {plugin_name!r} registered {cls!r}, not a PlatformBase subclass")
        if not cls.name:
            raise PluginError(f"platform class {cls.__qualname__} has no name")
        _check_options(cls)
        if cls.name in self._platforms:
            other = type(self._platforms[cls.name]).__qualname__
            raise PluginError(
                f"two plugins register the platform {cls.name!r} ({other} and {cls.__qualname__})"
            )
        self._platforms[cls.name] = cls(self.settings)
        return cls.name

    # --- lookups -----------------------------------------------------------------

    def platform(self, name: str) -> PlatformBase:
        try:
            return self._platforms[name]
        except KeyError:
            raise NotFound(f"no platform plugin is installed for {name!r}") from None

    def has_platform(self, name: str) -> bool:
        return name in self._platforms

    @property
    def platforms(self) -> dict[str, PlatformBase]:
        return dict(self._platforms)

    def __iter__(self) -> Iterator[PlatformBase]:
        return iter(self._platforms.values())

    @property
    def hook(self) -> Any:
        return self.pm.hook


def _check_options(cls: type[PlatformBase]) -> None:
    """A platform's option declarations must be usable before any request meets them."""
    names = [str(getattr(o, "name", "")) for o in cls.options]
    bad = [o for o in cls.options if not isinstance(o, Option)]
    if bad:
        raise PluginError(f"{cls.__qualname__}.options holds {bad[0]!r}, not an Option")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise PluginError(f"{cls.__qualname__}.options declares {', '.join(twice)} "
                          "more than once")
    for option in cls.options:
        if option.has_default and option.choices and option.default not in option.choices:
            raise PluginError(f"{cls.__qualname__}.options: the default of {option.name} "
                              f"({option.default!r}) is not among its choices")


def _names(raw: str | None) -> set[str]:
    return {n.strip() for n in (raw or "").split(",") if n.strip()}


def iter_entry_point_names() -> Iterable[str]:
    return sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
