"""The worker: claims due posts, publishes them on a thread pool, delivers webhooks.

* **No tick.** The loop sleeps until the next due time (a ``scheduledAt``, a backoff, a
  lease expiry, a webhook retry) and wakes early for new work: PostgreSQL ``LISTEN
  chat33_posts`` (a trigger notifies when a post becomes QUEUED), a short poll on
  SQLite, and at once when one of its own jobs ends.
* **Leases.** Claimed posts carry this worker's id and a lease expiry; a heartbeat
  thread extends the leases of everything it holds every third of the lease, so long
  uploads keep their post. A worker that dies (SIGKILL) stops heart-beating; its posts'
  leases expire and another worker takes them over from their checkpoints.
* **Prefetch.** Up to ``concurrency`` + max(``concurrency``, 16) posts are held
  (running and ready), and claims are made in batches when no more than
  ``concurrency`` are held: one claim transaction serves many posts.
* **Graceful stop** (SIGTERM, SIGINT, :meth:`Worker.stop`): no more claims; posts not
  started go back to the queue; in-flight posts get ``grace_s`` to finish; leases of
  any still running are released: they expire ``settle_s`` later (time for a request cut
  off mid-flight to land on the platform), and the next worker resumes them.
"""

from __future__ import annotations

import functools
import logging
import os
import secrets
import signal
import socket
import threading
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ..errors import StoreUnavailable
from ..models import LogEvent, PostStatus, utcnow
from ..states import Actor, transition
from ..webhooks import WebhookDispatcher
from .batch import retrying
from .outcomes import Outcome
from .publisher import Publisher
from .queue import Claim, Queue

if TYPE_CHECKING:
    from ..service import Chat33

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "chat33_posts"
#: how often a busy worker looks at the webhook outbox for deliveries it did not write
WEBHOOK_CHECK_S = 0.1
#: the smallest claim batch while a backlog lasts (see ``Worker.window``)
PREFETCH = 16
#: with ``once``, claims tried in a row on a database that fails before giving up
ONCE_CLAIM_TRIES = 3


def default_worker_id() -> str:
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(3)}"


class Worker:
    """One worker process's scheduler. ``run()`` blocks until stopped (or, with
    ``once``, until nothing is due and nothing is in flight) and returns an exit code.

    Tuning from the environment (``Settings.env``): ``CHAT33_WORKER_LEASE_S`` (60),
    ``CHAT33_WORKER_POLL_S`` (0.5 on SQLite; PostgreSQL listens and rechecks every 10 s),
    ``CHAT33_WORKER_GRACE_S`` (20), ``CHAT33_WORKER_SETTLE_S`` (5),
    ``CHAT33_RETRY_BASE_S`` (30), ``CHAT33_RETRY_MAX_S``
    (3600), ``CHAT33_MAX_ATTEMPTS`` (5), ``CHAT33_WEBHOOK_RETRY_SCHEDULE_S``.
    """

    def __init__(self, core: Chat33, *, concurrency: int = 4, worker_id: str | None = None,
                 lease_s: float | None = None, poll_s: float | None = None,
                 grace_s: float | None = None, once: bool = False,
                 webhook_concurrency: int = 2, listen: bool = True) -> None:
        env = core.settings.env
        self.core = core
        self.store = core.store
        self.concurrency = max(1, concurrency)
        self.id = (worker_id or default_worker_id())[:100]
        self.lease_s = lease_s if lease_s is not None else float(
            env.get("CHAT33_WORKER_LEASE_S") or 60.0)
        default_poll = 10.0 if self.store.is_postgres and listen else 0.5
        self.poll_s = poll_s if poll_s is not None else float(
            env.get("CHAT33_WORKER_POLL_S") or default_poll)
        self.grace_s = grace_s if grace_s is not None else float(
            env.get("CHAT33_WORKER_GRACE_S") or 20.0)
        #: a released lease expires this much later (see the module's docstring)
        self.settle_s = float(env.get("CHAT33_WORKER_SETTLE_S") or 5.0)
        self.once = once
        self.listen = listen and self.store.is_postgres
        self.queue = Queue(self.store, self.id, self.lease_s)
        #: posts held at most (running + ready); a claim is made when no more than
        #: ``concurrency`` are held, so one claim transaction serves at least
        #: PREFETCH posts of a backlog
        self.window = self.concurrency + max(self.concurrency, PREFETCH)
        self.publisher = Publisher(core, self.queue)
        self.webhooks = WebhookDispatcher(core.settings, core.store,
                                          core.webhook_signing_secrets, self.id)
        self.webhook_concurrency = max(1, webhook_concurrency)
        self.stats: Counter[str] = Counter()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._jobs: dict[str, tuple[Future[Outcome], Claim]] = {}
        self._started: set[str] = set()
        self._hooks: dict[str, Future[bool]] = {}
        #: when the webhook outbox is looked at next (monotonic); a delivery written by
        #: this worker's own publishes (``publisher.outbox_written``) makes it "now"
        self._hooks_check_at = 0.0
        #: the last claim was full: more is likely due, skip the "anything due?" read
        self._backlog = False
        self._claim_failures = 0
        #: ``once`` gave up on a database it could not use: run() returns 1
        self.failed = False

    # --- control -------------------------------------------------------------------

    def stop(self) -> None:
        """Ask for a graceful stop (safe from a signal handler or another thread)."""
        self._stopping.set()
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT stop the worker gracefully (call from the main thread)."""
        def handler(signum: int, frame: Any) -> None:
            log.info("worker %s: signal %s, stopping", self.id, signum)
            self.stop()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    # --- the loop ------------------------------------------------------------------------

    def run(self) -> int:
        log.info("worker %s started (concurrency %d, lease %.0f s, %s)", self.id,
                 self.concurrency, self.lease_s, self.store.dialect)
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="chat33-publish")
        hook_pool = ThreadPoolExecutor(self.webhook_concurrency,
                                       thread_name_prefix="chat33-webhook")
        threads = [threading.Thread(target=self._heartbeat, name="chat33-heartbeat",
                                    daemon=True)]
        if self.listen:
            threads.append(threading.Thread(target=self._listen, name="chat33-listen",
                                            daemon=True))
        if not self.once:
            threads.append(threading.Thread(target=self._sweep_media, name="chat33-media-sweep",
                                            daemon=True))
        for th in threads:
            th.start()
        try:
            while not self._stopping.is_set():
                self._wake.clear()
                # idle before claiming: an empty claim then really means "nothing due"
                idle = self._idle()
                claimed, more = self._fill(pool)
                sent = self._fill_webhooks(hook_pool)
                if self.once and idle and not claimed and not sent and (
                        not self._claim_failures):
                    break
                if more:
                    continue
                self._wake.wait(self._sleep_time(claimed))
        finally:
            self._shutdown(pool, hook_pool)
        if self.publisher.committer.dropped:
            # results whose write failed after their thread moved on (logged one by one)
            self.stats["unwritten"] += self.publisher.committer.dropped
        log.info("worker %s stopped: %s", self.id, dict(self.stats))
        return 1 if self.failed else 0

    def _idle(self) -> bool:
        with self._lock:
            return not self._jobs and not self._hooks

    def _fill(self, pool: ThreadPoolExecutor) -> tuple[int, bool]:
        """Claim when half the prefetch window is free; returns (claimed, maybe more)."""
        with self._lock:
            held = len(self._jobs)
        window = self.window
        if held > self.concurrency:
            return 0, False
        want = window - held
        try:
            claims = self.queue.claim(want, check_due=not self._backlog)
        except StoreUnavailable as exc:
            self._claim_failures += 1
            if self.once and self._claim_failures >= ONCE_CLAIM_TRIES:
                # --once must not report "nothing due" when it could not look
                log.error("worker %s: claim failed %d times (%s); giving up", self.id,
                          self._claim_failures, exc.reason)
                self.failed = True
                self.stop()
                return 0, False
            log.warning("worker %s: claim failed (%s); retrying", self.id, exc.reason)
            time.sleep(0.2)
            return 0, False
        self._claim_failures = 0
        for claim in claims:
            future = pool.submit(self._publish, claim)
            with self._lock:
                self._jobs[claim.post.id] = (future, claim)
            future.add_done_callback(functools.partial(self._done, claim.post.id))
        self._backlog = len(claims) == want
        return len(claims), len(claims) == want

    def _fill_webhooks(self, pool: ThreadPoolExecutor) -> int:
        # the outbox is read at most every WEBHOOK_CHECK_S while busy (every loop turn
        # would read it per finished post), at once when this worker wrote a delivery
        now = time.monotonic()
        if self.publisher.outbox_written.is_set():
            self.publisher.outbox_written.clear()
        elif now < self._hooks_check_at and not self.once:
            return 0
        self._hooks_check_at = now + WEBHOOK_CHECK_S
        with self._lock:
            free = self.webhook_concurrency - len(self._hooks)
        if free <= 0:
            return 0
        try:
            rows = self.webhooks.claim(free)
        except StoreUnavailable as exc:
            log.warning("worker %s: webhook claim failed (%s)", self.id, exc.reason)
            return 0
        for row in rows:
            future = pool.submit(self.webhooks.deliver, row)
            with self._lock:
                self._hooks[row["id"]] = future
            future.add_done_callback(functools.partial(self._hook_done, row["id"]))
        return len(rows)

    def _publish(self, claim: Claim) -> Outcome:
        with self._lock:
            if self._stopping.is_set():
                return Outcome("unstarted", claim.post.id)
            self._started.add(claim.post.id)
        return self.publisher.run(claim)

    def _done(self, post_id: str, future: Future[Outcome]) -> None:
        try:
            outcome = future.result()
            self.stats[outcome.kind] += 1
        except Exception:  # a bug in the worker itself: the lease expires, another resumes
            log.exception("worker %s: publishing %s crashed", self.id, post_id)
            self.stats["crashed"] += 1
            outcome = None
        with self._lock:
            self._started.discard(post_id)
            entry = self._jobs.pop(post_id, None)
            # the loop has work only when a claim is due (see _fill) or all is done
            wanted = len(self._jobs) <= self.concurrency
        if outcome is not None and outcome.kind == "unstarted" and entry is not None:
            self._unclaim(entry[1])
        if wanted or self._stopping.is_set() or self.publisher.outbox_written.is_set():
            self._wake.set()

    def _hook_done(self, delivery_id: str, future: Future[bool]) -> None:
        try:
            self.stats["webhook_delivered" if future.result() else "webhook_failed"] += 1
        except Exception:
            log.exception("worker %s: webhook %s crashed", self.id, delivery_id)
        with self._lock:
            self._hooks.pop(delivery_id, None)
        self._hooks_check_at = 0.0  # a slot is free: others may be waiting
        self._wake.set()

    def _sleep_time(self, claimed: int) -> float:
        with self._lock:
            held = len(self._jobs)
        if held > self.concurrency:
            return self.poll_s  # a finishing job wakes us
        try:
            due = [d for d in (self.queue.next_due(), self.webhooks.next_due()) if d]
        except StoreUnavailable:
            return self.poll_s
        if not due:
            return self.poll_s
        wait = (min(due) - utcnow()).total_seconds()
        # nothing claimable although something looks due (a follower, clock skew): breathe
        floor = 0.0 if claimed else 0.02
        return max(floor, min(wait, self.poll_s))

    # --- background threads -----------------------------------------------------------------

    def _heartbeat(self) -> None:
        interval = max(0.05, self.lease_s / 3)
        while not self._stopping.wait(interval):
            self.beat()
        # keep the leases of posts that finish during the grace period alive too
        deadline = time.monotonic() + self.grace_s
        while time.monotonic() < deadline and not self._idle():
            self.beat()
            time.sleep(min(interval, 1.0))

    def _sweep_media(self) -> None:
        """The media retention sweep (``CHAT33_MEDIA_RETENTION_DAYS``), at start and then
        every ``CHAT33_MEDIA_SWEEP_S`` (an hour). Idempotent: workers may overlap."""
        every = float(self.core.settings.env.get("CHAT33_MEDIA_SWEEP_S") or 3600)
        while True:
            try:
                deleted = self.core.media.sweep()
                if deleted:
                    log.info("worker %s: media sweep deleted %d files", self.id, deleted)
            except Exception:
                log.exception("worker %s: media sweep failed; again in %.0f s", self.id, every)
            if self._stopping.wait(every):
                return

    def beat(self) -> None:
        with self._lock:
            ids = [pid for _, claim in self._jobs.values() for pid in claim.ids]
        # posts whose results wait for the database to take them (their threads may have
        # moved on) keep their leases too
        ids = sorted({*ids, *self.publisher.committer.unwritten()})
        if not ids:
            return
        try:
            # refused (a deadlock, a dropped connection): again in a moment, not a third
            # of the lease later, when missing one more beat may let the lease expire
            held = retrying(functools.partial(self.queue.heartbeat, ids), self.lease_s / 6,
                            lambda: f"the heartbeat of worker {self.id}")
        except StoreUnavailable as exc:
            log.warning("worker %s: heartbeat failed (%s)", self.id, exc.reason)
            return
        if held < len(ids):
            log.debug("worker %s holds %d of %d leases", self.id, held, len(ids))

    def _listen(self) -> None:
        """Wake the loop on ``NOTIFY chat33_posts`` (PostgreSQL)."""
        while not self._stopping.is_set():
            try:
                self.store.listen(NOTIFY_CHANNEL, self._stopping, self._wake.set)
            except Exception as exc:
                if self._stopping.is_set():
                    break
                log.warning("worker %s: LISTEN failed (%s); retrying", self.id, exc)
                time.sleep(1.0)

    # --- stopping ------------------------------------------------------------------------------

    def _shutdown(self, pool: ThreadPoolExecutor, hook_pool: ThreadPoolExecutor) -> None:
        self._stopping.set()
        # posts waiting in the pool never start (see _publish) and go back to the queue
        deadline = time.monotonic() + self.grace_s
        while time.monotonic() < deadline and not self._idle():
            time.sleep(0.02)
        with self._lock:
            running = [claim for _, claim in self._jobs.values()]
        if running:
            ids = [pid for claim in running for pid in claim.ids]
            try:
                released = self.queue.release(ids, self.settle_s)
            except StoreUnavailable as exc:  # the leases then expire in their own time
                log.warning("worker %s: could not release leases (%s)", self.id, exc.reason)
                released = 0
            log.warning("worker %s: released %d lease(s) of posts still publishing after "
                        "%.0f s; another worker resumes them in %.0f s", self.id, released,
                        self.grace_s, self.settle_s)
            self.stats["released"] += len(running)
        pool.shutdown(wait=not running, cancel_futures=True)
        hook_pool.shutdown(wait=False, cancel_futures=True)
        self.publisher.close()
        self.webhooks.close()

    def _unclaim(self, claim: Claim) -> None:
        """Put a claimed post that never started back in the queue, as it was."""
        now = utcnow()
        for post in (claim.post, *claim.followers):
            transition(post.status, PostStatus.QUEUED, Actor.WORKER)
        try:
            self.store.unclaim(self.id, claim.ids, now, LogEvent(
                id=None, post_id=claim.post.id, event="released",
                message=f"worker {self.id} stopped before starting this attempt; "
                "the post is back in the queue", attempt=claim.post.retry_count + 1))
        except StoreUnavailable as exc:
            log.warning("worker %s: could not requeue %s (%s); its lease will expire",
                        self.id, claim.post.id, exc.reason)
        self.stats["requeued"] += 1
