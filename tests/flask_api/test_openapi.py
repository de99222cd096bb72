"""The OpenAPI 3.1 document: generated from the route table, complete, and honoured by
the server (schemathesis, in-process WSGI, bounded examples: no 5xx, no schema breach)."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from typing import Any

import jsonschema_rs
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from .conftest import Api, make_app, make_core, make_org

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]
BIG = (10_000, timedelta(hours=1))


def test_document_is_openapi_3_1_with_every_route(sqlite_api: Api) -> None:
    doc = sqlite_api.client.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"] == "3.1.0"
    assert doc["servers"] == [{"url": "/api/v1"}]
    documented = {(m.upper(), "/api/v1" + p) for p, item in doc["paths"].items() for m in item}
    served = set()
    for rule in sqlite_api.app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/") and rule.endpoint != "chat33_openapi":
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
            served |= {(m, path) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert documented == served


def test_document_states_the_contracts_scopes_and_auth(sqlite_api: Api) -> None:
    paths = sqlite_api.client.get("/api/v1/openapi.json").get_json()["paths"]
    scopes = {(m, p): op.get("x-required-scopes") for p, item in paths.items()
              for m, op in item.items()}
    assert scopes[("get", "/accounts")] == ["accounts:read"]
    assert scopes[("post", "/posts")] == ["posts:write"]
    assert scopes[("get", "/posts/{id}/logs")] == ["posts:read"]
    assert scopes[("post", "/media/upload")] == ["media:write"]
    assert paths["/api-keys"]["post"]["security"] == [{"session": []}]
    assert paths["/auth/login"]["post"]["security"] == []
    assert set(paths["/posts"]["post"]["responses"]) == {"201", "400", "401", "403", "413",
                                                          "414", "415", "429", "431", "503"}
    assert "RateLimit-Remaining" in paths["/posts"]["post"]["responses"]["201"]["headers"]


def test_schemas_follow_the_models(sqlite_api: Api) -> None:
    schemas = sqlite_api.client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]
    post = schemas["Post"]
    documented = {"id", "channelId", "groupId", "status", "text", "mediaUrls", "mediaType",
                  "scheduledAt", "publishedAt", "externalPostId", "externalPostUrl",
                  "errorMessage", "retryCount", "createdBy", "createdAt", "platform",
                  "accountName"}
    assert documented <= set(post["properties"])
    assert "orgId" not in post["properties"] and "leaseOwner" not in post["properties"]
    assert schemas["CreatePostRequest"]["required"] == ["accountIds"]
    assert schemas["CreatePostRequest"]["properties"]["timezone"]["default"] == "UTC"
    assert schemas["Platform"]["enum"] == sorted(sqlite_api.core.host.platforms)
    assert {"facebook", "instagram", "tiktok", "x", "youtube"} <= set(schemas["Platform"]["enum"])
    assert set(schemas["PostSummary"]["required"]) == {
        "id", "accountId", "platform", "accountName", "status", "scheduledAt", "createdAt"}


def test_platform_config_is_a_schema_per_platform_from_its_declarations(sqlite_api: Api
                                                                        ) -> None:
    schemas = sqlite_api.client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]
    config = schemas["PlatformConfig"]
    assert config["additionalProperties"] is False
    assert config["properties"]["youtube"] == {
        "$ref": "#/components/schemas/PlatformConfig_youtube"}
    for body in ("CreatePostRequest", "UpdatePostRequest", "Post"):
        assert schemas[body]["properties"]["platformConfig"] == {
            "$ref": "#/components/schemas/PlatformConfig"}
    youtube = schemas["PlatformConfig_youtube"]
    assert youtube["additionalProperties"] is False
    assert youtube["required"] == ["selfDeclaredMadeForKids"]
    assert youtube["properties"]["privacyStatus"]["enum"] == ["public", "unlisted", "private"]
    assert youtube["properties"]["selfDeclaredMadeForKids"]["type"] == "boolean"
    assert youtube["properties"]["tags"] == {
        "type": "array", "items": {"type": "string"},
        "description": youtube["properties"]["tags"]["description"]}
    tiktok = schemas["PlatformConfig_tiktok"]
    assert tiktok["required"] == ["privacyLevel"]
    assert tiktok["properties"]["disableComment"]["default"] is False
    assert schemas["PlatformConfig_x"]["properties"]["poll"]["properties"]["options"]["items"] \
        == {"type": "string"}
    for name in ("facebook", "instagram"):
        assert "firstComment" in schemas[f"PlatformConfig_{name}"]["properties"]


def test_a_body_the_platform_schema_refuses_is_a_400_at_its_path(sqlite_api: Api) -> None:
    response = sqlite_api.post("/posts", {
        "accountIds": [sqlite_api.org.accounts["youtube"]], "text": "Launch",
        "mediaUrls": ["https://cdn.example/v.mp4"],
        "platformConfig": {"youtube": {"privacyStatus": "hidden", "selfDeclaredMadeForKids": "no",
                                       "colour": "red"}}})
    assert response.status_code == 400
    details = {d["path"]: d["message"] for d in response.get_json()["details"]}
    assert details["platformConfig.youtube.privacyStatus"] == \
        "'hidden' is not one of public, unlisted, private"
    assert details["platformConfig.youtube.selfDeclaredMadeForKids"] == \
        "must be true or false, got 'no'"
    assert details["platformConfig.youtube.colour"].startswith("unknown option 'colour'")


def test_the_document_allows_no_body_the_api_refuses_for_its_limits(sqlite_api: Api) -> None:
    """Each of these bodies is a 400 from POST /posts; the document's CreatePostRequest
    must not call it valid (it allowed ``accountIds: []``)."""
    doc = sqlite_api.client.get("/api/v1/openapi.json").get_json()
    schema = doc["components"]["schemas"]["CreatePostRequest"]
    validator = jsonschema_rs.Draft202012Validator({**schema, "components": doc["components"]})
    x = sqlite_api.org.accounts["x"]
    refused = {
        "no account": {"accountIds": []},
        "an empty id": {"accountIds": [""]},
        "an id twice": {"accountIds": [x, x]},
        "51 accounts": {"accountIds": [x] + [f"chan_{i}" for i in range(50)]},
        "21 media URLs": {"accountIds": [x], "mediaUrls": ["http://127.0.0.1:9/a.jpg"] * 21},
        "26 thread items": {"accountIds": [x], "text": "a",
                            "thread": [{"text": f"{i}"} for i in range(26)]},
    }
    for what, body in refused.items():
        assert sqlite_api.post("/posts", body).status_code == 400, what
        assert not validator.is_valid(body), what
    assert validator.is_valid({"accountIds": [x], "text": "fine"})
    key = doc["components"]["schemas"]["CreateApiKeyRequest"]
    assert not jsonschema_rs.Draft202012Validator(key).is_valid({"scopes": []})
    assert not jsonschema_rs.Draft202012Validator(key).is_valid({"name": ""})


def test_the_document_allows_no_empty_upload(sqlite_api: Api) -> None:
    doc = sqlite_api.client.get("/api/v1/openapi.json").get_json()
    upload = doc["paths"]["/media/upload"]["post"]["requestBody"]["content"]
    file_schema = upload["multipart/form-data"]["schema"]["properties"]["file"]
    assert not jsonschema_rs.Draft202012Validator(file_schema).is_valid("")
    response = sqlite_api.post("/media/upload", json=None, content_type="multipart/form-data",
                               data={"file": (io.BytesIO(b""), "empty.jpg")})
    assert response.status_code == 400
    assert not jsonschema_rs.Draft202012Validator(
        doc["components"]["schemas"]["MediaUrlRequest"]).is_valid({"url": ""})


# --- schemathesis -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from chat33_core.config import Settings

    root = tmp_path_factory.mktemp("fuzz")
    core = make_core(Settings.from_env({
        "CHAT33_DATABASE_URL": f"sqlite:///{root / 'fuzz.db'}",
        "CHAT33_SECRET_KEY": "fuzz-secret-key-0123456789abcdef",
        "CHAT33_MEDIA_DIR": str(root / "media"),
        # no private URLs: fuzzed media URLs never reach anything but the address checks
        "CHAT33_ALLOW_PRIVATE_URLS": "0",
    }), **{"posts.create": BIG, "media.upload": BIG, "api_keys.create": BIG})
    org = make_org(core, "Fuzz")
    app = make_app(core)
    client = app.test_client()
    post_id = client.post("/api/v1/posts", json={"accountIds": [org.accounts["x"]],
                                                 "text": "seed"},
                          headers=org.headers).get_json()["posts"][0]["id"]
    yield app, org, post_id
    core.store.dispose()


def _operations() -> list[tuple[str, str, str]]:
    """(mode, method, path) of every documented operation, read from a throwaway app's
    document at collection time so each operation is a test of its own. Negative examples
    (schema-breaking input, which must be refused with a documented 4xx) only where there
    is input to break: a body or query parameters."""
    import tempfile

    from chat33_core.config import Settings
    from chat33_core.service import Chat33

    with tempfile.TemporaryDirectory() as root:
        core = Chat33(Settings.from_env({"CHAT33_DATABASE_URL": f"sqlite:///{root}/doc.db"}))
        doc = make_app(core).test_client().get("/api/v1/openapi.json").get_json()
        core.store.dispose()
    found = []
    for p, item in doc["paths"].items():
        for m, op in item.items():
            found.append(("positive", m.upper(), p))
            if "requestBody" in op or any(q["in"] == "query" for q in op.get("parameters", [])):
                found.append(("negative", m.upper(), p))
    return found


@pytest.mark.parametrize(("mode", "method", "path"), _operations())
def test_server_honours_its_document(fuzz_target: Any, mode: str, method: str, path: str
                                     ) -> None:
    from hypothesis import given
    from schemathesis import GenerationMode

    app, org, post_id = fuzz_target
    api = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operation = api[path][method]
    generation = GenerationMode.POSITIVE if mode == "positive" else GenerationMode.NEGATIVE

    @given(case=operation.as_strategy(generation_mode=generation))
    @settings(max_examples=10, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        ids = case.path_parameters or {}
        # every other example hits a real post, so success answers are checked too
        if path.startswith("/posts/") and len(str(ids.get("id", ""))) % 2:
            case.path_parameters["id"] = post_id
        case.call_and_validate(headers={"x-api-key": org.key}, checks=CHECKS)

    run()
