"""Benchmark: ``chat33_core.media.inspect`` against the bare libraries it wraps.

Generates, in a temporary directory, a 50-megapixel JPEG and a ~200 MB MP4 (H.264 +
AAC, moov at the end as most encoders write it), then measures in the same run:

* ``inspect(path)`` against a bare ``Image.open(path).size`` (JPEG) and a bare
  ``pymediainfo.MediaInfo.parse(path)`` (MP4);
* best-of-N wall time (the two run interleaved), peak Python allocations (tracemalloc), and the
  peak resident memory added by one call (Linux VmHWM, reset through
  /proc/self/clear_refs; "n/a" where that is not available).

Run: ``.venv/bin/python bench/media.py`` (``--mp4-mb 50`` for a quicker run).
Target: every ratio <= 1.2 and inspect's peak memory under 64 MB.

``--upload-mb 1024`` runs the large-upload case instead (``bench/media_memory.py``): a
1 GB video through the direct-upload path, published to YouTube and X through their
sandboxes, with each process's peak RSS (target: under 128 MB).
"""

from __future__ import annotations

import argparse
import fractions
import gc
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

MB = 1024 * 1024


# --- inputs ------------------------------------------------------------------------------


def make_big_jpeg(path: Path, megapixels: int = 50) -> Path:
    from PIL import Image, ImageDraw

    width = int((megapixels * 1_000_000 * 3 / 2) ** 0.5)
    height = megapixels * 1_000_000 // width + 1
    img = Image.new("RGB", (width, height), (30, 120, 200))
    draw = ImageDraw.Draw(img)
    for i in range(0, width, 97):  # some structure so the JPEG is not trivially tiny
        draw.line((i, 0, width - i, height), fill=(i % 255, 200, 90), width=9)
    img.save(path, format="JPEG", quality=90)
    return path


def make_big_mp4(path: Path, target_mb: int = 200) -> Path:
    """Lossless-ish H.264 of noise frames (barely compressible) until ``target_mb``,
    plus an AAC track of the same length."""
    import av
    import numpy as np

    fps, width, height, rate = 30, 1280, 720, 48000
    out = av.open(str(path), mode="w")
    video = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "qp": "4"})
    video.width, video.height, video.pix_fmt = width, height, "yuv420p"
    audio = out.add_stream("aac", rate=rate)
    audio.layout = "stereo"
    rng = np.random.default_rng(7)
    written, frames = 0, 0
    while written < target_mb * MB:
        pixels = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
        for packet in video.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
            written += packet.size
            out.mux(packet)
        frames += 1
    for packet in video.encode():
        out.mux(packet)
    samples, pts = int(frames / fps * rate), 0
    while pts < samples:
        frame = av.AudioFrame.from_ndarray(np.zeros((2, 1024), dtype=np.float32),
                                           format="fltp", layout="stereo")
        frame.sample_rate, frame.pts = rate, pts
        frame.time_base = fractions.Fraction(1, rate)
        for packet in audio.encode(frame):
            out.mux(packet)
        pts += 1024
    for packet in audio.encode():
        out.mux(packet)
    out.close()
    return path


class Stream:
    """A seekable binary stream with no file name (an upload body spooled by a web
    framework, say): inspect() and pymediainfo must read it through Python."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self.read, self.seek, self.tell = raw.read, raw.seek, raw.tell

    def seekable(self) -> bool:
        return True


def on_stream(path: Path, fn: Callable[[Any], Any]) -> Any:
    with path.open("rb", buffering=0) as raw:
        return fn(Stream(raw))


# --- measuring ---------------------------------------------------------------------------


def _status(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def best_times(fns: list[Callable[[], Any]], runs: int) -> list[float]:
    """Best-of-``runs`` wall time of each function, run interleaved so both see the same
    machine load (the minimum is the least noisy estimate of a short operation)."""
    for fn in fns:
        fn()  # warm up: imports, shared libraries, the page cache
    best = [float("inf")] * len(fns)
    gc.collect()
    gc.disable()  # as timeit does: a collection inside one run is noise, not cost
    try:
        for _ in range(runs):
            for i, fn in enumerate(fns):
                start = time.perf_counter()
                fn()
                best[i] = min(best[i], time.perf_counter() - start)
    finally:
        gc.enable()
    return best


def peak_memory(fn: Callable[[], Any]) -> dict[str, float | None]:
    """Peak Python allocations (tracemalloc) and peak RSS added during one call."""
    gc.collect()
    tracemalloc.start()
    fn()
    _, py_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_peak: float | None = None
    gc.collect()
    if _reset_peak_rss():
        before = _status("VmRSS")
        fn()
        after = _status("VmHWM")
        if before is not None and after is not None:
            rss_peak = max(0, after - before)
    return {"py_peak": py_peak, "rss_peak": rss_peak}


def measure(ours: Callable[[], Any], bare: Callable[[], Any],
            runs: int) -> tuple[dict[str, float | None], dict[str, float | None]]:
    t_ours, t_bare = best_times([ours, bare], runs)
    return {"time": t_ours, **peak_memory(ours)}, {"time": t_bare, **peak_memory(bare)}


def ratio(a: float | None, b: float | None, floor: float = 0.0) -> str:
    if a is None or b is None:
        return "n/a"
    if max(a, b) < floor:
        return "~ (both < 1 MB)"
    if b == 0:
        return "1.00" if a == 0 else "inf"
    return f"{a / b:.2f}"


def fmt_time(s: float | None) -> str:
    return "n/a" if s is None else f"{s * 1000:.2f} ms"


def fmt_mem(n: float | None) -> str:
    if n is None:
        return "n/a"
    return f"{n / MB:.2f} MB" if n >= MB else f"{n / 1024:.1f} KB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megapixels", type=int, default=50)
    parser.add_argument("--mp4-mb", type=int, default=200)
    parser.add_argument("--runs", type=int, default=2000, help="timing runs (JPEG)")
    parser.add_argument("--mp4-runs", type=int, default=9, help="timing runs (MP4)")
    parser.add_argument("--upload-mb", type=int, default=0,
                        help="run the large-upload memory case with a file this big instead")
    args = parser.parse_args(argv)
    if args.upload_mb:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from media_memory import main as upload_case

        return upload_case(args.upload_mb)

    from PIL import Image
    from pymediainfo import MediaInfo as Parsed

    from chat33_core.media import inspect

    with tempfile.TemporaryDirectory(prefix="chat33-bench-") as tmp:
        print("generating inputs...", file=sys.stderr)
        jpeg = make_big_jpeg(Path(tmp) / "big.jpg", args.megapixels)
        mp4 = make_big_mp4(Path(tmp) / "big.mp4", args.mp4_mb)

        def bare_pillow() -> Any:
            with Image.open(jpeg) as img:
                return img.size

        cases = [
            (f"{args.megapixels} MP JPEG ({jpeg.stat().st_size / MB:.1f} MB)",
             lambda: inspect(jpeg), "Image.open + size", bare_pillow),
            (f"MP4 ({mp4.stat().st_size / MB:.0f} MB)", lambda: inspect(mp4),
             "MediaInfo.parse", lambda: Parsed.parse(mp4)),
            (f"MP4 as a stream ({mp4.stat().st_size / MB:.0f} MB)",
             lambda: on_stream(mp4, inspect), "MediaInfo.parse(stream)",
             lambda: on_stream(mp4, Parsed.parse)),
        ]
        info = [inspect(jpeg), inspect(mp4), on_stream(mp4, inspect)]
        rows = []
        for (label, ours, bare_name, bare), facts in zip(cases, info, strict=True):
            print(f"measuring {label}...", file=sys.stderr)
            a, b = measure(ours, bare, args.runs if "JPEG" in label else args.mp4_runs)
            rows.append((label, bare_name, a, b, facts))

    header = ("file", "baseline", "metric", "inspect", "baseline", "ratio")
    table = [header]
    for label, bare_name, a, b, _ in rows:
        table.append((label, bare_name, "best time", fmt_time(a["time"]), fmt_time(b["time"]),
                      ratio(a["time"], b["time"])))
        table.append(("", "", "peak Python alloc", fmt_mem(a["py_peak"]), fmt_mem(b["py_peak"]),
                      ratio(a["py_peak"], b["py_peak"])))
        table.append(("", "", "peak RSS added", fmt_mem(a["rss_peak"]), fmt_mem(b["rss_peak"]),
                      ratio(a["rss_peak"], b["rss_peak"], floor=MB)))
    widths = [max(len(str(r[i])) for r in table) for i in range(len(header))]
    line = "| " + " | ".join(f"{{:<{w}}}" for w in widths) + " |"
    print(line.format(*header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in table[1:]:
        print(line.format(*row))
    print()
    for label, _, a, _, facts in rows:
        peak = max(a["py_peak"] or 0, a["rss_peak"] or 0)
        verdict = "OK" if peak < 64 * MB else "OVER"
        print(f"{label}: inspect peak {fmt_mem(peak)} (< 64 MB: {verdict}); "
              f"{facts.format} {facts.width}x{facts.height} {facts.video_codec or ''}".rstrip())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
