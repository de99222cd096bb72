"""What the Instagram sandbox checks in the bytes it downloads (like Meta's fetcher).

Images are opened with Pillow (format, displayed size). Videos get basic ISO-BMFF
checks: an ``ftyp`` box first, ``moov`` and ``mdat`` present, the duration from
``mvhd``, and the codecs from the sample entries (``avc1``/``hvc1``/``hev1``, ``mp4a``).
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator

import attrs

VIDEO_FOURCCS = {b"avc1": "h264", b"avc3": "h264", b"hvc1": "hevc", b"hev1": "hevc",
                 b"vp09": "vp9", b"av01": "av1", b"mp4v": "mpeg4"}
AUDIO_FOURCCS = {b"mp4a": "aac", b"Opus": "opus", b"ac-3": "ac3", b"ec-3": "eac3",
                 b"fLaC": "flac"}
# EXIF orientations that turn the picture a quarter
QUARTER_TURNS = {5, 6, 7, 8}


@attrs.frozen
class ImageFacts:
    format: str
    width: int
    height: int


@attrs.frozen
class VideoFacts:
    brand: str
    duration_s: float | None
    video_codec: str | None
    audio_codec: str | None
    moov_first: bool


class BadMedia(ValueError):
    """The bytes are not what they claim (or not readable at all)."""


def image_facts(data: bytes) -> ImageFacts:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            try:
                orientation = img.getexif().get(0x0112)
            except Exception:  # a broken EXIF block does not change the pixels
                orientation = None
            if orientation in QUARTER_TURNS:
                width, height = height, width
            return ImageFacts(format=str(img.format or "unknown"), width=width, height=height)
    except (UnidentifiedImageError, OSError) as exc:
        raise BadMedia(f"not an image: {exc}") from exc


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, box end) of the boxes in ``data[start:end]``."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        header = 8
        if size == 1:
            if pos + 16 > end:
                raise BadMedia("truncated box header")
            size = struct.unpack(">Q", data[pos + 8:pos + 16])[0]
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise BadMedia(f"box {kind!r} at {pos} runs past the end of the file")
        yield kind, pos + header, pos + size
        pos += size


def video_facts(data: bytes) -> VideoFacts:
    top = list(_boxes(data, 0, len(data)))
    if not top or top[0][0] != b"ftyp":
        raise BadMedia("not an MP4/MOV file: no ftyp box at the start")
    kinds = [k for k, _, _ in top]
    if b"moov" not in kinds:
        raise BadMedia("no moov box: the file is incomplete")
    if b"mdat" not in kinds:
        raise BadMedia("no mdat box: the file has no media data")
    brand = data[top[0][1]:top[0][1] + 4].decode("latin-1")
    _, moov_start, moov_end = top[kinds.index(b"moov")]
    moov = data[moov_start:moov_end]
    return VideoFacts(
        brand=brand,
        duration_s=_duration(moov),
        video_codec=_first_fourcc(moov, VIDEO_FOURCCS),
        audio_codec=_first_fourcc(moov, AUDIO_FOURCCS),
        moov_first=kinds.index(b"moov") < kinds.index(b"mdat"),
    )


def _duration(moov: bytes) -> float | None:
    for kind, start, _end in _boxes(moov, 0, len(moov)):
        if kind != b"mvhd":
            continue
        version = moov[start]
        if version == 1:
            timescale, duration = struct.unpack(">IQ", moov[start + 20:start + 32])
        else:
            timescale, duration = struct.unpack(">II", moov[start + 12:start + 20])
        return duration / timescale if timescale else None
    return None


def _first_fourcc(moov: bytes, table: dict[bytes, str]) -> str | None:
    # sample entries sit deep in trak/mdia/minf/stbl/stsd; a scan for the entry type
    # right after a plausible size field finds them without walking every level
    best: tuple[int, str] | None = None
    for fourcc, name in table.items():
        pos = moov.find(fourcc)
        while pos >= 4:
            size = struct.unpack(">I", moov[pos - 4:pos])[0]
            if 8 <= size <= len(moov):
                if best is None or pos < best[0]:
                    best = (pos, name)
                break
            pos = moov.find(fourcc, pos + 1)
    return best[1] if best else None
