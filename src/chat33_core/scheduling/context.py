"""What a plugin gets for one attempt, besides the account and its credentials: the
attempt's log (``ctx.log``: :class:`AttemptLog`), its durable checkpoints
(``ctx.checkpoints``: :class:`DurableCheckpoints`) and the post's media as files
(:func:`publish_items`, :func:`cover_image`)."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import NotFound
from ..models import LogEvent, MediaAsset, Post
from ..platforms import MediaFile, PublishItem
from ..serialization import media_info_of
from ..store import Store
from .batch import GroupCommit, Writes

if TYPE_CHECKING:
    from ..service import Chat33

#: the worker's own state inside a post's checkpoint row (the plugin never sees it)
WORKER_KEY = "_chat33_worker"
#: values a log event's data keeps as they are (anything else goes through JSON)
_PLAIN = frozenset({str, int, bool, type(None)})


class AttemptLog:
    """The ``ctx.log`` of one attempt: events are buffered and written at the next
    durable point (a checkpoint save or the final state), in that same transaction."""

    def __init__(self, post_id: str, attempt: int, checkpointed: bool = True) -> None:
        self.post_id = post_id
        self.attempt = attempt
        #: the post may have a checkpoint row (to delete when it is done); False only when
        #: the claim found none and this attempt saved none
        self.checkpointed = checkpointed
        self._events: list[LogEvent] = []
        self._lock = threading.Lock()

    def __call__(self, event: str, message: str, **data: Any) -> None:
        if all(type(v) in _PLAIN for v in data.values()):
            clean = data  # already what JSON gives back
        else:
            try:
                clean = json.loads(json.dumps(data, default=str))
            except (TypeError, ValueError):
                clean = {"repr": repr(data)}
        with self._lock:
            self._events.append(LogEvent(id=None, post_id=self.post_id, event=event[:60],
                                         message=message, attempt=self.attempt, data=clean))

    def drain(self) -> list[LogEvent]:
        with self._lock:
            events, self._events = self._events, []
        return events


class DurableCheckpoints:
    """``ctx.checkpoints`` backed by the ``checkpoints`` table. The worker keeps a little
    state of its own beside the plugin's (e.g. "an outcome is unconfirmed").

    Every save is fenced by the lease (and extends it): a worker whose lease expired, and
    whose post was maybe taken over, must neither overwrite the new owner's checkpoint nor
    go on to the platform call the save precedes; :class:`~.queue.LeaseLost` ends its
    attempt. Saves go through the worker's :class:`GroupCommit`, with the attempt's
    buffered logs.
    """

    def __init__(self, store: Store, post_id: str, attempt_log: AttemptLog,
                 stored: dict[str, Any] | None, committer: GroupCommit) -> None:
        self.committer = committer
        self.post_id = post_id
        self.attempt_log = attempt_log
        stored = dict(stored) if stored is not None else store.load_checkpoint(post_id)
        self.worker: dict[str, Any] = dict(stored.pop(WORKER_KEY, None) or {})
        self.data: dict[str, Any] = stored

    def load(self) -> dict[str, Any]:
        copy: dict[str, Any] = json.loads(json.dumps(self.data))  # callers may mutate it
        return copy

    def save(self, data: Mapping[str, Any]) -> None:
        self.data = json.loads(json.dumps(dict(data), default=str))
        self._write()

    def mark(self, **worker_state: Any) -> None:
        self.worker.update(worker_state)
        self.worker = {k: v for k, v in self.worker.items() if v is not None}
        self._write()

    def _write(self) -> None:
        row = dict(self.data)
        if self.worker:
            row[WORKER_KEY] = self.worker
        self.attempt_log.checkpointed = True
        self.committer.commit(Writes(fence=[self.post_id], checkpoints={self.post_id: row},
                                     logs=self.attempt_log.drain()))


def publish_items(core: Chat33, posts: Sequence[Post]) -> list[PublishItem]:
    """The items of a post or a thread, their media as files (:class:`NotFound` when one
    is missing)."""
    return [PublishItem(post_id=p.id, text=p.text, position=p.thread_position,
                        media=[_media_file(core, core.store.get_media(media_id))
                               for media_id in p.media_ids])
            for p in posts]


def cover_image(core: Chat33, post: Post) -> MediaFile | None:
    """The post's cover image as a file, if it names one that is there."""
    if not post.cover_image_url:
        return None
    asset = core.store.find_media_by_url(post.org_id, post.cover_image_url)
    try:
        return None if asset is None else _media_file(core, asset)
    except NotFound:
        return None


def _media_file(core: Chat33, asset: MediaAsset) -> MediaFile:
    """The file read through the media store (a local copy when it lives in an
    object store), with a URL a platform can pull it from."""
    files = core.media.files
    return MediaFile(path=files.local_file(asset.name), info=media_info_of(asset.info),
                     url=files.fetch_url(asset.name), name=asset.name)
