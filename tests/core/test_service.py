"""The service facade: each REST operation, happy and unhappy, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import attrs
import pytest

from chat33_core import testplatform
from chat33_core.errors import (
    Conflict,
    Forbidden,
    InvalidTransition,
    Issue,
    NotFound,
    NotSupported,
    RateLimited,
    Unauthorized,
    ValidationError,
)
from chat33_core.models import (
    Account,
    AccountResult,
    MediaType,
    PostRequest,
    PostStatus,
    ThreadItem,
    User,
    ValidationReport,
    new_id,
)
from chat33_core.posts import CheckedRequest, build_posts
from chat33_core.security import hash_password
from chat33_core.service import Chat33, Principal
from chat33_core.testing import make_image, make_video, serve_directory


@pytest.fixture
def core(db_url: str, settings_for) -> Iterator[Chat33]:  # type: ignore[no-untyped-def]
    c = Chat33(settings_for(db_url))
    c.host.register(testplatform, name="echo")
    c.store.migrate()
    yield c
    c.store.dispose()


_HASH = hash_password("password1")  # once: argon2 is slow by design


@pytest.fixture
def principal(core: Chat33) -> Principal:
    org = core.ensure_org("Acme")
    user = core.store.add_user(User(id=new_id("user"), org_id=org.id,
                                    email="owner@example.com", password_hash=_HASH))
    return Principal(org_id=user.org_id, user_id=user.id,
                     scopes=frozenset({"posts:read", "posts:write", "media:write"}), via="key")


@pytest.fixture
def echo(core: Chat33, principal: Principal):  # type: ignore[no-untyped-def]
    return core.add_account(principal.org_id, "echo", "Echo main")


def req(*accounts: str, **kw: object) -> PostRequest:
    return PostRequest(account_ids=list(accounts), **kw)  # type: ignore[arg-type]


def test_create_one_post_per_account_with_a_group(core: Chat33, principal: Principal,
                                                  echo) -> None:  # type: ignore[no-untyped-def]
    second = core.add_account(principal.org_id, "echo", "Echo second")
    created = core.create_posts(principal, req(echo.id, second.id, text="hello"))
    posts, group = created.posts, created.group_id
    assert group is not None and len(posts) == 2
    assert {p.account_id for p in posts} == {echo.id, second.id}
    assert all(p.group_id == group and p.status is PostStatus.QUEUED for p in posts)
    stored = core.get_post(principal.org_id, posts[0].id)
    assert stored.text == "hello" and stored.created_by == principal.user_id
    assert [e.event for e in core.post_logs(principal.org_id, posts[0].id)] == ["created"]


def test_single_account_has_no_group(core: Chat33, principal: Principal, echo) -> None:  # type: ignore[no-untyped-def]
    created = core.create_posts(principal, req(echo.id, text="solo"))
    posts, group = created.posts, created.group_id
    assert group is None and posts[0].group_id is None


def test_repeated_account_ids_are_refused(core: Chat33, principal: Principal, echo) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError) as info:
        core.create_posts(principal, req(echo.id, echo.id, text="once"))
    assert info.value.details[0].path == "accountIds[1]"


def test_unknown_and_foreign_accounts_are_validation_errors(core: Chat33, principal: Principal,
                                                            echo) -> None:  # type: ignore[no-untyped-def]
    other = core.create_user("other@example.com", "password1", "Other")
    foreign = core.add_account(other.org_id, "echo", "Theirs")
    with pytest.raises(ValidationError) as info:
        core.create_posts(principal, req(echo.id, foreign.id, "chan_nope", text="x"))
    paths = {d.path for d in info.value.details}
    assert {"accountIds[1]", "accountIds[2]"} <= paths
    assert core.list_posts(principal.org_id).total == 0, "nothing is created on error"


def test_schedule_in_a_timezone(core: Chat33, principal: Principal, echo) -> None:  # type: ignore[no-untyped-def]
    wall = (datetime.now(UTC) + timedelta(days=3)).replace(tzinfo=None, microsecond=0,
                                                           second=0).isoformat()
    posts = core.create_posts(principal, PostRequest(
        account_ids=[echo.id], text="later", scheduled_at=wall, timezone="America/New_York")).posts
    from zoneinfo import ZoneInfo

    expected = datetime.fromisoformat(wall).replace(tzinfo=ZoneInfo("America/New_York"))
    assert posts[0].scheduled_at == expected
    assert posts[0].next_attempt_at == expected


def test_past_schedule_is_refused(core: Chat33, principal: Principal, echo) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError) as info:
        core.create_posts(principal, PostRequest(account_ids=[echo.id], text="x",
                                                 scheduled_at="2020-01-01T00:00:00Z"))
    assert info.value.details[0].path == "scheduledAt"


def test_thread_items_ride_with_the_head_on_thread_platforms(core: Chat33, principal: Principal,
                                                             echo) -> None:  # type: ignore[no-untyped-def]
    posts = core.create_posts(principal, PostRequest(
        account_ids=[echo.id], text="1/3",
        thread=[ThreadItem(text="2/3"), ThreadItem(text="3/3")])).posts
    assert [p.thread_position for p in posts] == [0, 1, 2]
    assert {p.thread_id for p in posts} == {posts[0].id}
    assert [p.publish_with_head for p in posts] == [False, True, True]


def test_thread_on_a_platform_without_threads_is_separate_posts(
        core: Chat33, principal: Principal) -> None:
    tiktok_like = core.add_account(principal.org_id, "x", "X")
    platform = core.host.platform("x")
    posts = core.create_posts(principal, PostRequest(
        account_ids=[tiktok_like.id], text="one", thread=[ThreadItem(text="two")])).posts
    assert [p.publish_with_head for p in posts] == [False, platform.capabilities.threads]


def test_create_is_rate_limited_per_organization(db_url: str, settings_for, principal,  # type: ignore[no-untyped-def]
                                                 echo) -> None:
    limited = Chat33(settings_for(db_url), rate_limits={"posts.create": (2, timedelta(hours=1))})
    limited.host.register(testplatform, name="echo")
    limited.create_posts(principal, req(echo.id, text="1"))
    limited.create_posts(principal, req(echo.id, text="2"))
    with pytest.raises(RateLimited) as info:
        limited.create_posts(principal, req(echo.id, text="3"))
    assert info.value.retry_after > 0 and info.value.limit == 2
    assert limited.list_posts(principal.org_id).total == 2


def test_invalid_posts_do_not_use_the_rate_limit(db_url: str, settings_for, principal,  # type: ignore[no-untyped-def]
                                                 echo) -> None:
    limited = Chat33(settings_for(db_url), rate_limits={"posts.create": (1, timedelta(hours=1))})
    limited.host.register(testplatform, name="echo")
    with pytest.raises(ValidationError):
        limited.create_posts(principal, req(echo.id, text="x",
                                            platform_config={"echo": {"bogus": True}}))
    limited.create_posts(principal, req(echo.id, text="fits"))


def test_counted_gives_the_count_back_when_the_block_raises(db_url: str, settings_for  # type: ignore[no-untyped-def]
                                                           ) -> None:
    limited = Chat33(settings_for(db_url), rate_limits={"media.upload": (2, timedelta(hours=1))})
    for _ in range(3):  # refused three times: none of them counted
        with pytest.raises(ValidationError), limited.counted("media.upload", "org_1"):
            raise ValidationError("not media")
    with limited.counted("media.upload", "org_1") as (limit, remaining, _):
        assert (limit, remaining) == (2, 1)
    with limited.counted("media.upload", "org_1") as (_, remaining, _):
        assert remaining == 0
    with pytest.raises(RateLimited), limited.counted("media.upload", "org_1"):
        pytest.fail("the block of a refused count does not run")
    with limited.counted("media.upload", "org_2"):  # other keys are their own
        pass
    limited.store.dispose()


def test_media_from_a_url_is_kept_at_schedule_time(core: Chat33, principal: Principal, echo,  # type: ignore[no-untyped-def]
                                                   tmp_path: Path) -> None:
    served = tmp_path / "served"
    served.mkdir()
    make_image(served / "pic.jpg", 640, 480)
    with serve_directory(served) as base:
        url = f"{base}/pic.jpg"
        posts = core.create_posts(principal, PostRequest(
            account_ids=[echo.id], text="pic", media_urls=[url])).posts
    (served / "pic.jpg").unlink()  # the URL "expires"
    post = posts[0]
    assert post.media_type is MediaType.IMAGE and len(post.media_ids) == 1
    asset = core.store.get_media(post.media_ids[0])
    assert Path(asset.path).is_file() and asset.source_url == url
    assert asset.info["width"] == 640


def test_dry_run_creates_nothing(core: Chat33, principal: Principal, echo,  # type: ignore[no-untyped-def]
                                 tmp_path: Path) -> None:
    served = tmp_path / "served"
    served.mkdir()
    make_video(served / "clip.mp4", 320, 240, seconds=0.5)
    with serve_directory(served) as base:
        report = core.validate_post(principal, PostRequest(
            account_ids=[echo.id], text="x", media_urls=[f"{base}/clip.mp4"]))
    assert report.valid
    assert core.list_posts(principal.org_id).total == 0
    assert core.store.find_media_by_url(principal.org_id, f"{base}/clip.mp4") is None
    media_dir = Path(core.settings.media_dir)
    assert not [p for p in media_dir.glob("*") if p.is_file()]


def test_validation_finds_what_creation_uses_and_reads_media_once(
        core: Chat33, principal: Principal, echo, tmp_path: Path,  # type: ignore[no-untyped-def]
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The check gives the accounts, the schedule, each media type and each distinct
    media URL's kept asset; creation makes the posts of exactly these."""
    served = tmp_path / "served"
    served.mkdir()
    make_image(served / "pic.jpg", 640, 480)
    make_video(served / "clip.mp4", 320, 240, seconds=0.5)
    lookups: list[str] = []
    find = core.store.find_media_by_url
    monkeypatch.setattr(core.store, "find_media_by_url",
                        lambda org, url: lookups.append(url) or find(org, url))
    when = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    with serve_directory(served) as base:
        pic, clip = f"{base}/pic.jpg", f"{base}/clip.mp4"
        request = req(echo.id, text="first", media_urls=[pic],
                      scheduled_at=when.isoformat(), thread=[
                          ThreadItem(text="second", media_urls=[clip]),
                          ThreadItem(text="third", media_urls=[pic, clip])])
        created = core.create_posts(principal, request).posts
    assert sorted(lookups) == sorted([pic, clip])  # each distinct URL looked up once
    head, second, third = created
    assert [p.media_type for p in created] == [MediaType.IMAGE, MediaType.VIDEO,
                                               MediaType.CAROUSEL]
    assert head.scheduled_at == when and head.next_attempt_at == when
    assert third.media_ids == [head.media_ids[0], second.media_ids[0]]
    assert core.store.get_media(second.media_ids[0]).source_url == clip


def test_the_check_reports_its_findings_and_keeps_nothing_in_a_dry_run(
        core: Chat33, principal: Principal, echo,  # type: ignore[no-untyped-def]
        tmp_path: Path) -> None:
    served = tmp_path / "served"
    served.mkdir()
    make_image(served / "pic.jpg", 640, 480)
    with serve_directory(served) as base:
        checked = core.posts.check(principal, req(echo.id, "chan_nope", text="x",
                                                  media_urls=[f"{base}/pic.jpg"]),
                                   keep_media=False)
    assert checked.accounts == {echo.id: echo, "chan_nope": None}
    assert not checked.report.valid and checked.report.media_types == [MediaType.IMAGE]
    assert checked.assets[f"{base}/pic.jpg"].kind == "image"
    assert core.store.find_media_by_url(principal.org_id, f"{base}/pic.jpg") is None
    with pytest.raises(ValidationError) as refused:
        build_posts(checked, org_id=principal.org_id, user_id=principal.user_id,
                    status=PostStatus.QUEUED, host=core.host)
    assert refused.value.details == checked.report.errors()
    assert core.list_posts(principal.org_id).total == 0


def test_posts_are_not_built_from_an_invalid_report(core: Chat33, echo) -> None:  # type: ignore[no-untyped-def]
    request = req(echo.id, text="hi")
    report = ValidationReport(results=[AccountResult(echo.id, "echo")],
                              request_errors=[Issue("text", "too long", "too_long")],
                              media_types=[None])
    checked = CheckedRequest(request, report, {echo.id: echo}, {})
    with pytest.raises(ValidationError, match="text: too long") as refused:
        build_posts(checked, org_id=echo.org_id, user_id="user_1",
                    status=PostStatus.QUEUED, host=core.host)
    assert [i.code for i in refused.value.details] == ["too_long"]
    fine = attrs.evolve(checked, report=attrs.evolve(report, request_errors=[]))
    posts, group = build_posts(fine, org_id=echo.org_id, user_id="user_1",
                               status=PostStatus.DRAFT, host=core.host)
    assert group is None and [(p.account_id, p.status) for p in posts] == [
        (echo.id, PostStatus.DRAFT)]


def test_upload_keeps_the_file_and_rejects_non_media(core: Chat33, principal: Principal,
                                                     tmp_path: Path) -> None:
    img = make_image(tmp_path / "a.png", 100, 80, fmt="PNG")
    with img.open("rb") as fh:
        asset = core.upload_media(principal.org_id, fh, "holiday.png")
    assert asset.kind == "image" and asset.content_type == "image/png"
    assert asset.name == "holiday.png" and asset.url.startswith(core.settings.media_base_url)
    text = tmp_path / "notes.jpg"
    text.write_text("this is not a picture\n" * 20)
    with text.open("rb") as fh, pytest.raises(ValidationError) as info:
        core.upload_media(principal.org_id, fh, "notes.jpg")
    assert info.value.details[0].path == "file"


def test_update_text_and_reschedule(core: Chat33, principal: Principal, echo) -> None:  # type: ignore[no-untyped-def]
    (post,) = core.create_posts(principal, req(echo.id, text="v1")).posts
    when = (datetime.now(UTC) + timedelta(hours=5)).replace(microsecond=0)
    updated = core.update_post(principal, post.id,
                               {"text": "v2", "scheduled_at": when.isoformat()})
    assert updated.text == "v2" and updated.scheduled_at == when
    now_again = core.update_post(principal, post.id, {"scheduled_at": None})
    assert now_again.scheduled_at is None and now_again.next_attempt_at is None


def test_update_refuses_what_the_platform_refuses(core: Chat33, principal: Principal, echo) -> None:  # type: ignore[no-untyped-def]
    (post,) = core.create_posts(principal, req(echo.id, text="v1")).posts
    with pytest.raises(ValidationError) as info:
        core.update_post(principal, post.id, {"platform_config": {"echo": {"bogus": 1}}})
    assert info.value.details[0].path == "platformConfig.echo.bogus"
    assert core.get_post(principal.org_id, post.id).text == "v1"


@pytest.mark.parametrize("status", [PostStatus.PUBLISHING, PostStatus.PUBLISHED,
                                    PostStatus.FAILED, PostStatus.CANCELLED])
def test_only_draft_and_queued_can_be_edited(core: Chat33, principal: Principal, echo,  # type: ignore[no-untyped-def]
                                             status: PostStatus) -> None:
    (post,) = core.create_posts(principal, req(echo.id, text="v1")).posts
    core.store.save_post(attrs.evolve(post, status=status))
    with pytest.raises(InvalidTransition) as info:
        core.update_post(principal, post.id, {"text": "v2"})
    assert info.value.http_status == 409


def test_patch_status_to_draft_and_back(core: Chat33, principal: Principal, echo) -> None:  # type: ignore[no-untyped-def]
    (post,) = core.create_posts(principal, req(echo.id, text="v1")).posts
    assert core.update_post(principal, post.id,
                            {"status": PostStatus.DRAFT}).status is PostStatus.DRAFT
    assert core.update_post(principal, post.id,
                            {"status": PostStatus.QUEUED}).status is PostStatus.QUEUED
    with pytest.raises(ValidationError):
        core.update_post(principal, post.id, {"status": PostStatus.PUBLISHED})
    with pytest.raises(ValidationError):
        core.update_post(principal, post.id, {"bogus": 1})


def test_delete_draft_cancel_queued_refuse_publishing(core: Chat33, principal: Principal,
                                                      echo) -> None:  # type: ignore[no-untyped-def]
    (a,) = core.create_posts(principal, req(echo.id, text="a")).posts
    (b,) = core.create_posts(principal, req(echo.id, text="b")).posts
    (c,) = core.create_posts(principal, req(echo.id, text="c")).posts
    core.update_post(principal, a.id, {"status": PostStatus.DRAFT})
    assert core.delete_post(principal.org_id, a.id).deleted
    with pytest.raises(NotFound):
        core.get_post(principal.org_id, a.id)
    outcome = core.delete_post(principal.org_id, b.id)
    assert not outcome.deleted and outcome.status == "CANCELLED"
    core.store.save_post(attrs.evolve(c, status=PostStatus.PUBLISHING))
    with pytest.raises(Conflict):
        core.delete_post(principal.org_id, c.id)


def test_delete_from_platform_where_unsupported_is_a_clear_conflict(
        core: Chat33, principal: Principal) -> None:
    unsupported = [p for p in core.host if not p.capabilities.delete]
    if not unsupported:
        pytest.fail("at least one installed platform (TikTok, Instagram) cannot delete")
    platform = unsupported[0]
    account = core.add_account(principal.org_id, platform.name, "No delete")
    from chat33_core.models import Post, new_id

    post = Post(id=new_id("post"), org_id=principal.org_id, account_id=account.id,
                platform=platform.name, account_name=account.name,
                created_by=principal.user_id, status=PostStatus.PUBLISHED,
                external_post_id="123")
    core.store.add_posts([post])
    with pytest.raises(NotSupported, match="does not let apps delete"):
        core.delete_post(principal.org_id, post.id, from_platform=True)
    assert core.get_post(principal.org_id, post.id).status is PostStatus.PUBLISHED


def test_duplicate_defaults_to_a_draft_on_the_same_channel(core: Chat33, principal: Principal,
                                                           echo) -> None:  # type: ignore[no-untyped-def]
    (post,) = core.create_posts(principal, req(echo.id, text="again")).posts
    created = core.duplicate_post(principal, post.id)
    copies, group = created.posts, created.group_id
    assert group is None and len(copies) == 1
    copy = copies[0]
    assert copy.id != post.id and copy.status is PostStatus.DRAFT
    assert (copy.account_id, copy.text) == (echo.id, "again")


def test_duplicate_to_other_channels_queued(core: Chat33, principal: Principal, echo) -> None:  # type: ignore[no-untyped-def]
    other = core.add_account(principal.org_id, "echo", "Echo 2")
    (post,) = core.create_posts(principal, req(echo.id, text="again")).posts
    created = core.duplicate_post(principal, post.id, account_ids=[echo.id, other.id],
                                        status=PostStatus.QUEUED)
    copies, group = created.posts, created.group_id
    assert group is not None and {c.account_id for c in copies} == {echo.id, other.id}
    with pytest.raises(ValidationError):
        core.duplicate_post(principal, post.id, account_ids=["chan_nope"])
    with pytest.raises(ValidationError):
        core.duplicate_post(principal, post.id, status=PostStatus.PUBLISHED)
    with pytest.raises(NotFound):
        core.duplicate_post(principal, "post_nope")


def test_list_posts_refuses_bad_filters(core: Chat33, principal: Principal) -> None:
    for kw in ({"status": "DONE"}, {"platform": "myspace"}, {"page": 0}, {"limit": 0},
               {"limit": 101}):
        with pytest.raises(ValidationError):
            core.list_posts(principal.org_id, **kw)  # type: ignore[arg-type]


def test_other_organizations_see_nothing(core: Chat33, principal: Principal, echo) -> None:  # type: ignore[no-untyped-def]
    (post,) = core.create_posts(principal, req(echo.id, text="mine")).posts
    other = core.create_user("other@example.com", "password1", "Other")
    with pytest.raises(NotFound):
        core.get_post(other.org_id, post.id)
    with pytest.raises(NotFound):
        core.update_post(attrs.evolve(principal, org_id=other.org_id, user_id=other.id),
                         post.id, {"text": "theirs"})
    with pytest.raises(NotFound):
        core.delete_post(other.org_id, post.id)
    with pytest.raises(NotFound):
        core.post_logs(other.org_id, post.id)
    assert core.list_accounts(other.org_id) == []


def test_scopes_and_sessions(core: Chat33, principal: Principal) -> None:
    principal.require("posts:read")
    with pytest.raises(Forbidden):
        principal.require("accounts:read")
    with pytest.raises(Unauthorized):
        principal.require_session()


def test_add_account_refuses_unknown_platforms(core: Chat33, principal: Principal) -> None:
    with pytest.raises(ValidationError) as info:
        core.add_account(principal.org_id, "myspace", "")
    assert {d.path for d in info.value.details} == {"platform", "name"}


def test_api_key_names_and_scopes_are_checked(core: Chat33, principal: Principal) -> None:
    with pytest.raises(ValidationError):
        core.create_api_key(principal.org_id, principal.user_id, "x" * 201)
    with pytest.raises(ValidationError):
        core.create_api_key(principal.org_id, principal.user_id, "k", ["root"])
    key, raw = core.create_api_key(principal.org_id, principal.user_id)
    assert key.name == "Default API Key" and raw.startswith(key.key_prefix)
    with pytest.raises(NotFound):
        core.revoke_api_key("org_other", key.id)


def test_webhook_secret_is_stable_until_rotated(core: Chat33, principal: Principal) -> None:
    first = core.webhook_secret(principal.org_id)
    assert core.webhook_secret(principal.org_id) == first
    rotated = core.rotate_webhook_secret(principal.org_id).secret
    assert rotated != first and core.webhook_secret(principal.org_id) == rotated


def test_editing_a_post_whose_time_has_passed_keeps_its_schedule(
        core: Chat33, principal: Principal, echo) -> None:  # type: ignore[no-untyped-def]
    (post,) = core.create_posts(principal, req(echo.id, text="v1")).posts
    past = datetime.now(UTC) - timedelta(hours=1)
    core.store.save_post(attrs.evolve(post, scheduled_at=past, next_attempt_at=past))
    updated = core.update_post(principal, post.id, {"text": "v2"})
    assert updated.text == "v2" and updated.scheduled_at == past.replace(microsecond=(
        past.microsecond))


def test_the_converter_renders_a_post_as_post_json() -> None:
    """A Post unstructured by the converter is ``post_json``'s answer, key order
    included, for a post with every field set and a bare one; its JSON values are
    copies."""
    from chat33_core.models import Post
    from chat33_core.serialization import converter, post_json

    now = datetime(2026, 4, 1, 14, 0, 0, 123456, tzinfo=UTC)
    paris = datetime(2026, 4, 1, 16, 30, tzinfo=ZoneInfo("Europe/Paris"))
    full = Post(id="post_1", org_id="org_1", account_id="chan_1", platform="x",
                account_name="X", created_by="user_1", status=PostStatus.PUBLISHED, text="hé",
                media_urls=["https://e.com/a.jpg"], media_ids=["med_1"],
                media_type=MediaType.IMAGE, cover_image_url="https://e.com/c.jpg",
                platform_config={"x": {"a": [1, {"b": None}]}}, callback_url="https://e.com/h",
                scheduled_at=paris, timezone="Europe/Paris", group_id="grp_1", thread_id="t",
                thread_position=1, publish_with_head=True, published_at=now,
                external_post_id="9", external_post_url="https://x.com/9", error_message="e",
                retry_count=2, next_attempt_at=now, lease_owner="w", lease_expires_at=now,
                created_at=now, updated_at=now)
    bare = Post(id="post_2", org_id="org_1", account_id="chan_1", platform="x",
                account_name="X", created_by="user_1", created_at=now, updated_at=now)
    for post in (full, bare):
        expected = converter.unstructure(post)
        got = post_json(post)
        assert got == expected and list(got) == list(expected)
        assert got["channelId"] == "chan_1" and "orgId" not in got
    assert post_json(full)["scheduledAt"] == "2026-04-01T14:30:00.000Z"
    assert post_json(full)["createdAt"] == "2026-04-01T14:00:00.123Z"
    assert post_json(full)["platformConfig"] == full.platform_config
    assert post_json(full)["platformConfig"]["x"]["a"][1] is not \
        full.platform_config["x"]["a"][1]
    assert post_json(full)["mediaUrls"] is not full.media_urls


def test_a_key_reads_the_accounts_its_request_names(core: Chat33, principal: Principal,
                                                     echo: Account) -> None:
    other_org = core.ensure_org("Other")
    theirs = core.add_account(other_org.id, "echo", "Theirs")
    _, raw = core.create_api_key(principal.org_id, principal.user_id, "k")
    found, accounts = core.authenticate_key_with_accounts(
        raw, [echo.id, theirs.id, "chan_nope", echo.id])
    assert found == core.authenticate_key(raw)
    # another organization's account and an unknown id read as absent, like get_account
    assert accounts == {echo.id: echo, theirs.id: None, "chan_nope": None}
    assert core.authenticate_key_with_accounts(raw, ["chan_nope"])[1] == {"chan_nope": None}
    assert core.authenticate_key_with_accounts(raw, [])[1] == {}
    # the posts are made for the accounts read with the key, and checked as before
    posts = core.create_posts(found, PostRequest(account_ids=[echo.id], text="hi"),
                              accounts=accounts).posts
    assert [p.account_id for p in posts] == [echo.id]
    with pytest.raises(ValidationError) as refused:
        core.create_posts(found, PostRequest(account_ids=[theirs.id], text="hi"),
                          accounts=accounts)
    assert refused.value.details[0].path.startswith("accountIds")


def test_accounts_read_for_other_ids_are_read_again(core: Chat33, principal: Principal,
                                                    echo: Account) -> None:
    """Accounts read for a request that names others do not stand in for them."""
    posts = core.create_posts(principal, PostRequest(account_ids=[echo.id], text="hi"),
                              accounts={"chan_other": None}).posts
    assert [p.account_id for p in posts] == [echo.id]


def test_a_bad_key_with_accounts_is_still_refused(core: Chat33, principal: Principal,
                                                  echo: Account) -> None:
    key, raw = core.create_api_key(principal.org_id, principal.user_id, "k")
    with pytest.raises(Unauthorized, match="invalid"):
        core.authenticate_key_with_accounts(raw[:-1] + ("x" if raw[-1] != "x" else "y"),
                                            [echo.id])
    core.revoke_api_key(principal.org_id, key.id)
    with pytest.raises(Unauthorized, match="revoked"):
        core.authenticate_key_with_accounts(raw, [echo.id])
    with pytest.raises(Unauthorized, match="missing"):
        core.authenticate_key_with_accounts("", [echo.id])
