"""The Mastodon sandbox itself, over real HTTP: what platforms-more.md §2.8 says a
faithful imitation must reproduce."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
from chat33_mastodon import MastodonPlatform
from chat33_mastodon.sandbox import MastodonSandbox

from chat33_core.config import Settings
from chat33_core.platforms import MediaFile
from chat33_core.sandbox import PrefixDispatcher, serve
from chat33_core.testing import publish_context

from .conftest import TOKEN, Sandbox, account

Media = Callable[[str], MediaFile]
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def upload(sandbox: Sandbox, file: MediaFile, **data: str) -> httpx.Response:
    with file.open() as handle:
        return sandbox.http.post(f"{sandbox.url}/api/v2/media", headers=AUTH, data=data,
                                 files={"file": (file.name, handle, file.info.mime_type)})


def status(sandbox: Sandbox, key: str | None = None, **body: Any) -> httpx.Response:
    headers = dict(AUTH, **({"Idempotency-Key": key} if key else {}))
    return sandbox.http.post(f"{sandbox.url}/api/v1/statuses", headers=headers, json=body)


def test_instance_configuration_is_configurable(sandbox: Sandbox) -> None:
    sandbox.config(max_characters=1000)
    config = sandbox.http.get(f"{sandbox.url}/api/v2/instance").json()["configuration"]
    assert config["statuses"] == {"max_characters": 1000, "max_media_attachments": 4,
                                  "characters_reserved_per_url": 23}
    assert config["media_attachments"]["description_limit"] == 1500


def test_video_is_processed_asynchronously(sandbox: Sandbox, media: Media) -> None:
    sandbox.config(processing_polls=1)
    answer = upload(sandbox, media("clip.mp4"))
    assert answer.status_code == 202 and answer.json()["url"] is None
    media_id = answer.json()["id"]
    early = status(sandbox, status="too soon", media_ids=[media_id])
    assert early.status_code == 422 and "not finished processing" in early.json()["error"]
    url = f"{sandbox.url}/api/v1/media/{media_id}"
    assert sandbox.http.get(url, headers=AUTH).status_code == 206
    done = sandbox.http.get(url, headers=AUTH)
    assert done.status_code == 200 and done.json()["url"]
    assert status(sandbox, status="now", media_ids=[media_id]).status_code == 200


def test_a_small_image_is_processed_at_once(sandbox: Sandbox, media: Media) -> None:
    answer = upload(sandbox, media("photo.jpg"), description="alt")
    assert answer.status_code == 200 and answer.json()["url"]
    assert answer.json()["description"] == "alt"


def test_statuses_answer_200_and_count_urls_as_23(sandbox: Sandbox) -> None:
    sandbox.config(max_characters=30)
    url = "https://example.com/" + "x" * 100
    assert status(sandbox, status=f"short {url}").status_code == 200  # 6 + 23 = 29
    assert status(sandbox, status=f"longer {url}").status_code == 200  # 7 + 23 = 30
    refused = status(sandbox, status=f"longest {url}")  # 8 + 23 = 31
    assert refused.status_code == 422
    assert refused.json() == {"error": "Validation failed: Text character limit of 30 "
                                       "exceeded"}
    assert status(sandbox, status="x" * 20, spoiler_text="y" * 11).status_code == 422
    assert status(sandbox, status="@someone@far.away.example " + "x" * 20).status_code == 200


def test_the_idempotency_key_answers_the_first_status_for_an_hour(sandbox: Sandbox) -> None:
    first = status(sandbox, "k1", status="once").json()
    again = status(sandbox, "k1", status="once").json()
    assert again["id"] == first["id"]
    assert len(sandbox.statuses()) == 1
    assert status(sandbox, "k2", status="once").json()["id"] != first["id"]
    sandbox.advance(3601)
    assert status(sandbox, "k1", status="once").json()["id"] != first["id"]
    assert len(sandbox.statuses()) == 3


def test_attachment_rules(sandbox: Sandbox, media: Media) -> None:
    photos = [upload(sandbox, media("photo.jpg")).json()["id"] for _ in range(5)]
    too_many = status(sandbox, status="5", media_ids=photos)
    assert too_many.status_code == 422 and "more than 4" in too_many.json()["error"]
    sandbox.config(processing_polls=0)
    video = upload(sandbox, media("clip.mp4")).json()["id"]
    mixed = status(sandbox, status="mix", media_ids=[photos[0], video])
    assert mixed.status_code == 422 and "Cannot attach a video" in mixed.json()["error"]
    blank = status(sandbox, status=" ")
    assert blank.json() == {"error": "Validation failed: Text can't be blank"}


def test_delete_answers_the_status_with_its_text_then_404(sandbox: Sandbox) -> None:
    created = status(sandbox, status="to delete").json()
    url = f"{sandbox.url}/api/v1/statuses/{created['id']}"
    deleted = sandbox.http.delete(url, headers=AUTH)
    assert deleted.status_code == 200 and deleted.json()["text"] == "to delete"
    gone = sandbox.http.delete(url, headers=AUTH)
    assert gone.status_code == 404 and gone.json() == {"error": "Record not found"}
    assert sandbox.http.get(url, headers=AUTH).status_code == 404


def test_rate_limit_headers_and_buckets(sandbox: Sandbox) -> None:
    sandbox.config(rate_limit=3, delete_limit=1)
    answer = status(sandbox, status="a")
    assert answer.headers["X-RateLimit-Limit"] == "3"
    assert answer.headers["X-RateLimit-Remaining"] == "2"
    reset = datetime.fromisoformat(answer.headers["X-RateLimit-Reset"])
    assert reset.tzinfo is not None  # an ISO 8601 instant
    created = answer.json()["id"]
    deleted = sandbox.http.delete(f"{sandbox.url}/api/v1/statuses/{created}", headers=AUTH)
    assert deleted.headers["X-RateLimit-Remaining"] == "0"  # the delete bucket is closest
    status(sandbox, status="b")
    limited = status(sandbox, status="c")
    assert limited.status_code == 429 and limited.json() == {"error": "Too many requests"}
    assert limited.headers["X-RateLimit-Remaining"] == "0"


def test_unknown_tokens_and_garbage_files_are_refused(sandbox: Sandbox, media: Media) -> None:
    bad = sandbox.http.post(f"{sandbox.url}/api/v1/statuses", json={"status": "x"},
                            headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401 and bad.json() == {"error": "The access token is invalid"}
    answer = sandbox.http.post(f"{sandbox.url}/api/v2/media", headers=AUTH,
                               files={"file": ("x.jpg", b"plain text", "image/jpeg")})
    assert answer.status_code == 422 and "content type is invalid" in answer.json()["error"]
    sandbox.config(image_size_limit=100)
    big = upload(sandbox, media("photo.jpg"))
    assert big.status_code == 422 and "file size" in big.json()["error"]


def test_served_under_a_prefix_as_chat33_sandbox_does() -> None:
    sandbox = MastodonSandbox()
    with serve(PrefixDispatcher({"mastodon": sandbox})) as root:
        settings = Settings.from_env({"CHAT33_MASTODON_API_BASE": f"{root}/mastodon"})
        platform = MastodonPlatform(settings)
        # the demo's account: a sandbox token, no instance but the API base
        ctx = publish_context(platform, settings=settings, account=account(username="demo"),
                              text="from the demo")
        result = platform.publish(ctx)
    assert result.first.external_url == f"{root}/mastodon/@chat33/{result.first.external_id}"
    assert [s["text"] for s in sandbox.state()["statuses"]] == ["from the demo"]
