"""The Example plugin against its sandbox, over real HTTP on loopback: validation with
the declared options, a publish with images, exactly once after a lost answer, a
refreshed token, deletion, and a post published by chat33's own worker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from chat33_example import ExamplePlatform
from chat33_example.sandbox import ExampleSandbox

from chat33_core.config import Settings
from chat33_core.errors import PermanentError, UnknownOutcome
from chat33_core.media import MediaInfo
from chat33_core.models import Account, Credentials
from chat33_core.platforms import DeleteContext, MemoryCheckpoints, PostDraft, RefreshContext
from chat33_core.sandbox import serve
from chat33_core.testing import (
    make_image,
    media_file,
    publish_context,
    serve_directory,
    validate_draft,
)

ACCOUNT = Account(id="chan_1", org_id="org_1", platform="example", name="Example channel")
JPEG = MediaInfo(kind="image", format="JPEG", mime_type="image/jpeg", size=200_000,
                 width=1080, height=1080)


@pytest.fixture
def sandbox() -> Iterator[tuple[ExampleSandbox, Settings]]:
    """The sandbox served on loopback, and Settings pointing the plugin at it."""
    app = ExampleSandbox()
    with serve(app) as url:
        yield app, Settings.from_env({"CHAT33_EXAMPLE_API_BASE": url,
                                      "CHAT33_POLL_INTERVAL_S": "0.01"})


@pytest.fixture
def images(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """Two real images, served over HTTP as chat33's media server would."""
    make_image(tmp_path / "one.jpg", 800, 800)
    make_image(tmp_path / "two.png", 640, 480, fmt="PNG")
    with serve_directory(tmp_path) as base:
        yield tmp_path, base


# --- validation -------------------------------------------------------------------------


def test_the_rules_and_the_declared_options() -> None:
    platform = ExamplePlatform(Settings.from_env({}))

    def issues(text: str = "hi", media: tuple[MediaInfo, ...] = (), **config: object
               ) -> dict[str, str]:
        draft = PostDraft(text=text, media_type=None, media=media,
                          platform_config={"example": config} if config else {})
        return {i.path: i.code for i in validate_draft(platform, draft, ACCOUNT)}

    assert issues() == {}
    assert issues("x" * 501) == {"text": "too_long"}
    assert issues(media=(JPEG,) * 5) == {"mediaUrls": "too_many"}
    # the core checks each option's type and values from the declaration
    assert issues(visibility="friends") == {"platformConfig.example.visibility":
                                            "invalid_choice"}
    assert issues(sensitive="yes") == {"platformConfig.example.sensitive": "invalid_type"}
    assert issues(pinned=True) == {"platformConfig.example.pinned": "unknown_key"}
    # what an option means is the plugin's own rule (a warning here)
    assert issues(sensitive=True) == {"platformConfig.example.sensitive": "ignored"}


# --- publishing -------------------------------------------------------------------------


def test_publishes_text_with_images(sandbox: tuple[ExampleSandbox, Settings],
                                    images: tuple[Path, str]) -> None:
    app, settings = sandbox
    root, base = images
    app.config["processing_polls"] = 2
    platform = ExamplePlatform(settings)
    files = [media_file(root / "one.jpg", base), media_file(root / "two.png", base)]
    events: list[tuple[str, str, dict[str, object]]] = []
    ctx = publish_context(platform, settings=settings, text="Launch day", media=files,
                          platform_config={"example": {"visibility": "followers"}},
                          events=events)
    result = platform.publish(ctx)
    [post] = app.posts
    assert result.first.external_id == post["id"]
    assert result.first.external_url == f"https://example.com/p/{post['id']}"
    assert post["text"] == "Launch day" and post["visibility"] == "followers"
    assert post["clientRef"] == ctx.post_id and len(post["mediaIds"]) == 2
    # the sandbox fetched both images from their URLs
    assert [m["bytes"] for m in app.media.values()] == [
        (root / "one.jpg").stat().st_size, (root / "two.png").stat().st_size]
    assert [e[0] for e in events] == ["example.media_ready", "example.media_ready",
                                      "example.posted"]


def test_a_lost_answer_is_confirmed_and_never_posted_twice(
        sandbox: tuple[ExampleSandbox, Settings]) -> None:
    app, settings = sandbox
    platform = ExamplePlatform(settings)
    checkpoints = MemoryCheckpoints()
    ctx = publish_context(platform, settings=settings, text="once", checkpoints=checkpoints)
    # the platform creates the post, then the answer is lost
    app.add_fault(method="POST", path="^/v1/posts$", status=502, after_body=True)
    with pytest.raises(UnknownOutcome):
        platform.publish(ctx)
    found = platform.confirm(ctx)
    assert found is not None and found.first.external_id == app.posts[0]["id"]
    # a worker that publishes again resumes from the checkpoint: still one post
    assert platform.publish(ctx).first.external_id == app.posts[0]["id"]
    assert len(app.posts) == 1


def test_a_refused_post_is_a_permanent_error_with_the_platform_message(
        sandbox: tuple[ExampleSandbox, Settings]) -> None:
    app, settings = sandbox
    platform = ExamplePlatform(settings)
    app.add_fault(method="POST", path="^/v1/posts$", status=400,
                  body={"error": "spam", "message": "This looks like spam."})
    with pytest.raises(PermanentError, match=r"This looks like spam\.") as caught:
        platform.publish(publish_context(platform, settings=settings))
    assert caught.value.platform_code == "spam"
    assert platform.confirm(publish_context(platform, settings=settings)) is None


def test_refresh_rotates_the_refresh_token_and_delete_removes_the_post(
        sandbox: tuple[ExampleSandbox, Settings]) -> None:
    app, settings = sandbox
    platform = ExamplePlatform(settings)
    with httpx.Client() as http:
        fresh = platform.refresh_credentials(
            Credentials(access_token="old", refresh_token="sandbox-refresh"),
            RefreshContext(account=ACCOUNT, http=http, settings=settings))
        assert fresh.refresh_token != "sandbox-refresh" and fresh.expires_at is not None
        result = platform.publish(publish_context(platform, settings=settings,
                                                  credentials=fresh, http=http))
        platform.delete(DeleteContext(account=ACCOUNT, credentials=fresh, http=http,
                                      settings=settings,
                                      external_ids=[result.first.external_id]))
    assert app.posts == []


# --- through chat33 -------------------------------------------------------------------------


def test_chat33_publishes_a_post_to_example(sandbox: tuple[ExampleSandbox, Settings],
                                            tmp_path: Path) -> None:
    """The whole path: the plugin found through its entry point, a post validated and
    stored by the core, published by the worker."""
    from chat33_core.models import PostRequest, PostStatus
    from chat33_core.scheduling import Worker
    from chat33_core.service import Chat33, Principal

    app, sandbox_settings = sandbox
    core = Chat33(Settings.from_env({
        **sandbox_settings.env, "CHAT33_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
        "CHAT33_MEDIA_DIR": str(tmp_path / "media"),
        "CHAT33_SECRET_KEY": "an example secret key of 32 bytes or more!",
        "CHAT33_LOAD_PLUGINS": "example"}))
    core.store.migrate()
    user = core.create_user("me@example.com", "a long password", "Acme")
    account = core.add_account(user.org_id, "example", "Acme on Example",
                               credentials=Credentials(access_token="sandbox-token"))
    principal = Principal(org_id=user.org_id, user_id=user.id, scopes=frozenset(), via="key")
    with pytest.raises(Exception, match="'friends' is not one of public, followers, private"):
        core.create_posts(principal, PostRequest(
            account_ids=[account.id], text="hi",
            platform_config={"example": {"visibility": "friends"}}))
    (post,) = core.create_posts(principal, PostRequest(
        account_ids=[account.id], text="Hello from chat33",
        platform_config={"example": {"visibility": "private"}})).posts
    assert Worker(core, once=True, concurrency=1).run() == 0
    done = core.get_post(user.org_id, post.id)
    assert done.status is PostStatus.PUBLISHED
    assert done.external_post_id == app.posts[0]["id"]
    assert app.posts[0]["visibility"] == "private"
    core.store.dispose()
