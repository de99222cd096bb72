"""Camera metadata left out of uploaded JPEGs (platforms-more.md §1.6: "Strip EXIF before
upload").

A blob on a PDS is served as uploaded, so a photo's EXIF (GPS position, camera serial
numbers) and XMP would be public. The JPEG is rewritten without re-encoding: its EXIF and
XMP segments are dropped, and when the EXIF said how to turn the picture (orientation
other than 1) a minimal EXIF that says only that takes its place, so the picture stays
upright. Everything after the start of scan is copied byte for byte. A file that does not
parse as a JPEG is uploaded as it is.
"""

from __future__ import annotations

import io

EXIF_HEADER = b"Exif\x00\x00"
XMP_HEADERS = (b"http://ns.adobe.com/xap/1.0/\x00", b"http://ns.adobe.com/xmp/extension/\x00")
APP1, SOS, EOI = 0xE1, 0xDA, 0xD9
ORIENTATION = 0x0112
#: markers that stand alone (no length field)
_STANDALONE = {0x01, *range(0xD0, 0xD8)}


def _orientation(exif_payload: bytes) -> int | None:
    from PIL import Image

    exif = Image.Exif()
    try:
        exif.load(exif_payload)
    except Exception:  # any unreadable EXIF: no orientation to keep
        return None
    value = exif.get(ORIENTATION)
    return int(value) if isinstance(value, int) else None


def _orientation_segment(orientation: int) -> bytes:
    from PIL import Image

    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    payload = exif.tobytes()
    if not payload.startswith(EXIF_HEADER):
        payload = EXIF_HEADER + payload
    return b"\xff" + bytes([APP1]) + (len(payload) + 2).to_bytes(2, "big") + payload


def strip_jpeg_metadata(data: bytes) -> bytes:
    """``data`` without EXIF and XMP (orientation kept); unchanged if not a JPEG or if
    it has none."""
    if not data.startswith(b"\xff\xd8"):
        return data
    out = io.BytesIO()
    out.write(b"\xff\xd8")
    pos, orientation = 2, None
    at: int | None = None  # where the first dropped segment was
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return data  # not a marker where one must be: leave the file alone
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _STANDALONE:
            out.write(data[pos:pos + 2])
            pos += 2
            continue
        if marker in (SOS, EOI):
            break
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        end = pos + 2 + length
        if length < 2 or end > len(data):
            return data
        payload = data[pos + 4:end]
        if marker == APP1 and payload.startswith((EXIF_HEADER, *XMP_HEADERS)):
            at = out.tell() if at is None else at
            if payload.startswith(EXIF_HEADER):
                orientation = _orientation(payload[len(EXIF_HEADER):]) or orientation
        else:
            out.write(data[pos:end])
        pos = end
    else:
        return data  # ran out of bytes before the image data
    if at is None:
        return data
    head = out.getvalue()
    if orientation is not None and orientation != 1:
        # where the EXIF was (after a JFIF APP0, if any)
        head = head[:at] + _orientation_segment(orientation) + head[at:]
    return head + data[pos:]
