"""The sandbox itself: Meta's underscore headers arrive (platforms.md §8), state is kept."""

from __future__ import annotations

import httpx

from .conftest import APP_ID, FB

AUTH = {"Authorization": "OAuth sandbox-token"}


def open_session(fb: FB, length: int) -> str:
    r = fb.http.post(f"{fb.url}/v25.0/{APP_ID}/uploads", headers=AUTH,
                     params={"file_name": "a.mp4", "file_length": length,
                             "file_type": "video/mp4"})
    return r.json()["id"]


def test_file_offset_header_with_an_underscore_reaches_the_sandbox(fb: FB) -> None:
    session = open_session(fb, 8)
    r = fb.http.post(f"{fb.url}/v25.0/{session}", headers={**AUTH, "file_offset": "0"},
                     content=b"\0\0\0\x08ftyp")
    assert r.status_code == 200 and r.json()["h"].startswith("2:")


def test_a_hyphenated_file_offset_is_not_taken_for_the_real_header(fb: FB) -> None:
    session = open_session(fb, 8)
    r = fb.http.post(f"{fb.url}/v25.0/{session}", headers={**AUTH, "File-Offset": "0"},
                     content=b"\0\0\0\x08ftyp")
    assert r.status_code == 400 and "file_offset header is required" in r.text


def test_wrong_file_offset_is_refused_and_the_session_reports_its_own(fb: FB) -> None:
    session = open_session(fb, 10)
    fb.http.post(f"{fb.url}/v25.0/{session}", headers={**AUTH, "file_offset": "0"},
                 content=b"12345")
    assert fb.http.get(f"{fb.url}/v25.0/{session}", headers=AUTH).json()["file_offset"] == 5
    r = fb.http.post(f"{fb.url}/v25.0/{session}", headers={**AUTH, "file_offset": "2"},
                     content=b"345")
    assert r.status_code == 400 and r.json()["error"]["code"] == 100


def test_reel_upload_needs_offset_and_file_size_headers(fb: FB) -> None:
    start = fb.http.post(f"{fb.url}/v25.0/1045/video_reels", headers=AUTH,
                         data={"upload_phase": "start"}).json()
    url = start["upload_url"]
    missing = fb.http.post(url, headers={**AUTH, "offset": "0"}, content=b"abc")
    assert missing.json()["debug_info"]["type"] == "PartialRequestError"
    ok = fb.http.post(url, headers={**AUTH, "offset": "0", "file_size": "3"}, content=b"abc")
    assert ok.json() == {"success": True}
    status = fb.http.get(f"{fb.url}/v25.0/{start['video_id']}", headers=AUTH,
                         params={"fields": "status"}).json()["status"]
    assert status["uploading_phase"] == {"status": "completed", "bytes_transfered": 3}


def test_every_graph_answer_carries_usage_headers(fb: FB) -> None:
    r = fb.http.get(f"{fb.url}/v25.0/1045/published_posts", headers=AUTH)
    assert "call_count" in r.headers["x-app-usage"]
    assert "estimated_time_to_regain_access" in r.headers["x-business-use-case-usage"]


def test_missing_token_is_refused(fb: FB) -> None:
    r = httpx.post(f"{fb.url}/v25.0/1045/feed", data={"message": "x"})
    assert r.status_code == 400 and r.json()["error"]["code"] == 104


def test_reset_forgets_posts(fb: FB) -> None:
    fb.platform.publish(fb.ctx("Forget me"))
    assert fb.state()["posts"]
    fb.http.post(f"{fb.url}/_sandbox/reset")
    assert fb.state()["posts"] == []
