"""Publishing against the Bluesky sandbox over real HTTP on loopback."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from chat33_bluesky import BlueskyPlatform
from chat33_bluesky.publishing import new_tid
from chat33_bluesky.sandbox import BlueskySandbox

from chat33_core.config import Settings
from chat33_core.errors import PermanentError
from chat33_core.models import Credentials
from chat33_core.platforms import MediaFile, RefreshContext
from chat33_core.sandbox import PrefixDispatcher, serve
from chat33_core.testing import RecordingSleep, publish_context

from .conftest import DID, HANDLE, Sandbox, account

Media = Callable[[str], MediaFile]
VECTOR = ("✨ example mentioning @atproto.com to share the URL 👨‍❤️‍👨 "
          "https://en.wikipedia.org/wiki/CBOR.")


def test_a_text_post_is_a_record_on_the_pds_with_byte_offset_facets(sandbox: Sandbox) -> None:
    ctx = sandbox.context([VECTOR + " #atproto @nobody.example"])
    result = sandbox.platform.publish(ctx)

    [post] = sandbox.posts()
    receipt = result.first
    assert receipt.external_id == post["uri"]
    assert post["uri"].startswith(f"at://{DID}/app.bsky.feed.post/")
    assert receipt.external_url == (f"https://bsky.app/profile/{HANDLE}/post/"
                                    f"{post['uri'].rsplit('/', 1)[1]}")
    assert receipt.extra["cid"] == post["cid"]
    record = post["value"]
    assert record["text"].startswith("✨ example")
    assert record["createdAt"].endswith("Z")
    assert [(f["index"]["byteStart"], f["index"]["byteEnd"], f["features"][0]["$type"])
            for f in record["facets"]] == [
        (23, 35, "app.bsky.richtext.facet#mention"),
        (74, 108, "app.bsky.richtext.facet#link"),
        (110, 118, "app.bsky.richtext.facet#tag")]
    assert record["facets"][0]["features"][0]["did"] == "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
    # the unknown handle stays plain text; the login went to the entryway, the writes to
    # the PDS the DID document named
    calls = sandbox.state()["calls"]
    assert ["entryway", "com.atproto.server.createSession"] in calls
    assert ["pds", "com.atproto.repo.createRecord"] in calls
    assert ["entryway", "com.atproto.repo.createRecord"] not in calls


def test_the_record_key_is_a_tid_chosen_before_sending(sandbox: Sandbox) -> None:
    ctx = sandbox.context(["hello"])
    sandbox.platform.publish(ctx)
    [post] = sandbox.posts()
    rkey = post["rkey"]
    assert len(rkey) == 13 and rkey[0] in "234567abcdefghij"
    # TIDs sort by time
    assert new_tid(now_us=1) < new_tid(now_us=2) < rkey < new_tid(now_us=2**52)


def test_images_with_alt_text_and_aspect_ratio(sandbox: Sandbox, media: Media) -> None:
    ctx = sandbox.context(["two pictures"], media=[[media("photo.jpg"), media("photo2.png")]],
                          platform_config={"bluesky": {"altText": ["a red square",
                                                                   "a blue one"],
                                                       "langs": ["en"]}})
    sandbox.platform.publish(ctx)
    [post] = sandbox.posts()
    embed = post["value"]["embed"]
    assert embed["$type"] == "app.bsky.embed.images"
    assert [i["alt"] for i in embed["images"]] == ["a red square", "a blue one"]
    assert [i["aspectRatio"] for i in embed["images"]] == [
        {"width": 600, "height": 400}, {"width": 300, "height": 500}]
    assert [i["image"]["mimeType"] for i in embed["images"]] == ["image/jpeg", "image/png"]
    assert embed["images"][0]["image"]["size"] == media("photo.jpg").info.size
    assert post["value"]["langs"] == ["en"]
    blobs = sandbox.state()["blobs"]
    assert len(blobs) == 2 and all(b["referenced"] for b in blobs)


def test_images_without_alt_text_send_an_empty_alt(sandbox: Sandbox, media: Media) -> None:
    sandbox.platform.publish(sandbox.context([""], media=[[media("photo.jpg")]]))
    [post] = sandbox.posts()
    assert post["value"]["text"] == ""
    assert post["value"]["embed"]["images"][0]["alt"] == ""


def test_a_video_goes_through_the_video_service(sandbox: Sandbox, media: Media) -> None:
    sleep = RecordingSleep()
    ctx = sandbox.context(["a clip"], media=[[media("clip.mp4")]],
                          platform_config={"bluesky": {"altText": "a moving picture"}})
    ctx.sleep = sleep
    sandbox.platform.publish(ctx)
    [post] = sandbox.posts()
    embed = post["value"]["embed"]
    assert embed["$type"] == "app.bsky.embed.video"
    assert embed["alt"] == "a moving picture"
    assert embed["aspectRatio"] == {"width": 320, "height": 240}
    assert embed["video"]["mimeType"] == "video/mp4"
    [job] = sandbox.state()["jobs"]
    assert job["state"] == "JOB_STATE_COMPLETED" and job["name"] == "clip.mp4"
    assert len(sleep.waits) == 2  # three polls: two states in progress, then the blob
    calls = sandbox.state()["calls"]
    assert ["pds", "com.atproto.server.getServiceAuth"] in calls
    assert ["entryway", "app.bsky.video.uploadVideo"] in calls
    assert ["pds", "com.atproto.repo.uploadBlob"] not in calls


def test_a_video_status_wrapped_as_the_lexicon_says_is_read_too(sandbox: Sandbox,
                                                                 media: Media) -> None:
    sandbox.config(wrap_job_status=True, video_steps=1)
    sandbox.platform.publish(sandbox.context(["wrapped"], media=[[media("clip.mp4")]]))
    assert sandbox.posts()[0]["value"]["embed"]["$type"] == "app.bsky.embed.video"


def test_a_video_the_service_already_has_is_taken_from_already_exists(
        sandbox: Sandbox, media: Media) -> None:
    sandbox.config(video_steps=1)
    sandbox.platform.publish(sandbox.context(["first"], media=[[media("clip.mp4")]]))
    sandbox.platform.publish(sandbox.context(["again"], media=[[media("clip.mp4")]]))
    first, second = sandbox.posts()
    assert first["value"]["embed"]["video"] == second["value"]["embed"]["video"]
    assert len(sandbox.state()["jobs"]) == 1


def test_a_video_the_service_cannot_process_fails_with_its_failure_code(
        sandbox: Sandbox, media: Media) -> None:
    sandbox.config(video_failure="encoding_failure", video_steps=2)
    with pytest.raises(PermanentError) as caught:
        sandbox.platform.publish(sandbox.context(["broken"], media=[[media("clip.mp4")]]))
    assert caught.value.platform_code == "encoding_failure"
    assert "could not process the video" in caught.value.message
    assert sandbox.posts() == []


def test_a_link_card_with_the_cover_image_as_thumbnail(sandbox: Sandbox, media: Media) -> None:
    ctx = sandbox.context(["read this"], platform_config={"bluesky": {"linkCard": {
        "uri": "https://example.com/article", "title": "An article",
        "description": "What it is about"}}})
    ctx.cover_image = media("thumb.jpg")
    sandbox.platform.publish(ctx)
    external = sandbox.posts()[0]["value"]["embed"]["external"]
    assert external["uri"] == "https://example.com/article"
    assert external["title"] == "An article" and external["description"] == "What it is about"
    assert external["thumb"]["mimeType"] == "image/jpeg"


def test_a_thread_is_replies_with_root_and_parent(sandbox: Sandbox, media: Media) -> None:
    ctx = sandbox.context(["one", "two", "three"], media=[[], [media("photo.jpg")]])
    result = sandbox.platform.publish(ctx)
    by_text = {p["value"]["text"]: p for p in sandbox.posts()}
    one, two, three = by_text["one"], by_text["two"], by_text["three"]
    root = {"uri": one["uri"], "cid": one["cid"]}
    assert "reply" not in one["value"]
    assert two["value"]["reply"] == {"root": root, "parent": root}
    assert three["value"]["reply"] == {"root": root,
                                       "parent": {"uri": two["uri"], "cid": two["cid"]}}
    assert two["value"]["embed"]["images"][0]["alt"] == ""
    assert [r.external_id for r in result.receipts] == [one["uri"], two["uri"], three["uri"]]
    assert [r.post_id for r in result.receipts] == [i.post_id for i in ctx.items]


def test_reply_to_someone_elses_thread_takes_its_root(sandbox: Sandbox) -> None:
    other = {"did": "did:plc:otheraccount234567abcdef", "handle": "other.test",
             "password": "other-pass"}
    sandbox.add_account(**other)
    them = account(external_id=other["did"], username=other["handle"])
    sandbox.platform.publish(sandbox.context(["their root", "their reply"], account=them,
                                             credentials=sandbox.login(them, "other-pass")))
    theirs = {p["value"]["text"]: p for p in sandbox.posts()}
    link = (f"https://bsky.app/profile/other.test/post/"
            f"{theirs['their reply']['uri'].rsplit('/', 1)[1]}")
    sandbox.platform.publish(sandbox.context(["my answer", "and more"], platform_config={
        "bluesky": {"replyTo": link}}))
    mine = {p["value"]["text"]: p for p in sandbox.posts()}
    root = {"uri": theirs["their root"]["uri"], "cid": theirs["their root"]["cid"]}
    assert mine["my answer"]["value"]["reply"] == {
        "root": root, "parent": {"uri": theirs["their reply"]["uri"],
                                 "cid": theirs["their reply"]["cid"]}}
    assert mine["and more"]["value"]["reply"] == {
        "root": root, "parent": {"uri": mine["my answer"]["uri"],
                                 "cid": mine["my answer"]["cid"]}}


def test_reply_to_a_post_that_is_gone_fails_clearly(sandbox: Sandbox) -> None:
    with pytest.raises(PermanentError) as caught:
        sandbox.platform.publish(sandbox.context(["answer"], platform_config={"bluesky": {
            "replyTo": f"at://{DID}/app.bsky.feed.post/3kaaaaaaaaaaa"}}))
    assert caught.value.platform_code == "reply-not-found"
    assert sandbox.posts() == []


def test_the_sandbox_behind_chat33_sandbox_s_path_prefix_names_its_pds_there() -> None:
    """``chat33 sandbox`` serves every sandbox under ``/<platform>``: the DID document's
    PDS must keep that prefix for the plugin to follow it."""
    with serve(PrefixDispatcher({"bluesky": BlueskySandbox()})) as url:
        settings = Settings.from_env({"CHAT33_BLUESKY_API_BASE": f"{url}/bluesky"})
        platform = BlueskyPlatform(settings)
        with httpx.Client(timeout=10) as http:
            credentials = platform.refresh_credentials(
                Credentials(access_token="sandbox-token"),
                RefreshContext(account=account(), http=http, settings=settings))
            assert credentials.extra["pds"] == f"{url}/bluesky/pds"
            result = platform.publish(publish_context(
                platform, settings=settings, account=account(), credentials=credentials,
                http=http, text="through the prefix"))
            posts = http.get(f"{url}/bluesky/_sandbox/state").json()["posts"]
    assert [p["uri"] for p in posts] == [result.first.external_id]


def test_a_handle_mentioned_twice_is_resolved_once(sandbox: Sandbox) -> None:
    sandbox.platform.publish(sandbox.context(["@atproto.com hi, @atproto.com"]))
    facets = sandbox.posts()[0]["value"]["facets"]
    assert [(f["index"]["byteStart"], f["index"]["byteEnd"]) for f in facets] == [
        (0, 12), (17, 29)]
    resolves = [c for c in sandbox.state()["calls"]
                if c[1] == "com.atproto.identity.resolveHandle"]
    assert len(resolves) == 1
