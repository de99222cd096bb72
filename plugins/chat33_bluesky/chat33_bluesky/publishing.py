"""Publishing one post (or a thread) as ``app.bsky.feed.post`` records, exactly once
(platforms-more.md §1.4-§1.8).

Exactly once rests on a record key chosen by us. Before an item's ``createRecord`` is
sent, its ``rkey`` (a TID, the key type of ``app.bsky.feed.post``) is checkpointed and
the item is marked ``sent``. Whatever then happens — no answer, a
worker that dies — whether the post exists is one exact question:
``com.atproto.repo.getRecord`` for that rkey. Found: it is recorded as posted. Not found:
the same record is created again with the same rkey, so even a late first request and a
retry cannot make two posts (the second write of one rkey is refused). That is cheaper
and more exact than listing the account's records and matching texts.

Checkpoint layout::

    {"posted": [{"uri", "cid", "postId"}],             # in thread order
     "replyTo": {"root": ref, "parent": ref},           # platformConfig.bluesky.replyTo
     "items": {"<index>": {"rkey", "sent",
                           "blobs": [{"blob", "at"}], "video": {...}, "thumb": {...}}}}
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from chat33_core.errors import (
    CredentialsExpired,
    PermanentError,
    PlatformError,
    TransientError,
    UnknownOutcome,
)
from chat33_core.media import VIDEO
from chat33_core.platforms import PublishContext, PublishItem

from . import richtext, rules
from .uploads import VideoUpload, fresh_blob, upload_blob
from .xrpc import Xrpc, body_of

POST = "app.bsky.feed.post"
_B32 = "234567abcdefghijklmnopqrstuvwxyz"
#: how a PDS says that a record names a blob it no longer has
_BLOB_GONE = ("BlobNotFound", "could not find blob")  # the error name, or its message


def new_tid(now_us: int | None = None, clock_id: int | None = None) -> str:
    """A timestamp identifier: 53 bits of microseconds and 10 random bits, 13 characters
    of sortable base32 (the record key type of ``app.bsky.feed.post``)."""
    micros = int(time.time() * 1_000_000) if now_us is None else now_us
    clock = secrets.randbelow(1024) if clock_id is None else clock_id
    value = ((micros & ((1 << 53) - 1)) << 10) | (clock & 0x3FF)
    return "".join(_B32[(value >> shift) & 31] for shift in range(60, -1, -5))


def rkey_of(uri: str) -> str:
    return uri.rstrip("/").rsplit("/", 1)[-1]


def repo_of(uri: str) -> str:
    return uri.removeprefix("at://").split("/", 1)[0]


def iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Publication:
    """One publish (or confirm) of one post: the XRPC hosts, the checkpoint and the steps."""

    def __init__(self, ctx: PublishContext, *, pds: str, video_base: str) -> None:
        self.ctx = ctx
        extra = ctx.credentials.extra
        if "appPassword" not in extra or not extra.get("did"):
            # the core opens the session (refresh_credentials) before publishing
            raise CredentialsExpired("no Bluesky session yet: it is opened from the app "
                                     "password first", platform_code="no-session")
        self.did = str(extra["did"])
        self.pds = Xrpc(ctx.http, pds, ctx.credentials.access_token)
        self.video_base = video_base
        self.data = dict(ctx.checkpoints.load())
        self.data.setdefault("posted", [])
        self.data.setdefault("items", {})
        self.config = ctx.config("bluesky")
        self.dids: dict[str, str | None] = {}

    # --- checkpoint ------------------------------------------------------------------------

    @property
    def posted(self) -> list[dict[str, Any]]:
        posted: list[dict[str, Any]] = self.data["posted"]
        return posted

    def save(self) -> None:
        self.ctx.checkpoints.save(self.data)

    def item_state(self, index: int) -> dict[str, Any]:
        items: dict[str, Any] = self.data["items"]
        state: dict[str, Any] = items.setdefault(str(index), {})
        if "rkey" not in state:
            state["rkey"] = new_tid()
            self.save()
        return state

    def mark_posted(self, index: int, uri: str, cid: str) -> None:
        self.posted.append({"uri": uri, "cid": cid, "postId": self.ctx.items[index].post_id})
        self.data["items"].pop(str(index), None)
        self.save()

    # --- the steps -----------------------------------------------------------------------

    def run(self) -> None:
        """Publish every item not yet posted, in order."""
        items = list(self.ctx.items)
        if 0 < len(self.posted) < len(items):
            self.ctx.log("bluesky.resume", f"{len(self.posted)} of {len(items)} posts already "
                         "on Bluesky; continuing the thread")
        for index in range(len(self.posted), len(items)):
            self.publish_item(index, items[index])

    def resolve_sent(self) -> bool:
        """Settle the item whose createRecord may have been sent: True if it is posted
        (now recorded), False if it certainly is not (or nothing was in flight)."""
        index = len(self.posted)
        state = self.data["items"].get(str(index))
        if index >= len(self.ctx.items) or not state or not state.get("sent"):
            return False
        found = self.get_record(self.did, state["rkey"])
        if found is None:
            self.ctx.log("bluesky.confirm", f"post {index + 1} is not on Bluesky; it will be "
                         "posted with the same record key", index=index, rkey=state["rkey"])
            state["sent"] = False
            self.save()
            return False
        self.ctx.log("bluesky.confirm", f"post {index + 1} was on Bluesky after all: "
                     f"{found['uri']}", index=index, external_id=found["uri"])
        self.mark_posted(index, found["uri"], found["cid"])
        return True

    def publish_item(self, index: int, item: PublishItem) -> None:
        state = self.item_state(index)
        if state.get("sent") and self.resolve_sent():
            return
        record = self.record(index, item, state)
        state["sent"] = True
        self.save()
        what = f"Bluesky post {index + 1}/{len(self.ctx.items)}"
        try:
            response = self.pds.call(
                "POST", "com.atproto.repo.createRecord", creating=True, what=what,
                json={"repo": self.did, "collection": POST, "rkey": state["rkey"],
                      "record": record})
        except UnknownOutcome:
            self.ctx.log("bluesky.unknown", f"no clear answer to post {index + 1}; its record "
                         "key will be looked up before posting again", index=index)
            raise
        except PermanentError as exc:
            # refused: but a lost earlier request may have created this very record
            found = self.get_record(self.did, state["rkey"])
            if found is not None:
                self.mark_posted(index, found["uri"], found["cid"])
                return
            state["sent"] = False
            if any(marker in exc.message.lower() or marker == exc.platform_code
                   for marker in _BLOB_GONE):
                for key in ("blobs", "video", "thumb"):
                    state.pop(key, None)  # the PDS dropped them: upload again
                self.save()
                raise TransientError(f"{what}: Bluesky no longer had an uploaded file "
                                     f"({exc.message}); uploading it again",
                                     platform_code=exc.platform_code) from exc
            self.save()
            raise
        except PlatformError:
            state["sent"] = False  # answered and refused: nothing was created
            self.save()
            raise
        try:
            body = response.json()
            uri, cid = str(body["uri"]), str(body["cid"])
        except (ValueError, KeyError, TypeError) as exc:
            raise UnknownOutcome(f"{what}: Bluesky accepted the post but its answer had no "
                                 f"uri: {response.text[:200]}",
                                 platform_code="bad-response") from exc
        self.mark_posted(index, uri, cid)
        self.ctx.log("bluesky.posted", f"post {index + 1}/{len(self.ctx.items)} is on "
                     f"Bluesky as {uri}", external_id=uri, index=index)

    # --- the record ------------------------------------------------------------------------

    def record(self, index: int, item: PublishItem, state: dict[str, Any]) -> dict[str, Any]:
        text = item.text or ""
        # the time of this attempt: Bluesky shows it as the post's time, and a retry after
        # a deferral must not look hours old (the rkey alone keeps the retry single)
        record: dict[str, Any] = {"$type": POST, "text": text, "createdAt": iso_now()}
        facets = richtext.facets(text, self.resolve_handle)
        if facets:
            record["facets"] = facets
        langs = self.config.get("langs")
        if langs:
            record["langs"] = list(langs)
        reply = self.reply(index)
        if reply:
            record["reply"] = reply
        embed = self.embed(index, item, state)
        if embed:
            record["embed"] = embed
        return record

    def reply(self, index: int) -> dict[str, Any] | None:
        """``root`` and ``parent`` strong refs: the first post answers ``replyTo`` (if
        given); each later item answers the one before, under the same root."""
        target = self.reply_target()
        if index == 0:
            return dict(target) if target else None
        previous = self.posted[index - 1]
        root = target["root"] if target else self.posted[0]
        return {"root": {"uri": root["uri"], "cid": root["cid"]},
                "parent": {"uri": previous["uri"], "cid": previous["cid"]}}

    def reply_target(self) -> dict[str, Any] | None:
        ref = self.config.get("replyTo")
        if not ref:
            return None
        known = self.data.get("replyTo")
        if known:
            return dict(known)
        parsed = rules.parse_post_ref(str(ref))
        if parsed is None:
            raise PermanentError(f"replyTo {ref!r} is not a Bluesky post", platform_code="reply")
        found = self.get_record(*parsed)
        if found is None:
            raise PermanentError(f"the post to reply to ({ref}) is not on Bluesky (deleted?)",
                                 platform_code="reply-not-found")
        parent = {"uri": found["uri"], "cid": found["cid"]}
        value = found.get("value") or {}
        root = (value.get("reply") or {}).get("root") if isinstance(value, Mapping) else None
        target = {"root": dict(root) if isinstance(root, Mapping) else parent,
                  "parent": parent}
        self.data["replyTo"] = target
        self.save()
        return target

    def embed(self, index: int, item: PublishItem, state: dict[str, Any]
              ) -> dict[str, Any] | None:
        media = list(item.media)
        if media and media[0].info.kind == VIDEO:
            return self.video_embed(index, item, state)
        if media:
            alts = rules.alt_texts(self.config, len(media)) if index == 0 else [""] * len(media)
            blobs: list[Any] = state.setdefault("blobs", [])
            images = []
            for number, file in enumerate(media):
                blob = fresh_blob(blobs[number]) if number < len(blobs) else None
                if blob is None:
                    blob = upload_blob(self.pds, file, f"Bluesky image {number + 1} of post "
                                                       f"{index + 1}")
                    entry = {"blob": blob, "at": time.time()}
                    if number < len(blobs):
                        blobs[number] = entry
                    else:
                        blobs.append(entry)
                    self.save()
                image: dict[str, Any] = {"image": blob, "alt": alts[number]}
                if file.info.width and file.info.height:
                    image["aspectRatio"] = {"width": file.info.width,
                                            "height": file.info.height}
                images.append(image)
            return {"$type": "app.bsky.embed.images", "images": images}
        card = self.config.get("linkCard") if index == 0 else None
        if isinstance(card, Mapping):
            return self.link_card(card, state)
        return None

    def video_embed(self, index: int, item: PublishItem, state: dict[str, Any]
                    ) -> dict[str, Any]:
        file = item.media[0]
        upload = VideoUpload(http=self.ctx.http, pds=self.pds, video_base=self.video_base,
                             did=self.did, state=state.setdefault("video", {}), save=self.save,
                             sleep=self.ctx.sleep, delays=self.ctx.poll_delays(),
                             log=self.ctx.log)
        embed: dict[str, Any] = {"$type": "app.bsky.embed.video", "video": upload.blob(file)}
        alt = rules.alt_texts(self.config, 1)[0] if index == 0 else ""
        if alt:
            embed["alt"] = alt
        if file.info.width and file.info.height:
            embed["aspectRatio"] = {"width": file.info.width, "height": file.info.height}
        return embed

    def link_card(self, card: Mapping[str, Any], state: dict[str, Any]) -> dict[str, Any]:
        external: dict[str, Any] = {"uri": str(card.get("uri") or ""),
                                    "title": str(card.get("title") or ""),
                                    "description": str(card.get("description") or "")}
        cover = self.ctx.cover_image
        if cover is not None:
            thumb = fresh_blob(state.get("thumb"))
            if thumb is None:
                thumb = upload_blob(self.pds, cover, "Bluesky link card thumbnail")
                state["thumb"] = {"blob": thumb, "at": time.time()}
                self.save()
            external["thumb"] = thumb
        return {"$type": "app.bsky.embed.external", "external": external}

    # --- lookups -----------------------------------------------------------------------

    def get_record(self, repo: str, rkey: str) -> dict[str, Any] | None:
        """``getRecord`` of a post: ``{uri, cid, value}``, or None when there is none."""
        response = self.pds.call("GET", "com.atproto.repo.getRecord",
                                 what="Bluesky record lookup", allow=("RecordNotFound",),
                                 params={"repo": repo, "collection": POST, "rkey": rkey})
        if not response.is_success:
            return None
        body = body_of(response, "Bluesky record lookup")
        if not body.get("uri") or not body.get("cid"):
            raise TransientError("Bluesky record lookup answered without uri and cid",
                                 platform_code="bad-response")
        return body

    def resolve_handle(self, handle: str) -> str | None:
        """The DID of a mentioned handle; None leaves the mention as plain text (the
        handle does not exist), as Bluesky's own guide does. Asked once per handle."""
        if handle not in self.dids:
            self.dids[handle] = self._resolve(handle)
        return self.dids[handle]

    def _resolve(self, handle: str) -> str | None:
        response = self.pds.call("GET", "com.atproto.identity.resolveHandle",
                                 what=f"Bluesky handle @{handle}", params={"handle": handle},
                                 allow=("InvalidRequest", "HandleNotFound"))
        if not response.is_success:
            return None
        did = body_of(response, "Bluesky handle lookup").get("did")
        return str(did) if did else None

