"""Bluesky's text units and rich text (platforms-more.md §1.4, §1.5).

* Length: a post's ``text`` is limited to 300 **extended grapheme clusters** and 3,000
  **UTF-8 bytes** (the lexicon's ``maxGraphemes`` / ``maxLength``).
* Facets: links, mentions and hashtags are not found by Bluesky; the client sends them as
  ``facets`` whose ``index`` is a zero-based, end-exclusive range of **UTF-8 byte**
  offsets into the text. Mentions carry a DID, so they are detected here and resolved
  (``com.atproto.identity.resolveHandle``) by the caller at publish time.

Detection follows the rules of Bluesky's own rich-text helper in spirit (written from the
posts guide, not copied): links start with ``http://`` or ``https://`` and lose trailing
punctuation; a mention is ``@`` plus a domain-like handle after a space, an opening
bracket or the start; a tag is ``#`` (or the full-width number sign U+FF03) after a space or the
start, not only digits, at most 64 graphemes. Bare domains (``example.com``) are left as
plain text: telling them from file names needs a TLD list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import regex
from attrs import frozen

MAX_TAG_GRAPHEMES = 64
MAX_TAG_BYTES = 640

_GRAPHEME = regex.compile(r"\X")
_LINK = regex.compile(r"(?<![\w/.@#])https?://[^\s<>\"]+", regex.IGNORECASE)
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
_MENTION = regex.compile(rf"(?:^|(?<=[\s(\[]))@({_LABEL}(?:\.{_LABEL})+)(?![\w.-]*\w)")
# invisible characters that end a tag like a space does
_TAG_STOP = "\u00ad\u2060\u200a\u200b\u200c\u200d\u20e2"
_TAG = regex.compile(rf"(?:^|(?<=\s))[#\uff03](?!\ufe0f)([^\s{_TAG_STOP}]+)")
_TRAILING = regex.compile(r"[\p{P}]+$")
_CLOSERS = {")": "(", "]": "[", "}": "{"}

LINK = "app.bsky.richtext.facet#link"
MENTION = "app.bsky.richtext.facet#mention"
TAG = "app.bsky.richtext.facet#tag"


def graphemes(text: str) -> int:
    """The number of extended grapheme clusters (👨‍❤️‍👨 is one)."""
    return len(_GRAPHEME.findall(text))


def utf8_length(text: str) -> int:
    """Length in UTF-8 bytes. Raises ``UnicodeEncodeError`` on lone surrogates."""
    return len(text.encode("utf-8"))


@frozen
class Span:
    """A detected facet before resolution: code point range, kind and value (a URL, a
    handle without ``@`` or a tag without ``#``)."""

    start: int
    end: int
    kind: str  # LINK, MENTION or TAG
    value: str


def _trim_link(url: str) -> str:
    """Drop trailing punctuation that ends a sentence, and a closing bracket that the
    URL did not open (``(see https://a.example/x)``)."""
    while url:
        last = url[-1]
        unopened = last in _CLOSERS and url.count(last) > url.count(_CLOSERS[last])
        if last in ".,;:!?'\"" or unopened:
            url = url[:-1]
        else:
            break
    return url


def detect(text: str) -> list[Span]:
    """Links, mentions and tags in ``text``, in order, never overlapping (a link wins)."""
    spans: list[Span] = []
    for match in _LINK.finditer(text):
        url = _trim_link(match.group(0))
        if len(url) > len("https://"):
            spans.append(Span(match.start(), match.start() + len(url), LINK, url))

    def free(start: int, end: int) -> bool:
        return all(end <= s.start or start >= s.end for s in spans)

    for match in _MENTION.finditer(text):
        if free(match.start(), match.end()):
            spans.append(Span(match.start(), match.end(), MENTION, match.group(1).lower()))
    for match in _TAG.finditer(text):
        tag = _TRAILING.sub("", match.group(1))
        end = match.start(1) + len(tag)
        if (not tag or tag.isdigit() or graphemes(tag) > MAX_TAG_GRAPHEMES
                or utf8_length(tag) > MAX_TAG_BYTES or not free(match.start(), end)):
            continue
        spans.append(Span(match.start(), end, TAG, tag))
    return sorted(spans, key=lambda s: s.start)


def byte_offsets(text: str, spans: Iterable[Span]) -> list[tuple[int, int]]:
    """UTF-8 byte ``(start, end)`` of each span (code point ranges in ``text``)."""
    return [(utf8_length(text[:s.start]), utf8_length(text[:s.end])) for s in spans]


def facets(text: str, resolve: Callable[[str], str | None]) -> list[dict[str, Any]]:
    """The ``facets`` of a post record. ``resolve(handle)`` returns the DID of a handle,
    or None to leave that mention as plain text (an unknown handle)."""
    spans = detect(text)
    out: list[dict[str, Any]] = []
    for span, (start, end) in zip(spans, byte_offsets(text, spans), strict=True):
        feature: dict[str, Any]
        if span.kind == LINK:
            feature = {"$type": LINK, "uri": span.value}
        elif span.kind == TAG:
            feature = {"$type": TAG, "tag": span.value}
        else:
            did = resolve(span.value)
            if not did:
                continue
            feature = {"$type": MENTION, "did": did}
        out.append({"index": {"byteStart": start, "byteEnd": end}, "features": [feature]})
    return out


def handles(text: str) -> Sequence[str]:
    """The handles mentioned in ``text`` (to resolve before building facets)."""
    return list(dict.fromkeys(s.value for s in detect(text) if s.kind == MENTION))
