"""The sandbox kit every platform sandbox is built on."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from werkzeug.wrappers import Request, Response

from chat33_core.sandbox import (
    PrefixDispatcher,
    SandboxApp,
    json_response,
    raw_header,
    serve,
    sniff,
)
from chat33_core.testing import make_gif, make_image, make_video


class Counter(SandboxApp):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self.route("/v1/things", self.create, methods=["POST"])
        self.route("/v1/echo-headers", self.echo, methods=["POST"])

    def create(self, request: Request) -> Response:
        with self.lock:
            self.count += 1
            return json_response({"id": str(self.count)}, 201)

    def echo(self, request: Request) -> Response:
        return json_response({name: raw_header(request, name)
                              for name in ("file_offset", "file_size", "File-Offset")})

    def state(self) -> dict[str, int]:
        return {"count": self.count}

    def reset(self) -> None:
        self.count = 0


def test_headers_with_underscores_reach_the_app() -> None:
    with serve(Counter()) as url:
        got = httpx.post(f"{url}/v1/echo-headers",
                         headers={"file_offset": "1048576", "file_size": "42"}).json()
        dashed = httpx.post(f"{url}/v1/echo-headers", headers={"File-Offset": "7"}).json()
    assert got == {"file_offset": "1048576", "file_size": "42", "File-Offset": None}
    assert dashed == {"file_offset": None, "file_size": None, "File-Offset": "7"}


def test_fault_before_the_body_answers_without_acting() -> None:
    app = Counter()
    with serve(app) as url:
        r = httpx.post(f"{url}/_sandbox/faults", json={"method": "POST", "path": "/v1/things",
                                                       "status": 503, "count": 1})
        assert r.status_code == 201
        assert httpx.post(f"{url}/v1/things").status_code == 503
        assert httpx.get(f"{url}/_sandbox/state").json() == {"count": 0}
        assert httpx.post(f"{url}/v1/things").status_code == 201


def test_fault_after_the_body_acts_then_loses_the_answer() -> None:
    app = Counter()
    with serve(app) as url:
        app.add_fault(path="/v1/things", status=504, after_body=True)
        assert httpx.post(f"{url}/v1/things").status_code == 504
        assert app.state() == {"count": 1}


def test_reset_forgets_state_and_faults() -> None:
    app = Counter()
    with serve(app) as url:
        httpx.post(f"{url}/v1/things")
        app.add_fault(path="/v1/things", status=500, count=5)
        assert httpx.post(f"{url}/_sandbox/reset").status_code == 200
        assert app.state() == {"count": 0}
        assert httpx.post(f"{url}/v1/things").status_code == 201


def test_unknown_paths_answer_404_json() -> None:
    with serve(Counter()) as url:
        r = httpx.get(f"{url}/nope")
    assert r.status_code == 404 and r.json()["path"] == "/nope"


def test_prefix_dispatcher_serves_several_sandboxes_on_one_port() -> None:
    a, b = Counter(), Counter()
    with serve(PrefixDispatcher({"a": a, "b": b})) as url:
        assert httpx.post(f"{url}/a/v1/things").json() == {"id": "1"}
        assert httpx.post(f"{url}/a/v1/things").json() == {"id": "2"}
        assert httpx.post(f"{url}/b/v1/things").json() == {"id": "1"}
        missing = httpx.get(f"{url}/c/v1/things")
    assert missing.status_code == 404 and missing.json()["sandboxes"] == ["a", "b"]


class Knobs(SandboxApp):
    def __init__(self) -> None:
        super().__init__()
        self.configurable(quota=50, slow=False)


def test_declared_knobs_are_set_over_http_and_unknown_ones_refused() -> None:
    app = Knobs()
    with serve(app) as url:
        r = httpx.post(f"{url}/_sandbox/config", json={"quota": 3})
        assert r.status_code == 200 and r.json() == {"quota": 3, "slow": False}
        bad = httpx.post(f"{url}/_sandbox/config", json={"qouta": 3})
    assert bad.status_code == 400 and bad.json()["options"] == ["quota", "slow"]
    assert app.config == {"quota": 3, "slow": False}


# --- the sniffer ------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "expected"), [
    ("JPEG", "JPEG"), ("PNG", "PNG"), ("BMP", "BMP"), ("TIFF", "TIFF"), ("WEBP", "WEBP"),
])
def test_sniff_names_real_images_by_their_first_bytes(tmp_path: Path, fmt: str,
                                                      expected: str) -> None:
    path = make_image(tmp_path / f"x.{fmt.lower()}", 64, 48, fmt=fmt)
    assert sniff(path.read_bytes()[:16]) == expected


def test_sniff_names_a_real_gif_and_a_real_mp4(tmp_path: Path) -> None:
    assert sniff(make_gif(tmp_path / "a.gif", 32, 24, frames=2).read_bytes()[:16]) == "GIF"
    video = make_video(tmp_path / "v.mp4", 64, 48, seconds=0.2, audio=False)
    assert sniff(video.read_bytes()[:16]) == "MP4"


@pytest.mark.parametrize("head", [b"", b"\xff\xd8", b"GIF88a", b"RIFF\0\0\0\0AVI ",
                                  b"%PDF-1.7\n", b"hello world, no magic", b"\x00" * 16])
def test_sniff_knows_nothing_of_truncated_or_other_files(head: bytes) -> None:
    assert sniff(head) is None
