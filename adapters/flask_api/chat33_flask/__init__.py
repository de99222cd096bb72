"""chat33's REST API on Flask: ``create_app()`` for a whole app, ``init_app(app)`` to mount
it on yours. The contract is ``shared/reference/chat33-api.md``; the OpenAPI 3.1 document
is served at ``/api/v1/openapi.json``."""

from __future__ import annotations

from .app import API_PREFIX, create_app, init_app

__all__ = ["API_PREFIX", "create_app", "init_app"]
