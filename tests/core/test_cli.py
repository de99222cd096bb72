"""The operator CLI, run as a user would: real processes, real database."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from chat33_core.cli import main

from ..conftest import SECRET

CHAT33 = [sys.executable, "-m", "chat33_core.cli"]


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CHAT33, *args], env=env, capture_output=True, text=True,
                          timeout=60, check=False)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("CHAT33_")}
    e["CHAT33_DATABASE_URL"] = f"sqlite:///{tmp_path / 'cli.db'}"
    e["CHAT33_SECRET_KEY"] = SECRET
    return e


def test_full_operator_flow(env: dict[str, str]) -> None:
    runner = CliRunner(env=env)
    assert runner.invoke(main, ["init"]).exit_code == 0
    assert runner.invoke(main, ["init"]).exit_code == 0, "init must be safe to run twice"
    user = runner.invoke(main, ["users", "create", "--email", "ops@example.com",
                                "--password", "password1", "--org", "Acme", "--create-org"])
    assert user.exit_code == 0 and user.stdout.strip().startswith("user_")
    # a real process for the one whose stdout scripts capture
    key = run(["keys", "create", "--email", "ops@example.com", "--name", "ci",
               "--scopes", "posts:read,posts:write"], env)
    assert key.returncode == 0
    assert key.stdout.count("\n") == 1 and key.stdout.startswith("sk_live_")
    assert "sk_live_" not in key.stderr.replace(key.stdout.strip()[:12], "")
    account = runner.invoke(main, [
        "accounts", "add", "--org", "Acme", "--platform", "x", "--name", "X main",
        "--username", "acme", "--external-id", "123", "--token", "tok",
        "--refresh-token", "ref", "--token-expires-at", "2030-01-01T00:00:00Z"])
    assert account.exit_code == 0, account.stderr
    assert account.stdout.strip().startswith("chan_") and account.stdout.count("\n") == 1

    from chat33_core.config import Settings
    from chat33_core.service import Chat33

    core = Chat33(Settings.from_env(env))
    principal = core.authenticate_key(key.stdout.strip())
    assert principal.scopes == frozenset({"posts:read", "posts:write"})
    accounts = core.list_accounts(principal.org_id)
    assert [a.username for a in accounts] == ["acme"]
    creds = core.account_credentials(accounts[0].id)
    assert creds is not None and creds.refresh_token == "ref"


def test_accounts_add_stores_the_instance_on_the_account(env: dict[str, str]) -> None:
    runner = CliRunner(env=env)
    runner.invoke(main, ["init"])
    runner.invoke(main, ["users", "create", "--email", "ops@example.com", "--password",
                         "password1", "--org", "Acme", "--create-org"])
    for name, given in (("full", "https://social.example/"), ("bare", "fosstodon.org")):
        added = runner.invoke(main, ["accounts", "add", "--org", "Acme", "--platform", "mastodon",
                                     "--name", name, "--token", "t", "--instance", given])
        assert added.exit_code == 0, added.stderr

    from chat33_core.config import Settings
    from chat33_core.service import Chat33

    core = Chat33(Settings.from_env(env))
    org = core.store.find_org_by_name("Acme")
    assert org is not None
    stored = {a.name: a.metadata.get("instance") for a in core.list_accounts(org.id)}
    assert stored == {"full": "https://social.example", "bare": "https://fosstodon.org"}


@pytest.mark.parametrize(("args", "message"), [
    (["users", "create", "--email", "bad", "--password", "password1", "--org", "A",
      "--create-org"], "email: must be an email address"),
    (["users", "create", "--email", "a@b.co", "--password", "short", "--org", "A",
      "--create-org"], "password: must be at least 8 characters"),
    (["users", "create", "--email", "a@b.co", "--password", "password1", "--org", "Acne"],
     "no organization named 'Acne' (add --create-org to create it)"),
    (["accounts", "add", "--org", "Acme", "--platform", "x", "--name", "n", "--token", ""],
     "--token is empty"),
    (["accounts", "add", "--org", "Acme", "--platform", "x", "--name", "n", "--token", "t",
      "--refresh-token", " "], "--refresh-token is empty"),
    (["accounts", "add", "--org", "Acme", "--platform", "x", "--name", "n", "--sandbox",
      "--token", ""], "--token is empty"),
    (["keys", "create", "--email", "nobody@example.com"], "no user with the email"),
    (["keys", "create", "--email", "ops@example.com", "--scopes", "posts:delete"],
     "unknown scope"),
    (["accounts", "add", "--org", "Nope", "--platform", "x", "--name", "n"],
     "no organization named 'Nope'"),
    (["accounts", "add", "--org", "Acme", "--platform", "myspace", "--name", "n"],
     "unknown platform 'myspace'"),
    (["accounts", "add", "--org", "Acme", "--platform", "x", "--name", "n", "--token", "t",
      "--token-expires-at", "tomorrow"], "not an ISO 8601 instant"),
    (["accounts", "add", "--org", "Acme", "--platform", "x", "--name", "n",
      "--refresh-token", "r"], "--refresh-token needs --token"),
    (["accounts", "add", "--org", "Acme", "--platform", "x", "--name", "n",
      "--instance", "ftp://files.example"], "--instance: not the URL of a server"),
    (["accounts", "add", "--org", "Acme", "--platform", "x", "--name", "n",
      "--instance", "https://social.example/@me"], "--instance: not the URL of a server"),
    (["users", "create", "--email", "ops@example.com", "--password", "password1",
      "--org", "Acme"], "already exists"),
])
def test_bad_input_exits_2_with_one_line(env: dict[str, str], args: list[str],
                                         message: str) -> None:
    # in-process (click's runner) for speed; the database is real
    runner = CliRunner(env=env)
    runner.invoke(main, ["init"])
    runner.invoke(main, ["users", "create", "--email", "ops@example.com", "--password",
                         "password1", "--org", "Acme", "--create-org"])
    result = runner.invoke(main, args)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_credentials_need_the_secret_key(env: dict[str, str]) -> None:
    runner = CliRunner(env=env)
    runner.invoke(main, ["init"])
    runner.invoke(main, ["users", "create", "--email", "ops@example.com", "--password",
                         "password1", "--org", "Acme", "--create-org"])
    result = CliRunner(env={**env, "CHAT33_SECRET_KEY": ""}).invoke(main, [
        "accounts", "add", "--org", "Acme", "--platform", "x", "--name", "n", "--token", "t"])
    assert result.exit_code == 2 and "CHAT33_SECRET_KEY is not set" in result.stderr


def test_missing_required_option_is_a_usage_error(env: dict[str, str]) -> None:
    result = CliRunner(env=env).invoke(main, ["users", "create", "--email", "a@b.co"])
    assert result.exit_code == 2 and "--password" in result.stderr


@pytest.mark.parametrize("command", [["--help"], ["init", "--help"], ["users", "create", "--help"],
                                     ["keys", "create", "--help"], ["accounts", "add", "--help"]])
def test_every_command_has_help(env: dict[str, str], command: list[str]) -> None:
    result = CliRunner(env=env).invoke(main, command)
    assert result.exit_code == 0 and "Usage:" in result.stdout


def test_org_names_match_in_any_case(env: dict[str, str]) -> None:
    runner = CliRunner(env=env)
    runner.invoke(main, ["init"])
    first = runner.invoke(main, ["users", "create", "--email", "a@example.com", "--password",
                                 "password1", "--org", "Acme", "--create-org"])
    # --create-org creates only when no organization has the name, in any case
    second = runner.invoke(main, ["users", "create", "--email", "b@example.com", "--password",
                                  "password1", "--org", "acme", "--create-org"])
    third = runner.invoke(main, ["users", "create", "--email", "c@example.com", "--password",
                                 "password1", "--org", "ACME"])
    account = runner.invoke(main, ["accounts", "add", "--org", "aCmE", "--platform", "x",
                                   "--name", "n", "--sandbox"])
    assert [r.exit_code for r in (first, second, third, account)] == [0, 0, 0, 0], (
        second.stderr + third.stderr + account.stderr)

    from chat33_core.config import Settings
    from chat33_core.service import Chat33

    core = Chat33(Settings.from_env(env), load_plugins=False)
    users = [core.store.find_user_by_email(f"{c}@example.com") for c in "abc"]
    assert len({u.org_id for u in users if u is not None}) == 1
    org = core.store.find_org_by_name("ACME")
    assert org is not None and org.name == "Acme"
    core.store.dispose()


def test_commands_before_init_say_to_run_init(env: dict[str, str]) -> None:
    for args in (["users", "create", "--email", "a@example.com", "--password", "password1",
                  "--org", "Acme", "--create-org"],
                 ["keys", "create", "--email", "a@example.com"]):
        result = CliRunner(env=env).invoke(main, args)
        assert result.exit_code == 2, result.output
        assert result.stderr.strip().splitlines() == [
            "chat33: error: the database has no chat33 tables or an older schema: run "
            "`chat33 init` first"], result.stderr


@pytest.mark.parametrize(("url", "message"), [
    ("foo://bar", "CHAT33_DATABASE_URL names an unsupported database: 'foo'"),
    ("not-a-url", "CHAT33_DATABASE_URL is not a database URL: 'not-a-url'"),
    ("mysql://root@127.0.0.1/chat33", "CHAT33_DATABASE_URL names an unsupported database: "
                                      "'mysql'"),
    ("postgresql+nosuchdriver://u@127.0.0.1/db", "CHAT33_DATABASE_URL: the driver "
                                                 "'postgresql+nosuchdriver' is not available"),
])
def test_a_database_url_chat33_cannot_use_is_one_line(env: dict[str, str], url: str,
                                                      message: str) -> None:
    bad = {**env, "CHAT33_DATABASE_URL": url}
    # a real process once (what an operator sees), then in-process for the other commands
    process = run(["init"], bad)
    results = [(process.returncode, process.stderr)] + [
        (r.exit_code, r.stderr) for r in (CliRunner(env=bad).invoke(main, args) for args in (
            ["users", "create", "--email", "a@b.co", "--password", "password1", "--org", "A"],
            ["worker", "--once"], ["serve", "--port", "0"]))]
    for code, stderr in results:
        assert code == 2, stderr
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], stderr
        assert "accepted: sqlite:///PATH or postgresql+psycopg://" in lines[0]


def test_a_weak_secret_key_is_refused_with_a_hint(env: dict[str, str]) -> None:
    assert len(SECRET.encode()) >= 32  # the suite's own key passes
    weak = {**env, "CHAT33_SECRET_KEY": "x" * 31}
    for args in (["init"], ["worker", "--once"], ["serve", "--port", "0"]):
        result = CliRunner(env=weak).invoke(main, args)
        assert result.exit_code == 2, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert "CHAT33_SECRET_KEY is too weak: 31 bytes, at least 32" in lines[0]
        assert "secrets.token_urlsafe(32)" in lines[0]
    assert CliRunner(env={**env, "CHAT33_SECRET_KEY": "é" * 16}).invoke(
        main, ["init"]).exit_code == 0, "32 bytes are enough, whatever the characters"


def test_worker_once_on_an_unreachable_database_exits_non_zero(env: dict[str, str]) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = run(["worker", "--once"], {
        **env, "CHAT33_DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:{port}/x"})
    assert result.returncode == 1, result.stderr
    assert "database error" in result.stderr and "Traceback" not in result.stderr
    # before init: the same one line as the other commands, exit 2
    result = run(["worker", "--once"], env)
    assert result.returncode == 2 and "run `chat33 init` first" in result.stderr


def test_an_unusable_database_is_one_line_naming_the_driver_s_reason(
        env: dict[str, str], tmp_path: Path) -> None:
    env["CHAT33_DATABASE_URL"] = f"sqlite:///{tmp_path / 'missing' / 'dir' / 'x.db'}"
    result = CliRunner(env=env).invoke(main, ["users", "create", "--email", "a@example.com",
                                              "--password", "password1", "--org", "Acme"])
    assert result.exit_code == 1
    assert "database error: unable to open database file" in result.output
    assert "SELECT" not in result.output and "Traceback" not in result.output
