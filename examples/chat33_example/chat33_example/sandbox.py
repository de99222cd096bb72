"""A WSGI app imitating the Example platform's API (see :mod:`chat33_example.api`).

Built on :class:`chat33_core.sandbox.SandboxApp`, so besides the platform's paths it
answers the control API tests and ``chat33 demo`` use: ``POST /_sandbox/faults`` (inject
an error, also after the request was handled: a lost answer), ``GET /_sandbox/state``,
``POST /_sandbox/reset``, and ``POST /_sandbox/config`` for the knobs declared with
:meth:`~chat33_core.sandbox.SandboxApp.configurable` (``processing_polls``: how many
status polls an image stays ``processing``).

It fetches each image from the URL it is given, as the real platform would, so a post's
media must really be served (by chat33's media server, or ``serve_directory`` in tests).
"""

from __future__ import annotations

import itertools
from typing import Any

import httpx
from werkzeug.wrappers import Request, Response

from chat33_core.sandbox import SandboxApp, json_response

TOKEN = "sandbox-token"  # what `chat33 accounts add --sandbox` stores


class ExampleSandbox(SandboxApp):
    name = "example"

    def __init__(self) -> None:
        super().__init__()
        self.configurable(processing_polls=1)
        self.route("/v1/media", self._create_media, methods=["POST"])
        self.route("/v1/media/<media_id>", self._media_status, methods=["GET"])
        self.route("/v1/posts", self._create_post, methods=["POST"])
        self.route("/v1/posts", self._find_posts, methods=["GET"])
        self.route("/v1/posts/<post_id>", self._delete_post, methods=["DELETE"])
        self.route("/oauth/token", self._token, methods=["POST"])
        self.reset()

    def reset(self) -> None:
        self.config = dict(self.defaults)
        self.posts: list[dict[str, Any]] = []
        self.media: dict[str, dict[str, Any]] = {}
        self.tokens = {TOKEN}
        self.refresh_tokens = {"sandbox-refresh"}
        self._ids = itertools.count(1)

    def state(self) -> dict[str, Any]:
        with self.lock:
            return {"posts": list(self.posts), "media": dict(self.media)}

    # --- the platform ---------------------------------------------------------------

    def _denied(self, request: Request) -> Response | None:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        with self.lock:
            if token not in self.tokens:
                return json_response({"error": "token_expired",
                                      "message": "The access token is invalid or expired."},
                                     401)
        return None

    def _create_media(self, request: Request) -> Response:
        if (denied := self._denied(request)) is not None:
            return denied
        url = str((request.get_json(silent=True) or {}).get("url") or "")
        try:  # fetch it, as the platform would: a URL it cannot read fails the media
            fetched = httpx.get(url, timeout=10)
            error = None if fetched.status_code == 200 else f"HTTP {fetched.status_code}"
        except httpx.HTTPError as exc:
            error = f"could not fetch {url}: {type(exc).__name__}"
        with self.lock:
            media_id = f"m{next(self._ids)}"
            self.media[media_id] = {"url": url, "polls": 0, "error": error,
                                    "bytes": 0 if error else len(fetched.content)}
        return json_response({"id": media_id, "status": "processing"}, 202)

    def _media_status(self, request: Request, media_id: str) -> Response:
        if (denied := self._denied(request)) is not None:
            return denied
        with self.lock:
            media = self.media.get(media_id)
            if media is None:
                return json_response({"error": "not_found", "message": "No such media."}, 404)
            media["polls"] += 1
            if media["error"]:
                status = "failed"
            elif media["polls"] > int(self.config["processing_polls"]):
                status = "ready"
            else:
                status = "processing"
        return json_response({"id": media_id, "status": status, "error": media["error"]})

    def _create_post(self, request: Request) -> Response:
        if (denied := self._denied(request)) is not None:
            return denied
        body = request.get_json(silent=True) or {}
        text = str(body.get("text") or "")
        if len(text) > 500:
            return json_response({"error": "invalid", "message": "The text is too long."}, 400)
        with self.lock:
            unready = [m for m in body.get("mediaIds") or []
                       if m not in self.media or self.media[m]["error"]]
            if unready:
                return json_response({"error": "invalid",
                                      "message": f"Unknown media: {', '.join(unready)}."}, 400)
            post_id = str(100 + len(self.posts))
            post = {"id": post_id, "url": f"https://example.com/p/{post_id}", "text": text,
                    "mediaIds": list(body.get("mediaIds") or []),
                    "visibility": body.get("visibility", "public"),
                    "sensitive": bool(body.get("sensitive")),
                    "clientRef": body.get("clientRef")}
            self.posts.append(post)
        return json_response({"id": post_id, "url": post["url"]}, 201)

    def _find_posts(self, request: Request) -> Response:
        if (denied := self._denied(request)) is not None:
            return denied
        ref = request.args.get("clientRef")
        with self.lock:
            found = [{"id": p["id"], "url": p["url"], "clientRef": p["clientRef"]}
                     for p in self.posts if p["clientRef"] == ref]
        return json_response({"data": found})

    def _delete_post(self, request: Request, post_id: str) -> Response:
        if (denied := self._denied(request)) is not None:
            return denied
        with self.lock:
            before = len(self.posts)
            self.posts = [p for p in self.posts if p["id"] != post_id]
            if len(self.posts) == before:
                return json_response({"error": "not_found", "message": "No such post."}, 404)
        return Response(status=204)

    def _token(self, request: Request) -> Response:
        body = request.get_json(silent=True) or {}
        refresh = str(body.get("refresh_token") or "")
        with self.lock:
            if body.get("grant_type") != "refresh_token" or refresh not in self.refresh_tokens:
                return json_response({"error": "invalid_grant",
                                      "message": "The refresh token is invalid."}, 400)
            self.refresh_tokens.discard(refresh)  # rotation: a used one is refused
            n = next(self._ids)
            access, new_refresh = f"example-at-{n}", f"example-rt-{n}"
            self.tokens.add(access)
            self.refresh_tokens.add(new_refresh)
        return json_response({"access_token": access, "refresh_token": new_refresh,
                              "expires_in": 3600})
