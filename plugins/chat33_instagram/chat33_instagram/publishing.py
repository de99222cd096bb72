"""Publishing one Instagram post: containers, status polling, quota, media_publish.

The flow (platforms.md §1.5): create a container (for a carousel, one child per item
and then the parent), poll its ``status_code`` until ``FINISHED``, check the live
``content_publishing_limit``, then ``media_publish``; read the permalink back and post
the optional first comment.

Exactly once: every acknowledged step is saved in the checkpoints at once::

    {"kind": "reel", "children": [...], "container": "...", "publishStartedAt": 1.7e9,
     "mediaId": "...", "permalink": "...", "commentId": "..."}

A worker that takes over asks the saved container's status first: ``PUBLISHED`` means
the earlier attempt got through (we find the media, never publish again); ``EXPIRED``
(24 h) or a dead container means a new one is created.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from chat33_core.errors import (
    PermanentError,
    QuotaExceeded,
    TransientError,
    UnknownOutcome,
)
from chat33_core.models import utcnow
from chat33_core.platforms import MediaFile, PublishContext, PublishResult, Receipt

from .graph import QUOTA_RETRY_AFTER, RECREATE_SUBCODES, USER_MESSAGES, Graph
from .rules import CAROUSEL, REEL, STORY, post_kind

#: Meta: "query a container's status once per minute, for no more than 5 minutes"
MAX_PROCESSING_WAIT_S = 300.0
MAX_POLLS = 60
#: how far before our publish call a found media's timestamp may be (clock skew)
TIMESTAMP_SLACK_S = 120.0
#: container ERROR subcodes that a fresh container may fix
RETRYABLE_CONTAINER_SUBCODES = RECREATE_SUBCODES | {2207001, 2207003, 2207032}

FINISHED, IN_PROGRESS, PUBLISHED, EXPIRED, ERROR = (
    "FINISHED", "IN_PROGRESS", "PUBLISHED", "EXPIRED", "ERROR")
#: the container is unknown to Meta (never existed here, or purged)
MISSING = "MISSING"


class Publisher:
    """One publish (or confirm) of one post; state lives in ``ctx.checkpoints``."""

    def __init__(self, ctx: PublishContext, graph: Graph) -> None:
        self.ctx = ctx
        self.graph = graph
        self.config = ctx.config("instagram")
        self.item = ctx.first
        self.media: list[MediaFile] = list(self.item.media)
        self.kind = post_kind(ctx.media_type, self.config, [m.info for m in self.media])
        self.user = ctx.account.external_id or "me"
        self.state: dict[str, Any] = dict(ctx.checkpoints.load())

    # --- entry points -----------------------------------------------------------

    def publish(self) -> PublishResult:
        if not self.media:
            raise PermanentError("Instagram has no text-only posts: add an image or video",
                                 platform_code="media_required")
        if self.state.get("kind") not in (None, self.kind):
            # the post changed shape since the last attempt: its containers do not fit
            self._forget_containers("the post changed from "
                                    f"{self.state.get('kind')} to {self.kind}")
        media_id = self.state.get("mediaId")
        if media_id is None:
            media_id = self._publish_containers()
        return self._finish(media_id)

    def confirm(self) -> PublishResult | None:
        """The result if the post is on Instagram, ``None`` if it certainly is not."""
        if self.state.get("mediaId"):
            return self._finish(self.state["mediaId"])
        container = self.state.get("container")
        if not container or not self.state.get("publishStartedAt"):
            return None  # media_publish was never sent
        status, _ = self._status(container)
        if status == PUBLISHED:
            return self._finish(self._find_published(container))
        return None

    # --- containers ---------------------------------------------------------------

    def _publish_containers(self) -> str:
        container = self.state.get("container")
        if container:
            status, detail = self._status(container)
            self.ctx.log("resume", f"container {container} is {status}",
                         container=container, status=status)
            if status == PUBLISHED:
                return self._find_published(container)
            if status in (EXPIRED, MISSING):
                self._forget_containers(f"container {container} is {status.lower()}")
                container = None
            elif status == ERROR:
                self._container_failed(container, detail)
        if not container:
            container = self._create()
        status = self._wait(container)
        if status == PUBLISHED:  # another worker published it meanwhile
            return self._find_published(container)
        self._check_quota()
        return self._media_publish(container)

    def _create(self) -> str:
        self.save(kind=self.kind)
        if self.kind == CAROUSEL:
            children = self._carousel_children()
            params = {"media_type": "CAROUSEL", "children": ",".join(children),
                      "caption": self.item.text, **self._shared_params()}
        else:
            params = self._single_params(self.media[0])
        body = self.graph.post(f"{self.user}/media", params, what="container creation")
        container = str(body["id"])
        self.save(container=container, containerCreatedAt=time.time())
        self.ctx.log("container_created", f"Instagram {self.kind} container {container}",
                     container=container)
        return container

    def _carousel_children(self) -> list[str]:
        children: list[str] = list(self.state.get("children") or [])
        for i, mf in enumerate(self.media):
            if i < len(children):
                status, _ = self._status(children[i])
                if status in (FINISHED, IN_PROGRESS):
                    continue
                self.ctx.log("child_recreated", f"carousel item {i} container is {status}",
                             container=children[i], status=status)
            params: dict[str, Any] = {"is_carousel_item": True}
            if mf.info.is_video:
                params.update(media_type="VIDEO", video_url=mf.url)
            else:
                params.update(image_url=mf.url, user_tags=self._user_tags(with_xy=True))
            body = self.graph.post(f"{self.user}/media", params,
                                   what=f"carousel item {i} container")
            child = str(body["id"])
            if i < len(children):
                children[i] = child
            else:
                children.append(child)
            self.save(children=list(children))
            self.ctx.log("container_created", f"carousel item {i} container {child}",
                         container=child, position=i)
        # children must be processed before the parent can reference them
        for child in children:
            if self._wait(child) != FINISHED:
                raise TransientError(f"carousel item container {child} was already used; "
                                     "it will be created again", platform_code="child")
        return children

    def _single_params(self, mf: MediaFile) -> dict[str, Any]:
        cfg = self.config
        if self.kind == STORY:
            params: dict[str, Any] = {"media_type": "STORIES"}
            params["video_url" if mf.info.is_video else "image_url"] = mf.url
            params["user_tags"] = self._user_tags(with_xy=False)
            return params
        if self.kind == REEL:
            cover = cfg.get("coverUrl") or (self.ctx.cover_image.url
                                            if self.ctx.cover_image else None)
            return {
                "media_type": "REELS", "video_url": mf.url, "caption": self.item.text,
                "share_to_feed": cfg.get("shareToFeed"), "cover_url": cover,
                "thumb_offset": _int_or_none(cfg.get("thumbOffsetMs")),
                "user_tags": self._user_tags(with_xy=False), **self._shared_params(),
            }
        return {
            "image_url": mf.url, "caption": self.item.text, "alt_text": cfg.get("altText"),
            "user_tags": self._user_tags(with_xy=True), **self._shared_params(),
        }

    def _shared_params(self) -> dict[str, Any]:
        collaborators = self.config.get("collaborators")
        return {
            "collaborators": json.dumps(list(collaborators)) if collaborators else None,
            "location_id": self.config.get("locationId"),
        }

    def _user_tags(self, with_xy: bool) -> str | None:
        tags = self.config.get("userTags")
        if not tags:
            return None
        out = []
        for tag in tags:
            entry = {"username": tag["username"]}
            if with_xy or "x" in tag:
                entry.update(x=float(tag.get("x", 0.5)), y=float(tag.get("y", 0.5)))
            out.append(entry)
        return json.dumps(out)

    # --- status -------------------------------------------------------------------

    def _status(self, container: str) -> tuple[str, str | None]:
        try:
            body = self.graph.get(container, {"fields": "status_code,status"},
                                  what="container status")
        except PermanentError as exc:
            if exc.platform_code in ("100/33", "100"):
                return MISSING, None
            raise
        return str(body.get("status_code") or IN_PROGRESS), body.get("status")

    def _wait(self, container: str) -> str:
        """Poll until the container leaves ``IN_PROGRESS``; returns FINISHED or PUBLISHED."""
        waited = 0.0
        delays = self.ctx.poll_delays()
        for _ in range(MAX_POLLS):
            status, detail = self._status(container)
            if status in (FINISHED, PUBLISHED):
                if status == FINISHED:
                    self.ctx.log("container_ready", f"container {container} is FINISHED",
                                 container=container)
                return status
            if status == ERROR:
                self._container_failed(container, detail)
            if status in (EXPIRED, MISSING):
                self._forget_containers(f"container {container} is {status.lower()}")
                raise TransientError(f"Instagram container {container} expired before "
                                     "publishing; a new one will be created",
                                     platform_code="2207020")
            if waited >= MAX_PROCESSING_WAIT_S:
                break
            delay = next(delays)
            self.ctx.log("processing", f"container {container} is {status}; next check "
                         f"in {delay:.1f} s", container=container, status=status)
            self.ctx.sleep(delay)
            waited += delay
        raise TransientError(f"Instagram is still processing container {container}; "
                             "publishing resumes on the next attempt", retry_after=60.0,
                             platform_code=IN_PROGRESS)

    def _container_failed(self, container: str, detail: str | None) -> None:
        match = re.search(r"\d{4,}", str(detail or ""))
        subcode = int(match.group()) if match else None
        code = f"ERROR/{subcode}" if subcode else "ERROR"
        message = USER_MESSAGES.get(subcode or 0) or (
            f"Instagram could not process the media ({detail or 'no reason given'})")
        self.ctx.log("container_error", message, container=container, status=detail)
        if subcode in RETRYABLE_CONTAINER_SUBCODES:
            self._forget_containers(f"container {container} failed with {subcode}")
            raise TransientError(f"{message} A new container will be created.",
                                 platform_code=code)
        raise PermanentError(message, platform_code=code)

    def _forget_containers(self, why: str) -> None:
        self.ctx.log("container_dropped", f"creating new containers: {why}")
        for key in ("container", "children", "containerCreatedAt", "publishStartedAt"):
            self.state.pop(key, None)
        self.state["kind"] = self.kind
        self.ctx.checkpoints.save(self.state)

    # --- quota and publish ------------------------------------------------------------

    def _check_quota(self) -> None:
        # without ``since`` Meta counts the last 24 h, judged by its own clock (ours
        # may be off, and a ``since`` older than 24 h is an error)
        body = self.graph.get(f"{self.user}/content_publishing_limit",
                              {"fields": "quota_usage,config"},
                              what="publishing limit check")
        data = (body.get("data") or [{}])[0]
        usage = int(data.get("quota_usage") or 0)
        total = (data.get("config") or {}).get("quota_total")
        self.ctx.log("quota", f"Instagram publishing quota: {usage} of {total} used in 24 h",
                     usage=usage, total=total)
        if total is not None and usage >= int(total):
            raise QuotaExceeded(
                f"Instagram's publishing limit is spent ({usage} of {total} posts in 24 h); "
                "the post waits for quota", retry_at=utcnow() + QUOTA_RETRY_AFTER,
                platform_code="9/2207042")

    def _media_publish(self, container: str) -> str:
        # saved before sending: after a crash we know to ask the container, not resend
        self.save(publishStartedAt=time.time())
        self.ctx.log("publishing", f"publishing container {container}", container=container)
        body = self.graph.post(f"{self.user}/media_publish", {"creation_id": container},
                               what="media_publish", creating=True)
        media_id = str(body["id"])
        self.save(mediaId=media_id)
        self.ctx.log("published", f"Instagram media {media_id}", media_id=media_id)
        return media_id

    def _find_published(self, container: str) -> str:
        """The media a ``PUBLISHED`` container became (the Graph API links them by
        nothing but time and caption)."""
        edge = "stories" if self.kind == STORY else "media"
        body = self.graph.get(f"{self.user}/{edge}",
                              {"fields": "id,caption,media_type,permalink,timestamp",
                               "limit": 25}, what="recent media lookup")
        started = float(self.state.get("publishStartedAt") or
                        self.state.get("containerCreatedAt") or 0.0)
        found = []
        for media in body.get("data") or []:
            when = _timestamp(media.get("timestamp"))
            if when is None or when < started - TIMESTAMP_SLACK_S:
                continue
            if self.kind != STORY and (media.get("caption") or "") != (self.item.text or ""):
                continue
            found.append(media)
        if len(found) != 1:
            raise UnknownOutcome(
                f"Instagram says container {container} is published, but "
                f"{len(found)} matching media were found; check the account "
                f"{self.ctx.account.name!r} before posting again", platform_code=PUBLISHED)
        media = found[0]
        self.save(mediaId=str(media["id"]), permalink=media.get("permalink"))
        self.ctx.log("confirmed", f"container {container} was already published as media "
                     f"{media['id']}", media_id=media["id"], container=container)
        return str(media["id"])

    # --- after publishing ---------------------------------------------------------------

    def _finish(self, media_id: str) -> PublishResult:
        permalink = self.state.get("permalink")
        if not permalink:
            try:
                body = self.graph.get(media_id, {"fields": "id,permalink"},
                                      what="permalink read-back")
                permalink = body.get("permalink")
                self.save(permalink=permalink)
            except Exception as exc:  # published already: a missing link must not fail it
                self.ctx.log("permalink_failed", f"could not read the permalink: {exc}",
                             media_id=media_id)
        extra: dict[str, Any] = {"containerId": self.state.get("container"),
                                 "kind": self.kind}
        comment = self.config.get("firstComment")
        if comment and self.kind != STORY:
            extra.update(self._first_comment(media_id, str(comment)))
        return PublishResult([Receipt(external_id=media_id, external_url=permalink,
                                      post_id=self.item.post_id, extra=extra)])

    def _first_comment(self, media_id: str, message: str) -> Mapping[str, Any]:
        if self.state.get("commentId"):
            return {"commentId": self.state["commentId"]}
        if self.state.get("commentAttempted"):
            # a comment request got no answer before: never risk a duplicate comment
            return {"firstCommentError": "outcome of the first comment is unknown"}
        self.save(commentAttempted=True)
        try:
            body = self.graph.post(f"{media_id}/comments", {"message": message},
                                   what="first comment", creating=True)
        except Exception as exc:  # the post is live; a lost comment is logged, not fatal
            self.ctx.log("first_comment_failed", f"the first comment was not posted: {exc}",
                         media_id=media_id)
            if not isinstance(exc, UnknownOutcome):
                self.save(commentAttempted=False)
            return {"firstCommentError": str(exc)}
        comment_id = str(body.get("id"))
        self.save(commentId=comment_id)
        self.ctx.log("first_comment", f"first comment {comment_id} posted",
                     comment_id=comment_id)
        return {"commentId": comment_id}

    def save(self, **changes: Any) -> None:
        self.state.update(changes)
        self.ctx.checkpoints.save(self.state)


def _timestamp(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    for fmt in ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z"):
        try:
            return datetime.strptime(value, fmt).astimezone(UTC).timestamp()
        except ValueError:
            continue
    return None


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else None

