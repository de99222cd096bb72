"""Real media files for tests (Pillow, PyAV), and serving them over HTTP on loopback."""

from __future__ import annotations

import fractions
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..media import MediaInfo, inspect
from ..platforms import MediaFile
from ..sandbox import serve


def make_image(path: Path | str, width: int = 1080, height: int = 1080, fmt: str = "JPEG",
               color: tuple[int, int, int] = (200, 60, 40), **save: Any) -> Path:
    """Write a real image file (Pillow) and return its path."""
    from PIL import Image, ImageDraw

    path = Path(path)
    mode = "RGBA" if fmt.upper() in {"PNG", "WEBP"} and save.pop("alpha", False) else "RGB"
    img = Image.new(mode, (width, height), color)
    draw = ImageDraw.Draw(img)
    draw.rectangle((width // 4, height // 4, width * 3 // 4, height * 3 // 4),
                   fill=(40, 90, 200))
    img.save(path, format=fmt, **save)
    return path


#: the corrupt JPEGs :func:`make_corrupt_jpeg` writes
CORRUPT_JPEGS = ("truncated", "garbage", "mpo_like", "markers_only")


def make_corrupt_jpeg(path: Path | str, how: str, seed: int = 7) -> Path:
    """Write a JPEG that is broken in one of the ways of :data:`CORRUPT_JPEGS`:
    ``truncated`` (a real JPEG cut in half), ``garbage`` (a real JPEG's first 20 bytes,
    then random bytes, then an end-of-image marker), ``mpo_like`` (the APP1 segment of
    a multi-picture file with nothing sensible after it), ``markers_only`` (start and
    end markers around random bytes)."""
    import random

    data = make_image(path, 320, 240, quality=90).read_bytes()
    rng = random.Random(seed)
    noise = bytes(rng.randrange(256) for _ in range(3000))
    eoi = b"\xff\xd9"
    corrupt = {
        "truncated": data[:len(data) // 2],
        "garbage": data[:20] + noise + eoi,
        "mpo_like": b"\xff\xd8\xff\xe1\x00\x10MPF\x00II*\x00" + noise[:64] + eoi,
        "markers_only": b"\xff\xd8\xff" + noise + eoi,
    }
    if how not in corrupt:
        raise ValueError(f"unknown corruption {how!r} (known: {', '.join(CORRUPT_JPEGS)})")
    Path(path).write_bytes(corrupt[how])
    return Path(path)


def make_gif(path: Path | str, width: int = 320, height: int = 240, frames: int = 5) -> Path:
    from PIL import Image

    path = Path(path)
    imgs = [Image.new("RGB", (width, height), (i * 40 % 255, 80, 160)) for i in range(frames)]
    imgs[0].save(path, format="GIF", save_all=True, append_images=imgs[1:], duration=100, loop=0)
    return path


def make_video(path: Path | str, width: int = 320, height: int = 240, seconds: float = 1.0,
               fps: int = 24, audio: bool = True, codec: str = "libx264",
               container: str | None = None, sample_rate: int = 44100) -> Path:
    """Write a real H.264 (+ AAC) video with PyAV and return its path."""
    import av
    import numpy as np

    path = Path(path)
    out = av.open(str(path), mode="w", format=container)
    vstream: Any = out.add_stream(codec, rate=fps)
    vstream.width, vstream.height = width, height
    vstream.pix_fmt = "yuv420p"
    astream: Any = None
    if audio:
        astream = out.add_stream("aac", rate=sample_rate)
        astream.layout = "stereo"
    nframes = max(1, round(seconds * fps))
    base = np.zeros((height, width, 3), dtype=np.uint8)
    for i in range(nframes):
        base[:, :, 0] = (i * 7) % 255
        base[:, :, 1] = 100
        frame = av.VideoFrame.from_ndarray(base, format="rgb24")
        for packet in vstream.encode(frame):
            out.mux(packet)
    for packet in vstream.encode():
        out.mux(packet)
    if astream is not None:
        samples_total = int(seconds * sample_rate)
        chunk = 1024
        pts = 0
        while pts < samples_total:
            n = min(chunk, samples_total - pts)
            t = (np.arange(pts, pts + n) / sample_rate).astype(np.float32)
            tone = (0.2 * np.sin(2 * math.pi * 440 * t)).astype(np.float32)
            data = np.stack([tone, tone])
            aframe = av.AudioFrame.from_ndarray(data, format="fltp", layout="stereo")
            aframe.sample_rate = sample_rate
            aframe.pts = pts
            aframe.time_base = fractions.Fraction(1, sample_rate)
            for packet in astream.encode(aframe):
                out.mux(packet)
            pts += n
        for packet in astream.encode():
            out.mux(packet)
    out.close()
    return path


def make_sparse_file(path: Path | str, size: int, head: bytes = b"") -> Path:
    """A file of ``size`` bytes without writing them all (for upload-size tests)."""
    path = Path(path)
    with path.open("wb") as fh:
        fh.write(head)
        if size > len(head):
            fh.seek(size - 1)
            fh.write(b"\0")
    return path


@contextmanager
def serve_directory(root: Path | str, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve the files under ``root`` over HTTP on loopback (with ranges); yields the base URL."""
    from werkzeug.exceptions import NotFound
    from werkzeug.utils import send_from_directory
    from werkzeug.wrappers import Request

    root = Path(root)

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        try:
            response = send_from_directory(root, request.path.lstrip("/"), environ)
        except NotFound as exc:
            response = exc.get_response(environ)
        return response(environ, start_response)

    with serve(app, host=host) as url:
        yield url


def media_file(path: Path, base_url: str, info: MediaInfo | None = None) -> MediaFile:
    """A MediaFile for ``path`` served under ``base_url`` (see :func:`serve_directory`)."""
    return MediaFile(path=path, info=info or inspect(path), url=f"{base_url}/{path.name}",
                     name=path.name)
