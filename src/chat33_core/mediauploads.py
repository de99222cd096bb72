"""Direct uploads of large files: presign, PUT, complete.

1. :meth:`DirectUploads.presign` records a pending upload (its declared name, type and
   size) and hands out where to PUT the bytes: a pre-signed PUT of the object store,
   with the size and type bound in the signature, or, on the folder backend, the API's
   own upload route with a one-use token.
2. :meth:`DirectUploads.receive` is that route: the body is streamed to the file at
   constant memory; ``Content-Range`` resumes an upload a broken connection cut short.
3. :meth:`DirectUploads.complete` inspects the stored file (its headers, read through
   the store), hashes it (streamed through once, as the store serves it) and turns it
   into a media asset; a file whose size or type is not what was declared is refused
   and deleted. The file keeps the name the presign gave it (its URL was handed out
   then); the asset's ``sha256`` is its content hash, as for an upload.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta
from typing import IO, TYPE_CHECKING

import attrs
from attrs import frozen

from .blobs import FileBlobs, Overrun
from .errors import Conflict, Gone, Issue, NotFound, ValidationError
from .fetch import MAX_IMAGE_BYTES
from .media import MediaError, inspect
from .mediastore import check_size
from .models import MediaAsset, new_id, utcnow
from .serialization import media_info_json
from .store.uploads import PendingUpload

if TYPE_CHECKING:
    from .mediastore import MediaStore
    from .store import Store

#: how long an upload URL may be used (a 5 GB file at 10 Mbit/s takes over an hour)
UPLOAD_TTL = timedelta(hours=24)
#: the types a direct upload may declare, and the extension its file is kept under
DECLARED_TYPES = {
    "image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "image/webp": "webp",
    "video/mp4": "mp4", "video/quicktime": "mov", "video/webm": "webm",
}
_RANGE = re.compile(r"bytes (?:(\d+)-(\d+)|\*)/(\d+)")


@frozen
class Ticket:
    """What ``presign`` answers: the pending upload and where to PUT its bytes."""

    upload: PendingUpload
    #: a pre-signed URL and its headers, or None: PUT to the API's route with ``token``
    presigned: tuple[str, dict[str, str]] | None
    token: str
    url: str


@frozen
class Received:
    """The state of a direct upload after a PUT: ``received`` of ``size`` bytes."""

    media_id: str
    received: int
    size: int

    @property
    def complete(self) -> bool:
        return self.received == self.size


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class DirectUploads:
    def __init__(self, store: Store, files: MediaStore, max_bytes: int) -> None:
        self.store, self.files, self.max_bytes = store, files, max_bytes

    def presign(self, org_id: str, filename: str, content_type: str, size: int,
                now: datetime | None = None) -> Ticket:
        filename = filename.strip()
        issues = []
        if not filename or len(filename) > 200:
            issues.append(Issue("filename", "give the file's name (1 to 200 characters)"))
        ext = DECLARED_TYPES.get(content_type.lower().strip())
        if ext is None:
            issues.append(Issue("contentType", f"{content_type[:100]!r} is not a type a "
                                "direct upload takes; one of " + ", ".join(DECLARED_TYPES),
                                code="unsupported_media"))
        if size <= 0:
            issues.append(Issue("size", "the size must be a positive number of bytes"))
        elif size > self.max_bytes:
            issues.append(Issue("size", f"{size:,} bytes is over the {self.max_bytes:,}-byte "
                                "limit of a direct upload", code="too_large"))
        elif ext is not None and content_type.startswith("image/") and size > MAX_IMAGE_BYTES:
            issues.append(Issue("size", f"{size:,} bytes is over the {MAX_IMAGE_BYTES:,}-byte "
                                "limit for images", code="too_large"))
        if issues:
            raise ValidationError(issues[0].message, details=issues)
        assert ext is not None
        now = now or utcnow()
        media_id = new_id("media")
        name = f"{media_id}.{ext}"
        token = secrets.token_urlsafe(32)
        upload = PendingUpload(
            id=media_id, org_id=org_id, name=name, filename=filename,
            content_type=content_type.lower().strip(), size=size, token_hash=_hash(token),
            expires_at=now + UPLOAD_TTL, completed_at=None, created_at=now)
        presigned = self.files.blobs.presign_put(name, upload.content_type, size,
                                                 int(UPLOAD_TTL.total_seconds()))
        self.store.add_upload(upload)
        return Ticket(upload=upload, presigned=presigned, token=token,
                      url=self.files.url_for(name))

    def _by_token(self, token: str, now: datetime) -> PendingUpload:
        upload = self.store.upload_by_token(_hash(token))
        if upload is None:
            raise NotFound("no upload for this URL: ask POST /media/presign for one")
        if upload.completed_at is not None:
            raise Conflict(f"upload {upload.id} is already completed")
        if upload.expires_at <= now:
            raise Gone(f"this upload URL expired at {upload.expires_at.isoformat()}: ask "
                       "POST /media/presign for a new one")
        return upload

    def _local(self) -> FileBlobs:
        if not isinstance(self.files.blobs, FileBlobs):
            raise NotFound("uploads go straight to the object store: PUT to the uploadUrl "
                           "that /media/presign answered")
        return self.files.blobs

    def status(self, token: str, now: datetime | None = None) -> Received:
        """How many bytes of the upload have arrived (to resume from there)."""
        upload = self._by_token(token, now or utcnow())
        received = self._local().size(upload.name) or 0
        return Received(upload.id, received, upload.size)

    def receive(self, token: str, stream: IO[bytes], length: int | None,
                content_range: str | None, now: datetime | None = None) -> Received:
        """Write a PUT body: the whole file, or with ``Content-Range: bytes S-E/TOTAL``
        the part from S (S at most what has arrived). ``bytes */TOTAL`` with no body
        asks how much has arrived."""
        upload = self._by_token(token, now or utcnow())
        blobs = self._local()
        have = blobs.size(upload.name) or 0
        if content_range is None:
            start, end = 0, upload.size - 1
            if length is not None and length != upload.size:
                raise _bad("Content-Length", f"the body is {length:,} bytes; this upload "
                           f"was declared as {upload.size:,} (send the rest with "
                           "Content-Range to resume)")
        else:
            match = _RANGE.fullmatch(content_range.strip())
            if match is None:
                raise _bad("Content-Range", f"{content_range[:100]!r} is not "
                           "`bytes START-END/TOTAL` or `bytes */TOTAL`")
            if int(match[3]) != upload.size:
                raise _bad("Content-Range", f"the total {int(match[3]):,} is not the "
                           f"declared size {upload.size:,}")
            if match[1] is None:
                return Received(upload.id, have, upload.size)
            start, end = int(match[1]), int(match[2])
            if end < start or end >= upload.size:
                raise _bad("Content-Range", f"bytes {start}-{end} are not within the "
                           f"file's {upload.size:,} bytes")
            if length is not None and length != end - start + 1:
                raise _bad("Content-Length", f"the body is {length:,} bytes; the range "
                           f"{start}-{end} is {end - start + 1:,}")
        if start > have:
            raise Conflict(f"{have:,} bytes of this upload have arrived: resume from byte "
                           f"{have} (Content-Range: bytes {have}-{upload.size - 1}/"
                           f"{upload.size})", details=[Issue("Content-Range", "starts after "
                                                             "the bytes received")])
        try:
            written = blobs.write_at(upload.name, start, stream, end - start + 1)
        except Overrun:
            raise _bad("body", f"the body is longer than the {end - start + 1:,} bytes "
                       f"from byte {start} to the declared size {upload.size:,}; nothing "
                       f"of it was kept: resume from byte {start} with the file's own bytes",
                       code="too_large") from None
        return Received(upload.id, start + written, upload.size)

    def complete(self, org_id: str, media_id: str,
                 now: datetime | None = None) -> MediaAsset:
        """Inspect the uploaded file and keep it as the organization's media."""
        upload = self.store.get_upload(org_id, media_id)
        if upload.completed_at is not None:
            raise Conflict(f"upload {media_id} is already completed: GET /media/{media_id}")
        size = self.files.blobs.size(upload.name)
        if size is None:
            raise _bad("mediaId", "nothing has been uploaded yet: PUT the file to the "
                       "uploadUrl first", code="not_uploaded")
        if size < upload.size and isinstance(self.files.blobs, FileBlobs):
            raise _bad("mediaId", f"{size:,} of the {upload.size:,} declared bytes have "
                       f"arrived: resume the PUT from byte {size}", code="incomplete")
        if size != upload.size:
            self._refuse(upload)
            raise _bad("size", f"the file is {size:,} bytes, not the {upload.size:,} "
                       "declared; it was deleted", code="size_mismatch")
        try:
            with self.files.open(upload.name) as fh:
                info = inspect(fh)
            check_size(info, max_video_bytes=self.max_bytes)
        except MediaError as exc:
            self._refuse(upload)
            raise _bad("file", f"{exc.message}; it was deleted",
                       code="unsupported_media") from None
        if info.mime_type != upload.content_type:
            self._refuse(upload)
            raise _bad("contentType", f"the file is {info.mime_type}, not the "
                       f"{upload.content_type} declared; it was deleted", code="type_mismatch")
        asset = MediaAsset(
            id=upload.id, org_id=org_id, name=upload.name, path=self.files.where(upload.name),
            url=self.files.url_for(upload.name), kind="video" if info.is_video else "image",
            content_type=info.mime_type, size=size, sha256=self.files.digest(upload.name),
            source_url=None, info=media_info_json(info), created_at=now or utcnow())
        if not self.store.complete_upload(upload, asset, now or utcnow()):
            raise Conflict(f"upload {media_id} is already completed: GET /media/{media_id}")
        # answered as /media/upload answers: named as the client called the file
        return attrs.evolve(asset, name=upload.filename)

    def _refuse(self, upload: PendingUpload) -> None:
        self.files.delete(upload.name)
        self.store.delete_upload(upload.id)

    def sweep_expired(self, now: datetime | None = None) -> int:
        """Delete uploads never completed whose URL expired (and their bytes)."""
        gone = self.store.expired_uploads(now or utcnow())
        for upload in gone:
            self._refuse(upload)
        return len(gone)


def _bad(path: str, message: str, code: str = "invalid") -> ValidationError:
    return ValidationError(message, details=[Issue(path, message, code=code)])
