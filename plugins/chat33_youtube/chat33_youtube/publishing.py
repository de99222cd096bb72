"""Publishing one video: the resumable upload protocol (platforms.md §4.1) and
thumbnails.set (§4.3), exactly once across crashes.

Checkpoints (saved right after YouTube acknowledges each step):

* ``sessionUri``, ``total`` — the upload session, as soon as YouTube returns it;
* ``bytesUploaded`` — after each chunk YouTube confirmed with ``308``/``Range``;
* ``videoId``, ``short`` — once the upload finished and YouTube returned the video;
* ``thumbnail`` — ``set``, ``refused`` or ``failed`` (never tried twice).

A video only exists on YouTube once its session received the last byte, so a publish
that finds a saved session probes it first (``Content-Range: bytes */TOTAL``): a finished
session answers with the video, which is returned without uploading anything again.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import httpx

from chat33_core.errors import PermanentError, TransientError
from chat33_core.http import send
from chat33_core.models import utcnow
from chat33_core.platforms import MediaFile, PublishContext, PublishResult, Receipt

from . import rules
from .google_errors import response_error, retry_after

#: every chunk but the last must be a multiple of this (Google's rule)
CHUNK_UNIT = 262_144
#: 64 units = 16 MiB; ``CHAT33_YOUTUBE_CHUNK_SIZE`` overrides it (rounded down to a unit)
DEFAULT_CHUNK_SIZE = 64 * CHUNK_UNIT
#: how much of a chunk is read from disk at a time while it is sent
READ_SIZE = 1024 * 1024
#: 500/502/503/504 and no answer at all mean "probe and resume"
RESUMABLE_STATUSES = frozenset({500, 502, 503, 504})
#: consecutive probes without progress before giving up for this attempt
MAX_PROBES = 8
#: sessions started in one attempt (each 404 starts a new one)
MAX_SESSIONS = 3
THUMBNAIL_TRIES = 3

_RANGE = re.compile(r"bytes=(\d+)-(\d+)")


class SessionExpired(Exception):
    """The upload session answered 404: start again from byte 0."""


def chunk_size(value: str | None) -> int:
    """The configured chunk size rounded down to a multiple of 262,144 (at least one)."""
    if not value:
        return DEFAULT_CHUNK_SIZE
    try:
        size = int(float(value))
    except ValueError:
        return DEFAULT_CHUNK_SIZE
    return max(CHUNK_UNIT, size // CHUNK_UNIT * CHUNK_UNIT)


def watch_url(video_id: str, short: bool) -> str:
    if short:
        return f"https://www.youtube.com/shorts/{video_id}"
    return f"https://www.youtube.com/watch?v={video_id}"


def received_until(response: httpx.Response) -> int:
    """The next byte YouTube wants, from a 308's ``Range`` (none: nothing arrived)."""
    match = _RANGE.search(response.headers.get("Range", ""))
    return int(match.group(2)) + 1 if match else 0


def file_slice(path: Any, start: int, end: int) -> Iterator[bytes]:
    """Bytes ``start`` to ``end`` (exclusive) of a file, read a piece at a time."""
    with open(path, "rb") as fh:
        fh.seek(start)
        left = end - start
        while left > 0:
            piece = fh.read(min(READ_SIZE, left))
            if not piece:
                raise OSError(f"{path} is shorter than expected (ended at {end - left})")
            left -= len(piece)
            yield piece


class Publisher:
    """One publish (or confirm) of one video post."""

    def __init__(self, ctx: PublishContext, base: str, chunk: int) -> None:
        self.ctx = ctx
        self.base = base.rstrip("/")
        self.chunk = chunk
        self.http = ctx.http
        self.log = ctx.log
        self.config = rules.config_of(ctx.platform_config)

    # --- entry points ---------------------------------------------------------------------

    def publish(self) -> PublishResult:
        state = self.ctx.checkpoints.load()
        if state.get("videoId"):
            self.log("resumed", f"the video {state['videoId']} is already on YouTube; "
                                "not uploading it again")
        else:
            video = self._upload(self._video(), state)
            state = self._finished(video)
        self._thumbnail(state)
        return self._result(self.ctx.checkpoints.load())

    def confirm(self) -> PublishResult | None:
        """The video if the saved session finished; ``None`` if no video can exist."""
        state = self.ctx.checkpoints.load()
        if state.get("videoId"):
            return self._result(state)
        session = state.get("sessionUri")
        if not session:
            return None  # no session was ever opened: nothing can be on YouTube
        try:
            outcome = self._probe(session, int(state["total"]))
        except SessionExpired:
            return None
        if isinstance(outcome, int):
            return None  # incomplete: no video yet, publishing resumes the session
        state = self._finished(outcome)
        self._thumbnail(state)
        return self._result(self.ctx.checkpoints.load())

    # --- the upload ---------------------------------------------------------------------------

    def _video(self) -> MediaFile:
        media = [m for m in self.ctx.first.media if m.info.is_video]
        if not media:
            raise PermanentError("YouTube needs a video: the post has none",
                                 platform_code="mediaBodyRequired")
        return media[0]

    def _upload(self, video: MediaFile, state: Mapping[str, Any]) -> dict[str, Any]:
        total = video.path.stat().st_size
        session: str | None = state.get("sessionUri") if state.get("total") == total else None
        offset: int | None = None  # unknown until the saved session is probed
        for _ in range(MAX_SESSIONS):
            if session is None:
                session, offset = self._start(video, total), 0
            try:
                return self._send(video, session, total, offset)
            except SessionExpired:
                self.log("upload_session_expired", "YouTube forgot the upload session (404); "
                                                   "starting again from byte 0")
                self._save(sessionUri=None, total=None, bytesUploaded=None)
                session = None
        raise TransientError("YouTube let the upload session expire again and again",
                             platform_code="sessionExpired")

    def _start(self, video: MediaFile, total: int) -> str:
        body = rules.video_resource(self.config, self.ctx.first.text)
        if not body["snippet"]["title"]:
            raise PermanentError("YouTube needs a title: set platformConfig.youtube.title",
                                 platform_code="invalidTitle")
        params = {"uploadType": "resumable", "part": "snippet,status"}
        if isinstance(self.config.get("notifySubscribers"), bool):
            params["notifySubscribers"] = str(self.config["notifySubscribers"]).lower()
        headers = {**self._auth(), "Content-Type": "application/json; charset=UTF-8",
                   "X-Upload-Content-Length": str(total),
                   "X-Upload-Content-Type": video.info.mime_type or "application/octet-stream"}
        # opening a session creates nothing on the channel: safe to retry
        response = send(self.http, "POST", f"{self.base}/upload/youtube/v3/videos",
                        platform="YouTube", what="upload session start", creates=False,
                        params=params, json=body, headers=headers)
        if response.status_code >= 300:
            raise response_error(response, what="upload") from _status_error(response)
        location = response.headers.get("Location")
        if not location:
            raise TransientError("YouTube opened an upload session without a Location",
                                 platform_code="noLocation")
        session = str(response.request.url.join(location))
        self._save(sessionUri=session, total=total, bytesUploaded=0,
                   sessionStartedAt=utcnow().isoformat())
        self.log("upload_session_started", f"upload session opened for {total:,} bytes",
                 total=total, chunkSize=self.chunk)
        return session

    def _send(self, video: MediaFile, session: str, total: int,
              offset: int | None) -> dict[str, Any]:
        """Send the file from ``offset`` (probe first when unknown) until YouTube returns
        the video. Interruptions (no answer, 5xx) are followed by a probe and a resume."""
        if offset is None:
            outcome = self._probe(session, total)
            if isinstance(outcome, dict):
                return outcome
            offset = outcome
            self.log("upload_resumed", f"resuming the saved upload session at byte {offset:,}",
                     offset=offset, total=total)
        while True:
            end = min(offset + self.chunk, total)
            try:
                response: httpx.Response | None = self._put_chunk(video, session, offset,
                                                                  end, total)
            except httpx.TransportError as exc:
                self.log("upload_interrupted", f"no answer for bytes {offset:,}-{end - 1:,} "
                                               f"({type(exc).__name__}); probing the session",
                         offset=offset)
                response = None
            if response is not None:
                if response.status_code in (200, 201):
                    return _json(response)
                if response.status_code == 308:
                    offset = received_until(response)
                    self._save(bytesUploaded=offset)
                    continue
                if response.status_code in (404, 410):
                    raise SessionExpired()
                if response.status_code not in RESUMABLE_STATUSES:
                    raise response_error(response, what="upload") from _status_error(response)
                self.log("upload_interrupted", f"YouTube answered {response.status_code} for "
                                               f"bytes {offset:,}-{end - 1:,}; probing the "
                                               "session", offset=offset)
            outcome = self._probe(session, total, after_interruption=True)
            if isinstance(outcome, dict):
                return outcome
            self.log("upload_resumed", f"YouTube has {outcome:,} bytes; resuming there",
                     offset=outcome, total=total)
            offset = outcome

    def _put_chunk(self, video: MediaFile, session: str, start: int, end: int,
                   total: int) -> httpx.Response:
        headers = {**self._auth(), "Content-Length": str(end - start),
                   "Content-Type": video.info.mime_type or "application/octet-stream"}
        if total:
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{total}"
        # a generator with an explicit Content-Length: streamed from disk, never held whole
        return self.http.put(session, content=file_slice(video.path, start, end),
                             headers=headers, follow_redirects=False)

    def _probe(self, session: str, total: int,
               after_interruption: bool = False) -> dict[str, Any] | int:
        """Ask the session how far it got: the video (finished) or the next byte wanted.
        Retries with backoff while YouTube does not answer or answers 5xx."""
        delays = self.ctx.poll_delays()
        last = ""
        for attempt in range(MAX_PROBES):
            if after_interruption or attempt:
                self.ctx.sleep(next(delays))
            headers = {**self._auth(), "Content-Length": "0",
                       "Content-Range": f"bytes */{total}"}
            try:
                response = self.http.put(session, headers=headers, follow_redirects=False)
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code in (200, 201):
                return _json(response)
            if response.status_code == 308:
                return received_until(response)
            if response.status_code in (404, 410):
                raise SessionExpired()
            if response.status_code in RESUMABLE_STATUSES:
                last = f"HTTP {response.status_code}"
                wait = retry_after(response, default=None)
                if wait:
                    self.ctx.sleep(wait)
                continue
            raise response_error(response, what="upload") from _status_error(response)
        raise TransientError(f"the YouTube upload session did not answer ({last}); the next "
                             "attempt resumes it", platform_code="uploadInterrupted")

    def _finished(self, video: Mapping[str, Any]) -> dict[str, Any]:
        video_id = video.get("id")
        if not video_id:
            raise TransientError("YouTube finished the upload without a video id",
                                 platform_code="noVideoId")
        short = rules.is_short(self._video().info)
        self._save(videoId=str(video_id), short=short,
                   uploadStatus=(video.get("status") or {}).get("uploadStatus"))
        self.log("uploaded", f"YouTube has the video {video_id}", videoId=video_id,
                 short=short)
        return self.ctx.checkpoints.load()

    # --- the thumbnail ------------------------------------------------------------------

    def _thumbnail(self, state: Mapping[str, Any]) -> None:
        """Set the custom thumbnail once; the video stays published whatever happens."""
        cover = self.ctx.cover_image
        if cover is None or state.get("thumbnail"):
            return
        video_id = state["videoId"]
        outcome, message = "failed", ""
        delays = self.ctx.poll_delays()
        for attempt in range(THUMBNAIL_TRIES):
            if attempt:
                self.ctx.sleep(next(delays))
            size = cover.path.stat().st_size
            headers = {**self._auth(), "Content-Length": str(size),
                       "Content-Type": cover.info.mime_type or "application/octet-stream"}
            try:
                response = self.http.post(f"{self.base}/upload/youtube/v3/thumbnails/set",
                                          params={"videoId": video_id}, headers=headers,
                                          content=file_slice(cover.path, 0, size))
            except httpx.TransportError as exc:
                message = f"no answer ({type(exc).__name__})"
                continue
            if response.status_code < 300:
                outcome = "set"
                break
            error = response_error(response, what="thumbnail")
            message = error.message
            if isinstance(error, TransientError):
                continue
            outcome = "refused"
            break
        self._save(thumbnail=outcome)
        if outcome == "set":
            self.log("thumbnail_set", f"custom thumbnail set on {video_id}")
        elif outcome == "refused":
            self.log("thumbnail_refused", f"YouTube refused the custom thumbnail ({message}); "
                                          "the video is published with YouTube's own",
                     videoId=video_id)
        else:
            self.log("thumbnail_failed", f"the custom thumbnail could not be set ({message}); "
                                         "the video is published with YouTube's own",
                     videoId=video_id)

    # --- helpers --------------------------------------------------------------------------

    def _result(self, state: Mapping[str, Any]) -> PublishResult:
        video_id = str(state["videoId"])
        short = bool(state.get("short"))
        extra: dict[str, Any] = {"short": short}
        if state.get("thumbnail"):
            extra["thumbnail"] = state["thumbnail"]
        return PublishResult(receipts=[Receipt(
            external_id=video_id, external_url=watch_url(video_id, short),
            post_id=self.ctx.first.post_id, extra=extra)])

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.ctx.credentials.access_token}"}

    def _save(self, **changes: Any) -> None:
        state = self.ctx.checkpoints.load()
        for key, value in changes.items():
            if value is None:
                state.pop(key, None)
            else:
                state[key] = value
        self.ctx.checkpoints.save(state)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise TransientError("YouTube finished the upload but its answer is not a video "
                             "resource", platform_code="badBody")
    return body


def _status_error(response: httpx.Response) -> httpx.HTTPStatusError:
    return httpx.HTTPStatusError(
        f"{response.status_code} from {response.request.method} {response.request.url.path}",
        request=response.request, response=response)
