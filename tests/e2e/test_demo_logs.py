"""The logs of a whole ``chat33 demo`` run: the API's and the worker's (their default
JSON), every line one JSON object, and not one token, key, password or secret in them."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from rich.console import Console

from chat33_core.demo import Demo
from chat33_core.security import Vault
from chat33_core.store import tables as t


def _stored_secrets(workdir: Path, secret_key: str) -> list[str]:
    """Every credential the demo's database holds at the end (refreshed ones included)."""
    vault = Vault(secret_key)
    engine = sa.create_engine(f"sqlite:///{workdir / 'chat33.db'}")
    try:
        with engine.connect() as c:
            encrypted = c.execute(sa.select(t.accounts.c.credentials_enc)).scalars().all()
    finally:
        engine.dispose()
    found = []
    for enc in encrypted:
        credentials = vault.decrypt_credentials(enc)
        found += [credentials.access_token, credentials.refresh_token or ""]
        # the tokens kept beside the main one (a Page's user token); not the plain facts
        # kept there, such as which login connected an Instagram account ("facebook")
        found += [v for k, v in credentials.extra.items()
                  if isinstance(v, str) and ("token" in k or "secret" in k)]
    return [s for s in found if len(s) >= 8]


@pytest.mark.slow
def test_a_whole_demo_logs_json_lines_and_never_a_secret(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    workdir.mkdir()
    out = io.StringIO()
    with contextlib.ExitStack() as stack:
        demo = Demo(workdir, Console(file=out, width=120), stack)
        try:
            code = demo.run()
        finally:
            demo.stop_all()
    assert code == 0, out.getvalue()[-3000:]
    secrets = [*demo.secrets, *_stored_secrets(workdir, demo.secrets[0])]
    assert len(secrets) > 10 and all(secrets)
    fields_seen: set[str] = set()
    for name in ("api", "worker"):
        lines = (workdir / f"{name}.log").read_text().splitlines()
        assert lines, f"the {name} logged nothing"
        for line in lines:
            record = json.loads(line)  # every line is one JSON object
            assert {"time", "level", "logger", "message"} <= record.keys(), line
            fields_seen |= record.keys()
            leaked = [s for s in secrets if s in line]
            assert not leaked, f"{name} logged a secret: {line}"
    assert {"requestId", "orgId", "postId", "accountId", "platform", "attempt"} <= fields_seen
