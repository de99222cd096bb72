"""An organization's media library: what it uploaded, and deleting what nothing waits for.

Small on purpose: the web app's Media page lists an organization's files and deletes
those that no post still to be published (QUEUED or PUBLISHING) uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa

from .errors import Conflict, NotFound
from .models import MediaAsset, PostStatus
from .store import tables as t

if TYPE_CHECKING:
    from .service import Chat33

#: posts whose media must stay: they have not gone out yet
PENDING = (PostStatus.QUEUED.value, PostStatus.PUBLISHING.value)


def list_media(core: Chat33, org_id: str, *, limit: int = 200) -> list[MediaAsset]:
    """The organization's media, newest first (at most ``limit``)."""
    m = t.media_assets
    with core.store.read() as c:
        rows = c.execute(sa.select(m).where(m.c.org_id == org_id)
                         .order_by(m.c.created_at.desc(), m.c.id.desc()).limit(limit)
                         ).mappings().all()
    return [MediaAsset(**row) for row in rows]


def media_in_use(core: Chat33, org_id: str) -> set[str]:
    """Ids of the organization's media that a QUEUED or PUBLISHING post uses (by id or
    by URL)."""
    p, m = t.posts, t.media_assets
    with core.store.read() as c:
        posts = c.execute(sa.select(p.c.media_ids, p.c.media_urls).where(
            p.c.org_id == org_id, p.c.status.in_(PENDING))).all()
        assets = c.execute(sa.select(m.c.id, m.c.url, m.c.source_url)
                           .where(m.c.org_id == org_id)).all()
    ids: set[str] = set()
    urls: set[str] = set()
    for media_ids, media_urls in posts:
        ids.update(media_ids or ())
        urls.update(media_urls or ())
    return {a.id for a in assets if a.id in ids or a.url in urls or a.source_url in urls}


def delete_media(core: Chat33, org_id: str, media_id: str) -> MediaAsset:
    """Delete one of the organization's media: NotFound for another organization's,
    Conflict while a post still to be published uses it. The file goes too unless
    another record (an organization that uploaded the same bytes) still names it."""
    asset = core.store.get_media(media_id)
    if asset.org_id != org_id:
        raise NotFound(f"media {media_id} not found")
    if media_id in media_in_use(core, org_id):
        raise Conflict("a queued post uses this media: cancel or publish it first")
    m = t.media_assets
    with core.store.begin() as c:
        c.execute(sa.delete(m).where(m.c.id == media_id))
        shared = c.execute(sa.select(sa.func.count()).select_from(m)
                           .where(m.c.name == asset.name)).scalar_one()
    if not shared:
        core.media.files.delete(asset.name)
    return asset


__all__ = ["PENDING", "delete_media", "list_media", "media_in_use"]
