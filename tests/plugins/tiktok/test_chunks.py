"""TikTok's chunk arithmetic, property-tested from 1 byte to 4 GB (no file needed)."""

from __future__ import annotations

import itertools

import pytest
from chat33_tiktok.chunks import (
    MAX_VIDEO_BYTES,
    ChunkPlan,
    plan,
    plan_problems,
)
from hypothesis import given, settings
from hypothesis import strategies as st

MB = 1024 * 1024
sizes = st.one_of(
    st.integers(1, MAX_VIDEO_BYTES),
    # the edges: around 5 MB, 64 MB, 128 MB and 4 GB
    st.sampled_from([1, 5 * MB - 1, 5 * MB, 5 * MB + 1, 64 * MB - 1, 64 * MB, 64 * MB + 1,
                     128 * MB, 128 * MB + 1, MAX_VIDEO_BYTES - 1, MAX_VIDEO_BYTES]),
)
preferred = st.integers(0, 200 * MB)


def tiktok_accepts(size: int, chunk: int, count: int) -> bool:
    """TikTok's rules restated independently of the module under test."""
    if size < 5 * MB:
        return chunk == size and count == 1
    if count == 1:  # one piece: the whole file, which must not need chunking
        return 5 * MB <= chunk <= 64 * MB and size // chunk == 1 and size <= 64 * MB
    last = size - (count - 1) * chunk
    return (5 * MB <= chunk <= 64 * MB and count == size // chunk
            and 1 <= count <= 1000 and chunk <= last <= 128 * MB)


@settings(max_examples=400)
@given(size=sizes, want=preferred)
def test_every_plan_obeys_tiktoks_rules(size: int, want: int) -> None:
    p = plan(size, want)
    assert tiktok_accepts(p.video_size, p.chunk_size, p.total_chunk_count)
    assert plan_problems(p.video_size, p.chunk_size, p.total_chunk_count) == []


@settings(max_examples=300)
@given(size=sizes, want=preferred)
def test_chunks_cover_the_file_exactly_once_in_order(size: int, want: int) -> None:
    p = plan(size, want)
    ranges = [(first, last) for _, first, last in p.ranges()]
    assert len(ranges) == p.total_chunk_count
    assert ranges[0][0] == 0 and ranges[-1][1] == size - 1
    for (_, last), (first, _) in itertools.pairwise(ranges):
        assert first == last + 1
    lengths = [last - first + 1 for first, last in ranges]
    assert all(n == p.chunk_size for n in lengths[:-1])
    assert p.chunk_size <= lengths[-1] <= 128 * MB
    assert sum(lengths) == size


@settings(max_examples=300)
@given(size=st.integers(5 * MB, MAX_VIDEO_BYTES), chunk=st.integers(1, 200 * MB),
       count=st.one_of(st.none(), st.integers(1, 5000)))
def test_plan_problems_agrees_with_the_rules(size: int, chunk: int, count: int | None) -> None:
    # None: the floor TikTok expects, so acceptable plans are drawn often too
    count = max(1, size // chunk) if count is None else count
    assert (plan_problems(size, chunk, count) == []) == tiktok_accepts(size, chunk, count)


@given(size=sizes, want=preferred, data=st.data())
def test_resuming_from_any_chunk_boundary_yields_the_remaining_chunks(
        size: int, want: int, data: st.DataObject) -> None:
    p = plan(size, want)
    index = data.draw(st.integers(0, p.total_chunk_count - 1))
    first, _ = p.chunk_range(index)
    assert [i for i, _, _ in p.ranges(first)] == list(range(index, p.total_chunk_count))
    assert list(p.ranges(size)) == []


def test_tiktoks_documented_example() -> None:
    # 50,000,123 bytes in 10,000,000-byte chunks: 5 chunks, the last 10,000,123 bytes
    p = ChunkPlan(50_000_123, 10_000_000, 5)
    assert plan_problems(50_000_123, 10_000_000, 5) == []
    assert p.chunk_range(4) == (40_000_000, 50_000_122)
    assert plan_problems(50_000_123, 10_000_000, 6) != []


def test_small_files_go_whole_and_large_ones_are_chunked() -> None:
    assert plan(1) == ChunkPlan(1, 1, 1)
    assert plan(4 * MB) == ChunkPlan(4 * MB, 4 * MB, 1)
    assert plan(20 * MB, 16 * MB) == ChunkPlan(20 * MB, 20 * MB, 1)
    assert plan(64 * MB, 64 * MB).total_chunk_count == 1
    assert plan(20 * MB, 5 * MB) == ChunkPlan(20 * MB, 5 * MB, 4)
    assert plan(64 * MB + 1).total_chunk_count > 1
    assert plan(MAX_VIDEO_BYTES, 5 * MB).total_chunk_count <= 1000


@pytest.mark.parametrize("size", [0, -1, MAX_VIDEO_BYTES + 1])
def test_impossible_sizes_are_refused(size: int) -> None:
    with pytest.raises(ValueError):
        plan(size)


def test_a_resume_point_inside_a_chunk_is_refused() -> None:
    with pytest.raises(ValueError):
        list(plan(100 * MB, 10 * MB).ranges(1))
