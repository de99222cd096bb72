"""The web app's pages through the Flask test client, on SQLite and PostgreSQL: sign-in,
CSRF on every change, security headers, escaping, each page's actions and their unhappy
paths. (The browser walk is in test_browser.py.)"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import attrs
import pytest
from attrs import define
from chat33_flask import create_app
from flask.testing import FlaskClient

from chat33_core.models import Account, Credentials, PostStatus, User, utcnow
from chat33_core.service import Chat33
from chat33_core.testing import make_image, make_video

PASSWORD = "correct horse battery"
XSS = "<script>alert(1)</script>"


@define
class Web:
    core: Chat33
    client: FlaskClient
    user: User
    accounts: dict[str, Account]

    @property
    def csrf(self) -> str:
        cookie = self.client.get_cookie("chat33_csrf", path="/app")
        assert cookie is not None, "not signed in"
        return cookie.value

    def sign_in(self) -> None:
        r = self.client.post("/app/signin", data={"email": self.user.email,
                                                  "password": PASSWORD})
        assert r.status_code == 302, r.data

    def post(self, path: str, data: dict[str, Any] | None = None, **kw: Any) -> Any:
        return self.client.post(path, data={"csrf_token": self.csrf, **(data or {})}, **kw)

    def back(self, url: str) -> Any:
        """Open ``url`` (an absolute URL of this server, as a platform redirects to it)."""
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        return self.client.get(f"{parts.path}?{parts.query}")

    def html(self, path: str) -> str:
        r = self.client.get(path)
        assert r.status_code == 200, (path, r.status_code, r.data[:500])
        return r.get_data(as_text=True)

    def publish(self, text: str = "hello", platform: str = "x", **data: Any) -> str:
        """A post made from the compose page; its id."""
        r = self.post("/app/compose", {"account": self.accounts[platform].id, "text": text,
                                       "action": "publish", **data})
        assert r.status_code == 302, r.get_data(as_text=True)[:3000]
        return str(r.location.rsplit("/", 1)[1])


def make_web(core: Chat33, email: str = "ada@example.com", org: str = "Acme") -> Web:
    user = core.create_user(email, PASSWORD, org)
    accounts = {p: core.add_account(user.org_id, p, f"{org} on {p}", username=f"{org}_{p}",
                                    external_id=f"ext-{p}",
                                    credentials=Credentials(access_token="t-" + p))
                for p in ("x", "instagram")}
    app = create_app({"CHAT33_CORE": core, "TESTING": True})
    return Web(core=core, client=app.test_client(), user=user, accounts=accounts)


@pytest.fixture
def web(db_url: str, settings_for: Any) -> Iterator[Web]:
    core = Chat33(settings_for(db_url))
    core.store.migrate()
    signed = make_web(core)
    signed.sign_in()
    yield signed
    core.store.dispose()


# --- sign-in, redirects, headers -------------------------------------------------------------


def test_root_and_pages_send_strangers_to_sign_in(db_url: str, settings_for: Any) -> None:
    core = Chat33(settings_for(db_url))
    core.store.migrate()
    web = make_web(core)
    assert web.client.get("/").location == "/app/"
    assert web.client.get("/app/").location == "/app/calendar"
    assert web.client.get("/app/posts?status=FAILED").location == \
        "/app/signin?next=/app/posts?status%3DFAILED"
    # a change without a session is refused, not redirected
    r = web.client.post("/app/settings/keys", data={"name": "k"})
    assert r.status_code == 401
    assert "Sign in" in web.html("/app/signin")
    core.store.dispose()


def test_sign_in_sets_lax_http_only_cookies_and_goes_where_asked(web: Web) -> None:
    web.client.post("/app/signout", data={"csrf_token": web.csrf})
    r = web.client.post("/app/signin", data={"email": "ADA@example.com", "password": PASSWORD,
                                             "next": "/app/posts?status=QUEUED"})
    assert r.location == "/app/posts?status=QUEUED"
    cookies = r.headers.getlist("Set-Cookie")
    assert len(cookies) == 2
    for cookie in cookies:
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


@pytest.mark.parametrize("target", ["//evil.example/app", "https://evil.example/app",
                                    "/api/v1/posts", "/app\\@evil.example"])
def test_sign_in_never_sends_elsewhere(sqlite_web: Web, target: str) -> None:
    web = sqlite_web
    web.client.post("/app/signout", data={"csrf_token": web.csrf})
    r = web.client.post("/app/signin", data={"email": web.user.email, "password": PASSWORD,
                                             "next": target})
    assert r.location == "/app/calendar"


def test_wrong_password_is_a_401_page_with_the_reason(web: Web) -> None:
    web.client.post("/app/signout", data={"csrf_token": web.csrf})
    r = web.client.post("/app/signin", data={"email": web.user.email, "password": "nope"})
    assert r.status_code == 401
    assert "wrong email or password" in r.get_data(as_text=True)
    assert web.client.get_cookie("chat33_session") is None


def test_sign_out_ends_the_session(web: Web) -> None:
    session = web.client.get_cookie("chat33_session")
    assert session is not None
    assert web.post("/app/signout").location == "/app/signin"
    assert web.client.get("/app/posts").status_code == 302
    web.client.set_cookie("chat33_session", session.value)
    assert web.client.get("/app/posts").status_code == 302  # the old token is dead


PAGES = ["/app/calendar", "/app/calendar?view=month", "/app/posts", "/app/compose",
         "/app/media", "/app/settings", "/app/accounts", "/app/signin"]


@pytest.mark.parametrize("path", PAGES)
def test_pages_have_a_strict_csp_and_no_inline_script(sqlite_web: Web, path: str) -> None:
    r = sqlite_web.client.get(path, follow_redirects=True)
    assert r.status_code == 200
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["X-Frame-Options"] == "DENY"
    html = r.get_data(as_text=True)
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts and all(" src=" in s for s in scripts)
    assert not re.search(r"\son[a-z]+\s*=", html)  # no inline event handlers


@pytest.fixture
def sqlite_web(sqlite_store: Any, settings_for: Any) -> Iterator[Web]:
    core = Chat33(settings_for(str(sqlite_store.engine.url)), store=sqlite_store)
    signed = make_web(core)
    signed.sign_in()
    yield signed


def test_csrf_is_required_on_every_change(web: Web) -> None:
    post_id = web.publish()
    key, _ = web.core.create_api_key(web.user.org_id, web.user.id, "k")
    changes = ["/app/compose", "/app/compose/check", f"/app/posts/{post_id}/cancel",
               f"/app/posts/{post_id}/delete", f"/app/posts/{post_id}/reschedule",
               "/app/media", "/app/settings/keys", f"/app/settings/keys/{key.id}/revoke",
               "/app/settings/webhooks/rotate", f"/app/accounts/{web.accounts['x'].id}"
               "/disconnect", "/app/signout"]
    for path in changes:
        for token in (None, "wrong"):
            data = {"csrf_token": token} if token else {}
            r = web.client.post(path, data={"account": web.accounts["x"].id, **data})
            assert r.status_code == 403, path
    assert web.core.get_post(web.user.org_id, post_id).status is PostStatus.QUEUED
    assert web.core.list_api_keys(web.user.org_id)[0].is_active
    # the header works as well as the form field (the scripts use it)
    r = web.client.post("/app/compose/check", data={"account": web.accounts["x"].id},
                        headers={"x-csrf-token": web.csrf})
    assert r.status_code == 200


def test_static_assets_are_versioned_and_kept(web: Web) -> None:
    html = web.html("/app/compose")
    src = re.search(r'src="(/app/static/compose\.js\?v=[0-9a-f]{12})"', html)
    assert src is not None
    r = web.client.get(src.group(1))
    assert r.status_code == 200 and r.mimetype == "text/javascript"
    assert "immutable" in r.headers["Cache-Control"]
    assert "max-age=31536000" in r.headers["Cache-Control"]
    unversioned = web.client.get("/app/static/compose.js")
    assert "max-age=300" in unversioned.headers["Cache-Control"]
    assert web.client.get("/app/static/nothing.js").status_code == 404
    assert web.client.get("/app/static/../pages.py").status_code == 404


# --- escaping -------------------------------------------------------------------------------


def test_user_text_is_escaped_everywhere(web: Web) -> None:
    name = web.accounts["x"]
    web.core.rename_account(web.user.org_id, name.id, XSS)
    post_id = web.publish(XSS)
    web.core.create_api_key(web.user.org_id, web.user.id, XSS)
    pages = ["/app/posts", f"/app/posts/{post_id}", "/app/calendar", "/app/compose",
             "/app/accounts", "/app/settings"]
    for path in pages:
        html = web.html(path)
        assert XSS not in html, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, path
    fragment = web.post("/app/compose/check", {"account": name.id, "text": XSS})
    assert XSS not in fragment.get_data(as_text=True)


# --- compose --------------------------------------------------------------------------------


def test_check_reports_errors_warnings_and_x_weighted_count(web: Web) -> None:
    x, insta = web.accounts["x"], web.accounts["instagram"]
    r = web.post("/app/compose/check", {"account": [x.id, insta.id],
                                        "text": "see https://example.com/" + "a" * 200})
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    assert ">27 / 280<" in html  # "see " + a URL X counts as 23 characters
    # Instagram needs media: an error next to its account, X is ready
    blocks = dict(re.findall(r'data-account="([^"]+)">(.*?)</div>', html, re.S))
    assert 'class="issue error"' in blocks[insta.id]
    assert "Ready" in blocks[x.id] and "issue error" not in blocks[x.id]


def test_schedule_with_errors_is_refused_with_the_report(web: Web) -> None:
    when = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    r = web.post("/app/compose", {"account": web.accounts["x"].id, "text": "x" * 300,
                                  "scheduled_at": when, "timezone": "UTC",
                                  "action": "schedule"})
    assert r.status_code == 400
    html = r.get_data(as_text=True)
    assert "300 / 280" in html and "the limit is 280" in html
    assert 'value="' + when in html  # the form keeps what was typed
    assert web.core.list_posts(web.user.org_id).total == 0


def test_schedule_needs_a_time_and_a_real_zone(web: Web) -> None:
    x = web.accounts["x"].id
    r = web.post("/app/compose", {"account": x, "text": "hi", "action": "schedule"})
    assert r.status_code == 400 and "choose a time in Schedule for" in r.get_data(as_text=True)
    r = web.post("/app/compose", {"account": x, "text": "hi", "action": "schedule",
                                  "scheduled_at": "2099-01-01T10:00", "timezone": "Mars/Base"})
    assert r.status_code == 400 and "Mars/Base" in r.get_data(as_text=True)
    r = web.post("/app/compose", {"account": "chan_nope", "text": "hi", "action": "publish"})
    assert r.status_code == 400
    assert web.core.list_posts(web.user.org_id).total == 0


def test_schedule_reads_the_time_in_the_chosen_zone(web: Web) -> None:
    r = web.post("/app/compose", {"account": web.accounts["x"].id, "text": "hi",
                                  "scheduled_at": "2099-07-01T09:30", "timezone": "Europe/Paris",
                                  "action": "schedule"})
    assert r.status_code == 302
    post = web.core.list_posts(web.user.org_id).items[0]
    assert post.scheduled_at == datetime(2099, 7, 1, 7, 30, tzinfo=UTC)
    # shown in the browser's zone
    web.client.set_cookie("chat33_tz", "America/New_York", path="/app")
    assert "2099-07-01 03:30" in web.html(f"/app/posts/{post.id}")


def test_compose_uploads_the_file_it_is_given_and_uses_platform_options(
        web: Web, tmp_path: Path) -> None:
    image = make_image(tmp_path / "p.jpg", 640, 640)
    with image.open("rb") as fh:
        r = web.post("/app/compose", {"account": web.accounts["x"].id, "text": "pic",
                                      "action": "publish", "file": (fh, "p.jpg"),
                                      "opt.x.replySettings": "following",
                                      "opt.x.madeWithAi": "on"},
                     content_type="multipart/form-data")
    assert r.status_code == 302, r.get_data(as_text=True)[:2000]
    post = web.core.list_posts(web.user.org_id).items[0]
    assert len(post.media_ids) == 1
    assert post.platform_config == {"x": {"replySettings": "following", "madeWithAi": True}}
    html = web.html("/app/compose")
    assert "X options" in html  # offered (in a template until an X account is chosen)


# --- posts ----------------------------------------------------------------------------------


def test_posts_list_filters_by_status_and_account(web: Web) -> None:
    first = web.publish("first one")
    web.core.update_post(_principal(web), first, {"status": PostStatus.CANCELLED})
    web.publish("third one")
    html = web.html("/app/posts?status=CANCELLED")
    assert "first one" in html and "third one" not in html
    html = web.html(f"/app/posts?account={web.accounts['x'].id}")
    assert "first one" in html and "third one" in html
    for header in ("Status", "Account", "Text", "Scheduled", "Published"):
        assert f'<th scope="col">{header}</th>' in html
    assert "No posts match these filters" in web.html("/app/posts?status=FAILED")
    # nonsense filters are ignored, not a crash
    assert "third one" in web.html("/app/posts?status=BOGUS&page=x")


def _principal(web: Web) -> Any:
    cookie = web.client.get_cookie("chat33_session")
    assert cookie is not None
    return web.core.authenticate_session(cookie.value)


def test_post_page_actions_follow_the_status(web: Web) -> None:
    post_id = web.publish("to act on")
    html = web.html(f"/app/posts/{post_id}")
    assert ">Cancel</button>" in html and ">Retry</button>" not in html
    assert "Also delete on the platform" in html and 'for="reschedule">Reschedule' in html
    assert web.post(f"/app/posts/{post_id}/retry").status_code == 409  # QUEUED
    r = web.post(f"/app/posts/{post_id}/cancel")
    assert r.location == f"/app/posts/{post_id}"
    assert "cancelled" in web.html(r.location)
    post = web.core.store.get_post(post_id)
    web.core.store.save_post(attrs.evolve(post, status=PostStatus.FAILED,
                                          error_message="X answered 500"))
    html = web.html(f"/app/posts/{post_id}")
    assert ">Retry</button>" in html and "X answered 500" in html
    assert web.post(f"/app/posts/{post_id}/retry").status_code == 302
    assert web.core.get_post(web.user.org_id, post_id).status is PostStatus.QUEUED
    logs = web.html(f"/app/posts/{post_id}")
    assert "<td>created</td>" in logs


def test_reschedule_and_its_unhappy_paths(web: Web) -> None:
    post_id = web.publish("later")
    r = web.post(f"/app/posts/{post_id}/reschedule", {"scheduled_at": "2099-03-01T12:00",
                                                       "timezone": "Asia/Tokyo"})
    assert r.status_code == 302
    assert web.core.get_post(web.user.org_id, post_id).scheduled_at == \
        datetime(2099, 3, 1, 3, 0, tzinfo=UTC)
    assert web.post(f"/app/posts/{post_id}/reschedule", {}).status_code == 400
    r = web.post(f"/app/posts/{post_id}/reschedule", {"scheduled_at": "yesterday-ish"})
    assert r.status_code == 400 and "scheduledAt" in r.get_data(as_text=True)
    assert web.post("/app/posts/post_nope/reschedule",
                    {"scheduled_at": "2099-03-01T12:00"}).status_code == 404


def test_delete_cancels_and_the_platform_box_waits_for_publication(web: Web) -> None:
    post_id = web.publish("bye")
    html = web.html(f"/app/posts/{post_id}")
    assert re.search(r'id="from-platform" name="from_platform" disabled', html)
    r = web.post(f"/app/posts/{post_id}/delete")
    assert r.location == f"/app/posts/{post_id}"
    assert web.core.get_post(web.user.org_id, post_id).status is PostStatus.CANCELLED
    assert "cancelled" in web.html(r.location)
    post = web.core.store.get_post(post_id)
    web.core.store.save_post(attrs.evolve(post, status=PostStatus.PUBLISHING))
    assert ">Delete</button>" not in web.html(f"/app/posts/{post_id}")
    assert web.post(f"/app/posts/{post_id}/delete").status_code == 409


def test_another_organizations_post_is_not_found(web: Web) -> None:
    other = make_web(web.core, "eve@example.com", "Evil")
    other.sign_in()
    theirs = other.publish("theirs")
    assert web.client.get(f"/app/posts/{theirs}").status_code == 404
    assert web.post(f"/app/posts/{theirs}/cancel").status_code == 404
    assert other.core.get_post(other.user.org_id, theirs).status is PostStatus.QUEUED


# --- calendar -------------------------------------------------------------------------------


def test_calendar_week_and_month_in_the_users_zone(web: Web) -> None:
    r = web.post("/app/compose", {"account": web.accounts["x"].id, "text": "new year",
                                  "scheduled_at": "2099-01-01T00:30", "timezone": "UTC",
                                  "action": "schedule"})
    assert r.status_code == 302
    week = web.html("/app/calendar?date=2099-01-01")
    assert "status-queued" in week and "00:30" in week and "new year" in week
    # in New York it is still 31 December, 19:30
    web.client.set_cookie("chat33_tz", "America/New_York", path="/app")
    html = web.html("/app/calendar?view=month&date=2098-12-15")
    assert "December 2098" in html and "19:30" in html
    assert 'href="/app/calendar?view=month&amp;date=2098-11-01">Previous' in html
    assert 'href="/app/calendar?view=month&amp;date=2099-01-01">Next' in html
    assert "new year" not in web.html("/app/calendar?view=month&date=2099-02-01")
    # a bad date or zone falls back to today in UTC
    web.client.set_cookie("chat33_tz", "Not/AZone", path="/app")
    assert "Times in UTC" in web.html("/app/calendar?date=someday")


# --- media ----------------------------------------------------------------------------------


def test_media_library_thumbnails_and_delete(web: Web, tmp_path: Path) -> None:
    image = make_image(tmp_path / "big.png", 1200, 800, fmt="PNG")
    with image.open("rb") as fh:
        r = web.post("/app/media", {"file": (fh, "big.png")},
                     content_type="multipart/form-data", headers={"accept": "application/json"})
    assert r.status_code == 201
    media_id = r.get_json()["id"]
    html = web.html("/app/media")
    assert f"/app/media/{media_id}/thumb" in html and "image/png" in html
    thumb = web.client.get(f"/app/media/{media_id}/thumb")
    assert thumb.status_code == 200 and thumb.mimetype == "image/jpeg"
    assert "private" in thumb.headers["Cache-Control"]
    import io

    from PIL import Image
    with Image.open(io.BytesIO(thumb.data)) as small:
        assert small.size == (320, 213)
    cached = list((Path(web.core.media.files.root) / ".thumbs").iterdir())
    assert len(cached) == 1
    again = web.client.get(f"/app/media/{media_id}/thumb",
                           headers={"if-none-match": thumb.headers["ETag"]})
    assert again.status_code == 304
    # in use by a queued post: kept
    url = r.get_json()["url"]
    post_id = web.publish("with media", media_url=url)
    assert "Used by a queued post" in web.html("/app/media")
    assert web.post(f"/app/media/{media_id}/delete").status_code == 409
    web.post(f"/app/posts/{post_id}/cancel")
    assert web.post(f"/app/media/{media_id}/delete").status_code == 302
    assert media_id not in web.html("/app/media")
    assert web.client.get(f"/app/media/{media_id}/thumb").status_code == 404


def test_media_unhappy_paths(web: Web, tmp_path: Path) -> None:
    assert web.post("/app/media", {}).status_code == 400
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not an image at all")
    with junk.open("rb") as fh:
        r = web.post("/app/media", {"file": (fh, "junk.jpg")},
                     content_type="multipart/form-data")
    assert r.status_code == 400
    video = make_video(tmp_path / "v.mp4", 320, 240, seconds=1.0, fps=10)
    asset = web.core.upload_media(web.user.org_id, video.open("rb"), "v.mp4")
    assert web.client.get(f"/app/media/{asset.id}/thumb").status_code == 404  # no thumb
    assert "video" in web.html("/app/media")
    other = make_web(web.core, "eve@example.com", "Evil")
    theirs = other.core.upload_media(other.user.org_id,
                                     make_image(tmp_path / "e.jpg").open("rb"), "e.jpg")
    assert web.client.get(f"/app/media/{theirs.id}/thumb").status_code == 404
    assert web.post(f"/app/media/{theirs.id}/delete").status_code == 404
    assert web.core.media.library(other.user.org_id, limit=200, before=None)[0][0].id == theirs.id


# --- accounts and settings --------------------------------------------------------------------


def test_accounts_page_reconnect_state_and_disconnect(web: Web) -> None:
    x = web.accounts["x"]
    queued = web.publish("will be cancelled")
    web.core.store.write_results("w1", utcnow(), reconnect=[x.id])  # as the worker does
    html = web.html("/app/accounts")
    assert "Needs reconnecting" in html and ">Disconnect</button>" in html
    assert 'aria-describedby="platform-x">Connect</button>' in html
    unconfigured = web.post("/app/accounts/connect", {"platform": "x"})
    assert unconfigured.status_code == 422 and b"CHAT33_X_CLIENT_ID" in unconfigured.data
    r = web.post(f"/app/accounts/{x.id}/disconnect")
    assert r.status_code == 302
    assert web.core.get_post(web.user.org_id, queued).status is PostStatus.CANCELLED
    assert x.id not in {a.id for a in web.core.list_accounts(web.user.org_id)}
    assert web.post("/app/accounts/chan_nope/disconnect").status_code == 404


@pytest.fixture
def connecting(db_url: str, settings_for: Any) -> Iterator[Web]:
    """A signed-in web app whose X and Facebook sign-ins are their sandboxes."""
    from chat33_core.plugins import PluginHost
    from chat33_core.sandbox import serve
    from chat33_core.sandbox_oauth import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET

    host = PluginHost(settings_for(db_url))
    host.load_entry_points()
    with serve(host.platform("x").sandbox()) as x, \
            serve(host.platform("facebook").sandbox()) as fb:
        env = {"CHAT33_PUBLIC_BASE_URL": "http://127.0.0.1:9"}
        for name, base in (("X", x), ("FACEBOOK", fb)):
            env |= {f"CHAT33_{name}_API_BASE": base,
                    f"CHAT33_{name}_CLIENT_ID": SANDBOX_CLIENT_ID,
                    f"CHAT33_{name}_CLIENT_SECRET": SANDBOX_CLIENT_SECRET}
        core = Chat33(settings_for(db_url, **env))
        core.store.migrate()
        web = make_web(core)
        web.sign_in()
        yield web
        core.store.dispose()


def _sign_in_at_the_platform(web: Web, form: dict[str, str]) -> Any:
    """Press a Connect or Reconnect button and go through the platform's sign-in as a
    browser would; the Accounts page the browser lands on."""
    import httpx

    r = web.post("/app/accounts/connect", form)
    assert r.status_code == 302, r.get_data(as_text=True)[:500]
    consent = httpx.get(r.location, follow_redirects=False)
    assert consent.status_code == 302, consent.text[:300]
    callback = web.back(consent.headers["location"])
    assert callback.status_code == 303, callback.get_data(as_text=True)[:500]
    assert callback.location.startswith("http://127.0.0.1:9/app/accounts?connectionId=")
    return web.back(callback.location)


def test_connect_reconnect_and_choose_pages_from_the_accounts_page(
        connecting: Web) -> None:
    web = connecting
    html = web.html("/app/accounts")
    # one button named "Connect" per platform, described by the platform's name
    assert '<span id="platform-x">X</span>' in html
    assert 'aria-describedby="platform-facebook">Connect</button>' in html
    assert 'aria-describedby="platform-bluesky by-hand" disabled>Connect</button>' in html
    page = _sign_in_at_the_platform(web, {"platform": "x"}).get_data(as_text=True)
    assert "Connected" in page
    [x] = [a for a in web.core.list_accounts(web.user.org_id)
           if a.platform == "x" and a.external_id != "ext-x"]
    assert ">Reconnect</button>" in web.html("/app/accounts")
    again = _sign_in_at_the_platform(web, {"account": x.id}).get_data(as_text=True)
    assert "Connected" in again
    assert len([a for a in web.core.list_accounts(web.user.org_id)
                if a.platform == "x"]) == 2  # the reconnect updated, it did not add
    chooser = _sign_in_at_the_platform(web, {"platform": "facebook"}).get_data(as_text=True)
    assert "Choose the accounts to connect" in chooser
    action = re.search(r'action="(/app/accounts/connections/[^"]+/select)"', chooser)
    ids = re.findall(r'name="externalId" value="([^"]+)"', chooser)
    assert action and ids
    assert web.post(action.group(1), {"externalId": ids[0]}).status_code == 302
    assert any(a.platform == "facebook" and a.external_id == ids[0]
               for a in web.core.list_accounts(web.user.org_id))


def test_connect_unhappy_paths_answer_in_the_page(connecting: Web) -> None:
    web = connecting
    refused = web.post("/app/accounts/connect", {"platform": "bluesky"})
    assert refused.status_code in (400, 422) and b"chat33 accounts add" in refused.data
    assert web.post("/app/accounts/connect", {"platform": "nope"}).status_code in (400, 404)
    assert web.client.get("/app/accounts?connectionId=conn_nope").status_code == 404
    assert web.post("/app/accounts/connections/conn_nope/select",
                    {"externalId": "1"}).status_code == 404
    import httpx

    sandbox = web.core.settings.platform_value("x", "API_BASE")
    httpx.post(f"{sandbox}/_sandbox/oauth", json={"deny": True}).raise_for_status()
    denied = _sign_in_at_the_platform(web, {"platform": "x"}).get_data(as_text=True)
    assert "Connecting failed" in denied and "access_denied" in denied


def test_settings_api_keys_shown_once_and_revoked(web: Web) -> None:
    r = web.post("/app/settings/keys", {"name": "ci"})
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    raw = re.search(r'id="new-key" readonly value="([^"]+)"', r.get_data(as_text=True))
    assert raw is not None
    assert web.core.authenticate_key(raw.group(1)).org_id == web.user.org_id
    html = web.html("/app/settings")
    assert raw.group(1) not in html and ">Revoke</button>" in html
    key = web.core.list_api_keys(web.user.org_id)[0]
    assert web.post(f"/app/settings/keys/{key.id}/revoke").status_code == 302
    assert "Revoked" in web.html("/app/settings")
    assert web.post("/app/settings/keys/key_nope/revoke").status_code == 404


def test_settings_webhook_secret_rotates(web: Web) -> None:
    before = web.core.webhook_secret(web.user.org_id)
    assert before in web.html("/app/settings")
    assert web.post("/app/settings/webhooks/rotate").status_code == 302
    after = web.core.webhook_secret(web.user.org_id)
    assert after != before and after in web.html("/app/settings")
    assert "Older secrets still sign until" in web.html("/app/settings")


def test_key_creation_is_rate_limited_like_the_api(web: Web) -> None:
    for _ in range(10):
        assert web.post("/app/settings/keys", {"name": "k"}).status_code == 200
    r = web.post("/app/settings/keys", {"name": "one too many"})
    assert r.status_code == 429
    assert len(web.core.list_api_keys(web.user.org_id)) == 10


# --- errors, labels and the check's limit -----------------------------------------------------


def test_unknown_paths_under_app_get_the_web_apps_error_page(web: Web) -> None:
    for path in ("/app/nope", "/app/posts/x/y/z", "/app/static/nothing.js"):
        r = web.client.get(path)
        assert r.status_code == 404 and r.mimetype == "text/html", path
        html = r.get_data(as_text=True)
        assert "<h1>404 · Not found</h1>" in html, path
        assert ">Sign out</button>" in html  # the menu: signed in
        assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
        assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert "There is no page at /app/nope." in web.client.get("/app/nope").get_data(
        as_text=True)
    wrong = web.client.put("/app/calendar")  # a page, not a method it takes
    assert wrong.status_code == 405 and wrong.mimetype == "text/html"
    assert "405 · METHOD_NOT_ALLOWED" in wrong.get_data(as_text=True)
    # a client asking for JSON still gets it
    asked = web.client.get("/app/nope", headers={"Accept": "application/json"})
    assert asked.status_code == 404 and asked.get_json()["error"] == "Not found"
    # the API keeps its JSON
    api = web.client.get("/api/v1/nope")
    assert api.status_code == 404 and api.get_json()["error"] == "Not found"
    assert web.client.get("/media/nope.jpg").get_json()["error"] == "Not found"
    # signed out: the page without the menu
    web.client.post("/app/signout", data={"csrf_token": web.csrf})
    stranger = web.client.get("/app/nope")
    assert stranger.status_code == 404 and ">Sign out</button>" not in stranger.get_data(
        as_text=True)


class _Controls(HTMLParser):
    """The form controls of a page (not hidden ones) and the labels' targets and text."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: list[dict[str, str | None]] = []
        self.labels: dict[str, str] = {}
        self._label: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "label":
            # (the options are twice in the compose page: shown, and in a template)
            self._label = found.get("for") or ""
            self.labels[self._label] = ""
        elif tag in ("input", "select", "textarea") and found.get("type") != "hidden":
            found["wrapped"] = self._label
            self.controls.append(found)

    def handle_data(self, data: str) -> None:
        if self._label is not None:
            self.labels[self._label] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self._label = None


def test_every_form_control_has_a_label(web: Web) -> None:
    post_id = web.publish("labelled")
    created = web.post("/app/settings/keys", {"name": "k"}).get_data(as_text=True)
    # the compose page with an account of each platform chosen: their options shown
    compose = web.post("/app/compose", {"account": [a.id for a in web.accounts.values()],
                                        "text": "hi", "action": "check"})
    pages = {"compose": compose.get_data(as_text=True), "new key": created}
    for path in [*PAGES, f"/app/posts/{post_id}"]:
        pages[path] = web.client.get(path, follow_redirects=True).get_data(as_text=True)
    web.client.post("/app/signout", data={"csrf_token": web.csrf})
    pages["signin"] = web.html("/app/signin")
    for name, html in pages.items():
        parsed = _Controls()
        parsed.feed(html)
        for control in parsed.controls:
            labelled = (control["wrapped"] is not None
                        or control.get("id") in parsed.labels)
            if str(control.get("id")).startswith("opt-"):
                # a platform's option: named by its title, never by a <label> (below)
                assert not labelled and control.get("title"), (name, control)
            else:
                assert labelled and "title" not in control, (name, control)
    parsed = _Controls()
    parsed.feed(pages["compose"])
    assert len(parsed.controls) > 20  # the options of X and Instagram among them
    # the options' names: the platform's, then the option's
    titles = {c.get("id"): c.get("title") for c in parsed.controls}
    assert titles["opt-instagram-shareToFeed"] == "Instagram shareToFeed"
    assert titles["opt-x-replySettings"] == "X replySettings"
    # a lookup by label matches part of a label ("Text" finds "altText"): with every
    # platform's options shown, each binding label is still the only one holding its words
    texts = [" ".join(text.split()).lower() for text in parsed.labels.values()]
    for binding in ("Text", "Schedule for", "Time zone", "Media URL", "Add media"):
        assert sum(binding.lower() in text for text in texts) == 1, (binding, texts)
    assert any("alttext" in (title or "").lower() for title in titles.values())
    parsed = _Controls()
    parsed.feed(pages["new key"])
    assert parsed.labels["new-key"] == "New API key"


def test_checks_count_against_the_validate_limit_of_the_api(web: Web) -> None:
    web.core.rate_limits["posts.validate"] = (3, timedelta(hours=1))
    _, raw = web.core.create_api_key(web.user.org_id, web.user.id, "k")
    body = {"accountIds": [web.accounts["x"].id], "text": "hi"}
    api = web.client.post("/api/v1/posts/validate", json=body, headers={"x-api-key": raw})
    assert api.status_code == 200 and api.headers["RateLimit-Remaining"] == "2"
    form = {"account": web.accounts["x"].id, "text": "hi"}
    assert web.post("/app/compose/check", form).status_code == 200  # the live check
    assert web.post("/app/compose", {**form, "action": "check"}).status_code == 200
    over = web.post("/app/compose/check", form)
    assert over.status_code == 429
    html = over.get_data(as_text=True)
    assert 'role="alert">Too many checks: ' in html and "Checking again is possible in" in html
    page = web.post("/app/compose", {**form, "action": "check"})
    assert page.status_code == 429 and "Too many checks" in page.get_data(as_text=True)
    assert "hi</textarea>" in page.get_data(as_text=True)  # the form kept
    limited = web.client.post("/api/v1/posts/validate", json=body,
                              headers={"x-api-key": raw})
    assert limited.status_code == 429
    # publishing is not a check: it goes on
    assert web.publish("still goes out")
