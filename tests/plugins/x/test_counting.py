"""twitter-text conformance: X's weighted length (config v3) on every case of the suite."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from chat33_x.counting import (
    CONFIG_V3,
    DEFAULT_LIMIT,
    PREMIUM_LIMIT,
    TextCount,
    _options,
    count,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from twitter_text import parse_tweet

HERE = Path(__file__).parent / "conformance"
SUITE = "WeightedTweetsWithDiscountedEmojiCounterTest"


def _cases() -> list[Any]:
    data = yaml.safe_load((HERE / "twitter-text-validate.yml").read_text(encoding="utf-8"))
    cases = data["tests"][SUITE]
    assert len(cases) >= 20, "the conformance suite went missing"
    return [pytest.param(case, id=case["description"]) for case in cases]


def test_pinned_config_is_twitter_text_v3() -> None:
    config = json.loads((HERE / "twitter-text-config-v3.json").read_text(encoding="utf-8"))
    assert config == CONFIG_V3


def test_license_of_the_conformance_data_is_kept_beside_it() -> None:
    assert "Apache License" in (HERE / "LICENSE").read_text(encoding="utf-8")


@pytest.mark.parametrize("case", _cases())
def test_weighted_counter_conformance(case: dict[str, Any]) -> None:
    expected = case["expected"]
    result = count(case["text"])
    assert result.weighted_length == expected["weightedLength"]
    assert result.valid is expected["valid"]
    assert result.permillage == expected["permillage"]


def test_urls_count_23_whatever_their_length() -> None:
    assert count("see https://example.com/" + "a" * 200).weighted_length == 4 + 23


def test_cjk_counts_double_and_emoji_sequences_count_two() -> None:
    assert count("日本").weighted_length == 4
    assert count("\U0001f468\u200d\U0001f469\u200d\U0001f467").weighted_length == 2
    assert count("\U0001f44d\U0001f3fd").weighted_length == 2


def test_text_is_normalized_to_nfc_before_counting() -> None:
    decomposed = "e\u0301" * 280  # 560 code points, 280 characters once composed
    assert count(decomposed).valid


def test_premium_limit_accepts_long_posts() -> None:
    text = "x" * 1000
    assert not count(text, DEFAULT_LIMIT).valid
    result = count(text, PREMIUM_LIMIT)
    assert result.valid and result.weighted_length == 1000 and not result.too_long


def test_absurdly_long_text_is_too_long_without_counting_it_all() -> None:
    result = count("a" * 1_000_000)
    assert result.too_long and not result.valid and not result.exact
    assert result.weighted_length == 1_000_000


ASCII_NO_DOT = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=127,
                                              blacklist_characters="."), max_size=400)


@settings(max_examples=300, deadline=None)
@given(text=ASCII_NO_DOT, limit=st.sampled_from([1, 17, DEFAULT_LIMIT, PREMIUM_LIMIT]))
def test_the_ascii_shortcut_counts_exactly_as_the_parser(text: str, limit: int) -> None:
    parsed = parse_tweet(text, _options(CONFIG_V3, limit))
    assert count(text, limit) == TextCount(weighted_length=parsed.weightedLength, limit=limit,
                                           valid=parsed.valid, permillage=parsed.permillage)


@pytest.mark.parametrize("text", [
    "see http://localhost:8000/x now", "mail me at me@example", "a\r\nb\rc\nd", "",
    "   ", "#tag @user $CASH", "x" * 280, "x" * 281, "\x00\x7f\t"])
def test_the_ascii_shortcut_on_the_edge_cases(text: str) -> None:
    parsed = parse_tweet(text, _options(CONFIG_V3, DEFAULT_LIMIT))
    result = count(text)
    assert (result.weighted_length, result.valid, result.permillage) == (
        parsed.weightedLength, parsed.valid, parsed.permillage)


def test_text_with_a_dot_or_beyond_ascii_goes_to_the_parser() -> None:
    # a URL (it needs a dot) counts 23, an emoji 2: the shortcut must not take these
    assert count("read example.com/" + "a" * 60).weighted_length == 5 + 23
    assert count("ok \U0001F600").weighted_length == 5
