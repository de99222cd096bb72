"""Exactly once: a worker taking over asks status/fetch first, resumes the upload from the
byte count TikTok holds, and never inits a second post while the first can publish."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from chat33_tiktok.publishing import uploaded_from_range

from chat33_core.errors import TransientError
from chat33_core.platforms import MediaFile, MemoryCheckpoints
from chat33_core.testing import CrashingCheckpoints, WorkerCrash, make_sparse_file

from .conftest import MB, TT

CHUNK = 5 * MB
SIZE = 22 * MB  # 4 chunks of 5 MB, the last 7 MB
STATUS = "/v2/post/publish/status/fetch/"
INIT = "/v2/post/publish/video/init/"


def dying(at: int, persist: bool) -> CrashingCheckpoints:
    """Checkpoints of a worker that dies once ``uploadedBytes`` reaches ``at``: right
    after saving (``persist=True``) or just before the save reached the database."""
    return CrashingCheckpoints(lambda data: int(data.get("uploadedBytes") or 0) >= at,
                               persist=persist)


@pytest.fixture
def big(tt: TT, tmp_path: Path) -> list[MediaFile]:
    tt.settings = tt.settings.with_(env={**tt.settings.env,
                                         "CHAT33_TIKTOK_CHUNK_BYTES": str(CHUNK)})
    tt.platform = type(tt.platform)(tt.settings)
    path = make_sparse_file(tmp_path / "big.mp4", SIZE,
                            head=(tt.media_dir / "clip.mp4").read_bytes())
    info = tt.media("clip.mp4")[0].info
    return [MediaFile(path=path, info=info, url=f"{tt.media_url}/big.mp4")]


def digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while piece := fh.read(MB):
            h.update(piece)
    return h.hexdigest()


def only_publish(tt: TT) -> dict[str, Any]:
    publishes = tt.state()["publishes"]
    assert len(publishes) == 1
    return next(iter(publishes.values()))


def take_over(tt: TT, big: list[MediaFile], dead: MemoryCheckpoints,
              events: list[Any]) -> tuple[Any, list[str]]:
    """A second worker, starting from what the first one left in the checkpoints."""
    before = len(tt.paths())
    cp = MemoryCheckpoints(dict(dead.data))
    result = tt.platform.publish(tt.ctx(big, checkpoints=cp, events=events))
    return result, tt.paths()[before:]


@pytest.mark.parametrize("persisted", [True, False], ids=["checkpointed", "lost-checkpoint"])
def test_takeover_mid_upload_resumes_from_the_bytes_tiktok_holds(
        tt: TT, big: list[MediaFile], persisted: bool) -> None:
    dead = dying(at=2 * CHUNK, persist=persisted)
    with pytest.raises(WorkerCrash):
        tt.platform.publish(tt.ctx(big, checkpoints=dead))
    assert only_publish(tt)["uploadedBytes"] == 2 * CHUNK
    assert dead.data["uploadedBytes"] == (2 if persisted else 1) * CHUNK

    events: list[Any] = []
    result, paths = take_over(tt, big, dead, events)
    assert paths[0] == STATUS  # before anything else
    assert INIT not in paths
    assert paths.count("/video/") == 4 - 2  # from the bytes TikTok reported, not before
    publish = only_publish(tt)
    assert publish["sha256"] == digest(big[0].path)
    assert tt.state()["inits"] == 1 and len(tt.state()["posts"]) == 1
    assert result.first.extra["publishId"] == publish["publishId"]
    assert [e[2]["uploaded_bytes"] for e in events if e[0] == "tiktok.resume_upload"] == \
        [2 * CHUNK]


def test_takeover_after_the_upload_only_polls(tt: TT, big: list[MediaFile]) -> None:
    dead = dying(at=SIZE, persist=True)
    with pytest.raises(WorkerCrash):
        tt.platform.publish(tt.ctx(big, checkpoints=dead))
    _, paths = take_over(tt, big, dead, [])
    assert set(paths) == {STATUS}
    assert len(tt.state()["posts"]) == 1


def test_takeover_after_publishing_returns_the_receipt_without_posting(
        tt: TT, big: list[MediaFile]) -> None:
    cp = MemoryCheckpoints()
    first = tt.platform.publish(tt.ctx(big, checkpoints=cp))
    result, paths = take_over(tt, big, cp, [])
    assert paths == [STATUS]
    assert result.first.external_id == first.first.external_id
    assert tt.state()["inits"] == 1


def test_a_failing_chunk_is_sent_again_and_the_upload_goes_on(tt: TT,
                                                              big: list[MediaFile]) -> None:
    tt.fault(method="PUT", path="^/video/", status=503, body="busy", count=2)
    tt.platform.publish(tt.ctx(big))
    publish = only_publish(tt)
    assert publish["chunksReceived"] == 4 and publish["sha256"] == digest(big[0].path)


def test_upload_host_down_gives_the_post_back_with_progress_kept(tt: TT,
                                                                 big: list[MediaFile]) -> None:
    tt.fault(method="PUT", path="^/video/", status=500, body="down", count=10)
    cp = MemoryCheckpoints()
    with pytest.raises(TransientError) as err:
        tt.platform.publish(tt.ctx(big, checkpoints=cp))
    assert err.value.platform_code == "chunk-failed"
    assert cp.data["publishId"] and cp.data["uploadedBytes"] == 0
    tt.app._faults.clear()
    tt.platform.publish(tt.ctx(big, checkpoints=cp))
    assert tt.state()["inits"] == 1 and len(tt.state()["posts"]) == 1


def test_a_lost_chunk_answer_is_resynced_from_the_416_range(tt: TT,
                                                            big: list[MediaFile]) -> None:
    # TikTok stores the first chunk but its answer is lost: sending it again gets 416
    tt.fault(method="PUT", path="^/video/", status=502, body="gateway", after_body=True)
    events: list[Any] = []
    tt.platform.publish(tt.ctx(big, events=events))
    publish = only_publish(tt)
    assert publish["chunksReceived"] == 4 and publish["sha256"] == digest(big[0].path)
    assert [e[2]["uploaded_bytes"] for e in events if e[0] == "tiktok.resync"] == [CHUNK]


def test_an_expired_upload_url_starts_over_as_the_old_publish_cannot_complete(
        tt: TT, big: list[MediaFile]) -> None:
    dead = dying(at=2 * CHUNK, persist=True)
    with pytest.raises(WorkerCrash):
        tt.platform.publish(tt.ctx(big, checkpoints=dead))
    tt.configure(expireUploads=True)
    events: list[Any] = []
    take_over(tt, big, dead, events)
    state = tt.state()
    assert state["inits"] == 2 and len(state["posts"]) == 1
    assert [e[0] for e in events].count("tiktok.restart") == 1


def test_an_upload_url_older_than_an_hour_is_not_used(tt: TT, big: list[MediaFile]) -> None:
    dead = dying(at=2 * CHUNK, persist=True)
    with pytest.raises(WorkerCrash):
        tt.platform.publish(tt.ctx(big, checkpoints=dead))
    dead.data["uploadUrlIssuedAt"] -= 3600
    _, paths = take_over(tt, big, dead, [])
    assert paths[0] == STATUS and paths.count(INIT) == 1


def test_confirm_reports_a_published_post_and_none_for_nothing_sent(tt: TT) -> None:
    cp = MemoryCheckpoints()
    ctx = tt.ctx(tt.media("clip.mp4"), checkpoints=cp)
    assert tt.platform.confirm(ctx) is None
    result = tt.platform.publish(ctx)
    confirmed = tt.platform.confirm(ctx)
    assert confirmed is not None and confirmed.first.external_id == result.first.external_id


@pytest.mark.parametrize(("header", "held"), [
    ("bytes 0-5242879/73400320", 5 * MB), ("bytes */100", 0), ("garbage", None), (None, None)])
def test_content_range_replies_are_read_as_inclusive_ranges(header: str | None,
                                                            held: int | None) -> None:
    assert uploaded_from_range(header) == held
