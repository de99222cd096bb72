"""The preflight engine: everything a platform would reject, found before publishing.

:func:`validate_request` checks a :class:`~chat33_core.models.PostRequest` against the
rules common to every platform, inspects its media (through the caller's
``inspect_url``: fetched once, judged by their bytes), then asks each target account's
platform plugin (``PlatformBase.validate``) and the ``chat33_validate_post`` hooks. The
answer is a :class:`ValidationReport`, per target account, with every issue's path
pointing into the request (``text``, ``mediaUrls[1]``, ``platformConfig.youtube.title``,
``accountIds[2]``, ``thread[0].text``).

``POST /posts/validate`` answers the report (through :mod:`chat33_core.serialization`);
``POST /posts`` refuses an invalid
report with ``ValidationError(details=report.errors())``. The engine never raises for a
bad request: it raises only typed :class:`~chat33_core.errors.Chat33Error` for a broken
plugin (:class:`~chat33_core.errors.PluginError`).
"""

from __future__ import annotations

import functools
import re
import zoneinfo
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from . import options
from .config import Settings
from .errors import Chat33Error, Issue, NotFound, PluginError, ValidationError
from .fetch import FetchError, check_url, url_problem
from .media import MediaInfo
from .models import (
    Account,
    AccountResult,
    MediaType,
    PostRequest,
    ThreadItem,
    ValidationReport,
    dedupe_issues,
    utcnow,
)
from .platforms import PlatformBase, PostDraft
from .plugins import PluginHost
from .serialization import media_info_json
from .store.unavailable import safe_text

#: a scheduledAt this close behind "now" is accepted (clock skew, request latency)
SCHEDULE_GRACE = timedelta(seconds=60)
MAX_ACCOUNTS = 50
MAX_MEDIA_URLS = 20
MAX_THREAD_ITEMS = 25

InspectUrl = Callable[[str], MediaInfo]

_MEDIA_PATH = re.compile(r"^(thread\[\d+\]\.)?(mediaUrls|mediaType|coverImageUrl)")


# --- the report ------------------------------------------------------------------------


def media_facts(info: MediaInfo) -> dict[str, Any]:
    """Inspected facts in the API's camelCase (``mimeType``, ``durationS``...)."""
    facts: dict[str, Any] = {}
    for name, value in media_info_json(info).items():
        head, *rest = name.split("_")
        facts[head + "".join(p.title() for p in rest)] = value
    ratio = info.aspect_ratio
    facts["aspectRatio"] = round(ratio, 4) if ratio else None
    return facts


# --- scheduledAt -------------------------------------------------------------------------


def parse_schedule(scheduled_at: str | None, timezone: str | None = "UTC",
                   now: datetime | None = None) -> datetime | None:
    """``scheduledAt`` as an aware UTC instant, or None to publish now.

    ISO 8601; an instant without an offset is read in ``timezone`` (an IANA name checked
    with zoneinfo; a wall time a clock change skips is refused). The instant must not be
    more than :data:`SCHEDULE_GRACE` behind ``now``. Raises :class:`ValidationError`
    with issues at ``scheduledAt`` / ``timezone``.
    """
    issues: list[Issue] = []
    zone = _zone(timezone, issues)
    if scheduled_at is None:
        if issues:
            raise ValidationError(issues[0].message, details=issues)
        return None
    when: datetime | None = None
    if not isinstance(scheduled_at, str):
        issues.append(Issue("scheduledAt", "must be an ISO 8601 string", "invalid_datetime"))
    elif not scheduled_at.strip():
        issues.append(Issue("scheduledAt", "is empty: omit it (or send null) to publish now",
                            "invalid_datetime"))
    else:
        when = _parse_instant(scheduled_at.strip(), zone, timezone, issues)
    if when is not None:
        now = now or utcnow()
        if when < now - SCHEDULE_GRACE:
            issues.append(Issue(
                "scheduledAt",
                f"{when.isoformat().replace('+00:00', 'Z')} is in the past "
                f"(now is {now.astimezone(UTC).isoformat(timespec='seconds')})".replace(
                    "+00:00", "Z"),
                "in_the_past"))
    if issues:
        raise ValidationError(issues[0].message, details=issues)
    return when


def _zone(timezone: Any, issues: list[Issue]) -> ZoneInfo | None:
    if not isinstance(timezone, str) or not timezone.strip():
        issues.append(Issue("timezone", "must be an IANA time zone name such as "
                                        "America/New_York", "invalid_timezone"))
        return None
    try:
        if timezone not in _iana_zones():
            raise ZoneInfoNotFoundError(timezone)
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError, UnicodeError):
        issues.append(Issue("timezone", f"unknown IANA time zone {timezone[:64]!r} "
                                        "(e.g. America/New_York, Europe/Paris, UTC)",
                            "invalid_timezone"))
        return None


#: files in the time zone database that are no IANA zone: ``localtime`` is the host's
#: own zone (a post's time would change with the server's setting), ``Factory`` a zone
#: meaning "not set"
_NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})


@functools.cache
def _iana_zones() -> frozenset[str]:
    """The IANA time zone names of the installed database (read once, ~0.1 s)."""
    return frozenset(zoneinfo.available_timezones()) - _NOT_ZONES


def _parse_instant(raw: str, zone: ZoneInfo | None, timezone: Any,
                   issues: list[Issue]) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        issues.append(Issue("scheduledAt", f"{raw[:64]!r} is not an ISO 8601 date-time "
                                           "(e.g. 2026-05-01T14:30:00Z)", "invalid_datetime"))
        return None
    try:
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            if zone is None:
                return None  # the timezone issue is already reported
            local = parsed.replace(tzinfo=zone)
            back = local.astimezone(UTC).astimezone(zone)
            if back.replace(tzinfo=None) != parsed:
                issues.append(Issue("scheduledAt", f"{raw[:64]} does not exist in {timezone}: "
                                                   "the clocks skip it", "invalid_datetime"))
                return None
            return local.astimezone(UTC)
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        issues.append(Issue("scheduledAt", f"{raw[:64]} is out of range", "invalid_datetime"))
        return None


# --- the engine ----------------------------------------------------------------------------


def validate_request(request: PostRequest, *, accounts: Mapping[str, Account | None],
                     host: PluginHost, inspect_url: InspectUrl,
                     now: datetime | None = None,
                     settings: Settings) -> ValidationReport:
    """Check ``request`` for every target account; see the module docstring.

    :param accounts: each requested account id -> the Account of the caller's
        organization, or None (not found, or another organization's).
    :param inspect_url: fetch and inspect one media URL; raise a ``ValidationError`` whose
        message says what is wrong (it becomes an issue at that URL's path); any other
        error ends the validation (it is the request's answer: Forbidden, RateLimited).
    :param now: the current instant (for ``scheduledAt``); the clock by default.
    """
    return _Engine(request, accounts, host, inspect_url, now or utcnow(), settings).run()


@attrs.define
class _Inspected:
    """Media of one post or thread item: infos in order (None where inspection failed)."""

    infos: list[MediaInfo | None] = attrs.Factory(list)

    @property
    def ok(self) -> tuple[MediaInfo, ...]:
        return tuple(i for i in self.infos if i is not None)

    @property
    def failed(self) -> bool:
        return any(i is None for i in self.infos)

    def kind(self) -> MediaType | None:
        """What the files make: a carousel, one video or one image (None without
        files, or when the one file could not be inspected)."""
        if len(self.infos) > 1:
            return MediaType.CAROUSEL
        if not self.infos or self.infos[0] is None:
            return None
        return MediaType.VIDEO if self.infos[0].is_video else MediaType.IMAGE


class _Engine:
    def __init__(self, request: PostRequest, accounts: Mapping[str, Account | None],
                 host: PluginHost, inspect_url: InspectUrl, now: datetime,
                 settings: Settings) -> None:
        self.request = request
        self.accounts = accounts
        self.host = host
        self.inspect_url = inspect_url
        self.now = now
        self.settings = settings
        self.errors: list[Issue] = []
        self.warnings: list[Issue] = []
        self.media_report: list[dict[str, Any]] = []
        self._cache: dict[str, MediaInfo | ValidationError] = {}
        self.scheduled_at: datetime | None = None
        self._cover_failed = False

    def error(self, path: str, message: str, code: str = "invalid") -> None:
        self.errors.append(Issue(path, message, code))

    def warn(self, path: str, message: str, code: str = "warning") -> None:
        self.warnings.append(Issue(path, message, code, severity="warning"))

    # --- the run ---------------------------------------------------------------------

    def run(self) -> ValidationReport:
        req = self.request
        account_ids = self._account_ids()
        text = self._text(req.text, "text")
        self._schedule()
        self._callback()
        media_type = self._media_type()
        post_media = self._media_list(req.media_urls, "mediaUrls")
        cover = self._cover()
        thread = self._thread()
        self._media_type_rules(media_type, post_media)
        if not (text or "").strip() and not post_media.infos and not req.media_urls:
            self.error("text", "the post has no text and no media", "required")
        config = self._platform_config(account_ids)

        media_failed = post_media.failed or self._cover_failed \
            or any(item.failed for _, _, item in thread)
        drafts_thread = [
            PostDraft(text=item_text, media_type=None, media=item.ok, platform_config=config,
                      scheduled_at=self.scheduled_at, path=f"thread[{k}].")
            for k, item_text, item in thread
        ]
        draft = PostDraft(text=text, media_type=media_type, media=post_media.ok,
                          platform_config=config, cover_image=cover,
                          scheduled_at=self.scheduled_at)
        results = [self._account(i, account_id, draft, drafts_thread, media_failed)
                   for i, account_id in account_ids]
        common_errors = dedupe_issues(self.errors)
        common_warnings = dedupe_issues(self.warnings)
        results = [attrs.evolve(r, errors=dedupe_issues([*common_errors, *r.errors]),
                                warnings=dedupe_issues([*common_warnings, *r.warnings]))
                   if common_errors or common_warnings or r.errors or r.warnings else r
                   for r in results]
        return ValidationReport(results=results, media=self.media_report,
                                request_errors=common_errors,
                                request_warnings=common_warnings,
                                scheduled_at=self.scheduled_at,
                                media_types=[media_type or post_media.kind(),
                                             *(item.kind() for _, _, item in thread)])

    # --- request-wide rules --------------------------------------------------------------

    def _account_ids(self) -> list[tuple[int, str]]:
        raw = self.request.account_ids
        if not isinstance(raw, list | tuple) or not raw:
            self.error("accountIds", "at least one account id is required", "required")
            return []
        if len(raw) > MAX_ACCOUNTS:
            self.error("accountIds", f"{len(raw)} accounts is over the limit of "
                                     f"{MAX_ACCOUNTS} per request", "too_many")
        first_at: dict[str, int] = {}
        out: list[tuple[int, str]] = []
        for i, account_id in enumerate(raw[:MAX_ACCOUNTS]):
            if not isinstance(account_id, str) or not account_id:
                self.error(f"accountIds[{i}]", "must be a non-empty string", "invalid")
            elif account_id in first_at:
                self.error(f"accountIds[{i}]", f"{account_id!r} is listed twice (also "
                                               f"accountIds[{first_at[account_id]}])",
                           "duplicate")
            else:
                first_at[account_id] = i
                out.append((i, account_id))
        return out

    def _text(self, value: Any, path: str) -> str | None:
        if value is None or isinstance(value, str):
            return value
        self.error(path, "must be a string", "invalid")
        return None

    def _schedule(self) -> None:
        try:
            self.scheduled_at = parse_schedule(self.request.scheduled_at,
                                               self.request.timezone, self.now)
        except ValidationError as exc:
            self.errors.extend(exc.details)

    def _callback(self) -> None:
        url = self.request.callback_url
        if url is None:
            return
        if not isinstance(url, str):
            self.error("callbackUrl", "must be an absolute http(s) URL", "invalid_url")
            return
        try:
            check_url(url, allow_private=self.settings.allow_private_urls)
        except FetchError as exc:
            self.error("callbackUrl", exc.message, exc.reason)

    def _media_type(self) -> MediaType | None:
        value = self.request.media_type
        if value is None or isinstance(value, MediaType):
            return value
        try:
            return MediaType(value)
        except ValueError:
            self.error("mediaType", "must be one of " + ", ".join(m.value for m in MediaType),
                       "invalid")
            return None

    def _platform_config(self, account_ids: list[tuple[int, str]]) -> Mapping[str, Any]:
        """Check ``platformConfig`` against each platform's declared options and return
        what plugins get to see: objects of installed platforms, holding only the options
        that passed. Required options are the business of each account on the platform
        (see :meth:`_account`); an object sent for a platform no account of the request is
        on must still match its schema, required options included, and is ignored with a
        warning."""
        config = self.request.platform_config
        clean: dict[str, dict[str, Any]] = {}
        if config is None:
            return {}
        if not isinstance(config, Mapping):
            self.error("platformConfig", "must be an object keyed by platform name", "invalid")
            return {}
        installed = self.host.platforms
        targeted = {a.platform for _, aid in account_ids
                    if (a := self.accounts.get(aid)) is not None}
        for name, value in config.items():
            path = f"platformConfig.{name}"
            if not isinstance(name, str) or name not in installed:
                known = ", ".join(sorted(installed)) or "none installed"
                self.error(path, f"unknown platform {name!r} (known: {known})",
                           "unknown_platform")
                continue
            platform = installed[name]
            clean[name], issues = options.check(
                platform.options, value, path, label=platform.display_name or name,
                required=name not in targeted)
            self.errors += issues
            if name not in targeted and isinstance(value, Mapping):
                self.warn(path, f"ignored: no {name} account is among accountIds", "unused")
        return clean

    # --- media -----------------------------------------------------------------------------

    def _media_list(self, urls: Any, path: str) -> _Inspected:
        out = _Inspected()
        if urls is None:
            return out
        if not isinstance(urls, list | tuple):
            self.error(path, "must be a list of URLs", "invalid")
            return out
        if len(urls) > MAX_MEDIA_URLS:
            self.error(path, f"{len(urls)} files is over the limit of {MAX_MEDIA_URLS}",
                       "too_many")
        for i, url in enumerate(urls[:MAX_MEDIA_URLS]):
            out.infos.append(self._inspect(url, f"{path}[{i}]"))
        return out

    def _cover(self) -> MediaInfo | None:
        url = self.request.cover_image_url
        if url is None:
            return None
        info = self._inspect(url, "coverImageUrl")
        self._cover_failed = info is None
        if info is not None and not info.is_image:
            self.error("coverImageUrl", f"the cover must be an image, this file is a "
                                        f"{info.kind} ({info.format})", "media_type_mismatch")
            return None
        return info

    def _inspect(self, url: Any, path: str) -> MediaInfo | None:
        """One URL, inspected once however often it appears; failures become issues."""
        if not isinstance(url, str) or not url.strip():
            self.error(path, "must be an absolute http(s) URL", "invalid_url")
            return None
        shape = _url_shape_problem(url)
        if shape:
            self.error(path, shape, "invalid_url")
            return None
        if url not in self._cache:
            entry: dict[str, Any] = {"url": url, "path": path}
            try:
                info = self.inspect_url(url)
            except ValidationError as exc:  # what is wrong with this URL; other errors
                # (a missing scope, a limit reached) are the whole request's answer
                self._cache[url] = exc
                entry.update(valid=False, error=exc.message)
            else:
                if not isinstance(info, MediaInfo):
                    raise TypeError(f"inspect_url returned {type(info).__name__}, "
                                    "not MediaInfo")
                self._cache[url] = info
                entry.update(valid=True, **media_facts(info))
            self.media_report.append(entry)
        found = self._cache[url]
        if isinstance(found, ValidationError):
            code = getattr(found, "reason", None) or (
                found.details[0].code if found.details else "media")
            self.error(path, found.message, code)
            return None
        return found

    def _thread(self) -> list[tuple[int, str | None, _Inspected]]:
        items = self.request.thread
        if items is None:
            return []
        if not isinstance(items, list | tuple):
            self.error("thread", "must be a list of {text, mediaUrls}", "invalid")
            return []
        if len(items) > MAX_THREAD_ITEMS:
            self.error("thread", f"{len(items)} thread items is over the limit of "
                                 f"{MAX_THREAD_ITEMS}", "too_many")
        out = []
        for k, item in enumerate(items[:MAX_THREAD_ITEMS]):
            if not isinstance(item, ThreadItem):
                self.error(f"thread[{k}]", "must be an object {text, mediaUrls}", "invalid")
                continue
            text = self._text(item.text, f"thread[{k}].text")
            media = self._media_list(item.media_urls, f"thread[{k}].mediaUrls")
            if not (text or "").strip() and not item.media_urls:
                self.error(f"thread[{k}]", "a thread item needs text or media", "required")
            out.append((k, text, media))
        return out

    def _media_type_rules(self, media_type: MediaType | None, media: _Inspected) -> None:
        """``mediaType`` must agree with what the files are."""
        if media_type is None:
            return
        count = len(media.infos)
        if count == 0:
            self.error("mediaType", f"mediaType {media_type.value} needs a file in mediaUrls",
                       "media_type_mismatch")
            return
        if media_type is MediaType.CAROUSEL and count < 2:
            self.error("mediaUrls", f"a carousel needs at least 2 files, got {count}",
                       "media_type_mismatch")
        if media_type in (MediaType.VIDEO, MediaType.REEL) and count > 1:
            self.error("mediaUrls", f"mediaType {media_type.value} takes one video file, "
                                    f"got {count} files", "media_type_mismatch")
        for i, info in enumerate(media.infos):
            if info is None:
                continue
            if media_type is MediaType.IMAGE and not info.is_image:
                self.error(f"mediaUrls[{i}]", f"mediaType is image but this file is a video "
                                              f"({info.format}, {info.video_codec or '?'})",
                           "media_type_mismatch")
            elif media_type in (MediaType.VIDEO, MediaType.REEL) and not info.is_video:
                self.error(f"mediaUrls[{i}]", f"mediaType is {media_type.value} but this file "
                                              f"is an image ({info.format})",
                           "media_type_mismatch")

    # --- per account --------------------------------------------------------------------------

    def _account(self, index: int, account_id: str, draft: PostDraft,
                 thread: list[PostDraft], media_failed: bool) -> AccountResult:
        path = f"accountIds[{index}]"
        account = self.accounts.get(account_id)
        if account is None:
            return AccountResult(account_id, None, [Issue(
                path, f"account {account_id!r} was not found in this organization",
                "not_found")])
        issues: list[Issue] = []
        label = f"{account.platform} account {account.name!r}"
        if not account.is_active:
            issues.append(Issue(path, f"{label} is disconnected", "inactive"))
        if account.needs_reconnect:
            issues.append(Issue(path, f"{label} must be reconnected before posting",
                                "needs_reconnect"))
        try:
            platform = self.host.platform(account.platform)
        except NotFound:
            issues.append(Issue(path, f"no plugin is installed for the platform "
                                      f"{account.platform!r}", "unknown_platform"))
            return _split(account_id, account.platform, issues)
        config = self.request.platform_config
        given = config.get(account.platform) if isinstance(config, Mapping) else None
        if given is None or isinstance(given, Mapping):
            # required options: set or not, whatever else is wrong with the object
            issues += options.missing(platform.options, given,
                                      f"platformConfig.{account.platform}",
                                      label=platform.display_name or platform.name)
        if platform.capabilities.threads:
            issues += self._platform_issues(
                platform, attrs.evolve(draft, thread=thread) if thread else draft, account,
                media_failed)
        else:
            issues += self._platform_issues(platform, draft, account, media_failed)
            if thread:
                name = platform.display_name or platform.name
                issues.append(Issue("thread", f"{name} has no threads: the {len(thread)} "
                                              "thread items will be published as separate "
                                              "posts", "no_threads", severity="warning"))
            for item in thread:
                issues += self._platform_issues(platform, item, account, media_failed)
        return _split(account_id, account.platform, issues)

    def _hook(self, draft: PostDraft, account: Account, platform: PlatformBase) -> list[Issue]:
        issues: list[Issue] = []
        for result in self.host.hook.chat33_validate_post(draft=draft, account=account,
                                                          platform=platform):
            if result is not None:
                issues += _as_issues(platform.name, "chat33_validate_post hook", result)
        return issues

    def _platform_issues(self, platform: PlatformBase, draft: PostDraft, account: Account,
                         media_failed: bool) -> list[Issue]:
        """The plugin's rules and the hooks'. When some media could not be inspected the
        plugin judges the rest of the post (text, options) without media, so the user
        still hears about everything else; media issues then come from inspection."""
        if media_failed:
            draft = attrs.evolve(draft, media=(), media_type=None, cover_image=None,
                                 thread=[attrs.evolve(t, media=()) for t in draft.thread])
        found = _call_plugin(platform.name, "validate", platform.validate, draft, account)
        found += _call_plugin(platform.name, "chat33_validate_post hook", self._hook, draft,
                              account, platform)
        if media_failed:
            found = [i for i in found if not _MEDIA_PATH.match(i.path)]
        return found


def _call_plugin(name: str, what: str, fn: Callable[..., Any], *args: Any) -> list[Issue]:
    """Run a plugin's rules: a list of Issue, or a typed error for a broken plugin."""
    try:
        result = fn(*args)
    except ValidationError as exc:  # a plugin that raised instead of returning issues
        return exc.details or [Issue("", exc.message, exc.code)]
    except Chat33Error:
        raise
    except Exception as exc:
        raise PluginError(f"the {name} plugin's {what} failed: {safe_text(exc)}") from exc
    return _as_issues(name, what, result)


def _as_issues(name: str, what: str, result: Any) -> list[Issue]:
    if not isinstance(result, list | tuple) or not all(isinstance(i, Issue) for i in result):
        raise PluginError(f"the {name} plugin's {what} returned {type(result).__name__}, "
                          "not a list of Issue")
    return list(result)


def _split(account_id: str, platform: str | None, issues: Sequence[Issue]) -> AccountResult:
    return AccountResult(
        account_id, platform,
        errors=[i for i in issues if i.severity != "warning"],
        warnings=[i for i in issues if i.severity == "warning"],
    )


def _url_shape_problem(url: str) -> str | None:
    """Only the shape: the address rules belong to the guarded fetch (our own media
    URLs may point at a private address the store answers from disk)."""
    return url_problem(url, allow_private=True)


__all__ = ["MAX_ACCOUNTS", "MAX_MEDIA_URLS", "MAX_THREAD_ITEMS", "SCHEDULE_GRACE",
           "AccountResult", "InspectUrl", "ValidationReport", "media_facts", "parse_schedule",
           "validate_request"]
