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

The attempt is this module; its parts are their own: the context's log, checkpoints and
media (:mod:`.context`), the account's credentials (:mod:`.credentials`), the per-channel
caps (:mod:`.caps`), unknown outcomes (:mod:`.confirming`) and what each outcome writes
(:mod:`.outcomes`).
"""

from __future__ import annotations

import functools
import logging
import ssl
import threading
import time
from datetime import timedelta
from typing import TYPE_CHECKING

import attrs
import httpx

from .. import logs, metrics
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
from ..models import Account, utcnow
from ..platforms import PlatformBase, PublishContext
from .batch import GroupCommit, retrying
from .caps import CapGate
from .confirming import confirm, escaped_transport_error, plugin_call, settle_unknown
from .context import AttemptLog, DurableCheckpoints, cover_image, publish_items
from .credentials import AccountCredentials
from .limits import LimitWait, SharedLimits
from .outcomes import Outcome, Outcomes, plugin_error_message, reconnect_text
from .queue import Claim, LeaseLost, Queue

if TYPE_CHECKING:
    from ..service import Chat33

log = logging.getLogger(__name__)


class Publisher:
    """Runs attempts for one worker. Thread-safe: one instance serves all threads."""

    def __init__(self, core: Chat33, queue: Queue, http: httpx.Client | None = None, *,
                 max_attempts: int | None = None, retry_base_s: float | None = None,
                 retry_max_s: float | None = None) -> None:
        env = core.settings.env
        self.core = core
        self.queue = queue
        self.http = http or httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0),
                                         verify=_ssl_context())
        #: the platforms' limits shared by all workers (``PlatformBase.rate_limits``)
        self.limits = SharedLimits(core.store)
        #: the attempts' writes, committed together when they coincide
        self.committer = GroupCommit(core.store, queue.owner, queue.lease)
        #: set when a final write added a webhook delivery: the worker sends it at once
        self.outbox_written = threading.Event()
        self.outcomes = Outcomes(
            core, self.committer, self.outbox_written,
            max_attempts=max_attempts or core.settings.max_attempts,
            retry_base_s=(retry_base_s if retry_base_s is not None
                          else float(env.get("CHAT33_RETRY_BASE_S") or 30.0)),
            retry_max_s=(retry_max_s if retry_max_s is not None
                         else float(env.get("CHAT33_RETRY_MAX_S") or 3600.0)))
        self.credentials = AccountCredentials(core, self.http, queue.lease)
        self.caps = CapGate(core.store, queue.owner)

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
        tries = 0

        def attempt() -> Outcome:
            nonlocal claim, tries
            tries += 1
            if tries > 1:
                # resume as the next owner would: from the stored checkpoints, and only
                # while the lease is still ours (a final state whose commit lost its
                # answer may have landed: then the post is no longer leased)
                if self.queue.heartbeat(claim.ids) < len(claim.ids):
                    raise LeaseLost(f"post {post.id} is no longer leased by "
                                    f"{self.queue.owner}")
                claim = attrs.evolve(claim, checkpoint=None)
                alog.checkpointed = True
            return self._run(claim, alog)

        try:
            return retrying(attempt, self.queue.lease.total_seconds(),
                            lambda: f"the attempt of post {post.id} (resuming it)")
        except LeaseLost as exc:
            log.warning("%s", exc)
            return Outcome("lost", post.id, str(exc))
        except StoreUnavailable as exc:
            log.error("post %s: the database stayed unavailable (%s); the post stays "
                      "leased and is resumed from its checkpoints after its lease expires",
                      post.id, exc.reason)
            return Outcome("stalled", post.id, exc.message)

    def _run(self, claim: Claim, alog: AttemptLog) -> Outcome:
        post = claim.post
        try:
            platform = self.core.host.platform(post.platform)
        except NotFound:
            return self.outcomes.fail(claim, alog, f"no platform plugin for {post.platform!r} "
                                      "is installed on this worker", final_checkpoint=False)
        account, enc = self.credentials.load(claim)
        name = platform.display_name or platform.name
        if not account.is_active:
            return self.outcomes.fail(claim, alog, f"the {name} channel {account.name!r} is "
                                      "disconnected; connect it again, then retry the post")
        if account.needs_reconnect:
            return self.outcomes.wait_reconnect(claim, alog, reconnect_text(name, account, None),
                                                found=False)
        if platform.limits.daily_cap is None:
            return self._prepare(claim, alog, platform, account, enc)
        with self.caps.started(platform, account.id, claim.ids) as decision:
            if decision is not None:
                return self.outcomes.defer(claim, alog, decision.until, decision.message,
                                           "deferred_daily_cap", used=decision.used,
                                           cap=decision.cap)
            return self._prepare(claim, alog, platform, account, enc)

    def _prepare(self, claim: Claim, alog: AttemptLog, platform: PlatformBase,
                 account: Account, enc: str | None) -> Outcome:
        post = claim.post
        name = platform.display_name or platform.name
        if enc is None:
            return self.outcomes.fail(claim, alog, reconnect_text(name, account, post.id),
                                      reconnect=True)
        credentials = self.credentials.decrypt(enc)
        try:
            if platform.needs_refresh(credentials):
                credentials = self.credentials.refresh(platform, account, credentials, alog)
            items = publish_items(self.core, (post, *claim.followers))
        except NotFound as exc:
            return self.outcomes.fail(claim, alog, f"a media file of the post is missing: {exc}")
        except ReconnectRequired as exc:  # the refresh was refused
            return self.outcomes.wait_reconnect(claim, alog, reconnect_text(
                name, account, None, exc.message))
        except TransientError as exc:
            return self.outcomes.retry(claim, alog, exc)
        except PermanentError as exc:  # the plugin's refresh failed (see .credentials)
            return self.outcomes.fail(claim, alog, exc.message, platform_code=exc.platform_code)
        wait = self.limits.reserve(platform, account, len(claim.ids))
        if wait is not None:
            # the one place a post waits for a platform limit shared by all workers
            return self.outcomes.defer(claim, alog, wait.until, wait.message,
                                       "waiting_for_limit", limits=list(wait.limits))
        checkpoints = DurableCheckpoints(self.core.store, post.id, alog, claim.checkpoint,
                                         self.committer)
        ctx = PublishContext(
            post_id=post.id, account=account, credentials=credentials, items=items,
            media_type=post.media_type, platform_config=post.platform_config, http=self.http,
            settings=self.core.settings, checkpoints=checkpoints, log=alog,
            cover_image=cover_image(self.core, post),
            limits=self.limits.reporter(platform, account))
        return self._publish(claim, alog, platform, ctx, checkpoints)

    def _publish(self, claim: Claim, alog: AttemptLog, platform: PlatformBase,
                 ctx: PublishContext, checkpoints: DurableCheckpoints) -> Outcome:
        """Publish (asking first when the last attempt's outcome is unconfirmed) and map
        what the plugin raised to the post's next state (see the module's table)."""
        name = platform.display_name or platform.name
        account = ctx.account
        outcomes = self.outcomes
        refreshed = False
        while True:
            try:
                if checkpoints.worker.get("unconfirmed"):
                    # the last attempt ended without an answer: ask before posting again
                    found = confirm(platform, ctx)
                    if found is not None:
                        return outcomes.published(claim, alog, platform, found)
                    checkpoints.mark(unconfirmed=None)
                    alog("confirm", f"{name} says the post is not there; publishing it")
                result = plugin_call(platform.publish, ctx)
                return outcomes.published(claim, alog, platform, result)
            except StoreUnavailable:
                raise  # not the platform's doing: see run()
            except CredentialsExpired as exc:
                if refreshed:
                    return outcomes.fail(claim, alog, reconnect_text(
                        name, account, claim.post.id, exc.message), reconnect=True,
                        posted=exc.posted)
                refreshed = True
                alog("credentials_expired", f"{name} refused the token ({exc.message}); "
                     "refreshing it once")
                try:
                    ctx.credentials = self.credentials.refresh(
                        platform, account, ctx.credentials, alog, force=True)
                except ReconnectRequired as again:
                    if exc.posted:  # thread items are out: they keep their receipts
                        return outcomes.fail(claim, alog, reconnect_text(
                            name, account, claim.post.id, again.message), reconnect=True,
                            posted=exc.posted)
                    return outcomes.wait_reconnect(claim, alog, reconnect_text(
                        name, account, None, again.message))
                except TransientError as again:
                    return outcomes.retry(claim, alog, again)
                except PermanentError as again:
                    return outcomes.fail(claim, alog, again.message,
                                         platform_code=again.platform_code, posted=exc.posted)
            except QuotaExceeded as exc:
                until = exc.retry_at or utcnow() + timedelta(hours=1)
                message = (f"deferred: {name} quota reached ({exc.message}); next try at "
                           f"{until.isoformat(timespec='seconds')}")
                return outcomes.defer(claim, alog, until, message, "deferred_quota",
                                      posted=exc.posted)
            except Throttled as exc:
                wait = _throttled(name, exc)
                return outcomes.defer(claim, alog, wait.until, wait.message,
                                      "waiting_for_limit", limits=list(wait.limits),
                                      posted=exc.posted)
            except TransientError as exc:
                return outcomes.retry(claim, alog, exc)
            except ReconnectRequired as exc:
                return outcomes.fail(claim, alog, reconnect_text(
                    name, account, claim.post.id, exc.message), reconnect=True,
                    posted=exc.posted)
            except PermanentError as exc:
                return outcomes.fail(claim, alog, exc.message, platform_code=exc.platform_code,
                                     posted=exc.posted)
            except UnknownOutcome as exc:
                return settle_unknown(outcomes, claim, alog, platform, ctx, checkpoints, exc)
            except LeaseLost:
                raise  # a checkpoint save found the post taken over: stop, write nothing
            except InvalidTransition:
                raise  # the worker's own mistake, not the plugin's: write nothing
            except PlatformError as exc:  # a family member we do not know: be careful
                return settle_unknown(outcomes, claim, alog, platform, ctx, checkpoints,
                                      UnknownOutcome(exc.message, posted=exc.posted))
            except httpx.RequestError as exc:
                # an HTTP failure the plugin let through: the transport rule decides
                error = escaped_transport_error(exc, name)
                if isinstance(error, UnknownOutcome):
                    return settle_unknown(outcomes, claim, alog, platform, ctx, checkpoints,
                                          error)
                assert isinstance(error, TransientError)  # the rule's only other answer
                return outcomes.retry(claim, alog, error)
            except Chat33Error as exc:  # NotSupported, ValidationError...: a refusal
                return outcomes.fail(claim, alog, exc.message, final_checkpoint=False)
            except Exception as exc:
                # a bug in the plugin, not an answer of the platform: fail the post with
                # the plugin's error; the checkpoint stays, so a retry once the plugin is
                # fixed resumes instead of publishing again
                log.exception("the %s plugin raised while publishing %s", name, ctx.post_id)
                return outcomes.fail(claim, alog, plugin_error_message(platform, exc),
                                     platform_code=type(exc).__name__, final_checkpoint=False)


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


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """Loading the CA bundle is slow (~0.1 s): once per process."""
    return httpx.create_ssl_context()


def _throttled(name: str, exc: Throttled) -> LimitWait:
    """The wait a platform's rate limit asks for, as a declared limit's."""
    until = utcnow() + timedelta(seconds=exc.retry_after or 0.0)
    return LimitWait(until=until, limits=(exc.platform_code or "rate-limit",),
                     message=f"waiting for {name}'s rate limit ({exc.message}); next try at "
                     f"{until.isoformat(timespec='seconds')}")
