"""Media to blobs: images through ``uploadBlob``, video through the video service
(platforms-more.md §1.6, §1.7).

A blob is content-addressed: uploading the same bytes again gives the same ``ref``, so a
re-upload never duplicates anything. Blob refs are checkpointed with the time they were
made and reused for :data:`BLOB_REUSE_S`; the PDS deletes a blob that no record names
"within a time window (eg, minutes)", so an older ref is uploaded again.

Video follows the recommended path: a service token from the PDS
(``getServiceAuth``, audience the PDS's ``did:web``, for ``uploadBlob``), the MP4 to
``app.bsky.video.uploadVideo``, then ``getJobStatus`` polled until the job carries a
``blob``. The job id is checkpointed as soon as the service acknowledges the upload, so a
worker that takes over polls the same job instead of uploading again. Both shapes of the
answer are read (the JobStatus at top level, as the service sends it, or under
``jobStatus`` as the lexicon says), and a ``blob`` is taken whatever the state
(``already_exists`` comes with one).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from chat33_core.errors import PermanentError, TransientError
from chat33_core.http import send
from chat33_core.platforms import EventLog, MediaFile

from .metadata import strip_jpeg_metadata
from .xrpc import Xrpc, body_of, raise_for_response

BLOB_REUSE_S = 300.0
#: give up polling one job after this much waiting (the job id stays checkpointed)
VIDEO_TIMEOUT_S = 900.0
SERVICE_TOKEN_TTL_S = 1800
VIDEO_FAILED = "JOB_STATE_FAILED"


def fresh_blob(entry: Any, now: float | None = None) -> dict[str, Any] | None:
    """The blob of a checkpoint entry ``{"blob", "at"}`` if still young enough to use."""
    if not isinstance(entry, Mapping) or not isinstance(entry.get("blob"), Mapping):
        return None
    now = time.time() if now is None else now
    if now - float(entry.get("at") or 0) > BLOB_REUSE_S:
        return None
    return dict(entry["blob"])


def upload_blob(pds: Xrpc, media: MediaFile, what: str) -> dict[str, Any]:
    """``uploadBlob`` of one file; answers the blob object. A JPEG goes without its
    camera metadata (:mod:`.metadata`); other files are streamed from disk."""
    mime = media.info.mime_type or "application/octet-stream"
    if media.info.format.upper() == "JPEG":
        data = strip_jpeg_metadata(media.path.read_bytes())  # images are ≤ 2 MB
        body = pds.json("POST", "com.atproto.repo.uploadBlob", what=what, content=data,
                        headers={"Content-Type": mime})
    else:
        with media.open() as fh:
            body = pds.json("POST", "com.atproto.repo.uploadBlob", what=what, content=fh,
                            headers={"Content-Type": mime,
                                     "Content-Length": str(media.info.size)})
    blob = body.get("blob")
    if not isinstance(blob, Mapping):
        raise TransientError(f"{what}: Bluesky answered without a blob",
                             platform_code="bad-response")
    return dict(blob)


def _job(body: Mapping[str, Any]) -> Mapping[str, Any]:
    """The JobStatus, at top level or under ``jobStatus``."""
    nested = body.get("jobStatus")
    return nested if isinstance(nested, Mapping) else body


class VideoUpload:
    """One video through the video service, resumable from ``state`` (a checkpoint dict
    that this class fills and ``save`` persists)."""

    def __init__(self, *, http: httpx.Client, pds: Xrpc, video_base: str, did: str,
                 state: MutableMapping[str, Any], save: Callable[[], None],
                 sleep: Callable[[float], None], delays: Iterator[float],
                 log: EventLog) -> None:
        self.http = http
        self.pds = pds
        self.video = Xrpc(http, video_base)
        self.did = did
        self.state = state
        self.save = save
        self.sleep = sleep
        self.delays = delays
        self.log = log

    def blob(self, media: MediaFile) -> dict[str, Any]:
        """The video's blob: from the checkpoint, from the job in progress, or uploaded."""
        ready = fresh_blob(self.state)
        if ready is not None:
            return ready
        job_id = self.state.get("jobId")
        started = float(self.state.get("jobAt") or 0)
        if not job_id or time.time() - started > VIDEO_TIMEOUT_S + BLOB_REUSE_S:
            found = self._upload(media)
            if found is not None:
                return self._done(found)
            job_id = self.state["jobId"]
        return self._done(self._poll(str(job_id)))

    def _done(self, blob: dict[str, Any]) -> dict[str, Any]:
        self.state.update({"blob": blob, "at": time.time()})
        self.save()
        return blob

    def _service_token(self) -> str:
        netloc = urlsplit(self.pds.host).netloc
        body = self.pds.json("GET", "com.atproto.server.getServiceAuth",
                             what="Bluesky service token",
                             params={"aud": f"did:web:{quote(netloc, safe='')}",
                                     "lxm": "com.atproto.repo.uploadBlob",
                                     "exp": int(time.time()) + SERVICE_TOKEN_TTL_S})
        token = body.get("token")
        if not isinstance(token, str):
            raise TransientError("Bluesky answered the service token request without a "
                                 "token", platform_code="bad-response")
        return token

    def _upload(self, media: MediaFile) -> dict[str, Any] | None:
        """Upload the MP4; the blob if the service already has it, else None (the job id
        is checkpointed)."""
        token = self._service_token()
        name = media.name or media.path.name
        with media.open() as fh:
            # no post exists yet: uploading again is harmless (same bytes, same blob)
            response = send(self.http, "POST", self.video.url("app.bsky.video.uploadVideo"),
                            platform="Bluesky", what="Bluesky video upload", creates=False,
                            params={"did": self.did, "name": name}, content=fh,
                            headers={"Authorization": f"Bearer {token}",
                                     "Content-Type": "video/mp4",
                                     "Content-Length": str(media.info.size)})
        try:
            body = response.json()
        except ValueError:
            body = {}
        job = _job(body) if isinstance(body, Mapping) else {}
        if isinstance(job.get("blob"), Mapping):  # includes ``already_exists``
            return dict(job["blob"])
        if not response.is_success or not job.get("jobId"):
            raise_for_response(response, what="Bluesky video upload")
            raise TransientError(f"Bluesky video upload answered without a job: "
                                 f"{response.text[:200]}", platform_code="bad-response")
        self.state.update({"jobId": str(job["jobId"]), "jobAt": time.time()})
        self.save()
        self.log("bluesky.video", f"video {name} uploaded; the video service is processing "
                 "it", job_id=job["jobId"])
        return None

    def _poll(self, job_id: str) -> dict[str, Any]:
        waited = 0.0
        while True:
            try:
                response = self.video.call("GET", "app.bsky.video.getJobStatus",
                                           params={"jobId": job_id},
                                           what="Bluesky video status")
            except PermanentError as exc:
                # the service no longer knows the job (expired): upload the video again
                self.state.pop("jobId", None)
                self.save()
                raise TransientError(f"{exc.message}; the video will be uploaded again",
                                     platform_code=exc.platform_code) from exc
            job = _job(body_of(response, "Bluesky video status"))
            if isinstance(job.get("blob"), Mapping):
                return dict(job["blob"])
            if job.get("state") == VIDEO_FAILED:
                self.state.pop("jobId", None)
                self.save()
                reason = job.get("message") or job.get("error") or "processing failed"
                raise PermanentError(f"Bluesky could not process the video: {reason}",
                                     platform_code=str(job.get("failureCode") or VIDEO_FAILED))
            if waited >= VIDEO_TIMEOUT_S:
                raise TransientError(f"Bluesky is still processing the video after "
                                     f"{waited:.0f} s (job {job_id}); the next attempt "
                                     "continues waiting", platform_code="video-processing")
            delay = next(self.delays)
            self.sleep(delay)
            waited += delay

