"""The README's main job: ``chat33 demo`` on a fresh temporary database, as a user runs it.

One run covers the scenario's outcome, its output in a log (one line per step, a table
that fits 80 columns) and ``--keep-running --port`` stopped by SIGTERM: the API and the
worker it started stop, and its folder goes.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

PLATFORMS = ("instagram", "facebook", "tiktok", "youtube", "x", "bluesky", "mastodon", "telegram",
             "threads", "linkedin")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _processes_using(folder: Path) -> list[int]:
    """Processes whose environment names ``folder`` (the demo's database and media)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone, or not ours to read
            continue
        if str(folder).encode() in environ:
            found.append(int(entry.name))
    return found


def _wait_for(path: Path, text: str, proc: subprocess.Popen[bytes], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        out = path.read_text(errors="replace")
        if text in out:
            return out
        assert proc.poll() is None, f"the demo exited {proc.returncode}:\n{out[-4000:]}"
        assert time.monotonic() < deadline, f"no {text!r} in time:\n{out[-4000:]}"
        time.sleep(0.5)


def test_chat33_demo_publishes_everything_and_stops_cleanly_on_sigterm(
        tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CHAT33_") and k not in ("COLUMNS", "LINES")}
    port = _free_port()
    log = tmp_path / "demo.log"
    with log.open("wb") as sink:  # a file, not a terminal: what CI and logs get
        proc = subprocess.Popen([sys.executable, "-m", "chat33_core.cli", "demo",
                                 "--keep-running", "--port", str(port)], env=env,
                                stdout=sink, stderr=subprocess.STDOUT)
    try:
        out = _wait_for(log, "stops the API and the worker", proc, timeout=240)
        workdir = Path(re.search(r"chat33 demo: working in (\S+)", out)[1])  # type: ignore[index]
        assert workdir.is_dir()
        # the scenario
        for platform in PLATFORMS:
            assert f" {platform} " in out
        assert "PUBLISHED" in out and "FAILED" not in out and "missing" not in out
        assert "dry run of an invalid post" in out
        assert "scheduled post published" in out
        assert out.count("verified") >= 10
        retried = [line for line in out.splitlines() if "retried" in line]
        assert retried and " 2 " in retried[0]
        # one line per step, in order
        steps = re.findall(r"^\[(\d)/9\] ", out, flags=re.M)
        assert steps == [str(n) for n in range(1, 10)], out[:2000]
        # the table fits 80 columns, its URLs folded rather than cut
        table = re.split(r"chat33 demo *\n", out)[1].split("dry run of an invalid post")[0]
        assert max(len(line) for line in table.splitlines()) <= 80, table
        assert "…" not in table
        # --keep-running --port: the API is up where asked, with the printed key
        key = re.search(r"key: (sk_live_\S+)", out)[1]  # type: ignore[index]
        accounts = httpx.get(f"http://127.0.0.1:{port}/api/v1/accounts",
                             headers={"x-api-key": key}, timeout=10)
        assert accounts.status_code == 200 and len(accounts.json()["items"]) == len(PLATFORMS)
        # and the web app, with the printed sign-in
        web = re.search(r"Web app: (http://\S+/app)   sign in as (\S+) with password (\S+)",
                        out)
        assert web is not None, out[-2000:]
        with httpx.Client(timeout=10) as browser:
            signed = browser.post(web[1] + "/signin", data={"email": web[2],
                                                            "password": web[3]})
            assert signed.status_code == 302 and signed.headers["location"] == "/app/calendar"
            assert browser.get(web[1] + "/accounts").status_code == 200
        children = _processes_using(workdir)
        assert len(children) >= 2, "the API and the worker should be running"
    except BaseException:
        proc.kill()
        raise
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0, log.read_text()[-3000:]
    deadline = time.monotonic() + 15
    while _processes_using(workdir) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _processes_using(workdir) == [], "the demo's API and worker outlived it"
    assert not workdir.exists(), "the demo's folder was left behind"
    assert "stopped by SIGTERM" in log.read_text()


def test_sigterm_in_the_middle_of_the_demo_stops_it_and_cleans_up(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT33_")}
    log = tmp_path / "demo.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "chat33_core.cli", "demo"], env=env,
                                stdout=sink, stderr=subprocess.STDOUT)
    try:
        out = _wait_for(log, "[2/9] ", proc, timeout=120)  # the API and worker are up
        workdir = Path(re.search(r"chat33 demo: working in (\S+)", out)[1])  # type: ignore[index]
        assert len(_processes_using(workdir)) >= 2
    except BaseException:
        proc.kill()
        raise
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    deadline = time.monotonic() + 15
    while _processes_using(workdir) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _processes_using(workdir) == []
    assert not workdir.exists()
    assert "stopped by SIGTERM" in log.read_text()
