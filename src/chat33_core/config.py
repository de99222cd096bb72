"""Configuration from the environment (the operator contract in DESIGN.md)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
from attrs import field, frozen

from .errors import ConfigurationError

_TRUE = {"1", "true", "yes", "on"}


@frozen
class Settings:
    """Everything chat33 reads from its environment, resolved once.

    Build one with :meth:`from_env` (or directly, in tests and embedding code).
    """

    database_url: str = "sqlite:///chat33.db"
    media_dir: Path = field(default=Path("chat33-media"), converter=Path)
    public_base_url: str = "http://127.0.0.1:8000"
    secret_key: str | None = field(default=None, repr=False)
    allow_private_urls: bool = False
    poll_interval_s: float = 2.0
    max_attempts: int = 5
    #: the raw environment the settings came from: platform overrides are read from it
    env: Mapping[str, str] = field(factory=dict, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        env = dict(os.environ if env is None else env)
        values: dict[str, Any] = {
            "database_url": env.get("CHAT33_DATABASE_URL", "sqlite:///chat33.db"),
            "media_dir": env.get("CHAT33_MEDIA_DIR", "chat33-media"),
            "public_base_url": env.get("CHAT33_PUBLIC_BASE_URL", "http://127.0.0.1:8000"),
            "secret_key": env.get("CHAT33_SECRET_KEY") or None,
            "allow_private_urls": env.get("CHAT33_ALLOW_PRIVATE_URLS", "0").lower() in _TRUE,
            "poll_interval_s": _float(env, "CHAT33_POLL_INTERVAL_S", 2.0),
            "max_attempts": int(_float(env, "CHAT33_MAX_ATTEMPTS", 5)),
            "env": env,
        }
        values.update(overrides)
        return cls(**values)

    def with_(self, **changes: Any) -> Settings:
        return attrs.evolve(self, **changes)

    # --- per-platform overrides --------------------------------------------------

    def platform_value(self, platform: str, name: str, default: str | None = None) -> str | None:
        """``CHAT33_<PLATFORM>_<NAME>`` from the environment, or ``default``."""
        return self.env.get(f"CHAT33_{platform.upper()}_{name}") or default

    def api_base(self, platform: str, default: str) -> str:
        """The origin a plugin sends its API calls to (``CHAT33_<PLATFORM>_API_BASE``)."""
        return (self.platform_value(platform, "API_BASE", default) or default).rstrip("/")

    def token_url(self, platform: str, default: str) -> str:
        """The OAuth token endpoint: ``CHAT33_<PLATFORM>_TOKEN_URL``, else ``default``.

        A plugin whose token endpoint lives on its API origin passes a default built on
        :meth:`api_base`, so an API base override covers it too.
        """
        explicit = self.platform_value(platform, "TOKEN_URL")
        return explicit or default

    def client_credentials(self, platform: str) -> tuple[str | None, str | None]:
        return (
            self.platform_value(platform, "CLIENT_ID"),
            self.platform_value(platform, "CLIENT_SECRET"),
        )

    def require_secret_key(self) -> str:
        if not self.secret_key:
            raise ConfigurationError(
                "CHAT33_SECRET_KEY is not set: chat33 refuses to store credentials or "
                "serve sessions without it (generate one with "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
            )
        return self.secret_key


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number, got {raw!r}") from None
