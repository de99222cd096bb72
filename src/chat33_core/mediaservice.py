"""Media for posts: the service's glue between the media files
(:mod:`chat33_core.mediastore`) and the database rows that say which organization kept
which file.

Every file is fetched at most once (through the guarded client), inspected from its own
bytes, and kept under ``CHAT33_MEDIA_DIR``; posts refer to the kept copy, so a scheduled
post keeps its media even when the original URL expires before publish time.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, BinaryIO

import attrs

from .errors import Issue, NotFound, ValidationError
from .fetch import MAX_VIDEO_BYTES
from .media import MediaError
from .mediastore import MediaIngestor, MediaStore, describe_stored, ingest_url, store_file
from .models import MediaAsset

if TYPE_CHECKING:
    from .service import Chat33


class MediaService:
    def __init__(self, core: Chat33) -> None:
        self.core = core
        self.files = MediaStore.from_settings(core.settings)

    def _record(self, asset: MediaAsset, name: str | None) -> MediaAsset:
        """Keep the row; the display name is what the client called the file."""
        self.core.store.add_media(asset)
        display = (name or "").strip()[:200]
        return attrs.evolve(asset, name=display) if display else asset

    def upload(self, org_id: str, stream: BinaryIO, filename: str | None,
               max_bytes: int = MAX_VIDEO_BYTES) -> MediaAsset:
        """Keep an uploaded file (streamed to disk, never held whole in memory)."""
        try:
            asset = store_file(self.files, stream, org_id=org_id, max_bytes=max_bytes)
        except MediaError as exc:
            raise ValidationError(exc.message, details=[
                Issue("file", exc.message, code="unsupported_media")]) from None
        return self._record(asset, filename)

    def ingest(self, org_id: str, url: str, filename: str | None = None) -> MediaAsset:
        """Fetch ``url`` through the guarded client and keep it."""
        asset = ingest_url(self.files, self.core.fetcher, url, org_id=org_id, path="url")
        return self._record(asset, filename or url.rsplit("/", 1)[-1].split("?")[0])

    @contextmanager
    def ingestor(self, org_id: str, *, keep: bool) -> Iterator[MediaIngestor]:
        """The ``inspect_url`` of validation. With ``keep`` (a post is being created),
        the media it fetched is recorded for this organization when the block ends
        without error; without (the dry run), nothing is kept."""
        ingestor = MediaIngestor(
            store=self.files, client=self.core.fetcher, org_id=org_id, keep=keep,
            known=lambda url: self.core.store.find_media_by_url(org_id, url))
        yield ingestor
        if keep:
            for url, asset in ingestor.assets.items():
                if asset.path and self.core.store.find_media_by_url(org_id, url) is None:
                    self.core.store.add_media(asset)

    def asset_for(self, org_id: str, url: str) -> MediaAsset:
        """The kept asset for ``url`` (one of our media URLs or an ingested source URL)."""
        asset = self.core.store.find_media_by_url(org_id, url)
        if asset is not None:
            return asset
        name = self.files.name_for_url(url)
        if name is not None and self.files.exists(name):
            return self.core.store.add_media(describe_stored(self.files, name, org_id=org_id))
        raise NotFound(f"no media kept for {url}")

    def open_file(self, name: str) -> tuple[str, str]:
        """(path, content type) of a kept file, for the media route."""
        asset = self.core.store.find_media_by_name(name)
        path = self.files.path_for(name)
        if asset is None or not path.is_file():
            raise NotFound("media not found")
        return str(path), asset.content_type


__all__ = ["MediaService"]
