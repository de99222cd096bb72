"""End to end with the core's own helpers: inspected media, ``sandbox_env``, the
validator and the publisher agreeing with the sandbox's byte checks."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from chat33_instagram import InstagramPlatform
from chat33_instagram.platform import FACEBOOK_GRAPH, INSTAGRAM_GRAPH

from chat33_core.config import Settings
from chat33_core.errors import PermanentError
from chat33_core.models import Account, Credentials, MediaType
from chat33_core.platforms import PostDraft
from chat33_core.testing import media_file, publish_context, sandbox_env

ACCOUNT = Account(id="chan_1", org_id="org_1", platform="instagram", name="ig")


@pytest.fixture(scope="module")
def env() -> Iterator[Settings]:
    """The platform's own sandbox, served the way the core's helper serves it."""
    with sandbox_env(InstagramPlatform(Settings.from_env({}))) as (_, settings):
        yield settings


@pytest.mark.parametrize(("name", "media_type", "valid"), [
    ("square.jpg", MediaType.IMAGE, True),
    ("portrait.jpg", MediaType.IMAGE, True),
    ("tall.jpg", MediaType.IMAGE, False),
    ("picture.png", MediaType.IMAGE, False),
    ("anim.gif", MediaType.IMAGE, False),
    ("reel.mp4", MediaType.REEL, True),
    ("short.mp4", MediaType.REEL, False),
])
def test_validator_and_sandbox_agree_on_inspected_media(media_dir, media_url, env, name,
                                                        media_type, valid):
    file = media_file(media_dir / name, media_url)
    platform = InstagramPlatform(env)
    draft = PostDraft(text="hi", media_type=media_type, media=[file.info],
                      platform_config={})
    errors = [i for i in platform.validate(draft, ACCOUNT) if i.severity == "error"]
    assert (not errors) is valid, errors

    ctx = publish_context(platform, settings=env, media=[file], media_type=media_type)
    if valid:
        assert platform.publish(ctx).first.external_url
    else:
        with pytest.raises(PermanentError):
            platform.publish(ctx)


def test_graph_host_follows_the_kind_of_login():
    platform = InstagramPlatform(Settings.from_env({}))
    assert platform.graph_base(Credentials(access_token="t")) == INSTAGRAM_GRAPH
    fb = Credentials(access_token="t", extra={"login": "facebook"})
    assert platform.graph_base(fb) == FACEBOOK_GRAPH
    overridden = InstagramPlatform(Settings.from_env({
        "CHAT33_INSTAGRAM_API_BASE": "http://127.0.0.1:5"}))
    assert overridden.graph_base(fb) == "http://127.0.0.1:5"


def test_graph_version_is_configurable(media, sandbox, control):
    _, url = sandbox
    platform = InstagramPlatform(Settings.from_env({
        "CHAT33_INSTAGRAM_API_BASE": url, "CHAT33_INSTAGRAM_GRAPH_VERSION": "v26.0",
        "CHAT33_POLL_INTERVAL_S": "0"}))
    platform.publish(publish_context(platform, settings=platform.settings,
                                     media=[media("square.jpg")]))
    assert all(r.split()[1].startswith("/v26.0/")
               for r in control("GET", "/_sandbox/state")["requests"])


def test_token_travels_in_the_header_not_the_url(media, sandbox):
    _, url = sandbox
    platform = InstagramPlatform(Settings.from_env({"CHAT33_INSTAGRAM_API_BASE": url,
                                                    "CHAT33_POLL_INTERVAL_S": "0"}))
    seen: list[str] = []
    client = httpx.Client(timeout=10, event_hooks={"request": [
        lambda request: seen.append(str(request.url))]})
    platform.publish(publish_context(platform, settings=platform.settings, http=client,
                                     media=[media("square.jpg")],
                                     credentials=Credentials(access_token="secret-tok")))
    assert seen and not any("secret-tok" in u for u in seen)
