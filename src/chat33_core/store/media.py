"""Media files: the assets stored for an organization."""

from __future__ import annotations

import attrs
import sqlalchemy as sa

from ..errors import NotFound
from ..models import (
    MediaAsset,
)
from . import tables as t
from .database import Database


class Media(Database):
    """Media assets."""

    def add_media(self, asset: MediaAsset) -> MediaAsset:
        with self.begin() as c:
            c.execute(t.media_assets.insert().values(**attrs.asdict(asset)))
        return asset

    def get_media(self, media_id: str) -> MediaAsset:
        with self.read() as c:
            row = c.execute(sa.select(t.media_assets).where(t.media_assets.c.id == media_id)
                            ).mappings().first()
        if row is None:
            raise NotFound(f"media {media_id} not found")
        return MediaAsset(**row)

    def find_media_by_url(self, org_id: str, url: str) -> MediaAsset | None:
        """A media file this organization already has under ``url`` (our own URL or the
        source it was fetched from)."""
        with self.read() as c:
            row = c.execute(sa.select(t.media_assets).where(
                t.media_assets.c.org_id == org_id,
                sa.or_(t.media_assets.c.url == url, t.media_assets.c.source_url == url))
                .order_by(t.media_assets.c.created_at.desc())).mappings().first()
        return None if row is None else MediaAsset(**row)

    def find_media_by_name(self, name: str) -> MediaAsset | None:
        with self.read() as c:
            row = c.execute(sa.select(t.media_assets).where(t.media_assets.c.name == name)
                            ).mappings().first()
        return None if row is None else MediaAsset(**row)

