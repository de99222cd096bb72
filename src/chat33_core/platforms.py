"""The contract between the core and a platform plugin.

A plugin registers a subclass of :class:`PlatformBase` (see :mod:`chat33_core.hookspecs`).
The core calls its methods for the posts of that platform only:

* :meth:`PlatformBase.validate` — preflight rules, on inspected media, no network;
* :meth:`PlatformBase.publish` — publish one post (or a whole thread), resumably;
* :meth:`PlatformBase.confirm` — after an unknown outcome, ask the platform whether
  the post exists;
* :meth:`PlatformBase.delete` — delete a published post on the platform;
* :meth:`PlatformBase.refresh_credentials` — obtain a fresh access token;
* :meth:`PlatformBase.sandbox` — a WSGI app imitating the platform for tests and demos;
* connecting accounts by OAuth 2 (see :mod:`chat33_core.oauth`):
  :meth:`PlatformBase.authorization_url`, :meth:`PlatformBase.exchange_code`,
  :meth:`PlatformBase.long_lived`, :meth:`PlatformBase.list_targets` and
  :meth:`PlatformBase.revoke`.

Everything a publish needs arrives in a :class:`PublishContext`; a plugin never touches
the store or the environment directly.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import attrs
from attrs import field, frozen

from .errors import Issue, NotSupported, ReconnectRequired
from .media import MediaInfo
from .models import Account, Credentials, MediaType, utcnow
from .options import Option

if TYPE_CHECKING:
    import httpx

    from .config import Settings
    from .oauth import AuthorizationRequest, Grant, OAuthContext, Target

WSGIApp = Callable[..., Any]


@frozen
class Capabilities:
    """What a platform can do; the API answers clearly where it cannot."""

    threads: bool = False
    delete: bool = False
    text_only: bool = True
    images: bool = True
    video: bool = True
    #: the platform publishes at a time of its own choosing (we never use it; declared)
    native_scheduling: bool = False


@frozen
class Limits:
    """Headline limits, for documentation and the common rules. The plugin's
    ``validate`` is the authority on everything finer."""

    caption_length: int
    max_images: int = 1
    max_videos: int = 1
    max_image_bytes: int = 10 * 1024 * 1024
    max_video_bytes: int = 100 * 1024 * 1024
    #: posts per channel over a rolling 24 h; None for no cap
    daily_cap: int | None = None


@frozen
class RateLimit:
    """A limit the platform puts on the whole deployment (``per="app"``: the app's
    credentials) or on each connected account (``per="account"``: the account's token),
    declared once on the platform's class. The worker keeps its count in the store,
    shared by every worker process: a publish reserves ``cost`` units (per thread item
    with ``per_item``) before it calls the plugin, and a post that would go over waits,
    back in the queue, until the window opens; it never fails nor spends a retry.

    A window opens at the first publish after the last one closed and lasts ``window``;
    with ``resets_in`` (an IANA zone) it ends at the next midnight there instead (daily
    quotas). A plugin that learns the platform's own count (a response header) tells
    the core with ``ctx.limits(name, remaining=..., resets_at=...)``, and the platform's
    numbers win."""

    name: str
    per: str
    units: int
    window: timedelta
    cost: int = 1
    per_item: bool = False
    resets_in: str | None = None
    #: shown in the post's log while it waits, e.g. "posts per user"
    description: str = ""

    def __attrs_post_init__(self) -> None:
        if self.per not in ("app", "account"):
            raise ValueError(f"RateLimit {self.name!r}: per must be 'app' or 'account'")
        if self.units < 1 or self.cost < 0:
            raise ValueError(f"RateLimit {self.name!r}: units must be >= 1, cost >= 0")


class LimitReport(Protocol):
    """``ctx.limits``: what the platform says of a declared :class:`RateLimit`."""

    def __call__(self, name: str, *, remaining: int | None = None,
                 resets_at: datetime | None = None) -> None: ...


def _no_report(name: str, *, remaining: int | None = None,
               resets_at: datetime | None = None) -> None:
    return None


@frozen
class PostDraft:
    """What validation sees of one post or thread item: the request, never raw URLs
    to fetch. ``path`` prefixes issue paths (``""`` for the post, ``"thread[1]."``).
    ``platform_config`` holds, per platform, only the options that passed their
    declarations (``PlatformBase.options``)."""

    text: str | None
    media_type: MediaType | None
    media: Sequence[MediaInfo]
    platform_config: Mapping[str, Any]
    cover_image: MediaInfo | None = None
    scheduled_at: datetime | None = None
    thread: Sequence[PostDraft] = ()
    path: str = ""


@frozen
class MediaFile:
    """One media file of a post, kept locally at schedule time."""

    path: Path
    info: MediaInfo
    #: an absolute URL where the platform can fetch the file (our media server)
    url: str
    name: str = ""

    def open(self) -> Any:
        return self.path.open("rb")


@frozen
class PublishItem:
    """One item to publish: the post itself, or one post of a thread."""

    post_id: str
    text: str | None
    media: Sequence[MediaFile] = ()
    position: int = 0


@frozen
class Receipt:
    """Where a published item lives on the platform."""

    external_id: str
    external_url: str | None = None
    post_id: str | None = None
    extra: Mapping[str, Any] = field(factory=dict)


@frozen
class PublishResult:
    """The receipts of a publish, one per item, in thread order."""

    receipts: Sequence[Receipt]

    @property
    def first(self) -> Receipt:
        return self.receipts[0]


class Checkpoints(Protocol):
    """Durable, small JSON state per post, kept across worker crashes."""

    def load(self) -> dict[str, Any]: ...

    def save(self, data: Mapping[str, Any]) -> None: ...


class EventLog(Protocol):
    def __call__(self, event: str, message: str, **data: Any) -> None: ...


@attrs.define
class MemoryCheckpoints:
    """Checkpoints kept in memory (validation, tests, ``chat33_core.testing``)."""

    data: dict[str, Any] = attrs.Factory(dict)

    def load(self) -> dict[str, Any]:
        return dict(self.data)

    def save(self, data: Mapping[str, Any]) -> None:
        self.data = dict(data)


@attrs.define
class PublishContext:
    """Everything one publish of one post needs.

    * ``items`` — the post, then any thread items published with it;
    * ``checkpoints`` — save progress as soon as the platform acknowledges a step
      (container id, upload session, posted thread ids) so a worker that takes over
      resumes instead of repeating;
    * ``log`` — events shown in ``GET /posts/{id}/logs``;
    * ``http`` — one httpx client with timeouts, shared for the publish;
    * ``sleep`` — wait between status polls (also extends the worker's lease).
    """

    post_id: str
    account: Account
    credentials: Credentials
    items: Sequence[PublishItem]
    media_type: MediaType | None
    platform_config: Mapping[str, Any]
    http: httpx.Client
    settings: Settings
    checkpoints: Checkpoints = attrs.Factory(MemoryCheckpoints)
    log: EventLog = attrs.field(default=lambda event, message, **data: None)
    sleep: Callable[[float], None] = time.sleep
    cover_image: MediaFile | None = None
    #: report the platform's own count of a declared :class:`RateLimit`
    limits: LimitReport = _no_report

    @property
    def first(self) -> PublishItem:
        return self.items[0]

    def config(self, platform: str) -> Mapping[str, Any]:
        value = self.platform_config.get(platform) or {}
        return value if isinstance(value, Mapping) else {}

    def poll_delays(self, first: float | None = None, factor: float = 1.5,
                    cap: float = 30.0) -> Any:
        """Waits between status polls: first ``CHAT33_POLL_INTERVAL_S``, growing."""
        delay = self.settings.poll_interval_s if first is None else first
        while True:
            yield delay
            delay = min(cap, delay * factor)


@attrs.define
class DeleteContext:
    account: Account
    credentials: Credentials
    http: httpx.Client
    settings: Settings
    #: every external id the post put on the platform (a thread has several)
    external_ids: Sequence[str] = ()
    log: EventLog = attrs.field(default=lambda event, message, **data: None)


@attrs.define
class RefreshContext:
    account: Account
    http: httpx.Client
    settings: Settings


class PlatformBase:
    """Base class of platform implementations. Subclasses set the class attributes and
    override the methods their platform supports."""

    #: equals the plugin's entry-point name, e.g. ``"instagram"``
    name: ClassVar[str] = ""
    display_name: ClassVar[str] = ""
    capabilities: ClassVar[Capabilities] = Capabilities()
    limits: ClassVar[Limits] = Limits(caption_length=2200)
    #: the platform's request and quota limits, shared by every worker (see
    #: :class:`RateLimit`)
    rate_limits: ClassVar[tuple[RateLimit, ...]] = ()
    #: the options accepted under ``platformConfig.<name>``, declared once: the core
    #: checks them (types, values, required, unknown keys) before ``validate`` runs, the
    #: OpenAPI document and the README describe them (see :mod:`chat33_core.options`)
    options: ClassVar[tuple[Option, ...]] = ()
    #: the platform's real API origin, replaced by ``CHAT33_<NAME>_API_BASE``
    default_api_base: ClassVar[str] = ""
    #: where the sandbox serves the OAuth token endpoint, when the platform keeps it on
    #: another origin than its API (``chat33 sandbox`` prints ``CHAT33_<NAME>_TOKEN_URL``)
    sandbox_token_path: ClassVar[str | None] = None
    #: refresh this long before a token expires
    refresh_margin: ClassVar[timedelta] = timedelta(minutes=10)
    #: the scopes the authorization URL asks for (the plugin joins them as its
    #: platform does)
    oauth_scopes: ClassVar[tuple[str, ...]] = ()
    #: the grant's targets are always offered for selection, even a single one
    #: (Facebook Pages); otherwise exactly one target is connected at once
    oauth_always_select: ClassVar[bool] = False

    def __init__(self, settings: Settings | None = None) -> None:
        from .config import Settings

        self.settings = settings or Settings.from_env()

    def api_base(self) -> str:
        return self.settings.api_base(self.name, self.default_api_base)

    def platform_url(self, url: str) -> str:
        """``url`` on one of the platform's real hosts (authorize page, token host, API),
        with its origin replaced by ``CHAT33_<NAME>_API_BASE`` when that is set and the
        path kept, so one local server stands in for the whole platform."""
        return self.settings.platform_url(self.name, url)

    # --- preflight --------------------------------------------------------------

    def validate(self, draft: PostDraft, account: Account) -> list[Issue]:
        """Return every issue this platform has with ``draft`` (errors and warnings).

        Called with inspected media only; must not use the network. Paths are relative
        to the request (prefix them with ``draft.path``).
        """
        return []

    def text_count(self, text: str, account: Account) -> tuple[int, int]:
        """``(length, limit)`` of ``text`` as this platform counts it for ``account``,
        for a live counter ("N / limit"); ``validate`` stays the judge. By default the
        code points against ``limits.caption_length``."""
        return len(text), self.limits.caption_length

    # --- publishing -------------------------------------------------------------

    def publish(self, ctx: PublishContext) -> PublishResult:
        """Publish ``ctx.items``; resumable from ``ctx.checkpoints``.

        Raise :class:`~chat33_core.errors.TransientError` (retry later),
        :class:`~chat33_core.errors.PermanentError` (fail with the platform's message),
        :class:`~chat33_core.errors.CredentialsExpired` (refresh, then retry once),
        :class:`~chat33_core.errors.QuotaExceeded` (defer), or
        :class:`~chat33_core.errors.UnknownOutcome` (the worker calls :meth:`confirm`).
        """
        raise NotSupported(f"{self.name} does not publish")

    def confirm(self, ctx: PublishContext) -> PublishResult | None:
        """After an unknown outcome: the result if the platform has the post, ``None``
        if it certainly does not. Raise ``UnknownOutcome`` if the platform cannot tell."""
        from .errors import UnknownOutcome

        raise UnknownOutcome(
            f"{self.display_name or self.name} cannot confirm whether the post was published; "
            f"check the account {ctx.account.name!r} before posting again"
        )

    def delete(self, ctx: DeleteContext) -> None:
        """Delete the post(s) ``ctx.external_ids`` on the platform."""
        raise NotSupported(f"{self.display_name or self.name} does not support deleting posts "
                           "through its API")

    # --- credentials ------------------------------------------------------------

    def needs_refresh(self, credentials: Credentials, now: datetime | None = None) -> bool:
        if credentials.expires_at is None or credentials.refresh_token is None:
            return False
        return credentials.expires_at - (now or utcnow()) <= self.refresh_margin

    def refresh_credentials(self, credentials: Credentials, ctx: RefreshContext) -> Credentials:
        """Return new credentials; raise ``ReconnectRequired`` when it is impossible."""
        raise ReconnectRequired(
            f"{self.display_name or self.name} tokens cannot be refreshed: reconnect the account"
        )

    # --- connecting accounts (OAuth 2) -------------------------------------------

    @property
    def supports_connect(self) -> bool:
        """Whether accounts of this platform can be connected by OAuth."""
        return type(self).authorization_url is not PlatformBase.authorization_url

    def authorization_url(self, request: AuthorizationRequest) -> str:
        """Where to send the browser: the platform's authorize page with the client id,
        ``request.client.redirect_uri``, the scopes, ``request.state`` and, where the
        platform supports PKCE, ``request.code_challenge`` (S256)."""
        raise NotSupported(f"{self.display_name or self.name} accounts cannot be connected "
                           "by OAuth; add them with `chat33 accounts add`")

    def exchange_code(self, code: str, request: AuthorizationRequest,
                      ctx: OAuthContext) -> Grant:
        """Exchange the callback's ``code`` at the token endpoint (with the same
        redirect URI and, where used, ``request.code_verifier``). Raise
        :class:`~chat33_core.errors.OAuthError` when the platform refuses."""
        raise NotSupported(f"{self.display_name or self.name} does not connect by OAuth")

    def long_lived(self, grant: Grant, ctx: OAuthContext) -> Grant:
        """Trade a short-lived grant for a long-lived one where the platform has such
        an exchange (Meta); by default the grant as it is."""
        return grant

    def list_targets(self, grant: Grant, ctx: OAuthContext) -> Sequence[Target]:
        """The accounts the grant can publish as, each with the credentials that
        publish as it. An empty list ends the connection ``failed`` (nothing to
        connect)."""
        raise NotSupported(f"{self.display_name or self.name} does not connect by OAuth")

    def revoke(self, credentials: Credentials, ctx: OAuthContext) -> None:
        """Give the grant back at the platform (disconnect). Raise ``NotSupported``
        where the platform has no revocation; the core then only forgets the tokens."""
        raise NotSupported(f"{self.display_name or self.name} has no token revocation")

    # --- sandbox ----------------------------------------------------------------

    def sandbox(self) -> WSGIApp | None:
        """A WSGI app imitating this platform's API at its documented paths."""
        return None
