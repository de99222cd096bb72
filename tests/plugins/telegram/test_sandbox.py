"""The Telegram sandbox on its own, over HTTP: what a faithful imitation reproduces
(platforms-more.md §5.5)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from chat33_telegram.sandbox import OLD_GROUP

from chat33_core.platforms import MediaFile
from chat33_core.testing import make_sparse_file, serve_directory

from .conftest import CHANNEL, CHANNEL_ID, TOKEN, Sandbox


def test_the_envelope_and_method_names_in_any_case(sandbox: Sandbox) -> None:
    me = sandbox.call("GETME").json()
    assert me["ok"] is True and me["result"]["is_bot"] is True
    unknown = sandbox.call("getMe", token="1:wrong")
    assert unknown.status_code == 401
    assert unknown.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}


def test_parameters_by_query_form_and_json(sandbox: Sandbox) -> None:
    assert sandbox.http.get(f"{sandbox.url}/bot{TOKEN}/sendMessage",
                            params={"chat_id": CHANNEL, "text": "q"}).json()["ok"]
    assert sandbox.call("sendMessage", data={"chat_id": str(CHANNEL_ID), "text": "f"}
                        ).json()["ok"]
    sent = sandbox.call("sendMessage", json={"chat_id": CHANNEL_ID, "text": "j"}).json()
    assert sent["result"]["message_id"] == 3
    assert sent["result"]["chat"]["username"] == "chat33demo"


def test_text_and_caption_limits_in_utf16_units(sandbox: Sandbox,
                                                media: Callable[[str], MediaFile]) -> None:
    ok = sandbox.call("sendMessage", json={"chat_id": CHANNEL, "text": "😀" * 2048})
    assert ok.json()["ok"]
    long = sandbox.call("sendMessage", json={"chat_id": CHANNEL, "text": "😀" * 2048 + "a"})
    assert long.status_code == 400
    assert long.json()["description"] == "Bad Request: message is too long"
    photo = media("photo.jpg")
    with photo.open() as fh:
        caption = sandbox.call("sendPhoto", data={"chat_id": CHANNEL, "caption": "a" * 1025},
                               files={"photo": ("p.jpg", fh, "image/jpeg")})
    assert caption.json()["description"] == "Bad Request: message caption is too long"


def test_media_groups_take_two_to_ten_attached_files(sandbox: Sandbox,
                                                     media: Callable[[str], MediaFile]) -> None:
    photo = media("photo.jpg").path.read_bytes()

    def group(count: int, attach: int | None = None) -> dict[str, object]:
        entries = [{"type": "photo", "media": f"attach://f{i}"} for i in range(count)]
        files = {f"f{i}": (f"{i}.jpg", photo, "image/jpeg")
                 for i in range(count if attach is None else attach)}
        answer = sandbox.call("sendMediaGroup", files=files,
                              data={"chat_id": CHANNEL, "media": json.dumps(entries)})
        return dict(answer.json())

    assert "wrong number" in str(group(1)["description"])
    assert "wrong number" in str(group(11)["description"])
    assert "wrong file identifier" in str(group(3, attach=2)["description"])
    result = group(2)["result"]
    assert isinstance(result, list) and [m["message_id"] for m in result] == [1, 2]


def test_uploads_are_checked(sandbox: Sandbox, media: Callable[[str], MediaFile]) -> None:
    strip = media("strip.png").path.read_bytes()
    wide = sandbox.call("sendPhoto", data={"chat_id": CHANNEL},
                        files={"photo": ("s.png", strip, "image/png")})
    assert wide.json()["description"] == "Bad Request: PHOTO_INVALID_DIMENSIONS"
    junk = sandbox.call("sendVideo", data={"chat_id": CHANNEL},
                        files={"video": ("v.mp4", b"not a video" * 10, "video/mp4")})
    assert junk.status_code == 400
    big = sandbox.call("sendPhoto", data={"chat_id": CHANNEL},
                       files={"photo": ("b.jpg", b"\xff\xd8\xff" + bytes(10 * 1024 * 1024),
                                        "image/jpeg")})
    assert big.status_code == 413


def test_replies_need_an_existing_message(sandbox: Sandbox) -> None:
    missing = sandbox.call("sendMessage", json={"chat_id": CHANNEL, "text": "r",
                                                "reply_parameters": {"message_id": 99}})
    assert missing.json()["description"] == "Bad Request: message to be replied not found"
    allowed = sandbox.call("sendMessage", json={
        "chat_id": CHANNEL, "text": "r",
        "reply_parameters": {"message_id": 99, "allow_sending_without_reply": True}})
    assert allowed.json()["ok"] and "reply_to_message" not in allowed.json()["result"]


def test_migrated_groups_answer_with_the_new_chat(sandbox: Sandbox) -> None:
    answer = sandbox.call("sendMessage", json={"chat_id": OLD_GROUP["id"], "text": "x"})
    assert answer.status_code == 400
    assert answer.json()["parameters"] == {"migrate_to_chat_id": OLD_GROUP["migrated_to"]}


def test_flood_control_answers_429_with_retry_after(sandbox: Sandbox) -> None:
    sandbox.config(flood_limit=1, flood_window_s=30)
    assert sandbox.call("sendMessage", json={"chat_id": CHANNEL, "text": "1"}).json()["ok"]
    refused = sandbox.call("sendMessage", json={"chat_id": CHANNEL, "text": "2"}).json()
    assert refused["error_code"] == 429
    assert refused["parameters"]["retry_after"] == 30
    assert refused["description"] == "Too Many Requests: retry after 30"
    sandbox.advance(31)
    assert sandbox.call("sendMessage", json={"chat_id": CHANNEL, "text": "2"}).json()["ok"]


def test_delete_messages_skips_missing_ids_and_keeps_the_48_hour_rule(
        sandbox: Sandbox) -> None:
    for text in ("a", "b"):
        sandbox.call("sendMessage", json={"chat_id": CHANNEL, "text": text})
    sandbox.advance(49 * 3600)
    sandbox.call("sendMessage", json={"chat_id": CHANNEL, "text": "c"})
    old = sandbox.call("deleteMessages", json={"chat_id": CHANNEL, "message_ids": [1, 3]})
    assert old.json()["description"] == "Bad Request: message can't be deleted for everyone"
    assert sandbox.call("deleteMessages", json={"chat_id": CHANNEL, "message_ids": [3, 42]}
                        ).json() == {"ok": True, "result": True}
    assert [m["text"] for m in sandbox.messages()] == ["a", "b"]


def test_files_by_url_have_smaller_limits_than_uploads(sandbox: Sandbox, tmp_path: Path,
                                                      media: Callable[[str], MediaFile]
                                                      ) -> None:
    mp4 = b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom"
    make_sparse_file(tmp_path / "big.mp4", 21 * 1024 * 1024, head=mp4)
    (tmp_path / "photo.jpg").write_bytes(media("photo.jpg").path.read_bytes())
    with serve_directory(tmp_path) as files:
        by_url = sandbox.call("sendVideo", json={"chat_id": CHANNEL,
                                                 "video": f"{files}/big.mp4"}).json()
        assert by_url["ok"] is False and "too big" in by_url["description"]
        photo = sandbox.call("sendPhoto", json={"chat_id": CHANNEL,
                                                "photo": f"{files}/photo.jpg"}).json()
        assert photo["ok"] and photo["result"]["photo"]["width"] == 600
    with (tmp_path / "big.mp4").open("rb") as fh:  # 21 MB is within the 50 MB upload limit
        uploaded = sandbox.call("sendVideo", data={"chat_id": CHANNEL},
                                files={"video": ("big.mp4", fh, "video/mp4")}).json()
    assert uploaded["ok"] is True
    # a file_id is sent again without uploading
    again = sandbox.call("sendVideo", json={"chat_id": CHANNEL,
                                            "video": uploaded["result"]["video"]["file_id"]})
    assert again.json()["result"]["video"]["file_size"] == 21 * 1024 * 1024
    missing = sandbox.call("sendPhoto", json={"chat_id": CHANNEL, "photo": "no-such-id"})
    assert missing.json()["description"] == ("Bad Request: wrong file identifier/HTTP URL "
                                             "specified")
