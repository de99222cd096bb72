"""Deleting published posts and videos: ``DELETE /{id}``."""

from __future__ import annotations

import pytest

from chat33_core.errors import ReconnectRequired
from chat33_core.models import Credentials, MediaType
from chat33_core.platforms import DeleteContext

from .conftest import FB


def delete_ctx(fb: FB, *ids: str, token: str = "sandbox-token",
               events: list | None = None) -> DeleteContext:
    sink = events if events is not None else []
    return DeleteContext(account=fb.account, credentials=Credentials(access_token=token),
                         http=fb.http, settings=fb.settings, external_ids=list(ids),
                         log=lambda e, m, **d: sink.append((e, m, d)))


def test_delete_removes_a_post_from_the_page(fb: FB) -> None:
    post_id = fb.platform.publish(fb.ctx("To delete")).first.external_id
    fb.platform.delete(delete_ctx(fb, post_id))
    state = fb.state()
    assert state["posts"] == [] and post_id in state["deleted"]


def test_delete_removes_a_video_and_its_post(fb: FB) -> None:
    video_id = fb.platform.publish(fb.ctx("Video to delete", media=fb.media("clip.mp4"),
                                          media_type=MediaType.VIDEO)).first.external_id
    fb.platform.delete(delete_ctx(fb, video_id))
    state = fb.state()
    assert state["videos"] == [] and state["posts"] == [] and video_id in state["deleted"]


def test_deleting_again_counts_as_deleted(fb: FB) -> None:
    post_id = fb.platform.publish(fb.ctx("Twice deleted")).first.external_id
    fb.platform.delete(delete_ctx(fb, post_id))
    events: list = []
    fb.platform.delete(delete_ctx(fb, post_id, events=events))
    assert [e[0] for e in events] == ["facebook.already_deleted"]


def test_delete_with_a_revoked_token_requires_reconnecting(fb: FB) -> None:
    post_id = fb.platform.publish(fb.ctx("Kept")).first.external_id
    fb.configure(revoked_tokens=["old"])
    with pytest.raises(ReconnectRequired):
        fb.platform.delete(delete_ctx(fb, post_id, token="old"))
    assert len(fb.state()["posts"]) == 1
