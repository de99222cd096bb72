"""The API's JSON shape: a post renders as documented, from its Post or from its row."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

import attrs
from hypothesis import given
from hypothesis import strategies as st

from chat33_core.models import MediaType, Post, PostStatus
from chat33_core.serialization import (
    camel,
    converter,
    isoformat,
    post_json,
    post_rows,
    utc_text,
)

texts = st.none() | st.text(max_size=40)
instants = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2999, 12, 31),
                        timezones=st.timezones())
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**9, 10**9) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                  max_size=3),
    max_leaves=8)
posts = st.builds(
    Post, id=st.text(min_size=1, max_size=20), org_id=st.text(max_size=10),
    account_id=st.text(max_size=20), platform=st.sampled_from(["x", "instagram", "youtube"]),
    account_name=st.text(max_size=20), created_by=st.text(max_size=10),
    status=st.sampled_from(PostStatus), text=texts,
    media_urls=st.lists(st.text(max_size=30), max_size=3),
    media_ids=st.lists(st.text(max_size=10), max_size=3),
    media_type=st.none() | st.sampled_from(MediaType), cover_image_url=texts,
    platform_config=st.dictionaries(st.text(max_size=8), json_values, max_size=3),
    callback_url=texts, scheduled_at=st.none() | instants, timezone=st.text(max_size=20),
    group_id=texts, thread_id=texts, thread_position=st.integers(0, 50),
    publish_with_head=st.booleans(), published_at=st.none() | instants,
    external_post_id=texts, external_post_url=texts, error_message=texts,
    retry_count=st.integers(0, 100), next_attempt_at=st.none() | instants,
    lease_owner=texts, lease_expires_at=st.none() | instants, created_at=instants,
    updated_at=instants)


def _row(post: Post, enums_as_values: bool) -> list[Any]:
    """The post as ``Store.list_post_rows(..., utc_text=True)`` gives it."""
    row = [getattr(post, name) for name in post_rows.columns]
    row = [utc_text(v) if isinstance(v, datetime) else v for v in row]
    if enums_as_values:  # as the store reads them
        row = [v.value if isinstance(v, (PostStatus, MediaType)) else v for v in row]
    return row


#: the Post attributes the API never shows (``account_id`` is shown as ``channelId``)
PRIVATE = ("org_id", "media_ids", "publish_with_head", "lease_owner", "lease_expires_at",
           "account_id")


def _documented(post: Post) -> dict[str, Any]:
    """The API reference's Post, written out from the model: every public attribute in
    camelCase in the model's order (instants as :func:`isoformat`, enums as their
    values), then ``channelId``."""
    out: dict[str, Any] = {}
    for a in attrs.fields(Post):
        if a.name not in PRIVATE:
            value = getattr(post, a.name)
            if isinstance(value, datetime):
                value = isoformat(value)
            elif isinstance(value, enum.Enum):
                value = value.value
            out[camel(a.name)] = value
    out["channelId"] = post.account_id
    return out


@given(post=posts, enums_as_values=st.booleans())
def test_a_post_renders_as_documented_from_its_post_or_its_row(post: Post,
                                                               enums_as_values: bool) -> None:
    expected = _documented(post)
    for got in (post_json(post), post_rows.json(_row(post, enums_as_values)),
                converter.unstructure(post)):
        assert got == expected
        assert list(got) == list(expected), "the same keys in the same order"


def test_post_rows_select_only_what_the_answer_shows() -> None:
    post = Post(id="post_1", org_id="org_1", account_id="chan_1", platform="x",
                account_name="X", created_by="user_1",
                created_at=datetime(2026, 4, 1, tzinfo=UTC))
    assert list(post_rows.keys) == list(converter.unstructure(post))
    assert post_rows.keys[-1] == "channelId"
    assert len(post_rows.columns) == len(post_rows.keys)
    for private in ("org_id", "media_ids", "publish_with_head", "lease_owner",
                    "lease_expires_at"):
        assert private not in post_rows.columns


@given(instant=st.datetimes(timezones=st.timezones()))
def test_instants_are_utc_with_milliseconds_cut_not_rounded(instant: datetime) -> None:
    try:
        utc = instant.astimezone(UTC)
    except OverflowError:  # an instant at the calendar's edge, beyond UTC's range
        return
    assert isoformat(instant) == utc.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
