"""The framework-agnostic facade: every REST operation as a method, scoped to an
organization. The Flask adapter (and any embedding code) only parses, calls and renders.
"""

from __future__ import annotations

import hmac
import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from functools import cached_property
from typing import IO, TYPE_CHECKING, Any

import attrs

from . import metrics, states
from .config import Settings
from .errors import (
    Chat33Error,
    Conflict,
    Forbidden,
    Issue,
    NotFound,
    NotSupported,
    PlatformError,
    RateLimited,
    Unauthorized,
    Unavailable,
    ValidationError,
)
from .models import (
    ALL_SCOPES,
    DEFAULT_SCOPES,
    MAX_WEBHOOK_SECRET_GRACE,
    WEBHOOK_SECRET_GRACE,
    Account,
    AccountRemoval,
    ApiKey,
    Credentials,
    LogEvent,
    MediaAsset,
    MediaType,
    Organization,
    Page,
    Post,
    PostRequest,
    PostSort,
    PostStatus,
    User,
    WebhookSecret,
    new_id,
    utcnow,
)
from .plugins import PluginHost
from .security import (
    KEY_PREFIX_LENGTH,
    HashGate,
    Principal,
    Vault,
    digest,
    generate_api_key,
    hash_password,
    new_token,
    same_digest,
    verify_password,
)
from .store import Store, human_period

if TYPE_CHECKING:
    from .connecting import CallbackOutcome, ConnectionView, Connector
    from .fetch import GuardedClient
    from .mediaservice import MediaService
    from .mediastore import MediaStore
    from .store import Transaction
    from .validation import ValidationReport

log = logging.getLogger(__name__)

SESSION_LIFETIME = timedelta(days=14)

#: (limit, period) per limited operation; override with Chat33(rate_limits=...)
DEFAULT_RATE_LIMITS: dict[str, tuple[int, timedelta]] = {
    "posts.create": (30, timedelta(hours=1)),
    "media.upload": (50, timedelta(hours=1)),
    # a dry run fetches media like a post does (the request's bytes are capped too)
    "posts.validate": (120, timedelta(hours=1)),
    "api_keys.create": (10, timedelta(hours=1)),
    # sign-in attempts that failed, per email and per client address (a right password
    # is given back); the address allows more, as many people may share one (NAT)
    "auth.login.email": (10, timedelta(minutes=15)),
    "auth.login.address": (50, timedelta(minutes=15)),
}


#: a rate-limit count: (limit, remaining, seconds until the allowance is full again)
RateCount = tuple[int, int, float]


@attrs.frozen
class PostsCreated:
    """What :meth:`Chat33.create_posts` and :meth:`Chat33.duplicate_post` made: every
    post (thread items included), the group id of a multi-account request, and the
    ``posts.create`` count the posts were counted in (for ``RateLimit-*`` headers)."""

    posts: list[Post]
    group_id: str | None
    rate: RateCount


@attrs.frozen
class DeleteOutcome:
    id: str
    deleted: bool
    status: str | None
    platform_deleted: bool | None = None
    platform_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "deleted": self.deleted, "status": self.status}
        if self.platform_deleted is not None:
            data["platformDeleted"] = self.platform_deleted
            data["platformError"] = self.platform_error
        return data


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
        #: bounds the CPU and threads password hashing may take in this process
        self.hash_gate = HashGate(self.settings.login_concurrency)

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

        return MediaService(self.settings, self.store, self.fetcher, self.hit_rate_limit)

    # --- organizations and users ------------------------------------------------------

    def ensure_org(self, name: str) -> Organization:
        org = self.store.find_org_by_name(name)
        if org is not None:
            return org
        # the webhook secret is made on first use: creating users needs no secret key
        return self.store.add_org(Organization.new(name))

    def create_user(self, email: str, password: str, org_name: str) -> User:
        issues = []
        email = (email or "").strip().lower()
        if "@" not in email or email.startswith("@") or email.endswith("@"):
            issues.append(Issue("email", "must be an email address"))
        if len(password or "") < 8:
            issues.append(Issue("password", "must be at least 8 characters"))
        if not (org_name or "").strip():
            issues.append(Issue("org", "must not be empty"))
        if issues:
            raise ValidationError("invalid user", details=issues)
        org = self.ensure_org(org_name.strip())
        with self.hash_gate.turn():
            password_hash = hash_password(password)
        user = User(id=new_id("user"), org_id=org.id, email=email, password_hash=password_hash)
        return self.store.add_user(user)

    def webhook_secret(self, org_id: str) -> str:
        """The organization's current webhook signing secret (made on first use)."""
        enc, _ = self.store.webhook_secrets_enc(org_id, utcnow())
        if enc is None:
            return self.rotate_webhook_secret(org_id).secret
        return self.vault.decrypt(enc)

    def webhook_secret_state(self, org_id: str) -> WebhookSecret:
        """The current secret and when the secrets it replaced stop signing."""
        enc, retired = self.store.webhook_secrets_enc(org_id, utcnow())
        if enc is None:
            return self.rotate_webhook_secret(org_id)
        return WebhookSecret(secret=self.vault.decrypt(enc),
                             previous_secrets_expire_at=[until for _, until in retired])

    def webhook_signing_secrets(self, org_id: str) -> list[str]:
        """Every secret a delivery is signed with now: the current one first, then the
        ones a rotation replaced, while their grace period lasts."""
        enc, retired = self.store.webhook_secrets_enc(org_id, utcnow())
        if enc is None:
            return [self.rotate_webhook_secret(org_id).secret]
        return [self.vault.decrypt(e) for e in (enc, *(e for e, _ in retired))]

    def rotate_webhook_secret(self, org_id: str, *,
                              grace: timedelta = WEBHOOK_SECRET_GRACE) -> WebhookSecret:
        """A new webhook secret for the organization. For ``grace`` after now (0 to
        7 days), deliveries are signed with the replaced secret too, so receivers can
        switch without losing one; a grace of 0 ends every older secret at once (a
        leaked secret)."""
        from .webhooks import generate_secret

        if not timedelta(0) <= grace <= MAX_WEBHOOK_SECRET_GRACE:
            raise ValidationError("invalid grace period", details=[Issue(
                "graceSeconds", f"must be between 0 and "
                f"{int(MAX_WEBHOOK_SECRET_GRACE.total_seconds())} seconds (7 days)")])
        # Standard Webhooks format: whsec_ + standard base64 of the key bytes
        secret = generate_secret()
        now = utcnow()
        self.store.replace_webhook_secret_enc(org_id, self.vault.encrypt(secret),
                                              keep_until=now + grace if grace else None,
                                              now=now)
        _, retired = self.store.webhook_secrets_enc(org_id, now)
        return WebhookSecret(secret=secret,
                             previous_secrets_expire_at=[until for _, until in retired])

    def list_users(self, org_id: str | None = None) -> list[User]:
        return self.store.list_users(org_id)

    def set_password(self, email: str, password: str) -> tuple[User, int]:
        """Give the user with ``email`` a new password; their sessions end. Returns the
        user and the number of sessions ended."""
        if len(password or "") < 8:
            raise ValidationError("invalid password", details=[
                Issue("password", "must be at least 8 characters")])
        user = self.store.find_user_by_email((email or "").strip().lower())
        if user is None:
            raise NotFound(f"no user with the email {email!r}")
        ended = self.store.set_user_password(user.id, hash_password(password))
        return user, ended

    # --- authentication -----------------------------------------------------------------

    def authenticate_key(self, raw_key: str | None, *, accounts: Sequence[str] = ()
                         ) -> Principal:
        """The principal of an API key, or Unauthorized. ``accounts``: ids of accounts
        the request is about to use (a post's ``accountIds``); they are read in the same
        query as the key and handed over on the principal, which :meth:`create_posts`
        and :meth:`validate_post` use instead of reading them again."""
        if not raw_key:
            raise Unauthorized("missing API key: send it in the x-api-key header")
        wanted = [i for i in dict.fromkeys(accounts) if isinstance(i, str)]
        key_hash = digest(raw_key)
        if wanted:
            key, found = self.store.find_api_key_with_accounts(key_hash, wanted)
        else:
            key, found = self.store.find_api_key_by_hash(key_hash), {}
        if key is None or not hmac.compare_digest(key_hash, key.key_hash):
            raise Unauthorized("invalid API key")
        now = utcnow()
        if not key.is_active:
            raise Unauthorized("this API key has been revoked")
        if key.expires_at is not None and key.expires_at <= now:
            raise Unauthorized("this API key has expired")
        if key.last_used_at is None or now - key.last_used_at > timedelta(seconds=60):
            self.store.touch_api_key(key.id, now)  # coarse, so reads do not all write
        return Principal(org_id=key.org_id, user_id=key.user_id, scopes=frozenset(key.scopes),
                         via="key", key_id=key.id,
                         accounts={i: found.get(i) for i in wanted} if wanted else None)

    def login(self, email: str, password: str, *, client: str | None = None
              ) -> tuple[User, str, str]:
        """Check the password; returns (user, session token, CSRF token). Only digests
        of the two tokens are stored.

        Throttled: every attempt is counted against the failed sign-ins of its email and
        of its ``client`` address (the ``auth.login.*`` rate limits, in the store, so the
        count holds across processes) *before* the password is checked, so parallel
        guesses cannot outrun it; an attempt with the right password is given back. A
        throttled attempt is RateLimited without checking anything. Unknown emails cost
        the same hashing work as known ones; hashing waits its turn (:class:`HashGate`).
        """
        email = (email or "").strip().lower()
        user = self.store.find_user_by_email(email)
        counted = self._count_login(email, client)
        try:
            with self.hash_gate.turn():
                matched = verify_password(user.password_hash if user else None,
                                          password or "")
        except Unavailable:  # nothing was checked: not a failed attempt
            self._give_back(counted)
            raise
        if user is None or not matched:
            raise Unauthorized("wrong email or password")
        self._give_back(counted)
        session, csrf = new_token(), new_token()
        self.store.add_session(digest(session), user.id, digest(csrf),
                               utcnow() + SESSION_LIFETIME)
        return user, session, csrf

    def _count_login(self, email: str, client: str | None
                     ) -> list[tuple[str, int, timedelta]]:
        """Count one sign-in attempt for the email and the client address, both or
        neither (one transaction); returns what was counted (store key, limit, period).
        The email is kept as its digest: the key stays short and names nobody."""
        keys = [("auth.login.email", digest(email), "for this email address")]
        if client:
            keys.append(("auth.login.address", client[:100], "from this address"))
        counted = []
        with self.store.begin() as conn:
            for operation, who, what in keys:
                limit, period = self.rate_limits[operation]
                key = f"{operation}:{who}"
                try:
                    self.store.hit_rate_limit(key, limit, period, conn=conn)
                except RateLimited as exc:
                    raise RateLimited(
                        f"too many failed sign-ins {what}; retry in "
                        f"{math.ceil(exc.retry_after)} s", retry_after=exc.retry_after,
                        limit=limit, reset_after=exc.reset_after) from None
                counted.append((key, limit, period))
        return counted

    def _give_back(self, counted: Sequence[tuple[str, int, timedelta]]) -> None:
        for key, limit, period in counted:
            self.store.give_back_rate_limit(key, limit, period)

    def authenticate_session(self, session_token: str | None) -> Principal:
        if not session_token:
            raise Unauthorized("not signed in")
        row = self.store.get_session(digest(session_token))
        if row is None or row["expires_at"] <= utcnow():
            raise Unauthorized("the session has ended; sign in again")
        user = self.store.get_user(row["user_id"])
        # a signed-in user may do everything in their organization
        return Principal(org_id=user.org_id, user_id=user.id, scopes=frozenset(ALL_SCOPES),
                         via="session", csrf_hash=row["csrf_hash"])

    def check_csrf(self, principal: Principal, token: str | None) -> None:
        if principal.via != "session":
            return
        if not token or principal.csrf_hash is None or not same_digest(token, principal.csrf_hash):
            raise Forbidden("missing or wrong x-csrf-token header for a session request")

    def logout(self, session_token: str | None) -> None:
        if session_token:
            self.store.delete_session(digest(session_token))

    # --- API keys -----------------------------------------------------------------------

    def create_api_key(self, org_id: str, user_id: str, name: str | None = None,
                       scopes: Sequence[str] | None = None) -> tuple[ApiKey, str]:
        """Returns the key and its raw value, which is never stored and never shown again."""
        name = (name or "Default API Key").strip()
        if not name or len(name) > 200:
            raise ValidationError("invalid API key name",
                                  details=[Issue("name", "must be 1 to 200 characters")])
        scopes = list(scopes) if scopes is not None else list(DEFAULT_SCOPES)
        unknown = [s for s in scopes if s not in ALL_SCOPES]
        if unknown or not scopes:
            raise ValidationError("invalid scopes", details=[Issue(
                "scopes", f"unknown scope(s) {', '.join(unknown)}; known: "
                f"{', '.join(ALL_SCOPES)}" if unknown else "at least one scope is needed")])
        raw = generate_api_key()
        key = ApiKey(id=new_id("key"), org_id=org_id, user_id=user_id, name=name,
                     key_prefix=raw[:KEY_PREFIX_LENGTH], key_hash=digest(raw), scopes=scopes)
        return self.store.add_api_key(key), raw

    def list_api_keys(self, org_id: str) -> list[ApiKey]:
        return self.store.list_api_keys(org_id)

    def revoke_api_key(self, org_id: str, key_id: str) -> ApiKey:
        return self.store.revoke_api_key(org_id, key_id)

    # --- accounts -----------------------------------------------------------------------

    def add_account(self, org_id: str, platform: str, name: str, *, username: str | None = None,
                    external_id: str | None = None, credentials: Credentials | None = None,
                    metadata: Mapping[str, Any] | None = None) -> Account:
        issues = []
        if not self.host.has_platform(platform):
            known = ", ".join(sorted(self.host.platforms)) or "none installed"
            issues.append(Issue("platform", f"unknown platform {platform!r} (installed: {known})"))
        if not (name or "").strip():
            issues.append(Issue("name", "must not be empty"))
        if issues:
            raise ValidationError("invalid account", details=issues)
        account = Account(id=new_id("chan"), org_id=org_id, platform=platform, name=name.strip(),
                          username=username, external_id=external_id,
                          metadata=dict(metadata or {}))
        enc = self.vault.encrypt_credentials(credentials) if credentials else None
        return self.store.add_account(account, enc)

    def list_accounts(self, org_id: str, platform: str | None = None) -> list[Account]:
        return self.store.list_accounts(org_id, platform=platform, active_only=True)

    def get_account(self, org_id: str, account_id: str) -> Account:
        return self.store.get_account(account_id, org_id=org_id)

    def rename_account(self, org_id: str, account_id: str, name: str) -> Account:
        """Give the account a new display name (posts keep the name they were made
        with: it is part of their history)."""
        name = (name or "").strip()
        if not name or len(name) > 200:
            raise ValidationError("invalid account name",
                                  details=[Issue("name", "must be 1 to 200 characters")])
        return self.store.rename_account(org_id, account_id, name)

    def remove_account(self, org_id: str, account_id: str) -> AccountRemoval:
        """Disconnect the account: its credentials are forgotten, it leaves the account
        list, and its QUEUED posts are cancelled with a logged reason. Published posts
        and their history stay readable; DRAFT and FAILED posts stay too (they cannot be
        queued or retried on it). Removing a removed account changes nothing. The
        platform is not told: :meth:`disconnect_account` revokes the grant there first."""
        account = self.store.get_account(account_id, org_id=org_id)
        name = self._platform_name(account.platform)
        account, cancelled = self.store.remove_account(
            org_id, account_id, cancel_as=states.transition(PostStatus.QUEUED,
                                                             PostStatus.CANCELLED),
            reason=f"post cancelled: its {name} account {account.name!r} was removed")
        if cancelled:
            log.info("account %s removed; %d queued posts cancelled", account_id,
                     len(cancelled))
        return AccountRemoval(account=account, cancelled_posts=cancelled)

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

    def set_account_credentials(self, org_id: str, account_id: str,
                                credentials: Credentials) -> Account:
        """Replace the account's credentials (it was connected again): its
        ``needs_reconnect`` mark is cleared. A removed account is refused (409)."""
        account = self.store.get_account(account_id, org_id=org_id)
        if not account.is_active:
            raise Conflict(f"account {account_id} was removed; add it again instead")
        self.save_account_credentials(account.id, credentials)
        self.store.release_waiting_posts([account.id])
        return self.store.get_account(account_id, org_id=org_id)

    def account_credentials(self, account_id: str) -> Credentials | None:
        enc = self.store.account_credentials_enc(account_id)
        return None if enc is None else self.vault.decrypt_credentials(enc)

    def save_account_credentials(self, account_id: str, credentials: Credentials) -> None:
        self.store.set_account_credentials_enc(account_id,
                                               self.vault.encrypt_credentials(credentials))

    # --- rate limits --------------------------------------------------------------------

    def hit_rate_limit(self, operation: str, key: str, *, conn: Transaction | None = None,
                       insert: tuple[Sequence[Post], Sequence[LogEvent]] | None = None,
                       ) -> RateCount:
        """Count ``operation`` for ``key``: once, or with ``insert`` (posts and their
        logs) once per post, the posts inserted in the count's transaction
        (:meth:`Store.add_posts_counted`). Returns (limit, remaining, reset seconds) or
        raises RateLimited. With ``conn`` (a store write transaction), the count commits
        or rolls back with it."""
        limit, period = self.rate_limits[operation]
        if insert is not None:
            posts = insert[0]
            if len(posts) > limit:  # it would never fit: say so instead of "retry later"
                raise ValidationError(
                    f"this request makes {len(posts)} posts (one per account and thread "
                    f"part), over the limit of {limit} posts per {human_period(period)}",
                    details=[Issue("accountIds", f"{len(posts)} posts is over the limit "
                                                 f"of {limit}", code="too_many")])
            remaining, reset = self.store.add_posts_counted(f"{operation}:{key}", limit,
                                                            period, *insert)
        else:
            remaining, reset = self.store.hit_rate_limit(f"{operation}:{key}", limit, period,
                                                         conn=conn)
        return limit, remaining, reset

    @contextmanager
    def counted(self, operation: str, key: str) -> Iterator[tuple[int, int, float]]:
        """Count one ``operation`` for ``key`` (:meth:`hit_rate_limit`) for the block,
        and give it back when the block raises: a request that is refused (a corrupt
        upload, a URL that cannot be fetched) does not use the allowance. Counted up
        front, so parallel requests cannot overshoot the limit."""
        result = self.hit_rate_limit(operation, key)
        try:
            yield result
        except BaseException:
            limit, period = self.rate_limits[operation]
            try:
                self.store.give_back_rate_limit(f"{operation}:{key}", limit, period)
            except Exception:  # the refusal is the answer; a lost give-back costs one
                log.warning("could not give back a refused %s for %s", operation, key,
                            exc_info=True)
            raise

    # --- validation ---------------------------------------------------------------------

    def _accounts_for(self, org_id: str, ids: Sequence[str],
                      read: Mapping[str, Account | None] | None = None
                      ) -> dict[str, Account | None]:
        wanted = list(dict.fromkeys(i for i in ids if isinstance(i, str)))
        if read is not None and all(i in read for i in wanted):
            # read with the API key moments ago (Principal.accounts), same organization
            return {account_id: read[account_id] for account_id in wanted}
        known = self.store.get_accounts(wanted, org_id)  # one query for all of them
        return {account_id: known.get(account_id) for account_id in wanted}

    def validate_post(self, principal: Principal, request: PostRequest, *,
                      keep_media: bool = False) -> ValidationReport:
        """Check ``request`` against the common rules and each target platform's rules.
        Creates nothing unless ``keep_media`` (then fetched media is kept for publishing).
        Fetching media from a URL needs the scope ``media:write`` (Forbidden) and a free
        fetch slot of the organization (ConcurrencyLimited); with ``keep_media`` each
        fetch counts one ``media.upload`` (RateLimited)."""
        return self._validate(principal, request, keep_media)[0]

    def _validate(self, principal: Principal, request: PostRequest, keep_media: bool,
                  read: Mapping[str, Account | None] | None = None,
                  ) -> tuple[ValidationReport, dict[str, Account | None]]:
        from .validation import validate_request

        accounts = self._accounts_for(principal.org_id, request.account_ids, read)
        with self.media.ingestor(principal, keep=keep_media) as inspect_url:
            report = validate_request(request, accounts=accounts, host=self.host,
                                      inspect_url=inspect_url, settings=self.settings)
        return report, accounts

    # --- posts --------------------------------------------------------------------------

    def create_posts(self, principal: Principal, request: PostRequest, *,
                     status: PostStatus = PostStatus.QUEUED) -> PostsCreated:
        """One post per account (and per thread item), all or nothing; each post counts
        one against the ``posts.create`` limit. Creation uses what validation found: the
        accounts, the parsed schedule, and each distinct media URL's asset, read once."""
        report, accounts = self._validate(principal, request, keep_media=True,
                                          read=principal.accounts)
        if not report.valid:
            errors = report.errors()
            raise ValidationError(_summary(errors), details=errors)
        scheduled_at = report.scheduled_at
        urls = [*request.media_urls, *(u for item in request.thread for u in item.media_urls)]
        assets = {u: self.media.asset_for(principal.org_id, u) for u in dict.fromkeys(urls)}
        media_ids = [assets[u].id for u in request.media_urls]
        group_id = new_id("grp") if len(set(request.account_ids)) > 1 else None
        now = utcnow()
        posts: list[Post] = []
        for account_id in dict.fromkeys(request.account_ids):
            account = accounts[account_id]
            assert account is not None  # validation refused unknown accounts
            platform = self.host.platform(account.platform)
            head = Post(
                id=new_id("post"), org_id=principal.org_id, account_id=account.id,
                platform=account.platform, account_name=account.name,
                created_by=principal.user_id, status=status, text=request.text,
                media_urls=list(request.media_urls), media_ids=media_ids,
                media_type=request.media_type or _media_type(request.media_urls, assets),
                cover_image_url=request.cover_image_url,
                platform_config=dict(request.platform_config),
                callback_url=request.callback_url, scheduled_at=scheduled_at,
                timezone=request.timezone, group_id=group_id,
                next_attempt_at=scheduled_at, created_at=now, updated_at=now,
            )
            if request.thread:
                head = attrs.evolve(head, thread_id=head.id)
            posts.append(head)
            for position, item in enumerate(request.thread, start=1):
                item_media = [assets[u].id for u in item.media_urls]
                posts.append(attrs.evolve(
                    head, id=new_id("post"), text=item.text, media_urls=list(item.media_urls),
                    media_ids=item_media,
                    media_type=_media_type(item.media_urls, assets),
                    cover_image_url=None, thread_position=position,
                    publish_with_head=platform.capabilities.threads,
                ))
        logs = [LogEvent(
            id=None, post_id=post.id, event="created",
            message=f"post created as {post.status.value}" + (
                f", scheduled for {post.scheduled_at.isoformat()}" if post.scheduled_at else ""))
            for post in posts]
        # counted in the transaction that inserts the posts (shared with concurrent
        # requests): a request that fails to insert does not use the allowance
        rate = self.hit_rate_limit("posts.create", principal.org_id, insert=(posts, logs))
        metrics.record_posts_created([p.platform for p in posts])
        return PostsCreated(posts, group_id, rate)

    def get_user(self, user_id: str) -> User:
        return self.store.get_user(user_id)

    def list_posts(self, org_id: str, *, status: str | None = None, platform: str | None = None,
                   channel_id: str | None = None, since: datetime | None = None,
                   until: datetime | None = None, sort: PostSort = PostSort.CREATED_DESC,
                   page: int = 1, limit: int = 20) -> Page:
        """A page of the organization's posts, newest first by default. ``since``
        (inclusive) and ``until`` (exclusive) bound when a post is meant to go out: its
        schedule, or its creation for a post without one."""
        self._check_list(status, platform, since, until, page, limit)
        return self.store.list_posts(org_id, status=status, platform=platform,
                                     account_id=channel_id, since=since, until=until,
                                     sort=sort, page=page, limit=limit)

    def list_post_rows(self, org_id: str, columns: Sequence[str], *, status: str | None = None,
                       platform: str | None = None, channel_id: str | None = None,
                       since: datetime | None = None, until: datetime | None = None,
                       sort: PostSort = PostSort.CREATED_DESC, page: int = 1, limit: int = 20,
                       utc_text: bool = False) -> Page:
        """:meth:`list_posts` with each item a row of ``columns`` (Post attribute names;
        see :meth:`Store.list_post_rows`), for renderers that need no Post objects."""
        self._check_list(status, platform, since, until, page, limit)
        return self.store.list_post_rows(org_id, columns, status=status, platform=platform,
                                         account_id=channel_id, since=since, until=until,
                                         sort=sort, page=page, limit=limit, utc_text=utc_text)

    def list_posts_json(self, org_id: str, fields: Sequence[tuple[str, str]], *,
                        status: str | None = None, platform: str | None = None,
                        channel_id: str | None = None, since: datetime | None = None,
                        until: datetime | None = None, sort: PostSort = PostSort.CREATED_DESC,
                        page: int = 1, limit: int = 20) -> tuple[str, Page] | None:
        """:meth:`list_post_rows` already rendered as JSON where the database can do it
        (:meth:`Store.post_page_json`): ``(JSON array of the items, the page without
        items)``; None where it cannot (then use :meth:`list_post_rows`)."""
        self._check_list(status, platform, since, until, page, limit)
        found = self.store.post_page_json(org_id, fields, status=status, platform=platform,
                                          account_id=channel_id, since=since, until=until,
                                          sort=sort, page=page, limit=limit)
        if found is None:
            return None
        items, total = found
        return items, Page(items=[], total=total, page=page, limit=limit)

    def _check_list(self, status: str | None, platform: str | None, since: datetime | None,
                    until: datetime | None, page: int, limit: int) -> None:
        issues = []
        if status is not None and status not in PostStatus.__members__:
            issues.append(Issue("status", "must be one of " + ", ".join(PostStatus.__members__)))
        if platform is not None and not self.host.has_platform(platform):
            issues.append(Issue("platform", f"unknown platform {platform!r}"))
        for name, value in (("from", since), ("to", until)):
            if value is not None and value.utcoffset() is None:
                issues.append(Issue(name, "must be an instant with a UTC offset"))
        if since is not None and until is not None and not issues and since > until:
            issues.append(Issue("to", "must not be before from"))
        if page < 1:
            issues.append(Issue("page", "must be 1 or more"))
        if not 1 <= limit <= 100:
            issues.append(Issue("limit", "must be between 1 and 100"))
        if issues:
            raise ValidationError(_summary(issues), details=issues)

    def get_post(self, org_id: str, post_id: str) -> Post:
        return self.store.get_post(post_id, org_id=org_id)

    _PATCHABLE = ("text", "media_urls", "media_type", "cover_image_url", "platform_config",
                  "callback_url", "scheduled_at", "timezone", "status")

    def update_post(self, principal: Principal, post_id: str, changes: Mapping[str, Any]
                    ) -> Post:
        """Apply a PATCH (already structured: snake_case keys, typed values, ``status``
        a PostStatus). Only DRAFT and QUEUED posts can be edited. New media URLs are
        fetched as :meth:`validate_post` with ``keep_media`` fetches them."""
        from .validation import parse_schedule

        org_id = principal.org_id
        post = self.store.get_post(post_id, org_id=org_id)
        states.check_editable(post.status)
        unknown = set(changes) - set(self._PATCHABLE)
        if unknown:
            raise ValidationError("unknown fields", details=[Issue(k, "unknown field")
                                                             for k in sorted(unknown)])
        target = changes.get("status", post.status)
        if target not in states.USER_TARGETS:
            raise ValidationError("invalid status", details=[Issue(
                "status", "must be DRAFT, QUEUED or CANCELLED")])
        states.transition(post.status, target)
        values = {k: v for k, v in changes.items() if k != "status"}
        if target is PostStatus.CANCELLED:
            updated = attrs.evolve(post, status=target)
        else:
            request = PostRequest(
                account_ids=[post.account_id],
                text=values.get("text", post.text),
                media_urls=values.get("media_urls", post.media_urls),
                media_type=values.get("media_type", post.media_type),
                cover_image_url=values.get("cover_image_url", post.cover_image_url),
                platform_config=values.get("platform_config", post.platform_config),
                callback_url=values.get("callback_url", post.callback_url),
                # an unchanged schedule is not re-checked: it may have passed already
                scheduled_at=values.get("scheduled_at"),
                timezone=values.get("timezone", post.timezone),
            )
            report = self.validate_post(principal, request, keep_media=True)
            errors = report.errors()
            if errors:
                raise ValidationError(_summary(errors), details=errors)
            scheduled_at = (parse_schedule(request.scheduled_at, request.timezone)
                            if "scheduled_at" in values else post.scheduled_at)
            media_ids = ([self.media.asset_for(org_id, u).id for u in request.media_urls]
                         if "media_urls" in values else post.media_ids)
            updated = attrs.evolve(
                post, status=target, text=request.text, media_urls=list(request.media_urls),
                media_ids=media_ids, media_type=request.media_type,
                cover_image_url=request.cover_image_url,
                platform_config=dict(request.platform_config), callback_url=request.callback_url,
                scheduled_at=scheduled_at, timezone=request.timezone,
                next_attempt_at=(scheduled_at if "scheduled_at" in values
                                 else post.next_attempt_at), error_message=None,
            )
        saved = self.store.save_post(updated, expect_status=post.status, new_media=(
            updated.media_ids if updated.media_ids != post.media_ids else ()))
        self.log(post_id, "updated", f"post edited ({', '.join(sorted(changes)) or 'no change'})"
                 + (f"; status {post.status.value} → {target.value}"
                    if target is not post.status else ""))
        return saved

    def delete_post(self, org_id: str, post_id: str, *, from_platform: bool = False
                    ) -> DeleteOutcome:
        """DRAFT: deleted. QUEUED/PUBLISHED/FAILED: cancelled. PUBLISHING: 409.
        ``from_platform`` also deletes a PUBLISHED post (the whole thread) on the platform."""
        post = self.store.get_post(post_id, org_id=org_id)
        action = states.delete_action(post.status)
        if action is states.DeleteAction.HARD_DELETE:
            self.store.delete_post(post.id, expect_status=PostStatus.DRAFT)
            return DeleteOutcome(id=post.id, deleted=True, status=None)
        platform_deleted: bool | None = None
        platform_error: str | None = None
        if from_platform and post.status is PostStatus.PUBLISHED:
            platform = self.host.platform(post.platform)
            if not platform.capabilities.delete:
                raise NotSupported(
                    f"{platform.display_name or platform.name} does not let apps delete posts "
                    "through its API; delete it in the app, then cancel it here without "
                    "fromPlatform")
            platform_deleted, platform_error = self._delete_on_platform(post)
        cancelled = self.store.save_post(attrs.evolve(post, status=states.transition(
            post.status, PostStatus.CANCELLED)), expect_status=post.status)
        followers = [p for p in self.store.thread_posts(post.thread_id)
                     if p.publish_with_head and p.id != post.id] if post.thread_id else []
        for item in followers:
            if states.can(item.status, PostStatus.CANCELLED):
                self.store.save_post(attrs.evolve(item, status=PostStatus.CANCELLED),
                                     expect_status=item.status)
        self.log(post.id, "cancelled", "post cancelled"
                 + ("" if platform_deleted is None else
                    "; deleted on the platform" if platform_deleted else
                    f"; deleting it on the platform failed: {platform_error}"))
        return DeleteOutcome(id=cancelled.id, deleted=False, status=cancelled.status.value,
                             platform_deleted=platform_deleted, platform_error=platform_error)

    def retry_post(self, org_id: str, post_id: str) -> Post:
        """Put a FAILED post back in the queue, due now, its attempts counted from zero
        (409 CONFLICT from any other status). The first post of a thread takes its
        failed followers along; a follower published with its first post is retried
        through that one. Its checkpoints stay, so a post whose outcome was unknown is
        looked for on the platform before it is sent again. Refused (409) while the
        account is removed or must be reconnected: it would only fail again."""
        post = self.store.get_post(post_id, org_id=org_id)
        target = states.retry(post.status)
        if post.publish_with_head and post.thread_id:
            raise Conflict(f"post {post.id} is published together with the first post of "
                           f"its thread; retry that one ({post.thread_id})")
        account = self.store.get_account(post.account_id, org_id=org_id)
        name = self._platform_name(account.platform)
        if not account.is_active:
            raise Conflict(f"the {name} account {account.name!r} was removed; duplicate the "
                           "post to another account instead")
        if account.needs_reconnect:
            raise Conflict(f"the {name} account {account.name!r} must be reconnected before "
                           "its posts can be retried: its credentials were refused")
        followers = [p for p in self.store.thread_posts(post.thread_id)
                     if p.publish_with_head and p.status is PostStatus.FAILED
                     ] if post.thread_id == post.id else []
        retried = []
        with self.store.begin() as conn:
            for item in (post, *followers):
                retried.append(self.store.save_post(attrs.evolve(
                    item, status=target, retry_count=0, error_message=None,
                    next_attempt_at=None, lease_owner=None, lease_expires_at=None),
                    expect_status=PostStatus.FAILED, conn=conn))
                self.store.add_log(LogEvent(
                    id=None, post_id=item.id, event="retried",
                    message=f"retry asked for: FAILED → QUEUED, attempts reset (was "
                    f"{item.retry_count}); it failed with: {item.error_message or 'no message'}",
                    data={"previousRetryCount": item.retry_count,
                          "previousError": item.error_message}), conn=conn)
        return retried[0]

    def _platform_name(self, platform: str) -> str:
        """The platform's display name ("X", "TikTok"), or its name when its plugin is
        not installed here."""
        if not self.host.has_platform(platform):
            return platform
        found = self.host.platform(platform)
        return found.display_name or found.name

    def _delete_on_platform(self, post: Post) -> tuple[bool, str | None]:
        import httpx

        from .platforms import DeleteContext

        platform = self.host.platform(post.platform)
        account = self.store.get_account(post.account_id)
        credentials = self.account_credentials(account.id)
        if credentials is None:
            return False, "the account has no credentials"
        ids = [post.external_post_id] if post.external_post_id else []
        if post.thread_id:
            ids = [p.external_post_id for p in self.store.thread_posts(post.thread_id)
                   if p.external_post_id and (p.publish_with_head or p.id == post.id)]
        with httpx.Client(timeout=30) as http:
            ctx = DeleteContext(account=account, credentials=credentials, http=http,
                                settings=self.settings, external_ids=ids)
            try:
                platform.delete(ctx)
            except PlatformError as exc:
                return False, exc.message
        return True, None

    def duplicate_post(self, principal: Principal, post_id: str, *,
                       account_ids: Sequence[str] | None = None, scheduled_at: str | None = None,
                       status: PostStatus = PostStatus.DRAFT) -> PostsCreated:
        """Copies of a post (a DRAFT on its account by default), one per account; each
        copy counts one against the ``posts.create`` limit."""
        from .validation import parse_schedule

        source = self.store.get_post(post_id, org_id=principal.org_id)
        if status not in (PostStatus.DRAFT, PostStatus.QUEUED):
            raise ValidationError("invalid status", details=[Issue(
                "status", "must be DRAFT or QUEUED")])
        targets = list(dict.fromkeys(account_ids or [source.account_id]))
        accounts = self._accounts_for(principal.org_id, targets)
        missing = [Issue(f"accountIds[{i}]", f"account {a} not found")
                   for i, a in enumerate(targets) if accounts.get(a) is None]
        if missing:
            raise ValidationError(_summary(missing), details=missing)
        when = parse_schedule(scheduled_at, source.timezone) if scheduled_at else None
        if status is PostStatus.QUEUED:
            request = PostRequest(
                account_ids=targets, text=source.text, media_urls=source.media_urls,
                media_type=source.media_type, cover_image_url=source.cover_image_url,
                platform_config=source.platform_config, callback_url=source.callback_url,
                scheduled_at=scheduled_at, timezone=source.timezone)
            report = self.validate_post(principal, request, keep_media=True)
            if not report.valid:
                raise ValidationError(_summary(report.errors()), details=report.errors())
        group_id = new_id("grp") if len(targets) > 1 else None
        now = utcnow()
        copies = []
        for account_id in targets:
            account = accounts[account_id]
            assert account is not None
            copies.append(attrs.evolve(
                source, id=new_id("post"), account_id=account.id, platform=account.platform,
                account_name=account.name, created_by=principal.user_id, status=status,
                scheduled_at=when, next_attempt_at=when, group_id=group_id, thread_id=None,
                thread_position=0, publish_with_head=False, published_at=None,
                external_post_id=None, external_post_url=None, error_message=None,
                retry_count=0, lease_owner=None, lease_expires_at=None, created_at=now,
                updated_at=now))
        logs = [LogEvent(id=None, post_id=copy.id, event="created",
                         message=f"duplicated from {source.id} as {status.value}")
                for copy in copies]
        # copies are new posts: counted like POST /posts, in the insert's transaction
        rate = self.hit_rate_limit("posts.create", principal.org_id, insert=(copies, logs))
        metrics.record_posts_created([p.platform for p in copies])
        return PostsCreated(copies, group_id, rate)

    def post_logs(self, org_id: str, post_id: str) -> list[LogEvent]:
        self.store.get_post(post_id, org_id=org_id)
        return self.store.list_logs(post_id)

    def log(self, post_id: str, event: str, message: str, *, attempt: int = 0,
            **data: Any) -> None:
        self.store.add_log(LogEvent(id=None, post_id=post_id, event=event, message=message,
                                    attempt=attempt, data=data))

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


def _media_type(urls: Sequence[str], assets: Mapping[str, MediaAsset]) -> MediaType | None:
    """A post's media type from its media: a carousel, one video or one image."""
    if not urls:
        return None
    if len(urls) > 1:
        return MediaType.CAROUSEL
    return MediaType.VIDEO if assets[urls[0]].kind == "video" else MediaType.IMAGE


def _summary(issues: Sequence[Issue]) -> str:
    if not issues:
        return "invalid request"
    first = issues[0]
    more = f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""
    return f"{first.path}: {first.message}{more}"




__all__ = ["Chat33", "Chat33Error", "DeleteOutcome", "PostsCreated", "Principal", "RateCount"]
