"""The operator CLI, run as a user would: real processes, real database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from chat33_core.cli import main

CHAT33 = [sys.executable, "-m", "chat33_core.cli"]


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CHAT33, *args], env=env, capture_output=True, text=True,
                          timeout=60, check=False)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("CHAT33_")}
    e["CHAT33_DATABASE_URL"] = f"sqlite:///{tmp_path / 'cli.db'}"
    e["CHAT33_SECRET_KEY"] = "cli-test-secret"
    return e


def test_full_operator_flow(env: dict[str, str]) -> None:
    runner = CliRunner(env=env)
    assert runner.invoke(main, ["init"]).exit_code == 0
    assert runner.invoke(main, ["init"]).exit_code == 0, "init must be safe to run twice"
    user = runner.invoke(main, ["users", "create", "--email", "ops@example.com",
                                "--password", "password1", "--org", "Acme"])
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


@pytest.mark.parametrize(("args", "message"), [
    (["users", "create", "--email", "bad", "--password", "password1", "--org", "A"],
     "email: must be an email address"),
    (["users", "create", "--email", "a@b.co", "--password", "short", "--org", "A"],
     "password: must be at least 8 characters"),
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
    (["users", "create", "--email", "ops@example.com", "--password", "password1",
      "--org", "Acme"], "already exists"),
])
def test_bad_input_exits_2_with_one_line(env: dict[str, str], args: list[str],
                                         message: str) -> None:
    # in-process (click's runner) for speed; the database is real
    runner = CliRunner(env=env)
    runner.invoke(main, ["init"])
    runner.invoke(main, ["users", "create", "--email", "ops@example.com", "--password",
                         "password1", "--org", "Acme"])
    result = runner.invoke(main, args)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_credentials_need_the_secret_key(env: dict[str, str]) -> None:
    runner = CliRunner(env=env)
    runner.invoke(main, ["init"])
    runner.invoke(main, ["users", "create", "--email", "ops@example.com", "--password",
                         "password1", "--org", "Acme"])
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
