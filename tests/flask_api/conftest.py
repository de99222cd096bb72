"""Fixtures for the REST API: a real core on SQLite and PostgreSQL, the Flask test client,
an organization with a user, an API key and connected channels (the real plugins)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from attrs import define, field
from chat33_flask import create_app
from flask import Flask
from flask.testing import FlaskClient

from chat33_core.models import Credentials
from chat33_core.service import Chat33

from .openapi_check import Conformance

PASSWORD = "correct horse battery"


@define
class Org:
    """One organization as a test sees it."""

    id: str
    user_id: str
    email: str
    key: str
    accounts: dict[str, str] = field(factory=dict)  # platform -> account id

    @property
    def headers(self) -> dict[str, str]:
        return {"x-api-key": self.key}


class CheckedClient(FlaskClient):
    """The Flask test client; every answer of the API is checked against the OpenAPI
    document the app serves (documented status, body schema, required headers)."""

    conformance: Conformance | None = None

    def open(self, *args: Any, **kwargs: Any) -> Any:
        response = super().open(*args, **kwargs)
        request = response.request
        if self.conformance is None and request.path != "/api/v1/openapi.json":
            doc = super().open("/api/v1/openapi.json").get_json()
            self.conformance = Conformance(doc)
        if self.conformance is not None:
            self.conformance.check(request.method, request.path, response)
        return response


@define
class Api:
    app: Flask
    core: Chat33
    client: FlaskClient
    org: Org
    other: Org

    def _headers(self, org: Org | None, kw: dict[str, Any]) -> dict[str, str]:
        return {**(org or self.org).headers, **kw.pop("headers", {})}

    def get(self, path: str, org: Org | None = None, **kw: Any) -> Any:
        return self.client.get("/api/v1" + path, headers=self._headers(org, kw), **kw)

    def post(self, path: str, json: Any = None, org: Org | None = None, **kw: Any) -> Any:
        return self.client.post("/api/v1" + path, json=json, headers=self._headers(org, kw),
                                **kw)

    def patch(self, path: str, json: Any = None, org: Org | None = None, **kw: Any) -> Any:
        return self.client.patch("/api/v1" + path, json=json, headers=self._headers(org, kw),
                                 **kw)

    def delete(self, path: str, org: Org | None = None, **kw: Any) -> Any:
        return self.client.delete("/api/v1" + path, headers=self._headers(org, kw), **kw)

    def create(self, org: Org | None = None, **body: Any) -> Any:
        """POST /posts on the org's X account unless ``accountIds`` is given; 201 expected."""
        org = org or self.org
        body.setdefault("accountIds", [org.accounts["x"]])
        body.setdefault("text", "hello from the tests")
        response = self.post("/posts", body, org=org)
        assert response.status_code == 201, response.get_json()
        return response.get_json()


@pytest.fixture(autouse=True, scope="session")
def _hash_each_password_once() -> Iterator[None]:
    """Argon2 costs ~0.6 s per hash on purpose; the tests make dozens of users with one
    password, so each distinct password is hashed (for real) once per session."""
    import chat33_core.identity as identity

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(identity, "hash_password", cache(identity.hash_password))
        yield


def make_org(core: Chat33, name: str) -> Org:
    email = f"{name.lower()}@example.com"
    user = core.create_user(email, PASSWORD, name)
    _, raw = core.create_api_key(user.org_id, user.id, "tests")
    org = Org(id=user.org_id, user_id=user.id, email=email, key=raw)
    for platform in ("x", "instagram", "facebook", "tiktok", "youtube"):
        account = core.add_account(user.org_id, platform, f"{name} on {platform}",
                                   username=f"{name.lower()}_{platform}",
                                   external_id=f"ext-{platform}",
                                   credentials=Credentials(access_token="token-" + platform))
        org.accounts[platform] = account.id
    return org


def make_core(settings: Any, **limits: tuple[int, timedelta]) -> Chat33:
    core = Chat33(settings, rate_limits=limits or None)
    core.store.migrate()
    return core


def make_app(core: Chat33) -> Flask:
    app = create_app({"CHAT33_CORE": core, "TESTING": True})
    app.test_client_class = CheckedClient
    return app


@contextmanager
def two_apps_on(settings: Any, limits: dict[str, tuple[int, timedelta]]
                ) -> Iterator[tuple[list[FlaskClient], Org]]:
    """Two app instances with separate cores on one database (as two processes would
    be), with ``limits`` as their rate limits, and an organization."""
    first = make_core(settings, **limits)
    second = make_core(settings, **limits)
    try:
        org = make_org(first, "Acme")
        yield [make_app(first).test_client(), make_app(second).test_client()], org
    finally:
        first.store.dispose()
        second.store.dispose()


@pytest.fixture
def api(db_url: str, settings_for: Any, tmp_path: Path) -> Iterator[Api]:
    core = make_core(settings_for(db_url))
    app = make_app(core)
    yield Api(app=app, core=core, client=app.test_client(), org=make_org(core, "Acme"),
              other=make_org(core, "Rival"))
    core.store.dispose()


@pytest.fixture
def sqlite_api(settings_for: Any, tmp_path: Path) -> Iterator[Api]:
    """The API on SQLite only (for tests about the adapter, not the database)."""
    core = make_core(settings_for(f"sqlite:///{tmp_path / 'api.db'}"))
    app = make_app(core)
    yield Api(app=app, core=core, client=app.test_client(), org=make_org(core, "Acme"),
              other=make_org(core, "Rival"))
    core.store.dispose()
