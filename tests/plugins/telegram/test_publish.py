"""Publishing against the Telegram sandbox over real HTTP on loopback: messages, photos,
videos, albums, threads, options, chats by id and by @username."""

from __future__ import annotations

from collections.abc import Callable

from chat33_telegram.sandbox import DEMO_GROUP

from chat33_core.platforms import MediaFile

from .conftest import CHANNEL_ID, Sandbox, account


def test_a_text_message_is_sent_to_the_channel_by_username(sandbox: Sandbox) -> None:
    ctx = sandbox.context(["hello 😀 world"])
    result = sandbox.platform.publish(ctx)
    [message] = sandbox.messages()
    assert message["text"] == "hello 😀 world"
    assert result.first.external_id == str(message["message_id"]) == "1"
    assert result.first.external_url == "https://t.me/chat33demo/1"
    assert result.first.post_id == ctx.items[0].post_id
    assert ctx.checkpoints.load()["posted"][0]["ids"] == [1]


def test_a_numeric_chat_id_and_its_private_link(sandbox: Sandbox) -> None:
    group = DEMO_GROUP["id"]
    ctx = sandbox.context(["to the group"], account=account(external_id=str(group)))
    result = sandbox.platform.publish(ctx)
    assert [m["text"] for m in sandbox.messages(group)] == ["to the group"]
    assert result.first.external_url == f"https://t.me/c/{str(group)[4:]}/1"


def test_message_ids_are_counted_per_chat(sandbox: Sandbox) -> None:
    sandbox.platform.publish(sandbox.context(["one"]))
    sandbox.platform.publish(sandbox.context(["two"]))
    other = sandbox.platform.publish(sandbox.context(
        ["elsewhere"], account=account(external_id=str(DEMO_GROUP["id"]))))
    assert [m["message_id"] for m in sandbox.messages()] == [1, 2]
    assert other.first.external_id == "1"


def test_a_photo_is_uploaded_with_its_caption(sandbox: Sandbox,
                                              media: Callable[[str], MediaFile]) -> None:
    photo = media("photo.jpg")
    sandbox.platform.publish(sandbox.context(["a caption"], media=[[photo]]))
    [message] = sandbox.messages()
    assert message["caption"] == "a caption"
    assert message["photo"]["file_size"] == photo.info.size
    assert (message["photo"]["width"], message["photo"]["height"]) == (600, 400)
    assert message["photo"]["format"] == "JPEG"


def test_a_video_is_uploaded(sandbox: Sandbox, media: Callable[[str], MediaFile]) -> None:
    clip = media("clip.mp4")
    sandbox.platform.publish(sandbox.context([None], media=[[clip]]))
    [message] = sandbox.messages()
    assert message["video"]["file_size"] == clip.info.size
    assert "caption" not in message


def test_an_album_is_one_media_group_with_the_caption_on_the_first(
        sandbox: Sandbox, media: Callable[[str], MediaFile]) -> None:
    files = [media("photo.jpg"), media("clip.mp4"), media("photo2.png")]
    result = sandbox.platform.publish(sandbox.context(["album"], media=[files]))
    messages = sandbox.messages()
    assert [sorted(set(m) & {"photo", "video"}) for m in messages] == [
        ["photo"], ["video"], ["photo"]]
    assert [m.get("caption") for m in messages] == ["album", None, None]
    assert len({m["media_group_id"] for m in messages}) == 1
    assert result.first.external_id == "1,2,3"
    assert result.first.extra["messageIds"] == [1, 2, 3]


def test_a_thread_replies_to_the_previous_item(sandbox: Sandbox,
                                               media: Callable[[str], MediaFile]) -> None:
    events: list[tuple[str, str, dict[str, object]]] = []
    ctx = sandbox.context(["first", "second with an album", "third"],
                          media=[[], [media("photo.jpg"), media("photo2.png")]], events=events)
    result = sandbox.platform.publish(ctx)
    assert [r.external_id for r in result.receipts] == ["1", "2,3", "4"]
    assert [r.post_id for r in result.receipts] == [i.post_id for i in ctx.items]
    by_id = {m["message_id"]: m for m in sandbox.messages()}
    assert "reply_to_message" not in by_id[1]
    assert by_id[2]["reply_to_message"]["message_id"] == 1
    assert by_id[4]["reply_to_message"]["message_id"] == 2  # the album's first message
    assert [e for e, _, _ in events].count("telegram.posted") == 3


def test_options_reach_the_bot_api(sandbox: Sandbox, media: Callable[[str], MediaFile]
                                   ) -> None:
    config = {"telegram": {"disableNotification": True, "protectContent": True,
                           "disableLinkPreview": True, "hasSpoiler": True,
                           "messageThreadId": 5}}
    sandbox.platform.publish(sandbox.context(["text https://example.com", "photo"],
                                             media=[[], [media("photo.jpg")]],
                                             platform_config=config))
    text, photo = sandbox.messages()
    assert text["sent_with"] == {"disable_notification": True, "protect_content": True,
                                 "message_thread_id": 5,
                                 "link_preview_options": {"is_disabled": True}}
    # multipart fields arrive as text, as they do at Telegram
    assert photo["sent_with"] == {"disable_notification": True, "protect_content": True,
                                  "message_thread_id": "5", "has_spoiler": True}


def test_a_migrated_group_is_followed_to_its_supergroup(sandbox: Sandbox) -> None:
    from chat33_telegram.sandbox import OLD_GROUP

    ctx = sandbox.context(["one", "two"], account=account(external_id=str(OLD_GROUP["id"])))
    result = sandbox.platform.publish(ctx)
    new = OLD_GROUP["migrated_to"]
    assert [m["text"] for m in sandbox.messages(new)] == ["one", "two"]
    assert result.first.extra["chatId"] == new
    assert ctx.checkpoints.load()["chatId"] == new
    assert sandbox.messages(CHANNEL_ID) == []
