"""Bluesky's text units and facets: graphemes, UTF-8 bytes, byte offsets."""

from __future__ import annotations

import pytest
from chat33_bluesky import richtext
from chat33_bluesky.richtext import LINK, MENTION, TAG, detect, facets, graphemes, utf8_length

# the official rich-text guide's example (platforms-more.md §1.5)
VECTOR = ("✨ example mentioning @atproto.com to share the URL 👨‍❤️‍👨 "
          "https://en.wikipedia.org/wiki/CBOR.")
FAMILY = "👨‍❤️‍👨"


def known(handle: str) -> str | None:
    return {"atproto.com": "did:plc:ewvi7nxzyoun6zhxrhs64oiz"}.get(handle)


def test_a_zwj_sequence_is_one_grapheme_of_six_code_points_and_twenty_bytes() -> None:
    assert graphemes(FAMILY) == 1
    assert len(FAMILY) == 6
    assert utf8_length(FAMILY) == 20


@pytest.mark.parametrize(("text", "count"), [
    ("hello", 5),
    ("🇵🇹🇧🇷", 2),               # regional-indicator pairs are flags
    ("e\u0301", 1),              # e + combining acute accent
    ("日本語のテキスト", 8),       # CJK: one grapheme each, three bytes each
    ("👍🏽", 1),                  # emoji + skin tone modifier
    ("\r\n", 1),                 # CR LF is one cluster
])
def test_graphemes_are_extended_grapheme_clusters(text: str, count: int) -> None:
    assert graphemes(text) == count


def test_the_guide_vector_gives_the_documented_byte_offsets() -> None:
    assert (len(VECTOR), utf8_length(VECTOR)) == (93, 109)
    result = facets(VECTOR, known)
    assert result == [
        {"index": {"byteStart": 23, "byteEnd": 35},
         "features": [{"$type": MENTION, "did": "did:plc:ewvi7nxzyoun6zhxrhs64oiz"}]},
        {"index": {"byteStart": 74, "byteEnd": 108},
         "features": [{"$type": LINK, "uri": "https://en.wikipedia.org/wiki/CBOR"}]},
    ]


def test_byte_offsets_cover_exactly_the_facet_text_after_multibyte_characters() -> None:
    text = "日本 👨‍❤️‍👨 #タグ see https://example.com/ü?q=1 ✨ @atproto.com"
    encoded = text.encode()
    found = facets(text, known)
    covered = [encoded[f["index"]["byteStart"]:f["index"]["byteEnd"]].decode() for f in found]
    assert covered == ["#タグ", "https://example.com/ü?q=1", "@atproto.com"]


def test_an_unknown_handle_stays_plain_text() -> None:
    assert facets("hi @nobody.example and #tag", lambda handle: None) == [
        {"index": {"byteStart": 23, "byteEnd": 27}, "features": [{"$type": TAG, "tag": "tag"}]}]


@pytest.mark.parametrize(("text", "tags"), [
    ("#one #two", ["one", "two"]),
    ("end of sentence #tag.", ["tag"]),        # trailing punctuation is not part of it
    ("#123 #2026goals", ["2026goals"]),        # digits only are not a tag
    ("mid#word is not a tag", []),
    ("\uff03fullwidth", ["fullwidth"]),        # the full-width number sign
    ("#\ufe0f\u20e3 keycap", []),              # the keycap emoji is not a tag
    ("#" + "a" * 64, ["a" * 64]),
    ("#" + "a" * 65, []),                      # over 64 graphemes
])
def test_tags(text: str, tags: list[str]) -> None:
    assert [s.value for s in detect(text) if s.kind == TAG] == tags


@pytest.mark.parametrize(("text", "url"), [
    ("see https://example.com.", "https://example.com"),
    ("(see https://example.com/a)", "https://example.com/a"),
    ("https://en.wikipedia.org/wiki/Python_(language) ok",
     "https://en.wikipedia.org/wiki/Python_(language)"),
    ("quoted 'https://example.com/x'!", "https://example.com/x"),
])
def test_links_lose_the_punctuation_that_ends_the_sentence(text: str, url: str) -> None:
    assert [s.value for s in detect(text) if s.kind == LINK] == [url]


def test_a_hash_or_at_inside_a_link_is_not_a_second_facet() -> None:
    spans = detect("go https://example.com/#frag and https://example.com/@user")
    assert [s.kind for s in spans] == [LINK, LINK]


def test_mentions_need_a_domain_handle_after_a_space_or_the_start() -> None:
    spans = detect("@alice.bsky.social hi me@mail.example (@bob.test) @nodot @x.y.")
    assert [s.value for s in spans if s.kind == MENTION] == [
        "alice.bsky.social", "bob.test", "x.y"]


def test_handles_are_listed_once_in_order() -> None:
    assert richtext.handles("@b.test @a.test @b.test") == ["b.test", "a.test"]


def test_lone_surrogates_are_not_utf8() -> None:
    with pytest.raises(UnicodeEncodeError):
        utf8_length("bad \ud800 text")
