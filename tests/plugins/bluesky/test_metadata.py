"""Camera metadata is left out of uploaded JPEGs; the picture and its orientation stay."""

from __future__ import annotations

import io
from pathlib import Path

from chat33_bluesky.metadata import strip_jpeg_metadata
from PIL import Image

from chat33_core.media import inspect
from chat33_core.platforms import MediaFile

from .conftest import Sandbox

GPS_IFD = 0x8825
XMP = (b"http://ns.adobe.com/xap/1.0/\x00"
       b"<x:xmpmeta><exif:GPSLatitude>38,42.5N</exif:GPSLatitude></x:xmpmeta>")


def photo(orientation: int | None = 6, gps: bool = True, xmp: bool = True) -> bytes:
    """A real JPEG as a phone writes it: EXIF with GPS and orientation, XMP."""
    img = Image.new("RGB", (64, 32), (200, 60, 40))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    if orientation is not None:
        exif[0x0112] = orientation
    if gps:
        exif.get_ifd(GPS_IFD).update({1: "N", 2: (38.0, 42.0, 30.0), 3: "W",
                                      4: (9.0, 8.0, 20.0)})
    out = io.BytesIO()
    img.save(out, format="JPEG", exif=exif.tobytes(), quality=90)
    data = out.getvalue()
    if xmp:
        segment = b"\xff\xe1" + (len(XMP) + 2).to_bytes(2, "big") + XMP
        data = data[:2] + segment + data[2:]
    return data


def pixels(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as img:
        return img.tobytes()


def test_gps_and_xmp_are_dropped_and_the_orientation_kept() -> None:
    original = photo()
    assert b"PhoneMaker" in original and b"GPSLatitude" in original
    stripped = strip_jpeg_metadata(original)
    assert len(stripped) < len(original)
    assert b"PhoneMaker" not in stripped and b"GPSLatitude" not in stripped
    with Image.open(io.BytesIO(stripped)) as img:
        exif = img.getexif()
        assert exif.get(0x0112) == 6
        assert not exif.get_ifd(GPS_IFD)
    assert pixels(stripped) == pixels(original)  # the same scan, not re-encoded
    assert stripped.endswith(original[-200:])


def test_an_upright_photo_keeps_no_exif_at_all() -> None:
    stripped = strip_jpeg_metadata(photo(orientation=1, xmp=False))
    with Image.open(io.BytesIO(stripped)) as img:
        assert not img.getexif()


def test_files_without_metadata_or_not_jpegs_are_left_alone() -> None:
    plain = io.BytesIO()
    Image.new("RGB", (8, 8)).save(plain, format="JPEG")
    assert strip_jpeg_metadata(plain.getvalue()) == plain.getvalue()
    png = io.BytesIO()
    Image.new("RGB", (8, 8)).save(png, format="PNG")
    assert strip_jpeg_metadata(png.getvalue()) == png.getvalue()
    truncated = photo()[:40]
    assert strip_jpeg_metadata(truncated) == truncated


def test_the_uploaded_blob_has_no_gps(sandbox: Sandbox, tmp_path: Path) -> None:
    path = tmp_path / "phone.jpg"
    path.write_bytes(photo())
    file = MediaFile(path=path, info=inspect(path), url="http://127.0.0.1:9/phone.jpg",
                     name="phone.jpg")
    sandbox.platform.publish(sandbox.context(["from my phone"], media=[[file]]))
    image = sandbox.posts()[0]["value"]["embed"]["images"][0]
    assert image["image"]["size"] == len(strip_jpeg_metadata(photo()))
    assert image["image"]["size"] < path.stat().st_size
    # the file kept for the post is untouched
    assert path.read_bytes() == photo()
