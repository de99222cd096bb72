"""The framework-agnostic facade: every REST operation as a method, scoped to an
organization. The Flask adapter (and any embedding code) only parses, calls and renders.

:class:`Chat33` wires the subsystems, each given only what it uses, and delegates to
them: :mod:`.identity` (users, sessions, API keys), :mod:`.accounts`, :mod:`.posts`,
:mod:`.ratelimits`, :mod:`.mediaservice` and the webhook secrets of :mod:`.webhooks`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from functools import cached_property
from typing import IO, TYPE_CHECKING, Any

from .accounts import Accounts
from .config import Settings
from .errors import Chat33Error, Unauthorized
from .identity import SESSION_LIFETIME, Identity
from .models import (
    WEBHOOK_SECRET_GRACE,
    Account,
    AccountRemoval,
    ApiKey,
    Credentials,
    DeleteOutcome,
    LogEvent,
    MediaAsset,
    Organization,
    Page,
    Post,
    PostRequest,
    PostSort,
    PostStatus,
    User,
    ValidationReport,
    WebhookSecret,
)
from .plugins import PluginHost
from .posts import Posts, PostsCreated
from .ratelimits import DEFAULT_RATE_LIMITS, RateCount, RateLimits
from .security import HashGate, Principal, Vault
from .store import Store
from .webhooks import WebhookSecrets

if TYPE_CHECKING:
    from .connecting import CallbackOutcome, ConnectionView, Connector
    from .fetch import GuardedClient
    from .mediaservice import MediaService
    from .mediastore import MediaStore


class Chat33:
    """chat33's core, ready to embed::

        app = Chat33(Settings.from_env())
        app.store.migrate()
        created = app.create_posts(principal, request)
    """

    def __init__(self, settings: Settings | None = None, *, store: Store | None = None,
                 host: PluginHost | None = None, load_plugins: bool = True,
                 rate_limits: Mapping[str, tuple[int, timedelta]] | None = None) -> None:
        self.settings = settings or Settings.from_env()
        self.store = store or Store(self.settings.database_url)
        self.host = host or PluginHost(self.settings)
        if host is None and load_plugins:
            self.host.load_entry_points(self.settings.env or None)
        self.rate_limits = {**DEFAULT_RATE_LIMITS, **(rate_limits or {})}
        self.limits = RateLimits(self.store, self.rate_limits)
        # the gate bounds the CPU and threads password hashing may take in this process
        self.identity = Identity(self.store, HashGate(self.settings.login_concurrency),
                                 self.limits)
        # the vault is asked for on first use: only secrets need the secret key
        self.accounts = Accounts(self.store, self.host, lambda: self.vault)
        self.webhook_secrets = WebhookSecrets(self.store, lambda: self.vault)

    @cached_property
    def vault(self) -> Vault:
        return Vault(self.settings.require_secret_key())

    @cached_property
    def fetcher(self) -> GuardedClient:
        """The one guarded client for every outbound fetch (media URLs, webhooks).
        Thread-safe; made once, as building its TLS context is costly."""
        from .fetch import GuardedClient

        return GuardedClient(self.settings)

    @cached_property
    def media(self) -> MediaService:
        """The media service (fetching, storing and inspecting files)."""
        from .mediaservice import MediaService

        return MediaService(self.settings, self.store, self.fetcher, self.limits.hit)

    @cached_property
    def posts(self) -> Posts:
        """The posts subsystem (made on first use, as it needs the media service)."""
        return Posts(self.store, self.host, self.settings, self.media, self.limits,
                     self.accounts)

    # --- organizations and users (Identity) -------------------------------------------

    def ensure_org(self, name: str) -> Organization:
        return self.identity.ensure_org(name)

    def create_user(self, email: str, password: str, org_name: str) -> User:
        return self.identity.create_user(email, password, org_name)

    def list_users(self, org_id: str | None = None) -> list[User]:
        return self.identity.list_users(org_id)

    def get_user(self, user_id: str) -> User:
        return self.identity.get_user(user_id)

    def set_password(self, email: str, password: str) -> tuple[User, int]:
        """Give the user with ``email`` a new password; their sessions end. Returns the
        user and the number of sessions ended."""
        return self.identity.set_password(email, password)

    # --- webhook secrets (WebhookSecrets) -----------------------------------------------

    def webhook_secret(self, org_id: str) -> str:
        """The organization's current webhook signing secret (made on first use)."""
        return self.webhook_secrets.webhook_secret(org_id)

    def webhook_secret_state(self, org_id: str) -> WebhookSecret:
        """The current secret and when the secrets it replaced stop signing."""
        return self.webhook_secrets.webhook_secret_state(org_id)

    def webhook_signing_secrets(self, org_id: str) -> list[str]:
        """Every secret a delivery is signed with now (the current one first)."""
        return self.webhook_secrets.webhook_signing_secrets(org_id)

    def rotate_webhook_secret(self, org_id: str, *,
                              grace: timedelta = WEBHOOK_SECRET_GRACE) -> WebhookSecret:
        """A new webhook secret; the replaced ones still sign for ``grace`` (0 to 7
        days)."""
        return self.webhook_secrets.rotate_webhook_secret(org_id, grace=grace)

    # --- authentication (Identity) ------------------------------------------------------

    def authenticate_key(self, raw_key: str | None) -> Principal:
        """The principal of an API key, or Unauthorized."""
        return self.identity.authenticate_key(raw_key)

    def authenticate_key_with_accounts(self, raw_key: str | None, account_ids: Sequence[str]
                                       ) -> tuple[Principal, dict[str, Account | None]]:
        """:meth:`authenticate_key`, and the accounts ``account_ids`` read in the same
        query (each id -> the organization's Account or None), for the request to pass
        to :meth:`create_posts`."""
        return self.identity.authenticate_key_with_accounts(raw_key, account_ids)

    def login(self, email: str, password: str, *, client: str | None = None
              ) -> tuple[User, str, str]:
        """Check the password; returns (user, session token, CSRF token). Throttled per
        email and per ``client`` address (see :meth:`Identity.login`)."""
        return self.identity.login(email, password, client=client)

    def authenticate_session(self, session_token: str | None) -> Principal:
        return self.identity.authenticate_session(session_token)

    def check_csrf(self, principal: Principal, token: str | None) -> None:
        self.identity.check_csrf(principal, token)

    def logout(self, session_token: str | None) -> None:
        self.identity.logout(session_token)

    # --- API keys (Identity) ------------------------------------------------------------

    def create_api_key(self, org_id: str, user_id: str, name: str | None = None,
                       scopes: Sequence[str] | None = None) -> tuple[ApiKey, str]:
        """Returns the key and its raw value, which is never stored and never shown again."""
        return self.identity.create_api_key(org_id, user_id, name, scopes)

    def list_api_keys(self, org_id: str) -> list[ApiKey]:
        return self.identity.list_api_keys(org_id)

    def revoke_api_key(self, org_id: str, key_id: str) -> ApiKey:
        return self.identity.revoke_api_key(org_id, key_id)

    # --- accounts (Accounts) ------------------------------------------------------------

    def add_account(self, org_id: str, platform: str, name: str, *, username: str | None = None,
                    external_id: str | None = None, credentials: Credentials | None = None,
                    metadata: Mapping[str, Any] | None = None) -> Account:
        return self.accounts.add_account(org_id, platform, name, username=username,
                                         external_id=external_id, credentials=credentials,
                                         metadata=metadata)

    def list_accounts(self, org_id: str, platform: str | None = None) -> list[Account]:
        return self.accounts.list_accounts(org_id, platform)

    def get_account(self, org_id: str, account_id: str) -> Account:
        return self.accounts.get_account(org_id, account_id)

    def rename_account(self, org_id: str, account_id: str, name: str) -> Account:
        return self.accounts.rename_account(org_id, account_id, name)

    def remove_account(self, org_id: str, account_id: str) -> AccountRemoval:
        """Disconnect the account; its QUEUED posts are cancelled (see
        :meth:`Accounts.remove_account`)."""
        return self.accounts.remove_account(org_id, account_id)

    def set_account_credentials(self, org_id: str, account_id: str,
                                credentials: Credentials) -> Account:
        return self.accounts.set_account_credentials(org_id, account_id, credentials)

    def account_credentials(self, account_id: str) -> Credentials | None:
        return self.accounts.account_credentials(account_id)

    def save_account_credentials(self, account_id: str, credentials: Credentials) -> None:
        self.accounts.save_account_credentials(account_id, credentials)

    # --- connecting accounts by OAuth (chat33_core.connecting) ------------------------

    @cached_property
    def connector(self) -> Connector:
        from .connecting import Connector

        return Connector(self)

    def start_connection(self, principal: Principal, platform: str,
                         return_url: str | None = None,
                         reconnect_account_id: str | None = None) -> ConnectionView:
        """Start connecting a ``platform`` account (or reconnecting the account
        ``reconnect_account_id``): the answer carries the ``authorization_url`` to send
        the browser to."""
        return self.connector.start(principal, platform, return_url, reconnect_account_id)

    def get_connection(self, org_id: str, connection_id: str) -> ConnectionView:
        return self.connector.get(org_id, connection_id)

    def select_targets(self, principal: Principal, connection_id: str,
                       external_ids: Sequence[str]) -> ConnectionView:
        return self.connector.select(principal, connection_id, external_ids)

    def oauth_callback(self, platform: str, params: Mapping[str, str],
                       session_token: str | None = None) -> CallbackOutcome:
        """The platform's redirect back (no API key: ``state`` is the credential).
        ``session_token``: the browser's session cookie, if it sent one."""
        binding = None
        if session_token:
            try:
                binding = self.authenticate_session(session_token).csrf_hash
            except Unauthorized:
                binding = None
        return self.connector.callback(platform, params, binding)

    def disconnect_account(self, org_id: str, account_id: str) -> AccountRemoval:
        """Revoke the account's grant at the platform where it can, then
        :meth:`remove_account`."""
        return self.connector.disconnect(org_id, account_id)

    # --- rate limits (RateLimits) -------------------------------------------------------

    def hit_rate_limit(self, operation: str, key: str, *,
                       insert: tuple[Sequence[Post], Sequence[LogEvent]] | None = None,
                       ) -> RateCount:
        """Count ``operation`` for ``key`` (see :meth:`RateLimits.hit`): (limit,
        remaining, reset seconds), or RateLimited."""
        return self.limits.hit(operation, key, insert=insert)

    def counted(self, operation: str, key: str) -> AbstractContextManager[RateCount]:
        """Count one ``operation`` for the block, given back if it raises."""
        return self.limits.counted(operation, key)

    # --- posts (Posts) ------------------------------------------------------------------

    def validate_post(self, principal: Principal, request: PostRequest, *,
                      keep_media: bool = False) -> ValidationReport:
        """Check ``request``; creates nothing unless ``keep_media`` (see
        :meth:`Posts.validate_post`)."""
        return self.posts.validate_post(principal, request, keep_media=keep_media)

    def create_posts(self, principal: Principal, request: PostRequest, *,
                     status: PostStatus = PostStatus.QUEUED,
                     accounts: Mapping[str, Account | None] | None = None) -> PostsCreated:
        """One post per account (and per thread item), all or nothing. ``accounts``: the
        request's accounts if read already (:meth:`authenticate_key_with_accounts`)."""
        return self.posts.create_posts(principal, request, status=status, accounts=accounts)

    def list_posts(self, org_id: str, *, status: str | None = None, platform: str | None = None,
                   channel_id: str | None = None, since: datetime | None = None,
                   until: datetime | None = None, sort: PostSort = PostSort.CREATED_DESC,
                   page: int = 1, limit: int = 20) -> Page:
        """A page of the organization's posts (see :meth:`Posts.list_posts`)."""
        return self.posts.list_posts(org_id, status=status, platform=platform,
                                     channel_id=channel_id, since=since, until=until,
                                     sort=sort, page=page, limit=limit)

    def list_post_rows(self, org_id: str, columns: Sequence[str], *, status: str | None = None,
                       platform: str | None = None, channel_id: str | None = None,
                       since: datetime | None = None, until: datetime | None = None,
                       sort: PostSort = PostSort.CREATED_DESC, page: int = 1, limit: int = 20,
                       utc_text: bool = False) -> Page:
        """:meth:`list_posts` with each item a row of ``columns`` (see
        :meth:`Posts.list_post_rows`)."""
        return self.posts.list_post_rows(org_id, columns, status=status, platform=platform,
                                         channel_id=channel_id, since=since, until=until,
                                         sort=sort, page=page, limit=limit, utc_text=utc_text)

    def get_post(self, org_id: str, post_id: str) -> Post:
        return self.posts.get_post(org_id, post_id)

    def update_post(self, principal: Principal, post_id: str, changes: Mapping[str, Any]
                    ) -> Post:
        """Apply a PATCH (see :meth:`Posts.update_post`)."""
        return self.posts.update_post(principal, post_id, changes)

    def delete_post(self, org_id: str, post_id: str, *, from_platform: bool = False
                    ) -> DeleteOutcome:
        """DRAFT: deleted. QUEUED/PUBLISHED/FAILED: cancelled. PUBLISHING: 409."""
        return self.posts.delete_post(org_id, post_id, from_platform=from_platform)

    def retry_post(self, org_id: str, post_id: str) -> Post:
        """Put a FAILED post back in the queue (see :meth:`Posts.retry_post`)."""
        return self.posts.retry_post(org_id, post_id)

    def duplicate_post(self, principal: Principal, post_id: str, *,
                       account_ids: Sequence[str] | None = None, scheduled_at: str | None = None,
                       status: PostStatus = PostStatus.DRAFT) -> PostsCreated:
        """Copies of a post, one per account (see :meth:`Posts.duplicate_post`)."""
        return self.posts.duplicate_post(principal, post_id, account_ids=account_ids,
                                         scheduled_at=scheduled_at, status=status)

    def post_logs(self, org_id: str, post_id: str) -> list[LogEvent]:
        return self.posts.post_logs(org_id, post_id)

    def log(self, post_id: str, event: str, message: str, *, attempt: int = 0,
            **data: Any) -> None:
        self.posts.log(post_id, event, message, attempt=attempt, **data)

    # --- media --------------------------------------------------------------------------

    def upload_media(self, org_id: str, stream: IO[bytes], filename: str | None) -> MediaAsset:
        result: MediaAsset = self.media.upload(org_id, stream, filename)
        return result

    def ingest_media(self, org_id: str, url: str, filename: str | None = None) -> MediaAsset:
        result: MediaAsset = self.media.ingest(org_id, url, filename)
        return result

    def media_file(self, name: str) -> tuple[MediaAsset, MediaStore]:
        """A kept media file's row and the store holding it, for serving it."""
        result: tuple[MediaAsset, MediaStore] = self.media.open_file(name)
        return result


__all__ = ["DEFAULT_RATE_LIMITS", "SESSION_LIFETIME", "Chat33", "Chat33Error",
           "DeleteOutcome", "PostsCreated", "Principal", "RateCount"]
