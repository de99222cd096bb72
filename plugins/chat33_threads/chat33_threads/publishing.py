"""Publishing a post (or a self-thread) on Threads, exactly once (platforms-more.md §3.2-3.5).

Per item: containers (``POST /{user}/threads``: TEXT, IMAGE, VIDEO; a carousel's items
with ``is_carousel_item`` first, then the CAROUSEL container), status polled until
``FINISHED``, the publishing quota read (``threads_publishing_limit``), then
``POST /{user}/threads_publish`` with ``creation_id``. Thread items answer the item
before them (``reply_to_id``).

Exactly once: every acknowledged step is checkpointed at once::

    {"posted": [{"id", "url", "postId", "container"}],            # in thread order
     "items": {"<index>": {"children": [...], "container": "...",
                           "publishStartedAt": epoch seconds}}}

``threads_publish`` without an answer is an unknown outcome. It is settled by reading
the container's own status (``GET /{container}?fields=status``): ``PUBLISHED`` means the
post exists, and its id is found among the account's recent threads (or replies)
whose text matches and that appeared after the publish was sent; anything else means it
was not published, and publishing the same container again is safe.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from chat33_core.errors import PermanentError, QuotaExceeded, TransientError, UnknownOutcome
from chat33_core.models import utcnow
from chat33_core.platforms import MediaFile, PublishContext, PublishItem

from . import rules
from .graph import QUOTA_WAIT, Graph

FINISHED, IN_PROGRESS, PUBLISHED, EXPIRED, ERROR = (
    "FINISHED", "IN_PROGRESS", "PUBLISHED", "EXPIRED", "ERROR")
#: Meta: poll a container about once a minute for no more than 5 minutes
MAX_PROCESSING_WAIT_S = 300.0
#: how far before the publish call a found thread's timestamp may be (clock skew)
TIMESTAMP_SLACK_S = 120.0


class Publication:
    """One publish (or confirm) of one post; its state lives in ``ctx.checkpoints``."""

    def __init__(self, ctx: PublishContext, graph: Graph) -> None:
        self.ctx = ctx
        self.graph = graph
        self.user = ctx.account.external_id or "me"
        self.config = ctx.config("threads")
        self.data: dict[str, Any] = dict(ctx.checkpoints.load())
        self.data.setdefault("posted", [])
        self.data.setdefault("items", {})

    @property
    def posted(self) -> list[dict[str, Any]]:
        posted: list[dict[str, Any]] = self.data["posted"]
        return posted

    def save(self) -> None:
        self.ctx.checkpoints.save(self.data)

    def item_state(self, index: int) -> dict[str, Any]:
        state: dict[str, Any] = self.data["items"].setdefault(str(index), {})
        return state

    # --- entry points ---------------------------------------------------------------

    def run(self) -> None:
        items = list(self.ctx.items)
        if 0 < len(self.posted) < len(items):
            self.ctx.log("threads.resume", f"{len(self.posted)} of {len(items)} posts "
                         "already on Threads; continuing the thread")
        for index in range(len(self.posted), len(items)):
            self.publish_item(index, items[index])

    def settle(self) -> None:
        """Confirm the item whose ``threads_publish`` got no answer: record it as posted
        if its container says PUBLISHED; otherwise leave it to be published again."""
        index = len(self.posted)
        if index >= len(self.ctx.items):
            return
        state = self.data["items"].get(str(index)) or {}
        container = state.get("container")
        if not container or not state.get("publishStartedAt"):
            return
        status, _ = self.status(container)
        self.ctx.log("threads.confirm", f"container {container} is {status}",
                     container=container, status=status)
        if status == PUBLISHED:
            self.record(index, self.ctx.items[index], self.find_published(index, state))
        else:
            state.pop("publishStartedAt", None)
            self.save()

    # --- one item ---------------------------------------------------------------------

    def reply_to(self, index: int) -> str | None:
        if index > 0:
            return str(self.posted[index - 1]["id"])
        value = self.config.get("replyToId")
        return str(value) if value else None

    def publish_item(self, index: int, item: PublishItem) -> None:
        state = self.item_state(index)
        container = state.get("container")
        if container:
            status, detail = self.status(container)
            if status == PUBLISHED:  # an earlier attempt got through
                self.record(index, item, self.find_published(index, state))
                return
            if status == EXPIRED:
                self.forget(index, f"container {container} expired")
                container = None
            elif status == ERROR:
                self.failed(index, container, detail)
        if not container:
            container = self.create(index, item, state)
        if self.wait(container) == PUBLISHED:
            self.record(index, item, self.find_published(index, state))
            return
        self.check_quota(reply=self.reply_to(index) is not None)
        state["publishStartedAt"] = time.time()
        self.save()  # before sending: a lost answer is then confirmed, never resent blind
        what = f"threads_publish {index + 1}/{len(self.ctx.items)}"
        body = self.graph.post(f"{self.user}/threads_publish", {"creation_id": container},
                               what=what, creates=True)
        if not body.get("id"):
            raise UnknownOutcome(f"{what}: Threads answered without an id",
                                 platform_code="bad-response")
        self.record(index, item, str(body["id"]))

    def record(self, index: int, item: PublishItem, media_id: str) -> None:
        state = self.data["items"].pop(str(index), {})
        self.posted.append({"id": media_id, "url": None, "postId": item.post_id,
                            "container": state.get("container")})
        self.save()
        self.ctx.log("threads.posted", f"post {index + 1}/{len(self.ctx.items)} is on "
                     f"Threads as {media_id}", external_id=media_id, index=index)
        try:
            body = self.graph.get(media_id, {"fields": "id,permalink"},
                                  what="permalink read-back")
        except (TransientError, PermanentError) as exc:  # published: a link is a nicety
            self.ctx.log("threads.permalink", f"no permalink for {media_id}: {exc}")
            return
        self.posted[-1]["url"] = body.get("permalink")
        self.save()

    # --- containers -------------------------------------------------------------------

    def create(self, index: int, item: PublishItem, state: dict[str, Any]) -> str:
        media = list(item.media)
        alts: list[str | None] = (rules.alt_texts(self.config, len(media)) if index == 0
                                  else [None] * len(media))
        params: dict[str, Any] = {"text": item.text or None,
                                  "reply_to_id": self.reply_to(index),
                                  "reply_control": self.config.get("replyControl"),
                                  "topic_tag": self.config.get("topicTag")}
        if len(media) > 1:
            children = self.children(index, media, alts, state)
            params.update(media_type="CAROUSEL", children=",".join(children))
        elif media:
            params.update(self.media_params(media[0]), alt_text=alts[0])
        else:
            params.update(media_type="TEXT",
                          link_attachment=self.config.get("linkAttachment")
                          if index == 0 else None)
        what = f"Threads container {index + 1}/{len(self.ctx.items)}"
        container = str(self.graph.post(f"{self.user}/threads", params, what=what)["id"])
        state["container"] = container
        self.save()
        self.ctx.log("threads.container", f"{what} is {container}", container=container)
        return container

    @staticmethod
    def media_params(file: MediaFile) -> dict[str, Any]:
        if file.info.is_video:
            return {"media_type": "VIDEO", "video_url": file.url}
        return {"media_type": "IMAGE", "image_url": file.url}

    def children(self, index: int, media: list[MediaFile], alts: list[str | None],
                 state: dict[str, Any]) -> list[str]:
        """The carousel item containers, created once each (checkpointed after each) and
        waited for: the CAROUSEL container may name only FINISHED items."""
        children: list[str] = state.setdefault("children", [])
        for number, file in enumerate(media):
            if number < len(children):
                continue
            body = self.graph.post(f"{self.user}/threads",
                                   {**self.media_params(file), "is_carousel_item": True,
                                    "alt_text": alts[number]},
                                   what=f"Threads carousel item {number + 1}")
            children.append(str(body["id"]))
            self.save()
        for child in children:
            if self.wait(child) != FINISHED:
                self.forget(index, f"carousel item {child} was already used")
                raise TransientError(f"carousel item container {child} cannot be used "
                                     "again; new containers will be created",
                                     platform_code="child")
        return children

    def status(self, container: str) -> tuple[str, str | None]:
        body = self.graph.get(container, {"fields": "status,error_message"},
                              what=f"container {container} status")
        detail = body.get("error_message")
        return str(body.get("status") or IN_PROGRESS), str(detail) if detail else None

    def wait(self, container: str) -> str:
        """Poll until the container leaves IN_PROGRESS: FINISHED or PUBLISHED."""
        waited = 0.0
        delays = self.ctx.poll_delays()
        while True:
            status, detail = self.status(container)
            if status in (FINISHED, PUBLISHED):
                return status
            if status == ERROR:
                self.failed(None, container, detail)
            if status == EXPIRED:
                self.forget(None, f"container {container} expired")
                raise TransientError(f"Threads container {container} expired; a new one "
                                     "will be created", platform_code=EXPIRED)
            if waited >= MAX_PROCESSING_WAIT_S:
                raise TransientError(f"Threads is still processing container {container} "
                                     f"after {waited:.0f} s", retry_after=60.0,
                                     platform_code=IN_PROGRESS)
            delay = float(next(delays))
            self.ctx.sleep(delay)
            waited += delay

    def failed(self, index: int | None, container: str, detail: str | None) -> None:
        reason = detail or "UNKNOWN"
        self.forget(index, f"container {container} failed: {reason}")
        raise PermanentError(f"Threads could not process the media ({reason})",
                             platform_code=f"ERROR/{reason}")

    def forget(self, index: int | None, why: str) -> None:
        """Drop the containers of ``index`` (default: the item being published)."""
        self.ctx.log("threads.container_dropped", f"new containers next time: {why}")
        self.data["items"].pop(str(len(self.posted) if index is None else index), None)
        self.save()

    # --- quota and confirmation ---------------------------------------------------------

    def check_quota(self, reply: bool) -> None:
        """``threads_publishing_limit``: 250 posts and 1,000 replies a moving 24 h."""
        body = self.graph.get(f"{self.user}/threads_publishing_limit",
                              {"fields": "quota_usage,config,reply_quota_usage,reply_config"},
                              what="publishing limit check")
        data = (body.get("data") or [{}])[0]
        usage_key, config_key = (("reply_quota_usage", "reply_config") if reply
                                 else ("quota_usage", "config"))
        usage = int(data.get(usage_key) or 0)
        total = (data.get(config_key) or {}).get("quota_total")
        kind = "replies" if reply else "posts"
        if total is not None and usage >= int(total):
            raise QuotaExceeded(f"Threads' publishing limit is spent ({usage} of {total} "
                                f"{kind} in 24 h); the post waits for quota",
                                retry_at=utcnow() + QUOTA_WAIT, platform_code="quota")

    def find_published(self, index: int, state: dict[str, Any]) -> str:
        """The id of the thread a PUBLISHED container became: the one recent post (or
        reply) of the account with the item's text, published after we asked."""
        edge = "replies" if self.reply_to(index) is not None else "threads"
        body = self.graph.get(f"{self.user}/{edge}", {"fields": "id,text,timestamp",
                                                      "limit": 25},
                              what=f"recent {edge} lookup")
        started = float(state.get("publishStartedAt") or 0.0)
        text = self.ctx.items[index].text or ""
        found = [str(entry["id"]) for entry in body.get("data") or []
                 if (entry.get("text") or "") == text
                 and _timestamp(entry.get("timestamp")) >= started - TIMESTAMP_SLACK_S]
        if len(found) != 1:
            raise UnknownOutcome(f"Threads says container {state.get('container')} is "
                                 f"published, but {len(found)} matching posts were found; "
                                 f"check the account {self.ctx.account.name!r}",
                                 platform_code=PUBLISHED)
        return found[0]


def _timestamp(value: Any) -> float:
    if not isinstance(value, str):
        return 0.0
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z").astimezone(UTC).timestamp()
    except ValueError:
        return 0.0
