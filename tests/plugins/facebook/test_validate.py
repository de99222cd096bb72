"""Preflight rules, on inspected media facts and without the network."""

from __future__ import annotations

from pathlib import Path

from attrs import evolve
from chat33_facebook import FacebookPlatform

from chat33_core.config import Settings
from chat33_core.media import IMAGE, VIDEO, MediaInfo, inspect
from chat33_core.models import Account, MediaType
from chat33_core.platforms import PostDraft
from chat33_core.testing import validate_draft

ACCOUNT = Account(id="chan_1", org_id="org_1", platform="facebook", name="Page")
REEL = MediaInfo(kind=VIDEO, format="MPEG-4", mime_type="video/mp4", size=5_000_000,
                 width=1080, height=1920, duration_s=20.0, frame_rate=30.0, video_codec="h264",
                 audio_codec="aac", has_audio=True)
PHOTO = MediaInfo(kind=IMAGE, format="JPEG", mime_type="image/jpeg", size=300_000,
                  width=1080, height=1080)


def check(text: str | None = "hi", media: list[MediaInfo] | None = None,
          media_type: MediaType | None = None, config: dict | None = None,
          env: dict[str, str] | None = None, path: str = "") -> list:
    platform = FacebookPlatform(Settings.from_env(env or {}))
    draft = PostDraft(text=text, media_type=media_type, media=media or [],
                      platform_config={"facebook": config or {}}, path=path)
    return validate_draft(platform, draft, ACCOUNT)


def errors(issues: list) -> list[tuple[str, str]]:
    return [(i.path, i.message) for i in issues if i.severity == "error"]


def test_plain_text_and_a_good_reel_pass() -> None:
    assert check() == []
    assert check(media=[REEL], media_type=MediaType.REEL) == []


def test_text_limit_is_63206_and_configurable() -> None:
    assert check("x" * 63_206) == []
    [(path, message)] = errors(check("x" * 63_207))
    assert path == "text" and "63207" in message and "63206" in message
    [(_, message)] = errors(check("x" * 501, env={"CHAT33_FACEBOOK_MAX_TEXT": "500"}))
    assert "at most 500" in message


def test_a_post_needs_text_media_or_a_link() -> None:
    assert errors(check(None))
    assert check(None, config={"link": "https://example.org"}) == []


def test_config_keys_are_checked() -> None:
    issues = errors(check(config={"type": "story", "link": "ftp://x", "title": "",
                                  "firstComment": 5}))
    assert sorted(p for p, _ in issues) == [
        "platformConfig.facebook.firstComment", "platformConfig.facebook.link",
        "platformConfig.facebook.title", "platformConfig.facebook.type"]


def test_link_cannot_ride_along_with_media() -> None:
    [(path, _)] = errors(check(media=[PHOTO], config={"link": "https://example.org"}))
    assert path == "platformConfig.facebook.link"


def test_inspected_photo_files_pass(tmp_path: Path) -> None:
    from chat33_core.testing import make_gif, make_image

    files = [make_image(tmp_path / "a.jpg"), make_image(tmp_path / "b.png", fmt="PNG"),
             make_image(tmp_path / "c.bmp", fmt="BMP"), make_image(tmp_path / "d.tif",
                                                                   fmt="TIFF"),
             make_gif(tmp_path / "e.gif")]
    assert check(media=[inspect(f) for f in files]) == []


def test_photo_format_and_size_are_limited(tmp_path: Path) -> None:
    from chat33_core.testing import make_image

    webp = inspect(make_image(tmp_path / "a.webp", fmt="WEBP"))
    big = evolve(PHOTO, size=11 * 1024 * 1024)
    issues = errors(check(media=[webp, big]))
    assert issues[0][0] == "mediaUrls[0]" and "WEBP" in issues[0][1]
    assert issues[1] == ("mediaUrls[1]", "photo is 11.0 MB; Facebook accepts at most 10.0 MB")
    assert check(media=[big], env={"CHAT33_FACEBOOK_MAX_PHOTO_BYTES": str(20 * 1024**2)}) == []


def test_at_most_ten_photos_configurable() -> None:
    assert check(media=[PHOTO] * 10) == []
    [(path, message)] = errors(check(media=[PHOTO] * 11))
    assert path == "mediaUrls" and "11 photos" in message
    assert errors(check(media=[PHOTO] * 4, env={"CHAT33_FACEBOOK_MAX_PHOTOS": "3"}))


def test_photos_and_video_do_not_mix() -> None:
    assert errors(check(media=[REEL, PHOTO]))


def test_reel_rules_name_the_limit_and_the_value() -> None:
    bad = evolve(REEL, duration_s=95.0, frame_rate=20.0, width=480, height=854,
                 video_codec="mpeg4", audio_codec="mp3")
    messages = [m for _, m in errors(check(media=[bad], media_type=MediaType.REEL))]
    assert messages == [
        "reel duration 95.0 s is outside 3 to 90 s",
        "reel frame rate 20 fps is outside 24 to 60 fps",
        "reel is 480x854; the minimum is 540x960",
        "reel video codec mpeg4 is not H.264, H.265, VP9 or AV1",
        "reel audio codec mp3 is not AAC",
    ]


def test_reel_not_9_16_is_a_warning() -> None:
    [issue] = check(media=[evolve(REEL, width=1080, height=1350)],
                    media_type=MediaType.REEL)
    assert issue.severity == "warning" and "0.80" in issue.message


def test_reel_from_a_real_file(tmp_path: Path) -> None:
    from chat33_core.testing import make_video

    short = inspect(make_video(tmp_path / "r.mp4", width=540, height=960, seconds=1.0))
    [(_, message)] = errors(check(media=[short], config={"type": "reel"}))
    assert message.startswith("reel duration 1.0 s is outside 3 to 90 s")


def test_video_posts_are_mp4_within_the_configured_size_and_length() -> None:
    mov = evolve(REEL, format="QuickTime", mime_type="video/quicktime")
    assert "MP4 only" in errors(check(media=[mov], media_type=MediaType.VIDEO))[0][1]
    long = evolve(REEL, duration_s=3 * 3600.0)
    assert check(media=[long], media_type=MediaType.VIDEO) == []
    [(_, message)] = errors(check(media=[long], media_type=MediaType.VIDEO,
                                  env={"CHAT33_FACEBOOK_MAX_VIDEO_SECONDS": "3600"}))
    assert message == "video lasts 10800.0 s; the configured maximum is 3600 s"
    huge = evolve(REEL, size=11 * 1024**3)
    assert "the configured maximum is 10240.0 MB" in errors(
        check(media=[huge], media_type=MediaType.VIDEO))[0][1]


def test_paths_follow_the_draft_prefix() -> None:
    [(path, _)] = errors(check("x" * 70_000, path="thread[0]."))
    assert path == "thread[0].text"
