"""Publishing one post (or a thread) as Mastodon statuses, exactly once (platforms-more.md
§2.4, §2.5).

Exactly once rests on Mastodon's ``Idempotency-Key``: every status is sent with a key
derived from the post id and the item's position, so a repeat of the same request —
after a lost answer, a worker that died, a retry — answers the status the first one
created instead of posting again. Confirming an unknown outcome is therefore the same
request once more. Mastodon keeps keys for an hour: a status sent longer ago than
:data:`KEY_WINDOW_S` is not sent again blindly (:class:`UnknownOutcome` that says so).

Checkpoint layout::

    {"posted": [{"id", "url", "postId"}],                  # in thread order
     "items": {"<index>": {"media": [{"id", "ready"}],     # uploaded attachments
                           "sentAt": epoch seconds,        # the status request went out
                           "uncertain": true}}}            # ... and its answer was lost
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

from chat33_core.errors import PlatformError, TransientError, UnknownOutcome
from chat33_core.platforms import MediaFile, PublishContext, PublishItem

from . import rules
from .api import Api

#: Mastodon keeps an Idempotency-Key for an hour; resend only well within it
KEY_WINDOW_S = 50 * 60.0
#: how long media may keep processing before the attempt is given up (and retried)
PROCESSING_TIMEOUT_S = 600.0


def idempotency_key(post_id: str, index: int) -> str:
    """The key of item ``index`` of post ``post_id``: the same on every attempt."""
    return f"chat33-{post_id}-{index}"


class Publication:
    """One publish (or confirm) of one post: the instance, the checkpoint and the steps."""

    def __init__(self, ctx: PublishContext, base: str,
                 learned: Callable[[rules.InstanceLimits], None] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.ctx = ctx
        self.api = Api(ctx.http, base, ctx.credentials.access_token)
        self.data = dict(ctx.checkpoints.load())
        self.data.setdefault("posted", [])
        self.data.setdefault("items", {})
        self.config = ctx.config("mastodon")
        self.learned = learned
        self.clock = clock

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
        return state

    # --- the steps -----------------------------------------------------------------------

    def run(self) -> None:
        """Publish every item not yet posted, in order."""
        items = list(self.ctx.items)
        if 0 < len(self.posted) < len(items):
            self.ctx.log("mastodon.resume", f"{len(self.posted)} of {len(items)} statuses "
                         "already on Mastodon; continuing the thread")
        if len(self.posted) < len(items):
            self.read_instance()
        for index in range(len(self.posted), len(items)):
            self.publish_item(index, items[index])

    def read_instance(self) -> None:
        """``GET /api/v2/instance``: the limits, remembered for validation. Optional: an
        instance that does not answer it is published to all the same."""
        if self.learned is None:
            return
        response = self.api.call("GET", "/api/v2/instance", what="Mastodon instance",
                                 allow=tuple(range(400, 600)))
        if response.is_success:
            with contextlib.suppress(ValueError):  # no JSON: the defaults stay
                self.learned(rules.limits_of_instance(response.json()))

    def in_flight(self) -> int | None:
        """The index of the item whose status request went out without an answer."""
        index = len(self.posted)
        state = self.data["items"].get(str(index))
        if index < len(self.ctx.items) and state and state.get("sentAt"):
            return index
        return None

    def publish_item(self, index: int, item: PublishItem) -> None:
        state = self.item_state(index)
        media_ids = self.upload_media(index, item, state)
        body: dict[str, Any] = {"status": item.text or "", "media_ids": media_ids}
        reply_to = (self.posted[index - 1]["id"] if index > 0
                    else self.config.get("inReplyToId"))
        if reply_to:
            body["in_reply_to_id"] = str(reply_to)
        for option, field in (("visibility", "visibility"), ("spoilerText", "spoiler_text"),
                              ("sensitive", "sensitive"), ("language", "language")):
            if self.config.get(option) is not None:
                body[field] = self.config[option]
        sent_at = state.get("sentAt")
        if sent_at and self.clock() - float(sent_at) > KEY_WINDOW_S:
            raise UnknownOutcome(
                f"status {index + 1} was sent more than {KEY_WINDOW_S / 60:.0f} minutes ago "
                "without an answer; Mastodon no longer remembers its Idempotency-Key, so it "
                f"is not sent again: check the account {self.ctx.account.name!r}",
                platform_code="key-expired")
        if not sent_at:
            state["sentAt"] = self.clock()
            self.save()
        what = f"Mastodon status {index + 1}/{len(self.ctx.items)}"
        try:
            status = self.api.json("POST", "/api/v1/statuses", what=what, creates=True,
                                   json=body,
                                   headers={"Idempotency-Key":
                                            idempotency_key(self.ctx.post_id, index)})
        except UnknownOutcome:
            # from now on the status may exist: ``sentAt`` stays, so the key window is
            # measured from this first request whatever answers later attempts get
            state["uncertain"] = True
            self.save()
            self.ctx.log("mastodon.unknown", f"no clear answer to status {index + 1}; it "
                          "will be sent again with the same Idempotency-Key", index=index)
            raise
        except PlatformError as exc:
            if exc.platform_code == "processing":
                for entry in state.get("media", []):
                    entry["ready"] = False  # poll again before the next attempt
            if not state.get("uncertain"):
                state.pop("sentAt", None)  # answered and refused: nothing was created
            self.save()
            raise
        if not status.get("id"):
            raise UnknownOutcome(f"{what}: Mastodon answered without a status id",
                                 platform_code="bad-response")
        self.posted.append({"id": str(status["id"]), "url": status.get("url"),
                            "postId": item.post_id})
        self.data["items"].pop(str(index), None)
        self.save()
        self.ctx.log("mastodon.posted", f"status {index + 1}/{len(self.ctx.items)} is on "
                     f"Mastodon as {status['id']}", external_id=str(status["id"]), index=index)

    # --- media -----------------------------------------------------------------------------

    def upload_media(self, index: int, item: PublishItem, state: dict[str, Any]) -> list[str]:
        """The attachment ids of the item's media: uploaded once (checkpointed after each
        upload), then polled until Mastodon has processed them."""
        media = list(item.media)
        alts = rules.alt_texts(self.config, len(media)) if index == 0 else [""] * len(media)
        uploaded: list[dict[str, Any]] = state.setdefault("media", [])
        for number, file in enumerate(media):
            if number < len(uploaded):
                continue
            entry = self.upload(file, alts[number], f"Mastodon media {number + 1} of status "
                                                    f"{index + 1}")
            uploaded.append(entry)
            self.save()
        for entry in uploaded:
            if not entry.get("ready"):
                self.wait_processed(entry)
        return [str(entry["id"]) for entry in uploaded]

    def upload(self, file: MediaFile, description: str, what: str) -> dict[str, Any]:
        """``POST /api/v2/media``: 200 when processed at once, 202 while processing."""
        data = {"description": description} if description else {}
        with file.open() as handle:
            response = self.api.call(
                "POST", "/api/v2/media", what=what, data=data,
                files={"file": (file.name or file.path.name, handle, file.info.mime_type)})
        try:
            body = response.json()
            media_id = str(body["id"])
        except (ValueError, KeyError, TypeError) as exc:
            raise TransientError(f"{what}: Mastodon answered without a media id: "
                                 f"{response.text[:200]}",
                                 platform_code="bad-response") from exc
        ready = response.status_code == 200 and bool(body.get("url"))
        self.ctx.log("mastodon.media", f"{what} uploaded as {media_id}"
                     + ("" if ready else " (processing)"), media_id=media_id)
        return {"id": media_id, "ready": ready}

    def wait_processed(self, entry: dict[str, Any]) -> None:
        """Poll ``GET /api/v1/media/:id`` (206 while processing) until ``url`` is set."""
        waited = 0.0
        delays = self.ctx.poll_delays()
        while True:
            response = self.api.call("GET", f"/api/v1/media/{entry['id']}",
                                     what=f"Mastodon media {entry['id']}")
            try:
                body = response.json()
            except ValueError:
                body = {}
            if response.status_code == 200 and isinstance(body, dict) and body.get("url"):
                entry["ready"] = True
                self.save()
                return
            if waited >= PROCESSING_TIMEOUT_S:
                raise TransientError(f"Mastodon media {entry['id']} still processing after "
                                     f"{waited:.0f} s", platform_code="processing")
            delay = float(next(delays))
            self.ctx.sleep(delay)
            waited += delay
