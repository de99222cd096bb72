"""Test helpers for chat33 and for platform plugin authors.

* media makers that write real files (:func:`make_image`, :func:`make_video`);
* :func:`serve_directory` — serve files over HTTP on loopback, as our media server does;
* :func:`publish_context` — a ready :class:`~chat33_core.platforms.PublishContext`;
* :func:`validate_draft` — what validation says of a draft for one platform: its
  declared options checked by the core, then its ``validate``;
* :class:`SandboxClient` — a served sandbox's control calls and publish contexts;
* :class:`CrashingCheckpoints`, :class:`WorkerCrash`, :class:`RecordingSleep` — a worker
  that dies at an exact step, and a ``ctx.sleep`` that records its waits;
* :func:`worker_world` — chat33's own worker publishing to a plugin's sandbox;
* :class:`PlatformContract` — the checks every platform plugin must pass. Subclass it
  in your plugin's tests and set ``platform_class``.

Video making needs the ``av`` package (in the ``test`` extra).
"""

from __future__ import annotations

import fractions
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

import attrs
import httpx

from . import options
from .config import Settings
from .errors import Issue, NotSupported
from .media import MediaInfo
from .models import Account, Credentials, MediaType, Post, new_id, utcnow
from .oauth import (
    AuthorizationRequest,
    OAuthClient,
    OAuthContext,
    new_code_verifier,
    new_state,
)
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
from .sandbox_oauth import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET

if TYPE_CHECKING:
    from .service import Chat33

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


def thread_items(texts: Sequence[str | None],
                 media: Sequence[Sequence[MediaFile]] = ()) -> list[PublishItem]:
    """The items of a post (one text) or a thread (several), ``media[i]`` on item ``i``."""
    head = new_id("post")
    return [PublishItem(post_id=head if i == 0 else f"{head}_{i}", text=text,
                        media=list(media[i]) if i < len(media) else [], position=i)
            for i, text in enumerate(texts)]


class SandboxClient:
    """A platform's sandbox served on loopback (see :func:`sandbox_env`), driven over HTTP:
    its control calls (``/_sandbox/...``) and publish contexts against it. Subclass it in a
    plugin's tests to add that sandbox's own calls, and set ``access_token`` (what
    :meth:`context` logs in with unless given credentials) or override
    :meth:`credentials`."""

    access_token = "sandbox-token"

    def __init__(self, platform: PlatformBase, url: str, settings: Settings,
                 http: httpx.Client, account: Callable[[], Account] | None = None) -> None:
        self.platform = platform
        self.url = url
        self.settings = settings
        self.http = http
        self.account = account

    @classmethod
    @contextmanager
    def serving(cls, platform_class: type[PlatformBase], extra_env: Mapping[str, str] | None
                = None, **kwargs: Any) -> Iterator[Any]:
        """Serve ``platform_class``'s sandbox for as long as the block runs (one per test
        session, say: :meth:`reset` empties it between tests)."""
        with sandbox_env(platform_class(Settings.from_env({})), extra_env) as (url, settings), \
                httpx.Client(timeout=60) as http:  # a bound, not a speed: loaded CI runs
            yield cls(platform_class(settings), url, settings, http, **kwargs)

    def control(self, path: str, payload: Any = None) -> Any:
        """POST to the sandbox's control API (``/_sandbox/<path>``); its JSON answer."""
        response = self.http.post(f"{self.url}/_sandbox/{path}", json=payload)
        response.raise_for_status()
        return response.json() if response.content else None

    def state(self) -> dict[str, Any]:
        return self.http.get(f"{self.url}/_sandbox/state").json()  # type: ignore[no-any-return]

    def live(self, collection: str) -> list[dict[str, Any]]:
        """The items of ``state()[collection]`` not deleted."""
        return [x for x in self.state()[collection] if not x.get("deleted")]

    def reset(self) -> None:
        self.control("reset")

    def fault(self, **spec: Any) -> None:
        self.control("faults", spec)

    def config(self, **changes: Any) -> None:
        self.control("config", changes)

    def advance(self, seconds: float) -> None:
        """Move the sandbox's clock forward (rate-limit windows, token expiry)."""
        self.control("clock", {"advance": seconds})

    def credentials(self, account: Account) -> Credentials | None:
        """The credentials of :meth:`context` (``None``: :func:`publish_context`'s)."""
        return Credentials(access_token=self.access_token)

    def context(self, texts: Sequence[str | None] = ("hello from chat33",), *,
                media: Sequence[Sequence[MediaFile]] = (), **kwargs: Any) -> PublishContext:
        """A publish context for a post (one text) or a thread (several)."""
        if self.account is not None:
            kwargs.setdefault("account", self.account())
        kwargs.setdefault("http", self.http)
        if "credentials" not in kwargs:
            kwargs["credentials"] = self.credentials(kwargs["account"])
        return publish_context(self.platform, settings=self.settings,
                               items=thread_items(texts, media), **kwargs)


class RecordingSleep:
    """``ctx.sleep`` that records the waits instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


class WorkerCrash(BaseException):
    """The worker process dying (not an error the plugin could catch)."""


class CrashingCheckpoints(MemoryCheckpoints):
    """Checkpoints that act once, at the first save where ``when(data)`` holds: kill the
    'worker' (raise :class:`WorkerCrash`) or, given ``hook``, run it instead (inject a
    sandbox fault at that exact moment, say). With ``persist`` (the default) that save is
    kept, as the database keeps it; without, the worker dies before it reached the
    database. ``saves`` lists every state saved."""

    def __init__(self, when: Callable[[dict[str, Any]], bool],
                 hook: Callable[[], None] | None = None, *, persist: bool = True) -> None:
        super().__init__()
        self.when = when
        self.hook = hook
        self.persist = persist
        self.armed = True
        self.saves: list[dict[str, Any]] = []

    def save(self, data: Mapping[str, Any]) -> None:
        if self.armed and self.when(dict(data)):
            self.armed = False
            if self.persist:
                self._keep(data)
            if self.hook is None:
                raise WorkerCrash("the worker died")
            self.hook()
            if not self.persist:
                self._keep(data)
            return
        self._keep(data)

    def _keep(self, data: Mapping[str, Any]) -> None:
        super().save(data)
        self.saves.append(dict(data))


@attrs.define
class WorkerWorld:
    """chat33's own worker publishing to one plugin's sandbox: the core (the plugin
    registered, pointed at the served sandbox), an organization's user and account."""

    core: Chat33
    sandbox: Any
    url: str
    account: Account
    user_id: str

    def queue(self, texts: Sequence[str]) -> list[Post]:
        """A QUEUED post, or a thread published with its head."""
        from .models import PostStatus

        head = new_id("post")
        now = utcnow()
        posts = [Post(id=head if i == 0 else new_id("post"), org_id=self.account.org_id,
                      account_id=self.account.id, platform=self.account.platform,
                      account_name=self.account.name, created_by=self.user_id, text=text,
                      status=PostStatus.QUEUED, thread_id=head if len(texts) > 1 else None,
                      thread_position=i, publish_with_head=i > 0, created_at=now,
                      updated_at=now)
                 for i, text in enumerate(texts)]
        return self.core.store.add_posts(posts)

    def run(self) -> None:
        """One pass of the worker (``chat33 worker --once``), which must exit 0."""
        from .scheduling import Worker

        assert Worker(self.core, once=True, concurrency=1, grace_s=5.0).run() == 0

    def live(self, collection: str) -> list[dict[str, Any]]:
        """The items of the sandbox's ``state()[collection]`` not deleted."""
        return [x for x in self.sandbox.state()[collection] if not x.get("deleted")]


@contextmanager
def worker_world(plugin: ModuleType, sandbox: Any, settings: Callable[..., Settings], *,
                 name: str, username: str, external_id: str, credentials: Credentials,
                 metadata: Mapping[str, Any] | None = None) -> Iterator[WorkerWorld]:
    """Serve ``sandbox`` (the plugin's sandbox app) and make a :class:`WorkerWorld` on it:
    ``settings(**env)`` gives the Settings (the database, ...) with the plugin's
    ``CHAT33_<NAME>_API_BASE`` and fast retries added; the account is what ``chat33
    accounts add --platform NAME --username ... --external-id ... --token ...`` adds."""
    from .models import Organization, User
    from .service import Chat33

    platform = plugin.__name__.removeprefix("chat33_")
    with serve(sandbox) as url:
        core = Chat33(settings(**{f"CHAT33_{platform.upper()}_API_BASE": url,
                                  "CHAT33_RETRY_BASE_S": "0.01"}), load_plugins=False)
        core.host.register(plugin, name=platform)
        try:
            core.store.migrate()
            org = core.store.add_org(Organization.new("Acme"))
            user = core.store.add_user(User(id=new_id("user"), org_id=org.id,
                                            email=f"{platform}@example.com",
                                            password_hash="-"))
            account = core.add_account(org.id, platform, name, username=username,
                                       external_id=external_id, credentials=credentials,
                                       metadata=metadata)
            yield WorkerWorld(core, sandbox, url, account, user.id)
        finally:
            core.store.dispose()


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

    def test_connects_an_account_by_oauth_against_its_sandbox(self) -> None:
        """A plugin that connects by OAuth does it whole against its own sandbox: the
        authorization URL on ``CHAT33_<NAME>_API_BASE`` with the state and redirect URI,
        the code back with the state, the exchange, the long-lived grant, and targets
        that can each publish (with credentials of their own or the grant's). Without
        OAuth, the hooks say ``NotSupported``."""
        platform = self.make()
        if not platform.supports_connect:
            with httpx.Client() as http:
                request = authorization_request(oauth_context(platform, http))
                try:
                    platform.authorization_url(request)
                except NotSupported:
                    return
            raise AssertionError("authorization_url must raise NotSupported without OAuth")
        for hook in ("exchange_code", "list_targets"):
            assert (getattr(self.platform_class, hook)
                    is not getattr(PlatformBase, hook)), f"{hook} missing"
        app = platform.sandbox()
        assert app is not None
        with serve(app) as url, httpx.Client(timeout=10) as http:
            env = {f"CHAT33_{platform.name.upper()}_API_BASE": url}
            platform = self.platform_class(Settings.from_env(env))
            ctx = oauth_context(platform, http)
            request = authorization_request(ctx)
            authorize = platform.authorization_url(request)
            assert authorize.startswith(url + "/"), authorize
            assert request.state in authorize and "redirect_uri=" in authorize
            back = follow_authorization(http, authorize)
            assert back.get("state") == request.state and back.get("code"), back
            grant = platform.long_lived(platform.exchange_code(back["code"], request, ctx),
                                        ctx)
            targets = platform.list_targets(grant, ctx)
            assert targets, "the sandbox's default user must have something to connect"
            for target in targets:
                assert target.external_id and target.name
                # a target without credentials of its own publishes with the grant's
                assert (target.credentials or grant.credentials).access_token


# --- connecting accounts (OAuth 2) ------------------------------------------------------

#: the redirect URI the OAuth tests use: ``CHAT33_PUBLIC_BASE_URL`` of a server that is
#: never called (the test reads the redirect instead of following it)
TEST_PUBLIC_BASE = "http://127.0.0.1:9"


def oauth_context(platform: PlatformBase, http: httpx.Client, *,
                  client_secret: str = SANDBOX_CLIENT_SECRET,
                  redirect_uri: str | None = None) -> OAuthContext:
    """An ``OAuthContext`` for ``platform`` with the sandbox's registered app and the
    redirect URI ``{TEST_PUBLIC_BASE}/api/v1/oauth/<name>/callback`` (either can be
    replaced, to see the platform refuse them)."""
    client = OAuthClient(SANDBOX_CLIENT_ID, client_secret, redirect_uri or
                         f"{TEST_PUBLIC_BASE}/api/v1/oauth/{platform.name}/callback")
    return OAuthContext(client=client, http=http, settings=platform.settings)


def authorization_request(ctx: OAuthContext,
                          force_consent: bool = False) -> AuthorizationRequest:
    """A fresh ``AuthorizationRequest`` (new state and PKCE verifier) for ``ctx``."""
    return AuthorizationRequest(client=ctx.client, state=new_state(),
                                code_verifier=new_code_verifier(),
                                force_consent=force_consent)


def follow_authorization(http: httpx.Client, url: str) -> dict[str, str]:
    """Open an authorization URL as a browser would and read where the platform sends it
    back: the callback's query parameters (``code``, ``state``, ``error``...), plus
    ``"#"``, the fragment, when there is one. Anything but a redirect is an
    ``AssertionError`` carrying the page."""
    response = http.get(url, follow_redirects=False)
    assert response.status_code in (302, 303), (response.status_code, response.text[:500])
    location = urlsplit(response.headers["location"])
    params = dict(parse_qsl(location.query, keep_blank_values=True))
    if location.fragment:
        params["#"] = location.fragment
    return params
