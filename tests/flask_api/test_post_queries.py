"""GET /posts by time (``from``/``to``), ``accountId`` as another name of ``channelId``,
``sort``, and unknown query parameters refused (on every operation)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest

from .conftest import Api


def _at(hours: float) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


def _texts(api: Api, query: str) -> list[str]:
    response = api.get("/posts?" + query)
    assert response.status_code == 200, response.get_json()
    return [p["text"] for p in response.get_json()["items"]]


def _three(api: Api) -> None:
    api.create(text="in five hours", scheduledAt=_at(5))
    api.create(text="now")  # goes out when it was created
    api.create(text="in two hours", scheduledAt=_at(2))


def test_from_and_to_filter_on_the_schedule_or_the_creation(api: Api) -> None:
    _three(api)
    api.create(org=api.other, text="someone else's", accountIds=[api.other.accounts["x"]])
    assert _texts(api, f"from={quote(_at(1))}") == ["in two hours", "in five hours"]
    assert _texts(api, f"to={quote(_at(3))}") == ["in two hours", "now"]
    assert _texts(api, f"from={quote(_at(-1))}&to={quote(_at(1))}") == ["now"]
    body = api.get(f"/posts?from={quote(_at(1))}&limit=1").get_json()
    assert (body["total"], body["hasMore"]) == (2, True)


def test_an_offset_whose_plus_arrived_as_a_space_still_counts(sqlite_api: Api) -> None:
    _three(sqlite_api)
    later = (datetime.now(UTC) + timedelta(hours=1)).astimezone(
        __import__("zoneinfo").ZoneInfo("Asia/Kolkata")).isoformat()
    assert "+05:30" in later
    # an unencoded "+" in a query string reads as a space
    assert _texts(sqlite_api, "from=" + later.replace("+", "%20")) == \
        _texts(sqlite_api, "from=" + quote(later)) == ["in two hours", "in five hours"]
    # no offset: UTC
    naive = (datetime.now(UTC) + timedelta(hours=1)).replace(tzinfo=None).isoformat()
    assert _texts(sqlite_api, "from=" + naive) == ["in two hours", "in five hours"]


def test_sort_by_creation_or_schedule_both_ways(api: Api) -> None:
    _three(api)
    assert _texts(api, "") == ["in two hours", "now", "in five hours"]
    assert _texts(api, "sort=-createdAt") == ["in two hours", "now", "in five hours"]
    assert _texts(api, "sort=createdAt") == ["in five hours", "now", "in two hours"]
    assert _texts(api, "sort=scheduledAt") == ["now", "in two hours", "in five hours"]
    assert _texts(api, "sort=-scheduledAt") == ["in five hours", "in two hours", "now"]
    assert _texts(api, "sort=scheduledAt&limit=1&page=2") == ["in two hours"]


def test_account_id_is_another_name_of_channel_id(api: Api) -> None:
    api.create(text="on x")
    api.create(text="on facebook", accountIds=[api.org.accounts["facebook"]])
    facebook = api.org.accounts["facebook"]
    assert _texts(api, f"accountId={facebook}") == _texts(api, f"channelId={facebook}") == \
        ["on facebook"]
    assert _texts(api, f"accountId={facebook}&channelId={facebook}") == ["on facebook"]
    response = api.get(f"/posts?accountId={facebook}&channelId={api.org.accounts['x']}")
    assert response.status_code == 400
    assert [d["path"] for d in response.get_json()["details"]] == ["accountId"]
    # another organization's account: nothing of it is shown
    assert _texts(api, f"accountId={api.other.accounts['x']}") == []


@pytest.mark.parametrize(("query", "path"), [
    ("from=yesterday", "from"), ("to=2026-13-01T00:00:00Z", "to"), ("sort=newest", "sort"),
    ("sort=text", "sort"), ("from=2026-05-02T00:00:00Z&to=2026-05-01T00:00:00Z", "to"),
])
def test_bad_time_and_sort_values_are_400(sqlite_api: Api, query: str, path: str) -> None:
    response = sqlite_api.get("/posts?" + query)
    assert response.status_code == 400, response.get_json()
    body = response.get_json()
    assert body["error"] == "VALIDATION_ERROR"
    assert [d["path"] for d in body["details"]] == [path]


def test_an_unknown_query_parameter_is_a_400_naming_it(api: Api) -> None:
    api.create(text="one")
    response = api.get("/posts?stauts=DRAFT")
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "VALIDATION_ERROR"
    assert "stauts" in body["message"]
    assert [d["path"] for d in body["details"]] == ["stauts"]
    assert "status" in body["details"][0]["message"]  # the known names are listed
    two = api.get("/posts?since=x&limit=1&until=y").get_json()
    assert [d["path"] for d in two["details"]] == ["since", "until"]


@pytest.mark.parametrize("path", ["/accounts?plaform=x", "/posts/post_x?verbose=1",
                                  "/auth/me?x=1", "/api-keys?all=1"])
def test_every_operation_refuses_unknown_query_parameters(sqlite_api: Api, path: str) -> None:
    if path.startswith("/api-keys"):
        login = sqlite_api.client.post("/api/v1/auth/login", json={
            "email": sqlite_api.org.email, "password": "correct horse battery"})
        assert login.status_code == 200
        response = sqlite_api.client.get("/api/v1" + path)
    else:
        response = sqlite_api.get(path)
    assert response.status_code == 400, response.get_json()
    name = path.split("?")[1].split("=")[0]
    assert [d["path"] for d in response.get_json()["details"]] == [name]


def test_authentication_comes_before_the_query_check(sqlite_api: Api) -> None:
    response = sqlite_api.client.get("/api/v1/posts?stauts=DRAFT")
    assert response.status_code == 401


def test_the_openapi_document_lists_the_new_parameters(sqlite_api: Api) -> None:
    doc = sqlite_api.client.get("/api/v1/openapi.json").get_json()
    params = {p["name"]: p for p in doc["paths"]["/posts"]["get"]["parameters"]}
    assert {"from", "to", "accountId", "channelId", "sort"} <= set(params)
    assert params["from"]["schema"] == {"type": "string", "format": "date-time"}
    assert params["sort"]["schema"]["enum"] == ["-createdAt", "createdAt", "-scheduledAt",
                                                "scheduledAt"]
    assert params["sort"]["schema"]["default"] == "-createdAt"
    for item in doc["paths"].values():
        for operation in item.values():
            assert "400" in operation["responses"]
