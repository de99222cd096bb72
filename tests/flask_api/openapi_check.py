"""Check real answers against the served OpenAPI document (status documented, body
valid against its schema, documented headers present)."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import jsonschema_rs


class Conformance:
    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.prefix = doc["servers"][0]["url"]
        self._routes = [(re.compile("^" + re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(p)) + "$"),
                         p) for p in doc["paths"]]

    def operation(self, method: str, path: str) -> dict[str, Any] | None:
        path = path.split("?", 1)[0]
        if not path.startswith(self.prefix):
            return None
        rest = path[len(self.prefix):]
        matches = [tpl for rx, tpl in self._routes if rx.match(rest)]
        # a literal path (/posts/validate) wins over a template (/posts/{id}), for every
        # method: GET /posts/validate is not GET /posts/{id} (it is a 405)
        matches.sort(key=lambda t: t.count("{"))
        return self.doc["paths"][matches[0]].get(method.lower()) if matches else None

    @cache  # noqa: B019 - one document per test session
    def _validator(self, key: str) -> Any:
        method, tpl, status = key.split(" ")
        op = self.doc["paths"][tpl][method]
        schema = op["responses"][status]["content"]["application/json"]["schema"]
        return jsonschema_rs.Draft202012Validator({**schema,
                                                   "components": self.doc["components"]})

    def check(self, method: str, path: str, response: Any) -> None:
        op = self.operation(method, path)
        if op is None:
            return
        status = str(response.status_code)
        assert status in op["responses"], (
            f"{method} {path} answered {status}, not documented: {list(op['responses'])}")
        documented = op["responses"][status]
        for name, header in documented.get("headers", {}).items():
            if header.get("required"):
                assert name in response.headers, f"{method} {path} {status} lacks {name}"
        tpl = next(t for t, item in self.doc["paths"].items() if item.get(method.lower()) is op)
        content = documented.get("content") or {}
        if "application/json" not in content:  # an HTML page, a redirect: its own type
            assert response.mimetype in content or (not content and not response.data), (
                f"{method} {path} {status} answered {response.mimetype}, documented: "
                f"{list(content)}")
            return
        body = response.get_json()
        errors = [e.message for e in
                  self._validator(f"{method.lower()} {tpl} {status}").iter_errors(body)]
        assert not errors, f"{method} {path} {status} breaks its schema: {errors[:3]} in {body}"
