"""Publishing to the Mastodon sandbox over real HTTP: statuses, media, threads, deletion,
credentials (platforms-more.md §2.4-§2.6)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from chat33_mastodon import MastodonPlatform, rules
from chat33_mastodon.publishing import idempotency_key

from chat33_core.config import Settings
from chat33_core.errors import PermanentError, ReconnectRequired
from chat33_core.models import Credentials
from chat33_core.platforms import DeleteContext, MediaFile, PostDraft, RefreshContext
from chat33_core.testing import RecordingSleep, publish_context

from .conftest import TOKEN, Sandbox, account

Media = Callable[[str], MediaFile]


def test_a_text_status_with_its_options(sandbox: Sandbox) -> None:
    ctx = sandbox.context(["hello https://example.com/some/long/path"], platform_config={
        "mastodon": {"visibility": "unlisted", "spoilerText": "CW", "sensitive": True,
                     "language": "en"}})
    result = sandbox.platform.publish(ctx)
    [status] = sandbox.statuses()
    assert result.first.external_id == status["id"]
    assert result.first.external_url == f"{sandbox.url}/@chat33/{status['id']}"
    assert (status["visibility"], status["spoiler_text"], status["sensitive"],
            status["language"]) == ("unlisted", "CW", True, "en")
    assert status["idempotency_key"] == idempotency_key(ctx.post_id, 0)


def test_publishing_reads_the_instance_limits_for_later_validation(sandbox: Sandbox) -> None:
    sandbox.config(max_characters=1234)
    sandbox.platform.publish(sandbox.context(["short"]))
    known = rules.known_limits(sandbox.url)
    assert known is not None and known.max_characters == 1234
    draft = PostDraft(text="x" * 1000, media_type=None, media=[], platform_config={})
    assert sandbox.platform.validate(draft, account()) == []


def test_images_are_uploaded_with_alt_text(sandbox: Sandbox, media: Media) -> None:
    ctx = sandbox.context(["two pictures"], media=[[media("photo.jpg"), media("photo2.png")]],
                          platform_config={"mastodon": {"altText": ["a cat", "a dog"]}})
    sandbox.platform.publish(ctx)
    [status] = sandbox.statuses()
    uploaded = {m["id"]: m for m in sandbox.state()["media"]}
    assert [uploaded[m]["description"] for m in status["media_ids"]] == ["a cat", "a dog"]
    assert all(uploaded[m]["attached"] for m in status["media_ids"])
    assert ctx.checkpoints.load()["items"] == {}  # done: nothing left in flight


def test_a_video_is_polled_until_processed(sandbox: Sandbox, media: Media) -> None:
    sandbox.config(processing_polls=3)
    sleep = RecordingSleep()
    ctx = sandbox.context([None], media=[[media("clip.mp4")]])
    ctx.sleep = sleep
    sandbox.platform.publish(ctx)
    [status] = sandbox.statuses()
    [video] = sandbox.state()["media"]
    assert status["media_ids"] == [video["id"]] and video["type"] == "video"
    assert video["polls"] == 4  # three 206 answers, then 200 with the url
    assert len(sleep.waits) == 3


def test_asynchronous_images_wait_too(sandbox: Sandbox, media: Media) -> None:
    sandbox.config(sync_images=False, processing_polls=1)
    sandbox.platform.publish(sandbox.context(["slow"], media=[[media("photo.jpg")]]))
    assert len(sandbox.statuses()) == 1


def test_a_thread_is_a_chain_of_replies(sandbox: Sandbox, media: Media) -> None:
    ctx = sandbox.context(["one", "two", "three"], media=[[], [media("photo.jpg")]])
    result = sandbox.platform.publish(ctx)
    statuses = {s["text"]: s for s in sandbox.statuses()}
    assert [r.external_id for r in result.receipts] == [statuses[t]["id"]
                                                        for t in ("one", "two", "three")]
    assert statuses["one"]["in_reply_to_id"] is None
    assert statuses["two"]["in_reply_to_id"] == statuses["one"]["id"]
    assert statuses["three"]["in_reply_to_id"] == statuses["two"]["id"]
    assert len(statuses["two"]["media_ids"]) == 1
    assert [r.post_id for r in result.receipts] == [i.post_id for i in ctx.items]


def test_a_reply_to_an_existing_status(sandbox: Sandbox) -> None:
    first = sandbox.platform.publish(sandbox.context(["original"])).first.external_id
    sandbox.platform.publish(sandbox.context(
        ["answer"], platform_config={"mastodon": {"inReplyToId": first}}))
    answer = next(s for s in sandbox.statuses() if s["text"] == "answer")
    assert answer["in_reply_to_id"] == first


def test_deleting_a_thread(sandbox: Sandbox) -> None:
    result = sandbox.platform.publish(sandbox.context(["a", "b"]))
    ids = [r.external_id for r in result.receipts]
    events: list[str] = []
    ctx = DeleteContext(account=account(), credentials=Credentials(access_token=TOKEN),
                        http=sandbox.http, settings=sandbox.settings, external_ids=ids,
                        log=lambda event, message, **data: events.append(message))
    sandbox.platform.delete(ctx)
    assert sandbox.statuses() == []
    assert len(events) == 2 and ids[1] in events[0]  # the reply first
    sandbox.platform.delete(ctx)  # already gone: still a success
    assert "already gone" in events[-1]


def test_deleting_with_a_revoked_token_asks_for_reconnect(sandbox: Sandbox) -> None:
    [status_id] = [r.external_id for r in
                   sandbox.platform.publish(sandbox.context(["keep"])).receipts]
    ctx = DeleteContext(account=account(), credentials=Credentials(access_token="revoked"),
                        http=sandbox.http, settings=sandbox.settings, external_ids=[status_id])
    with pytest.raises(ReconnectRequired):
        sandbox.platform.delete(ctx)
    assert len(sandbox.statuses()) == 1


def test_credentials_never_expire_and_are_checked(sandbox: Sandbox) -> None:
    platform = sandbox.platform
    credentials = Credentials(access_token=TOKEN)
    assert not platform.needs_refresh(credentials)
    ctx = RefreshContext(account=account(), http=sandbox.http, settings=sandbox.settings)
    assert platform.refresh_credentials(credentials, ctx) is credentials
    with pytest.raises(ReconnectRequired) as caught:
        platform.refresh_credentials(Credentials(access_token="revoked"), ctx)
    assert "The access token is invalid" in caught.value.message


def test_oauth_tokens_from_the_sandbox_work_and_have_no_expiry(sandbox: Sandbox) -> None:
    app = sandbox.http.post(f"{sandbox.url}/api/v1/apps", json={
        "client_name": "chat33", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob",
        "scopes": "write:statuses write:media read:accounts"}).json()
    token = sandbox.http.post(f"{sandbox.url}/oauth/token", data={
        "grant_type": "authorization_code", "code": "abc", "client_id": app["client_id"],
        "client_secret": app["client_secret"], "redirect_uri": "urn:ietf:wg:oauth:2.0:oob"})
    body = token.json()
    assert "expires_in" not in body and "refresh_token" not in body
    ctx = sandbox.context(["via oauth"],
                          credentials=Credentials(access_token=body["access_token"]))
    assert sandbox.platform.publish(ctx).first.external_id


def test_the_instance_comes_from_the_account_without_an_api_base() -> None:
    platform = MastodonPlatform(Settings.from_env({}))
    assert platform.instance(account(metadata={"instance": "https://a.example/"})) == \
        "https://a.example"
    assert platform.instance(account(username="me@b.example")) == "https://b.example"
    assert platform.instance(account(username="me")) is None
    overridden = MastodonPlatform(Settings.from_env(
        {"CHAT33_MASTODON_API_BASE": "http://127.0.0.1:9"}))
    assert overridden.instance(account(metadata={"instance": "https://a.example"})) == \
        "http://127.0.0.1:9"


def test_an_account_without_an_instance_fails_clearly() -> None:
    platform = MastodonPlatform(Settings.from_env({}))
    ctx = publish_context(platform, settings=platform.settings, account=account(username="me"),
                          http=httpx.Client())
    with pytest.raises(PermanentError) as caught:
        platform.publish(ctx)
    assert "--instance" in caught.value.message
