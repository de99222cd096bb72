"""What a publish to X has done so far, kept in the post's checkpoints.

The worker may die at any moment and another one take over; everything X acknowledged
is saved the moment it is acknowledged, so the next attempt continues instead of
repeating::

    {
      "posted":  [{"id": "185...", "postId": "post_..."}, ...],   # thread order
      "media":   {"<item>": [{"mediaId", "mediaKey", "segments", "finalized",
                              "ready", "expiresAt"}, ...]},
      "pending": {"index", "replyTo", "text", "mediaKeys", "sentAt"}  # a POST /2/tweets
                                                                     # sent, no answer yet
    }
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from chat33_core.platforms import Checkpoints


class Progress:
    """A mutable view of the checkpoints; every change is saved at once."""

    def __init__(self, checkpoints: Checkpoints) -> None:
        self._checkpoints = checkpoints
        loaded = checkpoints.load() or {}
        self.data: dict[str, Any] = copy.deepcopy(dict(loaded))
        self.data.setdefault("posted", [])
        self.data.setdefault("media", {})

    def save(self) -> None:
        self._checkpoints.save(copy.deepcopy(self.data))

    # --- posted thread items -----------------------------------------------------------

    @property
    def posted(self) -> list[dict[str, Any]]:
        return list(self.data["posted"])

    def posted_ids(self) -> list[str]:
        return [entry["id"] for entry in self.data["posted"]]

    def mark_posted(self, index: int, tweet_id: str, post_id: str) -> None:
        """Item ``index`` is on X as ``tweet_id``: saved before anything else happens."""
        if index != len(self.data["posted"]):
            raise RuntimeError(f"thread item {index} posted out of order "
                               f"({len(self.data['posted'])} posted before it)")
        self.data["posted"].append({"id": tweet_id, "postId": post_id})
        self.data["pending"] = None
        self.data["media"].pop(str(index), None)
        self.save()

    # --- a creating request in flight ----------------------------------------------------

    @property
    def pending(self) -> Mapping[str, Any] | None:
        return self.data.get("pending") or None

    def set_pending(self, pending: Mapping[str, Any] | None) -> None:
        self.data["pending"] = dict(pending) if pending else None
        self.save()

    # --- media uploads of one item -------------------------------------------------------

    def media_slot(self, item: int, index: int) -> dict[str, Any]:
        slots = self.data["media"].setdefault(str(item), [])
        while len(slots) <= index:
            slots.append({})
        slot: dict[str, Any] = slots[index]
        return slot

    def update_media(self, item: int, index: int, **changes: Any) -> dict[str, Any]:
        slot = self.media_slot(item, index)
        slot.update(changes)
        self.save()
        return slot

    def reset_media(self, item: int, index: int) -> None:
        slot = self.media_slot(item, index)
        slot.clear()
        self.save()
