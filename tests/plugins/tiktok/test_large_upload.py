"""A 200 MB upload streams from disk: memory stays flat (no timing is asserted)."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from chat33_core.platforms import MediaFile, PublishContext
from chat33_core.testing import make_sparse_file

from .conftest import MB, TT

SIZE = 200 * MB


def peak_of(tt: TT, ctx: PublishContext) -> int:
    tracemalloc.start()
    try:
        tt.platform.publish(ctx)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.slow
def test_200_mb_upload_keeps_memory_flat(tt: TT, tmp_path: Path) -> None:
    # sparse: the sandbox checks and hashes bytes but never parses the video
    path = make_sparse_file(tmp_path / "huge.mp4", SIZE,
                            head=(tt.media_dir / "clip.mp4").read_bytes())
    small = tt.media("clip.mp4")
    huge = [MediaFile(path=path, info=small[0].info, url=f"{tt.media_url}/huge.mp4")]
    # the same process serves the sandbox, whose werkzeug server allocates a 10 MB drain
    # buffer per request: compare with a tiny publish rather than with zero
    baseline = peak_of(tt, tt.ctx(small))
    peak = peak_of(tt, tt.ctx(huge))
    publishes = tt.state()["publishes"]
    big = next(p for p in publishes.values() if p["videoSize"] == SIZE)
    assert big["uploadedBytes"] == SIZE and big["chunksReceived"] == SIZE // (16 * MB)
    assert peak - baseline < 4 * MB, f"peak {peak / MB:.1f} MB vs {baseline / MB:.1f} MB"
    assert peak < 16 * MB  # less than the one 16 MB chunk it would hold if it buffered
