"""TikTok's chunk arithmetic for ``FILE_UPLOAD`` (platforms.md §3.3). Pure: no I/O.

TikTok's rules, as the media transfer guide states them:

* a file under 5 MB goes in one piece, ``chunk_size = video_size``;
* otherwise every chunk is 5 MB to 64 MB, and a file over 64 MB must be chunked;
* ``total_chunk_count = floor(video_size / chunk_size)``: the trailing bytes do not get
  a chunk of their own, the **last chunk takes them** and may reach 128 MB;
* 1 to 1,000 chunks, uploaded in order.

MB here is MiB (TikTok's examples and SDKs use ``5 * 1024 * 1024``). :func:`plan` picks a
``chunk_size`` that obeys all of this for any size from 1 byte to 4 GB;
:func:`plan_problems` checks a (size, chunk_size, count) triple against the rules, for the
sandbox and the tests.
"""

from __future__ import annotations

from collections.abc import Iterator

from attrs import frozen

MB = 1024 * 1024
MIN_CHUNK = 5 * MB
MAX_CHUNK = 64 * MB
MAX_LAST_CHUNK = 128 * MB
MAX_CHUNKS = 1000
#: TikTok's limit on a video file (also the largest size :func:`plan` accepts)
MAX_VIDEO_BYTES = 4 * 1024 * MB
#: what we ask for when nobody says otherwise: small enough that a failed chunk costs
#: little to send again, large enough that a 4 GB file needs a few hundred requests
DEFAULT_CHUNK = 16 * MB


@frozen
class ChunkPlan:
    """How one file is cut: ``total_chunk_count`` chunks of ``chunk_size`` bytes, the
    last one taking the remainder."""

    video_size: int
    chunk_size: int
    total_chunk_count: int

    def chunk_range(self, index: int) -> tuple[int, int]:
        """(first byte, last byte) of chunk ``index``, inclusive as in ``Content-Range``."""
        if not 0 <= index < self.total_chunk_count:
            raise IndexError(f"chunk {index} of {self.total_chunk_count}")
        first = index * self.chunk_size
        last = (self.video_size - 1 if index == self.total_chunk_count - 1
                else first + self.chunk_size - 1)
        return first, last

    def ranges(self, start_byte: int = 0) -> Iterator[tuple[int, int, int]]:
        """(index, first, last) of every chunk from the one starting at ``start_byte``
        (which must be a chunk boundary, as TikTok only acknowledges whole chunks)."""
        index = self.index_at(start_byte)
        for i in range(index, self.total_chunk_count):
            first, last = self.chunk_range(i)
            yield i, first, last

    def index_at(self, byte: int) -> int:
        """The chunk that starts at ``byte`` (``total_chunk_count`` at the end of file)."""
        if byte == self.video_size:
            return self.total_chunk_count
        if byte < 0 or byte > self.video_size or byte % self.chunk_size:
            raise ValueError(f"byte {byte} is not a chunk boundary of {self}")
        return min(byte // self.chunk_size, self.total_chunk_count)

    def as_source_info(self) -> dict[str, int | str]:
        return {"source": "FILE_UPLOAD", "video_size": self.video_size,
                "chunk_size": self.chunk_size, "total_chunk_count": self.total_chunk_count}


def plan(video_size: int, preferred_chunk: int = DEFAULT_CHUNK) -> ChunkPlan:
    """The chunk plan for a file of ``video_size`` bytes.

    ``preferred_chunk`` is clamped to 5-64 MB. A file that would make a single chunk of
    it anyway (under twice the chunk size, and at most 64 MB) goes in one piece; others
    use the preferred size, lowered to make at least two chunks and raised if needed to
    stay within 1,000 chunks. Raises ``ValueError`` for empty files and files over 4 GB.
    """
    if video_size <= 0:
        raise ValueError("an empty file cannot be uploaded")
    if video_size > MAX_VIDEO_BYTES:
        raise ValueError(f"{video_size} bytes is over TikTok's 4 GB limit")
    chunk = min(MAX_CHUNK, max(MIN_CHUNK, preferred_chunk))
    if video_size <= MAX_CHUNK and video_size < 2 * chunk:
        return ChunkPlan(video_size, video_size, 1)
    # floor(size / chunk) <= 1000 needs chunk > size / 1001
    chunk = max(chunk, video_size // (MAX_CHUNKS + 1) + 1)
    # at least two chunks: floor(size / chunk) == 1 would be one piece over 64 MB
    chunk = min(chunk, video_size // 2)
    # the last chunk is size - (count - 1) * chunk < 2 * chunk <= 128 MB: always allowed
    return ChunkPlan(video_size, chunk, video_size // chunk)


def plan_problems(video_size: int, chunk_size: int, total_chunk_count: int) -> list[str]:
    """Why TikTok would refuse this ``source_info`` (empty when it is fine)."""
    problems: list[str] = []
    if video_size <= 0:
        return ["video_size must be positive"]
    if video_size > MAX_VIDEO_BYTES:
        problems.append(f"video_size {video_size} is over 4 GB")
    if chunk_size <= 0 or total_chunk_count <= 0:
        return [*problems, "chunk_size and total_chunk_count must be positive"]
    if video_size < MIN_CHUNK:
        if chunk_size != video_size or total_chunk_count != 1:
            problems.append("a file under 5 MB must be sent whole (chunk_size = video_size)")
        return problems
    if chunk_size > video_size:
        problems.append(f"chunk_size {chunk_size} is larger than video_size {video_size}")
        return problems
    if not MIN_CHUNK <= chunk_size <= MAX_CHUNK:
        problems.append(f"chunk_size {chunk_size} is outside 5 MB to 64 MB")
    if total_chunk_count != video_size // chunk_size:
        problems.append(f"total_chunk_count {total_chunk_count} is not "
                        f"floor({video_size} / {chunk_size}) = {video_size // chunk_size}")
    elif total_chunk_count > MAX_CHUNKS:
        problems.append(f"{total_chunk_count} chunks is over 1,000")
    else:
        last = video_size - (total_chunk_count - 1) * chunk_size
        if total_chunk_count == 1 and video_size > MAX_CHUNK:
            problems.append(f"a file over 64 MB ({video_size} bytes) must be chunked")
        elif last > MAX_LAST_CHUNK:
            problems.append(f"the last chunk ({last} bytes) is over 128 MB")
    return problems
