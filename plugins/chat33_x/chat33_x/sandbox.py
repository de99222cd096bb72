"""A stateful imitation of the X API v2 endpoints chat33 uses (platforms.md §5, §7).

* media upload v2: ``initialize`` / ``append`` (multipart or base64 JSON) / ``finalize`` /
  ``STATUS``, with the processing state machine pending → in_progress → succeeded or
  failed (a "video" whose bytes are not MP4/MOV fails with X's InvalidMedia error);
* ``POST /2/tweets`` (201) with reply chains, quotes, polls, weighted text length
  (twitter-text v3, 280 or the user's limit), media that must have ``succeeded``, and
  X's refusal of duplicate content (403);
* ``GET /2/users/{id}/tweets``, ``GET /2/users/me``, ``DELETE /2/tweets/{id}``;
* per-user rate limits with ``x-rate-limit-limit/remaining/reset`` headers and 429s
  without Retry-After;
* OAuth 2 (oauth.md §7, §9): ``GET /i/oauth2/authorize`` (consents at once as the
  ``oauth_user`` of ``/_sandbox/config``, the default user unless set; PKCE required),
  ``POST /2/oauth2/token`` (``authorization_code`` and ``refresh_token``; client
  authentication by HTTP Basic for a confidential client or ``client_id`` in the body
  for a public one; a refresh token only with ``offline.access``; single-use, rotating
  refresh tokens) and ``POST /2/oauth2/revoke``. Tokens issued this way publish here.

Errors are ``application/problem+json`` like X's. Beyond the core control API
(``/_sandbox/faults``, ``/state``, ``/reset``) it answers:

* ``POST /_sandbox/config`` ``{"limits": {"tweets": 100, ...}, "window_s": 900,
  "processing_steps": 2, "check_after_secs": 1, "max_video_bytes": ...}``;
* ``POST /_sandbox/users`` ``{"id", "username", "text_limit", "access_token",
  "refresh_token"}`` — another user (a Premium one, say);
* ``POST /_sandbox/revoke`` ``{"access_token"}`` — the token answers 401 from now on.
"""

from __future__ import annotations

import base64
import itertools
import time
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from werkzeug.wrappers import Request, Response

from chat33_core.sandbox import SandboxApp, json_response, sniff
from chat33_core.sandbox_oauth import AuthorizationServer, GrantRefused

from .counting import count

PROBLEMS = "https://api.x.com/2/problems/"
DEFAULT_USER = {"id": "1784140000000000", "username": "chat33test", "name": "chat33 test"}
BUCKETS = {"tweets": 100, "delete": 50, "media": 1875, "status": 1000}
MB = 1024 * 1024
MEDIA_CATEGORIES = {"tweet_image": 5 * MB, "tweet_gif": 15 * MB, "tweet_video": 512 * MB}
MEDIA_TYPES = {"image/jpeg", "image/png", "image/webp", "image/gif", "image/pjpeg",
               "video/mp4", "video/quicktime"}
KEY_PREFIX = {"tweet_image": "3", "tweet_gif": "16", "tweet_video": "7"}
REPLY_SETTINGS = {"following", "mentionedUsers", "subscribers", "verified"}
TWEET_FIELDS = {"text", "media", "reply", "quote_tweet_id", "poll", "reply_settings",
                "made_with_ai", "for_super_followers_only", "geo", "nullcast",
                "paid_partnership", "community_id", "share_with_followers", "card_uri",
                "direct_message_deep_link", "edit_options"}


def problem(status: int, title: str, detail: str, kind: str | None = None,
            errors: list[dict[str, Any]] | None = None,
            headers: dict[str, str] | None = None) -> Response:
    body: dict[str, Any] = {"title": title, "detail": detail, "status": status,
                            "type": PROBLEMS + kind if kind else "about:blank"}
    if errors:
        body["errors"] = errors
    response = json_response(body, status, headers)
    response.content_type = "application/problem+json"
    return response


def invalid(message: str, parameter: str | None = None) -> Response:
    err: dict[str, Any] = {"message": message}
    if parameter:
        err["parameters"] = {parameter: []}
    return problem(400, "Invalid Request", "One or more parameters to your request was "
                   "invalid.", "invalid-request", errors=[err])


def _now_iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


#: the formats X takes in each media category (images otherwise), by their magic bytes
CATEGORY_FORMATS: dict[str, frozenset[str]] = {
    "tweet_video": frozenset({"MP4"}), "tweet_gif": frozenset({"GIF"})}
IMAGE_FORMATS = frozenset({"JPEG", "PNG", "GIF", "WEBP"})


def _looks_like(category: str, head: bytes) -> bool:
    """Enough of a format check to tell media from garbage."""
    return sniff(head) in CATEGORY_FORMATS.get(category, IMAGE_FORMATS)


class XSandbox(SandboxApp):
    """The X sandbox. State lives under ``self.lock``; see the module docstring."""

    name = "x"

    def __init__(self) -> None:
        super().__init__()
        self.auth = AuthorizationServer("x", self, pkce="required")
        self.reset()
        routes: list[tuple[str, Callable[..., Response], list[str]]] = [
            ("/i/oauth2/authorize", self.authorize, ["GET"]),
            ("/2/oauth2/revoke", self.oauth_revoke, ["POST"]),
            ("/2/media/upload/initialize", self.initialize, ["POST"]),
            ("/2/media/upload/<media_id>/append", self.append, ["POST"]),
            ("/2/media/upload/<media_id>/finalize", self.finalize, ["POST"]),
            ("/2/media/upload", self.status, ["GET"]),
            ("/2/tweets", self.create_tweet, ["POST"]),
            ("/2/tweets/<tweet_id>", self.delete_tweet, ["DELETE"]),
            ("/2/users/me", self.me, ["GET"]),
            ("/2/users/<user_id>/tweets", self.user_tweets, ["GET"]),
            ("/2/oauth2/token", self.token, ["POST"]),
            ("/_sandbox/config", self.set_config, ["POST"]),
            ("/_sandbox/users", self.add_user, ["POST"]),
            ("/_sandbox/revoke", self.revoke, ["POST"]),
        ]
        for rule, handler, methods in routes:
            self.route(rule, handler, methods)

    # --- state ------------------------------------------------------------------------

    def reset(self) -> None:
        if hasattr(self, "auth"):
            self.auth.reset()
        with self.lock:
            self.config: dict[str, Any] = {
                "limits": dict(BUCKETS), "window_s": 900, "processing_steps": 2,
                "check_after_secs": 1, "max_video_bytes": MEDIA_CATEGORIES["tweet_video"]}
            self.users: dict[str, dict[str, Any]] = {
                DEFAULT_USER["id"]: {**DEFAULT_USER, "text_limit": 280}}
            self.access: dict[str, str] = {"sandbox-token": DEFAULT_USER["id"]}
            self.refresh: dict[str, str] = {"sandbox-refresh": DEFAULT_USER["id"]}
            self.tweets: list[dict[str, Any]] = []
            self.media: dict[str, dict[str, Any]] = {}
            self.windows: dict[tuple[str, str], dict[str, float]] = {}
            self.refreshes = 0
            self._ids = itertools.count(1_850_000_000_000_000_001)
            self._media_ids = itertools.count(1_880_000_000_000_000_001)
            self._tokens = itertools.count(1)
            self.refresh_scopes: dict[str, tuple[str, ...]] = {}
            #: the kinds of token revoked (``xat-``/``xrt-``), for tests
            self.revoked: list[str] = []

    def state(self) -> dict[str, Any]:
        with self.lock:
            return {
                "tweets": [dict(t) for t in self.tweets],
                "media": [{k: v for k, v in m.items() if k != "head"}
                          for m in self.media.values()],
                "users": list(self.users.values()),
                "refreshes": self.refreshes, "revoked": list(self.revoked),
                "config": dict(self.config),
            }

    # --- control ----------------------------------------------------------------------

    def set_config(self, request: Request) -> Response:
        changes = request.get_json(force=True) or {}
        with self.lock:
            limits = changes.pop("limits", None)
            if isinstance(limits, dict):
                self.config["limits"].update(limits)
                self.windows.clear()
            self.config.update(changes)
            return json_response(self.config)

    def add_user(self, request: Request) -> Response:
        spec = request.get_json(force=True) or {}
        with self.lock:
            user = {"id": str(spec["id"]), "username": spec.get("username", f"user{spec['id']}"),
                    "name": spec.get("name", "sandbox user"),
                    "text_limit": int(spec.get("text_limit", 280))}
            self.users[user["id"]] = user
            if spec.get("access_token"):
                self.access[spec["access_token"]] = user["id"]
            if spec.get("refresh_token"):
                self.refresh[spec["refresh_token"]] = user["id"]
            return json_response(user, 201)

    def revoke(self, request: Request) -> Response:
        token = str((request.get_json(force=True) or {}).get("access_token") or "")
        with self.lock:
            self.access.pop(token, None)
        return json_response({"revoked": True})

    # --- plumbing ---------------------------------------------------------------------

    def _user(self, request: Request) -> str | None:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return None
        return self.access.get(auth[len("Bearer "):])

    def _limited(self, user_id: str, bucket: str) -> tuple[bool, dict[str, str]]:
        """Count one request against the user's window; (over the limit?, headers)."""
        limit = int(self.config["limits"][bucket])
        now = time.time()
        window = self.windows.get((user_id, bucket))
        if window is None or now >= window["reset"]:
            window = {"reset": float(int(now + float(self.config["window_s"])) + 1),
                      "used": 0}
            self.windows[(user_id, bucket)] = window
        over = window["used"] >= limit
        if not over:
            window["used"] += 1
        headers = {"x-rate-limit-limit": str(limit),
                   "x-rate-limit-remaining": str(max(0, limit - int(window["used"]))),
                   "x-rate-limit-reset": str(int(window["reset"]))}
        return over, headers

    def _guard(self, request: Request, bucket: str) -> tuple[str | None, dict[str, str],
                                                              Response | None]:
        """Authenticate and rate-limit; (user id, rate headers, refusal or None)."""
        user_id = self._user(request)
        if user_id is None:
            return None, {}, problem(401, "Unauthorized", "Unauthorized")
        over, headers = self._limited(user_id, bucket)
        if over:
            return user_id, headers, problem(429, "Too Many Requests", "Too Many Requests",
                                             headers=headers)
        return user_id, headers, None

    # --- media --------------------------------------------------------------------------

    def initialize(self, request: Request) -> Response:
        with self.lock:
            user_id, headers, refusal = self._guard(request, "media")
            if refusal:
                return refusal
            body = request.get_json(silent=True) or {}
            category = body.get("media_category")
            media_type = body.get("media_type")
            total = body.get("total_bytes")
            if category not in MEDIA_CATEGORIES:
                return invalid(f"media_category {category!r} is not supported", "media_category")
            if media_type not in MEDIA_TYPES:
                return invalid(f"media_type {media_type!r} is not supported", "media_type")
            if not isinstance(total, int) or total <= 0:
                return invalid("total_bytes must be a positive integer", "total_bytes")
            cap = (int(self.config["max_video_bytes"]) if category == "tweet_video"
                   else MEDIA_CATEGORIES[category])
            if total > cap:
                return invalid(f"File size exceeds {cap} bytes.", "total_bytes")
            media_id = str(next(self._media_ids))
            self.media[media_id] = {
                "id": media_id, "media_key": f"{KEY_PREFIX[category]}_{media_id}",
                "owner": user_id, "category": category, "media_type": media_type,
                "total_bytes": total, "segments": {}, "state": "uploading", "polls": 0,
                "head": b"", "error": None}
            return json_response({"data": {"id": media_id, "media_key":
                                           self.media[media_id]["media_key"],
                                           "expires_after_secs": 86_400}}, 200, headers)

    def _owned_media(self, user_id: str, media_id: str) -> dict[str, Any] | None:
        media = self.media.get(media_id)
        return media if media is not None and media["owner"] == user_id else None

    def _upload_target(self, request: Request, media_id: str,
                       ) -> tuple[dict[str, Any] | None, dict[str, str], Response | None]:
        """The caller's media being uploaded (append, finalize), or the refusal to send:
        rate limited or unauthorized (``_guard``), or another user's or unknown id."""
        user_id, headers, refusal = self._guard(request, "media")
        if refusal:
            return None, headers, refusal
        assert user_id is not None
        media = self._owned_media(user_id, media_id)
        if media is None:
            return None, headers, invalid(f"media_id {media_id} was not found", "media_id")
        return media, headers, None

    def append(self, request: Request, media_id: str) -> Response:
        # read the body outside the lock: a segment may be megabytes
        if request.files.get("media") is not None:
            upload = request.files["media"]
            head = upload.stream.read(64)
            size = len(head)
            while chunk := upload.stream.read(1024 * 1024):
                size += len(chunk)
            segment_raw = request.form.get("segment_index")
        else:
            body = request.get_json(silent=True) or {}
            try:
                raw = base64.b64decode(body.get("media") or "", validate=True)
            except ValueError:
                return invalid("media is not valid base64", "media")
            head, size, segment_raw = raw[:64], len(raw), body.get("segment_index")
        with self.lock:
            media, headers, refusal = self._upload_target(request, media_id)
            if refusal:
                return refusal
            assert media is not None
            if media["state"] != "uploading":
                return invalid("the upload is already finalized", "media_id")
            try:
                segment = int(segment_raw if segment_raw is not None else "")
            except ValueError:
                return invalid("segment_index must be an integer 0-999", "segment_index")
            if not 0 <= segment <= 999:
                return invalid("segment_index must be an integer 0-999", "segment_index")
            if size == 0:
                return invalid("media must not be empty", "media")
            media["segments"][segment] = size  # appending a segment again replaces it
            if segment == 0:
                media["head"] = head
            if sum(media["segments"].values()) > media["total_bytes"]:
                return invalid("Segments exceed the total_bytes given at initialize", "media")
            return json_response({"data": {"expires_at": int(time.time()) + 86_400}}, 200,
                                 headers)

    def finalize(self, request: Request, media_id: str) -> Response:
        with self.lock:
            media, headers, refusal = self._upload_target(request, media_id)
            if refusal:
                return refusal
            assert media is not None
            if media["state"] == "uploading":
                segments = media["segments"]
                if sorted(segments) != list(range(len(segments))) or \
                        sum(segments.values()) != media["total_bytes"]:
                    return invalid("Segments do not add up to provided total file size.",
                                   "media_id")
                if media["category"] == "tweet_image":
                    if not _looks_like("tweet_image", media["head"]):
                        media["state"] = "failed"
                        return invalid("media type unrecognized.", "media")
                    media["state"] = "succeeded"  # images need no processing
                else:
                    media["state"] = "pending"
            return json_response({"data": self._media_data(media)}, 200, headers)

    def status(self, request: Request) -> Response:
        with self.lock:
            user_id, headers, refusal = self._guard(request, "status")
            if refusal:
                return refusal
            assert user_id is not None
            if request.args.get("command", "STATUS") != "STATUS":
                return invalid("only command=STATUS is supported here", "command")
            media = self._owned_media(user_id, request.args.get("media_id", ""))
            if media is None or media["state"] == "uploading":
                return invalid("media_id is unknown or not finalized", "media_id")
            self._advance(media)
            return json_response({"data": self._media_data(media)}, 200, headers)

    def _advance(self, media: dict[str, Any]) -> None:
        """One STATUS poll moves processing along: pending → in_progress → done."""
        if media["state"] not in ("pending", "in_progress"):
            return
        media["polls"] += 1
        if media["polls"] < int(self.config["processing_steps"]):
            media["state"] = "in_progress"
        elif _looks_like(media["category"], media["head"]):
            media["state"] = "succeeded"
        else:
            media["state"] = "failed"
            media["error"] = {"code": 1, "name": "InvalidMedia",
                              "message": "Unsupported video format"
                              if media["category"] == "tweet_video"
                              else "Unsupported GIF format"}

    def _media_data(self, media: dict[str, Any]) -> dict[str, Any]:
        data: dict[str, Any] = {"id": media["id"], "media_key": media["media_key"],
                                "size": media["total_bytes"], "expires_after_secs": 86_400}
        if media["category"] == "tweet_image":
            return data  # no processing_info: ready to attach
        info: dict[str, Any] = {"state": media["state"]}
        if media["state"] in ("pending", "in_progress"):
            info["check_after_secs"] = int(self.config["check_after_secs"])
            info["progress_percent"] = 0 if media["state"] == "pending" else 50
        elif media["state"] == "succeeded":
            info["progress_percent"] = 100
        else:
            info["error"] = media["error"]
        data["processing_info"] = info
        data["video" if media["category"] == "tweet_video" else "image"] = {
            "video_type" if media["category"] == "tweet_video" else "image_type":
                media["media_type"]}
        return data

    # --- posts ----------------------------------------------------------------------------

    def _live(self, tweet_id: Any) -> dict[str, Any] | None:
        for tweet in self.tweets:
            if tweet["id"] == str(tweet_id) and not tweet["deleted"]:
                return tweet
        return None

    def create_tweet(self, request: Request) -> Response:
        with self.lock:
            user_id, headers, refusal = self._guard(request, "tweets")
            if refusal:
                return refusal
            assert user_id is not None
            body = request.get_json(silent=True)
            if not isinstance(body, dict):
                return invalid("the body must be a JSON object")
            unknown = set(body) - TWEET_FIELDS
            if unknown:
                return invalid(f"unknown field(s): {', '.join(sorted(unknown))}")
            error = self._check_tweet(user_id, body)
            if error is not None:
                return error
            text = body.get("text") or ""
            if text and any(t["author_id"] == user_id and not t["deleted"]
                            and _same(t["text"], text) for t in self.tweets):
                return problem(403, "Forbidden", "You are not allowed to create a Tweet with "
                               "duplicate content.", headers=headers)
            now = time.time()
            tweet_id = str(next(self._ids))
            reply_to = (body.get("reply") or {}).get("in_reply_to_tweet_id")
            parent = self._live(reply_to) if reply_to else None
            media_ids = [str(m) for m in (body.get("media") or {}).get("media_ids") or []]
            self.tweets.append({
                "id": tweet_id, "author_id": user_id, "text": text, "created_at": now,
                "in_reply_to": str(reply_to) if reply_to else None,
                "conversation_id": parent["conversation_id"] if parent else tweet_id,
                "quote_tweet_id": body.get("quote_tweet_id"), "poll": body.get("poll"),
                "reply_settings": body.get("reply_settings"),
                "made_with_ai": body.get("made_with_ai"),
                "media_keys": [self.media[m]["media_key"] for m in media_ids],
                "deleted": False})
            return json_response({"data": {"id": tweet_id, "text": text,
                                           "edit_history_tweet_ids": [tweet_id]}}, 201, headers)

    def _check_tweet(self, user_id: str, body: dict[str, Any]) -> Response | None:
        """X's checks on a CreatePostsRequest; the refusal, or None."""
        text = body.get("text")
        media_ids = (body.get("media") or {}).get("media_ids") or []
        poll = body.get("poll")
        if text is not None and not isinstance(text, str):
            return invalid("text must be a string", "text")
        if not text and not media_ids:
            return invalid("text or media is required", "text")
        if text:
            limit = int(self.users[user_id].get("text_limit", 280))
            measured = count(text, limit)
            if measured.too_long:
                return problem(403, "Forbidden", "Your Tweet text is too long: "
                               f"{measured.weighted_length} characters > {limit}.")
        if sum(1 for present in (bool(media_ids), poll is not None,
                                 body.get("quote_tweet_id") is not None) if present) > 1:
            return invalid("media, poll and quote_tweet_id are mutually exclusive")
        if media_ids:
            if not 1 <= len(media_ids) <= 4:
                return invalid("media_ids takes 1 to 4 ids", "media.media_ids")
            found = [self._owned_media(user_id, str(m)) for m in media_ids]
            if any(m is None or m["state"] != "succeeded" for m in found):
                return invalid("Your media IDs are invalid.", "media.media_ids")
            kinds = {m["category"] for m in found if m is not None}
            if len(media_ids) > 1 and kinds != {"tweet_image"}:
                return invalid("a post takes up to 4 photos, or 1 GIF, or 1 video",
                               "media.media_ids")
        reply = body.get("reply")
        if reply is not None:
            target = reply.get("in_reply_to_tweet_id") if isinstance(reply, dict) else None
            if not target or self._live(target) is None:
                return invalid("Reply to Tweet not visible or deleted",
                               "reply.in_reply_to_tweet_id")
        quote = body.get("quote_tweet_id")
        if quote is not None and self._live(quote) is None:
            return invalid("Quoted Tweet not visible or deleted", "quote_tweet_id")
        if poll is not None:
            options = poll.get("options") if isinstance(poll, dict) else None
            minutes = poll.get("duration_minutes") if isinstance(poll, dict) else None
            if not isinstance(options, list) or not 2 <= len(options) <= 4 or any(
                    not isinstance(o, str) or not 1 <= len(o) <= 25 for o in options):
                return invalid("poll.options takes 2-4 options of 1-25 characters",
                               "poll.options")
            if not isinstance(minutes, int) or not 5 <= minutes <= 10_080:
                return invalid("poll.duration_minutes must be 5-10080", "poll.duration_minutes")
        settings = body.get("reply_settings")
        if settings is not None and settings not in REPLY_SETTINGS:
            return invalid(f"reply_settings {settings!r} is not valid", "reply_settings")
        return None

    def delete_tweet(self, request: Request, tweet_id: str) -> Response:
        with self.lock:
            user_id, headers, refusal = self._guard(request, "delete")
            if refusal:
                return refusal
            tweet = self._live(tweet_id)
            if tweet is None:
                return problem(404, "Not Found Error", f"Could not find tweet with id: "
                               f"[{tweet_id}].", "resource-not-found", headers=headers)
            if tweet["author_id"] != user_id:
                return problem(403, "Forbidden", "You are not allowed to delete this Tweet.",
                               "not-authorized-for-resource", headers=headers)
            tweet["deleted"] = True
            return json_response({"data": {"deleted": True}}, 200, headers)

    def me(self, request: Request) -> Response:
        with self.lock:
            user_id = self._user(request)
            if user_id is None:
                return problem(401, "Unauthorized", "Unauthorized")
            user = self.users[user_id]
            data = {k: user[k] for k in ("id", "username", "name")}
            fields = (request.args.get("user.fields") or "").split(",")
            if "profile_image_url" in fields:
                data["profile_image_url"] = (f"https://pbs.twimg.com/profile_images/"
                                             f"{user['id']}/normal.jpg")
            return json_response({"data": data})

    def user_tweets(self, request: Request, user_id: str) -> Response:
        with self.lock:
            caller = self._user(request)
            if caller is None:
                return problem(401, "Unauthorized", "Unauthorized")
            if user_id not in self.users:
                return problem(404, "Not Found Error", f"Could not find user with id: "
                               f"[{user_id}].", "resource-not-found")
            try:
                size = min(100, max(5, int(request.args.get("max_results", 10))))
                offset = int(request.args.get("pagination_token") or 0)
            except ValueError:
                return invalid("max_results and pagination_token must be integers")
            start = request.args.get("start_time")
            since = (datetime.strptime(start, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
                     .timestamp() if start else 0.0)
            mine = [t for t in reversed(self.tweets) if t["author_id"] == user_id
                    and not t["deleted"] and t["created_at"] >= since]
            page = mine[offset:offset + size]
            meta: dict[str, Any] = {"result_count": len(page)}
            if page:
                meta.update(newest_id=page[0]["id"], oldest_id=page[-1]["id"])
            if offset + size < len(mine):
                meta["next_token"] = str(offset + size)
            body: dict[str, Any] = {"meta": meta}
            if page:
                body["data"] = [self._tweet_json(t) for t in page]
            return json_response(body)

    def _tweet_json(self, tweet: dict[str, Any]) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": tweet["id"], "text": tweet["text"], "author_id": tweet["author_id"],
            "created_at": _now_iso(tweet["created_at"]),
            "conversation_id": tweet["conversation_id"],
            "edit_history_tweet_ids": [tweet["id"]]}
        refs = []
        if tweet["in_reply_to"]:
            refs.append({"type": "replied_to", "id": tweet["in_reply_to"]})
        if tweet["quote_tweet_id"]:
            refs.append({"type": "quoted", "id": str(tweet["quote_tweet_id"])})
        if refs:
            data["referenced_tweets"] = refs
        if tweet["media_keys"]:
            data["attachments"] = {"media_keys": list(tweet["media_keys"])}
        return data

    # --- OAuth 2 ----------------------------------------------------------------------------

    def authorize(self, request: Request) -> Response:
        subject = str(self.config.get("oauth_user") or DEFAULT_USER["id"])
        return self.auth.authorize(request, subject=subject)

    def _client(self, request: Request) -> tuple[str | None, str | None]:
        """The client's id and secret: HTTP Basic (confidential) or ``client_id`` in
        the body (public, no secret)."""
        basic = request.authorization
        if basic is not None and basic.type == "basic":
            return basic.username, basic.password or ""
        return request.form.get("client_id"), None

    def _issue(self, user_id: str, scopes: tuple[str, ...], *,
               refresh: bool = True) -> dict[str, Any]:
        n = next(self._tokens)
        access = f"xat-{n}-{user_id}"
        self.access[access] = user_id
        body: dict[str, Any] = {"token_type": "bearer", "expires_in": 7200,
                                "access_token": access, "scope": " ".join(scopes)}
        if "offline.access" in scopes and refresh:
            token = f"xrt-{n}-{user_id}"
            self.refresh[token] = user_id
            self.refresh_scopes[token] = scopes
            body["refresh_token"] = token
        return body

    def token(self, request: Request) -> Response:
        form = request.form
        if request.mimetype != "application/x-www-form-urlencoded":
            return json_response({"error": "invalid_request", "error_description":
                                  "send the body as application/x-www-form-urlencoded"}, 400)
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            client_id, secret = self._client(request)
            try:
                consent = self.auth.redeem_form(form, client_id=client_id,
                                                client_secret=secret)
            except GrantRefused as refused:
                return json_response(refused.body(), 401 if refused.error ==
                                     "invalid_client" else 400)
            with self.lock:
                self.users.setdefault(consent.subject, {
                    "id": consent.subject, "username": f"user{consent.subject}",
                    "name": "sandbox user", "text_limit": 280})
                return json_response(self._issue(consent.subject, consent.scopes,
                                                 refresh=self.auth.refresh_tokens),
                                     headers={"Cache-Control": "no-store"})
        with self.lock:
            if grant_type != "refresh_token":
                return json_response({"error": "unsupported_grant_type",
                                      "error_description": "grant_type must be "
                                      "authorization_code or refresh_token"}, 400)
            token = form.get("refresh_token", "")
            user_id = self.refresh.pop(token, None)
            if user_id is None:
                # X's refresh tokens are single-use: a spent one lands here too
                return json_response({"error": "invalid_request", "error_description":
                                      "Value passed for the token was invalid."}, 400)
            scopes = self.refresh_scopes.pop(token, None) or (
                "tweet.read", "tweet.write", "users.read", "media.write", "offline.access")
            self.refreshes += 1
            return json_response(self._issue(user_id, scopes))

    def oauth_revoke(self, request: Request) -> Response:
        client_id, secret = self._client(request)
        if not self.auth.client_ok(client_id, secret):
            return json_response({"error": "invalid_client",
                                  "error_description": "Client authentication failed."}, 401)
        token = request.form.get("token", "")
        with self.lock:
            user_id = self.access.pop(token, None) or self.refresh.pop(token, None)
            if user_id is not None and token.startswith("xrt-"):
                # the refresh token carries the grant: its access tokens end with it
                n = token.split("-")[1]
                self.access.pop(f"xat-{n}-{user_id}", None)
            self.revoked.append(token[:4])
        return json_response({"revoked": True})


def _same(a: str, b: str) -> bool:
    return unicodedata.normalize("NFC", a).strip() == unicodedata.normalize("NFC", b).strip()
