"""Screenshots of the web app's main pages at desktop and phone widths, for the README.

    .venv/bin/python docs/screenshots/take.py      # writes docs/screenshots/*.png

Runs the whole stack on loopback (sandboxes, ``chat33 serve``, worker passes) with a
few posts in it, and drives the system's Chromium (``apt-get install chromium``).
"""

from __future__ import annotations

import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # the checkout: tests.webapp.stack

from playwright.sync_api import Page, sync_playwright  # noqa: E402

from chat33_core.testing import make_image  # noqa: E402
from tests.webapp.stack import EMAIL, PASSWORD, Stack, chromium, web_stack  # noqa: E402

ZONE = "Europe/Paris"
WIDTHS = {"desktop": {"width": 1280, "height": 860}, "phone": {"width": 390, "height": 844}}
PAGES = {"calendar": "calendar", "compose": "compose", "posts": "posts", "post": None,
         "media": "media", "settings": "settings", "accounts": "accounts"}


def fill(stack: Stack, folder: Path) -> str:
    """A few posts: published, queued for later, one failed; returns a post's id."""
    from chat33_core.models import PostRequest
    from chat33_core.serialization import structure

    core = stack.core
    _user, session, _csrf = core.login(EMAIL, PASSWORD)
    principal = core.authenticate_session(session)
    image = make_image(folder / "launch.jpg", 1200, 800, color=(40, 90, 200))
    with image.open("rb") as fh:
        asset = core.upload_media(principal.org_id, fh, "launch.jpg")
    x, mastodon = stack.accounts["x"].id, stack.accounts["mastodon"].id
    zone = ZoneInfo(ZONE)
    now = datetime.now(zone)

    def post(text: str, ids: list[str], when: datetime | None = None, **extra: object) -> str:
        req = structure({"accountIds": ids, "text": text, "timezone": ZONE,
                         "scheduledAt": when.isoformat() if when else None, **extra},
                        PostRequest)
        return str(core.create_posts(principal, req).posts[0].id)

    first = post("Launch day! Our new release is out https://example.com/launch",
                 [x, mastodon], mediaUrls=[asset.url],
                 platformConfig={"mastodon": {"altText": "the launch banner"}})
    stack.worker_pass()
    for days, hour, text in ((1, 9, "Behind the scenes of the launch"),
                             (2, 14, "Thank you for 1,000 stars ⭐"),
                             (4, 11, "Office hours this Friday")):
        when = (now + timedelta(days=days)).replace(hour=hour, minute=0, second=0)
        post(text, [x] if days % 2 else [x, mastodon], when)
    return first


def shoot(page: Page, stack: Stack, post_id: str, kind: str) -> None:
    page.goto(stack.app + "/signin")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/app/calendar")
    for name, path in PAGES.items():
        page.goto(f"{stack.app}/{path or 'posts/' + post_id}")
        if name == "compose":
            page.get_by_label("Acme on X").check()
            page.get_by_label("Acme on Mastodon").check()
            page.get_by_label("Text").fill("x" * 290 + " too long for X?")
            page.locator("#report .issue").first.wait_for()
        page.screenshot(path=str(HERE / f"{name}-{kind}.png"), full_page=kind == "desktop")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, web_stack(Path(tmp)) as stack, \
            sync_playwright() as p:
        post_id = fill(stack, Path(tmp))
        path = chromium()
        if path is None:
            sys.exit("no Chromium: apt-get install chromium")
        browser = p.chromium.launch(executable_path=path, args=["--no-sandbox"])
        for kind, viewport in WIDTHS.items():
            context = browser.new_context(viewport=viewport, timezone_id=ZONE,
                                          device_scale_factor=1,
                                          is_mobile=kind == "phone")
            shoot(context.new_page(), stack, post_id, kind)
            context.close()
        browser.close()
    print(f"screenshots written to {HERE}")


if __name__ == "__main__":
    main()
