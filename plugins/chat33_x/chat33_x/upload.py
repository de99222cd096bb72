"""Media upload, API v2 (platforms.md §5.2): initialize, append segments streamed from
disk, finalize, then STATUS polls until ``succeeded``.

Each step is checkpointed (media id, segments appended, finalized, ready), so a worker
that takes over continues the same upload. X keeps an uninitialized media id for
``expires_after_secs``; an expired one is started over.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable, Iterator, Mapping
from typing import IO, Any

from chat33_core.errors import PermanentError, TransientError
from chat33_core.platforms import MediaFile

from .api import XApi
from .progress import Progress
from .rules import media_category

DEFAULT_SEGMENT_BYTES = 4 * 1024 * 1024
#: give up polling (for now: the checkpoint keeps the media id) after this much waiting
MAX_PROCESSING_WAIT_S = 30 * 60
#: start over when the media id expires within this margin
EXPIRY_MARGIN_S = 120


class SegmentReader(io.RawIOBase):
    """A read-only window ``[start, start + length)`` of an open file.

    httpx streams a multipart file part in small chunks, sizing it with seek/tell: this
    window makes one append segment look like a whole file without reading it into memory.
    """

    def __init__(self, fh: IO[bytes], start: int, length: int) -> None:
        self._fh = fh
        self._start = start
        self._length = length
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._length}[whence]
        self._pos = min(max(0, base + offset), self._length)
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        remaining = self._length - self._pos
        if size is None or size < 0 or size > remaining:
            size = remaining
        if size <= 0:
            return b""
        self._fh.seek(self._start + self._pos)
        chunk = self._fh.read(size)
        self._pos += len(chunk)
        return chunk


class MediaUploader:
    """Uploads the media of thread items, one file at a time, resumably."""

    def __init__(self, api: XApi, progress: Progress, *, segment_bytes: int,
                 sleep: Callable[[float], None], delays: Callable[[], Iterator[float]],
                 log: Callable[..., None]) -> None:
        self.api = api
        self.progress = progress
        self.segment_bytes = max(1, segment_bytes)
        self.sleep = sleep
        self.delays = delays
        self.log = log

    def upload(self, item: int, index: int, media: MediaFile) -> tuple[str, str | None]:
        """Upload ``media`` (file ``index`` of thread item ``item``); its (id, media_key)
        once X says it is ready to attach."""
        slot = self.progress.media_slot(item, index)
        if slot.get("mediaId") and float(slot.get("expiresAt") or 0) - EXPIRY_MARGIN_S \
                < time.time():
            self.log("x.media.expired", f"media {slot['mediaId']} expired; uploading again")
            self.progress.reset_media(item, index)
            slot = self.progress.media_slot(item, index)
        if not slot.get("mediaId"):
            slot = self._initialize(item, index, media)
        if not slot.get("finalized"):
            self._append_all(item, index, media, slot)
            slot = self._finalize(item, index, slot)
        if not slot.get("ready"):
            slot = self._wait(item, index, slot)
        return slot["mediaId"], slot.get("mediaKey")

    # --- steps ---------------------------------------------------------------------------

    def _initialize(self, item: int, index: int, media: MediaFile) -> dict[str, Any]:
        size = media.path.stat().st_size
        body = {"media_type": media.info.mime_type, "total_bytes": size,
                "media_category": media_category(media.info)}
        response = self.api.send("POST", "/2/media/upload/initialize", json=body,
                                 what="X media initialize")
        data = self.api.data(response, "X media initialize")
        media_id = str(data["id"])
        expires = float(data.get("expires_after_secs") or 86_400)
        self.log("x.media.initialized", f"media {media_id} initialized ({size} bytes, "
                 f"{body['media_category']})", media_id=media_id)
        return self.progress.update_media(
            item, index, mediaId=media_id, mediaKey=data.get("media_key"), segments=0,
            finalized=False, ready=False, size=size, expiresAt=time.time() + expires)

    def _append_all(self, item: int, index: int, media: MediaFile,
                    slot: dict[str, Any]) -> None:
        size = int(slot.get("size") or media.path.stat().st_size)
        total = max(1, -(-size // self.segment_bytes))
        done = int(slot.get("segments") or 0)
        media_id = slot["mediaId"]
        with media.path.open("rb") as fh:
            for segment in range(done, total):
                start = segment * self.segment_bytes
                length = min(self.segment_bytes, size - start)
                part = SegmentReader(fh, start, length)
                self.api.send("POST", f"/2/media/upload/{media_id}/append",
                              data={"segment_index": str(segment)},
                              files={"media": ("blob", part, "application/octet-stream")},
                              what="X media append")
                self.progress.update_media(item, index, segments=segment + 1)
        if total - done:
            self.log("x.media.appended", f"media {media_id}: {total - done} segment(s) "
                     f"appended", media_id=media_id, segments=total)

    def _finalize(self, item: int, index: int, slot: dict[str, Any]) -> dict[str, Any]:
        media_id = slot["mediaId"]
        response = self.api.send("POST", f"/2/media/upload/{media_id}/finalize",
                                 what="X media finalize")
        data = self.api.data(response, "X media finalize")
        info = data.get("processing_info")
        ready = self._check_state(media_id, info)
        changes: dict[str, Any] = {"finalized": True, "ready": ready,
                                   "checkAfter": _check_after(info)}
        if data.get("expires_after_secs"):
            changes["expiresAt"] = time.time() + float(data["expires_after_secs"])
        slot = self.progress.update_media(item, index, **changes)
        self.log("x.media.finalized", f"media {media_id} finalized"
                 + ("" if ready else f" ({info.get('state') if info else '?'})"),
                 media_id=media_id)
        return slot

    def _wait(self, item: int, index: int, slot: dict[str, Any]) -> dict[str, Any]:
        media_id = slot["mediaId"]
        waited = 0.0
        delays = self.delays()
        hint = slot.get("checkAfter")
        while True:
            delay = float(hint) if hint is not None else next(delays)
            if waited + delay > MAX_PROCESSING_WAIT_S:
                raise TransientError(f"X is still processing media {media_id} after "
                                     f"{waited:.0f} s; will check again",
                                     platform_code="processing")
            self.sleep(delay)
            waited += delay
            response = self.api.send("GET", "/2/media/upload",
                                     params={"media_id": media_id, "command": "STATUS"},
                                     what="X media status")
            info = self.api.data(response, "X media status").get("processing_info")
            if self._check_state(media_id, info):
                self.log("x.media.ready", f"media {media_id} processed", media_id=media_id)
                return self.progress.update_media(item, index, ready=True)
            # X's own hint wins over our backoff
            hint = _check_after(info)

    def _check_state(self, media_id: str, info: Mapping[str, Any] | None) -> bool:
        """True when the media is ready; raises when X gave up on it."""
        if not info:
            return True  # no processing_info: ready (images)
        state = info.get("state")
        if state == "succeeded":
            return True
        if state == "failed":
            error = info.get("error") or {}
            message = error.get("message") or error.get("name") or "media processing failed"
            raise PermanentError(f"X could not process the media: {message}",
                                 platform_code=str(error.get("name") or "media-failed"))
        return False


def _check_after(info: Mapping[str, Any] | None) -> float | None:
    if not info or info.get("check_after_secs") is None:
        return None
    try:
        return max(0.0, float(info["check_after_secs"]))
    except (TypeError, ValueError):
        return None
