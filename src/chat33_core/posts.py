"""Posts: validating a request, creating its posts, and everything done to a post
afterwards (edits, deletion, retries, copies, logs)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs

from . import metrics, states
from .accounts import Accounts
from .config import Settings
from .errors import Conflict, Issue, NotSupported, PlatformError, ValidationError
from .mediaservice import MediaService
from .models import (
    Account,
    DeleteOutcome,
    LogEvent,
    MediaAsset,
    Page,
    Post,
    PostRequest,
    PostSort,
    PostStatus,
    ValidationReport,
    new_id,
    utcnow,
)
from .plugins import PluginHost
from .ratelimits import RateCount, RateLimits
from .security import Principal
from .store import Store
from .validation import parse_schedule, validate_request


@attrs.frozen
class PostsCreated:
    """What :meth:`Posts.create_posts` and :meth:`Posts.duplicate_post` made: every
    post (thread items included), the group id of a multi-account request, and the
    ``posts.create`` count the posts were counted in (for ``RateLimit-*`` headers)."""

    posts: list[Post]
    group_id: str | None
    rate: RateCount


@attrs.frozen
class CheckedRequest:
    """What validating ``request`` found (:meth:`Posts.check`): the ``report`` (with the
    parsed schedule and each post's media type), the ``accounts`` it names (each id ->
    the organization's Account, or None) and the asset of each distinct media URL.
    Creating the posts (:func:`build_posts`) uses exactly this, and reads nothing again."""

    request: PostRequest
    report: ValidationReport
    accounts: Mapping[str, Account | None]
    assets: Mapping[str, MediaAsset]


def build_posts(checked: CheckedRequest, *, org_id: str, user_id: str, status: PostStatus,
                host: PluginHost, now: datetime | None = None
                ) -> tuple[list[Post], str | None]:
    """The posts of a checked request: one per account and per thread item, with their
    ``created`` logs left to the caller. Returns (posts, group id of a multi-account
    request). Raises ValidationError (the report's errors) when the report is invalid:
    an invalid request makes no posts."""
    report, request = checked.report, checked.request
    if not report.valid:
        errors = report.errors()
        raise ValidationError(_summary(errors), details=errors)
    account_ids = list(dict.fromkeys(request.account_ids))
    media_ids = [checked.assets[u].id for u in request.media_urls]
    group_id = new_id("grp") if len(account_ids) > 1 else None
    now = now or utcnow()
    posts: list[Post] = []
    for account_id in account_ids:
        account = checked.accounts[account_id]
        assert account is not None  # validation refused unknown accounts
        platform = host.platform(account.platform)
        head = Post(
            id=new_id("post"), org_id=org_id, account_id=account.id,
            platform=account.platform, account_name=account.name, created_by=user_id,
            status=status, text=request.text, media_urls=list(request.media_urls),
            media_ids=media_ids, media_type=report.media_types[0],
            cover_image_url=request.cover_image_url,
            platform_config=dict(request.platform_config),
            callback_url=request.callback_url, scheduled_at=report.scheduled_at,
            timezone=request.timezone, group_id=group_id,
            next_attempt_at=report.scheduled_at, created_at=now, updated_at=now,
        )
        if request.thread:
            head = attrs.evolve(head, thread_id=head.id)
        posts.append(head)
        for position, item in enumerate(request.thread, start=1):
            posts.append(attrs.evolve(
                head, id=new_id("post"), text=item.text, media_urls=list(item.media_urls),
                media_ids=[checked.assets[u].id for u in item.media_urls],
                media_type=report.media_types[position], cover_image_url=None,
                thread_position=position, publish_with_head=platform.capabilities.threads,
            ))
    return posts, group_id


class Posts:
    """Posts of an organization. Given the store, the plugin host, the settings, the
    media service, the rate limits and the accounts."""

    def __init__(self, store: Store, host: PluginHost, settings: Settings,
                 media: MediaService, limits: RateLimits, accounts: Accounts) -> None:
        self.store = store
        self.host = host
        self.settings = settings
        self.media = media
        self.limits = limits
        self.accounts = accounts

    # --- validation and creation --------------------------------------------------------

    def validate_post(self, principal: Principal, request: PostRequest, *,
                      keep_media: bool = False) -> ValidationReport:
        """Check ``request`` against the common rules and each target platform's rules.
        Creates nothing unless ``keep_media`` (then fetched media is kept for publishing).
        Fetching media from a URL needs the scope ``media:write`` (Forbidden) and a free
        fetch slot of the organization (ConcurrencyLimited); with ``keep_media`` each
        fetch counts one ``media.upload`` (RateLimited)."""
        return self.check(principal, request, keep_media=keep_media).report

    def check(self, principal: Principal, request: PostRequest, *, keep_media: bool,
              accounts: Mapping[str, Account | None] | None = None) -> CheckedRequest:
        """:meth:`validate_post`, with what it found: the accounts and each media URL's
        asset (kept, with ``keep_media``, once the checks are done). ``accounts``:
        accounts read already for this request, if any."""
        found = self.accounts.accounts_for(principal.org_id, request.account_ids, accounts)
        with self.media.ingestor(principal, keep=keep_media) as inspect_url:
            report = validate_request(request, accounts=found, host=self.host,
                                      inspect_url=inspect_url, settings=self.settings)
        return CheckedRequest(request, report, found, dict(inspect_url.assets))

    def create_posts(self, principal: Principal, request: PostRequest, *,
                     status: PostStatus = PostStatus.QUEUED,
                     accounts: Mapping[str, Account | None] | None = None) -> PostsCreated:
        """One post per account (and per thread item), all or nothing; each post counts
        one against the ``posts.create`` limit. Validation's findings are what the posts
        are made of (:func:`build_posts`). ``accounts``: the request's accounts, if read
        already (:meth:`Identity.authenticate_key_with_accounts`)."""
        checked = self.check(principal, request, keep_media=True, accounts=accounts)
        posts, group_id = build_posts(checked, org_id=principal.org_id,
                                      user_id=principal.user_id, status=status,
                                      host=self.host)
        logs = [LogEvent(
            id=None, post_id=post.id, event="created",
            message=f"post created as {post.status.value}" + (
                f", scheduled for {post.scheduled_at.isoformat()}" if post.scheduled_at else ""))
            for post in posts]
        # counted in the transaction that inserts the posts (shared with concurrent
        # requests): a request that fails to insert does not use the allowance
        rate = self.limits.hit("posts.create", principal.org_id, insert=(posts, logs))
        metrics.record_posts_created([p.platform for p in posts])
        return PostsCreated(posts, group_id, rate)

    # --- reading ------------------------------------------------------------------------

    def get_post(self, org_id: str, post_id: str) -> Post:
        return self.store.get_post(post_id, org_id=org_id)

    def list_posts(self, org_id: str, *, status: str | None = None, platform: str | None = None,
                   channel_id: str | None = None, since: datetime | None = None,
                   until: datetime | None = None, sort: PostSort = PostSort.CREATED_DESC,
                   page: int = 1, limit: int = 20) -> Page:
        """A page of the organization's posts, newest first by default. ``since``
        (inclusive) and ``until`` (exclusive) bound when a post is meant to go out: its
        schedule, or its creation for a post without one."""
        self.check_list(status, platform, since, until, page, limit)
        return self.store.list_posts(org_id, status=status, platform=platform,
                                     account_id=channel_id, since=since, until=until,
                                     sort=sort, page=page, limit=limit)

    def list_post_rows(self, org_id: str, columns: Sequence[str], *,
                       status: str | None = None, platform: str | None = None,
                       channel_id: str | None = None, since: datetime | None = None,
                       until: datetime | None = None, sort: PostSort = PostSort.CREATED_DESC,
                       page: int = 1, limit: int = 20, utc_text: bool = False) -> Page:
        """:meth:`list_posts` with each item a row of ``columns`` (Post attribute names;
        see :meth:`Store.list_post_rows`), for :class:`~chat33_core.serialization.PostRows`."""
        self.check_list(status, platform, since, until, page, limit)
        return self.store.list_post_rows(org_id, columns, status=status, platform=platform,
                                         account_id=channel_id, since=since, until=until,
                                         sort=sort, page=page, limit=limit, utc_text=utc_text)

    def check_list(self, status: str | None, platform: str | None, since: datetime | None,
                   until: datetime | None, page: int, limit: int) -> None:
        """ValidationError unless the filters and the page of a list of posts are valid."""
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

    # --- changes ------------------------------------------------------------------------

    _PATCHABLE = ("text", "media_urls", "media_type", "cover_image_url", "platform_config",
                  "callback_url", "scheduled_at", "timezone", "status")

    def update_post(self, principal: Principal, post_id: str, changes: Mapping[str, Any]
                    ) -> Post:
        """Apply a PATCH (already structured: snake_case keys, typed values, ``status``
        a PostStatus). Only DRAFT and QUEUED posts can be edited. New media URLs are
        fetched as :meth:`validate_post` with ``keep_media`` fetches them."""
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
            checked = self.check(principal, request, keep_media=True)
            errors = checked.report.errors()
            if errors:
                raise ValidationError(_summary(errors), details=errors)
            scheduled_at = (checked.report.scheduled_at if "scheduled_at" in values
                            else post.scheduled_at)
            media_ids = ([checked.assets[u].id for u in request.media_urls]
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
        name = self.accounts.platform_name(account.platform)
        if not account.is_active:
            raise Conflict(f"the {name} account {account.name!r} was removed; duplicate the "
                           "post to another account instead")
        if account.needs_reconnect:
            raise Conflict(f"the {name} account {account.name!r} must be reconnected before "
                           "its posts can be retried: its credentials were refused")
        followers = [p for p in self.store.thread_posts(post.thread_id)
                     if p.publish_with_head and p.status is PostStatus.FAILED
                     ] if post.thread_id == post.id else []
        now = utcnow()
        retried = [attrs.evolve(item, status=target, retry_count=0, error_message=None,
                                next_attempt_at=None, lease_owner=None,
                                lease_expires_at=None, updated_at=now)
                   for item in (post, *followers)]
        self.store.requeue_posts(
            [item.id for item in retried], [LogEvent(
                id=None, post_id=item.id, event="retried",
                message=f"retry asked for: FAILED → QUEUED, attempts reset (was "
                f"{item.retry_count}); it failed with: {item.error_message or 'no message'}",
                data={"previousRetryCount": item.retry_count,
                      "previousError": item.error_message}) for item in (post, *followers)],
            expect_status=PostStatus.FAILED, status=target, now=now)
        return retried[0]

    def _delete_on_platform(self, post: Post) -> tuple[bool, str | None]:
        import httpx

        from .platforms import DeleteContext

        platform = self.host.platform(post.platform)
        account = self.store.get_account(post.account_id)
        credentials = self.accounts.account_credentials(account.id)
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
        source = self.store.get_post(post_id, org_id=principal.org_id)
        if status not in (PostStatus.DRAFT, PostStatus.QUEUED):
            raise ValidationError("invalid status", details=[Issue(
                "status", "must be DRAFT or QUEUED")])
        targets = list(dict.fromkeys(account_ids or [source.account_id]))
        accounts = self.accounts.accounts_for(principal.org_id, targets)
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
            report = self.check(principal, request, keep_media=True).report
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
        rate = self.limits.hit("posts.create", principal.org_id, insert=(copies, logs))
        metrics.record_posts_created([p.platform for p in copies])
        return PostsCreated(copies, group_id, rate)

    def post_logs(self, org_id: str, post_id: str) -> list[LogEvent]:
        self.store.get_post(post_id, org_id=org_id)
        return self.store.list_logs(post_id)

    def log(self, post_id: str, event: str, message: str, *, attempt: int = 0,
            **data: Any) -> None:
        self.store.add_log(LogEvent(id=None, post_id=post_id, event=event, message=message,
                                    attempt=attempt, data=data))


def _summary(issues: Sequence[Issue]) -> str:
    if not issues:
        return "invalid request"
    first = issues[0]
    more = f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""
    return f"{first.path}: {first.message}{more}"


__all__ = ["CheckedRequest", "Posts", "PostsCreated", "build_posts"]
