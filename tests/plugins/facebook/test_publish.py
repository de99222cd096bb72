"""Every publishing flow against the sandbox, over real HTTP on loopback."""

from __future__ import annotations

import hashlib
from pathlib import Path

from chat33_core.models import MediaType

from .conftest import FB, PAGE_ID


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_text_post_goes_to_the_page_feed(fb: FB) -> None:
    result = fb.platform.publish(fb.ctx("Plain words for the Page"))
    receipt = result.first
    assert receipt.external_id.startswith(f"{PAGE_ID}_")
    assert receipt.external_url == f"https://www.facebook.com/{PAGE_ID}/posts/" \
        + receipt.external_id.split("_")[1]
    [post] = fb.state()["posts"]
    assert (post["id"], post["type"], post["message"]) == (
        receipt.external_id, "status", "Plain words for the Page")
    assert "scheduled_publish_time" not in post["params"]
    assert "published" not in post["params"]


def test_link_post_sends_the_configured_link(fb: FB) -> None:
    fb.platform.publish(fb.ctx("Read this", config={"link": "https://example.org/a"}))
    [post] = fb.state()["posts"]
    assert (post["type"], post["link"]) == ("link", "https://example.org/a")


def test_link_only_post_needs_no_text(fb: FB) -> None:
    fb.platform.publish(fb.ctx(None, config={"link": "https://example.org/b"}))
    [post] = fb.state()["posts"]
    assert post["message"] == "" and post["link"] == "https://example.org/b"


def test_one_photo_is_fetched_by_facebook_from_its_url(fb: FB) -> None:
    media = fb.media("one.jpg")
    receipt = fb.platform.publish(fb.ctx("A photo", media=media,
                                         media_type=MediaType.IMAGE)).first
    state = fb.state()
    [photo] = state["photos"]
    assert photo["source"] == media[0].url and photo["format"] == "JPEG"
    assert photo["sha256"] == sha(fb.media_dir / "one.jpg")
    [post] = state["posts"]
    assert post["id"] == receipt.external_id and post["message"] == "A photo"
    assert receipt.extra["photo_id"] == photo["id"]


def test_several_photos_are_uploaded_unpublished_then_attached_to_one_post(fb: FB) -> None:
    names = ("one.jpg", "two.png", "three.jpg")
    receipt = fb.platform.publish(fb.ctx("Three photos", media=fb.media(*names),
                                         media_type=MediaType.CAROUSEL)).first
    state = fb.state()
    photos = state["photos"]
    assert [p["published"] for p in photos] == [False, False, False]
    assert [p["sha256"] for p in photos] == [sha(fb.media_dir / n) for n in names]
    [post] = state["posts"]
    assert post["type"] == "album" and post["attached_media"] == [p["id"] for p in photos]
    assert receipt.extra["photo_ids"] == post["attached_media"]


def test_video_goes_through_the_resumable_upload_api(fb: FB) -> None:
    events: list = []
    path = fb.media_dir / "clip.mp4"
    receipt = fb.platform.publish(fb.ctx("A video", media=fb.media("clip.mp4"),
                                         media_type=MediaType.VIDEO,
                                         config={"type": "video", "title": "Clip"},
                                         events=events)).first
    state = fb.state()
    [upload] = state["uploads"]
    assert upload["complete"] and upload["sha256"] == sha(path)
    [video] = state["videos"]
    assert (video["id"], video["title"], video["description"]) == (
        receipt.external_id, "Clip", "A video")
    assert video["sha256"] == sha(path)
    assert receipt.external_url == f"https://www.facebook.com/{PAGE_ID}/videos/{video['id']}/"
    assert "facebook.upload_session" in [e[0] for e in events]


def test_video_file_is_streamed_in_small_chunks(fb: FB) -> None:
    settings = fb.settings.with_(env={**fb.settings.env,
                                      "CHAT33_FACEBOOK_UPLOAD_CHUNK_BYTES": "4096"})
    platform = type(fb.platform)(settings)
    path = fb.media_dir / "clip.mp4"
    platform.publish(fb.ctx("Chunked video", media=fb.media("clip.mp4"),
                            media_type=MediaType.VIDEO))
    assert fb.state()["uploads"][0]["sha256"] == sha(path)


def test_reel_is_started_uploaded_finished_and_polled_until_published(fb: FB) -> None:
    events: list = []
    path = fb.media_dir / "reel.mp4"
    receipt = fb.platform.publish(fb.ctx("A reel", media=fb.media("reel.mp4"),
                                         media_type=MediaType.REEL,
                                         config={"type": "reel", "title": "R"},
                                         events=events)).first
    state = fb.state()
    [reel] = state["videos"]
    assert reel["id"] == receipt.external_id and reel["sha256"] == sha(path)
    assert (reel["phase"], reel["publish_status"], reel["target"]) == (
        "ready", "published", "PUBLISHED")
    assert reel["description"] == "A reel"
    assert receipt.external_url == f"https://www.facebook.com/reel/{reel['id']}"
    assert [e[0] for e in events].count("facebook.processing") >= 2
    [post] = state["posts"]
    assert post["type"] == "reel" and post["video_id"] == reel["id"]


def test_first_comment_is_posted_once_under_the_post(fb: FB) -> None:
    receipt = fb.platform.publish(fb.ctx("With a comment",
                                         config={"firstComment": "first!"})).first
    [comment] = fb.state()["comments"]
    assert comment["parent"] == receipt.external_id and comment["message"] == "first!"
    assert receipt.extra["comment_id"] == comment["id"]


def test_first_comment_on_a_reel_waits_until_it_is_published(fb: FB) -> None:
    receipt = fb.platform.publish(fb.ctx("Reel with comment", media=fb.media("reel.mp4"),
                                         media_type=MediaType.REEL,
                                         config={"firstComment": "nice"})).first
    [comment] = fb.state()["comments"]
    assert comment["parent"] == receipt.external_id


def test_a_failed_first_comment_does_not_fail_the_published_post(fb: FB) -> None:
    fb.fault(method="POST", path="/comments$", status=400,
             body={"error": {"code": 100, "message": "(#100) Comments are off"}})
    events: list = []
    receipt = fb.platform.publish(fb.ctx("Comment fails", config={"firstComment": "x"},
                                         events=events)).first
    assert "Comments are off" in receipt.extra["first_comment_error"]
    assert len(fb.state()["posts"]) == 1
    assert "facebook.first_comment_failed" in [e[0] for e in events]


def test_permalink_falls_back_when_facebook_cannot_say(fb: FB) -> None:
    fb.fault(method="GET", path=r"^/v\d+\.\d+/\d+_\d+$", status=500, count=1)
    receipt = fb.platform.publish(fb.ctx("No permalink")).first
    assert receipt.external_url == f"https://www.facebook.com/{receipt.external_id}"
