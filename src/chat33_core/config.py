"""Configuration from the environment (the operator contract in DESIGN.md)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs
from attrs import field, frozen

from .errors import ConfigurationError

_TRUE = {"1", "true", "yes", "on"}
#: where media URLs point when CHAT33_PUBLIC_BASE_URL is unset and nothing better is known
#: (``chat33 serve`` derives it from the address it listens on instead)
DEFAULT_PUBLIC_BASE_URL = "http://127.0.0.1:8000"
#: the shortest CHAT33_SECRET_KEY accepted, in bytes (it keys HMACs and credential encryption)
MIN_SECRET_KEY_BYTES = 32
_MAKE_SECRET = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
_ACCEPTED_DATABASES = ("sqlite:///PATH or postgresql+psycopg://USER@HOST/DB")


def _absolute(path: str | os.PathLike[str]) -> Path:
    """A configured path made absolute against the working directory of the process that
    read the configuration, so that code which resolves relative paths elsewhere (Flask
    serves files relative to its package) sees the same place."""
    return Path(os.path.abspath(os.path.expanduser(path)))


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of an http(s) URL, lower-cased; None for anything else."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    default = {"http": 80, "https": 443}[parts.scheme]
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


@frozen
class Settings:
    """Everything chat33 reads from its environment, resolved once.

    Build one with :meth:`from_env` (or directly, in tests and embedding code).
    """

    database_url: str = "sqlite:///chat33.db"
    media_dir: Path = field(default=Path("chat33-media"), converter=_absolute)
    #: None: media files live in ``media_dir``; ``s3://bucket/prefix``: in object storage
    media_store: str | None = None
    #: the largest file a direct upload (``/media/presign``) may declare
    max_upload_bytes: int = 5 * 1024 ** 3
    #: days media is kept once no queued post needs it; 0 keeps it forever
    media_retention_days: float = 30.0
    #: None: not configured (media URLs then start with where ``chat33 serve`` listens,
    #: see :attr:`media_base_url`)
    public_base_url: str | None = None
    secret_key: str | None = field(default=None, repr=False)
    allow_private_urls: bool = False
    poll_interval_s: float = 2.0
    max_attempts: int = 5
    #: every outbound fetch (connect, headers, body; a webhook delivery) ends by then,
    #: and so do all the media fetches of one API request together
    fetch_timeout_s: float = 60.0
    #: the bytes one API request may fetch in all (its media URLs together)
    fetch_request_max_bytes: int = 200 * 1024 * 1024
    #: media fetches one organization may have in flight in one API process
    fetch_concurrency: int = 2
    #: password hashes (argon2, ~0.5 s of CPU each) one process runs at once; as many
    #: sign-ins again may wait for a turn, more are answered 503 at once
    login_concurrency: int = 1
    #: the raw environment the settings came from: platform overrides are read from it
    env: Mapping[str, str] = field(factory=dict, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read and check the environment; a value chat33 cannot use raises
        :class:`ConfigurationError` naming the variable and what is accepted. Relative
        paths (the media directory, a SQLite file) are made absolute here, once."""
        env = dict(os.environ if env is None else env)
        values: dict[str, Any] = {
            "database_url": database_url(env.get("CHAT33_DATABASE_URL")
                                         or "sqlite:///chat33.db"),
            "media_dir": env.get("CHAT33_MEDIA_DIR") or "chat33-media",
            "media_store": env.get("CHAT33_MEDIA_STORE") or None,
            "max_upload_bytes": int(_positive(env, "CHAT33_MAX_UPLOAD_BYTES", 5 * 1024 ** 3)),
            "media_retention_days": _float(env, "CHAT33_MEDIA_RETENTION_DAYS", 30.0),
            "public_base_url": env.get("CHAT33_PUBLIC_BASE_URL") or None,
            "secret_key": _secret_key(env.get("CHAT33_SECRET_KEY") or None),
            "allow_private_urls": env.get("CHAT33_ALLOW_PRIVATE_URLS", "0").lower() in _TRUE,
            "poll_interval_s": _float(env, "CHAT33_POLL_INTERVAL_S", 2.0),
            "max_attempts": int(_float(env, "CHAT33_MAX_ATTEMPTS", 5)),
            "fetch_timeout_s": _positive(env, "CHAT33_FETCH_TIMEOUT_S", 60.0),
            "fetch_request_max_bytes": int(_positive(env, "CHAT33_FETCH_REQUEST_MAX_BYTES",
                                                     200 * 1024 * 1024)),
            "fetch_concurrency": max(1, int(_positive(env, "CHAT33_FETCH_CONCURRENCY", 2))),
            "login_concurrency": max(1, int(_float(env, "CHAT33_LOGIN_CONCURRENCY", 1))),
            "env": env,
        }
        values.update(overrides)
        return cls(**values)

    def with_(self, **changes: Any) -> Settings:
        return attrs.evolve(self, **changes)

    @property
    def media_base_url(self) -> str:
        """Where media URLs start: ``CHAT33_PUBLIC_BASE_URL``, else the default."""
        return (self.public_base_url or DEFAULT_PUBLIC_BASE_URL).rstrip("/")

    # --- per-platform overrides --------------------------------------------------

    def platform_value(self, platform: str, name: str, default: str | None = None) -> str | None:
        """``CHAT33_<PLATFORM>_<NAME>`` from the environment, or ``default``."""
        return self.env.get(f"CHAT33_{platform.upper()}_{name}") or default

    def api_base(self, platform: str, default: str) -> str:
        """The origin a plugin sends its API calls to (``CHAT33_<PLATFORM>_API_BASE``)."""
        return (self.platform_value(platform, "API_BASE", default) or default).rstrip("/")

    def platform_url(self, platform: str, url: str) -> str:
        """``url`` (on any of the platform's real hosts) with its origin replaced by
        ``CHAT33_<PLATFORM>_API_BASE`` when that is set; the path and query are kept."""
        base = self.platform_value(platform, "API_BASE")
        if not base:
            return url
        parts = urlsplit(url)
        rest = parts.path + (f"?{parts.query}" if parts.query else "")
        return base.rstrip("/") + rest

    def token_url(self, platform: str, default: str) -> str:
        """The OAuth token endpoint: ``CHAT33_<PLATFORM>_TOKEN_URL``, else ``default``.

        A plugin whose token endpoint lives on its API origin passes a default built on
        :meth:`api_base`, so an API base override covers it too.
        """
        explicit = self.platform_value(platform, "TOKEN_URL")
        return explicit or default

    def oauth_redirect_uri(self, platform: str) -> str:
        """Where the platform sends the browser back after consent:
        ``{CHAT33_PUBLIC_BASE_URL}/api/v1/oauth/<platform>/callback``, byte for byte the
        same in the authorize request and in the code exchange."""
        return f"{self.media_base_url}/api/v1/oauth/{platform}/callback"

    @property
    def allowed_return_origins(self) -> tuple[str, ...]:
        """The origins a connection's ``returnUrl`` may be on: the public origin and
        those listed (comma-separated) in ``CHAT33_ALLOWED_RETURN_ORIGINS``."""
        listed = (self.env.get("CHAT33_ALLOWED_RETURN_ORIGINS") or "").split(",")
        found = [origin_of(self.media_base_url)]
        found += [origin_of(o.strip()) for o in listed if o.strip()]
        return tuple(dict.fromkeys(o for o in found if o))

    def client_credentials(self, platform: str) -> tuple[str | None, str | None]:
        return (
            self.platform_value(platform, "CLIENT_ID"),
            self.platform_value(platform, "CLIENT_SECRET"),
        )

    def require_secret_key(self) -> str:
        if not self.secret_key:
            raise ConfigurationError(
                "CHAT33_SECRET_KEY is not set: chat33 refuses to store credentials or "
                f"serve sessions without it (make one with `{_MAKE_SECRET}`)"
            )
        return self.secret_key


def _secret_key(raw: str | None) -> str | None:
    if raw is not None and len(raw.encode()) < MIN_SECRET_KEY_BYTES:
        raise ConfigurationError(
            f"CHAT33_SECRET_KEY is too weak: {len(raw.encode())} bytes, at least "
            f"{MIN_SECRET_KEY_BYTES} are needed (make one with `{_MAKE_SECRET}`)")
    return raw


def database_url(raw: str) -> str:
    """``CHAT33_DATABASE_URL`` checked: a SQLite or PostgreSQL URL whose driver is
    installed; a relative SQLite path is made absolute. Anything else raises
    :class:`ConfigurationError` saying what is accepted."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    try:
        url = make_url(raw)
    except sa.exc.ArgumentError:
        raise ConfigurationError(
            f"CHAT33_DATABASE_URL is not a database URL: {raw!r} (accepted: "
            f"{_ACCEPTED_DATABASES})") from None
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigurationError(
            f"CHAT33_DATABASE_URL names an unsupported database: "
            f"{url.get_backend_name()!r} (accepted: {_ACCEPTED_DATABASES})")
    try:
        url.get_dialect().import_dbapi()
    except (sa.exc.NoSuchModuleError, ImportError) as exc:
        hint = (" (pip install 'chat33-core[postgres]')" if url.get_backend_name() ==
                "postgresql" else "")
        raise ConfigurationError(
            f"CHAT33_DATABASE_URL: the driver {url.drivername!r} is not available: "
            f"{exc}{hint} (accepted: {_ACCEPTED_DATABASES})") from None
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or database in ("", ":memory:") or (
            database.startswith("file:")):
        return raw
    return url.set(database=str(_absolute(database))).render_as_string(hide_password=False)


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number, got {raw!r}") from None


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    value = _float(env, name, default)
    if not value > 0:
        raise ConfigurationError(f"{name} must be a positive number, got {env.get(name)!r}")
    return value
