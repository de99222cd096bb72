"""The ``chat33`` command: operator tasks, the API server, the worker, sandboxes, demo.

Output meant for scripts (ids, keys) is printed alone on stdout; everything else goes
to stderr. Bad input exits with code 2 and one line on stderr.
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any, NoReturn
from urllib.parse import urlsplit

import click

from .config import Settings
from .errors import Chat33Error, ConfigurationError, StoreUnavailable
from .models import Credentials


def _fail(message: str, code: int = 2) -> NoReturn:
    click.echo(f"chat33: error: {message}", err=True)
    sys.exit(code)


def _core(ctx: click.Context) -> Any:
    from .service import Chat33

    obj = ctx.find_root().ensure_object(dict)  # where the error handler finds it
    if "core" not in obj:
        obj["core"] = Chat33(Settings.from_env())
    return obj["core"]


class _Group(click.Group):
    """Turns chat33's own errors into one clear line and exit code 2."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(_plugin_commands(self)))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return super().get_command(ctx, name) or _plugin_commands(self).get(name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except StoreUnavailable as exc:  # the operator wants what the driver said
            cause = exc.__cause__
            _database_failed(ctx, cause if isinstance(cause, Exception) else exc)
        except Chat33Error as exc:
            details = "; ".join(f"{d.path}: {d.message}" for d in exc.details)
            _fail(exc.message + (f" ({details})" if details and details not in exc.message
                                 else ""))


def _database_failed(ctx: click.Context, exc: Exception) -> NoReturn:
    """One line for a database error: "run `chat33 init` first" when the database is
    reachable but has no (current) chat33 schema, which is what a missing table means."""
    core = ctx.find_root().ensure_object(dict).get("core")
    if core is not None:
        try:
            core.store.require_schema()
        except StoreUnavailable:
            pass  # unreachable: the original error says why
        except Chat33Error as missing:
            _fail(missing.message)
    _fail("database error: " + " ".join(str(getattr(exc, "orig", exc)).split()), code=1)


def _plugin_commands(group: click.Group) -> dict[str, click.Command]:
    """Commands that other distributions add to the top level (entry-point group
    ``chat33.cli``): ``serve`` from chat33-flask, ``worker``, ``sandbox``, ``demo``."""
    if group.name != "main":
        return {}
    from importlib.metadata import entry_points

    found: dict[str, click.Command] = {}
    for ep in entry_points(group="chat33.cli"):
        try:
            command = ep.load()
        except ImportError as exc:
            click.echo(f"chat33: command {ep.name!r} is unavailable: {exc}", err=True)
            continue
        if isinstance(command, click.Command):
            found[ep.name] = command
    return found


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="chat33-core")
def main() -> None:
    """chat33: schedule and publish posts to Instagram, Facebook, TikTok, YouTube and X.

    Configuration comes from the environment (CHAT33_DATABASE_URL, CHAT33_SECRET_KEY, ...).
    """


@main.command()
@click.pass_context
def init(ctx: click.Context) -> None:
    """Create or migrate the database (safe to run again)."""
    core = _core(ctx)
    core.store.migrate()
    click.echo(f"database ready: {core.store.engine.url.render_as_string(hide_password=True)}",
               err=True)


@main.group(cls=_Group)
def users() -> None:
    """Manage users."""


@users.command("create")
@click.option("--email", required=True, help="The user's email (their login).")
@click.option("--password", required=True, help="At least 8 characters.")
@click.option("--org", "org_name", required=True,
              help="Organization name (matched in any case: acme is Acme).")
@click.option("--create-org", is_flag=True,
              help="Create the organization when none has this name.")
@click.pass_context
def users_create(ctx: click.Context, email: str, password: str, org_name: str,
                 create_org: bool) -> None:
    """Create a user in an organization; prints the user id."""
    core = _core(ctx)
    org = core.store.find_org_by_name(org_name.strip())
    if org is None and not create_org:
        _fail(f"no organization named {org_name!r} (add --create-org to create it)")
    user = core.create_user(email, password, org_name)
    click.echo(user.id)


@main.group(cls=_Group)
def keys() -> None:
    """Manage API keys."""


@keys.command("create")
@click.option("--email", required=True, help="The user the key acts for.")
@click.option("--name", default=None, help="A label for the key.")
@click.option("--scopes", default=None,
              help="Comma list of accounts:read, posts:read, posts:write, media:write, "
                   "accounts:write (connect and remove accounts) and settings:write (the "
                   "webhook secret); default: the first four.")
@click.pass_context
def keys_create(ctx: click.Context, email: str, name: str | None, scopes: str | None) -> None:
    """Create an API key; prints the raw key alone on stdout (shown only once)."""
    core = _core(ctx)
    user = core.store.find_user_by_email(email.strip().lower())
    if user is None:
        _fail(f"no user with the email {email!r}")
    scope_list = [s.strip() for s in scopes.split(",") if s.strip()] if scopes else None
    key, raw = core.create_api_key(user.org_id, user.id, name, scope_list)
    click.echo(f"created API key {key.id} ({key.key_prefix}...)", err=True)
    click.echo(raw)


def _expiry(text: str | None) -> datetime | None:
    """``--token-expires-at``: an ISO 8601 instant with its offset, or None."""
    if not text:
        return None
    try:
        expires = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        _fail(f"--token-expires-at: not an ISO 8601 instant: {text!r}")
    if expires.tzinfo is None:
        _fail("--token-expires-at needs a UTC offset (e.g. 2027-01-01T00:00:00Z)")
    return expires


def _instance_url(value: str) -> str:
    """``--instance``: an http(s) URL of a server (``https://mastodon.social``), kept
    without a trailing slash; a bare host name gets ``https://``."""
    url = value.strip().rstrip("/")
    if url and "://" not in url:
        url = f"https://{url}"
    parsed = urlsplit(url)
    if parsed.scheme not in ("https", "http") or not parsed.hostname or parsed.path:
        _fail(f"--instance: not the URL of a server: {value!r} (e.g. https://mastodon.social)")
    return url


@main.group(cls=_Group)
def accounts() -> None:
    """Manage connected channels."""


@accounts.command("add")
@click.option("--org", "org_name", required=True, help="Organization name.")
@click.option("--platform", required=True, help="instagram, facebook, tiktok, youtube, x, ...")
@click.option("--name", required=True, help="Display name of the channel.")
@click.option("--username", default=None)
@click.option("--external-id", default=None,
              help="The platform's id of the channel (IG user id, Page id, open_id, ...).")
@click.option("--token", default=None, help="Access token (for Facebook the Page token).")
@click.option("--refresh-token", default=None)
@click.option("--token-expires-at", default=None, help="ISO 8601 instant.")
@click.option("--instance", default=None,
              help="The account's server, for platforms with many (Mastodon): its https URL.")
@click.option("--sandbox", is_flag=True,
              help="Use the platform sandbox's test credentials when no token is given.")
@click.pass_context
def accounts_add(ctx: click.Context, org_name: str, platform: str, name: str,
                 username: str | None, external_id: str | None, token: str | None,
                 refresh_token: str | None, token_expires_at: str | None,
                 instance: str | None, sandbox: bool) -> None:
    """Connect a channel; prints its id."""
    core = _core(ctx)
    org = core.store.find_org_by_name(org_name)
    if org is None:
        _fail(f"no organization named {org_name!r} (create a user in it first)")
    expires = _expiry(token_expires_at)
    for option, value in (("--token", token), ("--refresh-token", refresh_token)):
        if value is not None and not value.strip():
            # "$X_ACCESS_TOKEN" of an unset variable: an account whose posts all fail
            _fail(f"{option} is empty (is the variable you passed set?); give the "
                  "platform's token, or --sandbox for the sandbox's test credentials")
    if sandbox and token is None:
        token, refresh_token = "sandbox-token", refresh_token or "sandbox-refresh"
    credentials = None
    if token:
        try:
            credentials = Credentials(access_token=token, refresh_token=refresh_token,
                                      expires_at=expires)
        except ValueError as exc:
            _fail(str(exc))
    elif refresh_token:
        _fail("--refresh-token needs --token")
    metadata: dict[str, object] = {"sandbox": True} if sandbox else {}
    if instance is not None:
        # stored on the account (``metadata["instance"]``), where the plugin reads it
        metadata["instance"] = _instance_url(instance)
    try:
        account = core.add_account(org.id, platform, name, username=username,
                                   external_id=external_id or (f"sandbox-{platform}"
                                                               if sandbox else None),
                                   credentials=credentials, metadata=metadata)
    except ConfigurationError as exc:
        _fail(exc.message)
    click.echo(account.id)


# the commands that manage what exists (list, show, rename, remove, revoke, retry...)
# live in their own module and register on the groups above
from . import manage as _manage  # noqa: E402,F401

if __name__ == "__main__":  # pragma: no cover
    # ``python -m chat33_core.cli`` runs a copy of this module as __main__; the management
    # commands registered on the package's own module, whose main is the real one
    from chat33_core.cli import main as _main

    _main()
