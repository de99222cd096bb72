"""The Threads sandbox itself, spoken to over HTTP as Threads is: the container state
machine, carousel and text rules, publishing refusals, the quota endpoint."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from chat33_threads.sandbox import DEMO_ACCOUNT

from chat33_core.platforms import MediaFile

from .conftest import TOKEN, Sandbox

USER = DEMO_ACCOUNT["id"]


def call(sandbox: Sandbox, method: str, path: str, **params: Any) -> httpx.Response:
    params["access_token"] = TOKEN
    where = {"data": params} if method == "POST" else {"params": params}
    return sandbox.http.request(method, f"{sandbox.url}/v1.0/{path}", **where)


def error(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()["error"]
    assert {"message", "type", "code", "fbtrace_id"} <= set(body)
    return body


def test_a_video_container_goes_in_progress_then_finished(
        sandbox: Sandbox, media: Callable[[str], MediaFile]) -> None:
    sandbox.config(processingPolls=2)
    cid = call(sandbox, "POST", f"{USER}/threads", media_type="VIDEO",
               video_url=media("clip.mp4").url).json()["id"]
    statuses = [call(sandbox, "GET", cid, fields="status,error_message").json()["status"]
                for _ in range(3)]
    assert statuses == ["IN_PROGRESS", "IN_PROGRESS", "FINISHED"]
    published = call(sandbox, "POST", f"{USER}/threads_publish", creation_id=cid)
    assert published.status_code == 200


def test_publishing_an_unfinished_container_is_refused(
        sandbox: Sandbox, media: Callable[[str], MediaFile]) -> None:
    cid = call(sandbox, "POST", f"{USER}/threads", media_type="VIDEO",
               video_url=media("clip.mp4").url).json()["id"]
    refused = call(sandbox, "POST", f"{USER}/threads_publish", creation_id=cid)
    assert refused.status_code == 400 and error(refused)["error_subcode"] == 2207027


def test_a_video_that_cannot_be_downloaded_ends_in_error(
        sandbox: Sandbox, media_url: str) -> None:
    sandbox.config(processingPolls=0)
    cid = call(sandbox, "POST", f"{USER}/threads", media_type="VIDEO",
               video_url=f"{media_url}/missing.mp4").json()["id"]
    body = call(sandbox, "GET", cid, fields="status,error_message").json()
    assert body == {"id": cid, "status": "ERROR", "error_message": "FAILED_DOWNLOADING_VIDEO"}


def test_an_image_that_is_not_jpeg_or_png_is_refused(
        sandbox: Sandbox, media: Callable[[str], MediaFile]) -> None:
    refused = call(sandbox, "POST", f"{USER}/threads", media_type="IMAGE",
                   image_url=media("photo.webp").url)
    assert refused.status_code == 400 and "JPEG or PNG" in error(refused)["message"]


def test_text_rules(sandbox: Sandbox) -> None:
    long = call(sandbox, "POST", f"{USER}/threads", media_type="TEXT", text="👍" * 126)
    assert "at most 500" in error(long)["message"]
    links = " ".join(f"https://e.com/{i}" for i in range(5))
    too_many = call(sandbox, "POST", f"{USER}/threads", media_type="TEXT", text=links,
                    link_attachment="https://e.com/x")
    assert "THREADS_API__LINK_LIMIT_EXCEEDED" in error(too_many)["message"]
    assert call(sandbox, "POST", f"{USER}/threads", media_type="TEXT",
                text=links).status_code == 200


def test_carousels_take_two_to_twenty_finished_items(
        sandbox: Sandbox, media: Callable[[str], MediaFile]) -> None:
    url = media("photo.jpg").url
    items = [call(sandbox, "POST", f"{USER}/threads", media_type="IMAGE", image_url=url,
                  is_carousel_item="true").json()["id"] for _ in range(2)]
    one = call(sandbox, "POST", f"{USER}/threads", media_type="CAROUSEL", children=items[0])
    assert "2 to 20" in error(one)["message"]
    call(sandbox, "GET", items[0], fields="status")
    call(sandbox, "GET", items[1], fields="status")
    ok = call(sandbox, "POST", f"{USER}/threads", media_type="CAROUSEL",
              children=",".join(items), text="two")
    assert ok.status_code == 200
    alone = call(sandbox, "POST", f"{USER}/threads_publish", creation_id=items[0])
    assert "carousel item" in error(alone)["message"]


def test_a_container_is_published_once_and_expires_after_a_day(sandbox: Sandbox) -> None:
    cid = call(sandbox, "POST", f"{USER}/threads", media_type="TEXT", text="t").json()["id"]
    assert call(sandbox, "POST", f"{USER}/threads_publish", creation_id=cid).status_code == 200
    again = call(sandbox, "POST", f"{USER}/threads_publish", creation_id=cid)
    assert error(again)["code"] == 506
    assert call(sandbox, "GET", cid, fields="status").json()["status"] == "PUBLISHED"
    old = call(sandbox, "POST", f"{USER}/threads", media_type="TEXT", text="o").json()["id"]
    sandbox.advance(86_401)
    assert call(sandbox, "GET", old, fields="status").json()["status"] == "EXPIRED"


def test_auto_publish_text_publishes_at_once(sandbox: Sandbox) -> None:
    cid = call(sandbox, "POST", f"{USER}/threads", media_type="TEXT", text="now",
               auto_publish_text="true").json()["id"]
    assert call(sandbox, "GET", cid, fields="status").json()["status"] == "PUBLISHED"
    assert [p["text"] for p in sandbox.posts()] == ["now"]


def test_the_publishing_limit_counts_posts_and_replies(sandbox: Sandbox) -> None:
    root = call(sandbox, "POST", f"{USER}/threads", media_type="TEXT", text="r",
                auto_publish_text="true").json()["id"]
    post_id = sandbox.posts()[0]["id"]
    assert root
    call(sandbox, "POST", f"{USER}/threads", media_type="TEXT", text="a",
         reply_to_id=post_id, auto_publish_text="true")
    [data] = call(sandbox, "GET", f"{USER}/threads_publishing_limit",
                  fields="quota_usage,config,reply_quota_usage,reply_config").json()["data"]
    assert data["quota_usage"] == 1 and data["reply_quota_usage"] == 1
    assert data["config"] == {"quota_total": 250, "quota_duration": 86400}
    assert data["reply_config"]["quota_total"] == 1000
    replies = call(sandbox, "GET", f"{USER}/replies", fields="id,text").json()["data"]
    assert [r["text"] for r in replies] == ["a"]


def test_a_reply_to_an_unknown_post_is_refused(sandbox: Sandbox) -> None:
    refused = call(sandbox, "POST", f"{USER}/threads", media_type="TEXT", text="a",
                   reply_to_id="123")
    assert error(refused)["error_subcode"] == 33


def test_delete_answers_success_and_deleted_id(sandbox: Sandbox) -> None:
    call(sandbox, "POST", f"{USER}/threads", media_type="TEXT", text="bye",
         auto_publish_text="true")
    post_id = sandbox.posts()[0]["id"]
    body = call(sandbox, "DELETE", post_id).json()
    assert body == {"success": True, "deleted_id": post_id}
    assert call(sandbox, "DELETE", post_id).status_code == 404


def test_requests_without_a_token_get_a_graph_envelope(sandbox: Sandbox) -> None:
    response = sandbox.http.get(f"{sandbox.url}/v1.0/{USER}/threads_publishing_limit")
    assert error(response)["code"] == 190
