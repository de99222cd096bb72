"""Thumbnails of the media library's images, made once with Pillow and kept on disk.

A thumbnail is named after the content hash of its image, so it never goes stale and
organizations that uploaded the same bytes share it. It is written beside the media
files (``<CHAT33_MEDIA_DIR>/.thumbs``), through a temporary file renamed into place.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from PIL import Image, ImageOps

from chat33_core.errors import NotFound
from chat33_core.models import MediaAsset

#: the longest side of a thumbnail, in pixels (shown at 160 CSS px; sharp at 2x)
SIZE = 320


def key(asset: MediaAsset) -> str:
    """What a thumbnail is named after: the content hash (the media id for an asset
    kept before direct uploads were hashed)."""
    return asset.sha256 or asset.id


def thumbnail(media_root: Path, asset: MediaAsset, source: Path) -> Path:
    """The path of ``asset``'s thumbnail (a JPEG), made from ``source`` when missing.
    NotFound for media that is not an image, or whose file is gone."""
    if asset.kind != "image":
        raise NotFound(f"media {asset.id} has no thumbnail (it is a {asset.kind})")
    folder = media_root / ".thumbs"
    path = folder / f"{key(asset)}-{SIZE}.jpg"
    if path.is_file():
        return path
    if not source.is_file():
        raise NotFound(f"the file of media {asset.id} is gone")
    folder.mkdir(parents=True, exist_ok=True)
    with Image.open(source) as image:
        image.seek(0)  # the first frame of an animation
        small = ImageOps.exif_transpose(image)
        small.thumbnail((SIZE, SIZE))
        if small.mode != "RGB":
            background = Image.new("RGB", small.size, "white")
            rgba = small.convert("RGBA")
            background.paste(rgba, mask=rgba.getchannel("A"))
            small = background
        fd, temp = tempfile.mkstemp(dir=folder, suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                small.save(out, "JPEG", quality=82)
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
    return path


__all__ = ["SIZE", "thumbnail"]
