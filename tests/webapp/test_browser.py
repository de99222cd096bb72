"""The web app in a real browser (Chromium), against the real server, sandboxes and
worker: the job of someone who runs a social account, step by step, finding every
control by its role and accessible name (the names the web app issue makes binding)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Page, expect

from chat33_core.errors import RateLimited
from chat33_core.models import PostRequest
from chat33_core.serialization import structure
from chat33_core.testing import make_image

from .stack import EMAIL, PASSWORD, Stack

ZONE = "Europe/Paris"
RED = "rgb(198, 40, 40)"  # --error
QUEUED_BLUE = "rgb(47, 91, 211)"  # --queued
#: the post's text: escaped everywhere it shows (a script would open a dialog)
TEXT = "<script>alert(1)</script> launch day https://example.com/launch"


def _watch(page: Page) -> dict[str, list[str]]:
    """Dialogs (an unescaped script would open one) and CSP violations, collected."""
    seen: dict[str, list[str]] = {"dialogs": [], "csp": []}

    def on_dialog(dialog: Any) -> None:
        seen["dialogs"].append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("console", lambda m: seen["csp"].append(m.text)
            if "Content Security Policy" in m.text else None)
    return seen


def sign_in(page: Page, stack: Stack) -> None:
    page.goto(stack.url + "/")
    expect(page).to_have_url(re.compile(r"/app/signin"))
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    for name in ("Calendar", "Posts", "Compose", "Accounts", "Media", "Settings"):
        expect(page.get_by_role("link", name=name, exact=True)).to_be_visible()


def _in_view(page: Page, when: datetime) -> None:
    """Move the calendar forward until it shows ``when``'s day (at most once)."""
    shown = page.locator(".day:not(.outside)").first.get_attribute("aria-label") or ""
    if f"{when:%d %B}" not in page.locator(".calendar").inner_html() and shown:
        page.get_by_role("button", name="Next").click()


def test_the_whole_job_in_a_browser(browser: Any, stack: Stack, tmp_path: Path) -> None:
    context = browser.new_context(timezone_id=ZONE, viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=stack.url)
    page = context.new_page()
    seen = _watch(page)
    zone = ZoneInfo(ZONE)

    # 1. sign in
    sign_in(page, stack)

    # 2. connect an account: off to the platform's sign-in (the TikTok sandbox, which
    #    consents at once) and back to the Accounts page
    page.get_by_role("link", name="Accounts", exact=True).click()
    page.get_by_role("listitem").filter(has_text="TikTok").get_by_role(
        "button", name="Connect", exact=True).click()
    expect(page.get_by_role("heading", name="Connected")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/app/accounts\?connectionId=conn_"))
    assert any(a.platform == "tiktok" for a in stack.core.list_accounts(stack.user.org_id))

    # 3. upload an image (from the compose page: attached at once, with a thumbnail)
    page.get_by_role("link", name="Compose", exact=True).click()
    image = make_image(tmp_path / "photo.jpg", 800, 600)
    page.get_by_label("Add media").set_input_files(str(image))
    expect(page.locator("#upload-status")).to_have_text("Uploaded photo.jpg")
    expect(page.locator("#attached img")).to_have_count(1)

    # 4. compose with an error, see it (red, with X's count), be refused, fix it
    page.get_by_label("Acme on X").check()
    expect(page.get_by_role("heading", name="X options")).to_be_visible()
    page.get_by_label("Text").fill("x" * 300)
    report = page.locator("#report")
    error = report.locator(".issue.error").first
    expect(error).to_contain_text("the limit is 280")
    expect(report.locator(".count")).to_have_text("300 / 280")
    assert error.evaluate("e => getComputedStyle(e).color") == RED
    when = (datetime.now(zone) + timedelta(minutes=1)).replace(microsecond=0)
    page.get_by_label("Schedule for").fill(when.strftime("%Y-%m-%dT%H:%M:%S"))
    expect(page.get_by_label("Time zone")).to_have_value(ZONE)
    page.get_by_role("button", name="Schedule", exact=True).click()
    expect(page).to_have_url(re.compile(r"/app/compose$"))  # refused, with the report
    expect(report.locator(".issue.error").first).to_contain_text("the limit is 280")
    page.get_by_label("Text").fill(TEXT)
    weighted = len(TEXT) - len("https://example.com/launch") + 23  # X counts a URL as 23
    expect(report.locator(".count")).to_have_text(f"{weighted} / 280")
    expect(report.locator(".ok")).to_have_text("Ready")

    # 5. schedule it a minute ahead
    page.get_by_role("button", name="Schedule", exact=True).click()
    expect(page).to_have_url(re.compile(r"/app/posts/post_"))
    post_url = page.url
    expect(page.locator("#post-status")).to_have_text("QUEUED")
    expect(page.locator(".text")).to_have_text(TEXT)
    expect(page.get_by_role("button", name="Cancel")).to_be_visible()

    # the media library: the photo, with its thumbnail, kept while a queued post uses it
    page.get_by_role("link", name="Media", exact=True).click()
    thumb = page.get_by_role("img", name=re.compile(r"\.jpg$"))
    expect(thumb).to_be_visible()
    assert thumb.evaluate("img => img.complete && img.naturalWidth") > 0
    expect(page.get_by_text("Used by a queued post")).to_be_visible()

    # 6. see it on the calendar, in the browser's time zone, as a blue QUEUED chip
    page.get_by_role("link", name="Calendar", exact=True).click()
    _in_view(page, when)
    chip = page.locator("a.chip.status-queued", has_text="Acme on X")
    expect(chip).to_contain_text(f"{when:%H:%M}")
    assert chip.evaluate("e => getComputedStyle(e).backgroundColor") == QUEUED_BLUE
    page.get_by_role("link", name="Month").click()
    _in_view(page, when)
    expect(page.locator("a.chip.status-queued", has_text="Acme on X")).to_be_visible()
    page.locator("a.chip.status-queued", has_text="Acme on X").click()
    expect(page).to_have_url(post_url)

    # 7. bring it to now with "Reschedule", and watch it become Published after a worker
    now = datetime.now(zone).replace(microsecond=0)
    page.get_by_label("Reschedule").fill(now.strftime("%Y-%m-%dT%H:%M:%S"))
    page.get_by_role("button", name="Reschedule").click()
    expect(page.get_by_role("status")).to_have_text("rescheduled")
    stack.worker_pass()
    page.reload()
    expect(page.locator("#post-status")).to_have_text("PUBLISHED")
    expect(page.get_by_role("link", name="https://x.com/acme/status/")).to_be_visible()

    # 8. its log
    log = page.get_by_role("table", name="Log")
    expect(log.get_by_role("cell", name="created", exact=True)).to_be_visible()
    expect(log.get_by_role("cell", name="published", exact=True)).to_be_visible()

    # the posts list shows it, escaped, with the documented columns and filters
    page.get_by_role("link", name="Posts", exact=True).click()
    for header in ("Status", "Account", "Text", "Scheduled", "Published"):
        expect(page.get_by_role("columnheader", name=header)).to_be_visible()
    page.get_by_label("Status").select_option("PUBLISHED")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("link", name=TEXT)).to_be_visible()

    # nothing queued uses the photo any more: it can be deleted
    page.get_by_role("link", name="Media", exact=True).click()
    page.get_by_role("button", name="Delete").first.click()
    expect(page.get_by_role("status")).to_contain_text("deleted")
    expect(page.get_by_role("img", name=re.compile(r"\.jpg$"))).to_have_count(0)

    # 9. create an API key (shown once, copied), use it, revoke it
    page.get_by_role("link", name="Settings", exact=True).click()
    expect(page.get_by_role("heading", name="API keys")).to_be_visible()
    expect(page.get_by_role("heading", name="Webhooks")).to_be_visible()
    page.get_by_label("Key name").fill("from the browser")
    page.get_by_role("button", name="Create key").click()
    raw = page.get_by_label("New API key").input_value()
    page.get_by_role("button", name="Copy").click()
    expect(page.locator("#copied")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == raw
    accounts = httpx.get(stack.url + "/api/v1/accounts", headers={"x-api-key": raw})
    assert accounts.status_code == 200, accounts.text
    row = page.get_by_role("row").filter(has_text="from the browser")
    row.get_by_role("button", name="Revoke").click()
    expect(page.get_by_role("status")).to_have_text("revoked from the browser")
    expect(page.get_by_role("row").filter(has_text="from the browser")).to_contain_text("Revoked")
    expect(page.get_by_label("New API key")).to_have_count(0)  # shown once only
    refused = httpx.get(stack.url + "/api/v1/accounts", headers={"x-api-key": raw})
    assert refused.status_code == 401

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    assert seen == {"dialogs": [], "csp": []}
    context.close()


PAGES = ("calendar", "calendar?view=month", "posts", "compose", "media", "settings",
         "accounts")


def _long_post(stack: Stack) -> str:
    """A post with long unbroken words and a long media URL; its id."""
    core = stack.core
    principal = core.authenticate_session(core.login(EMAIL, PASSWORD)[1])
    image = make_image(Path(stack.env["CHAT33_MEDIA_DIR"]).parent / "wide.jpg", 64, 64)
    with image.open("rb") as fh:
        asset = core.upload_media(stack.user.org_id, fh, "wide.jpg")
    request = structure({"accountIds": [stack.accounts["mastodon"].id],
                         "text": "https://example.com/" + "a" * 120, "mediaUrls": [asset.url]},
                        PostRequest)
    return str(core.create_posts(principal, request).posts[0].id)


def test_every_page_holds_at_390_px(browser: Any, stack: Stack) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                  has_touch=True, device_scale_factor=2)
    page = context.new_page()
    seen = _watch(page)
    sign_in(page, stack)
    for name in [*PAGES, f"posts/{_long_post(stack)}"]:
        page.goto(f"{stack.app}/{name}")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"/app/{name} is {width} px wide at 390 px"
        expect(page.get_by_role("button", name="Sign out")).to_be_in_viewport()
    assert seen == {"dialogs": [], "csp": []}
    context.close()


def test_labels_error_pages_and_the_checks_limit_in_a_browser(browser: Any,
                                                                stack: Stack) -> None:
    """A page that does not exist is the web app's 404 page; the platform options are
    found by their names, and leave the compose page's labels unique; live checks past
    the ``posts.validate`` limit (shared with ``POST /posts/validate``) say so in the
    report."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    seen = _watch(page)
    sign_in(page, stack)

    missing = page.goto(stack.app + "/no-such-page")
    assert missing is not None and missing.status == 404
    assert missing.headers["content-type"].startswith("text/html")
    expect(page.get_by_role("heading", name="404 · Not found")).to_be_visible()
    expect(page.get_by_role("alert")).to_have_text("There is no page at /app/no-such-page.")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()

    page.get_by_role("link", name="Compose", exact=True).click()
    page.get_by_label("Acme on Mastodon").check()
    expect(page.get_by_role("heading", name="Mastodon options")).to_be_visible()
    spoiler = page.get_by_role("textbox", name="Mastodon spoilerText", exact=True)
    expect(spoiler).to_be_visible()
    expect(spoiler).to_have_attribute("name", "opt.mastodon.spoilerText")
    page.get_by_role("checkbox", name="Mastodon sensitive", exact=True).check()
    expect(page.get_by_role("checkbox", name="Mastodon sensitive")).to_be_checked()
    page.get_by_role("combobox", name="Mastodon visibility", exact=True).select_option(
        "unlisted")
    # the options (spoilerText among them) leave the binding labels unique, however a
    # test looks them up
    expect(page.get_by_label("Text")).to_have_count(1)
    expect(page.get_by_label("Schedule for")).to_have_count(1)

    # the organization's checks used up (as POST /posts/validate would use them)
    core, org = stack.core, stack.user.org_id
    limit, period = core.rate_limits["posts.validate"]
    key = f"posts.validate:{org}"
    used = 0
    try:
        with pytest.raises(RateLimited):
            while used <= limit:
                core.hit_rate_limit("posts.validate", org)
                used += 1
        report = page.locator("#report")
        page.get_by_label("Text", exact=True).fill("over the limit")
        expect(report.get_by_role("alert")).to_contain_text("Too many checks")
        expect(report).to_contain_text("publishing and scheduling still work")
        page.get_by_role("button", name="Check", exact=True).click()
        expect(page.get_by_role("alert").first).to_contain_text("Too many checks")
        expect(page.get_by_label("Text", exact=True)).to_have_value("over the limit")
    finally:
        for _ in range(used + 1):
            core.store.give_back_rate_limit(key, limit, period)
    assert seen == {"dialogs": [], "csp": []}
    context.close()
