"""The media store: streaming saves, content-addressed names, URL ingestion."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chat33_core.config import Settings
from chat33_core.errors import NotFound
from chat33_core.fetch import BlockedAddress, GuardedClient
from chat33_core.media import IMAGE, MediaError, MediaInfo
from chat33_core.mediastore import (
    MediaIngestor,
    MediaStore,
    check_size,
    ingest_url,
    store_file,
)
from chat33_core.models import MediaAsset
from chat33_core.sandbox import serve
from chat33_core.serialization import media_info_of
from chat33_core.testing import make_image, make_video

BASE = "http://media.chat33.test:8000"


@pytest.fixture
def store(tmp_path: Path) -> MediaStore:
    return MediaStore(tmp_path / "media", BASE)


def stored_names(store: MediaStore) -> list[str]:
    return sorted(p.name for p in store.root.iterdir() if p.is_file())


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("served")
    make_image(root / "photo.jpg", 640, 480)
    make_video(root / "clip.mp4", seconds=0.3)
    (root / "page.jpg").write_text("<!DOCTYPE html><html>Not found</html>")
    return root


class Counting:
    """Serves ``root`` and counts requests (to prove what was fetched once)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.hits: list[str] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        from werkzeug.utils import send_from_directory
        from werkzeug.wrappers import Request

        request = Request(environ)
        self.hits.append(request.path)
        response = send_from_directory(self.root, request.path.lstrip("/"), environ)
        response.headers["Content-Type"] = "image/jpeg"  # a lying server: bytes decide
        return response(environ, start_response)


@pytest.fixture(scope="module")
def _server(files: Path) -> Iterator[tuple[str, Counting]]:
    app = Counting(files)
    with serve(app) as url:
        yield url, app


@pytest.fixture
def server(_server: tuple[str, Counting]) -> tuple[str, Counting]:
    _server[1].hits.clear()
    return _server


def test_upload_stream_becomes_a_media_asset(store: MediaStore, tmp_path: Path) -> None:
    data = make_image(tmp_path / "a.jpg", 300, 200).read_bytes()
    asset = store_file(store, io.BytesIO(data), org_id="org_1")
    sha = hashlib.sha256(data).hexdigest()
    assert isinstance(asset, MediaAsset)
    assert (asset.name, asset.sha256, asset.size) == (f"{sha}.jpg", sha, len(data))
    assert (asset.kind, asset.content_type, asset.org_id) == (IMAGE, "image/jpeg", "org_1")
    assert asset.url == f"{BASE}/media/{sha}.jpg"
    assert asset.path == store.where(asset.name) == str(store.root / asset.name)
    assert store.local_file(asset.name).read_bytes() == data
    assert media_info_of(asset.info).width == 300


def test_extension_comes_from_the_bytes(store: MediaStore, tmp_path: Path) -> None:
    clip = make_video(tmp_path / "v.mp4", seconds=0.2).rename(tmp_path / "v.jpg")
    asset = store_file(store, clip, org_id="o")
    assert asset.name.endswith(".mp4") and asset.kind == "video"
    assert asset.content_type == "video/mp4"


def test_the_same_bytes_are_stored_once(store: MediaStore, tmp_path: Path) -> None:
    path = make_image(tmp_path / "a.png", 20, 20, fmt="PNG")
    first = store_file(store, path, org_id="o1")
    second = store_file(store, io.BytesIO(path.read_bytes()), org_id="o2")
    assert first.name == second.name and first.id != second.id
    assert stored_names(store) == [first.name]


def test_bad_media_leaves_nothing_behind(store: MediaStore) -> None:
    with pytest.raises(MediaError, match="starts with text"):
        store_file(store, io.BytesIO(b"just some text, not a picture"), org_id="o")
    with pytest.raises(MediaError, match="over the 1 MB limit"):
        store_file(store, io.BytesIO(b"\xff" * (3 * 1024 * 1024)), org_id="o",
                   max_bytes=1024 * 1024)
    assert stored_names(store) == [] and list(store.incoming.iterdir()) == []


def test_size_limits_follow_the_inspected_kind() -> None:
    big = 11 * 1024 * 1024
    with pytest.raises(MediaError, match=r"image is 11\.0 MB, over the 10 MB limit"):
        check_size(MediaInfo(kind="image", format="JPEG", mime_type="image/jpeg", size=big))
    check_size(MediaInfo(kind="video", format="MPEG-4", mime_type="video/mp4", size=big))


@pytest.mark.parametrize("name", ["../../etc/passwd", "a.jpg", "x" * 64 + ".jpg",
                                  "0" * 64 + ".jpg/..", ""])
def test_check_name_refuses_anything_but_store_names(store: MediaStore, name: str) -> None:
    with pytest.raises(NotFound):
        store.check_name(name)


def test_our_own_urls_map_back_to_names(store: MediaStore) -> None:
    name = "ab" * 32 + ".mp4"
    assert store.name_for_url(store.url_for(name)) == name
    assert store.name_for_url(f"http://elsewhere.test/media/{name}") is None
    assert store.name_for_url(f"{BASE}/other/{name}") is None
    assert store.name_for_url(f"{BASE}/media/../secret") is None


def test_ingest_url_downloads_once_and_keeps_the_source(
        store: MediaStore, server: tuple[str, Counting]) -> None:
    url, app = server
    with GuardedClient(Settings(allow_private_urls=True)) as client:
        asset = ingest_url(store, client, f"{url}/clip.mp4", org_id="o")
    assert asset.kind == "video" and asset.content_type == "video/mp4"
    assert asset.source_url == f"{url}/clip.mp4" and app.hits == ["/clip.mp4"]
    assert stored_names(store) == [asset.name]


def test_ingest_url_names_what_the_url_really_served(
        store: MediaStore, server: tuple[str, Counting]) -> None:
    url, _ = server
    with GuardedClient(Settings(allow_private_urls=True)) as client, \
            pytest.raises(MediaError, match="HTML page") as info:
        ingest_url(store, client, f"{url}/page.jpg", org_id="o", path="mediaUrls[0]")
    assert info.value.details[0].path == "mediaUrls[0]"
    assert stored_names(store) == []


def test_ingest_url_is_guarded(store: MediaStore, server: tuple[str, Counting]) -> None:
    url, app = server
    with GuardedClient(Settings()) as client, pytest.raises(BlockedAddress):
        ingest_url(store, client, f"{url}/photo.jpg", org_id="o", path="mediaUrls[0]")
    assert app.hits == []


def test_ingestor_fetches_each_url_once_and_keeps_the_assets(
        store: MediaStore, server: tuple[str, Counting]) -> None:
    url, app = server
    with GuardedClient(Settings(allow_private_urls=True)) as client:
        ingestor = MediaIngestor(store, client, org_id="o")
        first = ingestor(f"{url}/photo.jpg")
        assert ingestor(f"{url}/photo.jpg") == first
    assert (first.width, first.height) == (640, 480)
    assert app.hits == ["/photo.jpg"]
    assert list(ingestor.assets) == [f"{url}/photo.jpg"]


def test_ingestor_reads_our_own_urls_from_disk(store: MediaStore, tmp_path: Path) -> None:
    asset = store_file(store, make_image(tmp_path / "a.jpg", 50, 50), org_id="o")
    # the public base points nowhere: a fetch would fail, the disk read does not
    with GuardedClient(Settings()) as client:
        info = MediaIngestor(store, client, org_id="o")(asset.url)
    assert info.width == 50


def test_ingestor_dry_run_keeps_nothing(store: MediaStore,
                                        server: tuple[str, Counting]) -> None:
    url, _ = server
    with GuardedClient(Settings(allow_private_urls=True)) as client:
        ingestor = MediaIngestor(store, client, org_id="o", keep=False)
        assert ingestor(f"{url}/clip.mp4").is_video
    assert stored_names(store) == [] and list(store.incoming.iterdir()) == []


def test_ingestor_uses_assets_the_service_knows(store: MediaStore) -> None:
    known = MediaAsset(id="media_1", org_id="o", name="n", path="/x", url="https://cdn.test/a",
                       kind="image", content_type="image/png", size=3, sha256="s",
                       info={"kind": "image", "format": "PNG", "mime_type": "image/png",
                             "size": 3, "width": 1, "height": 1})
    with GuardedClient(Settings()) as client:
        ingestor = MediaIngestor(store, client, org_id="o",
                                 known=lambda u: known if u == known.url else None)
        assert ingestor(known.url).format == "PNG"
