"""``docs/operating.md`` and ``docs/grafana-dashboard.json`` stay true: the dashboard uses
only chat33's metric names, the guide's ``chat33`` commands parse, ``chat33 init`` and the
SQLite backup run, and every setting chat33 reads is in the guide."""

from __future__ import annotations

import json
import os
import re
import shlex
import sqlite3
import subprocess
import sys
from pathlib import Path

import click
import pytest

from chat33_core.cli import main
from chat33_core.metrics import NAMES, series_names

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "operating.md"
DASHBOARD = ROOT / "docs" / "grafana-dashboard.json"
#: PromQL's words the dashboard may use besides metric names and labels
PROMQL = {"sum", "max", "min", "avg", "by", "without", "rate", "increase", "irate",
          "histogram_quantile", "and", "or", "unless", "on", "ignoring"}
LABELS = {"route", "method", "status", "platform", "outcome", "state", "le"}


def _shell_blocks() -> list[str]:
    return [line.strip() for block in re.findall(r"```sh\n(.*?)```", GUIDE.read_text(), re.S)
            for line in block.splitlines() if line.strip()]


def _expressions() -> list[str]:
    doc = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in doc["panels"] for target in panel["targets"]]


def test_the_dashboard_uses_only_chat33_metric_names() -> None:
    allowed = series_names()
    used: set[str] = set()
    for expr in _expressions():
        bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\"[^\"]*\"", "", expr)
        words = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", bare))
        metrics = {w for w in words if w.startswith("chat33_")}
        assert metrics, f"no chat33 metric in {expr}"
        assert metrics <= allowed, f"unknown metric in {expr}: {metrics - allowed}"
        assert words - metrics <= PROMQL | LABELS, f"unknown words in {expr}"
        for matcher in re.findall(r"\{([^}]*)\}", expr):
            names = set(re.findall(r"([a-z_]+)\s*=~?", matcher))
            assert names <= LABELS, expr
        used |= metrics
    # every metric chat33 defines has a panel
    covered = {n for n in NAMES if any(u == n or u.startswith(n + "_") for u in used)}
    assert covered == set(NAMES)


def test_the_guide_names_every_metric() -> None:
    text = GUIDE.read_text()
    for name in NAMES:
        assert f"`{name}`" in text, name


def _command(line: str) -> click.Context:
    """``line`` parsed by chat33's real command line (raises on an unknown option)."""
    name, *args = shlex.split(line)[1:]
    ctx = click.Context(main, info_name="chat33")
    command = main.get_command(ctx, name)
    assert command is not None, line
    return command.make_context(name, args, parent=ctx)


def test_every_chat33_command_of_the_guide_parses() -> None:
    commands = [line for line in _shell_blocks() if line.startswith("chat33 ")]
    assert {line.split()[1] for line in commands} >= {"init", "serve", "worker"}
    for line in commands:
        ctx = _command(line)
        if ctx.command.name == "worker":
            assert ctx.params["metrics_port"] == 9100
            assert ctx.params["metrics_host"] == "0.0.0.0"


def test_an_unknown_option_would_be_caught() -> None:
    with pytest.raises(click.UsageError):
        _command("chat33 worker --metrics-prot 9100")


def test_init_and_the_sqlite_backup_run_as_the_guide_says(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT33_")}
    env.update({"CHAT33_DATABASE_URL": "sqlite:///chat33.db",
                "CHAT33_SECRET_KEY": "k" * 43, "CHAT33_MEDIA_DIR": str(tmp_path / "media")})
    init = [sys.executable, "-m", "chat33_core.cli", "init"]
    for _ in range(2):  # migrating again is safe
        done = subprocess.run(init, cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr
    backup = next(line for line in _shell_blocks() if line.startswith("sqlite3 "))
    done = subprocess.run(shlex.split(backup), cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(tmp_path / "chat33-backup.db") as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
    assert {"posts", "accounts", "alembic_version"} <= tables
    # a restored backup is at the newest migration: chat33 init finds nothing to do
    (tmp_path / "chat33.db").unlink()
    (tmp_path / "chat33-backup.db").rename(tmp_path / "chat33.db")
    done = subprocess.run(init, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr


def test_every_setting_chat33_reads_is_in_the_guide() -> None:
    text = GUIDE.read_text()
    sources = [*(ROOT / "src" / "chat33_core").rglob("*.py"),
               *(ROOT / "adapters").rglob("*.py")]
    read = set()
    for path in sources:
        read |= set(re.findall(r"\"(CHAT33_[A-Z0-9_]+[A-Z0-9])\"", path.read_text()))
    # Flask config keys of the adapter, not environment variables
    read -= {"CHAT33_CORE", "CHAT33_SETTINGS", "CHAT33_JSON_ERROR_PREFIXES"}
    missing = sorted(name for name in read if f"`{name}`" not in text)
    assert not missing, f"not in docs/operating.md: {missing}"
