"""The web app's pages: server-rendered, calling the core (``Chat33``) directly.

Every page is a GET; every change a POST form (with the session's CSRF token) that
redirects back, so the pages work without their scripts, which only add the live
compose check, uploads on selection, copying a key and the browser's time zone.
"""

from __future__ import annotations

import calendar as cal
import math
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from werkzeug.datastructures import FileStorage

from chat33_core.errors import (
    Chat33Error,
    Issue,
    RateLimited,
    Unauthorized,
    ValidationError,
)
from chat33_core.models import Account, Post, PostRequest, PostSort, PostStatus
from chat33_core.security import Principal
from chat33_core.serialization import error_json, structure
from chat33_core.service import SESSION_LIFETIME

from ..auth import SESSION_COOKIE
from ..routing import core
from . import thumbs
from .session import (
    TZ_COOKIE,
    clear_cookies,
    done,
    page,
    safe_next,
    set_cookies,
    signed_in,
)

bp = Blueprint("chat33_webapp", __name__, url_prefix="/app", template_folder="templates",
               static_folder=None)

#: where each post status shows in the calendar and the lists (CSS class suffix)
STATUSES = [s.value for s in PostStatus]
#: posts the calendar reads for one view, at most (pages of 100)
CALENDAR_MAX = 500


# --- helpers ------------------------------------------------------------------------------


def user_zone() -> ZoneInfo:
    name = request.cookies.get(TZ_COOKIE) or "UTC"
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def zone_names() -> list[str]:
    names: list[str] | None = current_app.extensions.get("chat33.webapp.zones")
    if names is None:
        names = current_app.extensions["chat33.webapp.zones"] = sorted(
            available_timezones() | {"UTC"})
    return names


def local(when: datetime | None) -> str:
    """An instant in the user's time zone, as the pages show it."""
    if when is None:
        return ""
    return when.astimezone(user_zone()).strftime("%Y-%m-%d %H:%M")


def _accounts(principal: Principal) -> list[Account]:
    return list(core().list_accounts(principal.org_id))


def _render(template: str, http_status: int = 200, /, **context: Any) -> Any:
    return render_template(f"webapp/{template}", **context), http_status


# --- sign in and out ----------------------------------------------------------------------


@bp.get("/")
def home() -> Any:
    return redirect(url_for(".calendar"))


@bp.route("/signin", methods=["GET", "POST"])
def signin() -> Any:
    target = request.values.get("next")
    if request.method == "GET":
        if signed_in() is not None:
            return redirect(safe_next(target))
        return _render("signin.html", next=target or "")
    email = request.form.get("email", "")
    try:
        _user, session, csrf = core().login(email, request.form.get("password", ""),
                                            client=request.remote_addr)
    except Chat33Error as exc:
        return _render("signin.html", exc.http_status, next=target or "", email=email,
                       error=exc.message)
    response = redirect(safe_next(target))
    set_cookies(response, session, csrf, int(SESSION_LIFETIME.total_seconds()))
    return response


@bp.post("/signout")
@page
def signout(principal: Principal) -> Any:
    core().logout(request.cookies.get(SESSION_COOKIE))
    response = redirect(url_for(".signin"))
    clear_cookies(response)
    return response


# --- compose ------------------------------------------------------------------------------


def _platform_options(accounts: Iterable[Account]) -> list[tuple[str, str, list[Any]]]:
    """(platform, display name, options) for each platform of ``accounts``."""
    host = core().host
    out = []
    for name in sorted({a.platform for a in accounts}):
        if host.has_platform(name):
            platform = host.platform(name)
            out.append((name, platform.display_name or name, list(platform.options)))
    return out


def _option_value(option: Any, raw: str) -> Any:
    types = option.type
    if "boolean" in types:
        return raw in ("on", "true", "1")
    if "integer" in types:
        try:
            return int(raw)
        except ValueError:
            return raw
    if "number" in types:
        try:
            return float(raw)
        except ValueError:
            return raw
    return raw


def _compose_request(form: Mapping[str, Any], platforms: list[tuple[str, str, list[Any]]],
                     ) -> PostRequest:
    """The form as a :class:`PostRequest` (as ``POST /posts`` would receive it)."""
    media = [u.strip() for u in form.getlist("media_url") if u.strip()]  # type: ignore[attr-defined]
    typed = (form.get("media_url_text") or "").strip()
    if typed:
        media.append(typed)
    config: dict[str, Any] = {}
    accounts = form.getlist("account")  # type: ignore[attr-defined]
    for name, _display, options in platforms:
        values = {}
        for option in options:
            raw = form.get(f"opt.{name}.{option.name}")
            if raw is None or raw == "":
                continue
            values[option.name] = _option_value(option, raw)
        if values:
            config[name] = values
    body: dict[str, Any] = {
        "accountIds": accounts, "text": form.get("text") or None, "mediaUrls": media,
        "platformConfig": config, "timezone": form.get("timezone") or "UTC",
        "scheduledAt": (form.get("scheduled_at") or "").strip() or None,
    }
    return structure(body, PostRequest)


def _counts(req: PostRequest, accounts: Mapping[str, Account]) -> dict[str, tuple[int, int]]:
    """Each chosen account's "N / limit" as its platform counts the text."""
    host = core().host
    counts = {}
    for account_id in req.account_ids:
        account = accounts.get(account_id)
        if account is not None and host.has_platform(account.platform):
            counts[account_id] = host.platform(account.platform).text_count(
                req.text or "", account)
    return counts


def _check(principal: Principal, form: Mapping[str, Any], *, count: bool = False
           ) -> dict[str, Any]:
    """The compose form checked: the request, the core's report, the counters. With
    ``count`` (a check asked for, not the one before publishing) it counts against the
    ``posts.validate`` limit, as ``POST /posts/validate`` does; over it, the report is
    the limit's message (``limited``)."""
    accounts = {a.id: a for a in _accounts(principal)}
    if count:
        try:
            core().hit_rate_limit("posts.validate", principal.org_id)
        except RateLimited as exc:
            wait = max(1, math.ceil(exc.retry_after))
            message = (f"Too many checks: {exc.message}. Checking again is possible in "
                       f"{wait} s; publishing and scheduling still work.")
            return {"req": None, "report": None, "problems": [
                Issue("check", message, code="rate_limited")], "counts": {},
                "by_id": accounts, "limited": exc}
    platforms = _platform_options(accounts.values())
    try:
        req = _compose_request(form, platforms)
    except ValidationError as exc:
        return {"req": None, "report": None, "problems": exc.details, "counts": {},
                "by_id": accounts}
    report = core().validate_post(principal, req)
    return {"req": req, "report": report, "problems": [], "counts": _counts(req, accounts),
            "by_id": accounts}


def _upload(principal: Principal, upload: FileStorage) -> Any:
    app = core()
    with app.counted("media.upload", principal.org_id):
        return app.upload_media(principal.org_id, upload.stream, upload.filename or None)


@bp.route("/compose", methods=["GET", "POST"])
@page
def compose(principal: Principal) -> Any:
    accounts = _accounts(principal)
    context: dict[str, Any] = {"accounts": accounts, "platforms": _platform_options(accounts),
                               "zones": zone_names(), "form": request.form,
                               "zone": request.form.get("timezone") or user_zone().key}
    if request.method == "GET":
        return _render("compose.html", **context)
    form = request.form.copy()
    upload = request.files.get("file")
    if upload is not None and upload.filename:
        asset = _upload(principal, upload)
        form.add("media_url", asset.url)
    context["form"] = form
    action = form.get("action", "check")
    checked = _check(principal, form, count=action == "check")
    if action == "schedule" and checked["req"] is not None \
            and not checked["req"].scheduled_at:
        checked["problems"] = [Issue("scheduledAt", "choose a time in Schedule for, or use "
                                     "Publish now", code="required")]
    context.update(checked)
    refused = checked["req"] is None or checked["problems"] or not checked["report"].valid
    if action == "check" or refused:
        status = 429 if "limited" in checked else 400 if refused and action != "check" \
            else 200
        return _render("compose.html", status, **context)
    req = checked["req"]
    if action == "publish":
        req = structure({"accountIds": req.account_ids, "text": req.text,
                         "mediaUrls": req.media_urls, "platformConfig": req.platform_config,
                         "timezone": req.timezone}, PostRequest)
    created = core().create_posts(principal, req)
    first = created.posts[0]
    return done(url_for(".post", post_id=first.id), f"{len(created.posts)} post(s) "
                + ("scheduled" if req.scheduled_at else "queued"))


@bp.post("/compose/check")
@page
def compose_check(principal: Principal) -> Any:
    """The live check: the report as an HTML fragment for the compose page's script
    (429 with the limit's message when checks are over the ``posts.validate`` limit)."""
    checked = _check(principal, request.form, count=True)
    return _render("_report.html", 429 if "limited" in checked else 200, **checked)


# --- posts --------------------------------------------------------------------------------


@bp.get("/posts")
@page
def posts(principal: Principal) -> Any:
    status = request.args.get("status") or None
    account = request.args.get("account") or None
    try:
        number = max(1, int(request.args.get("page", "1")))
    except ValueError:
        number = 1
    if status not in (None, *STATUSES):
        status = None
    found = core().list_posts(principal.org_id, status=status, channel_id=account,
                              page=min(number, 10**6), limit=50)
    return _render("posts.html", page=found, status=status, account=account,
                   accounts=_accounts(principal), statuses=STATUSES)


@bp.get("/posts/<post_id>")
@page
def post(principal: Principal, post_id: str) -> Any:
    found = core().get_post(principal.org_id, post_id)
    logs = core().post_logs(principal.org_id, post_id)
    return _render("post.html", post=found, logs=logs, zones=zone_names(),
                   zone=user_zone().key, schedule=_local_input(found.scheduled_at))


def _local_input(when: datetime | None) -> str:
    """A datetime-local field's value for ``when`` in the user's zone."""
    return when.astimezone(user_zone()).strftime("%Y-%m-%dT%H:%M") if when else ""


@bp.post("/posts/<post_id>/retry")
@page
def retry(principal: Principal, post_id: str) -> Any:
    core().retry_post(principal.org_id, post_id)
    return done(url_for(".post", post_id=post_id), "queued again")


@bp.post("/posts/<post_id>/cancel")
@page
def cancel(principal: Principal, post_id: str) -> Any:
    core().update_post(principal, post_id, {"status": PostStatus.CANCELLED})
    return done(url_for(".post", post_id=post_id), "cancelled")


@bp.post("/posts/<post_id>/delete")
@page
def delete(principal: Principal, post_id: str) -> Any:
    outcome = core().delete_post(principal.org_id, post_id,
                                 from_platform=request.form.get("from_platform") == "on")
    said = "deleted" if outcome.deleted else "cancelled"
    if outcome.platform_deleted:
        said += " and deleted on the platform"
    if outcome.platform_error:
        said += f"; not deleted on the platform: {outcome.platform_error}"
    if outcome.deleted:
        return done(url_for(".posts"), said)
    return done(url_for(".post", post_id=post_id), said)


@bp.post("/posts/<post_id>/reschedule")
@page
def reschedule(principal: Principal, post_id: str) -> Any:
    when = (request.form.get("scheduled_at") or "").strip()
    if not when:
        raise ValidationError("choose the new time", details=[
            Issue("scheduledAt", "choose the new time", code="required")])
    core().update_post(principal, post_id, {
        "scheduled_at": when, "timezone": request.form.get("timezone") or "UTC"})
    return done(url_for(".post", post_id=post_id), "rescheduled")


# --- calendar -----------------------------------------------------------------------------


def _day(raw: str | None, zone: ZoneInfo) -> date:
    try:
        return date.fromisoformat(raw) if raw else datetime.now(zone).date()
    except ValueError:
        return datetime.now(zone).date()


def _going_out(post: Post) -> datetime:
    return post.scheduled_at or post.published_at or post.created_at


@bp.get("/calendar")
@page
def calendar(principal: Principal) -> Any:
    zone = user_zone()
    view = "month" if request.args.get("view") == "month" else "week"
    day = _day(request.args.get("date"), zone)
    if view == "week":
        first = day - timedelta(days=day.weekday())
        last = first + timedelta(days=7)
        previous, following = first - timedelta(days=7), last
        title = f"Week of {first:%d %B %Y}"
    else:
        first = day.replace(day=1)
        last = (first + timedelta(days=32)).replace(day=1)
        previous = (first - timedelta(days=1)).replace(day=1)
        following = last
        title = f"{first:%B %Y}"
    grid_start = first - timedelta(days=first.weekday())
    grid_end = last + timedelta(days=(7 - last.weekday()) % 7)
    since = datetime.combine(grid_start, time(), zone).astimezone(UTC)
    until = datetime.combine(grid_end, time(), zone).astimezone(UTC)
    by_day: dict[date, list[Post]] = {}
    number = 1
    while True:
        found = core().list_posts(principal.org_id, since=since, until=until,
                                  sort=PostSort.SCHEDULED_ASC, page=number, limit=100)
        for p in found.items:
            by_day.setdefault(_going_out(p).astimezone(zone).date(), []).append(p)
        if not found.has_more or number * 100 >= CALENDAR_MAX:
            break
        number += 1
    days = [grid_start + timedelta(days=i) for i in range((grid_end - grid_start).days)]
    weeks = [days[i:i + 7] for i in range(0, len(days), 7)]
    return _render("calendar.html", view=view, weeks=weeks, by_day=by_day, first=first,
                   last=last, title=title, previous=previous, following=following,
                   today=datetime.now(zone).date(), zone=zone.key,
                   weekdays=list(cal.day_abbr), going_out=_going_out)


# --- media --------------------------------------------------------------------------------


@bp.get("/media")
@page
def media(principal: Principal) -> Any:
    items, uses = core().media.library(principal.org_id, limit=200, before=None)
    return _render("media.html", items=items,
                   in_use={media_id for media_id, n in uses.items() if n})


@bp.post("/media")
@page
def upload(principal: Principal) -> Any:
    """An upload from the Media page or the compose page's script (JSON answer then)."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise ValidationError("choose a file to upload", details=[
            Issue("file", "this field is required", code="required")])
    asset = _upload(principal, upload)
    if request.accept_mimetypes.best == "application/json":
        return jsonify({"id": asset.id, "url": asset.url, "name": asset.name,
                        "kind": asset.kind,
                        "thumb": url_for(".thumb", media_id=asset.id)
                        if asset.kind == "image" else None}), 201
    return done(url_for(".media"), f"uploaded {asset.name}")


@bp.post("/media/<media_id>/delete")
@page
def delete_media(principal: Principal, media_id: str) -> Any:
    asset, _uses = core().media.show(principal.org_id, media_id)
    core().media.remove(principal.org_id, media_id)
    return done(url_for(".media"), f"deleted {asset.name}")


@bp.get("/media/<media_id>/thumb")
@page
def thumb(principal: Principal, media_id: str) -> Any:
    asset = core().store.get_media(media_id)
    if asset.org_id != principal.org_id:
        abort(404)
    files = core().media.files
    path = thumbs.thumbnail(files.root, asset, files.local_file(asset.name))
    response = send_file(path, mimetype="image/jpeg", conditional=True,
                         etag=f"{thumbs.key(asset)}-{thumbs.SIZE}", max_age=86400)
    response.cache_control.public = False
    response.cache_control.private = True
    return response


# --- accounts -----------------------------------------------------------------------------


@bp.get("/accounts")
@page
def accounts(principal: Principal) -> Any:
    """The accounts, the Connect buttons and, back from a platform's sign-in
    (``?connectionId=…&status=…``), what the connection came to: the targets to choose
    from (``select``), or its error."""
    platforms = sorted(((p.name, p.display_name or p.name, p.supports_connect)
                        for p in core().host), key=lambda p: p[1].lower())
    connection = None
    connection_id = request.args.get("connectionId")
    if connection_id:
        connection = core().get_connection(principal.org_id, connection_id)
    return _render("accounts.html", accounts=_accounts(principal), platforms=platforms,
                   connectable={name for name, _, oauth in platforms if oauth},
                   connection=connection)


@bp.post("/accounts/connect")
@page
def connect(principal: Principal) -> Any:
    """Connect a ``platform`` account, or reconnect ``account``: off to the platform's
    sign-in, which sends the browser back to the Accounts page."""
    back = core().settings.media_base_url + url_for(".accounts")
    view = core().start_connection(principal, request.form.get("platform") or "",
                                   back, request.form.get("account") or None)
    assert view.authorization_url is not None
    return redirect(view.authorization_url)


@bp.post("/accounts/connections/<connection_id>/select")
@page
def select_targets(principal: Principal, connection_id: str) -> Any:
    view = core().select_targets(principal, connection_id,
                                 request.form.getlist("externalId"))
    names = ", ".join(a.name for a in view.accounts)
    return done(url_for(".accounts"), f"connected {names}")


@bp.post("/accounts/<account_id>/disconnect")
@page
def disconnect(principal: Principal, account_id: str) -> Any:
    removed = core().disconnect_account(principal.org_id, account_id)
    return done(url_for(".accounts"), f"disconnected {removed.account.name}; "
                f"{len(removed.cancelled_posts)} queued post(s) cancelled")


# --- settings -----------------------------------------------------------------------------


def _settings(principal: Principal, status: int = 200, **extra: Any) -> Any:
    keys = core().list_api_keys(principal.org_id)
    secret = core().webhook_secret_state(principal.org_id)
    return _render("settings.html", status, keys=keys, secret=secret, **extra)


@bp.get("/settings")
@page
def settings(principal: Principal) -> Any:
    return _settings(principal)


@bp.post("/settings/keys")
@page
def create_key(principal: Principal) -> Any:
    app = core()
    name = (request.form.get("name") or "").strip() or "Web app key"
    with app.counted("api_keys.create", principal.user_id):
        key, raw = app.create_api_key(principal.org_id, principal.user_id, name)
    # shown on this answer only: never stored, never shown again
    response: Response = current_app.make_response(_settings(principal, created=key, raw=raw))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/settings/keys/<key_id>/revoke")
@page
def revoke_key(principal: Principal, key_id: str) -> Any:
    key = core().revoke_api_key(principal.org_id, key_id)
    return done(url_for(".settings"), f"revoked {key.name}")


@bp.post("/settings/webhooks/rotate")
@page
def rotate_secret(principal: Principal) -> Any:
    core().rotate_webhook_secret(principal.org_id)
    return done(url_for(".settings"),
                "webhook secret rotated; the old one still signs for 24 hours")


# --- errors -------------------------------------------------------------------------------


@bp.errorhandler(Chat33Error)
def chat33_error(exc: Chat33Error) -> Any:
    status = int(getattr(exc, "http_status", 500) or 500)
    if isinstance(exc, Unauthorized) and request.method == "GET":
        return redirect(url_for(".signin"))
    if request.accept_mimetypes.best == "application/json":
        return jsonify(error_json(exc)), status
    return _render("error.html", status, error=exc, code=status,
                   back=request.referrer if _same_origin(request.referrer) else None)


def _same_origin(url: str | None) -> bool:
    return bool(url) and url is not None and url.startswith(request.host_url)


__all__ = ["bp", "local"]
