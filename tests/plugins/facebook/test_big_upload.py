"""A 300 MB video streams from disk: memory stays flat while it uploads."""

from __future__ import annotations

import hashlib
import tracemalloc
from pathlib import Path

import pytest

from chat33_core.media import VIDEO, MediaInfo
from chat33_core.models import MediaType
from chat33_core.platforms import MediaFile
from chat33_core.testing import make_sparse_file

from .conftest import FB

SIZE = 300 * 1024 * 1024
MP4_HEAD = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"


def file_sha(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(8 * 1024 * 1024):
            digest.update(block)
    return digest.hexdigest()


@pytest.mark.slow
def test_300_mb_video_upload_keeps_memory_flat(fb: FB, tmp_path: Path) -> None:
    path = make_sparse_file(tmp_path / "big.mp4", SIZE, head=MP4_HEAD)
    info = MediaInfo(kind=VIDEO, format="MPEG-4", mime_type="video/mp4", size=SIZE,
                     width=1280, height=720, duration_s=600.0, frame_rate=30.0,
                     video_codec="h264")
    media = MediaFile(path=path, info=info, url=f"{fb.media_url}/big.mp4", name="big.mp4")
    fb.configure(interruptions=[100 * 1024 * 1024])  # and resume once, mid-file
    tracemalloc.start()
    try:
        receipt = fb.platform.publish(fb.ctx("Big video", media=[media],
                                             media_type=MediaType.VIDEO)).first
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # client and sandbox share this process: both hold only a few blocks at a time
    print(f"tracemalloc peak {peak / 1024**2:.1f} MB")
    assert peak < 48 * 1024 * 1024, f"peak {peak / 1024**2:.1f} MB while uploading 300 MB"
    [upload] = fb.state()["uploads"]
    assert upload["complete"] and upload["file_length"] == SIZE
    assert upload["sha256"] == file_sha(path)
    assert fb.state()["videos"][0]["id"] == receipt.external_id
