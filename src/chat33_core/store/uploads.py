"""The SQL of the media library: direct uploads, media listings, use counts, retention."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from attrs import frozen

from ..errors import NotFound
from ..models import MediaAsset, PostStatus
from . import tables as t

if TYPE_CHECKING:
    from .core import Store

#: statuses of a post that still needs its media
PENDING_STATUSES = (PostStatus.DRAFT, PostStatus.QUEUED, PostStatus.PUBLISHING)


@frozen
class PendingUpload:
    """A direct upload handed out by ``/media/presign``, until it is completed."""

    id: str
    org_id: str
    name: str
    filename: str
    content_type: str
    size: int
    token_hash: str
    expires_at: datetime
    completed_at: datetime | None
    created_at: datetime


def add_upload(store: Store, upload: PendingUpload) -> PendingUpload:
    with store.begin() as c:
        c.execute(t.media_uploads.insert().values(_values(upload)))
    return upload


def _values(upload: PendingUpload) -> dict[str, Any]:
    return {a.name: getattr(upload, a.name) for a in PendingUpload.__attrs_attrs__}


def upload_by_token(store: Store, token_hash: str) -> PendingUpload | None:
    with store.read() as c:
        row = c.execute(sa.select(t.media_uploads).where(
            t.media_uploads.c.token_hash == token_hash)).mappings().first()
    return None if row is None else PendingUpload(**row)


def get_upload(store: Store, org_id: str, media_id: str) -> PendingUpload:
    """The organization's upload ``media_id``; NotFound for another organization's."""
    with store.read() as c:
        row = c.execute(sa.select(t.media_uploads).where(
            t.media_uploads.c.id == media_id, t.media_uploads.c.org_id == org_id)
        ).mappings().first()
    if row is None:
        raise NotFound(f"no upload {media_id} in this organization")
    return PendingUpload(**row)


def complete_upload(store: Store, upload: PendingUpload, asset: MediaAsset,
                    now: datetime) -> bool:
    """Mark ``upload`` completed and keep ``asset``, in one transaction; False when
    another request completed it first (nothing is written then)."""
    with store.begin() as c:
        done = c.execute(t.media_uploads.update().where(
            t.media_uploads.c.id == upload.id, t.media_uploads.c.completed_at.is_(None))
            .values(completed_at=now)).rowcount
        if not done:
            return False
        c.execute(t.media_assets.insert().values(
            {a.name: getattr(asset, a.name) for a in MediaAsset.__attrs_attrs__}))
    return True


def delete_upload(store: Store, media_id: str) -> None:
    with store.begin() as c:
        c.execute(t.media_uploads.delete().where(t.media_uploads.c.id == media_id))


def expired_uploads(store: Store, now: datetime, limit: int = 500) -> list[PendingUpload]:
    """Uploads never completed whose token has expired."""
    with store.read() as c:
        rows = c.execute(sa.select(t.media_uploads).where(
            t.media_uploads.c.completed_at.is_(None), t.media_uploads.c.expires_at < now)
            .limit(limit)).mappings().all()
    return [PendingUpload(**r) for r in rows]


# --- the library -------------------------------------------------------------------------

def list_media(store: Store, org_id: str, *, limit: int,
               before: str | None = None) -> list[MediaAsset]:
    """The organization's media, newest first (ids sort by creation time), at most
    ``limit``, those with an id below ``before`` (the cursor of the previous page)."""
    m = t.media_assets
    query = sa.select(m).where(m.c.org_id == org_id)
    if before:
        query = query.where(m.c.id < before)
    with store.read() as c:
        rows = c.execute(query.order_by(m.c.id.desc()).limit(limit)).mappings().all()
    return [MediaAsset(**r) for r in rows]


def org_media(store: Store, org_id: str, media_id: str) -> MediaAsset:
    with store.read() as c:
        row = c.execute(sa.select(t.media_assets).where(
            t.media_assets.c.id == media_id, t.media_assets.c.org_id == org_id)
        ).mappings().first()
    if row is None:
        raise NotFound(f"no media {media_id} in this organization")
    return MediaAsset(**row)


def pending_uses(store: Store, org_id: str, media_ids: Collection[str]) -> dict[str, int]:
    """How many posts of the organization not yet done (draft, queued, publishing) use
    each of ``media_ids``."""
    wanted = set(media_ids)
    counts = dict.fromkeys(wanted, 0)
    if not wanted:
        return counts
    p = t.posts
    with store.read() as c:
        rows = c.execute(sa.select(p.c.media_ids).where(
            p.c.org_id == org_id, p.c.status.in_([s.value for s in PENDING_STATUSES])))
        for (ids,) in rows:
            for media_id in set(ids or ()) & wanted:
                counts[media_id] += 1
    return counts


def delete_media_row(store: Store, media_id: str) -> int:
    """Delete the row; how many rows still name the same file."""
    with store.begin() as c:
        name = c.execute(sa.select(t.media_assets.c.name).where(
            t.media_assets.c.id == media_id)).scalar()
        c.execute(t.media_assets.delete().where(t.media_assets.c.id == media_id))
        if name is None:
            return 0
        return int(c.execute(sa.select(sa.func.count()).select_from(t.media_assets).where(
            t.media_assets.c.name == name)).scalar() or 0)


def retention_candidates(store: Store, cutoff: datetime, after: str = "",
                         limit: int = 500) -> tuple[list[MediaAsset], str | None]:
    """Of the next ``limit`` media (by id, after ``after``) created before ``cutoff``,
    those that no post still needs and that no post used after ``cutoff`` (a post
    changed since, or not yet done); and the id to go on after (None: the end). Checked
    in Python, since post media lists are JSON arrays."""
    m, p = t.media_assets, t.posts
    with store.read() as c:
        assets = [MediaAsset(**r) for r in c.execute(
            sa.select(m).where(m.c.created_at < cutoff, m.c.id > after).order_by(m.c.id)
            .limit(limit)).mappings().all()]
        if not assets:
            return [], None
        keep: set[str] = set()
        pending = {s.value for s in PENDING_STATUSES}
        rows = c.execute(sa.select(p.c.media_ids, p.c.status, p.c.updated_at).where(
            p.c.org_id.in_({a.org_id for a in assets})))
        for ids, status, updated in rows:
            if ids and (status in pending or updated >= cutoff):
                keep.update(ids)
    return [a for a in assets if a.id not in keep], assets[-1].id
