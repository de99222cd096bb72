"""The sandbox imitates Meta's protocol statefully (platforms.md §7), spoken to raw."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from chat33_core.testing import make_image

V = "/v25.0"
USER = "17841400000000001"


@pytest.fixture
def api(sandbox) -> Iterator[httpx.Client]:
    _, url = sandbox
    with httpx.Client(base_url=url, timeout=10,
                      headers={"Authorization": "Bearer sandbox-token"}) as client:
        yield client


def error_of(response: httpx.Response) -> tuple[int, int | None]:
    assert response.status_code == 400, "Meta answers every error with HTTP 400"
    error = response.json()["error"]
    assert error["type"] == "OAuthException" and error["fbtrace_id"]
    return error["code"], error.get("error_subcode")


def create(api: httpx.Client, **params: Any) -> httpx.Response:
    return api.post(f"{V}/{USER}/media", data=params)


def status(api: httpx.Client, cid: str) -> str:
    return api.get(f"{V}/{cid}", params={"fields": "status_code,status"}).json()["status_code"]


def publish(api: httpx.Client, cid: str) -> httpx.Response:
    return api.post(f"{V}/{USER}/media_publish", params={"creation_id": cid})


def test_video_container_goes_in_progress_then_finished(api, media_url, control):
    control("POST", "/_sandbox/config", json={"processingPolls": 2})
    cid = create(api, media_type="REELS", video_url=f"{media_url}/reel.mp4").json()["id"]
    assert [status(api, cid) for _ in range(3)] == ["IN_PROGRESS", "IN_PROGRESS", "FINISHED"]


def test_publish_before_finished_is_error_9007(api, media_url):
    cid = create(api, media_type="REELS", video_url=f"{media_url}/reel.mp4").json()["id"]
    assert error_of(publish(api, cid)) == (9007, 2207027)
    while status(api, cid) == "IN_PROGRESS":
        pass
    assert publish(api, cid).status_code == 200
    assert status(api, cid) == "PUBLISHED"


def test_publishing_a_container_twice_is_refused(api, media_url, control):
    cid = create(api, image_url=f"{media_url}/square.jpg").json()["id"]
    assert publish(api, cid).status_code == 200
    assert error_of(publish(api, cid))[0] == 506
    assert len(control("GET", "/_sandbox/state")["published"]) == 1


def test_container_expires_after_24_hours(api, media_url, control):
    cid = create(api, image_url=f"{media_url}/square.jpg").json()["id"]
    control("POST", "/_sandbox/clock", json={"advance": 24 * 3600 + 1})
    assert status(api, cid) == "EXPIRED"
    assert error_of(publish(api, cid)) == (-2, 2207020)


def test_bad_video_ends_in_error_with_the_subcode(api, media_url):
    cid = create(api, media_type="REELS", video_url=f"{media_url}/fake.mp4").json()["id"]
    while (body := api.get(f"{V}/{cid}", params={"fields": "status_code,status"}).json())[
            "status_code"] == "IN_PROGRESS":
        pass
    assert body["status_code"] == "ERROR" and "2207026" in body["status"]


def test_quota_is_configurable_and_enforced(api, media_url, control):
    control("POST", "/_sandbox/config", json={"quotaTotal": 2})
    for _ in range(2):
        cid = create(api, image_url=f"{media_url}/square.jpg").json()["id"]
        assert publish(api, cid).status_code == 200
    limit = api.get(f"{V}/{USER}/content_publishing_limit",
                    params={"fields": "quota_usage,config"}).json()["data"][0]
    assert limit == {"quota_usage": 2, "config": {"quota_total": 2, "quota_duration": 86400}}
    cid = create(api, image_url=f"{media_url}/square.jpg").json()["id"]
    assert error_of(publish(api, cid)) == (9, 2207042)
    # the window rolls: a day later there is room again
    control("POST", "/_sandbox/clock", json={"advance": 86_401})
    cid = create(api, image_url=f"{media_url}/square.jpg").json()["id"]
    assert publish(api, cid).status_code == 200


def test_usage_headers_on_every_answer(api, media_url):
    response = create(api, image_url=f"{media_url}/square.jpg")
    app_usage = json.loads(response.headers["X-App-Usage"])
    assert set(app_usage) == {"call_count", "total_cputime", "total_time"}
    buc = json.loads(response.headers["X-Business-Use-Case-Usage"])
    [entries] = buc.values()
    assert entries[0]["type"] == "instagram"
    assert "estimated_time_to_regain_access" in entries[0]


@pytest.mark.parametrize("code", [4, 17, 32, 613])
def test_forced_throttling_codes(api, control, code):
    control("POST", "/_sandbox/throttle", json={"code": code, "minutes": 3})
    response = api.get(f"{V}/{USER}/content_publishing_limit")
    assert error_of(response)[0] == code
    buc = json.loads(response.headers["X-Business-Use-Case-Usage"])
    assert next(iter(buc.values()))[0]["estimated_time_to_regain_access"] == 3
    assert api.get(f"{V}/{USER}/content_publishing_limit").status_code == 200


def test_call_budget_throttles_with_80002_and_recovers(api, control):
    control("POST", "/_sandbox/config", json={"callsPerHour": 2})
    assert api.get(f"{V}/{USER}/content_publishing_limit").status_code == 200
    assert api.get(f"{V}/{USER}/content_publishing_limit").status_code == 200
    response = api.get(f"{V}/{USER}/content_publishing_limit")
    assert error_of(response)[0] == 80002
    assert json.loads(response.headers["X-App-Usage"])["call_count"] >= 100
    control("POST", "/_sandbox/clock", json={"advance": 3601})
    assert api.get(f"{V}/{USER}/content_publishing_limit").status_code == 200


def test_image_checks_on_downloaded_bytes(api, media_url, media_dir):
    assert error_of(create(api, image_url=f"{media_url}/picture.png")) == (36001, 2207005)
    assert error_of(create(api, image_url=f"{media_url}/tall.jpg")) == (36003, 2207009)
    assert error_of(create(api, image_url=f"{media_url}/reel.mp4")) == (36001, 2207005)
    assert error_of(create(api, image_url=f"{media_url}/missing.jpg")) == (9004, 2207052)
    # a story image has no feed aspect-ratio rule
    assert create(api, media_type="STORIES", image_url=f"{media_url}/tall.jpg").status_code \
        == 200


def test_multi_picture_jpeg_is_refused(api, media_url, media_dir):
    from PIL import Image

    path = media_dir / "stereo.mpo"
    if not path.exists():
        second = make_image(media_dir / "second.jpg")
        with Image.open(media_dir / "square.jpg") as first, Image.open(second) as other:
            first.save(path, format="MPO", save_all=True, append_images=[other])
    assert error_of(create(api, image_url=f"{media_url}/stereo.mpo")) == (36001, 2207005)


def test_carousel_needs_2_to_10_finished_children(api, media_url):
    child = create(api, is_carousel_item="true",
                   image_url=f"{media_url}/square.jpg").json()["id"]
    assert error_of(create(api, media_type="CAROUSEL", children=child)) == (100, 2207028)
    video = create(api, is_carousel_item="true", media_type="VIDEO",
                   video_url=f"{media_url}/clip.mp4").json()["id"]
    assert error_of(create(api, media_type="CAROUSEL", children=f"{child},{video}")) == (
        9007, 2207027)
    assert error_of(create(api, is_carousel_item="true", caption="no",
                           image_url=f"{media_url}/square.jpg"))[0] == 100


def test_caption_limits(api, media_url):
    url = f"{media_url}/square.jpg"
    assert error_of(create(api, image_url=url, caption="x" * 2201)) == (36004, 2207010)
    assert error_of(create(api, image_url=url,
                           caption=" ".join(f"@u{i}" for i in range(21)))) == (100, 2207040)


def test_tokens_expire_and_missing_tokens_are_refused(sandbox, control):
    _, url = sandbox
    control("POST", "/_sandbox/tokens", json={"token": "old", "expiresAt": 1})
    response = httpx.get(f"{url}{V}/{USER}/content_publishing_limit",
                         params={"access_token": "old"})
    assert error_of(response) == (190, 463)
    assert error_of(httpx.get(f"{url}{V}/{USER}/content_publishing_limit"))[0] == 2500


def test_refresh_requires_a_day_old_unexpired_token(sandbox, control):
    _, url = sandbox
    control("POST", "/_sandbox/tokens", json={"token": "fresh", "issuedAt": 2e9})
    response = httpx.get(f"{url}/refresh_access_token",
                         params={"grant_type": "ig_refresh_token", "access_token": "fresh"})
    assert error_of(response)[0] == 100
    response = httpx.get(f"{url}/refresh_access_token",
                         params={"grant_type": "ig_refresh_token", "access_token": "aged"})
    body = response.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 60 * 86400


def test_published_media_is_listed_with_permalinks(api, media_url, control):
    cid = create(api, image_url=f"{media_url}/square.jpg", caption="listed").json()["id"]
    mid = publish(api, cid).json()["id"]
    sid = create(api, media_type="STORIES", image_url=f"{media_url}/tall.jpg").json()["id"]
    story = publish(api, sid).json()["id"]
    feed = api.get(f"{V}/{USER}/media", params={"fields": "id,caption,permalink"}).json()
    assert [m["id"] for m in feed["data"]] == [mid]
    assert feed["data"][0]["caption"] == "listed"
    stories = api.get(f"{V}/{USER}/stories", params={"fields": "id"}).json()
    assert [m["id"] for m in stories["data"]] == [story]
    assert api.get(f"{V}/{mid}", params={"fields": "permalink"}).json()["permalink"] \
        .startswith("https://www.instagram.com/p/")
    state = control("GET", "/_sandbox/state")
    assert {p["id"] for p in state["published"]} == {mid, story}


def test_malformed_parameters_get_error_100_not_a_crash(api, media_url):
    response = create(api, media_type="REELS", video_url=f"{media_url}/reel.mp4",
                      thumb_offset="soon")
    assert error_of(response)[0] == 100
