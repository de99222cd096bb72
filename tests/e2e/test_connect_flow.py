"""The whole OAuth flow over real HTTP, as a browser and a client drive it, for every
installed platform whose plugin connects by OAuth: connect, follow the redirects, select
where asked, publish a post with the new account, refresh its token, reconnect,
disconnect. The API and each platform's sandbox listen on loopback."""

from __future__ import annotations

import io
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import attrs
import httpx
import pytest
from chat33_flask import create_app

from chat33_core.config import Settings
from chat33_core.models import ALL_SCOPES, PostStatus, utcnow
from chat33_core.plugins import PluginHost
from chat33_core.sandbox import serve
from chat33_core.sandbox_oauth import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET
from chat33_core.scheduling import Worker
from chat33_core.service import Chat33
from chat33_core.testing import make_image, make_video


def _connectable() -> list[str]:
    host = PluginHost(Settings())
    host.load_entry_points()
    return sorted(n for n, p in host.platforms.items() if p.supports_connect
                  and p.sandbox() is not None)


#: a post each platform takes: (media kind or None, body fields)
POSTS: dict[str, tuple[str | None, dict[str, Any]]] = {
    "x": (None, {}),
    "facebook": (None, {}),
    "tiktok": ("video", {"platformConfig": {"tiktok": {"privacyLevel": "SELF_ONLY"}}}),
    "youtube": ("video", {"platformConfig": {"youtube": {
        "title": "chat33 connect test", "privacyStatus": "unlisted",
        "selfDeclaredMadeForKids": False}}}),
    "instagram": ("image", {}),
}


def follow(browser: httpx.Client, url: str, stop_at: str,
           codes: list[str] | None = None) -> httpx.Response:
    """Open ``url`` and follow redirects as a browser would, until one leads to
    ``stop_at`` (the returnUrl, not served) or a page answers; the authorization codes
    the redirects carry are added to ``codes``."""
    response = browser.get(url)
    for _ in range(10):
        location = response.headers.get("location")
        if response.status_code not in (301, 302, 303, 307) or not location:
            return response
        if codes is not None:
            codes += parse_qs(urlsplit(location).query).get("code", [])
        if location.startswith(stop_at):
            return response
        response = browser.get(location)
    raise AssertionError("too many redirects")


@attrs.define
class Site:
    core: Chat33
    base: str
    client: httpx.Client
    browser: httpx.Client
    sandbox: str
    #: every authorization code the platform sent back
    codes: list[str] = attrs.Factory(list)

    def connect(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """Start a connection, let the browser consent, finish it; the connection."""
        return_url = f"{self.base}/connected"
        r = self.client.post(path, json={**body, "returnUrl": return_url})
        assert r.status_code == 201, r.text
        started = r.json()
        assert started["status"] == "pending"
        back = follow(self.browser, started["authorizationUrl"], return_url, self.codes)
        assert back.status_code == 303, back.text
        query = parse_qs(urlsplit(back.headers["location"]).query)
        assert query["connectionId"] == [started["connectionId"]]
        status = query["status"][0]
        assert status in ("connected", "select"), status
        cid = started["connectionId"]
        connection = self.client.get(f"/api/v1/accounts/connect/{cid}").json()
        assert connection["status"] == status
        if status == "select":
            ids = [connection["targets"][0]["externalId"]]
            r = self.client.post(f"/api/v1/accounts/connect/{cid}/select",
                                 json={"externalIds": ids})
            assert r.status_code == 200, r.text
            connection = r.json()
        assert connection["status"] == "connected", connection
        assert connection["error"] is None
        return connection

    def publish(self, account_id: str, platform: str, media: dict[str, str],
                text: str) -> None:
        kind, fields = POSTS.get(platform, (None, {}))
        body: dict[str, Any] = {"accountIds": [account_id], "text": text, **fields}
        if kind:
            body.update(mediaUrls=[media[kind]], mediaType=kind)
        r = self.client.post("/api/v1/posts", json=body)
        assert r.status_code == 201, r.text
        post_id = r.json()["posts"][0]["id"] if "posts" in r.json() else r.json()["id"]
        Worker(self.core, once=True, concurrency=1, grace_s=5.0).run()
        post = self.core.store.get_post(post_id)
        assert post.status is PostStatus.PUBLISHED, (post.status, post.error_message)


@pytest.mark.parametrize("platform", _connectable())
def test_connect_publish_refresh_reconnect_disconnect(
        platform: str, db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture,
        debug_logs: io.StringIO) -> None:
    """At ``CHAT33_LOG_LEVEL=DEBUG`` (httpx and httpcore log every request): no log
    record, nor a line chat33 writes, holds a token, a code or the app's secret."""
    caplog.set_level(logging.DEBUG)
    holder: dict[str, Any] = {}

    def api(environ: dict[str, Any], start_response: Any) -> Any:
        return holder["app"](environ, start_response)

    host = PluginHost(Settings())
    host.load_entry_points()
    sandbox = host.platform(platform).sandbox()
    with serve(sandbox) as sandbox_url, serve(api) as base:
        env = {"CHAT33_DATABASE_URL": db_url, "CHAT33_SECRET_KEY": "k" * 44,
               "CHAT33_PUBLIC_BASE_URL": base, "CHAT33_MEDIA_DIR": str(tmp_path / "media"),
               "CHAT33_ALLOW_PRIVATE_URLS": "1",
               f"CHAT33_{platform.upper()}_API_BASE": sandbox_url,
               f"CHAT33_{platform.upper()}_CLIENT_ID": SANDBOX_CLIENT_ID,
               f"CHAT33_{platform.upper()}_CLIENT_SECRET": SANDBOX_CLIENT_SECRET}
        core = Chat33(Settings.from_env(env))
        core.store.migrate()
        holder["app"] = create_app({"CHAT33_CORE": core})
        user = core.create_user("owner@example.com", "correct horse battery", "Acme")
        _, key = core.create_api_key(user.org_id, user.id, "tests", sorted(ALL_SCOPES))
        with httpx.Client(base_url=base, headers={"x-api-key": key}, timeout=60) as client, \
                httpx.Client(timeout=60) as browser:
            site = Site(core=core, base=base, client=client, browser=browser,
                        sandbox=sandbox_url)
            media = {}
            for kind, path in (("image", make_image(tmp_path / "pic.jpg")),
                               ("video", make_video(tmp_path / "clip.mp4", 540, 960))):
                with path.open("rb") as fh:
                    mime = "image/jpeg" if kind == "image" else "video/mp4"
                    r = client.post("/api/v1/media/upload",
                                    files={"file": (path.name, fh, mime)})
                assert r.status_code == 201, r.text
                media[kind] = r.json()["url"]

            # connect, then publish with the new account
            connection = site.connect("/api/v1/accounts/connect", {"platform": platform})
            [account] = connection["accounts"]
            assert account["platform"] == platform and account["externalId"]
            assert not account["needsReconnect"]
            site.publish(account["id"], platform, media, "connected by OAuth")

            # its token expires: the worker refreshes it before the next post
            before = core.account_credentials(account["id"])
            assert before is not None
            after = None
            if before.refresh_token:
                core.save_account_credentials(account["id"], attrs.evolve(
                    before, expires_at=utcnow() - timedelta(minutes=1)))
                site.publish(account["id"], platform, media, "after a token refresh")
                after = core.account_credentials(account["id"])
                assert after is not None and after.access_token != before.access_token
                assert after.refresh_token  # rotated, or kept when the answer had none

            # connecting it again updates the account, never a duplicate; a grant that
            # comes without a refresh token (Google's without prompt=consent) keeps the
            # stored one, and so does the reconnect below
            r = browser.post(f"{sandbox_url}/_sandbox/oauth", json={"refresh_tokens": False})
            assert r.status_code == 200, r.text
            kept = core.account_credentials(account["id"])
            assert kept is not None
            again = site.connect("/api/v1/accounts/connect", {"platform": platform})
            assert [a["id"] for a in again["accounts"]] == [account["id"]]
            now = core.account_credentials(account["id"])
            assert now is not None and now.access_token != kept.access_token
            assert now.refresh_token == kept.refresh_token

            # reconnect: the same identity, needsReconnect cleared
            with core.store.begin() as c:
                from chat33_core.store import tables as t

                c.execute(t.accounts.update().where(t.accounts.c.id == account["id"])
                          .values(needs_reconnect=True))
            reconnected = site.connect(f"/api/v1/accounts/{account['id']}/reconnect", {})
            [same] = reconnected["accounts"]
            assert same["id"] == account["id"] and not same["needsReconnect"]
            now = core.account_credentials(account["id"])
            assert now is not None and now.refresh_token == kept.refresh_token
            if now.refresh_token:  # the kept refresh token still refreshes
                core.save_account_credentials(account["id"], attrs.evolve(
                    now, expires_at=utcnow() - timedelta(minutes=1)))
                site.publish(account["id"], platform, media, "after a reconnect")
                renewed = core.account_credentials(account["id"])
                assert renewed is not None and renewed.access_token != now.access_token
            listed = client.get("/api/v1/accounts", params={"platform": platform}).json()
            assert [a["id"] for a in listed["items"]] == [account["id"]]

            # disconnect: revoked where it can be, tokens forgotten
            last = core.account_credentials(account["id"])
            r = client.delete(f"/api/v1/accounts/{account['id']}")
            assert r.status_code == 200 and r.json()["success"] is True, r.text
            assert core.account_credentials(account["id"]) is None
            assert client.get("/api/v1/accounts").json()["items"] == []
            held = [c for c in (before, after, kept, now, last) if c]
            secrets = [SANDBOX_CLIENT_SECRET, *site.codes, *(c.access_token for c in held),
                       *(c.refresh_token for c in held if c.refresh_token)]
        core.store.dispose()
    # every record (chat33's, httpx's, httpcore's, the sandbox's) and chat33's lines
    records = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    lines = debug_logs.getvalue()
    assert "connected" in records and "HTTP Request: POST" in lines  # DEBUG did log them
    assert site.codes
    for secret in secrets:
        assert secret not in records, secret
        assert secret not in lines, secret
