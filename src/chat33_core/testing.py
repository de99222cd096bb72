"""Test helpers for chat33 and for platform plugin authors.

* media makers that write real files (:func:`make_image`, :func:`make_video`);
* :func:`serve_directory` — serve files over HTTP on loopback, as our media server does;
* :func:`publish_context` — a ready :class:`~chat33_core.platforms.PublishContext`;
* :func:`validate_draft` — what validation says of a draft for one platform: its
  declared options checked by the core, then its ``validate``;
* :class:`PlatformContract` — the checks every platform plugin must pass. Subclass it
  in your plugin's tests and set ``platform_class``.

Video making needs the ``av`` package (in the ``test`` extra).
"""

from __future__ import annotations

import fractions
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import attrs
import httpx

from . import options
from .config import Settings
from .errors import Issue, NotSupported
from .media import MediaInfo
from .models import Account, Credentials, MediaType, new_id, utcnow
from .platforms import (
    Capabilities,
    DeleteContext,
    LimitReport,
    Limits,
    MediaFile,
    MemoryCheckpoints,
    PlatformBase,
    PostDraft,
    PublishContext,
    PublishItem,
)
from .sandbox import serve

# --- media makers ----------------------------------------------------------------------


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


# --- servers -------------------------------------------------------------------------


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


@contextmanager
def sandbox_env(platform: PlatformBase, extra_env: Mapping[str, str] | None = None,
                ) -> Iterator[tuple[str, Settings]]:
    """Serve ``platform``'s sandbox on loopback; yields its base URL and Settings that
    point the platform at it (``CHAT33_<NAME>_API_BASE``)."""
    app = platform.sandbox()
    if app is None:
        raise NotSupported(f"{platform.name} has no sandbox")
    with serve(app) as url:
        env = dict(platform.settings.env)
        env[f"CHAT33_{platform.name.upper()}_API_BASE"] = url
        env.setdefault("CHAT33_POLL_INTERVAL_S", "0.01")
        env.update(extra_env or {})
        yield url, Settings.from_env(env)


def publish_context(
    platform: PlatformBase, *, settings: Settings, items: Sequence[PublishItem] | None = None,
    text: str | None = "hello from chat33", media: Sequence[MediaFile] = (),
    media_type: MediaType | None = None, platform_config: Mapping[str, Any] | None = None,
    account: Account | None = None, credentials: Credentials | None = None,
    checkpoints: MemoryCheckpoints | None = None, http: httpx.Client | None = None,
    events: list[tuple[str, str, dict[str, Any]]] | None = None,
    limits: LimitReport | None = None,
) -> PublishContext:
    """A PublishContext for tests: a fake-free one, with real HTTP to ``settings``' base."""
    account = account or Account(
        id=new_id("chan"), org_id="org_test", platform=platform.name, name="Test channel",
        username="chat33test", external_id="1784140000000000",
    )
    credentials = credentials or Credentials(
        access_token="sandbox-token", refresh_token="sandbox-refresh",
        expires_at=utcnow() + timedelta(days=30), issued_at=utcnow() - timedelta(days=2),
    )
    post_id = new_id("post")
    items = list(items or [PublishItem(post_id=post_id, text=text, media=list(media))])
    sink = events if events is not None else []

    def log(event: str, message: str, **data: Any) -> None:
        sink.append((event, message, data))

    ctx = PublishContext(
        post_id=items[0].post_id, account=account, credentials=credentials, items=items,
        media_type=media_type, platform_config=dict(platform_config or {}),
        http=http or httpx.Client(timeout=30), settings=settings,
        checkpoints=checkpoints or MemoryCheckpoints(), log=log, sleep=lambda s: None,
    )
    if limits is not None:
        ctx.limits = limits
    return ctx


def validate_draft(platform: PlatformBase, draft: PostDraft, account: Account) -> list[Issue]:
    """The issues the core's validation finds in ``draft`` for ``platform``: the
    declared options (``platform.options``) checked first, then ``platform.validate`` on
    a draft holding only the options that passed, as in ``POST /posts``."""
    label = platform.display_name or platform.name
    path = f"platformConfig.{platform.name}"
    raw = draft.platform_config.get(platform.name)
    if raw is None:
        clean: dict[str, Any] = {}
        issues = options.missing(platform.options, None, path, label=label)
    else:
        clean, issues = options.check(platform.options, raw, path, label=label)
    seen = {**draft.platform_config, platform.name: clean}
    thread = [attrs.evolve(item, platform_config=seen) for item in draft.thread]
    return issues + platform.validate(
        attrs.evolve(draft, platform_config=seen, thread=thread), account)


def media_file(path: Path, base_url: str, info: MediaInfo | None = None) -> MediaFile:
    """A MediaFile for ``path`` served under ``base_url`` (see :func:`serve_directory`)."""
    from . import media as media_mod

    inspect = getattr(media_mod, "inspect")  # noqa: B009 - resolved late, media may grow
    return MediaFile(path=path, info=info or inspect(path), url=f"{base_url}/{path.name}",
                     name=path.name)


# --- the contract every platform passes ---------------------------------------------------


class PlatformContract:
    """Checks every platform plugin must pass. Subclass in a plugin's tests::

        class TestContract(PlatformContract):
            platform_class = InstagramPlatform
    """

    platform_class: ClassVar[type[PlatformBase]]

    def make(self) -> PlatformBase:
        return self.platform_class(Settings.from_env({}))

    def test_name_is_a_lowercase_identifier(self) -> None:
        name = self.platform_class.name
        assert name and name == name.lower() and name.replace("_", "").isalnum()

    def test_entry_point_is_discovered_from_installed_metadata(self) -> None:
        from importlib.metadata import entry_points

        names = {ep.name: ep for ep in entry_points(group="chat33.platforms")}
        assert self.platform_class.name in names
        from .plugins import PluginHost

        host = PluginHost(Settings.from_env({}))
        host.load_entry_points({"CHAT33_LOAD_PLUGINS": self.platform_class.name})
        assert type(host.platform(self.platform_class.name)) is self.platform_class

    def test_declares_capabilities_and_limits(self) -> None:
        assert isinstance(self.platform_class.capabilities, Capabilities)
        assert isinstance(self.platform_class.limits, Limits)
        assert self.platform_class.limits.caption_length > 0
        assert self.platform_class.default_api_base.startswith("https://")

    def test_options_are_declared_with_descriptions(self) -> None:
        """Each option is an Option with a description (the API document and the README
        show it) and its JSON Schema can be built."""
        declared = self.platform_class.options
        assert isinstance(declared, tuple)
        for option in declared:
            assert isinstance(option, options.Option), option
            assert option.description.strip(), f"{option.name} has no description"
        schema = options.object_schema(declared)
        assert set(schema["properties"]) == {o.name for o in declared}

    def test_api_base_follows_environment(self) -> None:
        env = {f"CHAT33_{self.platform_class.name.upper()}_API_BASE": "http://127.0.0.1:9/"}
        assert self.platform_class(Settings.from_env(env)).api_base() == "http://127.0.0.1:9"

    def test_validate_returns_issues_not_exceptions(self) -> None:
        platform = self.make()
        draft = PostDraft(text="x" * 100_000, media_type=None, media=(), platform_config={})
        account = Account(id="chan_1", org_id="org_1", platform=platform.name, name="c")
        issues = platform.validate(draft, account)
        assert isinstance(issues, list) and all(isinstance(i, Issue) for i in issues)
        assert any(i.severity == "error" for i in issues), "100,000 characters must be refused"

    def test_sandbox_is_a_wsgi_app_with_the_control_api(self) -> None:
        platform = self.make()
        app = platform.sandbox()
        assert app is not None
        with serve(app) as url:
            state = httpx.get(f"{url}/_sandbox/state", timeout=5)
            assert state.status_code == 200 and isinstance(state.json(), dict)
            assert httpx.post(f"{url}/_sandbox/reset", timeout=5).status_code == 200

    def test_delete_matches_declared_capability(self) -> None:
        platform = self.make()
        if platform.capabilities.delete:
            assert type(platform).delete is not PlatformBase.delete
        else:
            ctx = DeleteContext(
                account=Account(id="c", org_id="o", platform=platform.name, name="c"),
                credentials=Credentials(access_token="t"), http=httpx.Client(),
                settings=platform.settings, external_ids=["1"],
            )
            try:
                platform.delete(ctx)
            except NotSupported as exc:
                assert platform.name in str(exc).lower() or exc.message
            else:
                raise AssertionError("delete must raise NotSupported when not supported")
