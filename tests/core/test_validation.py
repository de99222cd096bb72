"""The preflight engine: common rules, media, plugins' rules, and property tests."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chat33_core.config import Settings
from chat33_core.errors import (
    Chat33Error,
    Forbidden,
    Issue,
    PluginError,
    RateLimited,
    ValidationError,
)
from chat33_core.fetch import FetchError, GuardedClient
from chat33_core.hookspecs import hookimpl
from chat33_core.media import MediaError, MediaInfo
from chat33_core.mediastore import MediaIngestor, MediaStore
from chat33_core.models import Account, MediaType, PostRequest, ThreadItem
from chat33_core.options import Option
from chat33_core.platforms import Capabilities, PlatformBase, PostDraft
from chat33_core.plugins import PluginHost
from chat33_core.serialization import converter, error_json
from chat33_core.testing import make_image, make_video, serve_directory
from chat33_core.validation import (
    SCHEDULE_GRACE,
    ValidationReport,
    parse_schedule,
    validate_request,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SETTINGS = Settings()

# --- a tiny test platform pair ----------------------------------------------------------


class Threadnet(PlatformBase):
    """Has threads; 50 characters; aspect ratio 0.5-2; options title and privacy."""

    name = "threadnet"
    display_name = "Threadnet"
    capabilities = Capabilities(threads=True)
    options = (Option("title", "string", "The post's title"),
               Option("privacy", "string", "Who sees it", choices=("public", "private")))

    def validate(self, draft: PostDraft, account: Account) -> list[Issue]:
        issues = []
        if draft.text and len(draft.text) > 50:
            issues.append(Issue(f"{draft.path}text", f"text is {len(draft.text)} characters, "
                                                     "Threadnet allows 50", "too_long"))
        for i, media in enumerate(draft.media):
            ratio = media.aspect_ratio
            if ratio is not None and not 0.5 <= ratio <= 2:
                issues.append(Issue(f"{draft.path}mediaUrls[{i}]",
                                    f"aspect ratio {ratio:.2f} is outside 0.5-2", "aspect"))
        if not draft.media and not draft.path:
            issues.append(Issue("mediaUrls", "no media: text-only posts reach fewer people",
                                severity="warning"))
        title = (draft.platform_config.get("threadnet") or {}).get("title")
        if title is not None and not title.strip():  # a str: the core checked its type
            issues.append(Issue("platformConfig.threadnet.title", "must not be empty"))
        for item in draft.thread:
            issues += self.validate(item, account)
        return issues


class Plainnet(PlatformBase):
    """No threads; 20 characters; images only."""

    name = "plainnet"
    capabilities = Capabilities(threads=False, video=False)
    options = (Option("note", "string", "A note"),)

    def validate(self, draft: PostDraft, account: Account) -> list[Issue]:
        issues = []
        if draft.text and len(draft.text) > 20:
            issues.append(Issue(f"{draft.path}text", f"text is {len(draft.text)} characters, "
                                                     "plainnet allows 20", "too_long"))
        issues += [Issue(f"{draft.path}mediaUrls[{i}]", "plainnet takes no video")
                   for i, m in enumerate(draft.media) if m.is_video]
        return issues


class TestPlugins:
    @hookimpl
    def chat33_register_platforms(self, register: Callable[[type[PlatformBase]], None]) -> None:
        register(Threadnet)
        register(Plainnet)


def make_host(*extra: object) -> PluginHost:
    host = PluginHost(SETTINGS)
    host.register(TestPlugins(), name="test-platforms")
    for i, plugin in enumerate(extra):
        host.register(plugin, name=f"extra-{i}")
    return host


HOST = make_host()


def account(id: str, platform: str = "threadnet", **kw: Any) -> Account:
    return Account(id=id, org_id="org_1", platform=platform, name=f"{id} name", **kw)


ACCOUNTS: dict[str, Account | None] = {
    "acc_t": account("acc_t"),
    "acc_p": account("acc_p", "plainnet"),
    "acc_off": account("acc_off", is_active=False),
    "acc_rc": account("acc_rc", needs_reconnect=True),
    "acc_ghost": account("acc_ghost", "ghostnet"),
    "acc_gone": None,
}

SQUARE = MediaInfo(kind="image", format="JPEG", mime_type="image/jpeg", size=1000,
                   width=1080, height=1080, mode="RGB")
TALL = MediaInfo(kind="image", format="PNG", mime_type="image/png", size=1000,
                 width=100, height=1000)
CLIP = MediaInfo(kind="video", format="MPEG-4", mime_type="video/mp4", size=50_000,
                 width=1080, height=1920, duration_s=12.5, frame_rate=30.0,
                 video_codec="h264", audio_codec="aac", has_audio=True)
MEDIA: dict[str, MediaInfo | Chat33Error] = {
    "https://cdn.test/square.jpg": SQUARE,
    "https://cdn.test/tall.png": TALL,
    "https://cdn.test/clip.mp4": CLIP,
    "https://cdn.test/notes.jpg": MediaError("not an image or video: the file starts with "
                                             "text ('hello')"),
    "https://cdn.test/404.jpg": FetchError("https://cdn.test/404.jpg answered HTTP 404",
                                           reason="http_status", path="url"),
}


class Inspector:
    def __init__(self, table: Mapping[str, MediaInfo | Chat33Error] = MEDIA) -> None:
        self.table = table
        self.calls: list[str] = []

    def __call__(self, url: str) -> MediaInfo:
        self.calls.append(url)
        found = self.table.get(url) or MediaError(f"no test media at {url}")
        if isinstance(found, Exception):
            raise found
        return found


def check(request: PostRequest | None = None, *, host: PluginHost = HOST,
          accounts: Mapping[str, Account | None] = ACCOUNTS, inspect: Any = None,
          now: datetime = NOW, settings: Settings = SETTINGS, **fields: Any) -> ValidationReport:
    if request is None:
        fields.setdefault("account_ids", ["acc_t"])
        fields.setdefault("text", "hello")
        request = PostRequest(**fields)
    return validate_request(request, accounts=accounts, host=host,
                            inspect_url=inspect or Inspector(), now=now, settings=settings)


def paths(issues: list[Issue]) -> list[str]:
    return [i.path for i in issues]


def codes(report: ValidationReport) -> dict[str, str]:
    return {i.path: i.code for i in report.errors()}


# --- the report ----------------------------------------------------------------------------


def test_a_good_post_is_valid_with_facts_per_media() -> None:
    report = check(account_ids=["acc_t", "acc_p"], text="launch day",
                   media_urls=["https://cdn.test/square.jpg"], media_type=MediaType.IMAGE)
    assert report.valid and report.errors() == []
    data = converter.unstructure(report)
    json.dumps(data)
    assert [r["accountId"] for r in data["results"]] == ["acc_t", "acc_p"]
    assert [r["platform"] for r in data["results"]] == ["threadnet", "plainnet"]
    assert all(r["valid"] and r["errors"] == [] for r in data["results"])
    media = data["media"][0]
    assert media["url"] == "https://cdn.test/square.jpg" and media["path"] == "mediaUrls[0]"
    assert (media["valid"], media["mimeType"], media["width"], media["aspectRatio"]) == \
        (True, "image/jpeg", 1080, 1.0)


def test_plugin_warnings_do_not_invalidate() -> None:
    report = check(text="words only")
    assert report.valid
    assert report.results[0].warnings[0].path == "mediaUrls"
    data = converter.unstructure(report)
    assert data["results"][0]["warnings"][0]["message"].startswith("no media")


def test_errors_name_the_platform_and_appear_once() -> None:
    report = check(account_ids=["acc_t", "acc_p"], text="x" * 60,
                   scheduled_at="2020-01-01T00:00:00Z")
    messages = [i.message for i in report.errors()]
    assert messages[0].startswith("2020-01-01T00:00:00Z is in the past")
    assert "threadnet: text is 60 characters, Threadnet allows 50" in messages
    assert "plainnet: text is 60 characters, plainnet allows 20" in messages
    assert len(messages) == 3
    # each result is complete on its own: the request-wide error is in both
    assert all("scheduledAt" in paths(r.errors) for r in report.results)
    error = ValidationError("invalid post", details=report.errors())
    assert error_json(error)["details"][0]["path"] == "scheduledAt"


# --- accounts ---------------------------------------------------------------------------


def test_accounts_must_exist_be_active_and_connected() -> None:
    report = check(account_ids=["acc_t", "acc_gone", "acc_off", "acc_rc", "acc_ghost"])
    assert not report.valid
    assert codes(report) == {"accountIds[1]": "not_found", "accountIds[2]": "inactive",
                             "accountIds[3]": "needs_reconnect",
                             "accountIds[4]": "unknown_platform"}
    by_id = {r.account_id: r for r in report.results}
    assert by_id["acc_t"].valid and not by_id["acc_gone"].valid
    assert by_id["acc_gone"].platform is None


def test_an_account_id_unknown_to_the_caller_is_not_found() -> None:
    report = check(account_ids=["acc_elsewhere"])
    assert report.errors()[0].message == "account 'acc_elsewhere' was not found in this " \
                                         "organization"


def test_account_ids_are_required_and_unique() -> None:
    assert codes(check(account_ids=[])) == {"accountIds": "required"}
    report = check(account_ids=["acc_t", "acc_t"])
    assert codes(report) == {"accountIds[1]": "duplicate"}
    assert len(report.results) == 1


# --- schedule -----------------------------------------------------------------------------


def test_parse_schedule_reads_naive_times_in_the_timezone() -> None:
    assert parse_schedule("2026-07-01T09:00:00", "America/New_York", NOW) == \
        datetime(2026, 7, 1, 13, 0, tzinfo=UTC)
    assert parse_schedule("2026-07-01T09:00:00+02:00", "America/New_York", NOW) == \
        datetime(2026, 7, 1, 7, 0, tzinfo=UTC)
    assert parse_schedule("2026-07-01T09:00:00Z", "UTC", NOW) == \
        datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
    assert parse_schedule(None, "Europe/Paris", NOW) is None


def test_parse_schedule_accepts_a_little_clock_skew() -> None:
    almost_now = (NOW - SCHEDULE_GRACE / 2).isoformat()
    assert parse_schedule(almost_now, "UTC", NOW) is not None
    with pytest.raises(ValidationError, match="in the past"):
        parse_schedule((NOW - 2 * SCHEDULE_GRACE).isoformat(), "UTC", NOW)


@pytest.mark.parametrize(("at", "tz", "path", "code"), [
    ("next tuesday", "UTC", "scheduledAt", "invalid_datetime"),
    ("", "UTC", "scheduledAt", "invalid_datetime"),
    ("2026-13-01T00:00:00", "UTC", "scheduledAt", "invalid_datetime"),
    ("2026-07-01T09:00:00", "Mars/Olympus_Mons", "timezone", "invalid_timezone"),
    ("2026-07-01T09:00:00", "../../etc/passwd", "timezone", "invalid_timezone"),
    ("2027-03-14T02:30:00", "America/New_York", "scheduledAt", "invalid_datetime"),
    ("2026-05-31T12:00:00", "UTC", "scheduledAt", "in_the_past"),
])
def test_bad_schedules_are_issues(at: str, tz: str, path: str, code: str) -> None:
    report = check(scheduled_at=at, timezone=tz)
    assert codes(report) == {path: code}
    assert not report.results[0].valid


def test_a_bad_timezone_is_reported_without_a_schedule() -> None:
    assert codes(check(timezone="Nowhere/Special")) == {"timezone": "invalid_timezone"}


@pytest.mark.parametrize("tz", ["localtime", "posixrules", "posix/Europe/Paris", "right/UTC",
                                "Factory"])
def test_files_of_the_zone_database_that_are_no_iana_zone_are_refused(tz: str) -> None:
    """``localtime`` is the server's own zone (ZoneInfo loads it where the host has one):
    a post's instant would move with the server's setting."""
    report = check(scheduled_at="2026-07-01T09:00:00", timezone=tz)
    assert codes(report) == {"timezone": "invalid_timezone"}


@pytest.mark.parametrize("tz", ["UTC", "Europe/Paris", "America/Argentina/Buenos_Aires",
                                "Etc/GMT+5", "US/Eastern"])
def test_iana_zones_and_their_links_are_accepted(tz: str) -> None:
    assert check(scheduled_at="2026-07-01T09:00:00", timezone=tz).valid


# --- callbackUrl -----------------------------------------------------------------------


@pytest.mark.parametrize(("url", "code"), [
    ("ftp://hooks.test/x", "invalid_url"), ("/relative", "invalid_url"),
    ("http://10.0.0.8/hook", "blocked_address"), ("http://localhost:9000/hook", "blocked_address"),
    ("http://169.254.169.254/", "blocked_address"),
])
def test_callback_url_must_be_a_public_http_url(url: str, code: str) -> None:
    assert codes(check(callback_url=url)) == {"callbackUrl": code}


def test_private_callbacks_pass_when_allowed() -> None:
    assert check(callback_url="http://127.0.0.1:9000/hook",
                 settings=Settings(allow_private_urls=True)).valid
    assert check(callback_url="https://hooks.example.com/chat33").valid


# --- media -------------------------------------------------------------------------------


def test_media_failures_are_issues_at_their_paths() -> None:
    report = check(
        account_ids=["acc_t"], text="x" * 60,
        media_urls=["https://cdn.test/square.jpg", "https://cdn.test/notes.jpg"],
        cover_image_url="https://cdn.test/404.jpg",
        thread=[ThreadItem(text="more", media_urls=["not a url"])],
    )
    by_path = {i.path: i for i in report.errors()}
    assert by_path["mediaUrls[1]"].message.startswith("not an image or video: the file "
                                                      "starts with text")
    assert by_path["coverImageUrl"].code == "http_status"
    assert by_path["thread[0].mediaUrls[0]"].code == "invalid_url"
    # the plugin still judged the text, but not the incomplete media
    assert "text" in by_path and not any(p.startswith("mediaUrls[0]") for p in by_path)
    errors = [m for m in converter.unstructure(report)["media"] if not m["valid"]]
    assert [m["path"] for m in errors] == ["mediaUrls[1]", "coverImageUrl"]


@pytest.mark.parametrize("error", [
    Forbidden("this API key lacks the scope media:write"),
    RateLimited("rate limit of 50 per hour reached", retry_after=10, limit=50),
])
def test_an_error_that_is_not_about_the_url_ends_the_validation(error: Chat33Error) -> None:
    # a missing scope or a spent limit is the request's answer, not an issue at a path
    with pytest.raises(type(error)):
        check(media_urls=["https://cdn.test/elsewhere.jpg"],
              inspect=Inspector({"https://cdn.test/elsewhere.jpg": error}))


def test_each_url_is_inspected_once() -> None:
    inspector = Inspector()
    url = "https://cdn.test/square.jpg"
    report = check(media_urls=[url, url], media_type=MediaType.CAROUSEL,
                   thread=[ThreadItem(text="t", media_urls=[url])], inspect=inspector)
    assert inspector.calls == [url] and len(report.media) == 1 and report.valid


def test_a_failing_url_is_an_issue_wherever_it_appears() -> None:
    bad = "https://cdn.test/notes.jpg"
    report = check(media_urls=[bad], thread=[ThreadItem(media_urls=[bad])])
    assert {"mediaUrls[0]", "thread[0].mediaUrls[0]"} <= set(paths(report.errors()))


@pytest.mark.parametrize(("media_type", "urls", "path", "fragment"), [
    (MediaType.IMAGE, ["clip.mp4"], "mediaUrls[0]", "this file is a video (MPEG-4, h264)"),
    (MediaType.VIDEO, ["square.jpg"], "mediaUrls[0]", "this file is an image (JPEG)"),
    (MediaType.REEL, ["clip.mp4", "clip.mp4"], "mediaUrls", "takes one video file, got 2"),
    (MediaType.CAROUSEL, ["square.jpg"], "mediaUrls", "at least 2 files, got 1"),
    (MediaType.VIDEO, [], "mediaType", "needs a file in mediaUrls"),
])
def test_media_type_must_agree_with_the_files(media_type: MediaType, urls: list[str],
                                              path: str, fragment: str) -> None:
    report = check(media_type=media_type, media_urls=[f"https://cdn.test/{u}" for u in urls])
    issue = next(i for i in report.errors() if i.path == path)
    assert fragment in issue.message and issue.code == "media_type_mismatch"


def test_a_carousel_may_mix_images_and_video() -> None:
    assert check(media_type=MediaType.CAROUSEL,
                 media_urls=["https://cdn.test/square.jpg", "https://cdn.test/clip.mp4"]).valid


def test_the_cover_must_be_an_image() -> None:
    report = check(media_urls=["https://cdn.test/clip.mp4"], media_type=MediaType.VIDEO,
                   cover_image_url="https://cdn.test/clip.mp4")
    assert codes(report) == {"coverImageUrl": "media_type_mismatch"}


def test_plugins_judge_the_inspected_media() -> None:
    report = check(media_urls=["https://cdn.test/square.jpg", "https://cdn.test/tall.png"])
    issue = report.errors()[0]
    assert (issue.path, issue.message) == ("mediaUrls[1]",
                                           "threadnet: aspect ratio 0.10 is outside 0.5-2")


def test_an_empty_post_is_refused() -> None:
    assert codes(check(text="  ")) == {"text": "required"}
    assert codes(check(text=None, thread=[ThreadItem(text="")])) == {
        "text": "required", "thread[0]": "required"}


# --- platformConfig ---------------------------------------------------------------------


def test_platform_config_keys_are_checked() -> None:
    report = check(account_ids=["acc_t"], platform_config={
        "threadnet": {"title": "T", "privcy": "public"},
        "youtube": {"title": "x"},
        "plainnet": {"note": "n"},
    })
    assert codes(report) == {"platformConfig.threadnet.privcy": "unknown_key",
                             "platformConfig.youtube": "unknown_platform"}
    unknown_key = report.errors()[0]
    assert unknown_key.message == "unknown option 'privcy' for Threadnet (accepted: privacy, " \
                                  "title)"
    assert paths(report.request_warnings) == ["platformConfig.plainnet"]


def test_platform_config_values_must_be_objects() -> None:
    report = check(platform_config={"threadnet": "title=x"})
    assert codes(report) == {"platformConfig.threadnet": "invalid"}
    report = check(platform_config={"threadnet": {"title": 5}})
    assert paths(report.errors()) == ["platformConfig.threadnet.title"]


# --- threads and plugins -----------------------------------------------------------------


def test_thread_items_are_validated_by_a_thread_platform() -> None:
    report = check(text="first", thread=[ThreadItem(text="ok"), ThreadItem(text="y" * 51)])
    assert paths(report.errors()) == ["thread[1].text"]


def test_a_platform_without_threads_warns_and_checks_each_item() -> None:
    report = check(account_ids=["acc_p"], text="first",
                   thread=[ThreadItem(text="z" * 30, media_urls=["https://cdn.test/clip.mp4"])])
    assert paths(report.errors()) == ["thread[0].text", "thread[0].mediaUrls[0]"]
    warning = report.results[0].warnings[0]
    assert (warning.path, warning.code) == ("thread", "no_threads")
    assert "1 thread items will be published as separate posts" in warning.message


def test_validate_post_hooks_add_rules() -> None:
    class NoMondays:
        @hookimpl
        def chat33_validate_post(self, draft: PostDraft, account: Account,
                                 platform: PlatformBase) -> list[Issue]:
            if draft.text and "monday" in draft.text.lower():
                return [Issue("text", f"no Mondays on {platform.name}", "house_rule")]
            return []

    host = make_host(NoMondays())
    report = check(text="Monday launch", account_ids=["acc_t", "acc_p"], host=host)
    assert [i.message for i in report.errors()] == ["threadnet: no Mondays on threadnet",
                                                    "plainnet: no Mondays on plainnet"]


@pytest.mark.parametrize(("behaviour", "outcome"), [
    ("crash", PluginError), ("none", PluginError), ("raise_validation", "issue"),
])
def test_a_broken_plugin_is_a_typed_error(behaviour: str, outcome: Any) -> None:
    class Broken(PlatformBase):
        name = "brokennet"

        def validate(self, draft: PostDraft, account: Account) -> list[Issue]:
            if behaviour == "crash":
                raise KeyError("oops")
            if behaviour == "none":
                return None  # type: ignore[return-value]
            raise ValidationError("caption has a banned word")

    class Plugin:
        @hookimpl
        def chat33_register_platforms(self, register: Callable[..., None]) -> None:
            register(Broken)

    host = make_host(Plugin())
    accounts = {"acc_b": account("acc_b", "brokennet")}
    if outcome == "issue":
        report = check(account_ids=["acc_b"], host=host, accounts=accounts)
        assert [i.message for i in report.errors()] == ["brokennet: caption has a banned word"]
    else:
        with pytest.raises(outcome, match="brokennet plugin's validate"):
            check(account_ids=["acc_b"], host=host, accounts=accounts)


# --- with real files, through the media store ---------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("cdn")
    make_image(root / "photo.jpg", 1080, 1350)
    make_video(root / "clip.mp4", 360, 640, seconds=0.5)
    (root / "fake.jpg").write_text("<!DOCTYPE html><html>gone</html>")
    with serve_directory(root) as url:
        yield url


def test_real_media_through_the_guarded_ingestor(served: str, tmp_path: Path) -> None:
    store = MediaStore(tmp_path / "media", "http://127.0.0.1:8000")
    with GuardedClient(Settings(allow_private_urls=True)) as client:
        ingestor = MediaIngestor(store, client, org_id="org_1", keep=False)
        report = check(media_urls=[f"{served}/photo.jpg", f"{served}/fake.jpg"],
                       cover_image_url=f"{served}/clip.mp4", inspect=ingestor)
    assert codes(report) == {"mediaUrls[1]": "media", "coverImageUrl": "media_type_mismatch"}
    assert "HTML page" in report.errors()[0].message
    photo, fake, clip = converter.unstructure(report)["media"]
    assert (photo["format"], photo["width"], photo["height"]) == ("JPEG", 1080, 1350)
    assert clip["videoCodec"] == "h264" and clip["durationS"] == pytest.approx(0.5, abs=0.1)
    assert fake["valid"] is False


def test_private_media_urls_are_refused_by_the_guard(served: str, tmp_path: Path) -> None:
    store = MediaStore(tmp_path / "media", "https://chat33.example.com")
    with GuardedClient(Settings()) as client:
        report = check(media_urls=[f"{served}/photo.jpg"],
                       inspect=MediaIngestor(store, client, org_id="org_1", keep=False))
    issue = report.errors()[0]
    assert (issue.path, issue.code) == ("mediaUrls[0]", "blocked_address")


# --- property tests ------------------------------------------------------------------------

URLS = [*MEDIA, "https://cdn.test/random-1", "https://cdn.test/random-2", "not a url", "",
        "ftp://cdn.test/a.jpg", "http://10.0.0.1/x.jpg"]

media_infos = st.builds(
    MediaInfo,
    kind=st.sampled_from(["image", "gif", "video", "audio", ""]),
    format=st.text(max_size=8), mime_type=st.text(max_size=12),
    size=st.integers(min_value=-1, max_value=2**40),
    width=st.none() | st.integers(min_value=-10, max_value=100_000),
    height=st.none() | st.integers(min_value=-10, max_value=100_000),
    rotation=st.integers(min_value=-360, max_value=720),
    frames=st.integers(min_value=-1, max_value=100_000),
    duration_s=st.none() | st.floats(allow_nan=True, allow_infinity=True),
    frame_rate=st.none() | st.floats(allow_nan=True, allow_infinity=True),
    video_codec=st.none() | st.text(max_size=6), audio_codec=st.none() | st.text(max_size=6),
    audio_sample_rate=st.none() | st.integers(), bitrate=st.none() | st.integers(),
    has_audio=st.booleans(), animated=st.booleans(), mode=st.none() | st.text(max_size=4),
)
outcomes = st.one_of(
    media_infos,
    st.builds(MediaError, st.text(min_size=1, max_size=30)),
    st.builds(lambda m: FetchError(m, reason="timeout"), st.text(min_size=1, max_size=30)),
)
urls = st.sampled_from(URLS) | st.text(max_size=30)
iso_times = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                         timezones=st.none() | st.timezones()).map(lambda d: d.isoformat())
requests = st.builds(
    PostRequest,
    account_ids=st.lists(st.sampled_from([*ACCOUNTS, "acc_other", ""]), max_size=5),
    text=st.none() | st.text(max_size=80),
    media_urls=st.lists(urls, max_size=4),
    media_type=st.none() | st.sampled_from(MediaType),
    cover_image_url=st.none() | urls,
    platform_config=st.dictionaries(
        st.sampled_from(["threadnet", "plainnet", "youtube"]) | st.text(max_size=6),
        st.none() | st.integers() | st.dictionaries(
            st.sampled_from(["title", "privacy", "note", "bogus"]) | st.text(max_size=4),
            st.none() | st.integers() | st.text(max_size=8), max_size=3),
        max_size=3),
    callback_url=st.none() | st.sampled_from(["https://hooks.test/x", "http://10.1.1.1/",
                                              "ftp://x"]) | st.text(max_size=30),
    scheduled_at=st.none() | iso_times | st.text(max_size=30),
    timezone=st.sampled_from(["UTC", "America/New_York", "Europe/Paris", "Asia/Kolkata",
                              "Mars/Olympus", "", "../etc", "Etc/GMT+5"]) | st.text(max_size=12),
    thread=st.lists(st.builds(ThreadItem, text=st.none() | st.text(max_size=60),
                              media_urls=st.lists(urls, max_size=2)), max_size=3),
)


def assert_well_formed(report: ValidationReport, request: PostRequest) -> None:
    data = converter.unstructure(report)
    json.dumps(data, allow_nan=True)
    assert report.valid == (not report.errors()) == data["valid"]
    assert all(r.account_id in request.account_ids for r in report.results)
    for issue in [*report.errors(), *report.warnings()]:
        assert isinstance(issue.path, str) and issue.message
    assert all(i.severity == "error" for i in report.errors())
    if not report.valid:
        assert error_json(ValidationError("invalid", details=report.errors()))["details"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(request=requests, table=st.dictionaries(st.sampled_from(URLS), outcomes),
       now=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                        timezones=st.just(UTC)))
def test_any_request_and_media_give_a_report(request: PostRequest,
                                             table: dict[str, MediaInfo | Chat33Error],
                                             now: datetime) -> None:
    report = check(request, inspect=Inspector(table), now=now)
    assert_well_formed(report, request)


anything = st.none() | st.integers() | st.text(max_size=10) | st.lists(st.integers(), max_size=2)


@settings(max_examples=100, deadline=None)
@given(fields=st.fixed_dictionaries({}, optional={
    "text": anything, "media_urls": anything, "media_type": anything,
    "cover_image_url": anything, "platform_config": anything, "callback_url": anything,
    "scheduled_at": anything, "timezone": anything, "thread": anything | st.lists(anything),
}), ids=anything | st.lists(st.sampled_from(list(ACCOUNTS)) | anything, max_size=3))
def test_wrongly_typed_fields_give_a_report_or_a_typed_error(fields: dict[str, Any],
                                                             ids: Any) -> None:
    request = PostRequest(account_ids=ids, **fields)
    try:
        report = check(request)
    except Chat33Error:
        return
    assert isinstance(report, ValidationReport)
    if isinstance(ids, list):
        assert_well_formed(report, request)


@given(at=iso_times | st.text(max_size=40), tz=st.text(max_size=20) | st.timezone_keys(),
       # a clock in this era: near year 1, ``now - SCHEDULE_GRACE`` is out of range
       now=st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(9000, 1, 1),
                        timezones=st.just(UTC)))
@settings(max_examples=200, deadline=None)
def test_parse_schedule_returns_utc_or_a_validation_error(at: str, tz: str,
                                                          now: datetime) -> None:
    try:
        when = parse_schedule(at, tz, now)
    except ValidationError as exc:
        assert exc.details and {d.path for d in exc.details} <= {"scheduledAt", "timezone"}
        return
    assert when is not None and when.utcoffset() == timedelta(0)
    assert when >= now - SCHEDULE_GRACE


def test_a_wrong_kind_of_cover_does_not_hide_the_plugins_media_rules() -> None:
    report = check(media_urls=["https://cdn.test/tall.png"],
                   cover_image_url="https://cdn.test/clip.mp4")
    assert codes(report) == {"coverImageUrl": "media_type_mismatch", "mediaUrls[0]": "aspect"}
