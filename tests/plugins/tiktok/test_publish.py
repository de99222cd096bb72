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
