"""Publishing to the LinkedIn sandbox over real HTTP: text, images, multi-image, video,
thread items as separate posts, delete."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from chat33_linkedin import LinkedInPlatform
from chat33_linkedin.rules import RESERVED
from chat33_linkedin.sandbox import LinkedInSandbox

from chat33_core.config import Settings
from chat33_core.models import Credentials
from chat33_core.platforms import DeleteContext, MediaFile
from chat33_core.sandbox import PrefixDispatcher, serve
from chat33_core.testing import publish_context

from .conftest import Sandbox, account

Media = Callable[[str], MediaFile]


def test_a_text_post_keeps_every_reserved_character(sandbox: Sandbox) -> None:
    text = "Launch (v2) #news @team [beta] <soon> *bold* _it_ ~x~ {a|b} c:\\d"
    result = sandbox.platform.publish(sandbox.context([text]))
    [post] = sandbox.posts()
    # the sandbox cuts at the first unescaped reserved character, as LinkedIn does
    assert post["text"] == text and set(text) & RESERVED
    assert result.first.external_id == post["id"].strip()
    assert result.first.external_id.startswith("urn:li:share:")
    assert result.first.external_url == f"https://www.linkedin.com/feed/update/{post['id']}"
    assert post["visibility"] == "PUBLIC" and post["lifecycleState"] == "PUBLISHED"
    assert post["distribution"]["feedDistribution"] == "MAIN_FEED"


def test_options_reach_the_post(sandbox: Sandbox) -> None:
    sandbox.platform.publish(sandbox.context(
        ["members only"], platform_config={"linkedin": {
            "visibility": "CONNECTIONS", "feedDistribution": "NONE",
            "isReshareDisabledByAuthor": True}}))
    [post] = sandbox.posts()
    assert post["visibility"] == "CONNECTIONS"
    assert post["distribution"]["feedDistribution"] == "NONE"
    assert post["isReshareDisabledByAuthor"] is True


def test_one_image_with_alt_text(sandbox: Sandbox, media: Media) -> None:
    sandbox.platform.publish(sandbox.context(
        ["a photo"], media=[[media("photo.jpg")]],
        platform_config={"linkedin": {"altText": "a red square"}}))
    [post] = sandbox.posts()
    [image] = sandbox.state()["images"]
    assert image["status"] == "AVAILABLE" and image["format"] == "JPEG"
    assert post["content"] == {"media": {"id": image["id"], "altText": "a red square"}}


def test_several_images_become_a_multi_image_post(sandbox: Sandbox, media: Media) -> None:
    files = [media("photo.jpg"), media("photo2.png"), media("moving.gif")]
    sandbox.platform.publish(sandbox.context(["three"], media=[files]))
    [post] = sandbox.posts()
    images = sandbox.state()["images"]
    assert [i["format"] for i in images] == ["JPEG", "PNG", "GIF"]
    assert post["content"] == {"multiImage": {"images": [{"id": i["id"]} for i in images]}}


def test_a_video_goes_up_in_parts_and_waits_until_available(sandbox: Sandbox,
                                                            media: Media) -> None:
    clip = media("clip.mp4")
    ctx = sandbox.context(["a clip"], media=[[clip]])
    sandbox.platform.publish(ctx)
    [video] = sandbox.state()["videos"]
    assert len(video["instructions"]) == -(-clip.info.size // 65_536) > 1
    assert video["status"] == "AVAILABLE" and video["polls"] >= 3
    assert None not in video["etags"]
    [post] = sandbox.posts()
    assert post["content"] == {"media": {"id": video["id"]}}


def test_thread_items_are_separate_posts_in_order(sandbox: Sandbox) -> None:
    result = sandbox.platform.publish(sandbox.context(["one", "two", "three"]))
    posts = sorted(sandbox.posts(), key=lambda p: p["createdAt"])
    assert [p["text"] for p in posts] == ["one", "two", "three"]
    assert [r.external_id for r in result.receipts] == [p["id"] for p in posts]


def test_an_organization_posts_as_its_urn(sandbox: Sandbox) -> None:
    sandbox.platform.publish(sandbox.context(
        ["from the page"], account=account(external_id="urn:li:organization:3300")))
    [post] = sandbox.posts()
    assert post["author"] == "urn:li:organization:3300"


def test_delete_removes_every_post_and_a_missing_one_counts_as_gone(
        sandbox: Sandbox) -> None:
    result = sandbox.platform.publish(sandbox.context(["one", "two"]))
    ids = [r.external_id for r in result.receipts]
    events: list[str] = []
    ctx = DeleteContext(account=account(), credentials=Credentials(access_token="sandbox-token"),
                        http=sandbox.http, settings=sandbox.settings, external_ids=ids,
                        log=lambda event, message, **data: events.append(message))
    sandbox.platform.delete(ctx)
    assert sandbox.posts() == []
    sandbox.platform.delete(ctx)
    assert sum("already gone" in e for e in events) == 2


def test_upload_urls_stay_under_the_prefix_chat33_sandbox_serves(media: Media) -> None:
    """``chat33 sandbox`` serves every platform under ``/<name>``: the upload URLs the
    sandbox hands out must keep that prefix."""
    app = LinkedInSandbox()
    app.config["part_bytes"] = 65_536
    with serve(PrefixDispatcher({"linkedin": app})) as url, \
            httpx.Client(timeout=10) as http:
        settings = Settings.from_env({"CHAT33_LINKEDIN_API_BASE": f"{url}/linkedin",
                                      "CHAT33_POLL_INTERVAL_S": "0.01"})
        platform = LinkedInPlatform(settings)
        for files in ([media("photo.jpg")], [media("clip.mp4")]):
            platform.publish(publish_context(
                platform, settings=settings, media=files, http=http, account=account(),
                credentials=Credentials(access_token="sandbox-token"), text="prefixed"
                + files[0].name))
    assert len(app.state()["posts"]) == 2
