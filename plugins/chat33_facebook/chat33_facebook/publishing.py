"""Publishing one post to a Facebook Page, resumably and exactly once.

Flows (platforms.md §2):

* ``feed`` — text and/or link: ``POST /{page}/feed``;
* ``photo`` — one photo: ``POST /{page}/photos`` with ``url`` (Facebook fetches it);
* ``album`` — several photos: each ``POST /{page}/photos`` with ``published=false``,
  then ``POST /{page}/feed`` with ``attached_media``;
* ``video`` — Resumable Upload API (``/{app-id}/uploads`` session, ``file_offset``
  transfer streamed from disk, resume via ``GET upload:<id>``), then ``/{page}/videos``
  with the handle;
* ``reel`` — ``/{page}/video_reels`` start, upload to ``upload_url`` with
  ``offset``/``file_size`` (resume from ``bytes_transfered``), finish, then poll ``status``.

Checkpoints (one dict, saved right after every acknowledgement)::

    upload   {"session", "offset", "handle"}   video upload session
    reel     {"video_id", "upload_url", "uploaded"}
    photos   [photo ids]                       unpublished album photos, in order
    sending  {"kind", "message", "at"}         a creating request is (or was) in flight
    post     {"id", "kind", "photo_id"?}       the post exists on Facebook
    ready, permalink, comment, comment_sending

A takeover that finds ``sending`` without ``post`` asks Facebook first (recent posts,
videos, or the reel's status) and only creates the post when it is certainly absent.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

from chat33_core.errors import (
    PermanentError,
    PlatformError,
    ReconnectRequired,
    TransientError,
    UnknownOutcome,
)
from chat33_core.platforms import MediaFile, PublishContext, PublishResult, Receipt

from .graph import Graph, file_body
from .rules import post_kind

WEB = "https://www.facebook.com"
#: a lost request and its post differ by at most this in Facebook's created_time
CLOCK_SLACK_S = 300.0
#: transfers tried per publish before handing the retry to the worker
UPLOAD_ATTEMPTS = 5
#: status polls per publish while a reel is processing (the worker retries later)
MAX_POLLS = 200
RECENT_POSTS = 25


class Publisher:
    """One publish of one post; construct per call, then :meth:`run`."""

    def __init__(self, ctx: PublishContext, graph: Graph, app_id: str | None = None,
                 chunk_bytes: int | None = None) -> None:
        self.ctx = ctx
        self.graph = graph
        self.app_id = app_id
        self.chunk_bytes = chunk_bytes
        self.config = ctx.config("facebook")
        self.item = ctx.first
        self.message = self.item.text or ""
        self.kind = post_kind(ctx.media_type, list(self.item.media), self.config)
        self.state: dict[str, Any] = ctx.checkpoints.load()
        page = ctx.account.external_id
        if not page:
            raise ReconnectRequired("the Facebook channel has no Page id: reconnect the Page")
        self.page = page

    # --- entry points ---------------------------------------------------------------

    def run(self) -> PublishResult:
        if not self.state.get("post") and self.state.get("sending"):
            found = self.find_sent()
            if found is None:
                self.ctx.log("facebook.not_found", "the earlier attempt left no post on the "
                             "Page; publishing it now")
                self.save(sending=None)
        if not self.state.get("post"):
            {"feed": self.publish_feed, "photo": self.publish_photo,
             "album": self.publish_album, "video": self.publish_video,
             "reel": self.publish_reel}[self.kind]()
        return self.finish()

    def confirm(self) -> PublishResult | None:
        """The post if Facebook has it, ``None`` if it certainly does not."""
        if not self.state.get("post"):
            if not self.state.get("sending"):
                return None  # no creating request ever left
            if self.find_sent() is None:
                return None
        return self.finish()

    # --- checkpoints ------------------------------------------------------------------

    def save(self, **changes: Any) -> None:
        for key, value in changes.items():
            if value is None:
                self.state.pop(key, None)
            else:
                self.state[key] = value
        self.ctx.checkpoints.save(self.state)

    def create(self, kind: str, path: str, data: dict[str, Any], action: str) -> dict[str, Any]:
        """Send a request that creates the post, marked in the checkpoints first."""
        self.save(sending={"kind": kind, "message": self.message, "at": time.time()})
        return self.graph.post(path, action, creates=True, data=data)

    def created(self, post_id: str, **extra: Any) -> None:
        self.save(post={"id": post_id, "kind": self.kind, **extra}, sending=None)
        self.ctx.log("facebook.created", f"Facebook created {self.kind} {post_id}",
                     external_id=post_id)

    # --- feed and photos --------------------------------------------------------------

    def feed_fields(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.message:
            data["message"] = self.message
        if self.config.get("link"):
            data["link"] = str(self.config["link"])
        return data

    def publish_feed(self) -> None:
        body = self.create("feed", f"{self.page}/feed", self.feed_fields(), "creating the post")
        self.created(_id(body))

    def publish_photo(self) -> None:
        media = self.item.media[0]
        data = {"url": media.url, "published": "true"}
        if self.message:
            data["caption"] = self.message
        body = self.create("photo", f"{self.page}/photos", data, "publishing the photo")
        self.created(str(body.get("post_id") or _id(body)), photo_id=_id(body))

    def publish_album(self) -> None:
        photos: list[str] = list(self.state.get("photos") or [])
        for i, media in enumerate(self.item.media):
            if i < len(photos):
                continue  # uploaded before a takeover
            # An unpublished photo is not a post: losing its answer only leaves an orphan.
            body = self.graph.post(f"{self.page}/photos", f"uploading photo {i + 1}",
                                   data={"url": media.url, "published": "false"})
            photos.append(_id(body))
            self.save(photos=photos)
            self.ctx.log("facebook.photo_uploaded", f"photo {i + 1} uploaded unpublished",
                         photo_id=photos[-1])
        data = self.feed_fields()
        for i, photo_id in enumerate(photos):
            data[f"attached_media[{i}]"] = json.dumps({"media_fbid": photo_id})
        body = self.create("album", f"{self.page}/feed", data, "creating the photo post")
        self.created(_id(body), photo_ids=photos)

    # --- video: Resumable Upload API ----------------------------------------------------

    def publish_video(self) -> None:
        media = self.item.media[0]
        handle = self.upload_video(media)
        data: dict[str, Any] = {"fbuploader_video_file_chunk": handle}
        if self.message:
            data["description"] = self.message
        if self.config.get("title"):
            data["title"] = str(self.config["title"])
        body = self.create("video", f"{self.page}/videos", data, "publishing the video")
        self.created(_id(body), video_id=_id(body))

    def upload_video(self, media: MediaFile) -> str:
        upload: dict[str, Any] = dict(self.state.get("upload") or {})
        if upload.get("handle"):
            return str(upload["handle"])
        if not self.app_id:
            raise PermanentError("uploading a video to Facebook needs the Meta app id: set "
                                 "CHAT33_FACEBOOK_APP_ID (or CHAT33_FACEBOOK_CLIENT_ID)")
        size = media.path.stat().st_size
        if upload.get("session"):
            offset = self.session_offset(upload)
        else:
            body = self.graph.post(f"{self.app_id}/uploads", "opening an upload session",
                                   params={"file_name": media.name or media.path.name,
                                           "file_length": size, "file_type": "video/mp4"})
            upload = {"session": _id(body), "offset": 0}
            self.save(upload=upload)
            self.ctx.log("facebook.upload_session", "upload session opened",
                         session=upload["session"])
            offset = 0
        for attempt in range(1, UPLOAD_ATTEMPTS + 1):
            try:
                body = self.graph.call(
                    "POST", str(upload["session"]), "uploading the video",
                    headers={"file_offset": str(offset), "Content-Length": str(size - offset),
                             "Content-Type": "application/octet-stream"},
                    content=self.body(media, offset))
            except TransientError as exc:
                if attempt == UPLOAD_ATTEMPTS:
                    raise
                self.ctx.log("facebook.upload_interrupted", f"upload interrupted at attempt "
                             f"{attempt}: {exc.message}; resuming")
                offset = self.session_offset(upload)
                continue
            if body.get("h"):
                upload.update(handle=str(body["h"]), offset=size)
                self.save(upload=upload)
                self.ctx.log("facebook.uploaded", f"{size} bytes uploaded", bytes=size)
                return str(body["h"])
            offset = self.session_offset(upload)
        raise TransientError("Facebook did not finish the video upload; resuming later")

    def session_offset(self, upload: dict[str, Any]) -> int:
        """Where Facebook's copy of the upload ends (``GET upload:<id>``), checkpointed."""
        body = self.graph.get(str(upload["session"]), "checking the upload session")
        upload["offset"] = int(body.get("file_offset") or 0)
        self.save(upload=upload)
        self.ctx.log("facebook.upload_resume", f"Facebook holds {upload['offset']} bytes",
                     offset=upload["offset"])
        return int(upload["offset"])

    def body(self, media: MediaFile, offset: int) -> Any:
        if self.chunk_bytes:
            return file_body(media.path, offset, self.chunk_bytes)
        return file_body(media.path, offset)

    # --- reels -----------------------------------------------------------------------

    def publish_reel(self) -> None:
        media = self.item.media[0]
        reel: dict[str, Any] = dict(self.state.get("reel") or {})
        resumed = bool(reel.get("video_id"))
        if not resumed:
            body = self.graph.post(f"{self.page}/video_reels", "starting the reel upload",
                                   data={"upload_phase": "start"})
            reel = {"video_id": str(body["video_id"]), "upload_url": str(body["upload_url"])}
            self.save(reel=reel)
            self.ctx.log("facebook.reel_started", "reel upload started",
                         video_id=reel["video_id"])
        if not reel.get("uploaded"):
            self.upload_reel(reel, media, resumed)
        data: dict[str, Any] = {"video_id": reel["video_id"], "upload_phase": "finish",
                                "video_state": "PUBLISHED"}
        if self.message:
            data["description"] = self.message
        if self.config.get("title"):
            data["title"] = str(self.config["title"])
        body = self.create("reel", f"{self.page}/video_reels", data, "publishing the reel")
        if body.get("success") is False:
            raise PermanentError("Facebook did not publish the reel")
        self.created(reel["video_id"], video_id=reel["video_id"])

    def upload_reel(self, reel: dict[str, Any], media: MediaFile, resumed: bool) -> None:
        size = media.path.stat().st_size
        # After a takeover Facebook may hold part of the file already: ask it where to go on.
        offset = self.reel_offset(reel) if resumed else 0
        for attempt in range(1, UPLOAD_ATTEMPTS + 1):
            if offset < size:
                try:
                    self.graph.call(
                        "POST", str(reel["upload_url"]), "uploading the reel",
                        headers={"offset": str(offset), "file_size": str(size),
                                 "Content-Length": str(size - offset),
                                 "Content-Type": "application/octet-stream"},
                        content=self.body(media, offset))
                except TransientError as exc:
                    if attempt == UPLOAD_ATTEMPTS:
                        raise
                    self.ctx.log("facebook.upload_interrupted", f"reel upload interrupted at "
                                 f"attempt {attempt}: {exc.message}; resuming")
            offset = self.reel_offset(reel)
            if offset >= size:
                reel["uploaded"] = True
                self.save(reel=reel)
                self.ctx.log("facebook.uploaded", f"{size} bytes uploaded", bytes=size)
                return
        raise TransientError("Facebook did not receive the whole reel; resuming later")

    def reel_offset(self, reel: dict[str, Any]) -> int:
        status = self.reel_status(reel["video_id"])
        phase = status.get("uploading_phase") or {}
        reel["offset"] = int(phase.get("bytes_transfered") or 0)  # Meta's spelling
        self.save(reel=reel)
        return int(reel["offset"])

    def reel_status(self, video_id: str) -> dict[str, Any]:
        body = self.graph.get(video_id, "checking the reel status", fields="status")
        status = body.get("status")
        return status if isinstance(status, dict) else {}

    def await_reel(self, video_id: str) -> None:
        """Poll the reel's phases until it is published; fail on a phase error."""
        for n, delay in enumerate(self.ctx.poll_delays()):
            status = self.reel_status(video_id)
            for phase in ("uploading_phase", "processing_phase", "publishing_phase"):
                info = status.get(phase) or {}
                if info.get("status") == "error":
                    why = (info.get("error") or {}).get("message") or "no reason given"
                    raise PermanentError(f"Facebook failed the reel in its "
                                         f"{phase.replace('_', ' ')}: {why}",
                                         platform_code=f"reel_{phase}")
            if status.get("video_status") in ("error", "expired", "upload_failed"):
                raise PermanentError(f"Facebook reports the reel as {status['video_status']}")
            publishing = status.get("publishing_phase") or {}
            if publishing.get("status") == "completed" or publishing.get(
                    "publish_status") == "published":
                return
            if n + 1 >= MAX_POLLS:
                raise TransientError("the reel is still processing on Facebook", retry_after=60)
            self.ctx.log("facebook.processing", "reel processing", status=status)
            self.ctx.sleep(delay)

    # --- finishing ------------------------------------------------------------------

    def finish(self) -> PublishResult:
        post = self.state["post"]
        if post.get("kind") == "reel" and not self.state.get("ready"):
            self.await_reel(post["id"])
            self.save(ready=True)
        if not self.state.get("permalink"):
            self.save(permalink=self.permalink(post["id"]))
        extra: dict[str, Any] = {"kind": post.get("kind")}
        for key in ("photo_id", "photo_ids", "video_id"):
            if post.get(key):
                extra[key] = post[key]
        comment = self.first_comment(post["id"])
        extra.update(comment)
        return PublishResult([Receipt(external_id=post["id"], external_url=self.state["permalink"],
                                      post_id=self.item.post_id, extra=extra)])

    def permalink(self, object_id: str) -> str:
        try:
            body = self.graph.get(object_id, "reading the permalink", fields="permalink_url")
        except PlatformError as exc:
            self.ctx.log("facebook.permalink_unavailable", exc.message)
            return f"{WEB}/{object_id}"
        url = str(body.get("permalink_url") or f"/{object_id}")
        return url if url.startswith("http") else f"{WEB}/{url.lstrip('/')}"

    def first_comment(self, object_id: str) -> dict[str, Any]:
        """Post ``firstComment`` once. A failure is logged, never fails the post: the post
        is already on the Page."""
        text = self.config.get("firstComment")
        if not text:
            return {}
        if self.state.get("comment"):
            return {"comment_id": self.state["comment"]}
        try:
            if self.state.get("comment_sending"):
                found = self.find_comment(object_id, str(text))
                if found:
                    self.save(comment=found, comment_sending=None)
                    return {"comment_id": found}
            self.save(comment_sending=True)
            body = self.graph.post(f"{object_id}/comments", "posting the first comment",
                                   creates=True, data={"message": str(text)})
        except PlatformError as exc:
            self.ctx.log("facebook.first_comment_failed", exc.message)
            return {"first_comment_error": exc.message}
        self.save(comment=_id(body), comment_sending=None)
        self.ctx.log("facebook.first_comment", "first comment posted", comment_id=_id(body))
        return {"comment_id": _id(body)}

    def find_comment(self, object_id: str, text: str) -> str | None:
        body = self.graph.get(f"{object_id}/comments", "reading the comments",
                              fields="id,message", limit=RECENT_POSTS)
        for row in body.get("data") or []:
            if (row.get("message") or "").strip() == text.strip():
                return str(row["id"])
        return None

    # --- confirming an unknown outcome --------------------------------------------------

    def find_sent(self) -> str | None:
        """After a creating request without answer: the post's id if Facebook has it,
        ``None`` if certainly not; ``UnknownOutcome`` if Facebook cannot tell."""
        sending = self.state["sending"]
        kind = sending.get("kind")
        if kind == "reel":
            video_id = str(self.state["reel"]["video_id"])
            status = self.reel_status(video_id)
            # A finish that arrived moved the reel on: processing (or publishing) started.
            started = [(status.get(p) or {}).get("status") not in (None, "not_started")
                       for p in ("processing_phase", "publishing_phase")]
            publish_status = (status.get("publishing_phase") or {}).get("publish_status")
            if any(started) or publish_status in ("published", "scheduled"):
                self.created(video_id, video_id=video_id)
                return video_id
            return None
        if kind == "video":
            body = self.graph.get(f"{self.page}/videos", "checking the Page's videos",
                                  fields="id,description,created_time", limit=RECENT_POSTS)
            found = _match(body.get("data") or [], "description", sending)
            if found:
                self.created(found, video_id=found)
            return found
        body = self.graph.get(f"{self.page}/published_posts", "checking the Page's posts",
                              fields="id,message,created_time", limit=RECENT_POSTS)
        found = _match(body.get("data") or [], "message", sending)
        if found:
            extra = {"photo_ids": self.state["photos"]} if kind == "album" else {}
            self.created(found, **extra)
        return found


def _match(rows: list[dict[str, Any]], field: str, sending: dict[str, Any]) -> str | None:
    """The row posted by the lost request: same text, created after it was sent."""
    since = float(sending.get("at") or 0) - CLOCK_SLACK_S
    message = (sending.get("message") or "").strip()
    hits = [r for r in rows if (r.get(field) or "").strip() == message
            and _created(r.get("created_time")) >= since]
    if len(hits) == 1:
        return str(hits[0]["id"])
    if not hits:
        return None
    if message:
        return str(hits[0]["id"])  # newest first: the same text twice is refused (506) anyway
    raise UnknownOutcome("several posts without text appeared on the Page since the lost "
                         "request; chat33 cannot tell which one is this post")


def _created(value: Any) -> float:
    if not value:
        return 0.0
    try:
        return datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%S%z").timestamp()
    except ValueError:
        return 0.0


def _id(body: dict[str, Any]) -> str:
    value = body.get("id")
    if not value:
        raise TransientError(f"Facebook's answer has no id: {str(body)[:200]}")
    return str(value)
