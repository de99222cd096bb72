"""Media for posts: the service's glue between the media files
(:mod:`chat33_core.mediastore`) and the database rows that say which organization kept
which file.

Every file is fetched at most once (through the guarded client), inspected from its own
bytes, and kept under ``CHAT33_MEDIA_DIR``; posts refer to the kept copy, so a scheduled
post keeps its media even when the original URL expires before publish time.

Fetching a URL is bounded per request and per organization, since it holds an API thread
for as long as the peer takes (up to ``CHAT33_FETCH_TIMEOUT_S``): a request's fetches
share one deadline and ``CHAT33_FETCH_REQUEST_MAX_BYTES``, and an organization may have
``CHAT33_FETCH_CONCURRENCY`` requests fetching at once in a process (:class:`FetchSlots`),
so slow URLs cannot take every thread of a server. Fetching needs the scope
``media:write``; kept media fetched by a post counts against the ``media.upload`` limit
like an upload.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import datetime, timedelta
from typing import IO, TYPE_CHECKING

import attrs

from .errors import (
    ConcurrencyLimited,
    Conflict,
    Forbidden,
    Issue,
    NotFound,
    RateLimited,
    ValidationError,
)
from .fetch import MAX_VIDEO_BYTES
from .media import MediaError
from .mediastore import MediaIngestor, MediaStore, ingest_url, store_file
from .mediauploads import DirectUploads
from .models import MediaAsset, utcnow

if TYPE_CHECKING:
    from .config import Settings
    from .fetch import GuardedClient
    from .security import Principal
    from .store import Store

log = logging.getLogger("chat33.media")
#: the scope a request needs to make chat33 fetch a URL
FETCH_SCOPE = "media:write"
#: what a client refused for fetching too much at once is told to wait
BUSY_RETRY_S = 5.0


class FetchSlots:
    """At most ``per_org`` requests of one organization fetching media at once (in this
    process); one more is refused at once rather than queued, as a queued request would
    hold its thread all the same."""

    def __init__(self, per_org: int) -> None:
        self.per_org = per_org
        self._lock = threading.Lock()
        self._busy: dict[str, int] = {}

    @contextmanager
    def hold(self, org_id: str) -> Iterator[None]:
        """Hold one of the organization's slots; ConcurrencyLimited when none is free."""
        with self._lock:
            busy = self._busy.get(org_id, 0)
            if busy >= self.per_org:
                raise ConcurrencyLimited(
                    f"this organization already has {busy} requests fetching media from "
                    f"URLs, the most it may have at once; retry when one is done",
                    retry_after=BUSY_RETRY_S)
            self._busy[org_id] = busy + 1
        try:
            yield
        finally:
            with self._lock:
                left = self._busy[org_id] - 1
                if left:
                    self._busy[org_id] = left
                else:
                    del self._busy[org_id]


class MediaService:
    """Kept media for the service. It is given what it uses: the settings, the store,
    the guarded client and ``hit_rate_limit(operation, key)`` (raises RateLimited), the
    service's count of an operation."""

    def __init__(self, settings: Settings, store: Store, fetcher: GuardedClient,
                 hit_rate_limit: Callable[[str, str], object]) -> None:
        self.settings = settings
        self.store = store
        self.fetcher = fetcher
        self.hit_rate_limit = hit_rate_limit
        self.files = MediaStore.from_settings(settings)
        self.slots = FetchSlots(settings.fetch_concurrency)
        self.uploads = DirectUploads(store, self.files, settings.max_upload_bytes)

    def _record(self, asset: MediaAsset, name: str | None) -> MediaAsset:
        """Keep the row; the display name is what the client called the file."""
        self.store.add_media(asset)
        display = (name or "").strip()[:200]
        return attrs.evolve(asset, name=display) if display else asset

    def upload(self, org_id: str, stream: IO[bytes], filename: str | None,
               max_bytes: int = MAX_VIDEO_BYTES) -> MediaAsset:
        """Keep an uploaded file (streamed to disk, never held whole in memory)."""
        try:
            asset = store_file(self.files, stream, org_id=org_id, max_bytes=max_bytes)
        except MediaError as exc:
            raise ValidationError(exc.message, details=[
                Issue("file", exc.message, code="unsupported_media")]) from None
        return self._record(asset, filename)

    def ingest(self, org_id: str, url: str, filename: str | None = None) -> MediaAsset:
        """Fetch ``url`` through the guarded client and keep it (in one of the
        organization's fetch slots, within the per-request byte cap)."""
        max_bytes = min(MAX_VIDEO_BYTES, self.settings.fetch_request_max_bytes)
        with self.slots.hold(org_id):
            asset = ingest_url(self.files, self.fetcher, url, org_id=org_id, path="url",
                               max_bytes=max_bytes)
        return self._record(asset, filename or url.rsplit("/", 1)[-1].split("?")[0])

    @contextmanager
    def ingestor(self, principal: Principal, *, keep: bool) -> Iterator[MediaIngestor]:
        """The ``inspect_url`` of validation for ``principal``'s request. With ``keep``
        (a post is being created), the media it fetched is recorded for the organization
        when the block ends without error; without (the dry run), nothing is kept.

        Before its first fetch the request must have the scope ``media:write`` and takes
        one of the organization's fetch slots (kept to the end of the block); with
        ``keep``, each fetch counts one ``media.upload``. Its :attr:`MediaIngestor.assets`
        are each URL's asset: with ``keep``, kept once the block is done."""
        org_id = principal.org_id
        with ExitStack() as slot:
            holding = False

            def before_fetch(url: str) -> None:
                nonlocal holding
                if FETCH_SCOPE not in principal.scopes:
                    raise Forbidden(f"fetching media from a URL ({url[:200]}) needs the scope "
                                    f"{FETCH_SCOPE}, which this API key lacks; pass media "
                                    "chat33 already holds (uploaded with a media:write key)")
                if not holding:
                    slot.enter_context(self.slots.hold(org_id))
                    holding = True
                if keep:
                    self._count_upload(org_id)

            ingestor = MediaIngestor(
                store=self.files, client=self.fetcher, org_id=org_id, keep=keep,
                known=lambda url: self.store.find_media_by_url(org_id, url),
                byte_budget=self.settings.fetch_request_max_bytes,
                before_fetch=before_fetch)
            yield ingestor
        if keep:
            for url, asset in ingestor.assets.items():
                if asset.path and url not in ingestor.known_urls:
                    self.store.add_media(asset)

    def _count_upload(self, org_id: str) -> None:
        """One ``media.upload`` for a URL a post makes chat33 fetch and keep."""
        try:
            self.hit_rate_limit("media.upload", org_id)
        except RateLimited as exc:
            raise RateLimited(
                "media fetched from mediaUrls counts against the upload limit: "
                + exc.message, retry_after=exc.retry_after, limit=exc.limit,
                remaining=exc.remaining, reset_after=exc.reset_after) from None

    def open_file(self, name: str) -> tuple[MediaAsset, MediaStore]:
        """The kept file ``name`` (its row, for the type) and the store to read it from,
        for the media route; NotFound when either is missing."""
        asset = self.store.find_media_by_name(name)
        if asset is None or not self.files.exists(name):
            raise NotFound("media not found")
        return asset, self.files

    # --- the library ------------------------------------------------------------------

    def library(self, org_id: str, limit: int, before: str | None
                ) -> tuple[Sequence[MediaAsset], dict[str, int]]:
        """A page of the organization's media, newest first, and how many posts not yet
        done use each."""
        assets = self.store.list_media(org_id, limit=limit, before=before)
        return assets, self.store.pending_uses(org_id, [a.id for a in assets])

    def show(self, org_id: str, media_id: str) -> tuple[MediaAsset, int]:
        asset = self.store.org_media(org_id, media_id)
        return asset, self.store.pending_uses(org_id, [media_id])[media_id]

    def remove(self, org_id: str, media_id: str) -> None:
        """Delete the organization's media; Conflict while a post not yet done uses it.
        The file goes when no other row (another organization's) names it."""
        asset = self.store.org_media(org_id, media_id)
        if not self._forget(asset):
            uses = self.store.pending_uses(org_id, [media_id])[media_id]
            raise Conflict(f"{max(uses, 1)} post(s) not yet published use media {media_id}: "
                           "cancel or edit them first", details=[Issue("id", "in use")])

    def _forget(self, asset: MediaAsset, used_since: datetime | None = None) -> bool:
        """Delete ``asset`` unless a post needs it (checked and deleted atomically against
        a post being made with it); whether it was deleted. NotFound when it is gone."""
        left = self.store.delete_unused_media(asset.id, used_since)
        if left is None:
            return False
        if left == 0:
            self.files.delete(asset.name)
        return True

    def sweep(self, now: datetime | None = None) -> int:
        """The retention sweep: delete media no post has needed for
        ``CHAT33_MEDIA_RETENTION_DAYS`` (0: never), expired direct uploads never
        completed, and stale local copies. Idempotent; returns the media deleted."""
        now = now or utcnow()
        expired = self.uploads.sweep_expired(now)
        if expired:
            log.info("media sweep: removed %d expired direct uploads", expired)
        self.files.trim_cache(3600)
        days = self.settings.media_retention_days
        if days <= 0:
            return 0
        cutoff = now - timedelta(days=days)
        done, after = 0, ""
        while True:
            batch, last = self.store.retention_candidates(cutoff, after)
            for asset in batch:
                # checked again as it is deleted: a post may have taken it up since
                try:
                    if not self._forget(asset, used_since=cutoff):
                        continue
                except NotFound:  # deleted meanwhile (DELETE /media, another worker)
                    continue
                done += 1
                log.info("media sweep: deleted %s (%s) of %s", asset.id, asset.name,
                         asset.org_id)
            if last is None:
                return done
            after = last


__all__ = ["MediaService"]
