"""Publishing against the sandbox over real HTTP: the resumable upload protocol,
interruptions, expired sessions, thumbnails."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest
from chat33_youtube import YouTubePlatform

from chat33_core.config import Settings
from chat33_core.platforms import MediaFile
from chat33_core.testing import make_sparse_file

from .conftest import CHUNK, UNIT, video_info
from .helpers import HookedCheckpoints, crc32_of, events_named


@pytest.fixture
def publish(platform: YouTubePlatform, context: Any) -> Any:
    """``result, ctx, events = publish([video], config=..., cover=..., ...)``"""

    def run(media: list[MediaFile], config: Any = None, **kw: Any) -> Any:
        if config is not None:
            kw["platform_config"] = config
        ctx, events = context(media=media, **kw)
        result = kw.get("platform", platform).publish(ctx)
        return result, ctx, events

    return run


def test_uploads_in_chunks_and_returns_the_watch_url(publish, video, url, state):
    result, ctx, events = publish([video])

    [uploaded] = state()["videos"]
    receipt = result.first
    assert receipt.external_id == uploaded["id"]
    assert receipt.external_url == f"https://www.youtube.com/watch?v={uploaded['id']}"
    assert receipt.post_id == ctx.post_id
    assert (uploaded["size"], uploaded["crc32"]) == (video.path.stat().st_size,
                                                     crc32_of(video.path))
    assert uploaded["contentType"] == "video/mp4"
    [session] = state()["sessions"]
    assert session["starts"] == [0, CHUNK, 2 * CHUNK, 3 * CHUNK]
    saved = ctx.checkpoints.load()
    assert saved["videoId"] == uploaded["id"] and saved["bytesUploaded"] == 3 * CHUNK
    assert saved["sessionUri"].startswith(f"{url}/upload/youtube/v3/videos?")
    assert "upload_id=" in saved["sessionUri"]
    assert events_named(events, "uploaded")


def test_sends_the_metadata_as_the_video_resource(publish, video, state):
    config = {"youtube": {"title": "Title", "tags": ["a", "b c"], "categoryId": "22",
                          "privacyStatus": "private", "publishAt": "2031-01-01T10:00:00Z",
                          "selfDeclaredMadeForKids": True, "containsSyntheticMedia": False,
                          "notifySubscribers": False}}
    publish([video], config=config, text="Words and more")
    [uploaded] = state()["videos"]
    [session] = state()["sessions"]
    snippet, status = uploaded["snippet"], uploaded["status"]
    assert (snippet["title"], snippet["description"]) == ("Title", "Words and more")
    assert (snippet["tags"], snippet["categoryId"]) == (["a", "b c"], "22")
    assert status["privacyStatus"] == "private"
    assert status["publishAt"] == "2031-01-01T10:00:00Z"
    assert status["selfDeclaredMadeForKids"] is True
    assert status["containsSyntheticMedia"] is False
    assert session["notifySubscribers"] == "false"


def test_without_a_title_the_first_line_of_the_text_is_used(publish, video, state):
    config = {"youtube": {"selfDeclaredMadeForKids": False}}
    publish([video], config=config, text="\nFirst line here\nmore")
    [uploaded] = state()["videos"]
    assert uploaded["snippet"]["title"] == "First line here"
    assert uploaded["status"]["privacyStatus"] == "public"


def test_a_short_gets_the_shorts_url(publish, short_video):
    result, _, _ = publish([short_video])
    assert result.first.external_url == \
        f"https://www.youtube.com/shorts/{result.first.external_id}"
    assert result.first.extra["short"] is True


def test_a_dropped_connection_is_probed_and_resumed(publish, video, control,
                                                    state):
    # the first chunk arrives whole and its answer is lost; the second dies 10 bytes
    # into its second 256 KiB unit
    control("POST", "/_sandbox/drops", json={"afterBytes": CHUNK + 1000})
    control("POST", "/_sandbox/drops", json={"afterBytes": UNIT + 10})
    result, _, events = publish([video])

    s = state()
    [uploaded], [session] = s["videos"], s["sessions"]
    assert s["dropped"] == 2
    assert result.first.external_id == uploaded["id"]
    assert uploaded["crc32"] == crc32_of(video.path)
    # nothing of the first chunk was lost; the second lost the unit in flight and the
    # upload resumed after the last whole unit
    assert session["starts"] == [0, CHUNK, CHUNK + UNIT, 2 * CHUNK + UNIT]
    assert len(events_named(events, "upload_interrupted")) == 2
    assert "resuming there" in events_named(events, "upload_resumed")[-1]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_5xx_on_a_chunk_is_probed_and_resumed(publish, video, control, state,
                                                status):
    # the chunk arrived, the answer is lost behind a server error
    control("POST", "/_sandbox/faults", json={"method": "PUT", "path": "/upload/",
                                              "status": status, "after_body": True})
    _, _, events = publish([video])
    [uploaded] = state()["videos"]
    assert uploaded["crc32"] == crc32_of(video.path)
    assert state()["sessions"][0]["starts"] == [0, CHUNK, 2 * CHUNK, 3 * CHUNK]
    assert f"answered {status}" in events_named(events, "upload_interrupted")[0]


def test_the_lost_answer_to_the_last_chunk_returns_the_video_from_the_probe(
        publish, video, control, state):
    # three chunks go through; the last one arrives whole and its answer is lost
    last = video.path.stat().st_size - 3 * CHUNK

    def hook(new: dict[str, Any], old: dict[str, Any]) -> None:
        if new.get("bytesUploaded") == 3 * CHUNK and old.get("bytesUploaded") != 3 * CHUNK:
            control("POST", "/_sandbox/drops", json={"afterBytes": last})

    result, _, events = publish([video],
                                checkpoints=HookedCheckpoints(hook))
    [uploaded] = state()["videos"]
    assert result.first.external_id == uploaded["id"]
    assert state()["dropped"] == 1
    assert state()["sessions"][0]["starts"] == [0, CHUNK, 2 * CHUNK, 3 * CHUNK]
    assert events_named(events, "upload_interrupted")


def test_an_expired_session_starts_over_from_byte_zero(publish, video, control,
                                                      state):
    def hook(new: dict[str, Any], old: dict[str, Any]) -> None:
        if new.get("bytesUploaded") == CHUNK and old.get("bytesUploaded") != CHUNK \
                and len(state()["sessions"]) == 1:
            control("POST", "/_sandbox/expire", json={})

    result, _, events = publish([video],
                                checkpoints=HookedCheckpoints(hook))
    s = state()
    # the first session's second chunk met the 404 (and was not taken)
    assert [x["starts"] for x in s["sessions"]] == [[0], [0, CHUNK, 2 * CHUNK, 3 * CHUNK]]
    [uploaded] = s["videos"]
    assert uploaded["crc32"] == crc32_of(video.path)
    assert result.first.external_id == uploaded["id"]
    assert events_named(events, "upload_session_expired")


def test_the_thumbnail_is_set_after_the_upload(publish, video, thumbnail, state):
    result, ctx, events = publish([video], cover=thumbnail)
    [uploaded] = state()["videos"]
    assert uploaded["thumbnail"] == {"format": "JPEG", "size": thumbnail.path.stat().st_size}
    assert result.first.extra["thumbnail"] == "set"
    assert ctx.checkpoints.load()["thumbnail"] == "set"
    assert events_named(events, "thumbnail_set")


def test_a_refused_thumbnail_leaves_the_video_published(publish, video, thumbnail,
                                                        control, state):
    control("POST", "/_sandbox/config", json={"thumbnailsAllowed": False})
    result, _, events = publish([video], cover=thumbnail)
    [uploaded] = state()["videos"]
    assert result.first.external_id == uploaded["id"] and uploaded["thumbnail"] is None
    assert result.first.extra["thumbnail"] == "refused"
    [message] = events_named(events, "thumbnail_refused")
    assert "custom video thumbnails" in message and "published" in message


def test_a_busy_thumbnail_endpoint_is_tried_again(publish, video, thumbnail,
                                                  control, state):
    control("POST", "/_sandbox/faults", json={"path": "/thumbnails/", "status": 503,
                                              "count": 2})
    result, _, _ = publish([video], cover=thumbnail)
    assert result.first.extra["thumbnail"] == "set"
    assert state()["videos"][0]["thumbnail"]["format"] == "JPEG"


def test_the_session_location_follows_a_prefix_mount(publish, video):
    """``chat33 sandbox`` serves every sandbox under /<name>: the Location stays there."""
    from chat33_youtube.sandbox import YouTubeSandbox

    from chat33_core.sandbox import PrefixDispatcher, serve

    with serve(PrefixDispatcher({"youtube": YouTubeSandbox()})) as root:
        settings = Settings.from_env({"CHAT33_YOUTUBE_API_BASE": f"{root}/youtube",
                                      "CHAT33_YOUTUBE_CHUNK_SIZE": str(CHUNK)})
        result, ctx, _ = publish([video], platform=YouTubePlatform(settings),
                                 settings=settings)
    assert ctx.checkpoints.load()["sessionUri"].startswith(
        f"{root}/youtube/upload/youtube/v3/videos?")
    assert result.first.external_id


@pytest.mark.slow
def test_128_mb_upload_survives_two_interruptions_in_flat_memory(
        publish, tmp_path: Path, url: str, control, state):
    # four 32 MiB chunks, six times the memory allowed below: enough to show that neither
    # the file nor a chunk is ever held (300 MB took three times as long, proving no more)
    size = 128 * 1024 * 1024 + 12_345
    path = make_sparse_file(tmp_path / "big.mp4", size, head=b"\0\0\0\x18ftypmp42")
    with path.open("r+b") as fh:  # markers, so a misplaced chunk changes the checksum
        for offset in range(0, size - 16, 7 * 1024 * 1024 + 3):
            fh.seek(offset)
            fh.write(offset.to_bytes(8, "big"))
    video = MediaFile(path=path, info=video_info(size), url="http://127.0.0.1:9/big.mp4")
    settings = Settings.from_env({"CHAT33_YOUTUBE_API_BASE": url,
                                  "CHAT33_YOUTUBE_CHUNK_SIZE": str(32 * 1024 * 1024),
                                  "CHAT33_POLL_INTERVAL_S": "0.001"})
    control("POST", "/_sandbox/drops", json={"afterBytes": 3 * 1024 * 1024 + 17})
    # the second interruption: mid-file, once 64 MiB are confirmed
    armed: list[bool] = []

    def hook(new: dict[str, Any], old: dict[str, Any]) -> None:
        if new.get("bytesUploaded", 0) >= 64 * 1024 * 1024 and not armed:
            armed.append(True)
            control("POST", "/_sandbox/drops", json={"afterBytes": 5 * 1024 * 1024 + 99})

    gc.collect()
    baseline = reset_peak_rss()
    result, _, events = publish([video], checkpoints=HookedCheckpoints(hook),
                                platform=YouTubePlatform(settings), settings=settings)
    growth = peak_rss() - baseline

    s = state()
    [uploaded] = s["videos"]
    assert s["dropped"] == 2 and len(s["sessions"]) == 1
    assert result.first.external_id == uploaded["id"]
    assert (uploaded["size"], uploaded["crc32"]) == (size, crc32_of(path))
    assert len(events_named(events, "upload_interrupted")) == 2
    # client and sandbox (same process) together: a few read buffers, never the file
    # nor a whole 32 MiB chunk
    assert growth < 20 * 1024 * 1024, f"peak RSS grew by {growth:,} bytes"


def reset_peak_rss() -> int:
    """Reset the kernel's high-water mark of this process's RSS; return the RSS now.
    (RSS, not tracemalloc: tracing every allocation of two busy threads makes them
    hand the GIL back and forth and the upload ten times slower.)"""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_kb("VmRSS") * 1024


def peak_rss() -> int:
    return _status_kb("VmHWM") * 1024


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} missing from /proc/self/status")
