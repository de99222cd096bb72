"""A local imitation of a Mastodon instance's publishing API (platforms-more.md §2.8).

What it reproduces, because the plugin's real code path depends on it:

* ``POST /api/v1/apps`` and ``POST /oauth/token`` (a token with no expiry and no
  refresh), ``GET /api/v1/accounts/verify_credentials`` (401 ``The access token is
  invalid`` for an unknown token);
* ``GET /api/v2/instance`` with configurable limits (``POST /_sandbox/config``);
* ``POST /api/v2/media``: the file is sniffed (422 ``File content type is invalid`` for
  anything else); small images are processed at once (200 with ``url``), video and GIFs
  answer 202 with ``url: null`` and ``GET /api/v1/media/:id`` answers 206 for
  ``processing_polls`` polls, then 200 with ``url``; attaching unfinished media is 422
  ``Cannot attach files that have not finished processing``;
* ``POST /api/v1/statuses`` answering 200 (not 201); the length of ``spoiler_text +
  status`` in grapheme clusters with URLs as 23 and ``@user@domain`` as ``@user`` (422
  ``Text character limit of N exceeded``); 4 attachments, no video beside images;
  ``in_reply_to_id`` of an unknown status is 404 ``Record not found``;
* ``Idempotency-Key``: a repeat within an hour (of the sandbox's clock) answers the
  first status instead of posting again;
* ``DELETE /api/v1/statuses/:id`` answering the deleted status (with its source
  ``text``), 404 ``Record not found`` after;
* rate limits in fixed windows with ``X-RateLimit-Limit/Remaining/Reset`` (Reset an ISO
  8601 instant) on every authenticated answer: 300 requests / 5 min per token, media
  uploads 30 / 30 min, deletes 30 / 30 min; 429 ``{"error": "Too many requests"}``.

Control API beyond :class:`~chat33_core.sandbox.SandboxApp`'s: ``POST /_sandbox/clock``
``{"advance": seconds}`` moves the clock (idempotency window, rate-limit windows).
"""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime
from typing import Any

from werkzeug.wrappers import Request, Response

from chat33_core.sandbox import SandboxApp, json_response, sniff

from .rules import count

DEMO_ACCOUNT = {"id": "109348590000000001", "username": "chat33", "token": "sandbox-token"}
IDEMPOTENCY_TTL_S = 3600.0
UNFINISHED = "Cannot attach files that have not finished processing. Try again in a moment!"
NOT_FOUND = {"error": "Record not found"}
#: (limit option, period option) of each throttle bucket
BUCKETS = {"requests": ("rate_limit", "rate_period_s"),
           "media": ("media_limit", "media_period_s"),
           "deletes": ("delete_limit", "delete_period_s")}


class MastodonSandbox(SandboxApp):
    name = "mastodon"

    def __init__(self) -> None:
        super().__init__()
        self.configurable(max_characters=500, max_media_attachments=4,
                          characters_reserved_per_url=23, image_size_limit=16_777_216,
                          video_size_limit=103_809_024, description_limit=1500,
                          processing_polls=2, sync_images=True,
                          rate_limit=300, rate_period_s=300, media_limit=30,
                          media_period_s=1800, delete_limit=30, delete_period_s=1800)
        self.route("/api/v1/apps", self.create_app, ["POST"])
        self.route("/oauth/token", self.token, ["POST"])
        self.route("/api/v2/instance", self.instance, ["GET"])
        self.route("/api/v1/accounts/verify_credentials", self.verify_credentials, ["GET"])
        self.route("/api/v2/media", self.upload_media, ["POST"])
        self.route("/api/v1/media/<media_id>", self.get_media, ["GET"])
        self.route("/api/v1/statuses", self.create_status, ["POST"])
        self.route("/api/v1/statuses/<status_id>", self.get_status, ["GET"])
        self.route("/api/v1/statuses/<status_id>", self.delete_status, ["DELETE"])
        self.route("/_sandbox/clock", self.move_clock, ["POST"])
        self.reset()

    def reset(self) -> None:
        self.config = dict(self.defaults)
        self.offset = 0.0
        self.ids = itertools.count(110_000_000_000_000_001)
        self.tokens: dict[str, dict[str, str]] = {DEMO_ACCOUNT["token"]: {
            "id": DEMO_ACCOUNT["id"], "username": DEMO_ACCOUNT["username"]}}
        self.statuses: dict[str, dict[str, Any]] = {}
        self.media: dict[str, dict[str, Any]] = {}
        self.keys: dict[tuple[str, str], tuple[float, str]] = {}
        self.buckets: dict[tuple[str, str], tuple[float, int]] = {}
        self.replays = 0

    def state(self) -> dict[str, Any]:
        with self.lock:
            return {"statuses": [dict(s) for s in self.statuses.values()],
                    "media": [dict(m) for m in self.media.values()],
                    "idempotentReplays": self.replays, "config": dict(self.config)}

    def now(self) -> float:
        return time.time() + self.offset

    def move_clock(self, request: Request) -> Response:
        body = request.get_json(force=True) or {}
        with self.lock:
            self.offset += float(body.get("advance") or 0)
        return json_response({"now": self.now()})

    # --- auth and throttling -------------------------------------------------------------

    def _authorize(self, request: Request, *buckets: str
                   ) -> tuple[str, dict[str, str], dict[str, str]] | Response:
        """(token, account, rate-limit headers), or the 401/429 answer."""
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else ""
        account = self.tokens.get(token)
        if account is None:
            return json_response({"error": "The access token is invalid"}, 401)
        headers: dict[str, str] = {}
        for bucket in ("requests", *buckets):
            limit_key, period_key = BUCKETS[bucket]
            limit, period = int(self.config[limit_key]), float(self.config[period_key])
            window = self.now() // period * period
            start, used = self.buckets.get((token, bucket), (window, 0))
            if start != window:
                start, used = window, 0
            reset = datetime.fromtimestamp(start + period, UTC).isoformat(timespec="seconds")
            if used >= limit:
                return json_response({"error": "Too many requests"}, 429, headers={
                    "X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": reset})
            self.buckets[(token, bucket)] = (start, used + 1)
            # the headers report the bucket closest to its limit
            remaining = limit - used - 1
            if not headers or remaining < int(headers["X-RateLimit-Remaining"]):
                headers = {"X-RateLimit-Limit": str(limit),
                           "X-RateLimit-Remaining": str(remaining),
                           "X-RateLimit-Reset": reset}
        return token, account, headers

    # --- apps and tokens -----------------------------------------------------------------

    def create_app(self, request: Request) -> Response:
        data = request.get_json(silent=True) or request.form
        if not data.get("client_name") or not data.get("redirect_uris"):
            return json_response({"error": "Validation failed: Name can't be blank, Redirect "
                                           "URI can't be blank"}, 422)
        with self.lock:
            number = next(self.ids)
        return json_response({"id": str(number), "name": data["client_name"],
                              "redirect_uri": data["redirect_uris"],
                              "client_id": f"client-{number}",
                              "client_secret": f"secret-{number}",
                              "client_secret_expires_at": 0})

    def token(self, request: Request) -> Response:
        data = request.get_json(silent=True) or request.form
        if data.get("grant_type") != "authorization_code" or not data.get("code"):
            return json_response({"error": "invalid_grant", "error_description": "The "
                                  "provided authorization grant is invalid"}, 400)
        with self.lock:
            token = f"token-{next(self.ids)}"
            self.tokens[token] = {"id": DEMO_ACCOUNT["id"],
                                  "username": DEMO_ACCOUNT["username"]}
        # no expires_in, no refresh_token: Mastodon tokens live until revoked
        return json_response({"access_token": token, "token_type": "Bearer",
                              "scope": data.get("scope") or "read",
                              "created_at": int(self.now())})

    def instance(self, request: Request) -> Response:
        c = self.config
        return json_response({
            "domain": request.host, "title": "chat33 sandbox", "version": "4.4.0",
            "configuration": {
                "statuses": {"max_characters": c["max_characters"],
                             "max_media_attachments": c["max_media_attachments"],
                             "characters_reserved_per_url": c["characters_reserved_per_url"]},
                "media_attachments": {
                    "supported_mime_types": ["image/jpeg", "image/png", "image/gif",
                                             "image/webp", "video/mp4"],
                    "description_limit": c["description_limit"],
                    "image_size_limit": c["image_size_limit"],
                    "image_matrix_limit": 33_177_600,
                    "video_size_limit": c["video_size_limit"],
                    "video_frame_rate_limit": 120, "video_matrix_limit": 8_294_400}}})

    def verify_credentials(self, request: Request) -> Response:
        with self.lock:
            auth = self._authorize(request)
            if isinstance(auth, Response):
                return auth
            _, account, headers = auth
            return json_response({"id": account["id"], "username": account["username"],
                                  "acct": account["username"]}, headers=headers)

    # --- media -----------------------------------------------------------------------------

    def _media_json(self, media: dict[str, Any], base: str) -> dict[str, Any]:
        ready = media["pending"] == 0
        return {"id": media["id"], "type": media["type"],
                "url": f"{base}media/{media['id']}" if ready else None,
                "preview_url": f"{base}media/{media['id']}/small",
                "description": media["description"] or None}

    def upload_media(self, request: Request) -> Response:
        with self.lock:
            auth = self._authorize(request, "media")
            if isinstance(auth, Response):
                return auth
            token, _, headers = auth
            upload = request.files.get("file")
            if upload is None:
                return json_response({"error": "Validation failed: File can't be blank"}, 422,
                                     headers)
            content = upload.read()
            kind = {"JPEG": "image", "PNG": "image", "WEBP": "image", "GIF": "gifv",
                    "MP4": "video"}.get(sniff(content[:16]) or "")
            if kind is None:
                return json_response({"error": "Validation failed: File content type is "
                                               "invalid, File is invalid"}, 422, headers)
            limit = int(self.config["image_size_limit" if kind == "image"
                                   else "video_size_limit"])
            if len(content) > limit:
                return json_response({"error": f"Validation failed: File file size must be "
                                               f"less than {limit // 1_048_576} MB"}, 422,
                                     headers)
            description = request.form.get("description") or ""
            if count(description) > int(self.config["description_limit"]):
                return json_response({"error": "Validation failed: Description is too long "
                                               f"(maximum is {self.config['description_limit']}"
                                               " characters)"}, 422, headers)
            sync = kind == "image" and bool(self.config["sync_images"])
            media: dict[str, Any] = {"id": str(next(self.ids)), "type": kind, "token": token,
                     "size": len(content), "description": description,
                     "pending": 0 if sync else int(self.config["processing_polls"]),
                     "polls": 0, "attached": False}
            self.media[media["id"]] = media
            return json_response(self._media_json(media, request.root_url),
                                 200 if sync else 202, headers)

    def get_media(self, request: Request, media_id: str) -> Response:
        with self.lock:
            auth = self._authorize(request)
            if isinstance(auth, Response):
                return auth
            token, _, headers = auth
            media = self.media.get(media_id)
            if media is None or media["token"] != token:
                return json_response(NOT_FOUND, 404, headers)
            media["polls"] += 1
            if media["pending"] > 0:
                media["pending"] -= 1
                return json_response(self._media_json(media, request.root_url) | {"url": None},
                                     206, headers)
            return json_response(self._media_json(media, request.root_url), 200, headers)

    # --- statuses --------------------------------------------------------------------------

    def _status_json(self, status: dict[str, Any], base: str) -> dict[str, Any]:
        return {"id": status["id"], "created_at": status["created_at"],
                "uri": f"{base}users/{status['username']}/statuses/{status['id']}",
                "url": f"{base}@{status['username']}/{status['id']}",
                "content": f"<p>{status['text']}</p>", "visibility": status["visibility"],
                "sensitive": status["sensitive"], "spoiler_text": status["spoiler_text"],
                "language": status["language"], "in_reply_to_id": status["in_reply_to_id"],
                "media_attachments": [self._media_json(self.media[m], base)
                                      for m in status["media_ids"]],
                "account": {"id": status["account_id"], "username": status["username"]}}

    def create_status(self, request: Request) -> Response:
        with self.lock:
            auth = self._authorize(request)
            if isinstance(auth, Response):
                return auth
            token, account, headers = auth
            key = request.headers.get("Idempotency-Key")
            if key:
                seen = self.keys.get((token, key))
                if seen is not None and self.now() - seen[0] <= IDEMPOTENCY_TTL_S:
                    self.replays += 1
                    return json_response(self._status_json(self.statuses[seen[1]],
                                                           request.root_url), 200, headers)
            if request.is_json:
                body = request.get_json(silent=True) or {}
                media_ids = [str(m) for m in body.get("media_ids") or []]
            else:
                body = request.form.to_dict()
                media_ids = request.form.getlist("media_ids[]")
            problem = self._refusal(body, media_ids, token)
            if problem is not None:
                status_code, message = problem
                return json_response({"error": message}, status_code, headers)
            status: dict[str, Any] = {
                "id": str(next(self.ids)), "text": str(body.get("status") or ""),
                "spoiler_text": str(body.get("spoiler_text") or ""),
                "visibility": body.get("visibility") or "public",
                "sensitive": body.get("sensitive") in (True, "true", "1"),
                "language": body.get("language"),
                "in_reply_to_id": (str(body["in_reply_to_id"])
                                   if body.get("in_reply_to_id") else None),
                "media_ids": media_ids, "idempotency_key": key,
                "account_id": account["id"], "username": account["username"],
                "token": token, "deleted": False,
                "created_at": datetime.fromtimestamp(self.now(), UTC).isoformat()}
            self.statuses[status["id"]] = status
            for media_id in media_ids:
                self.media[media_id]["attached"] = True
            if key:
                self.keys[(token, key)] = (self.now(), status["id"])
            return json_response(self._status_json(status, request.root_url), 200, headers)

    def _refusal(self, body: dict[str, Any], media_ids: list[str],
                 token: str) -> tuple[int, str] | None:
        """Why Mastodon would refuse this status: (HTTP status, message), or None."""
        text = str(body.get("status") or "")
        if not text.strip() and not media_ids:
            return 422, "Validation failed: Text can't be blank"
        limit = int(self.config["max_characters"])
        if count(text, str(body.get("spoiler_text") or ""),
                 int(self.config["characters_reserved_per_url"])) > limit:
            return 422, f"Validation failed: Text character limit of {limit} exceeded"
        if body.get("visibility") not in (None, "public", "unlisted", "private", "direct"):
            return 422, "Validation failed: Visibility is not included in the list"
        if len(media_ids) > int(self.config["max_media_attachments"]):
            return 422, (f"Cannot attach more than {self.config['max_media_attachments']} "
                         "files")
        media = [self.media.get(m) for m in media_ids]
        if any(m is None or m["token"] != token for m in media):
            return 422, "Validation failed: Media attachments are invalid"
        kinds = [m["type"] for m in media if m is not None]
        if len(kinds) > 1 and any(k != "image" for k in kinds):
            return 422, "Cannot attach a video to a post that already contains images"
        if any(m is not None and m["pending"] > 0 for m in media):
            return 422, UNFINISHED
        reply_to = body.get("in_reply_to_id")
        if reply_to and (str(reply_to) not in self.statuses
                         or self.statuses[str(reply_to)]["deleted"]):
            return 404, NOT_FOUND["error"]
        return None

    def get_status(self, request: Request, status_id: str) -> Response:
        with self.lock:
            auth = self._authorize(request)
            if isinstance(auth, Response):
                return auth
            _, _, headers = auth
            status = self.statuses.get(status_id)
            if status is None or status["deleted"]:
                return json_response(NOT_FOUND, 404, headers)
            return json_response(self._status_json(status, request.root_url), 200, headers)

    def delete_status(self, request: Request, status_id: str) -> Response:
        with self.lock:
            auth = self._authorize(request, "deletes")
            if isinstance(auth, Response):
                return auth
            token, _, headers = auth
            status = self.statuses.get(status_id)
            if status is None or status["deleted"] or status["token"] != token:
                return json_response(NOT_FOUND, 404, headers)
            status["deleted"] = True
            # the deleted status with its source text, for delete-and-redraft
            return json_response(self._status_json(status, request.root_url)
                                 | {"text": status["text"]}, 200, headers)
