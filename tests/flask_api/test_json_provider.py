"""The app's JSON encoding: orjson's speed, the values Flask's own provider would send."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from chat33_flask.json_provider import OrjsonProvider
from flask import Flask
from flask.json.provider import DefaultJSONProvider

from .conftest import Api


@dataclasses.dataclass
class Point:
    x: int
    y: int


VALUES = [
    {"text": "héllo 👋 \u2028", "n": [1, 2.5, None, True], "nested": {"a": {"b": []}}},
    {"big": 2**70, "negative": -(2**65)},  # beyond orjson's 64 bits
    {"when": datetime(2026, 4, 1, 14, 0, tzinfo=UTC)},  # Flask writes an HTTP date
    {"point": Point(1, 2), "price": Decimal("1.10")},
    {1: "non-string key", "b": "c"},
    ["a", "list", "answer"],
]


@pytest.fixture
def apps() -> tuple[Flask, Flask]:
    plain, ours = Flask("plain"), Flask("ours")
    plain.json.sort_keys = False  # type: ignore[attr-defined]
    ours.json = OrjsonProvider(ours)
    return plain, ours


@pytest.mark.parametrize("value", VALUES)
def test_answers_carry_the_values_flasks_provider_would_send(
        apps: tuple[Flask, Flask], value: object) -> None:
    plain, ours = apps
    with plain.app_context():
        expected = plain.json.response(value)
    with ours.app_context():
        got = ours.json.response(value)
    assert got.mimetype == expected.mimetype == "application/json"
    assert json.loads(got.get_data()) == json.loads(expected.get_data())
    assert got.get_data().endswith(b"\n")
    assert ours.json.loads(ours.json.dumps(value)) == json.loads(plain.json.dumps(value))


def test_unserializable_values_are_refused_as_flask_refuses_them(
        apps: tuple[Flask, Flask]) -> None:
    _, ours = apps
    with ours.app_context(), pytest.raises(TypeError):
        ours.json.response({"x": object()})


def test_debug_answers_are_indented_like_flasks(apps: tuple[Flask, Flask]) -> None:
    _, ours = apps
    ours.debug = True
    with ours.app_context():
        text = ours.json.response({"a": [1]}).get_data(as_text=True)
    assert text == DefaultJSONProvider(ours).dumps({"a": [1]}, indent=2) + "\n"


def test_the_api_answers_with_the_orjson_provider(sqlite_api: Api) -> None:
    assert isinstance(sqlite_api.app.json, OrjsonProvider)
    response = sqlite_api.get("/posts?limit=1")
    assert response.status_code == 200
    assert response.get_json()["items"] == []
