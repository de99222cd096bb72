"""One publish attempt of one claimed post, and what its outcome does to the post.

:meth:`Publisher.run` builds the :class:`~chat33_core.platforms.PublishContext`
(credentials refreshed before they expire, the worker's shared httpx client, media as
local files, durable checkpoints, a log that writes ``post_logs``), calls the plugin,
and maps its error class to the post's next state:

=======================  ==============================================================
``TransientError``       back to QUEUED, ``retry_count + 1``, next try after exponential
                         backoff with jitter (at least the platform's ``retry_after``);
                         FAILED after ``max_attempts``
``QuotaExceeded``        QUEUED until ``retry_at``; not an attempt (so is a post that
                         would go over a declared ``RateLimit``: see ``limits``)
``Throttled``            the platform's rate limit: QUEUED until its reset, not an
                         attempt, like a declared ``RateLimit`` (``waiting_for_limit``)
``CredentialsExpired``   one refresh and one more try; a refused refresh: as below
a refused refresh        the account marked ``needs_reconnect``; the post waits in
                         QUEUED (not an attempt), looked at again every
                         ``RECONNECT_RECHECK``, with a logged reason; so do the
                         account's other due posts, without calling the platform
``ReconnectRequired``    (from ``publish``) FAILED, the account marked ``needs_reconnect``
``PermanentError``       FAILED with the platform's message (posted thread items keep
                         their receipts and are PUBLISHED)
``UnknownOutcome``       ``platform.confirm``: found -> PUBLISHED; not there -> retry;
                         cannot tell -> FAILED, saying so and naming the account
an ``httpx`` transport   the transport rule (:func:`escaped_transport_error`): a creating
error let through        request (POST, PUT, PATCH) -> as ``UnknownOutcome``; else retry
any other exception      a plugin bug: FAILED naming the plugin and the exception, the
                         traceback in the worker's log; the checkpoint is kept (a bug in
                         ``refresh_credentials`` too)
=======================  ==============================================================

A database that cannot be used right now (:class:`~chat33_core.errors.StoreUnavailable`,
also when a plugin wraps one) is neither the platform's failure nor the post's: it
never makes a post FAILED, never counts as an attempt, and its text (SQL, parameters)
never reaches ``errorMessage`` or the post's logs. Writes are tried again by the
:class:`~.batch.GroupCommit`; an attempt the database interrupted anyway is resumed by
this worker from the post's stored checkpoints, as the next owner would resume it,
once a heartbeat shows the lease is still this worker's; when the database stays away
longer than the lease, the attempt ends with the post still leased, and whichever worker
takes it over after the lease expires resumes it from the checkpoints.

Every final change (PUBLISHED/FAILED) is written with its logs and its webhook outbox
row in one transaction, and only if this worker still holds the lease. Each new status
is asked of :func:`~chat33_core.states.transition` as ``Actor.WORKER`` first (so are the
queue's claims and the worker's release of unstarted posts); a refused move raises
:class:`~chat33_core.errors.InvalidTransition` and writes nothing.
"""

from __future__ import annotations

import functools
import json
import logging
import random
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import httpx

from .. import logs, metrics, webhooks
from ..errors import (
    Chat33Error,
    CredentialsExpired,
    InvalidTransition,
    NotFound,
    PermanentError,
    PlatformError,
    QuotaExceeded,
    ReconnectRequired,
    StoreUnavailable,
    Throttled,
    TransientError,
    UnknownOutcome,
)
from ..http import transport_error
from ..media import MediaInfo
from ..models import Account, Credentials, LogEvent, MediaAsset, Post, PostStatus, utcnow
from ..platforms import (
    MediaFile,
    PlatformBase,
    PublishContext,
    PublishItem,
    PublishResult,
    Receipt,
    RefreshContext,
)
from ..states import Actor, transition
from ..store.connections import WAITING_PREFIX
from ..store.unavailable import behind, safe_text
from .batch import GroupCommit, Writes, pauses, retrying
from .caps import check_cap
from .limits import LimitWait, SharedLimits
from .queue import Claim, LeaseLost, Queue

if TYPE_CHECKING:
    from ..service import Chat33

log = logging.getLogger(__name__)

#: the worker's own state inside a post's checkpoint row (the plugin never sees it)
WORKER_KEY = "_chat33_worker"
#: values a log event's data keeps as they are (anything else goes through JSON)
_PLAIN = frozenset({str, int, bool, type(None)})
_R = TypeVar("_R")
#: how often a post waiting for its account to be reconnected is looked at again
RECONNECT_RECHECK = timedelta(minutes=5)
#: decrypted credentials kept per worker process (by ciphertext)
DECRYPT_CACHE_SIZE = 1024


# --- the context's log and checkpoints ------------------------------------------------------


class AttemptLog:
    """The ``ctx.log`` of one attempt: events are buffered and written at the next
    durable point (a checkpoint save or the final state), in that same transaction."""

    def __init__(self, post_id: str, attempt: int, checkpointed: bool = True) -> None:
        self.post_id = post_id
        self.attempt = attempt
        #: the post may have a checkpoint row (to delete when it is done); False only when
        #: the claim found none and this attempt saved none
        self.checkpointed = checkpointed
        self._events: list[LogEvent] = []
        self._lock = threading.Lock()

    def __call__(self, event: str, message: str, **data: Any) -> None:
        if all(type(v) in _PLAIN for v in data.values()):
            clean = data  # already what JSON gives back
        else:
            try:
                clean = json.loads(json.dumps(data, default=str))
            except (TypeError, ValueError):
                clean = {"repr": repr(data)}
        with self._lock:
            self._events.append(LogEvent(id=None, post_id=self.post_id, event=event[:60],
                                         message=message, attempt=self.attempt, data=clean))

    def drain(self) -> list[LogEvent]:
        with self._lock:
            events, self._events = self._events, []
        return events


class DurableCheckpoints:
    """``ctx.checkpoints`` backed by the ``checkpoints`` table. The worker keeps a little
    state of its own beside the plugin's (e.g. "an outcome is unconfirmed").

    Every save is fenced by the lease (and extends it): a worker whose lease expired, and
    whose post was maybe taken over, must neither overwrite the new owner's checkpoint nor
    go on to the platform call the save precedes; :class:`LeaseLost` ends its attempt.
    Saves go through the worker's :class:`GroupCommit`, with the attempt's buffered logs.
    """

    def __init__(self, core: Chat33, post_id: str, attempt_log: AttemptLog,
                 stored: dict[str, Any] | None, committer: GroupCommit) -> None:
        self.committer = committer
        self.post_id = post_id
        self.attempt_log = attempt_log
        stored = dict(stored) if stored is not None else core.store.load_checkpoint(post_id)
        self.worker: dict[str, Any] = dict(stored.pop(WORKER_KEY, None) or {})
        self.data: dict[str, Any] = stored

    def load(self) -> dict[str, Any]:
        copy: dict[str, Any] = json.loads(json.dumps(self.data))  # callers may mutate it
        return copy

    def save(self, data: Mapping[str, Any]) -> None:
        self.data = json.loads(json.dumps(dict(data), default=str))
        self._write()

    def mark(self, **worker_state: Any) -> None:
        self.worker.update(worker_state)
        self.worker = {k: v for k, v in self.worker.items() if v is not None}
        self._write()

    def _write(self) -> None:
        row = dict(self.data)
        if self.worker:
            row[WORKER_KEY] = self.worker
        self.attempt_log.checkpointed = True
        self.committer.commit(Writes(fence=[self.post_id], checkpoints={self.post_id: row},
                                     logs=self.attempt_log.drain()))


# --- outcomes -------------------------------------------------------------------------------


@attrs.frozen
class Outcome:
    """What an attempt did: ``published``, ``failed``, ``retry``, ``deferred``,
    ``waiting`` (for the account to be reconnected), ``lost``, ``stalled`` (the database
    stayed unavailable; the post stays leased)."""

    kind: str
    post_id: str
    message: str = ""
    #: when the post is tried again (``retry`` and ``deferred``)
    next_attempt_at: datetime | None = None


class Publisher:
    """Runs attempts for one worker. Thread-safe: one instance serves all threads."""

    def __init__(self, core: Chat33, queue: Queue, http: httpx.Client | None = None, *,
                 max_attempts: int | None = None, retry_base_s: float | None = None,
                 retry_max_s: float | None = None) -> None:
        env = core.settings.env
        self.core = core
        self.store = core.store
        self.queue = queue
        self.http = http or httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0),
                                         verify=_ssl_context())
        self.max_attempts = max_attempts or core.settings.max_attempts
        self.retry_base_s = (retry_base_s if retry_base_s is not None
                             else float(env.get("CHAT33_RETRY_BASE_S") or 30.0))
        self.retry_max_s = (retry_max_s if retry_max_s is not None
                            else float(env.get("CHAT33_RETRY_MAX_S") or 3600.0))
        #: the platforms' limits shared by all workers (``PlatformBase.rate_limits``)
        self.limits = SharedLimits(self.store)
        #: the attempts' writes, committed together when they coincide
        self.committer = GroupCommit(self.store, queue.owner, queue.lease)
        self._refresh_locks: dict[str, threading.Lock] = {}
        #: posts this worker has started per channel (daily caps)
        self._in_flight: Counter[str] = Counter()
        self._locks_guard = threading.Lock()
        self._decrypted: dict[str, Credentials] = {}
        #: set when a final write added a webhook delivery: the worker sends it at once
        self.outbox_written = threading.Event()

    def close(self) -> None:
        self.http.close()

    # --- one attempt -------------------------------------------------------------------

    def run(self, claim: Claim) -> Outcome:
        post = claim.post
        attempt = post.retry_count + 1
        alog = AttemptLog(post.id, attempt, checkpointed=claim.checkpoint is None
                          or bool(claim.checkpoint))
        started = time.monotonic()
        if _first_start(claim):
            metrics.record_delay(post.platform, post.scheduled_at or post.created_at, utcnow())
        with logs.context(postId=post.id, accountId=post.account_id, orgId=post.org_id,
                          platform=post.platform, attempt=attempt):
            outcome = self._run_resuming(claim, alog)
            seconds = time.monotonic() - started
            _log_attempt(claim, attempt, outcome, seconds)
        metrics.record_attempt(post.platform, outcome.kind, seconds)
        return outcome

    def _run_resuming(self, claim: Claim, alog: AttemptLog) -> Outcome:
        """:meth:`_run`, resumed from the checkpoints (while the lease holds) when the
        database is briefly unavailable."""
        post = claim.post
        waits: Iterator[float] | None = None
        resume = False
        while True:
            try:
                if resume:
                    # resume as the next owner would: from the stored checkpoints, and
                    # only while the lease is still ours (a final state whose commit lost
                    # its answer may have landed: then the post is no longer leased)
                    if self.queue.heartbeat(claim.ids) < len(claim.ids):
                        raise LeaseLost(f"post {post.id} is no longer leased by "
                                        f"{self.queue.owner}")
                    claim = attrs.evolve(claim, checkpoint=None)
                    alog.checkpointed = True
                return self._run(claim, alog)
            except LeaseLost as exc:
                log.warning("%s", exc)
                return Outcome("lost", post.id, str(exc))
            except StoreUnavailable as exc:
                waits = waits or pauses(self.queue.lease.total_seconds())
                pause = next(waits, None)
                if pause is None:
                    log.error("post %s: the database stayed unavailable (%s); the post "
                              "stays leased and is resumed from its checkpoints after its "
                              "lease expires", post.id, exc.reason)
                    return Outcome("stalled", post.id, exc.message)
                log.warning("post %s: the database is unavailable (%s); resuming the "
                            "attempt in %.2f s", post.id, exc.reason, pause)
            time.sleep(pause)
            resume = True

    def _run(self, claim: Claim, alog: AttemptLog) -> Outcome:
        post = claim.post
        try:
            platform = self.core.host.platform(post.platform)
        except NotFound:
            return self._fail(claim, alog, f"no platform plugin for {post.platform!r} is "
                              "installed on this worker", final_checkpoint=False)
        if claim.account is not None:
            account, enc = claim.account, claim.credentials_enc
        else:
            account, enc = self.store.account_with_credentials(post.account_id)
        name = platform.display_name or platform.name
        if not account.is_active:
            return self._fail(claim, alog, f"the {name} channel {account.name!r} is "
                              "disconnected; connect it again, then retry the post")
        if account.needs_reconnect:
            return self._wait_reconnect(claim, alog, _reconnect_message(name, account,
                                                                        None), found=False)
        if platform.limits.daily_cap is not None:
            # one check at a time per channel in this process, counting what it started
            with self._lock_for("cap:" + account.id):
                decision = check_cap(self.store, platform, account.id, claim.ids, utcnow(),
                                     needed=len(claim.ids), owner=self.queue.owner,
                                     own_in_flight=self._in_flight[account.id])
                if decision is None:
                    self._in_flight[account.id] += len(claim.ids)
            if decision is not None:
                metrics.record_limit_wait(post.platform)
                alog("deferred_daily_cap", decision.message, used=decision.used,
                     cap=decision.cap, nextAttemptAt=decision.until.isoformat())
                return self._requeue(claim, alog, decision.until, count=False,
                                     kind="deferred", message=decision.message)
            try:
                return self._prepare(claim, alog, platform, account, enc)
            finally:
                with self._lock_for("cap:" + account.id):
                    self._in_flight[account.id] -= len(claim.ids)
        return self._prepare(claim, alog, platform, account, enc)

    def _prepare(self, claim: Claim, alog: AttemptLog, platform: PlatformBase,
                 account: Account, enc: str | None) -> Outcome:
        post = claim.post
        name = platform.display_name or platform.name
        if enc is None:
            return self._fail(claim, alog, _reconnect_message(name, account, post.id),
                              reconnect=True)
        credentials = self._decrypt(enc)
        try:
            if platform.needs_refresh(credentials):
                credentials = self._refresh(platform, account, credentials, alog)
            media = [self._media_files(p.media_ids) for p in (post, *claim.followers)]
            items = [PublishItem(post_id=p.id, text=p.text, media=m, position=p.thread_position)
                     for p, m in zip((post, *claim.followers), media, strict=True)]
        except NotFound as exc:
            return self._fail(claim, alog, f"a media file of the post is missing: {exc}")
        except ReconnectRequired as exc:  # the refresh was refused
            return self._wait_reconnect(claim, alog, _reconnect_text(exc.message, name,
                                                                     account, None))
        except TransientError as exc:
            return self._retry(claim, alog, exc)
        except PermanentError as exc:  # the plugin's refresh failed (see _refreshed)
            return self._fail(claim, alog, exc.message, platform_code=exc.platform_code)
        wait = self.limits.reserve(platform, account, len(claim.ids))
        if wait is not None:
            return self._wait_for_limit(claim, alog, platform, wait)
        checkpoints = DurableCheckpoints(self.core, post.id, alog, claim.checkpoint,
                                         self.committer)
        ctx = PublishContext(
            post_id=post.id, account=account, credentials=credentials, items=items,
            media_type=post.media_type, platform_config=post.platform_config, http=self.http,
            settings=self.core.settings, checkpoints=checkpoints, log=alog,
            cover_image=self._cover(post), limits=self.limits.reporter(platform, account))
        return self._publish(claim, alog, platform, ctx, checkpoints)

    def _wait_for_limit(self, claim: Claim, alog: AttemptLog, platform: PlatformBase,
                        wait: LimitWait, posted: Sequence[Receipt] = ()) -> Outcome:
        """The one place a post waits for a platform limit, declared and shared by all
        workers or answered by the platform (``Throttled``): back to the queue until the
        window opens, saying so in its log; not an attempt."""
        metrics.record_limit_wait(platform.name)
        alog("waiting_for_limit", wait.message, limits=list(wait.limits),
             nextAttemptAt=wait.until.isoformat())
        return self._requeue(claim, alog, wait.until, count=False, kind="deferred",
                             message=wait.message, posted=posted)

    def _publish(self, claim: Claim, alog: AttemptLog, platform: PlatformBase,
                 ctx: PublishContext, checkpoints: DurableCheckpoints) -> Outcome:
        name = platform.display_name or platform.name
        account = ctx.account
        refreshed = False
        while True:
            try:
                if checkpoints.worker.get("unconfirmed"):
                    # the last attempt ended without an answer: ask before posting again
                    found = self._confirm(platform, ctx)
                    if found is not None:
                        return self._published(claim, alog, platform, found)
                    checkpoints.mark(unconfirmed=None)
                    alog("confirm", f"{name} says the post is not there; publishing it")
                result = _plugin_call(platform.publish, ctx)
                return self._published(claim, alog, platform, result)
            except StoreUnavailable:
                raise  # not the platform's doing: see run()
            except CredentialsExpired as exc:
                if refreshed:
                    return self._fail(claim, alog, _reconnect_text(
                        exc.message, name, account, claim.post.id), reconnect=True,
                        posted=exc.posted)
                refreshed = True
                alog("credentials_expired", f"{name} refused the token ({exc.message}); "
                     "refreshing it once")
                try:
                    ctx.credentials = self._refresh(platform, account, ctx.credentials, alog,
                                                    force=True)
                except ReconnectRequired as again:
                    if exc.posted:  # thread items are out: they keep their receipts
                        return self._fail(claim, alog, _reconnect_text(
                            again.message, name, account, claim.post.id), reconnect=True,
                            posted=exc.posted)
                    return self._wait_reconnect(claim, alog, _reconnect_text(
                        again.message, name, account, None))
                except TransientError as again:
                    return self._retry(claim, alog, again)
                except PermanentError as again:
                    return self._fail(claim, alog, again.message,
                                      platform_code=again.platform_code, posted=exc.posted)
            except QuotaExceeded as exc:
                until = exc.retry_at or utcnow() + timedelta(hours=1)
                message = (f"deferred: {name} quota reached ({exc.message}); next try at "
                           f"{until.isoformat(timespec='seconds')}")
                metrics.record_limit_wait(claim.post.platform)
                alog("deferred_quota", message, nextAttemptAt=until.isoformat())
                return self._requeue(claim, alog, until, count=False, kind="deferred",
                                     message=message, posted=exc.posted)
            except Throttled as exc:
                return self._wait_for_limit(claim, alog, platform, _throttled(name, exc),
                                            posted=exc.posted)
            except TransientError as exc:
                return self._retry(claim, alog, exc)
            except ReconnectRequired as exc:
                return self._fail(claim, alog, _reconnect_text(
                    exc.message, name, account, claim.post.id), reconnect=True,
                    posted=exc.posted)
            except PermanentError as exc:
                return self._fail(claim, alog, exc.message, platform_code=exc.platform_code,
                                  posted=exc.posted)
            except UnknownOutcome as exc:
                return self._unknown(claim, alog, platform, ctx, checkpoints, exc)
            except LeaseLost:
                raise  # a checkpoint save found the post taken over: stop, write nothing
            except InvalidTransition:
                raise  # the worker's own mistake, not the plugin's: write nothing
            except PlatformError as exc:  # a family member we do not know: be careful
                return self._unknown(claim, alog, platform, ctx, checkpoints,
                                     UnknownOutcome(exc.message, posted=exc.posted))
            except httpx.RequestError as exc:
                # an HTTP failure the plugin let through: the transport rule decides
                error = escaped_transport_error(exc, name)
                if isinstance(error, UnknownOutcome):
                    return self._unknown(claim, alog, platform, ctx, checkpoints, error)
                assert isinstance(error, TransientError)  # the rule's only other answer
                return self._retry(claim, alog, error)
            except Chat33Error as exc:  # NotSupported, ValidationError...: a refusal
                return self._fail(claim, alog, exc.message, final_checkpoint=False)
            except Exception as exc:
                # a bug in the plugin, not an answer of the platform: fail the post with
                # the plugin's error; the checkpoint stays, so a retry once the plugin is
                # fixed resumes instead of publishing again
                log.exception("the %s plugin raised while publishing %s", name, ctx.post_id)
                return self._fail(claim, alog, plugin_error_message(platform, exc),
                                  platform_code=type(exc).__name__, final_checkpoint=False)

    def _unknown(self, claim: Claim, alog: AttemptLog, platform: PlatformBase,
                 ctx: PublishContext, checkpoints: DurableCheckpoints,
                 exc: UnknownOutcome) -> Outcome:
        name = platform.display_name or platform.name
        # durable first: if this worker dies now, the next one confirms before posting
        checkpoints.mark(unconfirmed=True)
        alog("unknown_outcome", f"no answer from {name} after the post was sent "
             f"({exc.message}); asking {name} whether it exists")
        try:
            found = self._confirm(platform, ctx)
        except TransientError as again:
            return self._retry(claim, alog, again, prefix="could not confirm yet: ")
        except PlatformError as again:
            message = (f"{name} did not answer when the post was sent and cannot tell whether "
                       f"it was published ({again.message}); check the {name} account "
                       f"{ctx.account.name!r} before posting it again")
            return self._fail(claim, alog, message, final_checkpoint=False,
                              posted=exc.posted)
        if found is not None:
            return self._published(claim, alog, platform, found)
        checkpoints.mark(unconfirmed=None)
        return self._retry(claim, alog, TransientError(
            f"{name} confirmed the post is not there after an unanswered request "
            f"({exc.message})", posted=exc.posted))

    def _confirm(self, platform: PlatformBase, ctx: PublishContext) -> PublishResult | None:
        try:
            return _plugin_call(platform.confirm, ctx)
        except (PlatformError, StoreUnavailable):
            raise
        except Exception as exc:
            raise UnknownOutcome(safe_text(exc)) from exc

    # --- credentials ----------------------------------------------------------------------

    def _decrypt(self, enc: str) -> Credentials:
        """Decrypted credentials, cached by their ciphertext: the same ciphertext always
        decrypts to the same value, and a refresh stores a new ciphertext, so the cache
        can never hand out stale credentials (refreshes still go through
        :meth:`_refresh`'s compare-and-set)."""
        with self._locks_guard:
            cached = self._decrypted.get(enc)
        if cached is not None:
            # a copy of the one mutable part: threads must not share it
            return attrs.evolve(cached, extra=dict(cached.extra))
        credentials = self.core.vault.decrypt_credentials(enc)
        with self._locks_guard:
            if len(self._decrypted) >= DECRYPT_CACHE_SIZE:
                self._decrypted.clear()
            self._decrypted[enc] = attrs.evolve(credentials, extra=dict(credentials.extra))
        return credentials

    def _lock_for(self, account_id: str) -> threading.Lock:
        with self._locks_guard:
            return self._refresh_locks.setdefault(account_id, threading.Lock())

    def _refresh(self, platform: PlatformBase, account: Account, credentials: Credentials,
                 alog: AttemptLog, *, force: bool = False) -> Credentials:
        """Refresh through the plugin and store the result encrypted, compare-and-set on
        the stored value: when another worker refreshed meanwhile its (possibly rotated)
        tokens win and are used, so a rotating refresh token is never lost. Refreshes of
        one account are serialized in this process, and on PostgreSQL across machines by
        locking the account row."""
        vault = self.core.vault
        fresh: Credentials | None = None
        fresh_enc = current_enc = None
        try:
            with self._lock_for(account.id), self.store.credentials_held(account.id) as held:
                current_enc = held.current
                if current_enc is None:
                    raise ReconnectRequired("the account has no credentials")
                current = vault.decrypt_credentials(current_enc)
                if current.access_token != credentials.access_token and (
                        force or not platform.needs_refresh(current)):
                    metrics.record_token_refresh(platform.name, "reused")
                    return current  # someone refreshed already
                fresh = current.replaced_by(_refreshed(platform, current, RefreshContext(
                    account=account, http=self.http, settings=self.core.settings)))
                fresh_enc = vault.encrypt_credentials(fresh)
                stored = held.replace(fresh_enc)
        except StoreUnavailable:
            if fresh is None or fresh_enc is None:
                raise  # the platform was not asked: nothing new to keep
            # the platform may have rotated the refresh token (the old one is spent):
            # the new tokens must be stored, in a transaction of their own
            stored = retrying(functools.partial(self.store.set_account_credentials_enc,
                                                account.id, fresh_enc, current_enc),
                              self.queue.lease.total_seconds(),
                              lambda: f"the refreshed credentials of {account.id}")
        if not stored:
            # lost the race to another process (or our commit landed unanswered): use
            # what is stored
            latest = self.store.account_credentials_enc(account.id)
            return vault.decrypt_credentials(latest) if latest else fresh
        alog("credentials_refreshed", f"{platform.display_name or platform.name} access "
             "token refreshed")
        return fresh

    # --- media ------------------------------------------------------------------------------

    def _media_files(self, ids: Sequence[str]) -> list[MediaFile]:
        return [self._media_file(self.store.get_media(media_id)) for media_id in ids]

    def _media_file(self, asset: MediaAsset) -> MediaFile:
        """The file read through the media store (a local copy when it lives in an
        object store), with a URL a platform can pull it from."""
        files = self.core.media.files
        return MediaFile(path=files.local_file(asset.name), info=MediaInfo.from_dict(asset.info),
                         url=files.fetch_url(asset.name), name=asset.name)

    def _cover(self, post: Post) -> MediaFile | None:
        if not post.cover_image_url:
            return None
        asset = self.store.find_media_by_url(post.org_id, post.cover_image_url)
        try:
            return None if asset is None else self._media_file(asset)
        except NotFound:
            return None

    # --- outcomes ---------------------------------------------------------------------------

    def backoff(self, retry_count: int, retry_after: float | None = None) -> float:
        """Seconds before attempt ``retry_count + 1``: exponential with full-range jitter
        in [50 %, 100 %], capped, and never sooner than the platform asked."""
        delay = min(self.retry_max_s, self.retry_base_s * 2 ** max(0, retry_count - 1))
        delay *= random.uniform(0.5, 1.0)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return float(delay)

    def _retry(self, claim: Claim, alog: AttemptLog, exc: TransientError,
               prefix: str = "") -> Outcome:
        post = claim.post
        attempts = post.retry_count + 1
        if attempts >= self.max_attempts:
            return self._fail(claim, alog, f"gave up after {attempts} attempts: {prefix}"
                              f"{exc.message}", platform_code=exc.platform_code,
                              posted=exc.posted, final_checkpoint=False)
        delay = self.backoff(attempts, exc.retry_after)
        until = utcnow() + timedelta(seconds=delay)
        message = (f"attempt {attempts} failed: {prefix}{exc.message}; retry {attempts + 1} of "
                   f"{self.max_attempts} at {until.isoformat(timespec='seconds')}")
        alog("retry_scheduled", message, retryCount=attempts, nextAttemptAt=until.isoformat(),
             delayS=round(delay, 3), platformCode=exc.platform_code)
        return self._requeue(claim, alog, until, count=True, kind="retry", message=message,
                             posted=exc.posted)

    def _requeue(self, claim: Claim, alog: AttemptLog, until: datetime, *, count: bool,
                 kind: str, message: str, posted: Sequence[Receipt] = (),
                 reconnect: str | None = None,
                 events: Sequence[tuple[Post, dict[str, Any]]] = ()) -> Outcome:
        receipts = _match(claim, posted)
        rows = []
        for p in (claim.post, *claim.followers):
            r = receipts.get(p.id)
            rows.append(attrs.evolve(
                p, status=transition(p.status, PostStatus.QUEUED, Actor.WORKER),
                lease_owner=None, lease_expires_at=None, next_attempt_at=until,
                error_message=message if kind in ("retry", "waiting") else None,
                retry_count=p.retry_count + (1 if count else 0),
                external_post_id=r.external_id if r else p.external_post_id,
                external_post_url=r.external_url if r else p.external_post_url))
        self.committer.commit(Writes(finish=rows, logs=alog.drain(),
                                     reconnect=[reconnect] if reconnect else [],
                                     events=list(events),
                                     after=[self._written] if events else []), wait=False)
        return Outcome(kind, claim.post.id, message, next_attempt_at=until)

    def _wait_reconnect(self, claim: Claim, alog: AttemptLog, message: str, *,
                        found: bool = True) -> Outcome:
        """The account must be reconnected: mark it, and leave the post QUEUED (not an
        attempt) until the next look in ``RECONNECT_RECHECK``. ``found``: this attempt
        found it out (the platform refused a refresh): the ``account.needs_reconnect``
        webhook goes to the post's ``callbackUrl``."""
        until = utcnow() + RECONNECT_RECHECK
        text = f"{WAITING_PREFIX}: {message}"
        alog("waiting_reconnect", text, nextAttemptAt=until.isoformat())
        post = claim.post
        event = [(post, webhooks.needs_reconnect_payload(post, message))] if found else []
        return self._requeue(claim, alog, until, count=False, kind="waiting", message=text,
                             reconnect=post.account_id, events=event)

    def _published(self, claim: Claim, alog: AttemptLog, platform: PlatformBase,
                   result: PublishResult) -> Outcome:
        now = utcnow()
        receipts = _match(claim, result.receipts)
        name = platform.display_name or platform.name
        rows = []
        missing = []
        for p in (claim.post, *claim.followers):
            r = receipts.get(p.id)
            if r is None:
                missing.append(p)
                continue
            rows.append(attrs.evolve(
                p, status=transition(p.status, PostStatus.PUBLISHED, Actor.WORKER),
                published_at=now, external_post_id=r.external_id,
                external_post_url=r.external_url, error_message=None, lease_owner=None,
                lease_expires_at=None, next_attempt_at=None))
        for p in missing:
            rows.append(attrs.evolve(
                p, status=transition(p.status, PostStatus.FAILED, Actor.WORKER), lease_owner=None,
                lease_expires_at=None,
                error_message=f"{name} returned no receipt for this thread item"))
        head = rows[0]
        alog("published", f"published on {name} as {head.external_post_id}"
             + (f" (thread of {len(rows)})" if len(rows) > 1 else ""),
             externalPostId=head.external_post_id, externalPostUrl=head.external_post_url)
        self._write_final(rows, alog, delete_checkpoint_of=claim.post.id)
        return Outcome("published", claim.post.id)

    def _fail(self, claim: Claim, alog: AttemptLog, message: str, *,
              platform_code: str | None = None, posted: Sequence[Receipt] = (),
              reconnect: bool = False, final_checkpoint: bool = True) -> Outcome:
        now = utcnow()
        receipts = _match(claim, posted)
        rows = []
        for p in (claim.post, *claim.followers):
            r = receipts.get(p.id)
            if r is not None:
                # already on the platform: it is published, whatever happened after it
                rows.append(attrs.evolve(
                    p, status=transition(p.status, PostStatus.PUBLISHED, Actor.WORKER),
                    published_at=now, external_post_id=r.external_id,
                    external_post_url=r.external_url, error_message=None, lease_owner=None,
                    lease_expires_at=None))
            else:
                rows.append(attrs.evolve(
                    p, status=transition(p.status, PostStatus.FAILED, Actor.WORKER),
                    error_message=message, lease_owner=None, lease_expires_at=None))
        alog("failed", message, platformCode=platform_code)
        self._write_final(rows, alog, reconnect_account=claim.post.account_id
                          if reconnect else None,
                          delete_checkpoint_of=claim.post.id if final_checkpoint else None)
        return Outcome("failed", claim.post.id, message)

    def _write_final(self, rows: Sequence[Post], alog: AttemptLog, *,
                     reconnect_account: str | None = None,
                     delete_checkpoint_of: str | None = None) -> None:
        """The attempt's final state, logs and outbox rows, in one transaction shared with
        other threads' writes; this thread does not wait for it when another thread is
        committing (see :meth:`GroupCommit.commit`). Observer hooks run once it is
        durable."""
        writes = Writes(finish=list(rows), logs=alog.drain(),
                        hooks=[p for p in rows if p.callback_url],
                        reconnect=[reconnect_account] if reconnect_account else [],
                        drop_checkpoints=[delete_checkpoint_of]
                        if delete_checkpoint_of and alog.checkpointed else [],
                        after=[self._written])
        self.committer.commit(writes, wait=False)

    def _written(self, writes: Writes) -> None:
        if writes.hooks_added:
            self.outbox_written.set()
        for p in writes.finish:
            self._notify(p)

    def _notify(self, post: Post) -> None:
        hook = self.core.host.hook
        try:
            if post.status is PostStatus.PUBLISHED:
                hook.chat33_post_published(post=post)
            elif post.status is PostStatus.FAILED:
                hook.chat33_post_failed(post=post)
        except Exception:
            log.exception("a chat33 observer hook failed for post %s", post.id)


#: methods whose lost answer may hide something created on the platform
CREATING_METHODS = frozenset({"POST", "PUT", "PATCH"})


def escaped_transport_error(exc: httpx.RequestError, name: str) -> PlatformError:
    """:func:`chat33_core.http.transport_error` for an httpx error a plugin let through,
    without saying whether its request creates the post: POST, PUT and PATCH count as
    creating requests (a lost answer is an unknown outcome), others not."""
    try:
        method, what = exc.request.method, f"{exc.request.method} {exc.request.url.path}"
    except RuntimeError:  # an error raised without its request
        method, what = "", "a request"
    return transport_error(exc, platform=name, what=what, creates=method in CREATING_METHODS)


def _throttled(name: str, exc: Throttled) -> LimitWait:
    """The wait a platform's rate limit asks for, as a declared limit's."""
    until = utcnow() + timedelta(seconds=exc.retry_after or 0.0)
    return LimitWait(until=until, limits=(exc.platform_code or "rate-limit",),
                     message=f"waiting for {name}'s rate limit ({exc.message}); next try at "
                     f"{until.isoformat(timespec='seconds')}")


def _refreshed(platform: PlatformBase, credentials: Credentials,
               ctx: RefreshContext) -> Credentials:
    """:func:`_plugin_refresh`, counted by outcome (``chat33_token_refreshes_total``)."""
    try:
        fresh = _plugin_refresh(platform, credentials, ctx)
    except ReconnectRequired:
        metrics.record_token_refresh(platform.name, "reconnect")
        raise
    except TransientError:
        metrics.record_token_refresh(platform.name, "transient")
        raise
    except PermanentError:
        metrics.record_token_refresh(platform.name, "failed")
        raise
    metrics.record_token_refresh(platform.name, "refreshed")
    return fresh


def _plugin_refresh(platform: PlatformBase, credentials: Credentials,
                    ctx: RefreshContext) -> Credentials:
    """``platform.refresh_credentials``, whose failures are one of three:
    ``ReconnectRequired``, ``TransientError`` (an unanswered token request too: it
    creates no post), or ``PermanentError`` for anything else (a plugin bug named as
    such, logged with its traceback)."""
    name = platform.display_name or platform.name
    try:
        return platform.refresh_credentials(credentials, ctx)
    except (ReconnectRequired, TransientError):
        raise
    except httpx.RequestError as exc:  # a token request creates no post: retry
        raise transport_error(exc, platform=name, what="token refresh",
                              creates=False) from exc
    except Chat33Error as exc:
        raise PermanentError(f"refreshing the {name} token failed: {exc.message}",
                             platform_code=getattr(exc, "platform_code", None)) from exc
    except Exception as exc:
        log.exception("the %s plugin raised while refreshing a token", name)
        raise PermanentError(plugin_error_message(platform, exc),
                             platform_code=type(exc).__name__) from exc


def plugin_error_message(platform: PlatformBase, exc: BaseException) -> str:
    """What a post says when its plugin raised something that is not a chat33 error."""
    name = platform.display_name or platform.name
    module = type(platform).__module__.split(".")[0]
    return (f"the {name} plugin ({module}) failed: {type(exc).__name__}: {exc}. This is "
            "a bug in the plugin, not an answer of the platform; the worker's log has the "
            "traceback")


def _first_start(claim: Claim) -> bool:
    """The start of a post's first attempt: not a retry, a takeover or a deferral (whose
    ``next_attempt_at`` moved past the schedule)."""
    post = claim.post
    return (post.retry_count == 0 and claim.taken_over_from is None
            and post.next_attempt_at == post.scheduled_at)


def _log_attempt(claim: Claim, attempt: int, outcome: Outcome, seconds: float) -> None:
    """One INFO line per attempt: what an operator tails to see the worker work."""
    if not log.isEnabledFor(logging.INFO):
        return  # a worker run at WARNING pays nothing for the line
    post = claim.post
    thread = f" (+{len(claim.followers)} thread items)" if claim.followers else ""
    line = (f"post {post.id}{thread} on {post.platform}, attempt {attempt}: {outcome.kind} "
            f"in {seconds:.2f} s")
    if outcome.next_attempt_at is not None:
        line += f"; next attempt at {outcome.next_attempt_at.isoformat(timespec='seconds')}"
    if outcome.message and outcome.kind != "published":
        line += f" ({outcome.message})"
    log.info("%s", line)


def _plugin_call(method: Callable[[PublishContext], _R], ctx: PublishContext) -> _R:
    """``method(ctx)``, a plugin's publish or confirm: a failure caused by an unavailable
    database (a checkpoint save, however the plugin wrapped it) comes out as the
    :class:`StoreUnavailable` it is, not as the platform error the plugin made of it."""
    try:
        return method(ctx)
    except StoreUnavailable:
        raise
    except Exception as exc:
        fault = behind(exc)
        if fault is None:
            raise
        raise StoreUnavailable(reason=fault.reason) from exc


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """Loading the CA bundle is slow (~0.1 s): once per process."""
    return httpx.create_ssl_context()


def _match(claim: Claim, receipts: Sequence[Receipt]) -> dict[str, Receipt]:
    """Receipts by post id: by ``Receipt.post_id`` when given, else by thread order."""
    posts = [claim.post, *claim.followers]
    ids = {p.id for p in posts}
    found: dict[str, Receipt] = {}
    for index, receipt in enumerate(receipts):
        if receipt.post_id and receipt.post_id in ids:
            found[receipt.post_id] = receipt
        elif not receipt.post_id and index < len(posts):
            found.setdefault(posts[index].id, receipt)
    return found


def _reconnect_message(name: str, account: Account, post_id: str | None) -> str:
    return (f"the {name} account {account.name!r} must be reconnected: its access was "
            f"revoked or has expired. {_reconnect_hint(name, account, post_id)}")


def _reconnect_text(message: str, name: str, account: Account, post_id: str | None) -> str:
    return f"{message.rstrip('.')}. {_reconnect_hint(name, account, post_id)}"


def _reconnect_hint(name: str, account: Account, post_id: str | None) -> str:
    """What the owner does about refused credentials (the account is marked
    ``needsReconnect`` in ``GET /accounts`` meanwhile); ``post_id``: the failed post to
    retry then (None: the post waits and goes out once the account is reconnected)."""
    then = (f", then retry the post (POST /api/v1/posts/{post_id}/retry or `chat33 posts "
            f"retry {post_id}`)" if post_id else "; the post goes out once it is")
    return (f"Reconnect the {name} account {account.name!r} ({account.id}, shown with "
            f"needsReconnect: true in GET /api/v1/accounts: POST /api/v1/accounts/"
            f"{account.id}/reconnect or `chat33 accounts reconnect {account.id}`; by hand: "
            f"`chat33 accounts set-token {account.id} --token ...`){then}")
