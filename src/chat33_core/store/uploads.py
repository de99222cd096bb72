"""Direct uploads (``/media/presign``) until they are completed into media assets."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from attrs import frozen

from ..errors import NotFound
from ..models import MediaAsset
from . import tables as t
from ._sql import execute
from .database import Database


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


def _values(upload: PendingUpload) -> dict[str, Any]:
    return {a.name: getattr(upload, a.name) for a in PendingUpload.__attrs_attrs__}


class Uploads(Database):
    """Pending direct uploads."""

    def add_upload(self, upload: PendingUpload) -> PendingUpload:
        with self.begin() as c:
            execute(c, t.media_uploads.insert().values(_values(upload)))
        return upload

    def upload_by_token(self, token_hash: str) -> PendingUpload | None:
        with self.read() as c:
            row = execute(c, sa.select(t.media_uploads).where(
                t.media_uploads.c.token_hash == token_hash)).mapping()
        return None if row is None else PendingUpload(**row)

    def get_upload(self, org_id: str, media_id: str) -> PendingUpload:
        """The organization's upload ``media_id``; NotFound for another organization's."""
        with self.read() as c:
            row = execute(c, sa.select(t.media_uploads).where(
                t.media_uploads.c.id == media_id, t.media_uploads.c.org_id == org_id)
            ).mapping()
        if row is None:
            raise NotFound(f"no upload {media_id} in this organization")
        return PendingUpload(**row)

    def complete_upload(self, upload: PendingUpload, asset: MediaAsset,
                        now: datetime) -> bool:
        """Mark ``upload`` completed and keep ``asset``, in one transaction; False when
        another request completed it first (nothing is written then)."""
        with self.begin() as c:
            done = execute(c, t.media_uploads.update().where(
                t.media_uploads.c.id == upload.id, t.media_uploads.c.completed_at.is_(None))
                .values(completed_at=now)).rowcount
            if not done:
                return False
            execute(c, t.media_assets.insert().values(
                {a.name: getattr(asset, a.name) for a in MediaAsset.__attrs_attrs__}))
        return True

    def delete_upload(self, media_id: str) -> None:
        with self.begin() as c:
            execute(c, t.media_uploads.delete().where(t.media_uploads.c.id == media_id))

    def expired_uploads(self, now: datetime, limit: int = 500) -> list[PendingUpload]:
        """Uploads never completed whose token has expired."""
        with self.read() as c:
            rows = execute(c, sa.select(t.media_uploads).where(
                t.media_uploads.c.completed_at.is_(None), t.media_uploads.c.expires_at < now)
                .limit(limit)).mappings()
        return [PendingUpload(**r) for r in rows]
