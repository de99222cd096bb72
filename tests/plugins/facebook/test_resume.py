"""Exactly once: interrupted uploads resume from Facebook's offset, a takeover resumes from
the checkpoints, and a creating request without answer is confirmed before any retry."""

from __future__ import annotations

import hashlib

import pytest

from chat33_core.errors import TransientError, UnknownOutcome
from chat33_core.models import MediaType
from chat33_core.platforms import MemoryCheckpoints

from .conftest import FB


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def names(events: list) -> list[str]:
    return [e[0] for e in events]


def test_interrupted_video_upload_resumes_from_the_session_offset(fb: FB) -> None:
    fb.configure(interruptions=[1000, 5000])
    events: list = []
    path = fb.media_dir / "clip.mp4"
    fb.platform.publish(fb.ctx("Resumed video", media=fb.media("clip.mp4"),
                               media_type=MediaType.VIDEO, events=events))
    state = fb.state()
    [upload] = state["uploads"]
    assert upload["sha256"] == sha(path) and upload["file_length"] == path.stat().st_size
    assert names(events).count("facebook.upload_interrupted") == 2
    offsets = [e[2]["offset"] for e in events if e[0] == "facebook.upload_resume"]
    assert offsets == [1000, 6000]
    assert len(state["videos"]) == 1


def test_interrupted_reel_upload_resumes_from_bytes_transfered(fb: FB) -> None:
    fb.configure(interruptions=[20_000])
    events: list = []
    path = fb.media_dir / "reel.mp4"
    fb.platform.publish(fb.ctx("Resumed reel", media=fb.media("reel.mp4"),
                               media_type=MediaType.REEL, events=events))
    [reel] = fb.state()["videos"]
    assert reel["sha256"] == sha(path) and reel["bytes"] == path.stat().st_size
    assert names(events).count("facebook.upload_interrupted") == 1


def test_takeover_mid_video_upload_reuses_the_session_and_posts_once(fb: FB) -> None:
    fb.configure(interruptions=[3000] * 5)  # the first worker gives up after 5 tries
    checkpoints = MemoryCheckpoints()
    path = fb.media_dir / "clip.mp4"
    with pytest.raises(TransientError):
        fb.platform.publish(fb.ctx("Taken over", media=fb.media("clip.mp4"),
                                   media_type=MediaType.VIDEO, checkpoints=checkpoints))
    saved = checkpoints.load()
    assert saved["upload"]["session"].startswith("upload:")
    assert saved["upload"]["offset"] == 12_000 and "post" not in saved
    # another worker takes the post over with the same checkpoints
    result = fb.platform.publish(fb.ctx("Taken over", media=fb.media("clip.mp4"),
                                        media_type=MediaType.VIDEO, checkpoints=checkpoints))
    state = fb.state()
    assert len(state["uploads"]) == 1 and state["uploads"][0]["sha256"] == sha(path)
    [video] = state["videos"]
    assert video["id"] == result.first.external_id


def test_takeover_after_the_video_was_created_does_not_create_it_again(fb: FB) -> None:
    checkpoints = MemoryCheckpoints()
    ctx = fb.ctx("Once only", media=fb.media("clip.mp4"), media_type=MediaType.VIDEO,
                 checkpoints=checkpoints)
    first = fb.platform.publish(ctx).first
    again = fb.platform.publish(fb.ctx("Once only", media=fb.media("clip.mp4"),
                                       media_type=MediaType.VIDEO, checkpoints=checkpoints))
    assert again.first.external_id == first.external_id
    assert len(fb.state()["videos"]) == 1 and len(fb.state()["uploads"]) == 1


def test_takeover_mid_album_does_not_upload_the_photos_again(fb: FB) -> None:
    fb.fault(method="POST", path="/feed$", status=400,
             body={"error": {"code": 17, "message": "(#17) User request limit reached"}})
    checkpoints = MemoryCheckpoints()
    media = fb.media("one.jpg", "two.png")
    with pytest.raises(TransientError):
        fb.platform.publish(fb.ctx("Album", media=media, checkpoints=checkpoints))
    assert len(checkpoints.load()["photos"]) == 2
    fb.platform.publish(fb.ctx("Album", media=media, checkpoints=checkpoints))
    state = fb.state()
    assert len(state["photos"]) == 2 and len(state["posts"]) == 1


def test_takeover_mid_reel_resumes_the_upload_and_finishes_once(fb: FB) -> None:
    fb.configure(interruptions=[10_000] * 5)
    checkpoints = MemoryCheckpoints()
    media = fb.media("reel.mp4")
    with pytest.raises(TransientError):
        fb.platform.publish(fb.ctx("Reel takeover", media=media, media_type=MediaType.REEL,
                                   checkpoints=checkpoints))
    assert checkpoints.load()["reel"]["offset"] == 40_000  # as last probed
    result = fb.platform.publish(fb.ctx("Reel takeover", media=media,
                                        media_type=MediaType.REEL, checkpoints=checkpoints))
    [reel] = fb.state()["videos"]
    assert reel["id"] == result.first.external_id
    assert reel["sha256"] == sha(fb.media_dir / "reel.mp4")


@pytest.mark.parametrize("edge", ["feed", "photos"])
def test_lost_answer_of_a_creating_request_is_an_unknown_outcome_then_confirmed(
        fb: FB, edge: str) -> None:
    fb.fault(method="POST", path=f"/{edge}$", status=502, after_body=True)
    checkpoints = MemoryCheckpoints()
    media = fb.media("one.jpg") if edge == "photos" else []
    with pytest.raises(UnknownOutcome):
        fb.platform.publish(fb.ctx(f"Lost {edge}", media=media, checkpoints=checkpoints))
    [post] = fb.state()["posts"]  # Facebook did act
    confirmed = fb.platform.confirm(fb.ctx(f"Lost {edge}", media=media,
                                           checkpoints=checkpoints))
    assert confirmed is not None and confirmed.first.external_id == post["id"]
    # a retry after the confirmation returns the same post and creates nothing
    again = fb.platform.publish(fb.ctx(f"Lost {edge}", media=media, checkpoints=checkpoints))
    assert again.first.external_id == post["id"]
    assert len(fb.state()["posts"]) == 1


def test_takeover_after_a_lost_answer_checks_recent_posts_before_posting(fb: FB) -> None:
    fb.fault(method="POST", path="/feed$", status=504, after_body=True)
    checkpoints = MemoryCheckpoints()
    with pytest.raises(UnknownOutcome):
        fb.platform.publish(fb.ctx("Worker died", checkpoints=checkpoints))
    events: list = []
    result = fb.platform.publish(fb.ctx("Worker died", checkpoints=checkpoints, events=events))
    [post] = fb.state()["posts"]
    assert result.first.external_id == post["id"]
    assert "facebook.not_found" not in names(events)


def test_a_request_that_never_reached_facebook_is_confirmed_absent_then_sent(fb: FB) -> None:
    fb.fault(method="POST", path="/feed$", status=503)  # refused before acting
    checkpoints = MemoryCheckpoints()
    with pytest.raises(UnknownOutcome):
        fb.platform.publish(fb.ctx("Never arrived", checkpoints=checkpoints))
    assert fb.state()["posts"] == []
    assert fb.platform.confirm(fb.ctx("Never arrived", checkpoints=checkpoints)) is None
    events: list = []
    fb.platform.publish(fb.ctx("Never arrived", checkpoints=checkpoints, events=events))
    assert len(fb.state()["posts"]) == 1 and "facebook.not_found" in names(events)


def test_confirm_without_any_creating_request_says_absent(fb: FB) -> None:
    assert fb.platform.confirm(fb.ctx("Nothing sent")) is None


def test_lost_answer_of_the_video_publish_is_confirmed_from_the_page_videos(fb: FB) -> None:
    fb.fault(method="POST", path=r"/\d+/videos$", status=500, after_body=True)
    checkpoints = MemoryCheckpoints()
    media = fb.media("clip.mp4")
    with pytest.raises(UnknownOutcome):
        fb.platform.publish(fb.ctx("Lost video", media=media, media_type=MediaType.VIDEO,
                                   checkpoints=checkpoints))
    [video] = fb.state()["videos"]
    confirmed = fb.platform.confirm(fb.ctx("Lost video", media=media,
                                           media_type=MediaType.VIDEO, checkpoints=checkpoints))
    assert confirmed is not None and confirmed.first.external_id == video["id"]


def test_lost_answer_of_the_reel_finish_is_confirmed_from_its_status(fb: FB) -> None:
    fb.configure(interruptions=[10_000] * 5)
    checkpoints = MemoryCheckpoints()
    media = fb.media("reel.mp4")
    with pytest.raises(TransientError):  # started, partly uploaded
        fb.platform.publish(fb.ctx("Lost reel", media=media, media_type=MediaType.REEL,
                                   checkpoints=checkpoints))
    fb.fault(method="POST", path="/video_reels$", status=500, after_body=True)
    with pytest.raises(UnknownOutcome):  # the finish arrived, its answer was lost
        fb.platform.publish(fb.ctx("Lost reel", media=media, media_type=MediaType.REEL,
                                   checkpoints=checkpoints))
    confirmed = fb.platform.confirm(fb.ctx("Lost reel", media=media,
                                           media_type=MediaType.REEL, checkpoints=checkpoints))
    [reel] = fb.state()["videos"]
    assert confirmed is not None and confirmed.first.external_id == reel["id"]
    assert reel["publish_status"] == "published"


def test_a_reel_finish_that_never_arrived_is_sent_again(fb: FB) -> None:
    fb.configure(interruptions=[10_000] * 5)
    checkpoints = MemoryCheckpoints()
    media = fb.media("reel.mp4")
    with pytest.raises(TransientError):
        fb.platform.publish(fb.ctx("Reel retry", media=media, media_type=MediaType.REEL,
                                   checkpoints=checkpoints))
    fb.fault(method="POST", path="/video_reels$", status=503)  # refused, not acted
    with pytest.raises(UnknownOutcome):
        fb.platform.publish(fb.ctx("Reel retry", media=media, media_type=MediaType.REEL,
                                   checkpoints=checkpoints))
    result = fb.platform.publish(fb.ctx("Reel retry", media=media, media_type=MediaType.REEL,
                                        checkpoints=checkpoints))
    [reel] = fb.state()["videos"]
    assert result.first.external_id == reel["id"] and reel["publish_status"] == "published"
