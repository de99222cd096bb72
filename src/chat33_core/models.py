"""The domain model: attrs values that the store, the service and the API share.

Instances are immutable; a change is a new value made with :func:`attrs.evolve`. JSON in
and out goes through :mod:`chat33_core.serialization`, never through methods here.
"""

from __future__ import annotations

import enum
import os
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
from attrs import field, frozen

from .errors import Issue


class Platform(enum.StrEnum):
    """The platforms chat33 ships plugins for. Third-party plugins may add more names."""

    INSTAGRAM = "instagram"
    FACEBOOK = "facebook"
    TIKTOK = "tiktok"
    YOUTUBE = "youtube"
    X = "x"


class MediaType(enum.StrEnum):
    IMAGE = "image"
    VIDEO = "video"
    REEL = "reel"
    CAROUSEL = "carousel"


class PostStatus(enum.StrEnum):
    DRAFT = "DRAFT"
    QUEUED = "QUEUED"
    PUBLISHING = "PUBLISHING"
    PUBLISHED = "PUBLISHED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


DEFAULT_SCOPES: tuple[str, ...] = ("accounts:read", "posts:read", "posts:write", "media:write")
#: every scope there is. ``settings:write`` (read and rotate the organization's webhook
#: signing secret: whoever reads it can sign webhooks) is granted to signed-in users,
#: and to an API key only when it is asked for at creation; so is ``accounts:write``
#: (connect, reconnect and disconnect accounts)
ALL_SCOPES: tuple[str, ...] = (*DEFAULT_SCOPES, "accounts:write", "settings:write")


#: how long the webhook secret a rotation replaced keeps signing beside the new one, by
#: default and at most
WEBHOOK_SECRET_GRACE = timedelta(hours=24)
MAX_WEBHOOK_SECRET_GRACE = timedelta(days=7)


class PostSort(enum.StrEnum):
    """The orders of a post list (``GET /posts?sort=``): a field, newest first when
    it starts with ``-``. ``scheduledAt`` is the post's scheduled time, or its creation
    time when it has none (a post published on the next worker tick)."""

    CREATED_DESC = "-createdAt"
    CREATED_ASC = "createdAt"
    SCHEDULED_DESC = "-scheduledAt"
    SCHEDULED_ASC = "scheduledAt"

    @property
    def descending(self) -> bool:
        return self.value.startswith("-")

    @property
    def by_schedule(self) -> bool:
        return self.value.endswith("scheduledAt")


def utcnow() -> datetime:
    return datetime.now(UTC)


class _RandomBytes:
    """:func:`os.urandom` drawn 4 KiB at a time: one system call for hundreds of ids
    instead of one per id. A forked child starts with nothing drawn, so it never hands
    out its parent's bytes."""

    def __init__(self, chunk: int = 4096) -> None:
        self._chunk = chunk
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._bytes = b""
        self._at = 0

    def hex(self, n: int) -> str:
        with self._lock:
            at = self._at
            if at + n > len(self._bytes):
                self._bytes, at = os.urandom(max(self._chunk, n)), 0
            self._at = at + n
            return self._bytes[at:at + n].hex()


_random = _RandomBytes()


def new_id(prefix: str) -> str:
    """A URL-safe identifier such as ``post_019ab7c5e1f04c2d8a7e3b9f10d6a5c4``: the time in
    milliseconds (12 hex digits), then 80 random bits (20 hex digits).

    Ids made later sort after earlier ones (within a millisecond, at random), so a new
    row's key lands at the end of its index rather than on a random page of it: fewer
    pages to change, log and checkpoint per insert. The random part keeps ids
    unguessable; organizations are kept apart by the store, not by secrecy."""
    return f"{prefix}_{time.time_ns() // 1_000_000 & 0xFFFF_FFFF_FFFF:012x}{_random.hex(10)}"


def _aware(_: Any, attribute: attrs.Attribute[Any], value: datetime | None) -> None:
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise ValueError(f"{attribute.name} must be timezone-aware")


@frozen
class Organization:
    id: str
    name: str
    created_at: datetime = field(factory=utcnow, validator=_aware)

    @classmethod
    def new(cls, name: str) -> Organization:
        return cls(id=new_id("org"), name=name)


@frozen
class User:
    id: str
    org_id: str
    email: str
    password_hash: str = field(repr=False)
    created_at: datetime = field(factory=utcnow, validator=_aware)


@frozen
class Credentials:
    """A channel's platform credentials. Stored encrypted, never logged."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    expires_at: datetime | None = field(default=None, validator=_aware)
    #: when the current access token was obtained (Instagram refreshes only tokens older than 24 h)
    issued_at: datetime | None = field(default=None, validator=_aware)
    extra: dict[str, Any] = field(factory=dict)

    def replaced_by(self, new: Credentials) -> Credentials:
        """``new``, to be stored in place of these credentials: when it came without a
        refresh token (a refresh that does not rotate it; a grant that sends none, as
        Google's does without ``prompt=consent`` once the user consented) this refresh
        token is kept. The one rule for every platform: a connect again, a reconnect and
        the worker's refresh all save through it."""
        if new.refresh_token or not self.refresh_token:
            return new
        return attrs.evolve(new, refresh_token=self.refresh_token)


@frozen
class Account:
    """A connected channel: one platform identity of an organization."""

    id: str
    org_id: str
    platform: str
    name: str
    username: str | None = None
    external_id: str | None = None
    is_active: bool = True
    needs_reconnect: bool = False
    metadata: dict[str, Any] = field(factory=dict)
    created_at: datetime = field(factory=utcnow, validator=_aware)


@frozen
class AccountRemoval:
    """What removing an account did (``DELETE /accounts/{id}`` answers ``success`` and
    the number of cancelled posts)."""

    account: Account
    #: the ids of its QUEUED posts, now CANCELLED
    cancelled_posts: list[str] = field(factory=list)


@frozen
class WebhookSecret:
    """An organization's webhook signing secret (Standard Webhooks ``whsec_...``), and
    until when each secret it replaced still signs deliveries beside it (the grace
    period after a rotation), latest first."""

    secret: str
    previous_secrets_expire_at: list[datetime] = field(factory=list)


@frozen
class ThreadItem:
    """A post that follows the first one as a thread (a reply on X)."""

    text: str | None = None
    media_urls: list[str] = field(factory=list)


@frozen
class Post:
    """One post on one channel. Posts created together share a ``group_id``; the items
    of a thread share a ``thread_id`` (the first item's id) and have ``thread_position``
    0, 1, 2 ... ``publish_with_head`` marks items the plugin publishes together with the
    first one (platforms with real threads); other items publish on their own."""

    id: str
    org_id: str
    account_id: str
    platform: str
    account_name: str
    created_by: str
    status: PostStatus = PostStatus.QUEUED
    text: str | None = None
    media_urls: list[str] = field(factory=list)
    media_ids: list[str] = field(factory=list)
    media_type: MediaType | None = None
    cover_image_url: str | None = None
    platform_config: dict[str, Any] = field(factory=dict)
    callback_url: str | None = None
    scheduled_at: datetime | None = field(default=None, validator=_aware)
    timezone: str = "UTC"
    group_id: str | None = None
    thread_id: str | None = None
    thread_position: int = 0
    publish_with_head: bool = False
    published_at: datetime | None = field(default=None, validator=_aware)
    external_post_id: str | None = None
    external_post_url: str | None = None
    error_message: str | None = None
    retry_count: int = 0
    next_attempt_at: datetime | None = field(default=None, validator=_aware)
    lease_owner: str | None = None
    lease_expires_at: datetime | None = field(default=None, validator=_aware)
    created_at: datetime = field(factory=utcnow, validator=_aware)
    updated_at: datetime = field(factory=utcnow, validator=_aware)

    def summary(self) -> PostSummary:
        return PostSummary(
            id=self.id, account_id=self.account_id, platform=self.platform,
            account_name=self.account_name, status=self.status,
            scheduled_at=self.scheduled_at, created_at=self.created_at,
        )


@frozen
class PostSummary:
    id: str
    account_id: str
    platform: str
    account_name: str
    status: PostStatus
    scheduled_at: datetime | None
    created_at: datetime


@frozen
class ApiKey:
    id: str
    org_id: str
    user_id: str
    name: str
    key_prefix: str
    key_hash: str = field(repr=False)
    scopes: list[str] = field(factory=lambda: list(DEFAULT_SCOPES))
    last_used_at: datetime | None = field(default=None, validator=_aware)
    expires_at: datetime | None = field(default=None, validator=_aware)
    is_active: bool = True
    created_at: datetime = field(factory=utcnow, validator=_aware)


@frozen
class MediaAsset:
    """A media file kept in the media store, with what inspection found in it."""

    id: str
    org_id: str
    name: str
    path: str
    url: str
    kind: str
    content_type: str
    size: int
    sha256: str
    source_url: str | None = None
    info: dict[str, Any] = field(factory=dict)
    created_at: datetime = field(factory=utcnow, validator=_aware)


@frozen
class LogEvent:
    """One event of a post's life (``GET /posts/{id}/logs``)."""

    id: int | None
    post_id: str
    event: str
    message: str
    attempt: int = 0
    data: dict[str, Any] = field(factory=dict)
    created_at: datetime = field(factory=utcnow, validator=_aware)


#: The publish attempt log entry is the same thing; the name the issue uses.
PublishAttempt = LogEvent


@frozen
class Page:
    """One page of a list."""

    items: list[Any]
    total: int
    page: int
    limit: int

    @property
    def has_more(self) -> bool:
        return self.page * self.limit < self.total


@frozen
class PostRequest:
    """``POST /posts`` and ``POST /posts/validate`` as received (camelCase on the wire).

    ``scheduled_at`` stays the raw string: validation parses it (an instant without an
    offset is read in ``timezone``) so a bad value becomes a clear issue, not a crash.
    """

    account_ids: list[str]
    text: str | None = None
    media_urls: list[str] = field(factory=list)
    media_type: MediaType | None = None
    cover_image_url: str | None = None
    platform_config: dict[str, Any] = field(factory=dict)
    callback_url: str | None = None
    scheduled_at: str | None = None
    timezone: str = "UTC"
    thread: list[ThreadItem] = field(factory=list)


@frozen
class DeleteOutcome:
    """What deleting a post did: deleted (a DRAFT), or cancelled (``status``), and
    with ``fromPlatform`` whether it was deleted on the platform too."""

    id: str
    deleted: bool
    status: str | None
    platform_deleted: bool | None = None
    platform_error: str | None = None


def dedupe_issues(issues: Iterable[Issue]) -> list[Issue]:
    """Each issue once (same path, code and message), in their order."""
    seen: set[tuple[str, str, str]] = set()
    out: list[Issue] = []
    for issue in issues:
        key = (issue.path, issue.code, issue.message)
        if key not in seen:
            seen.add(key)
            out.append(issue)
    return out


@frozen
class AccountResult:
    """The verdict of validation for one target account. ``errors`` include the
    request-wide ones, so a result read alone is complete."""

    account_id: str
    platform: str | None
    errors: list[Issue] = field(factory=list)
    warnings: list[Issue] = field(factory=list)

    @property
    def valid(self) -> bool:
        return not self.errors


@frozen
class ValidationReport:
    """What :func:`chat33_core.validation.validate_request` found.

    * ``results`` — one per distinct requested account id, in request order;
    * ``media`` — one entry per distinct media URL: ``{url, path, valid, ...facts}`` or
      ``{url, path, valid: false, error}``;
    * ``request_errors`` / ``request_warnings`` — the issues of the request as a whole
      (also copied into every result);
    * ``scheduled_at`` — ``scheduledAt`` parsed (UTC), None when absent or invalid;
    * ``media_types`` — the media type of the post, then of each thread item: the
      request's ``mediaType``, else what its files are (a carousel, one video or one
      image; None without media).

    The last two are what creating the posts uses, so nothing is worked out twice; they
    are not part of the API's answer.
    """

    results: list[AccountResult]
    media: list[dict[str, Any]] = field(factory=list)
    request_errors: list[Issue] = field(factory=list)
    request_warnings: list[Issue] = field(factory=list)
    scheduled_at: datetime | None = None
    media_types: list[MediaType | None] = field(factory=list)

    @property
    def valid(self) -> bool:
        return not self.request_errors and all(r.valid for r in self.results)

    def errors(self) -> list[Issue]:
        """Every error once, request-wide ones first: the ``details`` of a 400.

        An account's own issues name its platform (``"x: text is 300 characters..."``)
        since ``details`` carry no account of their own.
        """
        return self._collect("errors", self.request_errors)

    def warnings(self) -> list[Issue]:
        return self._collect("warnings", self.request_warnings)

    def _collect(self, which: str, common: list[Issue]) -> list[Issue]:
        out = list(common)
        shared = set(common)
        for result in self.results:
            for issue in getattr(result, which):
                if issue in shared:
                    continue
                if result.platform and not issue.path.startswith("accountIds"):
                    issue = attrs.evolve(issue, message=f"{result.platform}: {issue.message}")
                out.append(issue)
        return dedupe_issues(out)


@frozen
class Connection:
    """One attempt to connect (or reconnect) accounts by OAuth 2 (``conn_...``): see
    :mod:`chat33_core.connecting`. Its ``state`` and PKCE verifier never leave the
    server except through the platform; only their hash and ciphertext are stored."""

    id: str
    org_id: str
    platform: str
    #: pending, select, connected, failed or expired
    status: str
    expires_at: datetime = field(validator=_aware)
    user_id: str | None = None
    return_url: str | None = None
    reconnect_account_id: str | None = None
    #: what the grant may publish as: ``{externalId, name, username, pictureUrl}``
    targets: list[dict[str, Any]] = field(factory=list)
    #: the accounts it connected
    account_ids: list[str] = field(factory=list)
    error_code: str | None = None
    error_message: str | None = None
    used_at: datetime | None = field(default=None, validator=_aware)
    created_at: datetime = field(factory=utcnow, validator=_aware)
