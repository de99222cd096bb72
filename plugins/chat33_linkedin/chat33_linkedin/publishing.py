"""Publishing one post (and any thread items, as separate posts) to LinkedIn, exactly once
(platforms-more.md §4.2-4.5).

Steps of an item, each checkpointed as soon as LinkedIn acknowledges it: images (URN from
``initializeUpload``, then the PUT), or a video (URN, upload token and part instructions,
then the ``ETag`` of every part, then ``finalizeUpload``, then processing polled until
``AVAILABLE``), then ``POST /rest/posts`` (201, the post URN in ``x-restli-id``).

Exactly once: LinkedIn has no idempotency key. ``sentAt`` is saved before the post
request goes out, so any attempt that finds it — after a lost answer, a 5xx, a worker that
died — first asks LinkedIn whether the post exists: ``GET /rest/posts?q=author`` (the
author's recent posts) and a post with the same commentary and media, created since
``sentAt``, is taken as this one. Only when LinkedIn lists none is the request sent again.
Should the listing lag behind and the resend meet LinkedIn's duplicate check (422
``DUPLICATE_POST``, "Content is a duplicate of urn:li:share:…"), the URN it names is
taken as the post. A token that may not read posts (``w_member_social`` is write-only)
cannot confirm: :class:`UnknownOutcome` that says to check the account by hand, never a
blind resend.

Checkpoint layout::

    {"posted": [{"id", "url", "postId"}],                         # in thread order
     "items": {"<index>": {"images": [{"urn", "uploadUrl", "uploaded", "expiresAt"}],
                           "video": {"urn", "uploadToken", "instructions", "etags",
                                     "expiresAt", "finalized", "ready"},
                           "sentAt": epoch seconds}}}
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from chat33_core.errors import PermanentError, PlatformError, TransientError, UnknownOutcome
from chat33_core.platforms import MediaFile, PublishContext, PublishItem

from . import rules
from .api import Api

#: how long a video may keep processing before the attempt is given up (and retried)
PROCESSING_TIMEOUT_S = 1800.0
#: how many of the author's latest posts are searched for a post whose answer was lost
CONFIRM_WINDOW = 20
#: clocks differ: a post created this long before ``sentAt`` still counts as ours
CLOCK_SLACK_S = 120.0
_DUPLICATE_OF = re.compile(r"duplicate of (urn:li:(?:share|ugcPost):[0-9A-Za-z_-]+)")


def post_url(urn: str) -> str:
    return f"https://www.linkedin.com/feed/update/{urn}"


def encoded(urn: str) -> str:
    """A URN as a path or query segment (Rest.li 2.0 wants its colons encoded)."""
    return quote(urn, safe="")


class Publication:
    """One publish (or confirm) of one post: the checkpoint and the steps."""

    def __init__(self, ctx: PublishContext, api: Api,
                 clock: Callable[[], float] = time.time) -> None:
        self.ctx = ctx
        self.api = api
        self.author = ctx.account.external_id or ""
        self.data = dict(ctx.checkpoints.load())
        self.data.setdefault("posted", [])
        self.data.setdefault("items", {})
        self.config = ctx.config("linkedin")
        self.clock = clock

    @property
    def posted(self) -> list[dict[str, Any]]:
        posted: list[dict[str, Any]] = self.data["posted"]
        return posted

    def save(self) -> None:
        self.ctx.checkpoints.save(self.data)

    def item_state(self, index: int) -> dict[str, Any]:
        items: dict[str, Any] = self.data["items"]
        state: dict[str, Any] = items.setdefault(str(index), {})
        return state

    # --- posts -----------------------------------------------------------------------------

    def run(self) -> None:
        """Publish every item not yet posted, in order (thread items are separate posts:
        LinkedIn has no replies)."""
        items = list(self.ctx.items)
        if 0 < len(self.posted) < len(items):
            self.ctx.log("linkedin.resume", f"{len(self.posted)} of {len(items)} posts "
                         "already on LinkedIn; continuing")
        for index in range(len(self.posted), len(items)):
            self.publish_item(index, items[index])

    def in_flight(self) -> int | None:
        """The index of the item whose post request went out without a known answer."""
        index = len(self.posted)
        state = self.data["items"].get(str(index))
        if index < len(self.ctx.items) and state and state.get("sentAt"):
            return index
        return None

    def body(self, item: PublishItem, content: dict[str, Any] | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "author": self.author,
            "commentary": rules.escape(item.text or ""),
            "visibility": self.config.get("visibility") or "PUBLIC",
            "distribution": {"feedDistribution": self.config.get("feedDistribution")
                             or "MAIN_FEED", "targetEntities": [],
                             "thirdPartyDistributionChannels": []},
            "lifecycleState": "PUBLISHED",
            "isReshareDisabledByAuthor": bool(self.config.get("isReshareDisabledByAuthor")),
        }
        if content:
            body["content"] = content
        return body

    def publish_item(self, index: int, item: PublishItem) -> None:
        state = self.item_state(index)
        body = self.body(item, self.media_content(index, item, state))
        what = f"LinkedIn post {index + 1}/{len(self.ctx.items)}"
        if state.get("sentAt"):
            found = self.find_existing(body, float(state["sentAt"]))
            if found is not None:
                self.ctx.log("linkedin.confirmed", f"{what} was already on LinkedIn as "
                             f"{found}", external_id=found, index=index)
                self.record(index, item, found)
                return
        else:
            state["sentAt"] = self.clock()
            self.save()
        try:
            response = self.api.call("POST", "/rest/posts", what=what, creates=True,
                                     json=body)
        except UnknownOutcome:
            self.ctx.log("linkedin.unknown", f"no clear answer to {what}; LinkedIn will "
                         "be asked before it is sent again", index=index)
            raise
        except PlatformError as exc:
            duplicate = _DUPLICATE_OF.search(exc.message)
            if exc.platform_code == "DUPLICATE_POST" and duplicate and state.get("confirmed"):
                # our own earlier request, created after the listing was read
                self.record(index, item, duplicate.group(1))
                return
            # answered and refused: nothing was created
            state.pop("sentAt", None)
            state.pop("confirmed", None)
            self.save()
            raise
        urn = response.headers.get("x-restli-id")
        if not urn:
            raise UnknownOutcome(f"{what}: LinkedIn answered {response.status_code} without "
                                 "x-restli-id", platform_code="bad-response")
        self.record(index, item, urn)
        self.ctx.log("linkedin.posted", f"{what} is on LinkedIn as {urn}", external_id=urn,
                     index=index)

    def record(self, index: int, item: PublishItem, urn: str) -> None:
        self.posted.append({"id": urn, "url": post_url(urn), "postId": item.post_id})
        self.data["items"].pop(str(index), None)
        self.save()

    def find_existing(self, body: dict[str, Any], sent_at: float) -> str | None:
        """The URN of the author's post matching ``body`` created since ``sent_at``, or
        None when LinkedIn lists none (see the module doc)."""
        response = self.api.call(
            "GET", f"/rest/posts?q=author&author={encoded(self.author)}"
                   f"&count={CONFIRM_WINDOW}&sortBy=CREATED",
            what="LinkedIn posts of the author", allow=(403,))
        if response.status_code == 403:
            raise UnknownOutcome(
                "LinkedIn may have created the post, and this token may not read posts to "
                f"tell: check the account {self.ctx.account.name!r} before posting again",
                platform_code="cannot-confirm")
        try:
            elements = response.json().get("elements") or []
        except (ValueError, AttributeError) as exc:
            raise UnknownOutcome("LinkedIn listed the author's posts unreadably: "
                                 f"{response.text[:200]}", platform_code="bad-response"
                                 ) from exc
        wanted = _media_ids(body.get("content"))
        since_ms = (sent_at - CLOCK_SLACK_S) * 1000
        for post in elements:
            if (isinstance(post, dict) and post.get("commentary") == body["commentary"]
                    and _media_ids(post.get("content")) == wanted
                    and float(post.get("createdAt") or 0) >= since_ms):
                return str(post["id"])
        self.data["items"].setdefault(str(len(self.posted)), {})["confirmed"] = True
        return None

    # --- media -----------------------------------------------------------------------------

    def media_content(self, index: int, item: PublishItem,
                      state: dict[str, Any]) -> dict[str, Any] | None:
        media = list(item.media)
        if not media:
            return None
        if media[0].info.kind == "video":
            return {"media": {"id": self.video(media[0], state, index)}}
        alts = rules.alt_texts(self.config, len(media)) if index == 0 else [""] * len(media)
        urns = self.images(media, state, index)
        images = [{"id": urn} | ({"altText": alt} if alt else {})
                  for urn, alt in zip(urns, alts, strict=True)]
        return {"media": images[0]} if len(images) == 1 else {"multiImage":
                                                                  {"images": images}}

    def images(self, media: list[MediaFile], state: dict[str, Any], index: int) -> list[str]:
        """Every image's URN: initialized and PUT once each (checkpointed after each). An
        image whose upload URL lapsed before its PUT (a worker away too long) starts over."""
        entries: list[dict[str, Any]] = state.setdefault("images", [])
        for number, file in enumerate(media):
            what = f"LinkedIn image {number + 1} of post {index + 1}"
            if number == len(entries):
                entries.append(self.init_image(what))
                self.save()
            elif not entries[number]["uploaded"] and self.expired(entries[number]):
                entries[number] = self.init_image(what)
                self.save()
            entry = entries[number]
            if not entry["uploaded"]:
                self.api.call("PUT", entry["uploadUrl"], what=what,
                              content=file.path.read_bytes(),
                              headers={"Content-Type": file.info.mime_type})
                entry["uploaded"] = True
                self.save()
                self.ctx.log("linkedin.media", f"{what} uploaded as {entry['urn']}",
                             media_id=entry["urn"])
        return [str(entry["urn"]) for entry in entries]

    def init_image(self, what: str) -> dict[str, Any]:
        """``POST /rest/images?action=initializeUpload``: the checkpoint entry."""
        value = self.api.json("POST", "/rest/images?action=initializeUpload", what=what,
                              json={"initializeUploadRequest": {"owner": self.author}}
                              ).get("value")
        if not isinstance(value, dict) or not value.get("image"):
            raise TransientError(f"{what}: LinkedIn answered without an image URN",
                                 platform_code="bad-response")
        return {"urn": value["image"], "uploadUrl": value["uploadUrl"], "uploaded": False,
                "expiresAt": value.get("uploadUrlExpiresAt")}

    def expired(self, entry: dict[str, Any]) -> bool:
        """Whether the upload URLs of ``entry`` (``expiresAt``, epoch ms) have lapsed, with
        a minute to spare for the upload itself."""
        expires = entry.get("expiresAt")
        return isinstance(expires, int | float) and expires / 1000 - 60 <= self.clock()

    def video(self, file: MediaFile, state: dict[str, Any], index: int) -> str:
        """The video's URN: initialized, its parts PUT (ETags kept in order), finalized,
        then polled until LinkedIn has processed it."""
        what = f"LinkedIn video of post {index + 1}"
        video: dict[str, Any] | None = state.get("video")
        if video is not None and not video["finalized"] and self.expired(video):
            video = None  # the part URLs lapsed while the worker was away: start over
        if video is None:
            value = self.api.json("POST", "/rest/videos?action=initializeUpload", what=what,
                                  json={"initializeUploadRequest": {
                                      "owner": self.author, "fileSizeBytes": file.info.size,
                                      "uploadCaptions": False, "uploadThumbnail": False}}
                                  ).get("value")
            if not isinstance(value, dict) or not value.get("video"):
                raise TransientError(f"{what}: LinkedIn answered without a video URN",
                                     platform_code="bad-response")
            video = {"urn": value["video"], "uploadToken": value.get("uploadToken") or "",
                     "instructions": value.get("uploadInstructions") or [], "etags": [],
                     "expiresAt": value.get("uploadUrlsExpireAt"), "finalized": False,
                     "ready": False}
            state["video"] = video
            self.save()
        etags: list[str] = video["etags"]
        instructions = video["instructions"]
        if len(etags) < len(instructions):
            with file.open() as handle:
                for part in instructions[len(etags):]:
                    first, last = int(part["firstByte"]), int(part["lastByte"])
                    handle.seek(first)
                    response = self.api.call(
                        "PUT", part["uploadUrl"], content=handle.read(last - first + 1),
                        what=f"{what}, part {len(etags) + 1}/{len(instructions)}",
                        headers={"Content-Type": "application/octet-stream"})
                    etag = response.headers.get("ETag")
                    if not etag:
                        raise TransientError(f"{what}: a part was answered without an ETag",
                                             platform_code="bad-response")
                    etags.append(etag)
                    self.save()
        if not video["finalized"]:
            self.api.call("POST", "/rest/videos?action=finalizeUpload", what=what,
                          json={"finalizeUploadRequest": {
                              "video": video["urn"], "uploadToken": video["uploadToken"],
                              "uploadedPartIds": etags}})
            video["finalized"] = True
            self.save()
            self.ctx.log("linkedin.media", f"{what} uploaded as {video['urn']} "
                         f"({len(etags)} parts)", media_id=video["urn"])
        if not video["ready"]:
            self.wait_available(video, what)
        return str(video["urn"])

    def wait_available(self, video: dict[str, Any], what: str) -> None:
        """Poll ``GET /rest/videos/{urn}`` until ``status`` is ``AVAILABLE``."""
        waited = 0.0
        delays = self.ctx.poll_delays()
        while True:
            status = self.api.json("GET", f"/rest/videos/{encoded(video['urn'])}",
                                   what=what).get("status")
            if status == "AVAILABLE":
                video["ready"] = True
                self.save()
                return
            if status == "PROCESSING_FAILED":
                raise PermanentError(f"{what}: LinkedIn could not process the video",
                                     platform_code="PROCESSING_FAILED")
            if waited >= PROCESSING_TIMEOUT_S:
                raise TransientError(f"{what}: still {status} after {waited:.0f} s",
                                     platform_code="processing")
            delay = float(next(delays))
            self.ctx.sleep(delay)
            waited += delay


def _media_ids(content: Any) -> list[str]:
    """The media URNs of a post's ``content``, in order."""
    if not isinstance(content, dict):
        return []
    if isinstance(content.get("media"), dict):
        return [str(content["media"].get("id"))]
    multi = content.get("multiImage")
    if isinstance(multi, dict):
        return [str(i.get("id")) for i in multi.get("images") or [] if isinstance(i, dict)]
    return []
