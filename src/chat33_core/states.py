"""The post life cycle: every status change goes through :func:`transition`.

::

    DRAFT ⇄ QUEUED → PUBLISHING → PUBLISHED
      │       │          │  ↘ FAILED
      │       │          └→ QUEUED (retry, deferral, released lease)
      │       └→ CANCELLED ← PUBLISHED, FAILED (delete = cancel)
      └→ CANCELLED
      (DRAFT is deleted outright by DELETE; CANCELLED is final)

Editing is allowed in DRAFT and QUEUED only; PUBLISHING refuses every user action.
"""

from __future__ import annotations

import enum

from .errors import InvalidTransition
from .models import PostStatus

S = PostStatus


class Actor(enum.StrEnum):
    USER = "user"
    WORKER = "worker"


#: (from, to) → who may make the move
_ALLOWED: dict[tuple[PostStatus, PostStatus], frozenset[Actor]] = {
    (S.DRAFT, S.QUEUED): frozenset({Actor.USER}),
    (S.DRAFT, S.CANCELLED): frozenset({Actor.USER}),
    (S.QUEUED, S.DRAFT): frozenset({Actor.USER}),
    (S.QUEUED, S.CANCELLED): frozenset({Actor.USER}),
    (S.QUEUED, S.PUBLISHING): frozenset({Actor.WORKER}),
    (S.PUBLISHING, S.PUBLISHED): frozenset({Actor.WORKER}),
    (S.PUBLISHING, S.FAILED): frozenset({Actor.WORKER}),
    (S.PUBLISHING, S.QUEUED): frozenset({Actor.WORKER}),
    (S.PUBLISHED, S.CANCELLED): frozenset({Actor.USER}),
    (S.FAILED, S.CANCELLED): frozenset({Actor.USER}),
    # a failed post may be put back in the queue or to draft by its owner (retry by hand)
    (S.FAILED, S.QUEUED): frozenset({Actor.USER}),
}

EDITABLE = frozenset({S.DRAFT, S.QUEUED})
#: statuses the user may ask for in PATCH
USER_TARGETS = frozenset({S.DRAFT, S.QUEUED, S.CANCELLED})


def can(current: PostStatus, target: PostStatus, actor: Actor = Actor.USER) -> bool:
    if current == target:
        return current in EDITABLE and actor is Actor.USER
    return actor in _ALLOWED.get((current, target), frozenset())


def transition(current: PostStatus, target: PostStatus, actor: Actor = Actor.USER) -> PostStatus:
    """Return ``target`` if ``actor`` may move a post from ``current`` to it; otherwise
    raise :class:`~chat33_core.errors.InvalidTransition` (409 CONFLICT at the API)."""
    if not can(current, target, actor):
        raise InvalidTransition(current.value, target.value)
    return target


def check_editable(current: PostStatus) -> None:
    if current not in EDITABLE:
        raise InvalidTransition(current.value, current.value,
                                action="edit the post (only DRAFT and QUEUED posts can be edited)")


def retry(current: PostStatus) -> PostStatus:
    """The status a post takes when its owner retries it: a FAILED post goes back to
    QUEUED (through :func:`transition`); from any other status, InvalidTransition (a
    DRAFT is queued with an edit, not a retry)."""
    if current is not S.FAILED:
        raise InvalidTransition(current.value, S.QUEUED.value,
                                action="retry the post (only FAILED posts can be retried)")
    return transition(current, S.QUEUED)


class DeleteAction(enum.StrEnum):
    HARD_DELETE = "deleted"
    CANCEL = "cancelled"


def delete_action(current: PostStatus) -> DeleteAction:
    """What DELETE does: hard-delete a DRAFT, cancel QUEUED/PUBLISHED/FAILED, refuse
    PUBLISHING (and an already CANCELLED post)."""
    if current is S.DRAFT:
        return DeleteAction.HARD_DELETE
    if current in (S.QUEUED, S.PUBLISHED, S.FAILED):
        return DeleteAction.CANCEL
    action = ("delete a post that is being published" if current is S.PUBLISHING
              else "delete a cancelled post")
    raise InvalidTransition(current.value, S.CANCELLED.value, action=action)
