"""Media files on disk: uploads and ingested URLs, kept until publish time.

A scheduled post keeps its media even when the URL it came from expires: every media
URL is fetched once (through the guarded client), inspected, and stored here under a
content-addressed name (``<sha256>.<ext>``, the extension from the inspected format),
served back to the platforms at :meth:`MediaStore.url_for`.

* :class:`MediaStore` — the directory: streaming saves, names, paths and URLs;
* :func:`store_file` — an upload stream or local file -> :class:`~chat33_core.models.MediaAsset`;
* :func:`ingest_url` — a URL -> MediaAsset, through :class:`~chat33_core.fetch.GuardedClient`;
* :class:`MediaIngestor` — the ``inspect_url`` callable of the validation engine, which
  also keeps the assets it made for the service to attach to the posts.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, BinaryIO
from urllib.parse import urlsplit

import attrs
from attrs import frozen

from .blobs import CHUNK, Blobs, FileBlobs, blobs_from_settings, check_dir
from .config import Settings
from .errors import ConfigurationError, NotFound, TransientError
from .fetch import MAX_IMAGE_BYTES, MAX_VIDEO_BYTES, FetchError, GuardedClient, size_text
from .media import MediaError, MediaInfo, inspect
from .models import MediaAsset, new_id
from .serialization import media_info_json, media_info_of

#: store names: ``<sha256>.<ext>`` (content-addressed), or ``<mediaId>.<ext>`` for a
#: direct upload (named when presigned, before its bytes could be hashed)
_NAME = re.compile(r"(?:[0-9a-f]{64}|media_[0-9a-f]{32})\.[a-z0-9]{2,5}")
#: how long a pre-signed GET handed to a platform lives (platforms may take hours to
#: pull and process a large video; 7 days is the most SigV4 allows)
FETCH_URL_TTL_S = 7 * 24 * 3600
EXTENSIONS = {
    "JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp", "BMP": "bmp", "TIFF": "tif",
    "MPEG-4": "mp4", "QuickTime": "mov", "WebM": "webm", "Matroska": "mkv", "AVI": "avi",
    "3GPP": "3gp", "MPEG-TS": "ts",
}


@frozen
class StoredFile:
    """A file in the store: its name, where it is, and what its bytes hash to."""

    name: str
    where: str
    size: int
    sha256: str


class MediaStore:
    """Media files in a :class:`~chat33_core.blobs.Blobs` backend (by default the folder
    ``root``), served at ``<public_base_url><url_prefix>/<name>``.

    ``root`` is also this machine's scratch space: uploads and downloads are written to
    ``root/.incoming`` and inspected there before they are put in the backend (on the
    folder backend that is a rename), and a worker keeps local copies of media in an
    object store under ``root/.cache`` while it publishes.
    """

    def __init__(self, root: str | os.PathLike[str], public_base_url: str,
                 url_prefix: str = "/media", blobs: Blobs | None = None) -> None:
        self.root = Path(root)
        self.public_base_url = public_base_url.rstrip("/")
        self.url_prefix = "/" + url_prefix.strip("/") if url_prefix.strip("/") else ""
        self.incoming = self.root / ".incoming"
        self.cache = self.root / ".cache"
        self.blobs: Blobs = blobs if blobs is not None else FileBlobs(self.root)
        self._checked = False

    @classmethod
    def from_settings(cls, settings: Settings) -> MediaStore:
        return cls(settings.media_dir, settings.media_base_url,
                   blobs=blobs_from_settings(settings.media_dir, settings.media_store,
                                             settings.env))

    @property
    def local(self) -> bool:
        """Whether the files are local (the folder backend)."""
        return isinstance(self.blobs, FileBlobs)

    def check(self) -> None:
        """Make sure files can be kept here: the scratch directory exists (it is created
        if need be) and takes a file, and the backend answers. Raises
        :class:`ConfigurationError` naming the setting otherwise; ``chat33 serve`` and
        ``/readyz`` call it."""
        check_dir(self.incoming, f"CHAT33_MEDIA_DIR {str(self.root)!r}")
        self.blobs.check()
        self._checked = True

    # --- names ------------------------------------------------------------------------

    def check_name(self, name: str) -> str:
        """``name`` when it is a store name; NotFound for anything else (no path tricks
        reach outside the store)."""
        if not _NAME.fullmatch(name):
            raise NotFound(f"no media file named {name!r}")
        return name

    def url_for(self, name: str) -> str:
        self.check_name(name)
        return f"{self.public_base_url}{self.url_prefix}/{name}"

    def fetch_url(self, name: str, expires_s: int = FETCH_URL_TTL_S) -> str:
        """A URL a platform can pull ``name`` from: a pre-signed GET of the object store
        valid ``expires_s`` seconds, or our own media route."""
        return self.blobs.fetch_url(self.check_name(name), expires_s) or self.url_for(name)

    def name_for_url(self, url: str) -> str | None:
        """The store name when ``url`` is one of ours (:meth:`url_for`), else None."""
        base = urlsplit(f"{self.public_base_url}{self.url_prefix}/")
        parts = urlsplit(url)
        if (parts.scheme, parts.netloc.lower()) != (base.scheme, base.netloc.lower()):
            return None
        if not parts.path.startswith(base.path):
            return None
        name = parts.path[len(base.path):]
        return name if _NAME.fullmatch(name) else None

    def exists(self, name: str) -> bool:
        return self.blobs.size(self.check_name(name)) is not None

    def delete(self, name: str) -> None:
        self.blobs.delete(self.check_name(name))
        (self.cache / name).unlink(missing_ok=True)

    def open(self, name: str) -> BinaryIO:
        """A seekable stream of the file; NotFound when it is missing."""
        return self.blobs.open(self.check_name(name))

    def digest(self, name: str) -> str:
        """The sha256 of the file, streamed from the store a chunk at a time."""
        with self.open(name) as fh:
            return _hash_stream(fh)

    def local_file(self, name: str) -> Path:
        """A local path of the file, for code that reads files (the platform plugins):
        the file itself on the folder backend; else a copy in ``root/.cache``, streamed
        from the store once and reused until :meth:`delete` or :meth:`trim_cache`.
        A store that cannot be read is a :class:`TransientError` (the publish retries)."""
        self.check_name(name)
        if isinstance(self.blobs, FileBlobs):
            path = self.blobs.path(name)
            if not path.is_file():
                raise NotFound(f"no media file named {name!r}")
            return path
        copy = self.cache / name
        if copy.is_file():
            os.utime(copy)
            return copy
        self.cache.mkdir(parents=True, exist_ok=True)
        try:
            with self.incoming_file() as temp, self.blobs.open(name) as src:
                with temp.open("wb") as out:
                    shutil.copyfileobj(src, out, CHUNK)
                os.replace(temp, copy)
        except (NotFound, ConfigurationError):
            raise
        except Exception as exc:  # the store or the network failed: a publish retries
            raise TransientError(f"media {name} could not be read from {self.blobs.where}: "
                                 f"{type(exc).__name__}: {exc}"[:500]) from None
        return copy

    def trim_cache(self, older_than_s: float) -> int:
        """Remove local copies not used for ``older_than_s`` seconds; how many."""
        if not self.cache.is_dir():
            return 0
        cutoff = time.time() - older_than_s
        removed = 0
        for path in self.cache.iterdir():
            if path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    # --- writing ----------------------------------------------------------------------

    @contextmanager
    def incoming_file(self) -> Iterator[Path]:
        """A fresh temporary path in the scratch directory (on the folder backend, the
        same filesystem as the files: renames are atomic); removed on exit unless it
        was moved into place."""
        if not self._checked:
            self.check()
        self.incoming.mkdir(parents=True, exist_ok=True)
        fd, raw = tempfile.mkstemp(dir=self.incoming, prefix="in-")
        os.close(fd)
        path = Path(raw)
        try:
            yield path
        finally:
            path.unlink(missing_ok=True)

    def write_stream(self, stream: IO[bytes], dest: Path,
                     max_bytes: int | None = None) -> tuple[int, str]:
        """Copy ``stream`` to ``dest`` in chunks, hashing as it goes; refuse more than
        ``max_bytes``. Returns ``(size, sha256)``."""
        digest = hashlib.sha256()
        size = 0
        with dest.open("wb") as out:
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise MediaError(f"the file is over the {max_bytes / 1024 / 1024:.0f} MB "
                                     "limit")
                digest.update(chunk)
                out.write(chunk)
        return size, digest.hexdigest()

    def adopt(self, temp: Path, extension: str, sha256: str | None = None) -> StoredFile:
        """Put ``temp`` (inside ``root/.incoming``) in the backend under its
        content-addressed name. The same bytes stored twice are one file."""
        size = temp.stat().st_size
        if sha256 is None:
            sha256 = _hash_file(temp)
        name = f"{sha256}.{extension}"
        if self.blobs.size(name) != size:
            self.blobs.put_file(name, temp)
        return StoredFile(name=name, where=self.where(name), size=size, sha256=sha256)

    def where(self, name: str) -> str:
        """Where the file is, for people: a local path or an object URL."""
        if isinstance(self.blobs, FileBlobs):
            return str(self.blobs.path(name))
        return f"{self.blobs.where}/{name}"


def _hash_file(path: Path) -> str:
    with path.open("rb") as fh:
        return _hash_stream(fh)


def _hash_stream(fh: IO[bytes]) -> str:
    """The sha256 of what ``fh`` reads, a chunk at a time."""
    digest = hashlib.sha256()
    while chunk := fh.read(CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def check_size(info: MediaInfo, *, max_image_bytes: int = MAX_IMAGE_BYTES,
               max_video_bytes: int = MAX_VIDEO_BYTES) -> None:
    """The API's limits by inspected kind: images 10 MB, videos 100 MB."""
    limit = max_video_bytes if info.is_video else max_image_bytes
    if info.size > limit:
        what = "video" if info.is_video else "image"
        raise MediaError(f"the {what} is {info.size / 1024 / 1024:.1f} MB, over the "
                         f"{limit / 1024 / 1024:.0f} MB limit for {what}s")


def _asset(store: MediaStore, stored: StoredFile, info: MediaInfo, *, org_id: str,
           source_url: str | None) -> MediaAsset:
    return MediaAsset(
        id=new_id("media"), org_id=org_id, name=stored.name, path=stored.where,
        url=store.url_for(stored.name), kind="video" if info.is_video else "image",
        content_type=info.mime_type, size=stored.size, sha256=stored.sha256,
        source_url=source_url, info=media_info_json(info),
    )


def _keep(store: MediaStore, temp: Path, *, org_id: str, source_url: str | None,
          sha256: str | None) -> MediaAsset:
    info = inspect(temp)  # raises MediaError naming what the bytes are
    check_size(info)
    stored = store.adopt(temp, EXTENSIONS.get(info.format, "bin"), sha256)
    return _asset(store, stored, info, org_id=org_id, source_url=source_url)


def store_file(store: MediaStore, source: IO[bytes] | str | os.PathLike[str], *, org_id: str,
               source_url: str | None = None,
               max_bytes: int | None = MAX_VIDEO_BYTES) -> MediaAsset:
    """Store an upload stream (or copy a local file), inspect it, and describe it.

    The bytes are hashed and counted while streaming; media that is not an image or
    video, or is over its kind's size limit, raises :class:`MediaError` and leaves
    nothing behind.
    """
    with store.incoming_file() as temp:
        if isinstance(source, str | os.PathLike):
            with open(source, "rb") as fh:
                _, sha256 = store.write_stream(fh, temp, max_bytes)
        else:
            _, sha256 = store.write_stream(source, temp, max_bytes)
        return _keep(store, temp, org_id=org_id, source_url=source_url, sha256=sha256)


def ingest_url(store: MediaStore, client: GuardedClient, url: str, *, org_id: str,
               path: str | None = None, max_bytes: int = MAX_VIDEO_BYTES) -> MediaAsset:
    """Download ``url`` once through the guarded client and keep it in the store.

    Errors (a refused address, an HTTP error, too large, not media) are
    ``ValidationError`` subclasses; with ``path`` they carry it as their issue path.
    """
    with store.incoming_file() as temp:
        client.download(url, temp, max_bytes, path=path)
        try:
            return _keep(store, temp, org_id=org_id, source_url=url, sha256=None)
        except MediaError as exc:
            raise MediaError(exc.message, path=path) from None


def describe_stored(store: MediaStore, name: str, *, org_id: str) -> MediaAsset:
    """A MediaAsset for a file already in the store (one of our own media URLs)."""
    with store.open(name) as fh:
        info = inspect(fh)
    sha256 = name.split(".")[0] if not name.startswith("media_") else store.digest(name)
    stored = StoredFile(name=name, where=store.where(name), size=info.size, sha256=sha256)
    return _asset(store, stored, info, org_id=org_id, source_url=None)


@attrs.define
class MediaIngestor:
    """``inspect_url`` for :func:`chat33_core.validation.validate_request`.

    Each URL is resolved once: an asset the service already knows (``known``), a file
    of this store (our own media URLs are never fetched), or a guarded download. The
    assets made are kept in :attr:`assets` (by URL) for the service to attach to the
    posts. With ``keep=False`` (the dry run) downloads are inspected and then removed.

    The downloads of one ingestor (one request) share one deadline (the client's
    ``total_timeout`` from the first of them) and ``byte_budget`` bytes in all;
    ``before_fetch(url)`` is called before each one and may raise to refuse it.
    """

    store: MediaStore
    client: GuardedClient
    org_id: str
    known: Callable[[str], MediaAsset | None] | None = None
    keep: bool = True
    byte_budget: int = MAX_VIDEO_BYTES
    before_fetch: Callable[[str], None] | None = None
    assets: dict[str, MediaAsset] = attrs.Factory(dict)
    #: the URLs of :attr:`assets` that ``known`` gave (their rows exist already)
    known_urls: set[str] = attrs.Factory(set)
    #: bytes downloaded so far
    fetched: int = 0
    deadline: float | None = None

    def __call__(self, url: str) -> MediaInfo:
        asset = self.assets.get(url)
        if asset is None:
            asset = self._resolve(url)
            self.assets[url] = asset
        return media_info_of(asset.info)

    def _resolve(self, url: str) -> MediaAsset:
        if self.known is not None:
            found = self.known(url)
            if found is not None:
                self.known_urls.add(url)
                return found
        name = self.store.name_for_url(url)
        if name is not None and self.store.exists(name):
            return describe_stored(self.store, name, org_id=self.org_id)
        left = self.byte_budget - self.fetched
        if left <= 0:
            raise FetchError(f"{url} was not fetched: this request has fetched "
                             f"{size_text(self.fetched)} already, all that one request may fetch",
                             reason="too_large")
        if self.before_fetch is not None:
            self.before_fetch(url)
        if self.deadline is None:
            self.deadline = self.client.deadline()
        cap = min(MAX_VIDEO_BYTES, left)
        with self.store.incoming_file() as temp:
            try:
                _, size = self.client.download(url, temp, cap, deadline=self.deadline)
            except FetchError as exc:
                self.fetched += exc.received  # a failed download used the budget too
                if exc.reason == "too_large" and cap < MAX_VIDEO_BYTES:
                    raise FetchError(f"{url} is more than the {size_text(left)} left of the "
                                     f"{size_text(self.byte_budget)} one request may fetch",
                                     reason="too_large") from None
                raise
            self.fetched += size
            if self.keep:
                return _keep(self.store, temp, org_id=self.org_id, source_url=url,
                             sha256=None)
            info = inspect(temp)
            check_size(info)
        return MediaAsset(
            id=new_id("media"), org_id=self.org_id, name="", path="", url=url,
            kind="video" if info.is_video else "image", content_type=info.mime_type,
            size=info.size, sha256="", source_url=url, info=media_info_json(info),
        )
