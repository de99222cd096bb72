"""POST /posts/{id}/retry, and accounts showing ``needsReconnect`` and ``externalId``."""

from __future__ import annotations

import attrs
import pytest

from chat33_core.models import PostStatus, utcnow

from .conftest import Api


def _fail(api: Api, post_id: str, retries: int = 3) -> None:
    post = api.core.store.get_post(post_id)
    api.core.store.save_post(attrs.evolve(post, status=PostStatus.FAILED, retry_count=retries,
                                          error_message="X answered 500 three times"))


def test_retry_puts_a_failed_post_back_in_the_queue(api: Api) -> None:
    post_id = api.create()["posts"][0]["id"]
    _fail(api, post_id)
    response = api.post(f"/posts/{post_id}/retry")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["id"], body["status"], body["retryCount"], body["errorMessage"]) == \
        (post_id, "QUEUED", 0, None)
    stored = api.core.store.get_post(post_id)
    assert stored.next_attempt_at is None and stored.lease_owner is None  # due now
    (retried,) = [e for e in api.get(f"/posts/{post_id}/logs").get_json()["logs"]
                  if e["event"] == "retried"]
    assert "attempts reset (was 3)" in retried["message"]
    assert "X answered 500 three times" in retried["message"]
    assert retried["data"] == {"previousRetryCount": 3,
                               "previousError": "X answered 500 three times"}
    again = api.post(f"/posts/{post_id}/retry")
    assert again.status_code == 409
    assert again.get_json()["error"] == "CONFLICT"


@pytest.mark.parametrize("status", [PostStatus.DRAFT, PostStatus.QUEUED, PostStatus.PUBLISHING,
                                    PostStatus.PUBLISHED, PostStatus.CANCELLED])
def test_retry_from_any_other_status_is_409(sqlite_api: Api, status: PostStatus) -> None:
    api = sqlite_api
    post_id = api.create()["posts"][0]["id"]
    post = api.core.store.get_post(post_id)
    api.core.store.save_post(attrs.evolve(post, status=status))
    response = api.post(f"/posts/{post_id}/retry")
    assert response.status_code == 409
    body = response.get_json()
    assert body["error"] == "CONFLICT"
    assert body["message"] == ("cannot retry the post (only FAILED posts can be retried): "
                               f"the post is {status.value}")
    assert api.core.store.get_post(post_id).status is status


def test_retry_of_an_unknown_or_foreign_post_is_404(api: Api) -> None:
    assert api.post("/posts/post_nope/retry").status_code == 404
    theirs = api.create(org=api.other, accountIds=[api.other.accounts["x"]])["posts"][0]["id"]
    _fail(api, theirs)
    response = api.post(f"/posts/{theirs}/retry")
    assert response.status_code == 404
    assert api.core.store.get_post(theirs).status is PostStatus.FAILED


def test_retry_needs_posts_write(sqlite_api: Api) -> None:
    api = sqlite_api
    post_id = api.create()["posts"][0]["id"]
    _fail(api, post_id)
    _, reader = api.core.create_api_key(api.org.id, api.org.user_id, "reader", ["posts:read"])
    response = api.post(f"/posts/{post_id}/retry", headers={"x-api-key": reader})
    assert response.status_code == 403
    assert api.core.store.get_post(post_id).status is PostStatus.FAILED


def test_retry_is_refused_while_the_account_must_be_reconnected(api: Api) -> None:
    post_id = api.create()["posts"][0]["id"]
    _fail(api, post_id)
    store = api.core.store
    account = store.get_account(api.org.accounts["x"])
    # the worker marks it when the platform refuses its credentials
    store.write_results("w1", utcnow(), reconnect=[account.id])
    listed = {a["id"]: a for a in api.get("/accounts").get_json()["items"]}
    assert listed[account.id]["needsReconnect"] is True
    assert listed[account.id]["externalId"] == "ext-x"
    response = api.post(f"/posts/{post_id}/retry")
    assert response.status_code == 409
    assert "must be reconnected" in response.get_json()["message"]
    # new credentials (a reconnection) clear the mark; then the retry goes through
    from chat33_core.models import Credentials

    api.core.save_account_credentials(account.id, Credentials(access_token="fresh"))
    assert api.get("/accounts").get_json()["items"][0]["needsReconnect"] is False
    assert api.post(f"/posts/{post_id}/retry").get_json()["status"] == "QUEUED"


def test_retrying_a_thread_takes_its_failed_items_along(sqlite_api: Api) -> None:
    api = sqlite_api
    created = api.create(text="first", thread=[{"text": "second"}, {"text": "third"}])
    ids = [p["id"] for p in created["posts"]]
    for post_id in ids:
        _fail(api, post_id)
    follower = api.post(f"/posts/{ids[1]}/retry")
    assert follower.status_code == 409
    assert ids[0] in follower.get_json()["message"]
    assert api.post(f"/posts/{ids[0]}/retry").status_code == 200
    assert [api.core.store.get_post(i).status for i in ids] == [PostStatus.QUEUED] * 3
    assert all(api.core.store.get_post(i).retry_count == 0 for i in ids)


def test_accounts_show_external_id_and_needs_reconnect(api: Api) -> None:
    items = api.get("/accounts").get_json()["items"]
    assert {a["externalId"] for a in items} == {f"ext-{p}" for p in api.org.accounts}
    assert all(a["needsReconnect"] is False for a in items)
    doc = api.client.get("/api/v1/openapi.json").get_json()
    account = doc["components"]["schemas"]["Account"]
    assert {"externalId", "needsReconnect"} <= set(account["required"])
    assert doc["paths"]["/posts/{id}/retry"]["post"]["x-required-scopes"] == ["posts:write"]
