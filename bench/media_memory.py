"""The 1 GB memory case of ``bench/media.py``: a large video through the direct-upload
path and out to YouTube (resumable upload) and X (chunked upload), every process
watched.

Starts, each as its own process: the platform sandboxes (``chat33 sandbox``), the API
(``chat33 serve --dev``) and a worker; uploads the file with ``POST /media/presign``, a
streamed ``PUT`` to the ``uploadUrl`` and ``POST /media/{id}/complete``; posts it to a
YouTube and an X account; waits until both are published; then prints each process's
peak resident memory (Linux ``VmHWM``) next to the file size. The video is a real short
MP4 padded to the size with a ``free`` box (written sparse: generated at once).

Target: every process under 128 MB.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

MB = 1024 * 1024
LIMIT = 128 * MB


def make_padded_mp4(path: Path, size: int) -> Path:
    """A short real MP4 followed by a ``free`` box (64-bit size) up to ``size`` bytes."""
    from chat33_core.testing import make_video

    head = make_video(path.with_suffix(".head.mp4"), 320, 240, seconds=1.0).read_bytes()
    pad = size - len(head)
    with path.open("wb") as fh:
        fh.write(head)
        fh.write((1).to_bytes(4, "big") + b"free" + pad.to_bytes(8, "big"))
        fh.seek(size - 1)
        fh.write(b"\0")
    return path


def peak_rss(pid: int) -> int | None:
    """The process's peak resident set (VmHWM), in bytes; None off Linux."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    found = re.search(r"^VmHWM:\s+(\d+) kB", text, re.M)
    return int(found[1]) * 1024 if found else None


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def file_chunks(path: Path, size: int = MB) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(size):
            yield chunk


@contextmanager
def processes() -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        yield procs
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def wait_for(check: Any, timeout: float, what: str) -> Any:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = check()
        except httpx.TransportError:
            found = None
        if found:
            return found
        time.sleep(0.5)
    raise SystemExit(f"timed out waiting for {what}")


def run(size: int, workdir: Path) -> list[tuple[str, int | None]]:
    import httpx

    from chat33_core.config import Settings
    from chat33_core.models import Credentials, utcnow
    from chat33_core.service import Chat33

    video = make_padded_mp4(workdir / "big.mp4", size)
    cli = [sys.executable, "-m", "chat33_core.cli"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT33_")}
    with processes() as procs:
        sandbox_port = free_port()
        printed = subprocess.run([*cli, "sandbox", "--port", str(sandbox_port), "--print-env"],
                                 env=env, capture_output=True, text=True, check=True).stdout
        for line in printed.splitlines():
            if line.startswith("export CHAT33_"):
                name, value = line.removeprefix("export ").split("=", 1)
                env[name] = value.strip("'\"")
        procs["sandboxes"] = subprocess.Popen(
            [*cli, "sandbox", "--port", str(sandbox_port)], env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        env.update({
            "CHAT33_DATABASE_URL": f"sqlite:///{workdir / 'chat33.db'}",
            "CHAT33_MEDIA_DIR": str(workdir / "media"),
            "CHAT33_SECRET_KEY": secrets.token_urlsafe(32),
            "CHAT33_ALLOW_PRIVATE_URLS": "1", "CHAT33_POLL_INTERVAL_S": "0.2",
            "CHAT33_MAX_UPLOAD_BYTES": str(max(size, 5 * 1024 ** 3)),
            "CHAT33_X_VIDEO_MAX_BYTES": str(size * 2),
        })
        core = Chat33(Settings.from_env(env))
        core.store.migrate()
        user = core.create_user("bench@example.com", secrets.token_urlsafe(12), "Bench")
        _, key = core.create_api_key(user.org_id, user.id, "bench")
        credentials = Credentials(access_token="sandbox-token", refresh_token="sandbox-refresh",
                                  expires_at=utcnow() + timedelta(days=50), issued_at=utcnow())
        accounts = {p: core.add_account(user.org_id, p, f"Bench on {p}", username=f"bench_{p}",
                                        external_id=f"sandbox-{p}", credentials=credentials).id
                    for p in ("youtube", "x")}
        core.store.dispose()
        api_port = free_port()
        log = (workdir / "api.log").open("wb")
        procs["api"] = subprocess.Popen(
            [*cli, "serve", "--dev", "--host", "127.0.0.1", "--port", str(api_port)], env=env,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wlog = (workdir / "worker.log").open("wb")
        procs["worker"] = subprocess.Popen([*cli, "worker", "--concurrency", "2"], env=env,
                                           stdout=wlog, stderr=subprocess.STDOUT,
                                           start_new_session=True)
        api = f"http://127.0.0.1:{api_port}/api/v1"
        headers = {"x-api-key": key}
        with httpx.Client(timeout=600) as http:
            wait_for(lambda: http.get(f"{api}/openapi.json").status_code == 200, 60, "the API")
            # the account may post long videos (X grants it to some): the sandbox takes them
            http.post(env["CHAT33_X_API_BASE"] + "/_sandbox/config",
                      json={"max_video_bytes": size * 2}).raise_for_status()
            print(f"uploading {size / MB:.0f} MB...", file=sys.stderr)
            ticket = http.post(f"{api}/media/presign", headers=headers, json={
                "filename": "big.mp4", "contentType": "video/mp4", "size": size}).json()
            put = http.put(ticket["uploadUrl"], content=file_chunks(video), headers={
                **ticket["headers"], "Content-Length": str(size)})
            if put.status_code != 200 or not put.json().get("complete"):
                raise SystemExit(f"the PUT failed: {put.status_code} {put.text[:300]}")
            done = http.post(f"{api}/media/{ticket['mediaId']}/complete", headers=headers)
            if done.status_code != 201:
                raise SystemExit(f"complete failed: {done.status_code} {done.text[:300]}")
            print("publishing to YouTube and X...", file=sys.stderr)
            created = http.post(f"{api}/posts", headers=headers, json={
                "accountIds": list(accounts.values()), "text": "a big one",
                "mediaUrls": [done.json()["url"]],
                "platformConfig": {"youtube": {"title": "A big one", "privacyStatus": "private",
                                               "selfDeclaredMadeForKids": False}}})
            if created.status_code != 201:
                raise SystemExit(f"the post was refused: {created.text[:500]}")
            ids = [p["id"] for p in created.json()["posts"]]

            def finished() -> list[dict[str, Any]] | None:
                posts = [http.get(f"{api}/posts/{i}", headers=headers).json() for i in ids]
                return posts if all(p["status"] in ("PUBLISHED", "FAILED")
                                    for p in posts) else None

            posts = wait_for(finished, 1800, "the publishes")
            for post in posts:
                if post["status"] != "PUBLISHED":
                    raise SystemExit(f"{post['platform']}: {post.get('errorMessage')}")
        return [(name, peak_rss(proc.pid)) for name, proc in procs.items()]


def main(size_mb: int = 1024) -> int:
    size = size_mb * MB
    with tempfile.TemporaryDirectory(prefix="chat33-bench-") as tmp:
        peaks = run(size, Path(tmp))
    print(f"| file | process | peak RSS | under {LIMIT // MB} MB |")
    print("|---|---|---|---|")
    for name, peak in peaks:
        shown = f"{peak / MB:.1f} MB" if peak is not None else "n/a"
        verdict = "n/a" if peak is None else ("yes" if peak < LIMIT else "NO")
        print(f"| {size / MB:.0f} MB MP4 | {name} | {shown} | {verdict} |")
    return 0 if all(p is not None and p < LIMIT for _, p in peaks) else 1
