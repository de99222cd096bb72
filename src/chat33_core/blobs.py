"""Where media bytes live: a small storage interface and its two backends.

* :class:`FileBlobs` — a folder (``CHAT33_MEDIA_DIR``), the default for one machine;
* :class:`S3Blobs` — S3-compatible object storage (AWS S3, MinIO, Cloudflare R2, GCS's
  XML API), chosen with ``CHAT33_MEDIA_STORE=s3://bucket/prefix``, so that every API
  machine and worker sees the same files.

Both are used through :class:`Blobs`: put a stream, open a (seekable) stream, open a
byte range, delete, list by prefix, and make URLs a client or platform can use. Bytes
are always streamed in chunks, never held whole in memory.

The S3 backend uses boto3: it is the maintained reference client for S3 and its
compatibles, its ``upload_fileobj`` does multipart uploads with bounded buffers, its
``get_object`` bodies stream, and its pre-signed URLs bind ``Content-Length`` and
``Content-Type`` into the signature (SigV4), which direct uploads rely on.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, BinaryIO, Protocol
from urllib.parse import urlsplit

from .errors import ConfigurationError, NotFound

CHUNK = 1024 * 1024
#: a key: path segments of letters, digits, ``._-`` (no ``..``, no absolute paths)
_KEY = re.compile(r"(?:[A-Za-z0-9_-][A-Za-z0-9._-]{0,200}/){0,4}[A-Za-z0-9_-][A-Za-z0-9._-]{0,200}")
#: the longest a pre-signed URL of SigV4 may live
MAX_PRESIGN_S = 7 * 24 * 3600


def check_key(key: str) -> str:
    if not _KEY.fullmatch(key) or ".." in key:
        raise NotFound(f"no media file named {key!r}")
    return key


def check_dir(path: Path, where: str) -> None:
    """Make sure ``path`` exists (made if need be) and takes a file; ConfigurationError
    naming ``where`` otherwise."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix="probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigurationError(
            f"{where} cannot keep media files: {exc.strerror or exc}") from None


class Blobs(Protocol):
    """The media storage interface. Keys are relative names such as ``<sha256>.jpg``."""

    #: a short description for messages (``the folder /srv/media``, ``s3://bucket/p``)
    where: str

    def check(self) -> None:
        """Raise :class:`ConfigurationError` when files cannot be kept here."""

    def put(self, key: str, stream: BinaryIO) -> int:
        """Store ``stream`` (read to its end in chunks) under ``key``; the size."""

    def put_file(self, key: str, path: Path) -> int:
        """Store the local file ``path`` under ``key`` (moved or copied); the size."""

    def open(self, key: str) -> BinaryIO:
        """A seekable binary stream of the whole object; NotFound when missing."""

    def open_range(self, key: str, start: int, end: int) -> BinaryIO:
        """A stream of the bytes ``start`` to ``end`` inclusive."""

    def size(self, key: str) -> int | None:
        """The object's size, or None when there is none."""

    def delete(self, key: str) -> None:
        """Remove ``key`` (no error when it is already gone)."""

    def list(self, prefix: str = "") -> Iterator[tuple[str, int]]:
        """``(key, size)`` of the objects whose key starts with ``prefix``."""

    def fetch_url(self, key: str, expires_s: int) -> str | None:
        """A URL a platform can GET the object at for ``expires_s`` seconds, or None
        when the backend has none of its own (then our ``/media`` route serves it)."""

    def presign_put(self, key: str, content_type: str, size: int,
                    expires_s: int) -> tuple[str, dict[str, str]] | None:
        """A URL and headers for a client to PUT exactly ``size`` bytes of
        ``content_type`` straight to the store, or None (then the API takes the PUT)."""


class _Window(io.RawIOBase):
    """``length`` bytes of ``raw`` from where it stands, then EOF; closes ``raw``."""

    def __init__(self, raw: BinaryIO, length: int) -> None:
        self.raw, self.left = raw, length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.left <= 0:
            return 0
        view = memoryview(buffer)[:min(len(buffer), self.left)]
        data = self.raw.read(len(view))
        view[:len(data)] = data
        self.left -= len(data)
        return len(data)

    def close(self) -> None:
        self.raw.close()
        super().close()


class FileBlobs:
    """Files under ``root``. Writes land in ``root/.incoming`` and are renamed into
    place, so a reader never sees half a file."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.incoming = self.root / ".incoming"
        self.where = f"CHAT33_MEDIA_DIR {str(self.root)!r}"

    def check(self) -> None:
        check_dir(self.incoming, self.where)

    def path(self, key: str) -> Path:
        """The local file of ``key`` (this backend only: files are local here)."""
        return self.root / check_key(key)

    def temp(self) -> Path:
        """A fresh empty file in ``root/.incoming`` (same filesystem: renames are atomic)."""
        self.incoming.mkdir(parents=True, exist_ok=True)
        fd, raw = tempfile.mkstemp(dir=self.incoming, prefix="in-")
        os.close(fd)
        return Path(raw)

    def put(self, key: str, stream: BinaryIO) -> int:
        temp = self.temp()
        try:
            with temp.open("wb") as out:
                shutil.copyfileobj(stream, out, CHUNK)
            return self.put_file(key, temp)
        finally:
            temp.unlink(missing_ok=True)

    def put_file(self, key: str, path: Path) -> int:
        final = self.path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        size = path.stat().st_size
        if path.parent == self.incoming:
            os.replace(path, final)
        else:
            temp = self.temp()
            try:
                shutil.copyfile(path, temp)
                os.replace(temp, final)
            finally:
                temp.unlink(missing_ok=True)
        return size

    def open(self, key: str) -> BinaryIO:
        try:
            return self.path(key).open("rb")
        except (FileNotFoundError, IsADirectoryError):
            raise NotFound(f"no media file named {key!r}") from None

    def open_range(self, key: str, start: int, end: int) -> BinaryIO:
        fh = self.open(key)
        fh.seek(start)
        return io.BufferedReader(_Window(fh, end - start + 1), CHUNK)

    def size(self, key: str) -> int | None:
        path = self.path(key)
        return path.stat().st_size if path.is_file() else None

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def list(self, prefix: str = "") -> Iterator[tuple[str, int]]:
        for path in sorted(self.root.rglob("*")):
            key = path.relative_to(self.root).as_posix()
            if key.startswith(".") or not path.is_file() or not key.startswith(prefix):
                continue
            yield key, path.stat().st_size

    def fetch_url(self, key: str, expires_s: int) -> str | None:
        return None

    def presign_put(self, key: str, content_type: str, size: int,
                    expires_s: int) -> tuple[str, dict[str, str]] | None:
        return None

    def write_at(self, key: str, offset: int, stream: IO[bytes], limit: int) -> int:
        """Write ``stream`` into ``key`` from ``offset`` (a resumed upload), at most
        ``limit`` bytes; the bytes written. The file must be at least ``offset`` bytes
        long. A stream with more than ``limit`` bytes is :class:`Overrun`: what it wrote
        is dropped again (the file is ``offset`` bytes long)."""
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        written = 0
        with path.open("r+b" if path.exists() else "w+b") as out:
            # what lies past ``offset`` is dropped first: the file's length is always
            # what has arrived, even when this body breaks off
            out.truncate(offset)
            out.seek(offset)
            while written < limit and (chunk := stream.read(min(CHUNK, limit - written))):
                out.write(chunk)
                written += len(chunk)
            if written == limit and stream.read(1):
                # a body without a length (chunked) that goes on past the limit
                out.truncate(offset)
                raise Overrun(f"the body goes on past its {limit:,} bytes")
        return written


class Overrun(Exception):
    """A stream written with :meth:`FileBlobs.write_at` was longer than its limit."""


class _S3Reader(io.RawIOBase):
    """A seekable read-only view of an S3 object: reads stream one GET from the current
    position; a seek opens a new GET (a ranged one) on the next read."""

    def __init__(self, blobs: S3Blobs, key: str, size: int) -> None:
        self.blobs, self.key, self.length = blobs, key, size
        self.name = f"{blobs.where}/{key}"
        self.pos = 0
        self.body: Any = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self.pos, os.SEEK_END: self.length}[whence]
        target = max(0, base + offset)
        if target != self.pos:
            self._drop()
            self.pos = target
        return self.pos

    def readinto(self, buffer: Any) -> int:
        if self.pos >= self.length:
            return 0
        if self.body is None:
            self.body = self.blobs._get(self.key, f"bytes={self.pos}-")["Body"]
        data = self.body.read(len(buffer))
        memoryview(buffer)[:len(data)] = data
        self.pos += len(data)
        return len(data)

    def _drop(self) -> None:
        if self.body is not None:
            self.body.close()
            self.body = None

    def close(self) -> None:
        self._drop()
        super().close()


class S3Blobs:
    """Objects under ``s3://bucket/prefix``, through boto3."""

    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url: str | None = None,
                 region: str | None = None, access_key: str | None = None,
                 secret_key: str | None = None, client: Any = None) -> None:
        try:
            import boto3
            from botocore.config import Config
        except ImportError:
            raise ConfigurationError(
                "CHAT33_MEDIA_STORE names an S3 store, which needs boto3: "
                "pip install 'chat33-core[s3]'") from None

        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.where = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self.client = client or boto3.client(
            "s3", endpoint_url=endpoint_url or None, region_name=region or "us-east-1",
            # None: boto3's own chain (environment, profile, instance role)
            aws_access_key_id=access_key or None, aws_secret_access_key=secret_key or None,
            config=Config(signature_version="s3v4", retries={"mode": "standard"},
                          s3={"addressing_style": "path"}))
        from boto3.s3.transfer import TransferConfig
        # multipart uploads of 8 MB parts, two at a time: ~16 MB of buffers at most
        self.transfer = TransferConfig(multipart_chunksize=8 * CHUNK, max_concurrency=2,
                                       multipart_threshold=8 * CHUNK)

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def _missing(self, exc: Exception) -> bool:
        code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
        return code in {"404", "NoSuchKey", "NotFound"}

    def _get(self, key: str, range_: str | None = None) -> Any:
        from botocore.exceptions import ClientError

        kwargs = {"Range": range_} if range_ else {}
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key), **kwargs)
        except ClientError as exc:
            if self._missing(exc):
                raise NotFound(f"no media file named {key!r}") from None
            raise

    def check(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError) as exc:
            raise ConfigurationError(
                f"CHAT33_MEDIA_STORE {self.where} cannot keep media files: {exc}") from None

    def put(self, key: str, stream: BinaryIO) -> int:
        counted = _Counting(stream)
        self.client.upload_fileobj(counted, self.bucket, self._key(key), Config=self.transfer)
        return counted.count

    def put_file(self, key: str, path: Path) -> int:
        with path.open("rb") as fh:
            return self.put(key, fh)

    def open(self, key: str) -> BinaryIO:
        size = self.size(key)
        if size is None:
            raise NotFound(f"no media file named {key!r}")
        return io.BufferedReader(_S3Reader(self, key, size), CHUNK)

    def open_range(self, key: str, start: int, end: int) -> BinaryIO:
        body = self._get(key, f"bytes={start}-{end}")["Body"]
        return io.BufferedReader(_Window(body, end - start + 1), CHUNK)

    def size(self, key: str) -> int | None:
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if self._missing(exc):
                return None
            raise
        return int(head["ContentLength"])

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def list(self, prefix: str = "") -> Iterator[tuple[str, int]]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix + prefix)
        for page in pages:
            for item in page.get("Contents", []):
                yield item["Key"][len(self.prefix):], int(item["Size"])

    def fetch_url(self, key: str, expires_s: int) -> str | None:
        url: str = self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self._key(key)},
            ExpiresIn=min(expires_s, MAX_PRESIGN_S))
        return url

    def presign_put(self, key: str, content_type: str, size: int,
                    expires_s: int) -> tuple[str, dict[str, str]] | None:
        # Content-Length and Content-Type are signed headers: a PUT of another size or
        # type does not match the signature and is refused by the store
        url: str = self.client.generate_presigned_url(
            "put_object", Params={"Bucket": self.bucket, "Key": self._key(key),
                                  "ContentType": content_type, "ContentLength": size},
            ExpiresIn=min(expires_s, MAX_PRESIGN_S))
        return url, {"Content-Type": content_type, "Content-Length": str(size)}


class _Counting(io.RawIOBase):
    """Counts the bytes read through it."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream, self.count = stream, 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.count += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        memoryview(buffer)[:len(data)] = data
        return len(data)


def blobs_from_settings(media_dir: Path, store_url: str | None,
                        env: dict[str, str] | Any) -> FileBlobs | S3Blobs:
    """The backend ``CHAT33_MEDIA_STORE`` names: unset, the folder; ``s3://bucket/prefix``."""
    if not store_url:
        return FileBlobs(media_dir)
    parts = urlsplit(store_url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ConfigurationError(
            f"CHAT33_MEDIA_STORE {store_url!r} is not a store chat33 knows: leave it unset "
            "for the folder CHAT33_MEDIA_DIR, or give s3://bucket/prefix")
    return S3Blobs(parts.netloc, parts.path, endpoint_url=env.get("CHAT33_S3_ENDPOINT_URL"),
                   region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"),
                   access_key=env.get("AWS_ACCESS_KEY_ID"),
                   secret_key=env.get("AWS_SECRET_ACCESS_KEY"))
