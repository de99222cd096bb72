"""The plugin host: discovery, isolation, clashes, and a third-party platform."""

from __future__ import annotations

import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from werkzeug.wrappers import Request, Response

from chat33_core import hookspecs
from chat33_core.config import Settings
from chat33_core.errors import Issue, NotFound, PermanentError, PluginError
from chat33_core.hookspecs import hookimpl
from chat33_core.options import Option
from chat33_core.platforms import (
    Capabilities,
    Limits,
    PlatformBase,
    PostDraft,
    PublishContext,
    PublishResult,
    Receipt,
)
from chat33_core.plugins import PluginHost
from chat33_core.sandbox import SandboxApp, json_response

ROOT = Path(__file__).resolve().parents[2]


class MastodonSandbox(SandboxApp):
    """Just enough of Mastodon's statuses API for a post to land somewhere real."""

    def __init__(self) -> None:
        super().__init__()
        self.statuses: list[dict[str, str]] = []
        self.route("/api/v1/statuses", self.post_status, methods=["POST"])

    def post_status(self, request: Request) -> Response:
        if request.headers.get("Authorization") != "Bearer mastodon-token":
            return json_response({"error": "The access token is invalid"}, 401)
        body = request.get_json(force=True)
        with self.lock:
            status = {"id": str(100 + len(self.statuses)), "content": body["status"],
                      "in_reply_to_id": body.get("in_reply_to_id")}
            self.statuses.append(status)
        return json_response({**status, "url": f"https://mastodon.example/@me/{status['id']}"})

    def state(self) -> dict[str, Any]:
        return {"statuses": list(self.statuses)}


class MastodonPlatform(PlatformBase):
    """A platform that is not one of ours, as a third party would ship it."""

    name = "tootsuite"
    display_name = "Mastodon"
    capabilities = Capabilities(threads=True, delete=True)
    limits = Limits(caption_length=500, max_images=4)
    options = (Option("visibility", "string", "Who sees the status",
                      choices=("public", "unlisted", "private", "direct"), default="public"),)
    default_api_base = "https://mastodon.example"

    def validate(self, draft: PostDraft, account: object) -> list[Issue]:
        text = draft.text or ""
        if len(text) > self.limits.caption_length:
            return [Issue(f"{draft.path}text", f"{len(text)} characters is over the "
                          f"{self.limits.caption_length}-character limit")]
        return []

    def publish(self, ctx: PublishContext) -> PublishResult:
        receipts = []
        reply_to = None
        for item in ctx.items:
            r = ctx.http.post(f"{self.api_base()}/api/v1/statuses",
                              headers={"Authorization": f"Bearer {ctx.credentials.access_token}"},
                              json={"status": item.text, "in_reply_to_id": reply_to})
            if r.status_code == 401:
                raise PermanentError(r.json()["error"])
            data = r.json()
            reply_to = data["id"]
            receipts.append(Receipt(external_id=data["id"], external_url=data["url"],
                                    post_id=item.post_id))
        return PublishResult(receipts)

    def sandbox(self) -> MastodonSandbox:
        return MastodonSandbox()


def third_party_plugin(*platforms: type[PlatformBase]) -> types.SimpleNamespace:
    @hookimpl
    def chat33_register_platforms(register: Callable[[type[PlatformBase]], None]) -> None:
        for cls in platforms:
            register(cls)

    return types.SimpleNamespace(chat33_register_platforms=chat33_register_platforms)


def test_installed_platforms_are_discovered_from_entry_points() -> None:
    host = PluginHost(Settings.from_env({}))
    host.load_entry_points({})
    assert {"instagram", "facebook", "tiktok", "youtube", "x"} <= set(host.platforms)
    for name, platform in host.platforms.items():
        assert platform.name == name


def test_load_and_disable_select_entry_points() -> None:
    host = PluginHost(Settings.from_env({}))
    host.load_entry_points({"CHAT33_LOAD_PLUGINS": "x,youtube",
                            "CHAT33_DISABLED_PLUGINS": "youtube"})
    assert set(host.platforms) == {"x"}


def test_a_third_party_platform_registers_without_core_changes() -> None:
    host = PluginHost(Settings.from_env({}))
    host.register(third_party_plugin(MastodonPlatform), name="tootsuite")
    platform = host.platform("tootsuite")
    assert isinstance(platform, MastodonPlatform)
    draft = PostDraft(text="x" * 501, media_type=None, media=(), platform_config={})
    assert platform.validate(draft, None)[0].path == "text"


def test_a_third_party_platform_publishes_a_thread_through_the_core(
        tmp_path: Path, settings_for) -> None:  # type: ignore[no-untyped-def]
    from chat33_core.models import Credentials, PostRequest, PostStatus, ThreadItem
    from chat33_core.sandbox import serve
    from chat33_core.scheduling import Worker
    from chat33_core.service import Chat33, Principal

    class Observer:
        def __init__(self) -> None:
            self.published: list[str] = []
            self.failed: list[tuple[str, str | None]] = []

        @hookimpl
        def chat33_post_published(self, post: Any) -> None:
            self.published.append(post.id)

        @hookimpl
        def chat33_post_failed(self, post: Any) -> None:
            self.failed.append((post.id, post.error_message))

    observer = Observer()
    sandbox = MastodonSandbox()
    with serve(sandbox) as url:
        settings = settings_for(f"sqlite:///{tmp_path / 'db.sqlite'}",
                                CHAT33_TOOTSUITE_API_BASE=url)
        core = Chat33(settings)
        core.host.register(third_party_plugin(MastodonPlatform), name="tootsuite")
        core.host.register(observer, name="observer")
        core.store.migrate()
        user = core.create_user("m@example.com", "password1", "Fediverse")
        account = core.add_account(user.org_id, "tootsuite", "Toots",
                                   credentials=Credentials(access_token="mastodon-token"))
        principal = Principal(org_id=user.org_id, user_id=user.id, scopes=frozenset(),
                              via="key")
        with pytest.raises(Exception, match="500-character limit"):
            core.create_posts(principal, PostRequest(account_ids=[account.id], text="x" * 501))
        posts = core.create_posts(principal, PostRequest(
            account_ids=[account.id], text="first", thread=[ThreadItem(text="second")])).posts
        revoked = core.add_account(user.org_id, "tootsuite", "Revoked",
                                   credentials=Credentials(access_token="old-token"))
        (refused,) = core.create_posts(principal, PostRequest(account_ids=[revoked.id],
                                                              text="never lands")).posts
        assert Worker(core, once=True, concurrency=1).run() == 0
    stored = [core.get_post(user.org_id, p.id) for p in posts]
    assert [p.status for p in stored] == [PostStatus.PUBLISHED, PostStatus.PUBLISHED]
    assert [p.external_post_id for p in stored] == ["100", "101"]
    assert sandbox.statuses[1]["in_reply_to_id"] == "100"
    assert len(sandbox.statuses) == 2
    assert core.get_post(user.org_id, refused.id).status is PostStatus.FAILED
    # the observers heard of both outcomes
    assert posts[0].id in observer.published
    assert observer.failed == [(refused.id, "The access token is invalid")]


def test_two_platforms_with_one_name_are_an_error() -> None:
    class Other(MastodonPlatform):
        pass

    host = PluginHost(Settings.from_env({}))
    host.register(third_party_plugin(MastodonPlatform), name="one")
    with pytest.raises(PluginError, match="two plugins register the platform 'tootsuite'"):
        host.register(third_party_plugin(Other), name="two")
    assert type(host.platform("tootsuite")) is MastodonPlatform
    assert not host.pm.has_plugin("two")


def test_registering_something_else_than_a_platform_is_an_error() -> None:
    host = PluginHost(Settings.from_env({}))
    with pytest.raises(PluginError, match="not a PlatformBase subclass"):
        host.register(third_party_plugin(dict), name="bad")  # type: ignore[arg-type]


def test_a_platform_without_a_name_is_an_error() -> None:
    class Nameless(PlatformBase):
        pass

    host = PluginHost(Settings.from_env({}))
    with pytest.raises(PluginError, match="no name"):
        host.register(third_party_plugin(Nameless), name="nameless")


def test_misspelled_hook_implementations_are_caught() -> None:
    @hookimpl
    def chat33_register_platfroms(register: object) -> None:  # sic
        pass

    host = PluginHost(Settings.from_env({}))
    with pytest.raises(Exception, match="chat33_register_platfroms"):
        host.register(types.SimpleNamespace(chat33_register_platfroms=chat33_register_platfroms),
                      name="typo")


def test_a_broken_entry_point_is_logged_and_skipped(monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    from importlib.metadata import EntryPoint

    import chat33_core.plugins as plugins_mod

    good = list(plugins_mod.entry_points(group="chat33.platforms"))
    broken = EntryPoint(name="broken", value="chat33_no_such_module", group="chat33.platforms")
    monkeypatch.setattr(plugins_mod, "entry_points", lambda group: [*good, broken])
    host = PluginHost(Settings.from_env({}))
    host.load_entry_points({})
    assert "broken" in host.broken and "x" in host.platforms
    assert "broken" in caplog.text


def test_unknown_platform_is_not_found() -> None:
    host = PluginHost(Settings.from_env({}))
    with pytest.raises(NotFound, match="no platform plugin"):
        host.platform("myspace")


def test_cross_cutting_validation_hook_is_called() -> None:
    class Policy:
        @hookimpl
        def chat33_validate_post(self, draft: PostDraft, account: object,
                                 platform: PlatformBase) -> list[Issue]:
            if "forbidden" in (draft.text or ""):
                return [Issue("text", "house rules forbid that word")]
            return []

    host = PluginHost(Settings.from_env({}))
    host.register(Policy(), name="policy")
    draft = PostDraft(text="a forbidden word", media_type=None, media=(), platform_config={})
    results = host.hook.chat33_validate_post(draft=draft, account=None, platform=None)
    assert [i.message for r in results for i in r] == ["house rules forbid that word"]


def test_hooks_have_docstrings_with_params() -> None:
    for name in hookspecs.hook_names():
        fn = getattr(hookspecs, name)
        assert fn.__doc__ and ":param" in fn.__doc__, name
