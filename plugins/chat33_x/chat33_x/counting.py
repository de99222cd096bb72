"""How long X thinks a text is: twitter-text's weighted length, config v3.

X does not count code points. It normalizes the text to NFC, counts every URL as 23, every
emoji sequence (ZWJ sequences and skin tones included) as 2, code points in a few Latin
and punctuation ranges as 1 and everything else (CJK, for instance) as 2. The counting
itself is done by ``twitter-text-parser``, a port of twitter-text that passes the
``WeightedTweetsWithDiscountedEmojiCounterTest`` conformance suite (run in our tests);
this module pins the v3 configuration and lets the limit vary per account (Premium).
"""

from __future__ import annotations

import math
import re
from typing import Any

from attrs import frozen
from twitter_text import parse_tweet

#: twitter-text ``config/v3.json`` (the weights X uses today)
CONFIG_V3: dict[str, Any] = {
    "version": 3,
    "maxWeightedTweetLength": 280,
    "scale": 100,
    "defaultWeight": 200,
    "emojiParsingEnabled": True,
    "transformedURLLength": 23,
    "ranges": [
        {"start": 0, "end": 4351, "weight": 100},
        {"start": 8192, "end": 8205, "weight": 100},
        {"start": 8208, "end": 8223, "weight": 100},
        {"start": 8242, "end": 8247, "weight": 100},
    ],
}

DEFAULT_LIMIT = CONFIG_V3["maxWeightedTweetLength"]
#: X Premium "longer posts" [UNCONFIRMED in the API docs]
PREMIUM_LIMIT = 25_000


@frozen
class TextCount:
    """The weighted length of one text, as X counts it."""

    #: weighted length in characters (the number X shows the user)
    weighted_length: int
    #: the limit it was measured against
    limit: int
    #: True when the text fits and holds no character X refuses
    valid: bool
    #: per mille of the limit used (1000 = exactly full)
    permillage: int
    #: False when the text was too long to be worth counting (length in code points)
    exact: bool = True

    @property
    def too_long(self) -> bool:
        return self.weighted_length > self.limit

    @property
    def has_invalid_characters(self) -> bool:
        """Not valid although short enough: a character X refuses (U+FFFE, U+FEFF, ...)."""
        return not self.valid and not self.too_long and self.weighted_length > 0


def _options(config: dict[str, Any], limit: int) -> dict[str, Any]:
    # twitter-text-parser takes the config with snake_case keys
    return {
        "version": config["version"],
        "max_weighted_tweet_length": limit,
        "scale": config["scale"],
        "default_weight": config["defaultWeight"],
        "emoji_parsing_enabled": config["emojiParsingEnabled"],
        "transformed_url_length": config["transformedURLLength"],
        "ranges": [dict(r) for r in config["ranges"]],
    }


#: line endings as twitter-text counts them (``\r\n`` is one character)
_LINE_ENDINGS = re.compile(r"\r\n|\r|\n")

#: twitter-text extracts no URL longer than this (its extractor's MAX_URL_LENGTH)
MAX_URL_LENGTH = 4096


def count(text: str, limit: int = DEFAULT_LIMIT,
          config: dict[str, Any] | None = None) -> TextCount:
    """Measure ``text`` against ``limit`` weighted characters (v3 weights by default).

    An empty text is not ``valid`` (X refuses a post with neither text nor media); the
    caller decides whether media make it acceptable.

    Counting costs about 20 µs per code point, so a text far beyond any plausible post
    (more than ``max(50 * limit, 20_000) + MAX_URL_LENGTH`` code points) is reported too
    long from its code-point length alone (``exact`` False) instead of being counted for
    seconds.
    """
    if len(text) > max(50 * limit, 20_000) + MAX_URL_LENGTH:
        return TextCount(weighted_length=len(text), limit=limit, valid=False,
                         permillage=len(text) * 1000 // limit, exact=False)
    if (config is None or config is CONFIG_V3) and text.isascii() and "." not in text:
        # the common case, without the parser (whose emoji scan alone costs ~70 µs): under
        # v3 every ASCII character weighs 1, ASCII holds no emoji and no character X
        # refuses, and without a dot no URL (a URL needs a domain with a top-level domain)
        n = len(_LINE_ENDINGS.sub("\n", text))
        return TextCount(weighted_length=n, limit=limit, valid=0 < n <= limit,
                         permillage=math.floor((n / limit) * 1000))
    result = parse_tweet(text, _options(config or CONFIG_V3, limit))
    return TextCount(weighted_length=result.weightedLength, limit=limit, valid=result.valid,
                     permillage=result.permillage)


def weighted_length(text: str) -> int:
    """Weighted length of ``text`` under config v3."""
    return count(text).weighted_length
