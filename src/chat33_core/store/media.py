"""Media files: the assets stored for an organization, the library's listings and use
counts, and the retention sweep's choice."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any

import attrs
import sqlalchemy as sa

from ..errors import Issue, NotFound, ValidationError
from ..models import (
    MediaAsset,
    PostStatus,
)
from . import tables as t
from ._sql import Query, execute
from .database import Database

#: statuses of a post that still needs its media
PENDING_STATUSES = (PostStatus.DRAFT, PostStatus.QUEUED, PostStatus.PUBLISHING)

_MEDIA_THERE = Query(sa.select(t.media_assets.c.id).where(
    t.media_assets.c.id == sa.bindparam("id")))
_MEDIA_LOCKED = Query(sa.select(t.media_assets.c.id).where(
    t.media_assets.c.id == sa.bindparam("id")).with_for_update(read=True))


def media_kept(db: Database, c: Any, media_ids: Iterable[str]) -> None:
    """The assets ``media_ids`` are all still there, in ``c``'s write transaction (a post
    about to be written with them); on PostgreSQL their rows are locked ``FOR SHARE``
    until it ends. ValidationError when one was deleted since the request found it
    (:meth:`Media.delete_unused_media` takes the row ``FOR UPDATE`` to check and
    delete)."""
    query = _MEDIA_LOCKED if db.is_postgres else _MEDIA_THERE
    for media_id in media_ids:
        if not db._run(c, query, {"id": media_id}):
            message = (f"media {media_id} was deleted while this post was being written "
                       "(DELETE /media or the retention sweep): send the request again "
                       "to upload or fetch it anew")
            raise ValidationError(message, details=[
                Issue("mediaUrls", message, code="media_deleted")])


class Media(Database):
    """Media assets."""

    def add_media(self, asset: MediaAsset) -> MediaAsset:
        with self.begin() as c:
            execute(c, t.media_assets.insert().values(**attrs.asdict(asset)))
        return asset

    def get_media(self, media_id: str) -> MediaAsset:
        with self.read() as c:
            row = execute(c, sa.select(t.media_assets).where(t.media_assets.c.id == media_id)
                            ).mapping()
        if row is None:
            raise NotFound(f"media {media_id} not found")
        return MediaAsset(**row)

    def find_media_by_url(self, org_id: str, url: str) -> MediaAsset | None:
        """A media file this organization already has under ``url`` (our own URL or the
        source it was fetched from)."""
        with self.read() as c:
            row = execute(c, sa.select(t.media_assets).where(
                t.media_assets.c.org_id == org_id,
                sa.or_(t.media_assets.c.url == url, t.media_assets.c.source_url == url))
                .order_by(t.media_assets.c.created_at.desc())).mapping()
        return None if row is None else MediaAsset(**row)

    def find_media_by_name(self, name: str) -> MediaAsset | None:
        with self.read() as c:
            row = execute(c, sa.select(t.media_assets).where(t.media_assets.c.name == name)
                            ).mapping()
        return None if row is None else MediaAsset(**row)

    def list_media(self, org_id: str, *, limit: int,
                   before: str | None = None) -> list[MediaAsset]:
        """The organization's media, newest first (ids sort by creation time), at most
        ``limit``, those with an id below ``before`` (the cursor of the previous page)."""
        m = t.media_assets
        query = sa.select(m).where(m.c.org_id == org_id)
        if before:
            query = query.where(m.c.id < before)
        with self.read() as c:
            rows = execute(c, query.order_by(m.c.id.desc()).limit(limit)).mappings()
        return [MediaAsset(**r) for r in rows]

    def org_media(self, org_id: str, media_id: str) -> MediaAsset:
        with self.read() as c:
            row = execute(c, sa.select(t.media_assets).where(
                t.media_assets.c.id == media_id, t.media_assets.c.org_id == org_id)
            ).mapping()
        if row is None:
            raise NotFound(f"no media {media_id} in this organization")
        return MediaAsset(**row)

    def pending_uses(self, org_id: str, media_ids: Collection[str]) -> dict[str, int]:
        """How many posts of the organization not yet done (draft, queued, publishing) use
        each of ``media_ids``."""
        wanted = set(media_ids)
        counts = dict.fromkeys(wanted, 0)
        if not wanted:
            return counts
        p = t.posts
        with self.read() as c:
            rows = execute(c, sa.select(p.c.media_ids).where(
                p.c.org_id == org_id, p.c.status.in_([s.value for s in PENDING_STATUSES])))
            for (ids,) in rows:
                for media_id in set(ids or ()) & wanted:
                    counts[media_id] += 1
        return counts

    def delete_unused_media(self, media_id: str, used_since: datetime | None = None
                            ) -> int | None:
        """Delete the asset if no post needs it: none not yet done uses it, nor (with
        ``used_since``) one changed since then. None when one does (it is kept); else how
        many rows still name the same file (0: the file may go). NotFound when it is gone
        already.

        The check and the delete are one transaction, and writing a post with new media
        checks that it is still there in its own (:func:`media_kept`): on
        PostgreSQL the asset's row is locked first (``FOR UPDATE``, against the insert's
        ``FOR SHARE``), so whichever comes second sees what the first did; on SQLite
        both are write transactions (``BEGIN IMMEDIATE``), one after the other."""
        m, p = t.media_assets, t.posts
        with self.begin() as c:
            found = execute(c, sa.select(m.c.org_id, m.c.name).where(m.c.id == media_id)
                              .with_for_update()).first()
            if found is None:  # deleted meanwhile: whoever did it deals with the file
                raise NotFound(f"media {media_id} not found")
            org_id, name = found
            needed: sa.ColumnElement[bool] = p.c.status.in_(
                [s.value for s in PENDING_STATUSES])
            if used_since is not None:
                needed = sa.or_(needed, p.c.updated_at >= used_since)
            # media_ids is a JSON array of ids: its text holds the id in quotes
            using = execute(c, sa.select(p.c.id).where(
                p.c.org_id == org_id, needed,
                sa.cast(p.c.media_ids, sa.Text).contains(f'"{media_id}"', autoescape=True))
                .limit(1)).first()
            if using is not None:
                return None
            execute(c, m.delete().where(m.c.id == media_id))
            return int(execute(c, sa.select(sa.func.count()).select_from(m).where(
                m.c.name == name)).scalar() or 0)

    def retention_candidates(self, cutoff: datetime, after: str = "",
                             limit: int = 500) -> tuple[list[MediaAsset], str | None]:
        """Of the next ``limit`` media (by id, after ``after``) created before ``cutoff``,
        those that no post still needs and that no post used after ``cutoff`` (a post
        changed since, or not yet done); and the id to go on after (None: the end). Checked
        in Python, since post media lists are JSON arrays. A first choice: each is
        deleted with :meth:`delete_unused_media`, which checks again."""
        m, p = t.media_assets, t.posts
        with self.read() as c:
            assets = [MediaAsset(**r) for r in execute(c,
                sa.select(m).where(m.c.created_at < cutoff, m.c.id > after).order_by(m.c.id)
                .limit(limit)).mappings()]
            if not assets:
                return [], None
            keep: set[str] = set()
            pending = {s.value for s in PENDING_STATUSES}
            rows = execute(c, sa.select(p.c.media_ids, p.c.status, p.c.updated_at).where(
                p.c.org_id.in_({a.org_id for a in assets})))
            for ids, status, updated in rows:
                if ids and (status in pending or updated >= cutoff):
                    keep.update(ids)
        return [a for a in assets if a.id not in keep], assets[-1].id
