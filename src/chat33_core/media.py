"""What chat33 knows about a media file, and how it finds out.

Platform rules judge these inspected facts, never file names or Content-Type headers.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from typing import Any, BinaryIO

from attrs import frozen

from .errors import Issue, ValidationError

IMAGE = "image"
GIF = "gif"
VIDEO = "video"


@frozen
class MediaInfo:
    """Facts read from a media file's own bytes.

    ``width``/``height`` are as displayed: EXIF orientation (images) or the rotation tag
    (video) is already applied. ``format`` is the container or image format as
    reported (``JPEG``, ``PNG``, ``GIF``, ``WEBP``, ``MPEG-4``, ``QuickTime``, ``WebM``).
    Codec names are lower-case short names (``h264``, ``hevc``, ``vp9``, ``aac``).
    """

    kind: str  # IMAGE, GIF or VIDEO
    format: str
    mime_type: str
    size: int
    width: int | None = None
    height: int | None = None
    rotation: int = 0
    frames: int = 1
    duration_s: float | None = None
    frame_rate: float | None = None
    video_codec: str | None = None
    audio_codec: str | None = None
    audio_sample_rate: int | None = None
    bitrate: int | None = None
    has_audio: bool = False
    animated: bool = False
    #: Pillow's pixel mode of an image (``RGB``, ``RGBA``, ``CMYK``, ``P``...)
    mode: str | None = None

    @property
    def aspect_ratio(self) -> float | None:
        if not self.width or not self.height:
            return None
        return self.width / self.height

    @property
    def is_image(self) -> bool:
        return self.kind in (IMAGE, GIF)

    @property
    def is_video(self) -> bool:
        return self.kind == VIDEO


# --- inspection ------------------------------------------------------------------------


#: Images with more pixels than this are refused before any decode (decompression
#: bombs). 178 megapixels is Pillow's own hard limit; no platform takes more.
MAX_IMAGE_PIXELS = 178_956_970

_PATH_TYPES = (str, os.PathLike)
#: How many bytes of the start of a file the sniffer looks at.
_HEAD = 512


class MediaError(ValidationError):
    """A file is not media chat33 can use: the message says what was found."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        details = [Issue(path, message, code="media")] if path else []
        super().__init__(message, details=details)


def inspect(source: str | os.PathLike[str] | BinaryIO) -> MediaInfo:
    """Read the facts of a media file from its own bytes.

    ``source`` is a path or an open binary stream. A seekable stream is inspected from
    offset 0, left open, and its position restored; a stream that cannot seek is first
    spooled to a temporary file (never held in memory). Images are read with Pillow from
    their headers only (never fully decoded); audio/video with pymediainfo.

    Raises :class:`MediaError` (a ``ValidationError``) naming what was found when the
    bytes are not an image or video chat33 understands, are truncated or corrupt.
    """
    if isinstance(source, _PATH_TYPES):
        path = os.fspath(source)
        try:
            fh = open(path, "rb")  # noqa: SIM115 - closed by the with below
        except IsADirectoryError:
            raise MediaError(f"not an image or video: {path} is a directory") from None
        except FileNotFoundError:
            raise MediaError(f"no such media file: {path}") from None
        with fh:
            return _inspect_open(fh, path, os.fstat(fh.fileno()).st_size, owned=True)
    if isinstance(source, io.TextIOBase):
        raise TypeError("inspect() needs a binary stream, not a text stream")
    try:
        seekable = bool(source.seekable())
    except (AttributeError, OSError, ValueError):
        seekable = False
    if seekable:
        start = source.tell()
        try:
            size = source.seek(0, os.SEEK_END)
            source.seek(0)
            name = source.name if _is_real_file(source) else None
            return _inspect_open(source, name, size, owned=False)
        finally:
            source.seek(start)
    # A pipe or a network body: keep it on disk, never in memory, then inspect the copy.
    with tempfile.TemporaryFile() as spool:
        shutil.copyfileobj(source, spool, 1024 * 1024)
        size = spool.tell()
        spool.seek(0)
        return _inspect_open(spool, None, size, owned=True)


def _inspect_open(fh: BinaryIO, path: str | None, size: int, *, owned: bool) -> MediaInfo:
    """Inspect an open, seekable file positioned at 0. ``owned``: ours to close."""
    if size == 0:
        raise MediaError("not an image or video: the file is empty (0 bytes)")
    head = fh.read(_HEAD)
    fh.seek(0)
    family = _sniff(head)
    if family == "image":
        return _inspect_image(fh, head, size, owned=owned)
    if family == "video":
        if head[4:8] == b"ftyp" or head[4:8] in _ISO_TOP_BOXES:
            _check_iso_boxes(fh, size, _iso_name(head))
        return _inspect_av(fh, path, size, head)
    raise MediaError(_describe_unknown(head, family))


def _is_real_file(fh: Any) -> bool:
    name = getattr(fh, "name", None)
    return isinstance(name, str) and os.path.isfile(name) and isinstance(fh, io.BufferedReader)


# --- sniffing ------------------------------------------------------------------------

_ISO_TOP_BOXES = {b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot"}
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1",
                b"avif", b"avis"}


def _sniff(head: bytes) -> str:
    """Decide from the first bytes alone: ``image``, ``video``, ``audio``, ``heif``,
    ``text`` or ``unknown``."""
    if head.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM",
                        b"II*\x00", b"MM\x00*")):
        return "image"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _HEIF_BRANDS:
            return "heif"
        if brand in {b"M4A ", b"M4B ", b"M4P "}:
            return "video"  # reported as "audio only" once parsed
        return "video"
    if head[4:8] in _ISO_TOP_BOXES:
        return "video"  # an old QuickTime file without ftyp
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video"  # Matroska / WebM
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video"
    if head.startswith(b"FLV\x01") or head.startswith(b"\x00\x00\x01\xba"):
        return "video"
    if len(head) > 188 and head[0] == 0x47 and head[188] == 0x47:
        return "video"  # MPEG transport stream
    if head.startswith((b"ID3", b"fLaC", b"OggS", b"#!AMR")) or (
        head[:4] == b"RIFF" and head[8:12] == b"WAVE"
    ) or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "audio"
    if _looks_like_text(head):
        return "text"
    return "unknown"


def _looks_like_text(head: bytes) -> bool:
    sample = head.lstrip(b"\xef\xbb\xbf")
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError:
        # a multi-byte character cut at the end of the sample is still text
        try:
            text = sample[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return False
    return bool(text) and all(ch.isprintable() or ch in "\r\n\t\f" for ch in text)


def _describe_unknown(head: bytes, family: str) -> str:
    if family == "heif":
        return ("unsupported image format: the file is HEIF/HEIC/AVIF; "
                "convert it to JPEG or PNG")
    if family == "audio":
        return "not an image or video: the file is audio only"
    if family == "text":
        lowered = head.lstrip().lower()
        if lowered.startswith((b"<!doctype html", b"<html")):
            what = "an HTML page"
        elif lowered.startswith((b"<svg", b"<?xml")):
            what = "XML/SVG (vector images are not supported)"
        elif lowered.startswith((b"{", b"[")):
            what = "JSON"
        else:
            what = "text"
        preview = head[:24].decode("utf-8", "replace").strip()
        return f"not an image or video: the file starts with {what} ({preview!r})"
    return f"not an image or video: unrecognized bytes {head[:8].hex(' ')}"


# --- images --------------------------------------------------------------------------

#: the formats Pillow may try: what the sniffer routes to images (no plugin roulette).
#: MPO (multi-picture JPEG) needs no entry of its own: Pillow's JPEG opener makes one.
_IMAGE_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")
#: those of them this Pillow can open (a name it does not know is a KeyError in open)
_PILLOW_FORMATS: tuple[str, ...] = ()
_PIL: Any = None


def _pillow() -> Any:
    """PIL.Image, imported on first use (importing chat33 stays light) and kept."""
    global _PIL, _PILLOW_FORMATS
    if _PIL is None:
        from PIL import Image

        Image.init()  # every opener registered (open() would do it for WEBP and TIFF)
        _PILLOW_FORMATS = tuple(f for f in _IMAGE_FORMATS if f in Image.OPEN)
        _PIL = Image
    return _PIL


_ANIMATABLE = frozenset({"GIF", "PNG", "WEBP", "MPO", "TIFF"})
_EXIF_ORIENTATION = 0x0112
#: EXIF orientation -> clockwise rotation to display; 5-8 also swap width and height
_ORIENTATION_ROTATION = {1: 0, 2: 0, 3: 180, 4: 180, 5: 90, 6: 90, 7: 270, 8: 270}


def _inspect_image(fh: BinaryIO, head: bytes, size: int, *, owned: bool) -> MediaInfo:
    Image = _pillow()
    UnidentifiedImageError = Image.UnidentifiedImageError

    fmt_hint = _image_name(head)
    _check_image_end(fh, head, size, fmt_hint)
    try:
        # Pillow closes the file it reads: hand it ours, or a view of the caller's.
        # (Between its soft and hard pixel limits Pillow also warns; our limit decides.)
        img = Image.open(fh if owned else _Borrowed(fh), formats=_PILLOW_FORMATS)
    except Image.DecompressionBombError as exc:
        raise MediaError(f"{fmt_hint} image is too large to process safely: {exc}") from None
    except UnidentifiedImageError:
        raise MediaError(f"corrupt {fmt_hint}: its header cannot be read") from None
    except Exception as exc:
        # Pillow's parsers raise whatever a malformed file leads them to (OSError,
        # SyntaxError, struct.error, IndexError, KeyError...): all mean a broken file
        raise MediaError(f"corrupt {fmt_hint}: {_reason(exc)}") from None
    try:
        width, height = img.size
        if width <= 0 or height <= 0:
            raise MediaError(f"corrupt {fmt_hint}: it claims a size of {width}x{height}")
        if width * height > MAX_IMAGE_PIXELS:
            raise MediaError(
                f"{img.format} image of {width}x{height} pixels "
                f"({width * height / 1e6:.0f} megapixels) is over the "
                f"{MAX_IMAGE_PIXELS / 1e6:.0f} megapixel limit (decompression bomb guard)"
            )
        fmt = img.format or fmt_hint
        try:
            # Pillow counts GIF/APNG/WebP frames from headers; never decodes pixels here.
            # (Asked only of formats that can animate: a missing attribute is slow.)
            frames = int(getattr(img, "n_frames", 1) or 1) if fmt in _ANIMATABLE else 1
        except Exception as exc:  # as for open: a malformed file, whatever it raises
            raise MediaError(f"corrupt {fmt}: frames cannot be read ({_reason(exc)})"
                             ) from None
        orientation: Any = 1
        # Only when the header carried EXIF: without it, Pillow's PNG getexif() decodes
        # the whole image looking for a late eXIf chunk.
        if "exif" in img.info or fmt == "TIFF":
            try:
                orientation = img.getexif().get(_EXIF_ORIENTATION, 1)
            except Exception:  # a broken EXIF block does not make a broken image
                orientation = 1
        if not isinstance(orientation, int):
            orientation = 1
        rotation = _ORIENTATION_ROTATION.get(orientation, 0)
        if orientation in (5, 6, 7, 8):
            width, height = height, width
        return MediaInfo(
            kind=GIF if fmt == "GIF" else IMAGE,
            format=fmt,
            mime_type=Image.MIME.get(fmt, f"image/{fmt.lower()}"),
            size=size,
            width=width,
            height=height,
            rotation=rotation,
            frames=frames,
            animated=frames > 1,
            mode=img.mode,
        )
    finally:
        img.close()  # closes only the _Borrowed view: the stream stays the caller's


def _reason(exc: Exception) -> str:
    """What Pillow said, or the kind of error when it said nothing useful."""
    text = str(exc).strip()
    return text if text and not isinstance(exc, (KeyError, IndexError)) \
        else f"{type(exc).__name__} while reading it"


class _Borrowed:
    """A view of a stream whose ``close`` does nothing: Pillow closes what it opens,
    and a caller's stream must stay open after :func:`inspect`."""

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        # bound once: Pillow makes dozens of small reads per header
        self.read = fh.read
        self.seek = fh.seek
        self.tell = fh.tell

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fh, name)

    def close(self) -> None:
        pass


def _image_name(head: bytes) -> str:
    if head.startswith(b"\xff\xd8"):
        return "JPEG"
    if head.startswith(b"\x89PNG"):
        return "PNG"
    if head.startswith(b"GIF"):
        return "GIF"
    if head.startswith(b"RIFF"):
        return "WebP"
    if head.startswith(b"BM"):
        return "BMP"
    return "TIFF"


def _check_image_end(fh: BinaryIO, head: bytes, size: int, fmt: str) -> None:
    """Refuse files cut short: each format has an end marker we can check by seeking."""
    if fmt == "JPEG":
        # Entropy-coded data stuffs every 0xFF, so FF D9 near the end can only be EOI.
        # Some cameras append a few bytes after it; look at the last 4 KB.
        tail = _tail(fh, size, 2)
        if tail != b"\xff\xd9" and b"\xff\xd9" not in _tail(fh, size, 4096):
            raise MediaError("truncated JPEG: the file ends before its end-of-image marker")
    elif fmt == "PNG":
        if b"IEND" not in _tail(fh, size, 64):
            raise MediaError("truncated PNG: the file ends before its IEND chunk")
    elif fmt == "GIF":
        if not _tail(fh, size, 16).rstrip(b"\x00").endswith(b";"):
            raise MediaError("truncated GIF: the file ends before its trailer")
    elif fmt == "WebP":
        declared = int.from_bytes(head[4:8], "little") + 8
        if declared > size:
            raise MediaError(f"truncated WebP: its header declares {declared} bytes, "
                             f"the file has {size}")


def _tail(fh: BinaryIO, size: int, n: int) -> bytes:
    """The last ``n`` bytes. A positional read where the file has a descriptor: seeking
    a buffered file to its end throws away the buffer Pillow is about to read from."""
    offset = max(0, size - n)
    try:
        fd = fh.fileno()
    except (AttributeError, OSError, ValueError):
        fd = -1
    if fd >= 0 and hasattr(os, "pread"):
        return os.pread(fd, n, offset)
    fh.seek(offset)
    data = fh.read(n)
    fh.seek(0)
    return data


# --- audio / video -------------------------------------------------------------------

_VIDEO_CODECS = {
    "avc": "h264", "hevc": "hevc", "vp8": "vp8", "vp9": "vp9", "av1": "av1",
    "mpeg-4 visual": "mpeg4", "prores": "prores", "h.263": "h263", "theora": "theora",
    "mpeg video": "mpeg2", "vc-1": "vc1", "jpeg": "mjpeg", "ffv1": "ffv1",
}
_AUDIO_CODECS = {
    "aac": "aac", "opus": "opus", "vorbis": "vorbis", "ac-3": "ac3", "e-ac-3": "eac3",
    "flac": "flac", "pcm": "pcm", "alac": "alac", "amr": "amr", "dts": "dts",
}
_CONTAINER_MIME = {
    "MPEG-4": "video/mp4", "QuickTime": "video/quicktime", "WebM": "video/webm",
    "Matroska": "video/x-matroska", "AVI": "video/x-msvideo", "Flash Video": "video/x-flv",
    "MPEG-TS": "video/mp2t", "MPEG-PS": "video/mpeg", "3GPP": "video/3gpp",
}


def _iso_name(head: bytes) -> str:
    brand = head[8:12]
    if brand == b"qt  " or head[4:8] in _ISO_TOP_BOXES:
        return "QuickTime"
    if brand.startswith(b"3g"):
        return "3GPP"
    return "MP4"


def _check_iso_boxes(fh: BinaryIO, size: int, name: str) -> None:
    """Walk the top-level boxes of an MP4/QuickTime file (a few seeks, no reads of
    payload) and refuse one whose boxes run past the end of the file."""
    offset = 0
    seen: list[str] = []
    for _ in range(10_000):  # a real file has a handful; bound a crafted one
        if offset >= size:
            break
        fh.seek(offset)
        header = fh.read(16)
        if len(header) < 8:
            raise MediaError(f"truncated {name}: {size - offset} stray bytes at the end")
        box_size = int.from_bytes(header[:4], "big")
        box_type = header[4:8].decode("latin-1")
        if box_size == 1:
            if len(header) < 16:
                raise MediaError(f"truncated {name}: the {box_type!r} box header is cut")
            box_size = int.from_bytes(header[8:16], "big")
        elif box_size == 0:
            box_size = size - offset  # "to the end of the file"
        if box_size < 8:
            raise MediaError(f"corrupt {name}: box {box_type!r} at byte {offset} has "
                             f"an impossible size {box_size}")
        seen.append(box_type)
        if offset + box_size > size:
            raise MediaError(f"truncated {name}: the {box_type!r} box needs "
                             f"{offset + box_size} bytes, the file has {size}")
        offset += box_size
    fh.seek(0)
    if "moov" not in seen:
        raise MediaError(f"corrupt {name}: it has no 'moov' box (track list); "
                         "it may be an unfinished recording")


def _inspect_av(fh: BinaryIO, path: str | None, size: int, head: bytes) -> MediaInfo:
    from pymediainfo import MediaInfo as Parsed

    try:
        # A path lets libmediainfo read the file itself (fast, and no Python buffers).
        parsed = Parsed.parse(path if path else fh)
    except Exception as exc:  # libmediainfo errors have no common type
        raise MediaError(f"the video cannot be read: {exc}") from None
    fh.seek(0)
    general = parsed.general_tracks[0] if parsed.general_tracks else None
    container = _container_name(general, head)
    videos = parsed.video_tracks
    audios = parsed.audio_tracks
    shown = "MP4" if container == "MPEG-4" else container
    if general is not None and str(getattr(general, "istruncated", "")).lower() == "yes":
        raise MediaError(f"truncated {shown}: the file ends before its media data does")
    if not videos:
        if audios:
            codec = _codec(audios[0].format, _AUDIO_CODECS, audios[0])
            raise MediaError(f"{shown} has no video track (audio only: {codec})")
        if parsed.image_tracks:
            raise MediaError(f"unsupported image in a {shown} container")
        raise MediaError(f"{shown} has no video track: no playable track was found")
    video = videos[0]
    audio = audios[0] if audios else None
    rotation = round(_float(getattr(video, "rotation", None)) or 0) % 360
    width = _int(video.width)
    height = _int(video.height)
    if rotation in (90, 270) and width and height:
        width, height = height, width
    duration_ms = _float(getattr(general, "duration", None)) or _float(video.duration)
    frame_rate = _float(video.frame_rate) or _float(getattr(general, "frame_rate", None))
    bitrate = _int(getattr(general, "overall_bit_rate", None)) or _int(video.bit_rate)
    frames = _int(getattr(video, "frame_count", None))
    return MediaInfo(
        kind=VIDEO,
        format=container,
        mime_type=_CONTAINER_MIME.get(container, "video/octet-stream"),
        size=size,
        width=width,
        height=height,
        rotation=rotation,
        frames=frames or 1,
        duration_s=round(duration_ms / 1000, 3) if duration_ms else None,
        frame_rate=round(frame_rate, 3) if frame_rate else None,
        video_codec=_codec(video.format, _VIDEO_CODECS, video),
        audio_codec=_codec(audio.format, _AUDIO_CODECS, audio) if audio else None,
        audio_sample_rate=_int(audio.sampling_rate) if audio else None,
        bitrate=bitrate,
        has_audio=audio is not None,
        animated=False,
    )


def _container_name(general: Any, head: bytes) -> str:
    fmt = str(getattr(general, "format", "") or "")
    profile = str(getattr(general, "format_profile", "") or "")
    if fmt == "MPEG-4":
        if profile == "QuickTime" or head[8:12] == b"qt  ":
            return "QuickTime"
        if profile.startswith("3GPP") or head[8:11] == b"3gp":
            return "3GPP"
        return "MPEG-4"
    if fmt:
        return fmt
    return _iso_name(head) if head[4:8] == b"ftyp" else "video"


def _codec(fmt: Any, table: dict[str, str], track: Any) -> str:
    name = str(fmt or "unknown")
    key = name.lower()
    if key == "mpeg audio":
        layer = str(getattr(track, "format_profile", "") or "")
        return {"Layer 3": "mp3", "Layer 2": "mp2"}.get(layer, "mp3")
    return table.get(key, key.replace(" ", "").replace("-", ""))


def _float(value: Any) -> float | None:
    """A number from a mediainfo field (``"24.000"``, ``30000/1001``, ``1000``)."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    try:
        if "/" in text:
            num, _, den = text.partition("/")
            return float(num) / float(den) if float(den) else None
        return float(text)
    except ValueError:
        return None


def _int(value: Any) -> int | None:
    number = _float(value)
    return int(number) if number is not None else None
