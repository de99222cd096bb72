"""inspect(): facts from a file's own bytes, and clear errors for a corpus of bad media."""

from __future__ import annotations

import fractions
import io
import struct
import zlib
from pathlib import Path

import pytest
from cattrs.errors import ClassValidationError
from PIL import Image

from chat33_core.errors import ValidationError
from chat33_core.media import GIF, IMAGE, VIDEO, MediaError, MediaInfo, inspect
from chat33_core.serialization import error_json, media_info_json, media_info_of
from chat33_core.testing import (
    CORRUPT_JPEGS,
    make_corrupt_jpeg,
    make_gif,
    make_image,
    make_video,
)

# --- helpers that write the corpus ---------------------------------------------------


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` with almost no pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat)
            + png_chunk(b"IEND", b""))


def make_audio_only_mp4(path: Path, seconds: float = 0.5, rate: int = 44100) -> Path:
    """An MP4 holding one AAC track and no video (make_video cannot do this)."""
    import av
    import numpy as np

    out = av.open(str(path), mode="w")
    stream = out.add_stream("aac", rate=rate)
    stream.layout = "stereo"
    pts = 0
    while pts < seconds * rate:
        frame = av.AudioFrame.from_ndarray(np.zeros((2, 1024), dtype=np.float32),
                                           format="fltp", layout="stereo")
        frame.sample_rate = rate
        frame.pts = pts
        frame.time_base = fractions.Fraction(1, rate)
        for packet in stream.encode(frame):
            out.mux(packet)
        pts += 1024
    for packet in stream.encode():
        out.mux(packet)
    out.close()
    return path


def jpeg_with_orientation(path: Path, width: int, height: int, orientation: int) -> Path:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return make_image(path, width, height, exif=exif.tobytes())


def cut(src: Path, dest: Path, keep: int) -> Path:
    dest.write_bytes(src.read_bytes()[:keep])
    return dest


def error_of(source: object) -> MediaError:
    with pytest.raises(MediaError) as info:
        inspect(source)  # type: ignore[arg-type]
    return info.value


# --- images ------------------------------------------------------------------------


def test_jpeg_facts(tmp_path: Path) -> None:
    info = inspect(make_image(tmp_path / "a.jpg", 1200, 800))
    assert (info.kind, info.format, info.mime_type) == (IMAGE, "JPEG", "image/jpeg")
    assert (info.width, info.height, info.frames, info.animated) == (1200, 800, 1, False)
    assert info.size == (tmp_path / "a.jpg").stat().st_size
    assert info.mode == "RGB"
    assert info.aspect_ratio == pytest.approx(1.5)


@pytest.mark.parametrize(("orientation", "rotation", "swapped"),
                         [(1, 0, False), (3, 180, False), (6, 90, True), (8, 270, True)])
def test_exif_orientation_is_applied_to_the_size(tmp_path: Path, orientation: int,
                                                 rotation: int, swapped: bool) -> None:
    info = inspect(jpeg_with_orientation(tmp_path / "r.jpg", 400, 200, orientation))
    assert info.rotation == rotation
    assert (info.width, info.height) == ((200, 400) if swapped else (400, 200))


@pytest.mark.parametrize(("fmt", "mime"), [("PNG", "image/png"), ("WEBP", "image/webp")])
def test_png_and_webp(tmp_path: Path, fmt: str, mime: str) -> None:
    info = inspect(make_image(tmp_path / "x.img", 64, 48, fmt=fmt))
    assert (info.format, info.mime_type, info.width, info.height) == (fmt, mime, 64, 48)


def test_type_is_decided_by_bytes_not_the_name(tmp_path: Path) -> None:
    png_named_jpg = make_image(tmp_path / "photo.jpg", 10, 10, fmt="PNG")
    assert inspect(png_named_jpg).format == "PNG"
    video = make_video(tmp_path / "clip.mp4", seconds=0.2)
    assert inspect(video.rename(tmp_path / "clip.png")).kind == VIDEO


def test_animated_gif_with_many_frames_is_counted(tmp_path: Path) -> None:
    info = inspect(make_gif(tmp_path / "many.gif", 16, 16, frames=300))
    assert (info.kind, info.format, info.frames, info.animated) == (GIF, "GIF", 300, True)


def test_single_frame_gif_is_not_animated(tmp_path: Path) -> None:
    info = inspect(make_gif(tmp_path / "one.gif", 20, 10, frames=1))
    assert (info.kind, info.frames, info.animated, info.width) == (GIF, 1, False, 20)


def test_animated_webp_and_apng_frames(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (24, 24), (i * 30, 0, 0)) for i in range(4)]
    frames[0].save(tmp_path / "a.webp", save_all=True, append_images=frames[1:], duration=50)
    frames[0].save(tmp_path / "a.png", save_all=True, append_images=frames[1:], duration=50)
    webp, apng = inspect(tmp_path / "a.webp"), inspect(tmp_path / "a.png")
    assert (webp.format, webp.frames, webp.animated, webp.kind) == ("WEBP", 4, True, IMAGE)
    assert (apng.format, apng.frames, apng.animated) == ("PNG", 4, True)


# --- video -------------------------------------------------------------------------


def test_mp4_facts(tmp_path: Path) -> None:
    info = inspect(make_video(tmp_path / "v.mp4", 320, 240, seconds=1.0, fps=24))
    assert (info.kind, info.format, info.mime_type) == (VIDEO, "MPEG-4", "video/mp4")
    assert (info.width, info.height) == (320, 240)
    assert (info.video_codec, info.audio_codec, info.audio_sample_rate) == ("h264", "aac", 44100)
    assert info.has_audio and info.frame_rate == 24.0 and info.frames == 24
    assert info.duration_s == pytest.approx(1.0, abs=0.05)
    assert info.bitrate and info.bitrate > 0
    assert info.size == (tmp_path / "v.mp4").stat().st_size


def rotate_mp4(src: Path, dest: Path) -> Path:
    """Write the 90-degree display matrix into the first track header (the video)."""
    data = bytearray(src.read_bytes())
    body = data.index(b"tkhd") + 4
    offset = body + 4 + (32 if data[body] == 1 else 20) + 16
    one = 0x10000
    data[offset:offset + 36] = struct.pack(">9I", 0, one, 0, -one & 0xFFFFFFFF, 0, 0, 0, 0,
                                           0x40000000)
    dest.write_bytes(data)
    return dest


def test_video_rotation_is_applied_to_the_size(tmp_path: Path) -> None:
    src = make_video(tmp_path / "v.mp4", 320, 240, seconds=0.2)
    info = inspect(rotate_mp4(src, tmp_path / "rotated.mp4"))
    assert (info.rotation, info.width, info.height) == (90, 240, 320)


def test_quicktime_container_is_named(tmp_path: Path) -> None:
    info = inspect(make_video(tmp_path / "v.mov", seconds=0.2, container="mov"))
    assert (info.format, info.mime_type, info.video_codec) == ("QuickTime",
                                                               "video/quicktime", "h264")


def test_webm_vp9_without_audio(tmp_path: Path) -> None:
    info = inspect(make_video(tmp_path / "v.webm", 160, 96, seconds=0.3, codec="libvpx-vp9",
                              container="webm", audio=False))
    assert (info.format, info.mime_type, info.video_codec) == ("WebM", "video/webm", "vp9")
    assert not info.has_audio and info.audio_codec is None
    assert (info.width, info.height) == (160, 96)


def test_stream_and_path_give_the_same_facts(tmp_path: Path) -> None:
    path = make_video(tmp_path / "v.mp4", seconds=0.3)
    data = path.read_bytes()
    stream = io.BytesIO(data)
    stream.seek(5)
    assert inspect(stream) == inspect(path)
    assert stream.tell() == 5, "the caller's stream position is restored"
    image = make_image(tmp_path / "i.png", 30, 30, fmt="PNG")
    with image.open("rb") as fh:
        assert inspect(fh) == inspect(image)
        assert not fh.closed


def test_unseekable_stream_is_spooled(tmp_path: Path) -> None:
    path = make_image(tmp_path / "i.jpg", 50, 40)

    class Pipe(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self.inner = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def seekable(self) -> bool:
            return False

        def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
            chunk = self.inner.read(len(buffer))
            buffer[: len(chunk)] = chunk
            return len(chunk)

    assert inspect(Pipe(path.read_bytes())) == inspect(path)


def test_media_info_round_trips_through_the_stored_dict() -> None:
    info = MediaInfo(kind=VIDEO, format="MPEG-4", mime_type="video/mp4", size=10, width=2,
                     height=1, video_codec="h264", mode=None, duration_s=1.5)
    stored = media_info_json(info)
    # every field, snake_case, as assets have always stored it
    assert stored == {
        "kind": VIDEO, "format": "MPEG-4", "mime_type": "video/mp4", "size": 10, "width": 2,
        "height": 1, "rotation": 0, "frames": 1, "duration_s": 1.5, "frame_rate": None,
        "video_codec": "h264", "audio_codec": None, "audio_sample_rate": None,
        "bitrate": None, "has_audio": False, "animated": False, "mode": None}
    # a key this chat33 does not know (stored by another version) is ignored
    assert media_info_of(stored | {"unknown": 1}) == info


def test_stored_media_info_that_is_not_media_info_is_refused() -> None:
    # stored data chat33 did not write: a fault, not a request to answer
    with pytest.raises(ClassValidationError):
        media_info_of({"kind": VIDEO, "format": "MPEG-4", "mime_type": "video/mp4"})
    with pytest.raises(ClassValidationError):
        media_info_of({"kind": VIDEO, "format": "MPEG-4", "mime_type": "video/mp4",
                       "size": "ten"})


# --- the corpus of bad media -------------------------------------------------------------


def test_zero_bytes(tmp_path: Path) -> None:
    (tmp_path / "empty.jpg").write_bytes(b"")
    assert "empty (0 bytes)" in error_of(tmp_path / "empty.jpg").message


def test_truncated_jpeg(tmp_path: Path) -> None:
    src = make_image(tmp_path / "a.jpg", 300, 300, quality=95)
    err = error_of(cut(src, tmp_path / "cut.jpg", src.stat().st_size // 2))
    assert err.message.startswith("truncated JPEG")


def test_jpeg_cut_inside_its_header(tmp_path: Path) -> None:
    src = make_image(tmp_path / "a.jpg", 300, 300)
    assert "JPEG" in error_of(cut(src, tmp_path / "cut.jpg", 40)).message


def test_truncated_png(tmp_path: Path) -> None:
    src = make_image(tmp_path / "a.png", 300, 300, fmt="PNG")
    assert error_of(cut(src, tmp_path / "cut.png", src.stat().st_size - 20)).message \
        .startswith("truncated PNG")


def test_truncated_gif(tmp_path: Path) -> None:
    src = make_gif(tmp_path / "a.gif", frames=3)
    assert "truncated GIF" in error_of(cut(src, tmp_path / "cut.gif", 200)).message


def test_truncated_mp4(tmp_path: Path) -> None:
    src = make_video(tmp_path / "v.mp4", seconds=0.5)
    err = error_of(cut(src, tmp_path / "cut.mp4", src.stat().st_size // 2))
    assert err.message.startswith("truncated MP4")


def test_mp4_cut_inside_a_box_header(tmp_path: Path) -> None:
    src = make_video(tmp_path / "v.mp4", seconds=0.2)
    assert "MP4" in error_of(cut(src, tmp_path / "cut.mp4", 36)).message


def test_png_header_claiming_100000_by_100000(tmp_path: Path) -> None:
    (tmp_path / "bomb.png").write_bytes(png_claiming(100_000, 100_000))
    err = error_of(tmp_path / "bomb.png")
    assert "too large" in err.message and "PNG" in err.message


def test_bomb_guard_holds_when_pillow_limit_is_disabled(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    (tmp_path / "bomb.png").write_bytes(png_claiming(20_000, 20_000))
    assert "400 megapixels" in error_of(tmp_path / "bomb.png").message


def test_text_renamed_jpg(tmp_path: Path) -> None:
    (tmp_path / "notes.jpg").write_text("hello, this is not a photo\n")
    err = error_of(tmp_path / "notes.jpg")
    assert err.message.startswith("not an image or video: the file starts with text")


def test_html_error_page_is_named(tmp_path: Path) -> None:
    (tmp_path / "img.jpg").write_text("<!DOCTYPE html><html><body>403 Forbidden</body></html>")
    assert "HTML page" in error_of(tmp_path / "img.jpg").message


def test_random_binary_is_not_media() -> None:
    assert "unrecognized bytes 00 01 02" in error_of(io.BytesIO(bytes(range(256)))).message


def test_mp4_with_no_video_track(tmp_path: Path) -> None:
    err = error_of(make_audio_only_mp4(tmp_path / "voice.mp4"))
    assert err.message == "MP4 has no video track (audio only: aac)"


def test_heic_is_named(tmp_path: Path) -> None:
    (tmp_path / "p.jpg").write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" * 2)
    assert "HEIF" in error_of(tmp_path / "p.jpg").message


def test_missing_file_and_directory(tmp_path: Path) -> None:
    assert "no such media file" in error_of(tmp_path / "nope.jpg").message
    assert "directory" in error_of(tmp_path).message


def test_media_error_is_a_validation_error_with_an_optional_path() -> None:
    err = MediaError("truncated PNG", path="mediaUrls[1]")
    assert isinstance(err, ValidationError) and err.http_status == 400
    assert error_json(err) == {"error": "VALIDATION_ERROR", "message": "truncated PNG",
                               "details": [{"path": "mediaUrls[1]",
                                            "message": "truncated PNG"}]}


def test_images_are_inspected_from_headers_without_decoding(tmp_path: Path) -> None:
    # pixel data that cannot decode: inspection still answers, so it never decoded it
    ihdr = struct.pack(">IIBBBBB", 4000, 3000, 8, 2, 0, 0, 0)
    data = (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
            + png_chunk(b"IDAT", b"not zlib at all") + png_chunk(b"IEND", b""))
    (tmp_path / "lazy.png").write_bytes(data)
    info = inspect(tmp_path / "lazy.png")
    assert (info.format, info.width, info.height) == ("PNG", 4000, 3000)
    with pytest.raises(OSError), Image.open(tmp_path / "lazy.png") as img:
        img.load()


@pytest.mark.parametrize("how", CORRUPT_JPEGS)
def test_corrupt_jpegs_are_a_media_error(tmp_path: Path, how: str) -> None:
    """Pillow's JPEG opener makes MPO files itself; asking it for "MPO" by name was a
    KeyError (a 500) for every JPEG its own opener refused."""
    err = error_of(make_corrupt_jpeg(tmp_path / f"{how}.jpg", how))
    assert "JPEG" in err.message
    assert err.message.startswith(("corrupt JPEG", "truncated JPEG"))


def test_an_unknown_corruption_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown corruption 'scrambled'"):
        make_corrupt_jpeg(tmp_path / "x.jpg", "scrambled")


def test_a_multi_picture_jpeg_is_read_as_mpo(tmp_path: Path) -> None:
    path = tmp_path / "pair.mpo"
    Image.new("RGB", (40, 30), "red").save(path, format="MPO", save_all=True,
                                           append_images=[Image.new("RGB", (40, 30), "blue")])
    info = inspect(path)
    assert (info.format, info.width, info.height, info.frames) == ("MPO", 40, 30, 2)
