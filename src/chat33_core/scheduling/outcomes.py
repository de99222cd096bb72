"""What an attempt's outcome does to its post (and its thread's followers): a status
change through :func:`~chat33_core.states.transition` (``Actor.WORKER``) and the write
that goes with it.

* back to the queue (:meth:`Outcomes.retry`, :meth:`Outcomes.defer`,
  :meth:`Outcomes.wait_reconnect`): QUEUED with the next try's time and why;
* final (:meth:`Outcomes.published`, :meth:`Outcomes.fail`): PUBLISHED or FAILED,
  written with the attempt's logs and the webhook outbox rows in one transaction, only
  while this worker holds the lease; observer hooks run once it is durable.

A thread item the platform gave a receipt for is on the platform: it is PUBLISHED,
whatever happened to the items after it.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs

from .. import metrics, webhooks
from ..errors import TransientError
from ..models import Account, Post, PostStatus, utcnow
from ..platforms import PlatformBase, PublishResult, Receipt
from ..states import Actor, transition
from ..store.connections import WAITING_PREFIX
from .batch import GroupCommit, Writes
from .context import AttemptLog
from .queue import Claim

if TYPE_CHECKING:
    from ..service import Chat33

log = logging.getLogger(__name__)

#: how often a post waiting for its account to be reconnected is looked at again
RECONNECT_RECHECK = timedelta(minutes=5)


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


class Outcomes:
    """Writes the outcomes of one worker's attempts (thread-safe)."""

    def __init__(self, core: Chat33, committer: GroupCommit, outbox_written: threading.Event,
                 *, max_attempts: int, retry_base_s: float, retry_max_s: float) -> None:
        self.core = core
        self.committer = committer
        #: set when a final write added a webhook delivery
        self.outbox_written = outbox_written
        self.max_attempts = max_attempts
        self.retry_base_s = retry_base_s
        self.retry_max_s = retry_max_s

    # --- back to the queue -----------------------------------------------------------------

    def backoff(self, retry_count: int, retry_after: float | None = None) -> float:
        """Seconds before attempt ``retry_count + 1``: exponential with full-range jitter
        in [50 %, 100 %], capped, and never sooner than the platform asked."""
        delay = min(self.retry_max_s, self.retry_base_s * 2 ** max(0, retry_count - 1))
        delay *= random.uniform(0.5, 1.0)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return float(delay)

    def retry(self, claim: Claim, alog: AttemptLog, exc: TransientError,
              prefix: str = "") -> Outcome:
        """Another attempt after the :meth:`backoff`; FAILED after ``max_attempts``."""
        post = claim.post
        attempts = post.retry_count + 1
        if attempts >= self.max_attempts:
            return self.fail(claim, alog, f"gave up after {attempts} attempts: {prefix}"
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

    def defer(self, claim: Claim, alog: AttemptLog, until: datetime, message: str,
              event: str, *, posted: Sequence[Receipt] = (), **data: Any) -> Outcome:
        """The post waits for a limit (a daily cap, a quota, a shared rate limit): back
        to the queue until ``until``, saying so in its log; not an attempt."""
        metrics.record_limit_wait(claim.post.platform)
        alog(event, message, **data, nextAttemptAt=until.isoformat())
        return self._requeue(claim, alog, until, count=False, kind="deferred",
                             message=message, posted=posted)

    def wait_reconnect(self, claim: Claim, alog: AttemptLog, message: str, *,
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

    # --- final ------------------------------------------------------------------------------

    def published(self, claim: Claim, alog: AttemptLog, platform: PlatformBase,
                  result: PublishResult) -> Outcome:
        """PUBLISHED with the platform's receipts (a thread item without one FAILED)."""
        name = platform.display_name or platform.name
        rows = self._final_rows(claim, result.receipts,
                                f"{name} returned no receipt for this thread item")
        head = next((p for p in rows if p.status is PostStatus.PUBLISHED), rows[0])
        alog("published", f"published on {name} as {head.external_post_id}"
             + (f" (thread of {len(rows)})" if len(rows) > 1 else ""),
             externalPostId=head.external_post_id, externalPostUrl=head.external_post_url)
        self._write_final(rows, alog, delete_checkpoint_of=claim.post.id)
        return Outcome("published", claim.post.id)

    def fail(self, claim: Claim, alog: AttemptLog, message: str, *,
             platform_code: str | None = None, posted: Sequence[Receipt] = (),
             reconnect: bool = False, final_checkpoint: bool = True) -> Outcome:
        """FAILED with ``message`` (the thread items in ``posted`` PUBLISHED); with
        ``reconnect`` the account is marked ``needs_reconnect``; without
        ``final_checkpoint`` the checkpoint is kept (a retry resumes from it)."""
        rows = self._final_rows(claim, posted, message)
        alog("failed", message, platformCode=platform_code)
        self._write_final(rows, alog, reconnect_account=claim.post.account_id
                          if reconnect else None,
                          delete_checkpoint_of=claim.post.id if final_checkpoint else None)
        return Outcome("failed", claim.post.id, message)

    @staticmethod
    def _final_rows(claim: Claim, receipts: Sequence[Receipt], failed: str) -> list[Post]:
        """The claim's posts in thread order: PUBLISHED where ``receipts`` has one,
        else FAILED with the message ``failed``."""
        now = utcnow()
        found = _match(claim, receipts)
        rows = []
        for p in (claim.post, *claim.followers):
            r = found.get(p.id)
            if r is not None:
                rows.append(attrs.evolve(
                    p, status=transition(p.status, PostStatus.PUBLISHED, Actor.WORKER),
                    published_at=now, external_post_id=r.external_id,
                    external_post_url=r.external_url, error_message=None, lease_owner=None,
                    lease_expires_at=None, next_attempt_at=None))
            else:
                rows.append(attrs.evolve(
                    p, status=transition(p.status, PostStatus.FAILED, Actor.WORKER),
                    error_message=failed, lease_owner=None, lease_expires_at=None))
        return rows

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


# --- what a post says -------------------------------------------------------------------


def reconnect_text(name: str, account: Account, post_id: str | None,
                   message: str | None = None) -> str:
    """Why the account must be reconnected (``message``, the platform's words, or that
    its access was revoked or has expired) and what its owner does about it (the account
    is marked ``needsReconnect`` in ``GET /accounts`` meanwhile); ``post_id``: the failed
    post to retry then (None: the post waits and goes out once the account is
    reconnected)."""
    why = message if message is not None else (
        f"the {name} account {account.name!r} must be reconnected: its access was revoked "
        "or has expired")
    then = (f", then retry the post (POST /api/v1/posts/{post_id}/retry or `chat33 posts "
            f"retry {post_id}`)" if post_id else "; the post goes out once it is")
    return (f"{why.rstrip('.')}. Reconnect the {name} account {account.name!r} "
            f"({account.id}, shown with needsReconnect: true in GET /api/v1/accounts: POST "
            f"/api/v1/accounts/{account.id}/reconnect or `chat33 accounts reconnect "
            f"{account.id}`; by hand: `chat33 accounts set-token {account.id} --token ...`)"
            f"{then}")


def plugin_error_message(platform: PlatformBase, exc: BaseException) -> str:
    """What a post says when its plugin raised something that is not a chat33 error."""
    name = platform.display_name or platform.name
    module = type(platform).__module__.split(".")[0]
    return (f"the {name} plugin ({module}) failed: {type(exc).__name__}: {exc}. This is "
            "a bug in the plugin, not an answer of the platform; the worker's log has the "
            "traceback")


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
