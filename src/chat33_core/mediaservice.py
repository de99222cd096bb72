"""Media for posts: uploads and URL ingestion, inspected and kept from schedule time.

Every file is fetched at most once (through the guarded client), inspected from its own
bytes, and kept under ``CHAT33_MEDIA_DIR``; posts refer to the kept copy, so a scheduled
post keeps its media even when the original URL expires before publish time.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING

from .errors import Chat33Error, Issue, NotFound, ValidationError
from .fetch import MAX_IMAGE_BYTES, MAX_VIDEO_BYTES, GuardedClient
from .media import VIDEO, MediaInfo, inspect
from .models import MediaAsset, new_id

if TYPE_CHECKING:
    from .service import Chat33

_EXTENSIONS = {
    "image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "image/webp": ".webp",
    "image/bmp": ".bmp", "image/tiff": ".tiff", "image/heic": ".heic",
    "video/mp4": ".mp4", "video/quicktime": ".mov", "video/webm": ".webm",
    "video/x-matroska": ".mkv",
}
_CHUNK = 1024 * 1024
MEDIA_PATH = "/media/"


def limit_for(info: MediaInfo) -> int:
    """The API's size limits: images 10 MB, videos 100 MB."""
    return MAX_VIDEO_BYTES if info.kind == VIDEO else MAX_IMAGE_BYTES


class MediaService:
    def __init__(self, core: Chat33) -> None:
        self.core = core
        self.settings = core.settings
        self.root = Path(self.settings.media_dir)
        self.url_prefix = self.settings.public_base_url.rstrip("/") + MEDIA_PATH

    # --- files --------------------------------------------------------------------------

    def path_for(self, name: str) -> Path:
        if not name or "/" in name or "\\" in name or name.startswith("."):
            raise NotFound("media not found")
        return self.root / name

    def _tempfile(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".incoming-", dir=self.root)
        os.close(fd)
        return Path(name)

    def _keep(self, org_id: str, tmp: Path, *, name: str | None, source_url: str | None,
              issue_path: str) -> MediaAsset:
        """Inspect ``tmp``, check the size limit of its kind, and keep it as an asset."""
        try:
            try:
                info = inspect(tmp)
            except ValidationError as exc:
                raise ValidationError(exc.message, details=[Issue(issue_path, exc.message,
                                                                  code="unsupported_media")]
                                      ) from None
            if info.size > limit_for(info):
                message = (f"{info.kind} of {info.size / 1e6:.1f} MB is over the "
                           f"{limit_for(info) // (1024 * 1024)} MB limit")
                raise ValidationError(message, details=[Issue(issue_path, message,
                                                              code="too_large")])
            sha = _sha256(tmp)
            asset_id = new_id("med")
            filename = asset_id + _EXTENSIONS.get(info.mime_type, "")
            final = self.root / filename
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        asset = MediaAsset(
            id=asset_id, org_id=org_id, name=filename, path=str(final.resolve()),
            url=self.url_prefix + filename, kind="video" if info.is_video else "image",
            content_type=info.mime_type, size=info.size, sha256=sha, source_url=source_url,
            info=info.to_dict(),
        )
        self.core.store.add_media(asset)
        asset_name = (name or "").strip() or (source_url or filename).rsplit("/", 1)[-1]
        # the display name is what the client called it; the stored file keeps our name
        return _with_display_name(asset, asset_name[:200])

    # --- entry points -------------------------------------------------------------------

    def upload(self, org_id: str, stream: IO[bytes], filename: str | None,
               max_bytes: int = MAX_VIDEO_BYTES) -> MediaAsset:
        """Keep an uploaded file (streamed to disk, never held whole in memory)."""
        tmp = self._tempfile()
        size = 0
        try:
            with tmp.open("wb") as out:
                while chunk := stream.read(_CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise ValidationError("the file is too large", details=[Issue(
                            "file", f"over the {max_bytes // (1024 * 1024)} MB limit",
                            code="too_large")])
                    out.write(chunk)
            if size == 0:
                raise ValidationError("the file is empty", details=[Issue(
                    "file", "the file is empty (0 bytes)", code="empty")])
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return self._keep(org_id, tmp, name=filename, source_url=None, issue_path="file")

    def ingest(self, org_id: str, url: str, filename: str | None = None, *,
               issue_path: str = "url") -> MediaAsset:
        """Fetch ``url`` through the guarded client and keep it."""
        tmp = self._tempfile()
        with GuardedClient(self.settings) as client:
            client.download(url, tmp, MAX_VIDEO_BYTES, path=issue_path)
        return self._keep(org_id, tmp, name=filename, source_url=url, issue_path=issue_path)

    def asset_for(self, org_id: str, url: str) -> MediaAsset:
        """The kept asset for ``url`` (one of our media URLs or an ingested source URL)."""
        asset = self.core.store.find_media_by_url(org_id, url)
        if asset is None:
            raise NotFound(f"no media kept for {url}")
        return asset

    def inspector(self, org_id: str, *, keep: bool) -> Callable[[str], MediaInfo]:
        """``inspect_url`` for validation. Our own media URLs and URLs already ingested
        are answered from the store; other URLs are fetched once — kept when ``keep``
        (a post is being created), inspected and discarded otherwise (dry run)."""
        cache: dict[str, MediaInfo] = {}

        def inspect_url(url: str) -> MediaInfo:
            if url in cache:
                return cache[url]
            asset = self.core.store.find_media_by_url(org_id, url)
            if asset is None and url.startswith(self.url_prefix):
                raise ValidationError(f"no media was uploaded at {url}")
            if asset is not None:
                info = MediaInfo.from_dict(asset.info)
            elif keep:
                info = MediaInfo.from_dict(self.ingest(org_id, url, issue_path="url").info)
            else:
                info = self._inspect_remote(url)
            cache[url] = info
            return info

        return inspect_url

    def _inspect_remote(self, url: str) -> MediaInfo:
        tmp = self._tempfile()
        try:
            with GuardedClient(self.settings) as client:
                client.download(url, tmp, MAX_VIDEO_BYTES)
            info = inspect(tmp)
            if info.size > limit_for(info):
                raise ValidationError(f"{info.kind} of {info.size / 1e6:.1f} MB is over the "
                                      f"{limit_for(info) // (1024 * 1024)} MB limit")
            return info
        finally:
            tmp.unlink(missing_ok=True)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _with_display_name(asset: MediaAsset, name: str) -> MediaAsset:
    import attrs

    return attrs.evolve(asset, name=name) if name and name != asset.name else asset


__all__ = ["MEDIA_PATH", "Chat33Error", "MediaService", "limit_for"]
