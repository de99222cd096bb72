"""The media library (list, show, delete) and the retention sweep, on both backends."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from chat33_core.errors import NotFound
from chat33_core.models import utcnow
from chat33_core.testing import make_image, make_video

from .conftest import Api
from .test_media_direct import direct_upload, media_api

__all__ = ["media_api"]  # the fixture, parametrized over the folder and S3


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("library")
    make_image(root / "photo.jpg", 640, 480)
    make_image(root / "other.jpg", 64, 48)
    make_video(root / "clip.mp4", 320, 240, seconds=1.0)
    return root


def upload(api: Api, path: Path, org: Any = None) -> dict[str, Any]:
    with path.open("rb") as fh:
        response = api.post("/media/upload", json=None, content_type="multipart/form-data",
                            data={"file": (fh, path.name)}, org=org)
    assert response.status_code == 201, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def later() -> str:
    return (utcnow() + timedelta(days=1)).isoformat()


def test_list_pages_and_details(media_api: Api, files: Path) -> None:
    photo = upload(media_api, files / "photo.jpg")
    clip = direct_upload(media_api, files / "clip.mp4", "video/mp4")
    first = media_api.get("/media?limit=1").get_json()
    assert [m["id"] for m in first["items"]] == [clip["id"]]  # newest first
    assert first["hasMore"] is True
    second = media_api.get(f"/media?limit=1&cursor={first['nextCursor']}").get_json()
    assert [m["id"] for m in second["items"]] == [photo["id"]]
    assert second == {**second, "hasMore": False, "nextCursor": None}
    video = first["items"][0]
    assert (video["type"], video["width"], video["height"]) == ("video", 320, 240)
    assert video["durationS"] == pytest.approx(1.0, abs=0.1)
    assert video["queuedPosts"] == 0 and video["createdAt"]
    image = media_api.get(f"/media/{photo['id']}").get_json()
    assert (image["type"], image["width"], image["height"], image["durationS"]) == (
        "image", 640, 480, None)


def test_bad_list_parameters(media_api: Api) -> None:
    for query in ("limit=0", "limit=101", "limit=x", "page=2"):
        response = media_api.get(f"/media?{query}")
        assert response.status_code == 400, query


def test_organizations_are_kept_apart(media_api: Api, files: Path) -> None:
    mine = upload(media_api, files / "photo.jpg")
    assert media_api.get("/media", org=media_api.other).get_json()["items"] == []
    assert media_api.get(f"/media/{mine['id']}", org=media_api.other).status_code == 404
    assert media_api.delete(f"/media/{mine['id']}", org=media_api.other).status_code == 404
    assert media_api.get(f"/media/{mine['id']}").status_code == 200


def test_delete_is_refused_while_a_queued_post_uses_it(media_api: Api, files: Path) -> None:
    media = direct_upload(media_api, files / "clip.mp4", "video/mp4")
    post = media_api.create(accountIds=[media_api.org.accounts["youtube"]],
                            mediaUrls=[media["url"]], scheduledAt=later(),
                            platformConfig={"youtube": {"title": "A clip",
                                                       "selfDeclaredMadeForKids": False}})
    assert media_api.get(f"/media/{media['id']}").get_json()["queuedPosts"] == 1
    refused = media_api.delete(f"/media/{media['id']}")
    assert refused.status_code == 409 and refused.get_json()["error"] == "CONFLICT"
    assert media_api.delete(f"/posts/{post['posts'][0]['id']}").status_code == 200
    assert media_api.get(f"/media/{media['id']}").get_json()["queuedPosts"] == 0
    assert media_api.delete(f"/media/{media['id']}").get_json() == {"deleted": True}
    assert media_api.get(f"/media/{media['id']}").status_code == 404
    assert media_api.client.get(urlsplit(media["url"]).path).status_code == 404
    assert media_api.delete(f"/media/{media['id']}").status_code == 404


def test_a_file_two_organizations_keep_goes_with_the_last(media_api: Api,
                                                          files: Path) -> None:
    mine = upload(media_api, files / "photo.jpg")
    theirs = upload(media_api, files / "photo.jpg", org=media_api.other)
    assert mine["url"] == theirs["url"]  # content-addressed: one file
    path = urlsplit(mine["url"]).path
    assert media_api.delete(f"/media/{mine['id']}").status_code == 200
    assert media_api.client.get(path).status_code == 200  # the other still keeps it
    assert media_api.delete(f"/media/{theirs['id']}", org=media_api.other).status_code == 200
    assert media_api.client.get(path).status_code == 404


# --- retention ----------------------------------------------------------------------------

def test_the_sweep_keeps_what_posts_need(media_api: Api, files: Path) -> None:
    used = upload(media_api, files / "photo.jpg")
    unused = upload(media_api, files / "other.jpg")
    media_api.create(mediaUrls=[used["url"]], scheduledAt=later())
    core = media_api.core
    assert core.settings.media_retention_days == 30
    assert core.media.sweep(utcnow() + timedelta(days=29)) == 0  # not old enough
    assert core.media.sweep(utcnow() + timedelta(days=31)) == 1
    assert media_api.get(f"/media/{unused['id']}").status_code == 404
    assert not core.media.files.exists(urlsplit(unused["url"]).path.rsplit("/", 1)[1])
    assert media_api.get(f"/media/{used['id']}").status_code == 200  # a queued post
    assert core.media.sweep(utcnow() + timedelta(days=31)) == 0  # idempotent


def test_the_sweep_waits_for_the_last_post_to_finish(media_api: Api, files: Path) -> None:
    media = upload(media_api, files / "photo.jpg")
    post = media_api.create(mediaUrls=[media["url"]], scheduledAt=later())
    media_api.delete(f"/posts/{post['posts'][0]['id']}")  # cancelled now
    core = media_api.core
    # finished now: kept for 30 days from now, not from the upload
    assert core.media.sweep(utcnow() + timedelta(days=29)) == 0
    assert core.media.sweep(utcnow() + timedelta(days=31)) == 1


def test_retention_zero_keeps_media_forever(media_api: Api, files: Path) -> None:
    upload(media_api, files / "photo.jpg")
    from chat33_core.mediaservice import MediaService

    core = media_api.core
    forever = MediaService(core.settings.with_(media_retention_days=0), core.store,
                           core.fetcher, core.hit_rate_limit)
    assert forever.sweep(utcnow() + timedelta(days=3650)) == 0
    assert len(media_api.get("/media").get_json()["items"]) == 1


# --- the sweep against posts being made -----------------------------------------------------

def test_a_post_made_after_the_sweep_chose_a_file_keeps_it(
        media_api: Api, files: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sweep chooses a file no post uses; before it deletes it, a post takes it up:
    the delete checks again in its own transaction and keeps the file."""
    media = upload(media_api, files / "photo.jpg")
    core = media_api.core
    choose = core.store.retention_candidates
    made: list[dict[str, Any]] = []

    def chosen_then_posted(*args: Any, **kw: Any) -> Any:
        batch, last = choose(*args, **kw)
        if not made:
            assert [a.id for a in batch] == [media["id"]]  # chosen: no post uses it yet
            made.append(media_api.create(mediaUrls=[media["url"]], scheduledAt=later()))
        return batch, last

    monkeypatch.setattr(core.store, "retention_candidates", chosen_then_posted)
    assert core.media.sweep(utcnow() + timedelta(days=31)) == 0
    assert len(made) == 1
    assert media_api.get(f"/media/{media['id']}").get_json()["queuedPosts"] == 1
    assert core.media.files.exists(urlsplit(media["url"]).path.rsplit("/", 1)[1])
    monkeypatch.undo()
    assert core.media.sweep(utcnow() + timedelta(days=31)) == 0  # still needed


def sweep_once_found(api: Api, media_url: str, monkeypatch: pytest.MonkeyPatch
                     ) -> list[int]:
    """Make the sweep run (31 days on) right after a request found ``media_url``'s asset,
    before it writes its post; the list of what each such sweep deleted."""
    store, media = api.core.store, api.core.media
    find = store.find_media_by_url
    swept: list[int] = []

    def found_then_swept(org_id: str, url: str) -> Any:
        asset = find(org_id, url)
        if url == media_url and asset is not None:
            swept.append(media.sweep(utcnow() + timedelta(days=31)))
        return asset

    monkeypatch.setattr(store, "find_media_by_url", found_then_swept)
    return swept


def test_a_post_whose_file_the_sweep_deleted_meanwhile_is_refused(
        media_api: Api, files: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A post request finds its media; the sweep deletes it before the post is inserted:
    the insert sees it gone and the request is a 400 in the error shape, creating no
    post and using none of the post allowance."""
    media = upload(media_api, files / "photo.jpg")
    core = media_api.core
    swept = sweep_once_found(media_api, media["url"], monkeypatch)
    refused = media_api.post("/posts", {"accountIds": [media_api.org.accounts["x"]],
                                        "text": "hello", "mediaUrls": [media["url"]]})
    assert swept == [1]
    assert refused.status_code == 400, refused.get_json()
    body = refused.get_json()
    assert body["error"] == "VALIDATION_ERROR"
    assert body["details"][0]["path"] == "mediaUrls"
    assert f"media {media['id']} was deleted" in body["message"]
    assert media_api.get("/posts").get_json()["total"] == 0
    assert media_api.get(f"/media/{media['id']}").status_code == 404
    assert not core.media.files.exists(urlsplit(media["url"]).path.rsplit("/", 1)[1])
    limit, period = core.rate_limits["posts.create"]
    remaining, _ = core.store.hit_rate_limit(f"posts.create:{media_api.org.id}", limit,
                                             period)
    assert remaining == limit - 1  # the refused request counted nothing
    # a new upload of the same bytes posts as ever
    again = upload(media_api, files / "photo.jpg")
    monkeypatch.undo()
    assert media_api.create(mediaUrls=[again["url"]], scheduledAt=later())["posts"]


@pytest.mark.parametrize("db_url", [pytest.param("postgres", marks=pytest.mark.postgres)],
                         indirect=True)
def test_on_postgresql_the_sweep_waits_for_a_post_being_inserted(
        api: Api, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Really concurrent: a post's insert has checked (and locked) its media and not yet
    committed; the sweep then waits on that lock, sees the post once it commits, and
    keeps the file."""
    media = upload(api, make_image(tmp_path / "p.jpg", 64, 48))
    core = api.core
    kept = core.store._media_kept
    locked, go = threading.Event(), threading.Event()
    holder: list[int] = []

    def holding(c: Any, r: Any) -> None:
        kept(c, r)
        if r.media_ids and not holder:
            cursor = c.cursor()
            cursor.execute("SELECT pg_backend_pid()")
            holder.append(int(cursor.fetchone()[0]))
            cursor.close()
            locked.set()
            go.wait(60)

    monkeypatch.setattr(core.store, "_media_kept", holding)
    answers: dict[str, Any] = {}
    poster = threading.Thread(target=lambda: answers.update(post=api.post("/posts", {
        "accountIds": [api.org.accounts["x"]], "text": "hi", "mediaUrls": [media["url"]],
        "scheduledAt": later()})))
    poster.start()
    assert locked.wait(60)
    sweeper = threading.Thread(target=lambda: answers.update(
        swept=core.media.sweep(utcnow() + timedelta(days=31))))
    sweeper.start()
    probe = sa.create_engine(db_url)
    try:
        # until the sweep waits for the post's transaction (or, wrongly, has finished)
        while sweeper.is_alive():
            with probe.begin() as conn:  # a fresh snapshot of the server's activity
                if conn.execute(sa.text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE :pid = ANY(pg_blocking_pids(pid))"),
                        {"pid": holder[0]}).scalar():
                    break
            time.sleep(0.01)
        blocked = sweeper.is_alive()
    finally:
        go.set()
        poster.join(60)
        sweeper.join(60)
        probe.dispose()
    assert blocked, "the sweep did not wait for the post being inserted"
    assert answers["post"].status_code == 201, answers["post"].get_json()
    assert answers["swept"] == 0
    assert api.get(f"/media/{media['id']}").get_json()["queuedPosts"] == 1
    assert core.media.files.exists(urlsplit(media["url"]).path.rsplit("/", 1)[1])


def test_an_edit_whose_new_file_the_sweep_deleted_meanwhile_is_refused(
        media_api: Api, files: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PATCH /posts/{id} with new mediaUrls: the sweep deletes the new file after the
    request found it: the edit is a 400 and the post keeps what it had."""
    before = upload(media_api, files / "other.jpg")
    post = media_api.create(mediaUrls=[before["url"]], scheduledAt=later())["posts"][0]
    media = upload(media_api, files / "photo.jpg")
    swept = sweep_once_found(media_api, media["url"], monkeypatch)
    refused = media_api.patch(f"/posts/{post['id']}", {"mediaUrls": [media["url"]]})
    assert swept == [1]  # the new file only: the post still uses the other one
    assert refused.status_code == 400, refused.get_json()
    assert refused.get_json()["details"][0]["path"] == "mediaUrls"
    assert f"media {media['id']} was deleted" in refused.get_json()["message"]
    assert media_api.get(f"/posts/{post['id']}").get_json()["mediaUrls"] == [before["url"]]
    # an edit that keeps its media is not checked again, and goes through
    monkeypatch.undo()
    edited = media_api.patch(f"/posts/{post['id']}", {"text": "edited"})
    assert edited.status_code == 200, edited.get_json()


def test_a_file_deleted_after_the_sweep_chose_it_is_skipped(
        media_api: Api, files: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DELETE /media (or another worker) takes the file between the sweep's choice and its
    delete: the sweep goes on without it and counts it not."""
    media = upload(media_api, files / "photo.jpg")
    core = media_api.core
    choose = core.store.retention_candidates

    def chosen_then_deleted(*args: Any, **kw: Any) -> Any:
        batch, last = choose(*args, **kw)
        if batch:
            assert media_api.delete(f"/media/{media['id']}").status_code == 200
        return batch, last

    monkeypatch.setattr(core.store, "retention_candidates", chosen_then_deleted)
    assert core.media.sweep(utcnow() + timedelta(days=31)) == 0
    with pytest.raises(NotFound):
        core.store.delete_unused_media(media["id"])
