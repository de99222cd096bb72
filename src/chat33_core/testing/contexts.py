"""A plugin's calls in tests: its sandbox served on loopback, publish contexts against
it, and what validation says of a draft."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import attrs
import httpx

from .. import options
from ..config import Settings
from ..errors import Issue, NotSupported
from ..models import Account, Credentials, MediaType, new_id, utcnow
from ..platforms import (
    LimitReport,
    MediaFile,
    MemoryCheckpoints,
    PlatformBase,
    PostDraft,
    PublishContext,
    PublishItem,
)
from ..sandbox import serve


@contextmanager
def sandbox_env(platform: PlatformBase, extra_env: Mapping[str, str] | None = None,
                ) -> Iterator[tuple[str, Settings]]:
    """Serve ``platform``'s sandbox on loopback; yields its base URL and Settings that
    point the platform at it (``CHAT33_<NAME>_API_BASE``)."""
    app = platform.sandbox()
    if app is None:
        raise NotSupported(f"{platform.name} has no sandbox")
    with serve(app) as url:
        env = dict(platform.settings.env)
        env[f"CHAT33_{platform.name.upper()}_API_BASE"] = url
        env.setdefault("CHAT33_POLL_INTERVAL_S", "0.01")
        env.update(extra_env or {})
        yield url, Settings.from_env(env)


def publish_context(
    platform: PlatformBase, *, settings: Settings, items: Sequence[PublishItem] | None = None,
    text: str | None = "hello from chat33", media: Sequence[MediaFile] = (),
    media_type: MediaType | None = None, platform_config: Mapping[str, Any] | None = None,
    account: Account | None = None, credentials: Credentials | None = None,
    checkpoints: MemoryCheckpoints | None = None, http: httpx.Client | None = None,
    events: list[tuple[str, str, dict[str, Any]]] | None = None,
    limits: LimitReport | None = None,
) -> PublishContext:
    """A PublishContext for tests: a fake-free one, with real HTTP to ``settings``' base."""
    account = account or Account(
        id=new_id("chan"), org_id="org_test", platform=platform.name, name="Test channel",
        username="chat33test", external_id="1784140000000000",
    )
    credentials = credentials or Credentials(
        access_token="sandbox-token", refresh_token="sandbox-refresh",
        expires_at=utcnow() + timedelta(days=30), issued_at=utcnow() - timedelta(days=2),
    )
    post_id = new_id("post")
    items = list(items or [PublishItem(post_id=post_id, text=text, media=list(media))])
    sink = events if events is not None else []

    def log(event: str, message: str, **data: Any) -> None:
        sink.append((event, message, data))

    ctx = PublishContext(
        post_id=items[0].post_id, account=account, credentials=credentials, items=items,
        media_type=media_type, platform_config=dict(platform_config or {}),
        http=http or httpx.Client(timeout=30), settings=settings,
        checkpoints=checkpoints or MemoryCheckpoints(), log=log, sleep=lambda s: None,
    )
    if limits is not None:
        ctx.limits = limits
    return ctx


def thread_items(texts: Sequence[str | None],
                 media: Sequence[Sequence[MediaFile]] = ()) -> list[PublishItem]:
    """The items of a post (one text) or a thread (several), ``media[i]`` on item ``i``."""
    head = new_id("post")
    return [PublishItem(post_id=head if i == 0 else f"{head}_{i}", text=text,
                        media=list(media[i]) if i < len(media) else [], position=i)
            for i, text in enumerate(texts)]


class SandboxClient:
    """A platform's sandbox served on loopback (see :func:`sandbox_env`), driven over HTTP:
    its control calls (``/_sandbox/...``) and publish contexts against it. Subclass it in a
    plugin's tests to add that sandbox's own calls, and set ``access_token`` (what
    :meth:`context` logs in with unless given credentials) or override
    :meth:`credentials`."""

    access_token = "sandbox-token"

    def __init__(self, platform: PlatformBase, url: str, settings: Settings,
                 http: httpx.Client, account: Callable[[], Account] | None = None) -> None:
        self.platform = platform
        self.url = url
        self.settings = settings
        self.http = http
        self.account = account

    @classmethod
    @contextmanager
    def serving(cls, platform_class: type[PlatformBase], extra_env: Mapping[str, str] | None
                = None, **kwargs: Any) -> Iterator[Any]:
        """Serve ``platform_class``'s sandbox for as long as the block runs (one per test
        session, say: :meth:`reset` empties it between tests)."""
        with sandbox_env(platform_class(Settings.from_env({})), extra_env) as (url, settings), \
                httpx.Client(timeout=60) as http:  # a bound, not a speed: loaded CI runs
            yield cls(platform_class(settings), url, settings, http, **kwargs)

    def control(self, path: str, payload: Any = None) -> Any:
        """POST to the sandbox's control API (``/_sandbox/<path>``); its JSON answer."""
        response = self.http.post(f"{self.url}/_sandbox/{path}", json=payload)
        response.raise_for_status()
        return response.json() if response.content else None

    def state(self) -> dict[str, Any]:
        return self.http.get(f"{self.url}/_sandbox/state").json()  # type: ignore[no-any-return]

    def live(self, collection: str) -> list[dict[str, Any]]:
        """The items of ``state()[collection]`` not deleted."""
        return [x for x in self.state()[collection] if not x.get("deleted")]

    def reset(self) -> None:
        self.control("reset")

    def fault(self, **spec: Any) -> None:
        self.control("faults", spec)

    def config(self, **changes: Any) -> None:
        self.control("config", changes)

    def advance(self, seconds: float) -> None:
        """Move the sandbox's clock forward (rate-limit windows, token expiry)."""
        self.control("clock", {"advance": seconds})

    def credentials(self, account: Account) -> Credentials | None:
        """The credentials of :meth:`context` (``None``: :func:`publish_context`'s)."""
        return Credentials(access_token=self.access_token)

    def context(self, texts: Sequence[str | None] = ("hello from chat33",), *,
                media: Sequence[Sequence[MediaFile]] = (), **kwargs: Any) -> PublishContext:
        """A publish context for a post (one text) or a thread (several)."""
        if self.account is not None:
            kwargs.setdefault("account", self.account())
        kwargs.setdefault("http", self.http)
        if "credentials" not in kwargs:
            kwargs["credentials"] = self.credentials(kwargs["account"])
        return publish_context(self.platform, settings=self.settings,
                               items=thread_items(texts, media), **kwargs)


def validate_draft(platform: PlatformBase, draft: PostDraft, account: Account) -> list[Issue]:
    """The issues the core's validation finds in ``draft`` for ``platform``: the
    declared options (``platform.options``) checked first, then ``platform.validate`` on
    a draft holding only the options that passed, as in ``POST /posts``."""
    label = platform.display_name or platform.name
    path = f"platformConfig.{platform.name}"
    raw = draft.platform_config.get(platform.name)
    if raw is None:
        clean: dict[str, Any] = {}
        issues = options.missing(platform.options, None, path, label=label)
    else:
        clean, issues = options.check(platform.options, raw, path, label=label)
    seen = {**draft.platform_config, platform.name: clean}
    thread = [attrs.evolve(item, platform_config=seen) for item in draft.thread]
    return issues + platform.validate(
        attrs.evolve(draft, platform_config=seen, thread=thread), account)
