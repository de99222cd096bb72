"""What chat33 knows about a media file, and how it finds out.

Platform rules judge these inspected facts, never file names or Content-Type headers.
"""

from __future__ import annotations

from typing import Any

import attrs
from attrs import frozen

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

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MediaInfo:
        names = {a.name for a in attrs.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
