"""The README's five-minute tour, run as written: its ``sh`` blocks, in order, in one
shell, in a fresh directory, with the real ``chat33 sandbox``, ``serve`` and ``worker``.

The only change made to the commands is the two port numbers (8000 and 8100), replaced by
free ports so that the test can run beside anything else on this machine.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def tour_commands() -> str:
    """The ``sh`` blocks of the README's "A five-minute tour" section, in order."""
    text = README.read_text()
    section = text.split("\n## A five-minute tour\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```sh\n(.*?)^```$", section, flags=re.S | re.M)
    assert len(blocks) >= 2, "the tour's sh blocks were not found"
    return "".join(blocks)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop_group(pgid: int) -> None:
    """SIGTERM the tour's process group (its background jobs), SIGKILL what lingers."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


@pytest.mark.slow
def test_the_readme_tour_runs_as_written_to_a_published_post(tmp_path: Path) -> None:
    venv = Path(sys.prefix)
    assert (venv / "bin" / "activate").is_file() and (venv / "bin" / "chat33").is_file(), (
        "run the tests with the interpreter of the venv the README makes")
    (tmp_path / ".venv").symlink_to(venv)  # the tour runs "in the clone"
    api_port, sandbox_port = _free_port(), _free_port()
    script, n_api = re.subn(r"\b8000\b", str(api_port), tour_commands())
    script, n_sandbox = re.subn(r"\b8100\b", str(sandbox_port), script)
    assert n_api >= 3 and n_sandbox == 2
    # after the tour, what the test checks: the shell's variables
    script += 'printf "%s\\n" "$KEY" "$MEDIA" "$POST" > tour.vars\n'
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CHAT33_") and k != "VIRTUAL_ENV"}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if not p.startswith(str(venv)))  # only the tour's venv
    log = (tmp_path / "tour.log").open("w")
    proc = subprocess.Popen(["bash", "-c", "set -euo pipefail\n" + script], cwd=tmp_path,
                            env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        code = proc.wait(timeout=240)
        out = (tmp_path / "tour.log").read_text()
        assert code == 0, out[-4000:]
        key, media, post_id = (tmp_path / "tour.vars").read_text().split()
        assert key.startswith("sk_live_") and post_id.startswith("post_")
        assert media.startswith(f"http://127.0.0.1:{api_port}/media/"), media
        api = f"http://127.0.0.1:{api_port}/api/v1"
        deadline = time.monotonic() + 60
        while True:
            post = httpx.get(f"{api}/posts/{post_id}", headers={"x-api-key": key}).json()
            if post["status"] in ("PUBLISHED", "FAILED") or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert post["status"] == "PUBLISHED", (post, out[-4000:])
        assert post["platform"] == "x" and post["externalPostId"]
        # on the sandbox the tour started, with the photo the tour made
        state = httpx.get(f"http://127.0.0.1:{sandbox_port}/x/_sandbox/state").json()
        assert post["externalPostId"] in str(state)
        assert f'{{"id":"{post_id}"' in out, "the tour shows the post"
    finally:
        log.close()
        _stop_group(proc.pid)
