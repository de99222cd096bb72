"""/posts: create, list (filters, pagination), get, patch, delete, duplicate, logs, validate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs
import pytest

from chat33_core.models import PostStatus

from .conftest import Api

SUMMARY_KEYS = {"id", "accountId", "platform", "accountName", "status", "scheduledAt",
                "createdAt"}
POST_KEYS = {"id", "channelId", "groupId", "status", "text", "mediaUrls", "mediaType",
             "scheduledAt", "publishedAt", "externalPostId", "externalPostUrl", "errorMessage",
             "retryCount", "createdBy", "createdAt", "platform", "accountName"}


def _later(hours: int = 2) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


def _set_status(api: Api, post_id: str, status: PostStatus) -> None:
    """Move a post where only the worker can take it (PUBLISHING, PUBLISHED, FAILED)."""
    post = api.core.store.get_post(post_id)
    api.core.store.save_post(attrs.evolve(post, status=status))


def test_create_one_post_has_the_summary_fields_and_no_group(api: Api) -> None:
    response = api.post("/posts", {"accountIds": [api.org.accounts["x"]], "text": "hello"})
    assert response.status_code == 201
    body = response.get_json()
    assert body["groupId"] is None
    (post,) = body["posts"]
    assert set(post) == SUMMARY_KEYS
    assert post["accountId"] == api.org.accounts["x"]
    assert post["platform"] == "x"
    assert post["accountName"] == "Acme on x"
    assert post["status"] == "QUEUED"
    assert post["scheduledAt"] is None


def test_create_for_several_channels_makes_one_post_each_with_a_group(api: Api) -> None:
    ids = [api.org.accounts["x"], api.org.accounts["facebook"]]
    body = api.create(accountIds=ids, text="everywhere")
    assert body["groupId"]
    assert [p["accountId"] for p in body["posts"]] == ids
    for post in body["posts"]:
        assert api.get(f"/posts/{post['id']}").get_json()["groupId"] == body["groupId"]


def test_create_with_schedule_and_timezone(sqlite_api: Api) -> None:
    api = sqlite_api
    body = api.create(scheduledAt="2030-01-15T09:30:00", timezone="America/New_York")
    assert body["posts"][0]["scheduledAt"] == "2030-01-15T14:30:00.000Z"


def test_create_with_a_thread_makes_the_following_posts(sqlite_api: Api) -> None:
    api = sqlite_api
    body = api.create(text="1/3", thread=[{"text": "2/3"}, {"text": "3/3", "mediaUrls": []}])
    assert len(body["posts"]) == 3
    texts = [api.get(f"/posts/{p['id']}").get_json()["text"] for p in body["posts"]]
    assert texts == ["1/3", "2/3", "3/3"]


def test_create_requires_account_ids(sqlite_api: Api) -> None:
    api = sqlite_api
    response = api.post("/posts", {"text": "orphan"})
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "VALIDATION_ERROR"
    assert [d["path"] for d in body["details"]] == ["accountIds"]


@pytest.mark.parametrize(("body", "path"), [
    ({"accountIds": "chan_1"}, "accountIds"),
    ({"accountIds": [1]}, "accountIds[0]"),
    ({"accountIds": [], "text": 5}, "text"),
    ({"accountIds": [], "mediaType": "gif"}, "mediaType"),
    ({"accountIds": [], "mediaUrls": ["a", 2]}, "mediaUrls[1]"),
    ({"accountIds": [], "platformConfig": []}, "platformConfig"),
    ({"accountIds": [], "thread": [{"text": 1}]}, "thread[0].text"),
    ({"accountIds": [], "surprise": True}, "surprise"),
])
def test_create_type_errors_point_at_the_field(sqlite_api: Api, body: dict, path: str) -> None:
    response = sqlite_api.post("/posts", body)
    assert response.status_code == 400
    assert path in [d["path"] for d in response.get_json()["details"]]


@pytest.mark.parametrize(("extra", "path"), [
    ({"scheduledAt": "next tuesday"}, "scheduledAt"),
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"callbackUrl": "ftp://example.com/hook"}, "callbackUrl"),
    ({"accountIds": ["chan_unknown"]}, "accountIds[0]"),
    ({"accountIds": []}, "accountIds"),
    ({"text": "x" * 400}, "text"),
    ({"mediaUrls": ["not a url"]}, "mediaUrls[0]"),
])
def test_create_rule_errors_have_paths(sqlite_api: Api, extra: dict, path: str) -> None:
    body = {"accountIds": [sqlite_api.org.accounts["x"]], "text": "hi", **extra}
    response = sqlite_api.post("/posts", body)
    assert response.status_code == 400, response.get_json()
    details = response.get_json()["details"]
    assert any(d["path"] == path for d in details), details
    assert sqlite_api.get("/posts").get_json()["total"] == 0


def test_instagram_without_media_is_a_validation_error(api: Api) -> None:
    response = api.post("/posts", {"accountIds": [api.org.accounts["instagram"]], "text": "t"})
    assert response.status_code == 400
    assert [d["path"] for d in response.get_json()["details"]] == ["mediaUrls"]


def test_get_post_has_the_documented_fields(api: Api) -> None:
    post_id = api.create(text="details")["posts"][0]["id"]
    body = api.get(f"/posts/{post_id}").get_json()
    assert set(body) >= POST_KEYS
    assert body["channelId"] == api.org.accounts["x"]
    assert body["createdBy"] == api.org.user_id
    assert body["retryCount"] == 0
    assert body["mediaUrls"] == []


def test_get_unknown_post_is_404(sqlite_api: Api) -> None:
    api = sqlite_api
    response = api.get("/posts/post_nope")
    assert response.status_code == 404
    assert response.get_json()["error"] == "Not found"


def test_list_paginates_with_total_and_has_more(api: Api) -> None:
    ids = [api.create(text=f"post {i}")["posts"][0]["id"] for i in range(5)]
    first = api.get("/posts?limit=2&page=1").get_json()
    assert (first["total"], first["page"], first["limit"], first["hasMore"]) == (5, 1, 2, True)
    last = api.get("/posts?limit=2&page=3").get_json()
    assert last["hasMore"] is False and len(last["items"]) == 1
    seen = [p["id"] for page in (1, 2, 3)
            for p in api.get(f"/posts?limit=2&page={page}").get_json()["items"]]
    assert sorted(seen) == sorted(ids)
    assert api.get("/posts").get_json()["limit"] == 20


def test_listed_posts_are_what_getting_each_one_answers(api: Api) -> None:
    api.create(text="plain")
    scheduled = api.create(text="later", scheduledAt=_later())["posts"][0]["id"]
    _set_status(api, scheduled, PostStatus.FAILED)
    items = api.get("/posts").get_json()["items"]
    assert len(items) == 2
    for item in items:
        alone = api.get(f"/posts/{item['id']}").get_json()
        assert item == alone and list(item) == list(alone)


def test_list_filters_by_status_platform_and_channel(api: Api) -> None:
    on_x = api.create()["posts"][0]["id"]
    on_fb = api.create(accountIds=[api.org.accounts["facebook"]])["posts"][0]["id"]
    api.patch(f"/posts/{on_fb}", {"status": "DRAFT"})

    def ids(query: str) -> list[str]:
        return [p["id"] for p in api.get("/posts?" + query).get_json()["items"]]

    assert ids("status=DRAFT") == [on_fb]
    assert ids("status=QUEUED") == [on_x]
    assert ids("platform=x") == [on_x]
    assert ids(f"channelId={api.org.accounts['facebook']}") == [on_fb]
    assert ids("platform=x&status=DRAFT") == []


@pytest.mark.parametrize(("query", "path"), [
    ("status=LOST", "status"), ("platform=myspace", "platform"), ("page=0", "page"),
    ("page=abc", "page"), ("limit=0", "limit"), ("limit=101", "limit"), ("limit=2.5", "limit"),
])
def test_list_bad_query_values_are_400(sqlite_api: Api, query: str, path: str) -> None:
    response = sqlite_api.get("/posts?" + query)
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "VALIDATION_ERROR"
    assert [d["path"] for d in body["details"]] == [path]


def test_patch_changes_text_and_reschedules(api: Api) -> None:
    post_id = api.create(text="before")["posts"][0]["id"]
    response = api.patch(f"/posts/{post_id}", {"text": "after", "scheduledAt": _later()})
    assert response.status_code == 200
    body = response.get_json()
    assert body["text"] == "after"
    assert body["scheduledAt"] is not None
    assert api.get(f"/posts/{post_id}").get_json()["text"] == "after"


def test_patch_scheduled_at_null_means_publish_now(sqlite_api: Api) -> None:
    api = sqlite_api
    post_id = api.create(scheduledAt=_later())["posts"][0]["id"]
    body = api.patch(f"/posts/{post_id}", {"scheduledAt": None}).get_json()
    assert body["scheduledAt"] is None
    assert body["status"] == "QUEUED"


def test_patch_moves_between_draft_queued_and_cancelled(api: Api) -> None:
    post_id = api.create()["posts"][0]["id"]
    assert api.patch(f"/posts/{post_id}", {"status": "DRAFT"}).get_json()["status"] == "DRAFT"
    assert api.patch(f"/posts/{post_id}", {"status": "QUEUED"}).get_json()["status"] == "QUEUED"
    cancelled = api.patch(f"/posts/{post_id}", {"status": "CANCELLED"})
    assert cancelled.get_json()["status"] == "CANCELLED"
    again = api.patch(f"/posts/{post_id}", {"text": "too late"})
    assert again.status_code == 409
    assert again.get_json()["error"] == "CONFLICT"


@pytest.mark.parametrize(("body", "path"), [
    ({"status": "PUBLISHED"}, "status"), ({"text": 3}, "text"), ({"mediaUrls": None}, "mediaUrls"),
    ({"scheduledAt": "soon"}, "scheduledAt"), ({"accountIds": ["chan_x"]}, "accountIds"),
    ({"timezone": "Nowhere/Else"}, "timezone"),
])
def test_patch_validation_errors_have_paths(sqlite_api: Api, body: dict, path: str) -> None:
    api = sqlite_api
    post_id = api.create()["posts"][0]["id"]
    response = api.patch(f"/posts/{post_id}", body)
    assert response.status_code == 400, response.get_json()
    assert path in [d["path"] for d in response.get_json()["details"]]


@pytest.mark.parametrize("status", [PostStatus.PUBLISHING, PostStatus.PUBLISHED,
                                    PostStatus.FAILED])
def test_patch_of_a_post_past_queued_is_409(sqlite_api: Api, status: PostStatus) -> None:
    api = sqlite_api
    post_id = api.create()["posts"][0]["id"]
    _set_status(api, post_id, status)
    response = api.patch(f"/posts/{post_id}", {"text": "edit"})
    assert response.status_code == 409
    assert response.get_json()["error"] == "CONFLICT"


def test_delete_hard_deletes_a_draft(api: Api) -> None:
    post_id = api.create()["posts"][0]["id"]
    api.patch(f"/posts/{post_id}", {"status": "DRAFT"})
    response = api.delete(f"/posts/{post_id}")
    assert response.status_code == 200
    assert response.get_json() == {"id": post_id, "deleted": True, "status": None}
    assert api.get(f"/posts/{post_id}").status_code == 404


@pytest.mark.parametrize("status", [PostStatus.QUEUED, PostStatus.PUBLISHED, PostStatus.FAILED])
def test_delete_cancels_queued_published_and_failed(sqlite_api: Api, status: PostStatus) -> None:
    api = sqlite_api
    post_id = api.create()["posts"][0]["id"]
    _set_status(api, post_id, status)
    response = api.delete(f"/posts/{post_id}")
    assert response.status_code == 200
    assert response.get_json() == {"id": post_id, "deleted": False, "status": "CANCELLED"}
    assert api.get(f"/posts/{post_id}").get_json()["status"] == "CANCELLED"


def test_delete_while_publishing_is_409(api: Api) -> None:
    post_id = api.create()["posts"][0]["id"]
    _set_status(api, post_id, PostStatus.PUBLISHING)
    response = api.delete(f"/posts/{post_id}")
    assert response.status_code == 409
    assert response.get_json()["error"] == "CONFLICT"


def test_delete_from_platform_must_be_a_boolean(sqlite_api: Api) -> None:
    api = sqlite_api
    post_id = api.create()["posts"][0]["id"]
    response = api.delete(f"/posts/{post_id}?fromPlatform=maybe")
    assert response.status_code == 400
    assert [d["path"] for d in response.get_json()["details"]] == ["fromPlatform"]


def test_delete_unknown_post_is_404(sqlite_api: Api) -> None:
    api = sqlite_api
    assert api.delete("/posts/post_missing").status_code == 404


def test_duplicate_defaults_to_a_draft_on_the_same_channel(api: Api) -> None:
    source = api.create(text="again")["posts"][0]["id"]
    response = api.post(f"/posts/{source}/duplicate")
    assert response.status_code == 201
    body = response.get_json()
    assert body["duplicatedFrom"] == source
    assert body["groupId"] is None
    (copy,) = body["posts"]
    assert set(copy) == SUMMARY_KEYS
    assert copy["status"] == "DRAFT"
    assert copy["accountId"] == api.org.accounts["x"]
    assert api.get(f"/posts/{copy['id']}").get_json()["text"] == "again"


def test_duplicate_to_other_channels_queued_with_a_schedule(api: Api) -> None:
    source = api.create(text="spread")["posts"][0]["id"]
    targets = [api.org.accounts["x"], api.org.accounts["facebook"]]
    body = api.post(f"/posts/{source}/duplicate", {"accountIds": targets, "status": "QUEUED",
                                                   "scheduledAt": _later()}).get_json()
    assert body["groupId"]
    assert [p["accountId"] for p in body["posts"]] == targets
    assert {p["status"] for p in body["posts"]} == {"QUEUED"}
    assert all(p["scheduledAt"] for p in body["posts"])


@pytest.mark.parametrize(("body", "path"), [
    ({"status": "PUBLISHED"}, "status"), ({"accountIds": ["chan_nope"]}, "accountIds[0]"),
    ({"accountIds": "x"}, "accountIds"), ({"scheduledAt": "whenever"}, "scheduledAt"),
])
def test_duplicate_validation_errors(sqlite_api: Api, body: dict, path: str) -> None:
    api = sqlite_api
    source = api.create()["posts"][0]["id"]
    response = api.post(f"/posts/{source}/duplicate", body)
    assert response.status_code == 400, response.get_json()
    assert path in [d["path"] for d in response.get_json()["details"]]


def test_duplicate_unknown_post_is_404(sqlite_api: Api) -> None:
    api = sqlite_api
    assert api.post("/posts/post_nope/duplicate").status_code == 404


def test_logs_list_the_posts_events(api: Api) -> None:
    post_id = api.create()["posts"][0]["id"]
    api.patch(f"/posts/{post_id}", {"text": "edited"})
    response = api.get(f"/posts/{post_id}/logs")
    assert response.status_code == 200
    logs = response.get_json()["logs"]
    assert [e["event"] for e in logs] == ["created", "updated"]
    assert all(e["postId"] == post_id and e["message"] and e["createdAt"] for e in logs)


def test_logs_of_unknown_post_are_404(sqlite_api: Api) -> None:
    api = sqlite_api
    assert api.get("/posts/post_nope/logs").status_code == 404


def test_validate_reports_without_creating(api: Api) -> None:
    good = api.post("/posts/validate", {"accountIds": [api.org.accounts["x"]], "text": "ok"})
    assert good.status_code == 200
    assert good.get_json()["valid"] is True
    bad = api.post("/posts/validate", {"accountIds": [api.org.accounts["x"],
                                                      api.org.accounts["instagram"]],
                                       "text": "no media"})
    assert bad.status_code == 200
    report = bad.get_json()
    assert report["valid"] is False
    by_platform = {r["platform"]: r for r in report["results"]}
    assert by_platform["x"]["valid"] is True
    assert by_platform["instagram"]["errors"][0]["path"] == "mediaUrls"
    assert api.get("/posts").get_json()["total"] == 0


def test_validate_with_an_unreadable_body_is_400(sqlite_api: Api) -> None:
    response = sqlite_api.post("/posts/validate", {"text": "no accounts"})
    assert response.status_code == 400
    assert [d["path"] for d in response.get_json()["details"]] == ["accountIds"]
