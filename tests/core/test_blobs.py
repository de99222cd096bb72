"""The media storage interface, the same suite on both backends: the folder and an S3
server (moto's, run as a process)."""

from __future__ import annotations

import hashlib
import io
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from chat33_core.blobs import Blobs, FileBlobs, S3Blobs, blobs_from_settings
from chat33_core.errors import ConfigurationError, NotFound
from chat33_core.mediastore import MediaStore, describe_stored, store_file
from chat33_core.testing import make_image, make_video
from tests.s3server import S3_ENV

BASE = "http://media.chat33.test:8000"


def make_bucket(endpoint: str) -> str:
    import boto3

    bucket = "t-" + secrets.token_hex(6)
    boto3.client("s3", endpoint_url=endpoint, region_name=S3_ENV["AWS_REGION"],
                 aws_access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
                 aws_secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"]
                 ).create_bucket(Bucket=bucket)
    return bucket


def s3_blobs(endpoint: str, bucket: str, prefix: str = "media") -> S3Blobs:
    return S3Blobs(bucket, prefix, endpoint_url=endpoint, region=S3_ENV["AWS_REGION"],
                   access_key=S3_ENV["AWS_ACCESS_KEY_ID"],
                   secret_key=S3_ENV["AWS_SECRET_ACCESS_KEY"])


@pytest.fixture(params=["folder", "s3"])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Blobs]:
    if request.param == "folder":
        yield FileBlobs(tmp_path / "blobs")
    else:
        endpoint = request.getfixturevalue("s3_endpoint")
        yield s3_blobs(endpoint, make_bucket(endpoint))


@pytest.fixture
def store(blobs: Blobs, tmp_path: Path) -> MediaStore:
    root = blobs.root if isinstance(blobs, FileBlobs) else tmp_path / "scratch"
    return MediaStore(root, BASE, blobs=blobs)


def random_bytes(size: int) -> bytes:
    return os.urandom(size)


def test_put_then_open_streams_the_same_bytes(blobs: Blobs) -> None:
    blobs.check()
    data = random_bytes(20 * 1024 * 1024 + 123)  # over the 8 MB multipart part size
    assert blobs.put("a/b.bin", io.BytesIO(data)) == len(data)
    assert blobs.size("a/b.bin") == len(data)
    digest = hashlib.sha256()
    with blobs.open("a/b.bin") as fh:
        while chunk := fh.read(1024 * 1024):
            digest.update(chunk)
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()


def test_open_is_seekable(blobs: Blobs) -> None:
    data = random_bytes(300_000)
    blobs.put("x.bin", io.BytesIO(data))
    with blobs.open("x.bin") as fh:
        assert fh.seekable()
        assert fh.seek(0, os.SEEK_END) == len(data)
        fh.seek(1000)
        assert fh.read(10) == data[1000:1010]
        fh.seek(-5, os.SEEK_END)
        assert fh.read() == data[-5:]
        fh.seek(0)
        assert fh.read(3) == data[:3]


def test_open_range_gives_exactly_those_bytes(blobs: Blobs) -> None:
    data = random_bytes(100_000)
    blobs.put("r.bin", io.BytesIO(data))
    with blobs.open_range("r.bin", 10, 19) as fh:
        assert fh.read() == data[10:20]
    with blobs.open_range("r.bin", 99_990, 99_999) as fh:
        assert fh.read() == data[-10:]


def test_put_file_and_replace(blobs: Blobs, tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(b"first")
    assert blobs.put_file("f.bin", src) == 5
    assert src.exists()  # a file outside the store is copied, not moved
    blobs.put("f.bin", io.BytesIO(b"second!"))
    with blobs.open("f.bin") as fh:
        assert fh.read() == b"second!"


def test_missing_objects(blobs: Blobs) -> None:
    assert blobs.size("nothing.bin") is None
    with pytest.raises(NotFound):
        blobs.open("nothing.bin")
    blobs.delete("nothing.bin")  # already gone: no error


def test_delete(blobs: Blobs) -> None:
    blobs.put("d.bin", io.BytesIO(b"x"))
    blobs.delete("d.bin")
    assert blobs.size("d.bin") is None


def test_list_by_prefix(blobs: Blobs) -> None:
    for key in ("p/one.bin", "p/two.bin", "q/three.bin"):
        blobs.put(key, io.BytesIO(key.encode()))
    assert sorted(blobs.list("p/")) == [("p/one.bin", 9), ("p/two.bin", 9)]
    assert [k for k, _ in blobs.list()] == sorted(["p/one.bin", "p/two.bin", "q/three.bin"])


@pytest.mark.parametrize("key", ["../x", "/etc/passwd", "a/../../b", "", "a//b", ".hidden"])
def test_keys_cannot_leave_the_store(blobs: Blobs, key: str) -> None:
    with pytest.raises(NotFound):
        blobs.put(key, io.BytesIO(b"x"))
    with pytest.raises(NotFound):
        blobs.open(key)


def test_fetch_url(blobs: Blobs) -> None:
    blobs.put("u.bin", io.BytesIO(b"hello"))
    url = blobs.fetch_url("u.bin", 600)
    if isinstance(blobs, FileBlobs):
        assert url is None  # the API's /media route serves the folder
    else:
        assert url is not None
        assert httpx.get(url).content == b"hello"


def test_presign_put(blobs: Blobs) -> None:
    signed = blobs.presign_put("up.bin", "video/mp4", 5, 600)
    if isinstance(blobs, FileBlobs):
        assert signed is None  # the API takes the PUT itself
        return
    assert signed is not None
    url, headers = signed
    assert headers == {"Content-Type": "video/mp4", "Content-Length": "5"}
    assert httpx.put(url, content=b"12345", headers=headers).status_code == 200
    assert blobs.size("up.bin") == 5


# --- the media store over each backend ----------------------------------------------------

def test_store_file_inspect_and_read_back(store: MediaStore, tmp_path: Path) -> None:
    video = make_video(tmp_path / "clip.mp4", seconds=0.3)
    asset = store_file(store, video, org_id="o")
    assert store.exists(asset.name)
    assert store.local_file(asset.name).read_bytes() == video.read_bytes()
    again = describe_stored(store, asset.name, org_id="o")
    assert again.info == asset.info and again.sha256 == asset.sha256
    assert list(store.incoming.iterdir()) == []


def test_fetch_url_of_the_store(store: MediaStore, tmp_path: Path) -> None:
    asset = store_file(store, make_image(tmp_path / "a.png", 10, 10, fmt="PNG"), org_id="o")
    url = store.fetch_url(asset.name)
    if store.local:
        assert url == asset.url
    else:
        assert httpx.get(url).content == (tmp_path / "a.png").read_bytes()


def test_local_copies_are_trimmed(store: MediaStore, tmp_path: Path) -> None:
    asset = store_file(store, make_image(tmp_path / "a.png", 10, 10, fmt="PNG"), org_id="o")
    path = store.local_file(asset.name)
    if store.local:
        assert path == store.root / asset.name
        return
    assert path.parent == store.cache
    assert store.trim_cache(3600) == 0
    os.utime(path, (0, 0))
    assert store.trim_cache(3600) == 1 and not path.exists()
    assert store.local_file(asset.name).exists()  # fetched again when needed
    store.delete(asset.name)
    assert not store.exists(asset.name) and not (store.cache / asset.name).exists()


# --- configuration --------------------------------------------------------------------------

def test_the_setting_picks_the_backend(tmp_path: Path, s3_endpoint: str) -> None:
    assert isinstance(blobs_from_settings(tmp_path, None, {}), FileBlobs)
    bucket = make_bucket(s3_endpoint)
    picked = blobs_from_settings(tmp_path, f"s3://{bucket}/some/prefix",
                                 {**S3_ENV, "CHAT33_S3_ENDPOINT_URL": s3_endpoint})
    assert isinstance(picked, S3Blobs)
    assert (picked.bucket, picked.prefix) == (bucket, "some/prefix/")
    picked.check()
    picked.put("k.bin", io.BytesIO(b"abc"))
    assert [k for k, _ in picked.list()] == ["k.bin"]


@pytest.mark.parametrize("value", ["ftp://bucket/x", "s3://", "/srv/media"])
def test_unknown_stores_are_refused(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigurationError, match="CHAT33_MEDIA_STORE"):
        blobs_from_settings(tmp_path, value, {})


def test_a_missing_bucket_is_a_configuration_error(s3_endpoint: str) -> None:
    with pytest.raises(ConfigurationError, match="s3://no-such-bucket"):
        s3_blobs(s3_endpoint, "no-such-bucket").check()


def test_a_store_that_cannot_be_reached_is_transient(tmp_path: Path) -> None:
    """A worker whose object store is down retries the publish later."""
    from chat33_core.errors import TransientError
    from tests.s3server import free_port

    down = s3_blobs(f"http://127.0.0.1:{free_port()}", "some-bucket")
    store = MediaStore(tmp_path / "scratch", BASE, blobs=down)
    store.incoming.mkdir(parents=True)
    store._checked = True  # as a worker that started while the store answered
    with pytest.raises(TransientError, match="could not be read from s3://some-bucket"):
        store.local_file("ab" * 32 + ".jpg")
