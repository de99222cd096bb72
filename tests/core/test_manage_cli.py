"""The management commands, run as an operator would, on SQLite and PostgreSQL: rows
(or JSON) alone on stdout, messages on stderr, one line and exit 2 for bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import attrs
import pytest
from click.testing import CliRunner, Result

from chat33_core.cli import main
from chat33_core.config import Settings
from chat33_core.models import Post, PostStatus, new_id, utcnow
from chat33_core.service import Chat33


@attrs.define
class Ops:
    env: dict[str, str]
    core: Chat33
    account: str
    other_account: str
    key_id: str

    def __call__(self, *args: str, input: str | None = None) -> Result:
        return CliRunner(env=self.env).invoke(main, list(args), input=input)

    def posts(self, *statuses: PostStatus, account: str | None = None) -> list[str]:
        found = self.core.store.get_account(account or self.account)
        user = self.core.list_users(found.org_id)[0]
        made = [Post(id=new_id("post"), org_id=found.org_id, account_id=found.id,
                     platform=found.platform, account_name=found.name, created_by=user.id,
                     status=s, error_message="boom" if s is PostStatus.FAILED else None)
                for s in statuses]
        return [p.id for p in self.core.store.add_posts(made)]


@pytest.fixture
def ops(db_url: str, tmp_path: Any) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT33_")}
    env |= {"CHAT33_DATABASE_URL": db_url, "CHAT33_SECRET_KEY": "cli-test-secret-0123456789abcdef",
            "CHAT33_MEDIA_DIR": str(tmp_path / "media")}
    core = Chat33(Settings.from_env(env))
    core.store.migrate()
    me = core.create_user("ops@example.com", "password1", "Acme")
    them = core.create_user("them@example.com", "password1", "Rival")
    key, _ = core.create_api_key(me.org_id, me.id, "ci")
    from chat33_core.models import Credentials

    account = core.add_account(me.org_id, "x", "Acme on X", username="acme", external_id="42",
                               credentials=Credentials(access_token="tok"))
    theirs = core.add_account(them.org_id, "facebook", "Rival page",
                              credentials=Credentials(access_token="tok"))
    yield Ops(env, core, account.id, theirs.id, key.id)
    core.store.dispose()


def _one_error_line(result: Result, text: str) -> None:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and text in result.stderr, result.stderr


# --- accounts ----------------------------------------------------------------------------


def test_accounts_list_rows_on_stdout_header_on_stderr(ops: Ops) -> None:
    result = ops("accounts", "list", "--org", "Acme")
    assert result.exit_code == 0, result.stderr
    (row,) = result.stdout.splitlines()
    assert row.split()[:4] == [ops.account, "x", "Acme", "on"]
    assert "42" in row and "active" in row
    assert result.stderr.split()[:3] == ["ID", "PLATFORM", "NAME"]
    as_json = json.loads(ops("accounts", "list", "--org", "Acme", "--json").stdout)
    assert [(a["id"], a["externalId"], a["needsReconnect"]) for a in as_json] == \
        [(ops.account, "42", False)]
    assert ops("accounts", "list", "--org", "Acme", "--platform", "tiktok").stdout == ""
    _one_error_line(ops("accounts", "list", "--org", "Nobody"), "no organization named")


def test_accounts_show_never_shows_tokens(ops: Ops) -> None:
    ops.posts(PostStatus.QUEUED, PostStatus.QUEUED, PostStatus.PUBLISHED)
    result = ops("accounts", "show", ops.account)
    assert result.exit_code == 0, result.stderr
    shown = json.loads(result.stdout)
    assert (shown["id"], shown["orgName"], shown["state"], shown["hasCredentials"]) == \
        (ops.account, "Acme", "active", True)
    assert shown["posts"] == {"PUBLISHED": 1, "QUEUED": 2}
    assert "tok" not in result.stdout.replace("token", "")
    _one_error_line(ops("accounts", "show", "chan_nope"), "account chan_nope not found")


def test_accounts_rename(ops: Ops) -> None:
    result = ops("accounts", "rename", ops.account, "Acme, X")
    assert result.exit_code == 0 and result.stdout == ""
    assert "'Acme on X' -> 'Acme, X'" in result.stderr
    assert ops.core.store.get_account(ops.account).name == "Acme, X"
    _one_error_line(ops("accounts", "rename", ops.account, "  "), "1 to 200 characters")
    _one_error_line(ops("accounts", "rename", "chan_nope", "x"), "not found")


def test_accounts_remove_cancels_queued_posts_and_prints_them(ops: Ops) -> None:
    queued = ops.posts(PostStatus.QUEUED, PostStatus.QUEUED)
    (published,) = ops.posts(PostStatus.PUBLISHED)
    (theirs,) = ops.posts(PostStatus.QUEUED, account=ops.other_account)
    refused = ops("accounts", "remove", ops.account, input="n\n")
    assert refused.exit_code == 1 and ops.core.store.get_account(ops.account).is_active
    result = ops("accounts", "remove", ops.account, "--yes")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.split() == sorted(queued)
    assert "2 queued posts cancelled" in result.stderr
    assert [ops.core.store.get_post(p).status for p in (*queued, published, theirs)] == [
        PostStatus.CANCELLED, PostStatus.CANCELLED, PostStatus.PUBLISHED, PostStatus.QUEUED]
    assert ops.core.account_credentials(ops.account) is None
    assert ops("accounts", "list", "--org", "Acme").stdout == ""
    assert "removed" in ops("accounts", "list", "--org", "Acme", "--all").stdout
    again = ops("accounts", "remove", ops.account, "--yes")
    assert again.exit_code == 0 and again.stdout == "" and "already" in again.stderr
    _one_error_line(ops("accounts", "remove", "chan_nope", "--yes"), "not found")


def test_accounts_set_token_reconnects_by_hand(ops: Ops) -> None:
    store = ops.core.store
    store.write_results("w1", utcnow(), reconnect=[ops.account])  # as the worker does
    result = ops("accounts", "set-token", ops.account, "--token", "new-token",
                 "--refresh-token", "new-refresh", "--token-expires-at", "2030-01-01T00:00:00Z")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "" and "no longer needs reconnecting" in result.stderr
    assert "new-token" not in result.stderr
    assert store.get_account(ops.account).needs_reconnect is False
    saved = ops.core.account_credentials(ops.account)
    assert saved is not None
    assert (saved.access_token, saved.refresh_token, saved.expires_at.year) == \
        ("new-token", "new-refresh", 2030)
    _one_error_line(ops("accounts", "set-token", ops.account, "--token", " "),
                    "--token must not be empty")
    _one_error_line(ops("accounts", "set-token", ops.account, "--token", "t",
                        "--token-expires-at", "soon"), "not an ISO 8601 instant")
    _one_error_line(ops("accounts", "set-token", "chan_nope", "--token", "t"), "not found")
    assert ops("accounts", "remove", ops.account, "--yes").exit_code == 0
    _one_error_line(ops("accounts", "set-token", ops.account, "--token", "t"), "was removed")
    assert ops.core.account_credentials(ops.account) is None


# --- keys and users ----------------------------------------------------------------------


def test_keys_list_and_revoke(ops: Ops) -> None:
    rows = ops("keys", "list", "--org", "Acme").stdout.splitlines()
    assert len(rows) == 1 and rows[0].startswith(ops.key_id)
    assert "ops@example.com" in rows[0] and "active" in rows[0] and "sk_live_" in rows[0]
    by_email = json.loads(ops("keys", "list", "--email", "ops@example.com", "--json").stdout)
    assert [k["id"] for k in by_email] == [ops.key_id]
    assert "keyHash" not in by_email[0]
    assert ops("keys", "list", "--org", "Rival").stdout == ""
    revoked = ops("keys", "revoke", ops.key_id)
    assert revoked.exit_code == 0 and revoked.stdout == "" and "revoked" in revoked.stderr
    assert "revoked" in ops("keys", "list", "--org", "Acme").stdout
    assert ops("keys", "revoke", ops.key_id).exit_code == 0  # again: nothing changes
    _one_error_line(ops("keys", "revoke", "key_nope"), "API key key_nope not found")
    _one_error_line(ops("keys", "list"), "give --org or --email")
    _one_error_line(ops("keys", "list", "--org", "Acme", "--email", "ops@example.com"),
                    "give --org or --email")
    _one_error_line(ops("keys", "list", "--email", "nobody@example.com"), "no user")


def test_a_revoked_key_is_refused(ops: Ops) -> None:
    from chat33_core.errors import Unauthorized

    user = ops.core.list_users()[0]
    _, raw = ops.core.create_api_key(user.org_id, user.id, "to revoke")
    key_id = ops.core.authenticate_key(raw).key_id
    assert ops("keys", "revoke", key_id).exit_code == 0
    with pytest.raises(Unauthorized, match="revoked"):
        ops.core.authenticate_key(raw)


def test_users_list_and_set_password(ops: Ops) -> None:
    rows = ops("users", "list").stdout.splitlines()
    assert [r.split()[1:3] for r in rows] == [["ops@example.com", "Acme"],
                                              ["them@example.com", "Rival"]]
    assert [u["email"] for u in json.loads(ops("users", "list", "--org", "Rival",
                                               "--json").stdout)] == ["them@example.com"]
    ops.core.login("ops@example.com", "password1")
    # asked for twice, hidden, when not given
    result = ops("users", "set-password", "--email", "ops@example.com",
                 input="new password 1\nnew password 1\n")
    assert result.exit_code == 0, result.stderr
    assert "1 session ended" in result.stderr and "new password 1" not in result.stderr
    assert ops.core.login("ops@example.com", "new password 1")[0].email == "ops@example.com"
    _one_error_line(ops("users", "set-password", "--email", "ops@example.com", "--password",
                        "short"), "at least 8 characters")
    _one_error_line(ops("users", "set-password", "--email", "x@example.com", "--password",
                        "long enough"), "no user with the email")
    _one_error_line(ops("users", "list", "--org", "Nobody"), "no organization named")


# --- the webhook secret and retries ------------------------------------------------------


def test_webhooks_secret_prints_it_alone_and_rotates(ops: Ops) -> None:
    env = {**ops.env}
    shown = subprocess.run([sys.executable, "-m", "chat33_core.cli", "webhooks", "secret",
                            "--org", "Acme"], env=env, capture_output=True, text=True,
                           timeout=60, check=False)
    assert shown.returncode == 0, shown.stderr
    secret = shown.stdout.strip()
    assert shown.stdout == secret + "\n" and secret.startswith("whsec_")
    rotated = ops("webhooks", "secret", "--org", "Acme", "--rotate")
    new = rotated.stdout.strip()
    assert rotated.exit_code == 0 and new != secret and new.startswith("whsec_")
    assert "a previous secret also signs deliveries until" in rotated.stderr
    assert ops.core.webhook_signing_secrets(ops.core.list_users()[0].org_id) == [new, secret]
    assert ops("webhooks", "secret", "--org", "Acme").stdout.strip() == new
    leaked = ops("webhooks", "secret", "--org", "Acme", "--rotate", "--grace", "0")
    assert "previous" not in leaked.stderr
    assert ops.core.webhook_signing_secrets(ops.core.list_users()[0].org_id) == \
        [leaked.stdout.strip()]
    bad = ops("webhooks", "secret", "--org", "Acme", "--rotate", "--grace", "-5")
    assert bad.exit_code == 2
    _one_error_line(ops("webhooks", "secret", "--org", "Nobody"), "no organization named")


def test_posts_retry(ops: Ops) -> None:
    failed, queued = ops.posts(PostStatus.FAILED, PostStatus.QUEUED)
    result = ops("posts", "retry", failed)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "" and "QUEUED again" in result.stderr and "boom" in result.stderr
    assert ops.core.store.get_post(failed).status is PostStatus.QUEUED
    _one_error_line(ops("posts", "retry", queued), "only FAILED posts can be retried")
    _one_error_line(ops("posts", "retry", "post_nope"), "post post_nope not found")


@pytest.mark.parametrize("command", [
    ["accounts", "list"], ["accounts", "show"], ["accounts", "rename"], ["accounts", "remove"],
    ["accounts", "set-token"],
    ["keys", "list"], ["keys", "revoke"], ["users", "list"], ["users", "set-password"],
    ["webhooks", "secret"], ["posts", "retry"]])
def test_every_management_command_has_help(command: list[str]) -> None:
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.stdout


def test_the_cli_starts_without_loading_the_service() -> None:
    """Every chat33 command (serve, worker) loads the management commands; they must not
    pull in the service, the store or SQLAlchemy before a command runs."""
    code = ("import sys, chat33_core.cli; print(sorted(m for m in ('chat33_core.service', "
            "'chat33_core.store', 'chat33_core.serialization', 'sqlalchemy', 'cattrs') "
            "if m in sys.modules))")
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=60, check=True)
    assert found.stdout.strip() == "[]"
