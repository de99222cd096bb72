"""Publishing one post to TikTok, exactly once and resumably (platforms.md §3.1-§3.5).

The flow:

1. ``creator_info/query`` — the account's privacy options, disabled interactions and
   maximum video duration; a privacy level the account does not offer fails here,
   before anything is created;
2. video: ``video/init`` with ``FILE_UPLOAD`` and a chunk plan (:mod:`.chunks`), then
   each chunk ``PUT`` in order to ``upload_url`` with an exact ``Content-Range``, read
   from disk a piece at a time; photos: ``content/init`` with ``PULL_FROM_URL`` and our
   media URLs;
3. ``status/fetch`` until ``PUBLISH_COMPLETE`` (or ``SEND_TO_USER_INBOX`` for
   ``postMode: MEDIA_UPLOAD``) or ``FAILED``.

Checkpoints (saved the moment TikTok acknowledges a step)::

    {"kind": "video"|"photo", "publishId", "uploadUrl", "uploadUrlIssuedAt",
     "videoSize", "chunkSize", "totalChunks", "uploadedBytes", "uploadDone",
     "initPending", "abandoned": [publish ids that can never publish]}

A worker that takes over asks ``status/fetch`` about the checkpointed ``publish_id``
before anything else and continues from the byte count TikTok reports; it never inits
again for a post that may still publish. Two cases start over with a new init, because
the first attempt can no longer become a post: an unfinished upload whose ``upload_url``
expired (TikTok discards the task), and a ``FAILED`` publish with ``fail_reason:
internal`` (TikTok's "retry" reason).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping
from typing import IO, Any

import httpx

from chat33_core.errors import (
    PermanentError,
    PlatformError,
    QuotaExceeded,
    ReconnectRequired,
    TransientError,
    UnknownOutcome,
)
from chat33_core.models import utcnow
from chat33_core.platforms import MediaFile, PublishContext, PublishResult, Receipt

from .api import CAP_DEFER, TikTokApi
from .chunks import DEFAULT_CHUNK, ChunkPlan, plan

CREATOR_INFO = "/v2/post/publish/creator_info/query/"
VIDEO_INIT = "/v2/post/publish/video/init/"
INBOX_VIDEO_INIT = "/v2/post/publish/inbox/video/init/"
CONTENT_INIT = "/v2/post/publish/content/init/"
STATUS_FETCH = "/v2/post/publish/status/fetch/"

#: upload_url lives 1 hour; stop trusting it a little before
UPLOAD_URL_TTL_S = 3600.0
UPLOAD_URL_MARGIN_S = 120.0
#: bytes read from disk and handed to the socket at a time (memory stays flat)
READ_PIECE = 1024 * 1024
#: attempts at one chunk on 5xx / dropped connections before giving the post back
CHUNK_ATTEMPTS = 4
#: 416 re-syncs in a row before suspecting a broken upload task
MAX_RESYNCS = 3
#: status polls in one publish before handing back (the next attempt polls on)
MAX_POLLS = 120
#: failed status polls in a row (429 / 5xx) before handing back
MAX_POLL_ERRORS = 5

DONE = ("PUBLISH_COMPLETE", "SEND_TO_USER_INBOX")

FAIL_REASONS = {
    "file_format_check_failed": "TikTok could not accept the file format",
    "duration_check_failed": "TikTok refused the video's duration",
    "frame_rate_check_failed": "TikTok refused the video's frame rate (23-60 fps)",
    "picture_size_check_failed": "TikTok refused the size of a photo (at most 1080p)",
    "video_pull_failed": "TikTok could not download the video from our media server",
    "photo_pull_failed": ("TikTok could not download a photo from our media server (it "
                          "must be reachable over HTTPS at CHAT33_PUBLIC_BASE_URL)"),
    "publish_cancelled": "the publish was cancelled",
    "spam_risk_user_banned_from_posting": "TikTok has banned this account from posting",
    "spam_risk_text": "TikTok flagged the caption as spam",
    "spam_risk": "TikTok flagged the post as spam",
}

_RANGE = re.compile(r"bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)")


class UploadGone(Exception):
    """The upload task no longer exists (403 expired, 404 unknown)."""


def uploaded_from_range(value: str | None) -> int | None:
    """Bytes TikTok holds, from its ``Content-Range: bytes 0-{last}/{total}`` reply
    (``last`` inclusive, as in HTTP; ``bytes */total`` means none)."""
    match = _RANGE.match((value or "").strip())
    if not match:
        return None
    if match.group(1) is None:
        return 0
    return int(match.group(2)) + 1


def _boundary(chunks: ChunkPlan, uploaded: int) -> int:
    """The start of the first chunk TikTok does not hold entirely."""
    if uploaded >= chunks.video_size:
        return chunks.video_size
    index = min(max(0, uploaded) // chunks.chunk_size, chunks.total_chunk_count - 1)
    return index * chunks.chunk_size


class Publisher:
    """One publish of one TikTok post (``ctx.items`` has exactly one item)."""

    def __init__(self, ctx: PublishContext, base: str, name: str = "tiktok") -> None:
        self.ctx = ctx
        self.api = TikTokApi(ctx.http, base, ctx.credentials.access_token)
        self.config: Mapping[str, Any] = ctx.config(name)
        self.item = ctx.first
        self.media: list[MediaFile] = list(self.item.media)
        self.is_video = bool(self.media) and self.media[0].info.is_video
        self.inbox = self.config.get("postMode") == "MEDIA_UPLOAD"
        raw = ctx.settings.platform_value(name, "CHUNK_BYTES")
        self.preferred_chunk = int(raw) if raw and raw.isdigit() else DEFAULT_CHUNK
        self.state: dict[str, Any] = ctx.checkpoints.load()

    # --- checkpoints ------------------------------------------------------------------

    def save(self, **changes: Any) -> None:
        for key, value in changes.items():
            if value is None:
                self.state.pop(key, None)
            else:
                self.state[key] = value
        self.ctx.checkpoints.save(self.state)

    def log(self, event: str, message: str, **data: Any) -> None:
        self.ctx.log(f"tiktok.{event}", message, **data)

    # --- the flow ---------------------------------------------------------------------

    def run(self) -> PublishResult:
        if not self.media:
            raise PermanentError("TikTok posts need a video or photos", platform_code="no-media")
        if self.state.get("publishId"):
            return self.resume()
        if self.state.get("initPending"):
            raise UnknownOutcome(
                "a photo post was sent to TikTok and its answer was lost; TikTok gives no "
                "way to look it up: check the account before posting again",
                platform_code="init-lost")
        return self.start()

    def start(self) -> PublishResult:
        creator = self.creator_info()
        if self.is_video:
            self.init_video(creator)
            try:
                self.upload()
            except UploadGone as exc:
                # just issued, already gone: the next attempt asks TikTok and starts over
                raise TransientError(str(exc), platform_code="upload-gone") from exc
        else:
            self.init_photos(creator)
        return self.poll()

    def resume(self) -> PublishResult:
        """Take over: ask TikTok where the checkpointed publish stands, before anything."""
        publish_id = self.state["publishId"]
        self.log("resume", f"asking TikTok about publish {publish_id} before going on",
                 publish_id=publish_id, uploaded_bytes=self.state.get("uploadedBytes"))
        try:
            status = self.status(publish_id)
        except PermanentError as exc:
            # an upload task TikTok no longer knows cannot publish any more
            if self.is_video and not self.state.get("uploadDone"):
                return self.restart(f"TikTok does not know publish {publish_id} any more "
                                    f"({exc.platform_code})")
            raise
        result = self.outcome(publish_id, status)
        if result is not None:
            return result
        if self.is_video and not self.state.get("uploadDone"):
            if self.upload_url_expired():
                return self.restart("the upload URL expired before the upload finished")
            reported = status.get("uploaded_bytes")
            uploaded = (int(reported) if isinstance(reported, int)
                        else int(self.state.get("uploadedBytes") or 0))
            self.log("resume_upload", f"TikTok holds {uploaded} of "
                     f"{self.state['videoSize']} bytes; uploading the rest",
                     uploaded_bytes=uploaded)
            try:
                self.upload(start=uploaded)
            except UploadGone as exc:
                return self.restart(str(exc))
        return self.poll()

    def restart(self, why: str) -> PublishResult:
        """Start over with a new init: only for a publish that can never complete."""
        old = self.state.get("publishId")
        abandoned = [*self.state.get("abandoned", []), old] if old else \
            list(self.state.get("abandoned", []))
        self.log("restart", f"{why}; that publish can never complete, starting a new one",
                 abandoned=old)
        self.state = {"abandoned": abandoned}
        self.ctx.checkpoints.save(self.state)
        return self.start()

    # --- creator info -----------------------------------------------------------------

    def creator_info(self) -> Mapping[str, Any]:
        data = self.api.call(CREATOR_INFO, {}, what="TikTok creator info",
                             endpoint="creator_info")
        options = [str(o) for o in data.get("privacy_level_options") or []]
        privacy = self.config.get("privacyLevel")
        if not self.inbox:
            if not privacy:
                raise PermanentError("platformConfig.tiktok.privacyLevel is required",
                                     platform_code="privacy_level_missing")
            if options and privacy not in options:
                raise PermanentError(
                    f"privacy level {privacy} is not available for TikTok account "
                    f"@{data.get('creator_username') or self.ctx.account.username}: it "
                    f"offers {', '.join(options)}",
                    platform_code="privacy_level_option_mismatch")
        max_s = data.get("max_video_post_duration_sec")
        duration = self.media[0].info.duration_s if self.is_video else None
        if isinstance(max_s, int | float) and duration is not None and duration > max_s:
            raise PermanentError(f"the video is {duration:.1f} s long; this TikTok account "
                                 f"can post videos up to {max_s:g} s",
                                 platform_code="duration_over_creator_limit")
        self.log("creator_info", "TikTok creator info read", privacy_options=options,
                 max_video_post_duration_sec=max_s)
        return data

    def interaction_flags(self, creator: Mapping[str, Any]) -> dict[str, bool]:
        """disable_* flags: what the user asked, forced on where the creator turned the
        interaction off in the app (TikTok's UX guidelines)."""
        flags: dict[str, bool] = {}
        pairs = [("disable_comment", "disableComment", "comment_disabled")]
        if self.is_video:
            pairs += [("disable_duet", "disableDuet", "duet_disabled"),
                      ("disable_stitch", "disableStitch", "stitch_disabled")]
        for field, key, creator_key in pairs:
            wanted = bool(self.config.get(key, False))
            if creator.get(creator_key) and not wanted:
                self.log("interaction_disabled", f"{creator_key.replace('_', ' ')} on this "
                         f"account: {field} is sent as true", field=field)
                wanted = True
            flags[field] = wanted
        return flags

    def common_post_info(self, creator: Mapping[str, Any]) -> dict[str, Any]:
        info: dict[str, Any] = {"privacy_level": self.config.get("privacyLevel")}
        info.update(self.interaction_flags(creator))
        for key, field in (("brandContentToggle", "brand_content_toggle"),
                           ("brandOrganicToggle", "brand_organic_toggle"),
                           ("isAigc", "is_aigc")):
            if key in self.config:
                info[field] = bool(self.config[key])
        return info

    # --- init -------------------------------------------------------------------------

    def init_video(self, creator: Mapping[str, Any]) -> None:
        media = self.media[0]
        size = media.path.stat().st_size
        chunks = plan(size, self.preferred_chunk)
        if self.inbox:
            path, body = INBOX_VIDEO_INIT, {"source_info": chunks.as_source_info()}
        else:
            post_info = self.common_post_info(creator)
            if self.item.text:
                post_info["title"] = self.item.text
            if "videoCoverTimestampMs" in self.config:
                post_info["video_cover_timestamp_ms"] = int(self.config["videoCoverTimestampMs"])
            path = VIDEO_INIT
            body = {"post_info": post_info, "source_info": chunks.as_source_info()}
        # no post can come of a FILE_UPLOAD init without its chunks, so a lost answer here
        # is an ordinary retry (the orphan task expires), never an unknown outcome
        data = self.api.call(path, body, what="TikTok video init", endpoint="init")
        publish_id, upload_url = data.get("publish_id"), data.get("upload_url")
        if not publish_id or not upload_url:
            raise TransientError(f"TikTok video init answered without publish_id/upload_url: "
                                 f"{dict(data)}", platform_code="bad-response")
        self.save(kind="video", publishId=str(publish_id), uploadUrl=str(upload_url),
                  uploadUrlIssuedAt=time.time(), videoSize=chunks.video_size,
                  chunkSize=chunks.chunk_size, totalChunks=chunks.total_chunk_count,
                  uploadedBytes=0, uploadDone=False)
        self.log("init", f"TikTok upload started: {chunks.total_chunk_count} chunk(s) of "
                 f"{chunks.chunk_size} bytes for {size} bytes", publish_id=publish_id,
                 inbox=self.inbox)

    def init_photos(self, creator: Mapping[str, Any]) -> None:
        post_info = self.common_post_info(creator)
        description = self.config.get("description", self.item.text)
        if description:
            post_info["description"] = description
        if self.config.get("title"):
            post_info["title"] = self.config["title"]
        if "autoAddMusic" in self.config:
            post_info["auto_add_music"] = bool(self.config["autoAddMusic"])
        body = {
            "post_info": post_info,
            "source_info": {"source": "PULL_FROM_URL",
                            "photo_cover_index": int(self.config.get("photoCoverIndex", 0)),
                            "photo_images": [m.url for m in self.media]},
            "post_mode": "MEDIA_UPLOAD" if self.inbox else "DIRECT_POST",
            "media_type": "PHOTO",
        }
        # TikTok starts pulling (and posting) at once: durable note first, so a lost
        # answer is never followed by a second post
        self.save(kind="photo", initPending=True)
        try:
            data = self.api.call(CONTENT_INIT, body, what="TikTok photo init",
                                 endpoint="init", creating=True)
        except UnknownOutcome:
            raise
        except PlatformError:
            self.save(initPending=None)  # TikTok answered and refused: nothing exists
            raise
        publish_id = data.get("publish_id")
        if not publish_id:
            raise UnknownOutcome(f"TikTok photo init answered without a publish_id: "
                                 f"{dict(data)}", platform_code="bad-response")
        self.save(publishId=str(publish_id), initPending=None)
        self.log("init", f"TikTok is pulling {len(self.media)} photo(s)",
                 publish_id=publish_id, inbox=self.inbox)

    # --- chunk upload -----------------------------------------------------------------

    def chunk_plan(self) -> ChunkPlan:
        return ChunkPlan(int(self.state["videoSize"]), int(self.state["chunkSize"]),
                         int(self.state["totalChunks"]))

    def upload_url_expired(self) -> bool:
        issued = float(self.state.get("uploadUrlIssuedAt") or 0)
        return time.time() > issued + UPLOAD_URL_TTL_S - UPLOAD_URL_MARGIN_S

    def upload(self, start: int = 0) -> None:
        """PUT the chunks from ``start`` (a byte count TikTok reported) to the end."""
        chunks = self.chunk_plan()
        media = self.media[0]
        if media.path.stat().st_size != chunks.video_size:
            raise PermanentError(f"the video file changed size since the upload began "
                                 f"({media.path.stat().st_size} != {chunks.video_size})",
                                 platform_code="file-changed")
        mime = media.info.mime_type if media.info.mime_type.startswith("video/") \
            else "video/mp4"
        url = str(self.state["uploadUrl"])
        position = _boundary(chunks, start)
        attempts = resyncs = 0
        with media.path.open("rb") as fh:
            while position < chunks.video_size:
                index = chunks.index_at(position)
                first, last = chunks.chunk_range(index)
                try:
                    response = self.put_chunk(url, fh, first, last, chunks.video_size, mime)
                except httpx.TransportError as exc:
                    attempts = self.chunk_failed(attempts, index, type(exc).__name__, exc)
                    continue
                status = response.status_code
                if status in (201, 206):
                    held = uploaded_from_range(response.headers.get("Content-Range"))
                    position = chunks.video_size if status == 201 else \
                        _boundary(chunks, held if held is not None else last + 1)
                    attempts = resyncs = 0
                    self.save(uploadedBytes=position,
                              uploadDone=status == 201 or position >= chunks.video_size)
                    self.log("chunk", f"chunk {index + 1}/{chunks.total_chunk_count} "
                             "uploaded", uploaded_bytes=position, total=chunks.video_size)
                elif status == 416:
                    held = uploaded_from_range(response.headers.get("Content-Range"))
                    resyncs += 1
                    if held is None or resyncs > MAX_RESYNCS:
                        raise TransientError("TikTok refused the chunk range repeatedly "
                                             f"({response.headers.get('Content-Range')})",
                                             platform_code="416")
                    position = _boundary(chunks, held)
                    self.save(uploadedBytes=position)
                    self.log("resync", f"TikTok holds {held} bytes; continuing from there",
                             uploaded_bytes=held)
                elif status in (403, 404):
                    raise UploadGone(f"the TikTok upload task is gone (HTTP {status})")
                elif status >= 500 or status == 429:
                    attempts = self.chunk_failed(attempts, index, f"HTTP {status}", None)
                else:
                    raise PermanentError(f"TikTok refused chunk {index + 1} (HTTP {status}): "
                                         f"{response.text[:200]}", platform_code=str(status))
        if not self.state.get("uploadDone"):
            self.save(uploadDone=True)

    def chunk_failed(self, attempts: int, index: int, why: str,
                     exc: BaseException | None) -> int:
        attempts += 1
        self.log("chunk_retry", f"chunk {index + 1} failed ({why}); attempt {attempts} of "
                 f"{CHUNK_ATTEMPTS}", index=index)
        if attempts >= CHUNK_ATTEMPTS:
            raise TransientError(f"TikTok chunk {index + 1} failed {attempts} times ({why}); "
                                 "the upload resumes from there next time",
                                 platform_code="chunk-failed") from exc
        self.ctx.sleep(self.ctx.settings.poll_interval_s * 2 ** attempts)
        return attempts

    def put_chunk(self, url: str, fh: IO[bytes], first: int, last: int, total: int,
                  mime: str) -> httpx.Response:
        length = last - first + 1

        def body() -> Iterator[bytes]:
            fh.seek(first)
            remaining = length
            while remaining:
                piece = fh.read(min(READ_PIECE, remaining))
                if not piece:
                    raise OSError(f"the video file ended at byte {last - remaining + 1}")
                remaining -= len(piece)
                yield piece

        # an explicit Content-Length makes httpx stream the generator as a plain body
        headers = {"Content-Type": mime, "Content-Length": str(length),
                   "Content-Range": f"bytes {first}-{last}/{total}"}
        return self.ctx.http.put(url, content=body(), headers=headers)

    # --- status -----------------------------------------------------------------------

    def status(self, publish_id: str) -> Mapping[str, Any]:
        return self.api.call(STATUS_FETCH, {"publish_id": publish_id},
                             what="TikTok status fetch", endpoint="status")

    def poll(self) -> PublishResult:
        publish_id = str(self.state["publishId"])
        errors = 0
        for _, delay in zip(range(MAX_POLLS), self.ctx.poll_delays(), strict=False):
            try:
                status = self.status(publish_id)
            except TransientError as exc:
                errors += 1
                if errors >= MAX_POLL_ERRORS:
                    raise
                self.ctx.sleep(max(delay, exc.retry_after or 0.0))
                continue
            errors = 0
            result = self.outcome(publish_id, status)
            if result is not None:
                return result
            self.ctx.sleep(delay)
        raise TransientError(f"TikTok is still processing publish {publish_id}; it will be "
                             "checked again", platform_code="processing")

    def outcome(self, publish_id: str, status: Mapping[str, Any]) -> PublishResult | None:
        """The result once TikTok is done, ``None`` while it processes; raises on FAILED."""
        state = str(status.get("status") or "")
        if state in DONE:
            return self.published(publish_id, status)
        if state == "FAILED":
            self.failed(publish_id, str(status.get("fail_reason") or "unknown"))
        return None

    def failed(self, publish_id: str, reason: str) -> None:
        if reason == "internal" or reason == "spam_risk_too_many_posts":
            # this publish is dead on TikTok's side: the next attempt starts a new one
            self.state = {"abandoned": [*self.state.get("abandoned", []), publish_id]}
            self.ctx.checkpoints.save(self.state)
            self.log("failed", f"TikTok failed publish {publish_id} ({reason}); it will be "
                     "posted again", publish_id=publish_id, fail_reason=reason)
            if reason == "internal":
                raise TransientError(f"TikTok failed the post with an internal error "
                                     f"(fail_reason internal, publish {publish_id})",
                                     platform_code="internal")
            raise QuotaExceeded("the account reached TikTok's daily post cap (fail_reason "
                                "spam_risk_too_many_posts)", retry_at=utcnow() + CAP_DEFER,
                                platform_code=reason)
        self.log("failed", f"TikTok failed publish {publish_id}: {reason}",
                 publish_id=publish_id, fail_reason=reason)
        if reason == "auth_removed":
            raise ReconnectRequired(f"the TikTok account removed chat33's access during the "
                                    f"publish (fail_reason {reason})", platform_code=reason)
        explanation = FAIL_REASONS.get(reason, "TikTok did not publish the post")
        raise PermanentError(f"{explanation} (fail_reason {reason})", platform_code=reason)

    def published(self, publish_id: str, status: Mapping[str, Any]) -> PublishResult:
        ids = status.get("publicaly_available_post_id") or []
        post_id = str(ids[0]) if ids else None
        username = (self.ctx.account.username or "").lstrip("@")
        url = None
        if post_id and username:
            kind = "video" if self.is_video else "photo"
            url = f"https://www.tiktok.com/@{username}/{kind}/{post_id}"
        inbox = status.get("status") == "SEND_TO_USER_INBOX"
        self.log("published", "sent to the creator's TikTok inbox" if inbox else
                 f"published on TikTok{' as ' + post_id if post_id else ''}",
                 publish_id=publish_id, external_id=post_id)
        return PublishResult(receipts=[Receipt(
            external_id=post_id or publish_id, external_url=url, post_id=self.item.post_id,
            extra={"publishId": publish_id, "inbox": inbox,
                   "publiclyAvailable": post_id is not None})])
