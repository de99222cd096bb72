"""The ``chat33`` commands that manage what exists: accounts (list, show, rename,
remove), API keys (list, revoke), users (list, set-password), the webhook secret, and
retrying a failed post.

Lists print their rows on stdout (``--json`` for the API's JSON shapes) and their
header on stderr, so ``| cut``, ``| grep`` and ``| wc -l`` see rows only; a command's
other messages go to stderr. Registered on the groups of :mod:`chat33_core.cli`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import click

from .cli import _core, _expiry, _fail, _Group, accounts, keys, main, users
from .models import (
    MAX_WEBHOOK_SECRET_GRACE,
    WEBHOOK_SECRET_GRACE,
    Account,
    Credentials,
    Organization,
)

# the service, the store and the converter are imported when a command runs: every
# chat33 command (serve and worker too) loads this module, and should start quickly

_JSON = click.option("--json", "as_json", is_flag=True,
                     help="Print the items as a JSON array (the API's shapes).")


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Rows on stdout in aligned columns; the header line on stderr."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    click.echo("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(),
               err=True)
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return _isoformat(value)
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value) or "-"
    return str(value)


def _isoformat(value: datetime) -> str:
    from .serialization import isoformat

    return isoformat(value)


def _unstructure(value: Any) -> Any:
    """The API's JSON shape of a model (the one converter)."""
    from .serialization import converter

    return converter.unstructure(value)


def _print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def _org(core: Any, name: str) -> Organization:
    org: Organization | None = core.store.find_org_by_name(name)
    if org is None:
        _fail(f"no organization named {name!r}")
    return org


def _account(core: Any, account_id: str) -> Account:
    """Any organization's account (the operator manages them all)."""
    found: Account = core.store.get_account(account_id)
    return found


def _account_state(account: Account) -> str:
    if not account.is_active:
        return "removed"
    return "needs-reconnect" if account.needs_reconnect else "active"


# --- accounts ----------------------------------------------------------------------------


@accounts.command("list")
@click.option("--org", "org_name", required=True, help="Organization name.")
@click.option("--platform", default=None, help="Only this platform's accounts.")
@click.option("--all", "show_all", is_flag=True, help="Removed accounts too.")
@_JSON
@click.pass_context
def accounts_list(ctx: click.Context, org_name: str, platform: str | None, show_all: bool,
                  as_json: bool) -> None:
    """List an organization's accounts, oldest first."""
    core = _core(ctx)
    org = _org(core, org_name)
    found = core.store.list_accounts(org.id, platform=platform, active_only=not show_all)
    if as_json:
        _print_json([_unstructure(a) for a in found])
        return
    _table(["ID", "PLATFORM", "NAME", "USERNAME", "EXTERNAL ID", "STATE", "CREATED"],
           [[a.id, a.platform, a.name, a.username, a.external_id, _account_state(a),
             a.created_at] for a in found])


@accounts.command("show")
@click.argument("account_id")
@click.pass_context
def accounts_show(ctx: click.Context, account_id: str) -> None:
    """Print an account as JSON: the API's fields, its organization, whether it holds
    credentials (never the tokens) and how many posts it has in each status."""
    core = _core(ctx)
    account = _account(core, account_id)
    counts = core.store.count_posts_by_status(account.id)
    _print_json({**_unstructure(account),
                 "orgId": account.org_id, "orgName": core.store.get_org(account.org_id).name,
                 "state": _account_state(account),
                 "hasCredentials": core.store.account_credentials_enc(account.id) is not None,
                 "posts": counts})


@accounts.command("rename")
@click.argument("account_id")
@click.argument("name")
@click.pass_context
def accounts_rename(ctx: click.Context, account_id: str, name: str) -> None:
    """Give an account a new display name (its existing posts keep the old one)."""
    core = _core(ctx)
    account = _account(core, account_id)
    renamed = core.rename_account(account.org_id, account.id, name)
    click.echo(f"renamed {renamed.id}: {account.name!r} -> {renamed.name!r}", err=True)


@accounts.command("set-token")
@click.argument("account_id")
@click.option("--token", required=True, help="The new access token (for Facebook the Page "
              "token).")
@click.option("--refresh-token", default=None)
@click.option("--token-expires-at", default=None, help="ISO 8601 instant.")
@click.pass_context
def accounts_set_token(ctx: click.Context, account_id: str, token: str,
                       refresh_token: str | None, token_expires_at: str | None) -> None:
    """Give an account new credentials by hand (the account connected again): its
    needsReconnect mark is cleared, and its failed posts can be retried."""
    core = _core(ctx)
    account = _account(core, account_id)
    if not token.strip():
        _fail("--token must not be empty")
    credentials = Credentials(access_token=token, refresh_token=refresh_token or None,
                              expires_at=_expiry(token_expires_at))
    core.set_account_credentials(account.org_id, account.id, credentials)
    click.echo(f"new credentials saved for {account.id}"
               + (" (it no longer needs reconnecting)" if account.needs_reconnect else ""),
               err=True)


@accounts.command("remove")
@click.argument("account_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def accounts_remove(ctx: click.Context, account_id: str, yes: bool) -> None:
    """Disconnect an account: revoke its grant at the platform where it can, forget its
    tokens, cancel its QUEUED posts (with a logged reason) and leave the account list.
    Published posts stay readable. Prints the ids of the cancelled posts."""
    core = _core(ctx)
    account = _account(core, account_id)
    if not account.is_active:
        click.echo(f"{account.id} was removed already", err=True)
        return
    if not yes and not click.confirm(
            f"remove the {account.platform} account {account.name!r} ({account.id}) and "
            "cancel its queued posts?", err=True):
        _fail("not removed", code=1)
    removal = core.disconnect_account(account.org_id, account.id)
    n = len(removal.cancelled_posts)
    click.echo(f"removed {account.id}; {n} queued post{'' if n == 1 else 's'} cancelled",
               err=True)
    for post_id in removal.cancelled_posts:
        click.echo(post_id)


_WAIT = click.option("--timeout", "timeout_s", type=float, default=600.0, show_default=True,
                     help="Seconds to wait for the browser to come back.")


@accounts.command("connect")
@click.option("--org", "org_name", required=True, help="The organization's name.")
@click.option("--platform", required=True, help="A platform whose plugin connects by OAuth.")
@_WAIT
@click.pass_context
def accounts_connect(ctx: click.Context, org_name: str, platform: str,
                     timeout_s: float) -> None:
    """Connect an account by OAuth: prints the URL to open in a browser, then waits for
    the platform to send the browser back. When CHAT33_PUBLIC_BASE_URL is on this
    machine (http://127.0.0.1:PORT) and nothing listens there, this command takes the
    callback itself; otherwise the running API does, and this command watches the
    connection. Prints the connected accounts' ids."""
    core = _core(ctx)
    _finish_connection(core, core.start_connection(_operator(core, _org(core, org_name)),
                                                   platform), timeout_s)


@accounts.command("reconnect")
@click.argument("account_id")
@_WAIT
@click.pass_context
def accounts_reconnect(ctx: click.Context, account_id: str, timeout_s: float) -> None:
    """Reconnect an account by OAuth (the platform must sign in the same identity):
    like ``accounts connect``."""
    core = _core(ctx)
    account = _account(core, account_id)
    org = core.store.get_org(account.org_id)
    _finish_connection(core, core.start_connection(_operator(core, org), account.platform,
                                                   reconnect_account_id=account.id),
                       timeout_s)


def _operator(core: Any, org: Organization) -> Any:
    """The organization's first user, acting with every scope (the operator's CLI)."""
    from .models import ALL_SCOPES
    from .service import Principal

    found = core.list_users(org.id)
    if not found:
        _fail(f"organization {org.name!r} has no user: create one first")
    return Principal(org_id=org.id, user_id=found[0].id, scopes=frozenset(ALL_SCOPES),
                     via="key")


def _finish_connection(core: Any, view: Any, timeout_s: float) -> None:
    import time

    connection = view.connection
    click.echo("Open this URL in a browser and allow chat33:", err=True)
    click.echo(view.authorization_url)
    if not _serve_callback(core, connection.platform, timeout_s):
        click.echo("waiting for the API to receive the platform's redirect...", err=True)
    deadline = time.monotonic() + timeout_s
    while True:
        view = core.get_connection(connection.org_id, connection.id)
        if view.status != "pending" or time.monotonic() > deadline:
            break
        time.sleep(1.0)
    if view.status == "select":
        targets = view.connection.targets
        for i, target in enumerate(targets, 1):
            click.echo(f"  {i}. {target['name']} ({target['externalId']})", err=True)
        picked = click.prompt("connect which (comma-separated numbers)", err=True,
                              default="1")
        try:
            ids = [targets[int(n) - 1]["externalId"] for n in picked.split(",") if n.strip()]
        except (ValueError, IndexError):
            _fail(f"not a choice: {picked}")
        view = core.connector.select(_operator(core, core.store.get_org(
            connection.org_id)), connection.id, ids)
    if view.status != "connected":
        error = view.error or {"message": f"the connection is still {view.status}"}
        _fail(f"not connected: {error['message']}")
    for account in view.accounts:
        click.echo(f"connected {account.platform} account {account.name!r}", err=True)
        click.echo(account.id)


def _serve_callback(core: Any, platform: str, timeout_s: float) -> bool:
    """Take the platform's redirect back on the loopback address of
    CHAT33_PUBLIC_BASE_URL; False when it is not on this machine or taken (the API
    takes it then)."""
    import time
    from urllib.parse import urlsplit

    from werkzeug.serving import make_server
    from werkzeug.wrappers import Request, Response

    parts = urlsplit(core.settings.media_base_url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        return False
    path = f"/api/v1/oauth/{platform}/callback"
    done: list[bool] = []

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        if request.path != path:
            return Response("not found", status=404)(environ, start_response)
        outcome = core.oauth_callback(platform, dict(request.args.items()))
        done.append(outcome.http_status == 200)
        page = Response(outcome.page(), status=outcome.http_status,
                        content_type="text/html; charset=utf-8")
        return page(environ, start_response)

    try:
        server = make_server(parts.hostname, parts.port or 80, app)
    except OSError:
        return False
    server.timeout = 0.5
    deadline = time.monotonic() + timeout_s
    try:
        while not any(done) and time.monotonic() < deadline:
            server.handle_request()
    finally:
        server.server_close()
    return True


# --- API keys ----------------------------------------------------------------------------


@keys.command("list")
@click.option("--org", "org_name", default=None, help="Every key of this organization.")
@click.option("--email", default=None, help="The keys of this user.")
@_JSON
@click.pass_context
def keys_list(ctx: click.Context, org_name: str | None, email: str | None,
              as_json: bool) -> None:
    """List API keys (prefixes only: raw keys are never stored), oldest first."""
    core = _core(ctx)
    if (org_name is None) == (email is None):
        _fail("give --org or --email (one of them)")
    if email is not None:
        user = core.store.find_user_by_email(email.strip().lower())
        if user is None:
            _fail(f"no user with the email {email!r}")
        found = core.store.list_api_keys(user.org_id, user_id=user.id)
    else:
        found = core.list_api_keys(_org(core, org_name or "").id)
    if as_json:
        _print_json([_unstructure(k) for k in found])
        return
    emails = {u.id: u.email for u in core.list_users(found[0].org_id)} if found else {}
    _table(["ID", "PREFIX", "NAME", "USER", "SCOPES", "STATE", "LAST USED", "CREATED"],
           [[k.id, k.key_prefix + "...", k.name, emails.get(k.user_id, k.user_id), k.scopes,
             "active" if k.is_active else "revoked", k.last_used_at, k.created_at]
            for k in found])


@keys.command("revoke")
@click.argument("key_id")
@click.pass_context
def keys_revoke(ctx: click.Context, key_id: str) -> None:
    """Revoke an API key: it is refused from now on (revoking it again changes nothing)."""
    core = _core(ctx)
    key = core.store.get_api_key(key_id)
    core.revoke_api_key(key.org_id, key.id)
    click.echo(f"revoked {key.id} ({key.key_prefix}..., {key.name!r})", err=True)


# --- users -------------------------------------------------------------------------------


@users.command("list")
@click.option("--org", "org_name", default=None, help="Only this organization's users.")
@_JSON
@click.pass_context
def users_list(ctx: click.Context, org_name: str | None, as_json: bool) -> None:
    """List users, oldest first."""
    core = _core(ctx)
    org_id = _org(core, org_name).id if org_name is not None else None
    found = core.list_users(org_id)
    names = {o: core.store.get_org(o).name for o in {u.org_id for u in found}}
    if as_json:
        _print_json([{"id": u.id, "email": u.email, "orgId": u.org_id,
                      "orgName": names[u.org_id], "createdAt": _isoformat(u.created_at)}
                     for u in found])
        return
    _table(["ID", "EMAIL", "ORGANIZATION", "CREATED"],
           [[u.id, u.email, names[u.org_id], u.created_at] for u in found])


@users.command("set-password")
@click.option("--email", required=True, help="The user's email.")
@click.option("--password", prompt="New password", hide_input=True,
              confirmation_prompt=True,
              help="At least 8 characters; asked for (hidden) when not given.")
@click.pass_context
def users_set_password(ctx: click.Context, email: str, password: str) -> None:
    """Give a user a new password; their signed-in sessions end."""
    user, ended = _core(ctx).set_password(email, password)
    click.echo(f"password of {user.email} changed; {ended} session"
               f"{'' if ended == 1 else 's'} ended", err=True)


# --- webhooks ----------------------------------------------------------------------------


@main.group(cls=_Group)
def webhooks() -> None:
    """The organization's webhook signing secret."""


@webhooks.command("secret")
@click.option("--org", "org_name", required=True, help="Organization name.")
@click.option("--rotate", is_flag=True, help="Make a new secret first.")
@click.option("--grace", "grace_s", type=click.IntRange(
    0, int(MAX_WEBHOOK_SECRET_GRACE.total_seconds())),
    default=int(WEBHOOK_SECRET_GRACE.total_seconds()), show_default=True,
    help="With --rotate: seconds the replaced secret keeps signing deliveries beside the "
         "new one (0: it stops at once, for a leaked secret).")
@click.pass_context
def webhooks_secret(ctx: click.Context, org_name: str, rotate: bool, grace_s: int) -> None:
    """Print the organization's Standard Webhooks secret (whsec_...) alone on stdout;
    with --rotate, a new one."""
    core = _core(ctx)
    org = _org(core, org_name)
    if rotate:
        state = core.rotate_webhook_secret(org.id, grace=timedelta(seconds=grace_s))
        click.echo("rotated the webhook secret", err=True)
    else:
        state = core.webhook_secret_state(org.id)
    for until in state.previous_secrets_expire_at:
        click.echo(f"a previous secret also signs deliveries until {_isoformat(until)}",
                   err=True)
    click.echo(state.secret)


# --- posts -------------------------------------------------------------------------------


@main.group(cls=_Group)
def posts() -> None:
    """Act on posts."""


@posts.command("retry")
@click.argument("post_id")
@click.pass_context
def posts_retry(ctx: click.Context, post_id: str) -> None:
    """Put a FAILED post back in the queue, due now, its attempts reset."""
    core = _core(ctx)
    post = core.store.get_post(post_id)
    retried = core.retry_post(post.org_id, post.id)
    click.echo(f"{retried.id} is {retried.status.value} again (attempts reset; it failed "
               f"with: {post.error_message or 'no message'})", err=True)


__all__ = ["posts", "webhooks"]
