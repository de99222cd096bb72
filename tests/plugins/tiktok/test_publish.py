"""Publishing flows against the TikTok sandbox over real HTTP."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from chat33_core.errors import PermanentError
from chat33_core.testing import make_sparse_file

from .conftest import MB, TT


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while piece := fh.read(MB):
            digest.update(piece)
    return digest.hexdigest()


def test_video_is_posted_after_creator_info_with_the_caption(tt: TT) -> None:
    media = tt.media("clip.mp4")
    result = tt.platform.publish(tt.ctx(media, text="hello #chat33 🎉"))
    state = tt.state()
    assert len(state["posts"]) == 1
    post = state["posts"][0]
    assert post["title"] == "hello #chat33 🎉"
    assert post["privacyLevel"] == "PUBLIC_TO_EVERYONE"
    assert post["sha256"] == sha256(media[0].path)
    assert result.first.external_id == str(post["postId"])
    assert result.first.external_url == f"https://www.tiktok.com/@chat33test/video/{post['postId']}"
    assert result.first.extra["publishId"] == post["publishId"]
    paths = tt.paths()
    assert paths[0] == "/v2/post/publish/creator_info/query/"
    assert paths[1] == "/v2/post/publish/video/init/"
    assert paths[2] == "/video/"
    assert paths[-1] == "/v2/post/publish/status/fetch/"


def test_chunked_video_sends_every_chunk_in_order_with_exact_ranges(tt: TT,
                                                                    tmp_path: Path) -> None:
    # 70 MB (over 64 MB: must be chunked) with 5 MB chunks: 14 chunks
    tt.settings = tt.settings.with_(env={**tt.settings.env,
                                         "CHAT33_TIKTOK_CHUNK_BYTES": str(5 * MB)})
    tt.platform = type(tt.platform)(tt.settings)
    path = tmp_path / "big.mp4"
    make_sparse_file(path, 70 * MB, head=(tt.media_dir / "clip.mp4").read_bytes())
    info = tt.media("clip.mp4")[0].info
    from chat33_core.platforms import MediaFile

    media = [MediaFile(path=path, info=info, url=f"{tt.media_url}/big.mp4")]
    events: list = []
    tt.platform.publish(tt.ctx(media, events=events))
    publish = next(iter(tt.state()["publishes"].values()))
    assert publish["chunkSize"] == 5 * MB and publish["totalChunks"] == 14
    assert publish["chunksReceived"] == 14
    assert publish["sha256"] == sha256(path)
    chunk_events = [e for e in events if e[0] == "tiktok.chunk"]
    assert [e[2]["uploaded_bytes"] for e in chunk_events][-1] == 70 * MB


def test_photos_are_pulled_from_our_media_urls_as_a_direct_post(tt: TT) -> None:
    media = tt.media("one.jpg", "two.webp")
    result = tt.platform.publish(tt.ctx(media, text="two photos",
                                        config={"title": "Cats", "autoAddMusic": True}))
    state = tt.state()
    post = state["posts"][0]
    assert post["kind"] == "photo"
    assert post["description"] == "two photos" and post["title"] == "Cats"
    assert post["postInfo"]["auto_add_music"] is True
    publish = state["publishes"][post["publishId"]]
    assert [i["url"] for i in publish["images"]] == [m.url for m in media]
    assert [i["sha256"] for i in publish["images"]] == [sha256(m.path) for m in media]
    assert "/photo/" in (result.first.external_url or "")


def test_photo_pull_of_a_png_fails_with_the_fail_reason(tt: TT) -> None:
    with pytest.raises(PermanentError) as err:
        tt.platform.publish(tt.ctx(tt.media("three.png")))
    assert err.value.platform_code == "file_format_check_failed"
    assert "file_format_check_failed" in err.value.message
    assert tt.state()["posts"] == []


def test_interactions_the_creator_turned_off_are_sent_disabled(tt: TT) -> None:
    tt.configure(duetDisabled=True, commentDisabled=True)
    events: list = []
    tt.platform.publish(tt.ctx(tt.media("clip.mp4"), events=events, config={
        "disableDuet": False, "disableStitch": True, "isAigc": True,
        "videoCoverTimestampMs": 500, "brandOrganicToggle": True}))
    info = tt.state()["posts"][0]["postInfo"]
    assert info["disable_duet"] is True and info["disable_comment"] is True
    assert info["disable_stitch"] is True and info["is_aigc"] is True
    assert info["video_cover_timestamp_ms"] == 500 and info["brand_organic_toggle"] is True
    assert {e[2]["field"] for e in events if e[0] == "tiktok.interaction_disabled"} == {
        "disable_duet", "disable_comment"}


def test_video_longer_than_the_creator_may_post_fails_before_init(tt: TT) -> None:
    tt.configure(maxDurationSec=0)
    with pytest.raises(PermanentError) as err:
        tt.platform.publish(tt.ctx(tt.media("clip.mp4")))
    assert err.value.platform_code == "duration_over_creator_limit"
    assert tt.state()["inits"] == 0


def test_post_awaiting_moderation_is_identified_by_its_publish_id(tt: TT) -> None:
    tt.configure(moderationPending=True)
    result = tt.platform.publish(tt.ctx(tt.media("clip.mp4")))
    publish_id = tt.state()["posts"][0]["publishId"]
    assert result.first.external_id == publish_id and result.first.external_url is None
    assert result.first.extra["publiclyAvailable"] is False


def test_media_upload_mode_sends_video_to_the_creators_inbox(tt: TT) -> None:
    result = tt.platform.publish(tt.ctx(tt.media("clip.mp4"),
                                        config={"postMode": "MEDIA_UPLOAD"}))
    assert "/v2/post/publish/inbox/video/init/" in tt.paths()
    assert result.first.extra["inbox"] is True
    assert result.first.external_id.startswith("v_inbox_file~")
    assert tt.state()["posts"] == []


def test_media_upload_mode_for_photos(tt: TT) -> None:
    result = tt.platform.publish(tt.ctx(tt.media("one.jpg"),
                                        config={"postMode": "MEDIA_UPLOAD"}))
    assert result.first.extra["inbox"] is True


def test_sandbox_mounted_under_a_prefix_still_hands_out_working_upload_urls(
        tt: TT) -> None:
    from chat33_tiktok.sandbox import TikTokSandbox

    from chat33_core.config import Settings
    from chat33_core.sandbox import PrefixDispatcher, serve

    app = TikTokSandbox()
    with serve(PrefixDispatcher({"tiktok": app})) as url:
        settings = Settings.from_env({"CHAT33_TIKTOK_API_BASE": f"{url}/tiktok",
                                      "CHAT33_POLL_INTERVAL_S": "0.001"})
        platform = type(tt.platform)(settings)
        tt.platform, tt.settings = platform, settings
        platform.publish(tt.ctx(tt.media("clip.mp4")))
    publish = next(iter(app.state()["publishes"].values()))
    assert publish["uploadedBytes"] == publish["videoSize"]
    assert len(app.state()["posts"]) == 1
