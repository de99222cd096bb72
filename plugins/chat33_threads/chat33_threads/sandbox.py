"""A stateful imitation of the Threads publishing API (platforms-more.md §3.8).

Paths are Meta's (``/v1.0/{user}/threads`` ...), so the plugin's real code runs against
it with ``CHAT33_THREADS_API_BASE`` pointing here. It imitates:

* containers: TEXT ones FINISHED at once (``auto_publish_text=true`` publishes them
  at once); IMAGE/VIDEO ones download their ``image_url``/``video_url`` over HTTP and
  check the bytes (JPEG/PNG up to 8 MB; an ISO media file up to 1 GB), then stay
  ``IN_PROGRESS`` for ``processingPolls`` status reads before ``FINISHED`` (or ``ERROR``
  with ``error_message``); ``EXPIRED`` 24 h after creation; ``PUBLISHED`` once published;
* the text rules: 500 characters (emoji as UTF-8 bytes), at most 5 unique links
  (``THREADS_API__LINK_LIMIT_EXCEEDED``), ``link_attachment`` on TEXT only;
  carousels of 2-20 FINISHED items of the same user;
* ``threads_publish`` (refused before FINISHED, after PUBLISHED, after EXPIRED), the
  quotas (250 posts, 1,000 replies a moving 24 h) and ``threads_publishing_limit``;
* replies (``reply_to_id`` must name a live post), listing of threads and replies;
* ``DELETE /{media-id}`` (100 a day); tokens that expire (190/463) or are revoked
  (190/460), and ``refresh_access_token`` with its 24-hour minimum age.

Control API beyond the common one: ``POST /_sandbox/config`` (``quotaTotal``,
``replyQuotaTotal``, ``deleteLimit``, ``processingPolls``, ``username``);
``POST /_sandbox/clock`` ``{"advance": s}``; ``POST /_sandbox/tokens`` ``{"token",
"issuedAt", "expiresAt", "revoked"}``; ``POST /_sandbox/containers/<id>`` ``{"status":
"ERROR", "error_message": ...}`` or ``{"status": "EXPIRED"}``.
"""

from __future__ import annotations

import itertools
import random
import secrets
import time
from datetime import UTC, datetime
from typing import Any

import httpx
from werkzeug.wrappers import Request, Response

from chat33_core.graph import GraphFailure
from chat33_core.sandbox import SandboxApp, json_response, sniff

from . import rules

DAY = 86_400.0
TOKEN_LIFE = 60 * DAY
#: the account ``accounts add`` gives the demo and the tests
DEMO_ACCOUNT = {"id": "27000000000000001", "username": "chat33", "token": "sandbox-token"}
FETCH_TIMEOUT_S = 10.0


class ThreadsSandbox(SandboxApp):
    """Threads' publishing endpoints, in memory."""

    name = "threads"

    def __init__(self) -> None:
        super().__init__()
        self._client: httpx.Client | None = None
        self.configurable(quotaTotal=250, replyQuotaTotal=1000, deleteLimit=100,
                          processingPolls=1, username=DEMO_ACCOUNT["username"])
        self.reset()
        v = "/<version>"
        self.route("/refresh_access_token", self._refresh, methods=["GET"])
        self.route(f"{v}/<user>/threads", self._create, methods=["POST"])
        self.route(f"{v}/<user>/threads", self._list_threads, methods=["GET"])
        self.route(f"{v}/<user>/replies", self._list_replies, methods=["GET"])
        self.route(f"{v}/<user>/threads_publish", self._publish, methods=["POST"])
        self.route(f"{v}/<user>/threads_publishing_limit", self._limit, methods=["GET"])
        self.route(f"{v}/<node>", self._node, methods=["GET"])
        self.route(f"{v}/<node>", self._delete, methods=["DELETE"])
        self.route("/_sandbox/clock", self._clock, methods=["POST"])
        self.route("/_sandbox/tokens", self._add_token, methods=["POST"])
        self.route("/_sandbox/containers/<cid>", self._force, methods=["POST"])

    def reset(self) -> None:
        with self.lock:
            self.config = dict(self.defaults)
            self.offset = 0.0
            self.containers: dict[str, dict[str, Any]] = {}
            self.posts: dict[str, dict[str, Any]] = {}
            self.tokens: dict[str, dict[str, Any]] = {}
            self.deletes: list[float] = []
            self.fetches: list[dict[str, Any]] = []
            self.ids = itertools.count(random.randint(10**16, 9 * 10**16))

    def now(self) -> float:
        return time.time() + self.offset

    def state(self) -> dict[str, Any]:
        with self.lock:
            return {
                "config": dict(self.config),
                "containers": [{**c, "status": self._status(c)}
                               for c in self.containers.values()],
                "posts": sorted(self.posts.values(), key=lambda p: p["created"]),
                "fetches": list(self.fetches),
                "quota": {"posts": self._usage(reply=False), "replies": self._usage(True)},
                "deletes": len(self.deletes),
                "tokens": [{"token": t, **info} for t, info in self.tokens.items()],
                "requests": [f"{m} {p}" for m, p in self.requests
                             if not p.startswith("/_sandbox/")][-200:],
            }

    # --- plumbing ----------------------------------------------------------------------

    def dispatch(self, request: Request) -> Response:
        if request.path.startswith("/_sandbox/"):
            return super().dispatch(request)
        try:
            try:
                return super().dispatch(request)
            except (ValueError, KeyError, TypeError) as exc:
                raise GraphFailure(100, f"Invalid parameter: {exc}") from exc
        except GraphFailure as failure:
            return failure.response()

    def _token(self, request: Request) -> str:
        auth = request.headers.get("Authorization", "")
        token = auth.split(" ", 1)[1].strip() if auth.lower().startswith("bearer ") else ""
        token = token or request.args.get("access_token") or request.form.get(
            "access_token") or ""
        if not token:
            raise GraphFailure(190, "An active access token must be used.")
        with self.lock:
            info = self.tokens.setdefault(token, {"issuedAt": self.now() - 2 * DAY,
                                                  "expiresAt": self.now() + 58 * DAY,
                                                  "revoked": False})
            if info["revoked"]:
                raise GraphFailure(190, "Error validating access token: The session has "
                                   "been invalidated.", subcode=460)
            if info["expiresAt"] <= self.now():
                raise GraphFailure(190, "Error validating access token: Session has "
                                   "expired.", subcode=463)
        return token

    # --- containers --------------------------------------------------------------------

    def _create(self, request: Request, version: str, user: str) -> Response:
        self._token(request)
        p = _params(request)
        kind = (p.get("media_type") or "").upper()
        if kind not in ("TEXT", "IMAGE", "VIDEO", "CAROUSEL"):
            raise GraphFailure(100, "Param media_type must be one of TEXT, IMAGE, VIDEO, "
                               "CAROUSEL")
        text = p.get("text") or ""
        item = p.get("is_carousel_item", "").lower() == "true"
        if kind == "TEXT" and not text:
            raise GraphFailure(100, "The parameter text is required for TEXT posts.")
        if rules.count(text) > rules.MAX_CHARACTERS:
            raise GraphFailure(100, "Invalid parameter: text must be at most 500 "
                               "characters long.")
        if p.get("link_attachment") and kind != "TEXT":
            raise GraphFailure(100, "link_attachment is only allowed on TEXT posts.")
        if len(rules.links(text, p.get("link_attachment"))) > rules.MAX_LINKS:
            raise GraphFailure(100, "THREADS_API__LINK_LIMIT_EXCEEDED: a post may contain "
                               "at most 5 links.")
        topic = p.get("topic_tag")
        if topic is not None and (not 1 <= len(topic) <= 50 or "." in topic or "&" in topic):
            raise GraphFailure(100, "Invalid topic_tag.")
        if p.get("reply_control") and p["reply_control"] not in rules.REPLY_CONTROLS:
            raise GraphFailure(100, "Invalid reply_control.")
        reply_to = p.get("reply_to_id")
        with self.lock:
            if reply_to and (reply_to not in self.posts or self.posts[reply_to]["deleted"]):
                raise GraphFailure(100, f"Object with ID '{reply_to}' does not exist.",
                                   subcode=33)
        c: dict[str, Any] = {"id": str(next(self.ids)), "user": user, "mediaType": kind,
                             "text": text, "carouselItem": item, "created": self.now(),
                             "replyTo": reply_to, "params": _visible(p), "pollsLeft": 0,
                             "outcome": "FINISHED", "error_message": None, "mediaId": None,
                             "children": []}
        if kind == "CAROUSEL":
            self._carousel(c, p)
        elif kind in ("IMAGE", "VIDEO"):
            self._download(c, p, kind)
        with self.lock:
            self.containers[c["id"]] = c
            if kind == "TEXT" and p.get("auto_publish_text", "").lower() == "true":
                self._check_quota(c)
                self._new_post(c)
        return json_response({"id": c["id"]})

    def _carousel(self, c: dict[str, Any], p: dict[str, str]) -> None:
        children = [x for x in (p.get("children") or "").split(",") if x]
        if not rules.CAROUSEL_MIN <= len(children) <= rules.CAROUSEL_MAX:
            raise GraphFailure(100, "A carousel needs 2 to 20 children.")
        with self.lock:
            for child in children:
                entry = self.containers.get(child)
                if entry is None or entry["user"] != c["user"] or not entry["carouselItem"]:
                    raise GraphFailure(100, f"Child {child} is not a carousel item of this "
                                       "user.")
                if self._status(entry) != "FINISHED":
                    raise GraphFailure(100, f"Child {child} is not FINISHED.")
        c["children"] = children

    def _download(self, c: dict[str, Any], p: dict[str, str], kind: str) -> None:
        url = p.get("image_url" if kind == "IMAGE" else "video_url")
        if not url:
            raise GraphFailure(100, f"The parameter {kind.lower()}_url is required.")
        limit = rules.IMAGE_MAX_BYTES if kind == "IMAGE" else rules.VIDEO_MAX_BYTES
        record: dict[str, Any] = {"url": url, "status": None, "bytes": 0}
        data = b""
        try:
            with self._fetcher().stream("GET", url) as response:
                record["status"] = response.status_code
                if response.status_code == 200:
                    for chunk in response.iter_bytes(64 * 1024):
                        data += chunk
                        if len(data) > limit:
                            break
        except httpx.HTTPError:
            record["status"] = "unreachable"
        finally:
            record["bytes"] = len(data)
            with self.lock:
                self.fetches.append(record)
        fmt = sniff(data[:16])
        c["pollsLeft"] = int(self.config["processingPolls"])
        c["facts"] = {"format": fmt, "bytes": len(data)}
        if kind == "IMAGE":
            if record["status"] != 200:
                raise GraphFailure(100, "The media could not be fetched from this URI.",
                                   subcode=2207052)
            if fmt not in ("JPEG", "PNG") or len(data) > limit:
                raise GraphFailure(100, "The image must be a JPEG or PNG of at most 8 MB.")
        elif record["status"] != 200:
            c["outcome"], c["error_message"] = "ERROR", "FAILED_DOWNLOADING_VIDEO"
        elif fmt != "MP4" or len(data) > limit:
            c["outcome"], c["error_message"] = "ERROR", "FAILED_PROCESSING_VIDEO"

    def _status(self, c: dict[str, Any]) -> str:
        if c["mediaId"]:
            return "PUBLISHED"
        if self.now() - c["created"] > DAY:
            return "EXPIRED"
        if c["pollsLeft"] > 0:
            return "IN_PROGRESS"
        return str(c["outcome"])

    def _node(self, request: Request, version: str, node: str) -> Response:
        self._token(request)
        fields = set((request.args.get("fields") or "id").split(",")) | {"id"}
        with self.lock:
            if node in self.containers:
                c = self.containers[node]
                status = self._status(c)
                if status == "IN_PROGRESS":
                    c["pollsLeft"] -= 1  # processing advances as the client looks
                out = {"id": node, "status": status}
                if status == "ERROR":
                    out["error_message"] = c["error_message"] or "UNKNOWN"
                return json_response({k: v for k, v in out.items() if k in fields})
            post = self.posts.get(node)
            if post is not None and not post["deleted"]:
                return json_response({k: v for k, v in _public(post).items() if k in fields})
        raise GraphFailure(100, f"Object with ID '{node}' does not exist, cannot be loaded "
                           "due to missing permissions, or does not support this "
                           "operation.", subcode=33)

    def _force(self, request: Request, cid: str) -> Response:
        body = request.get_json(force=True) or {}
        with self.lock:
            c = self.containers.get(cid)
            if c is None:
                return json_response({"error": "no such container"}, 404)
            if body.get("status") == "EXPIRED":
                c["created"] = self.now() - DAY - 1
            elif body.get("status") == "ERROR":
                c["pollsLeft"], c["outcome"] = 0, "ERROR"
                c["error_message"] = body.get("error_message") or "UNKNOWN"
        return json_response({"ok": True})

    # --- publishing --------------------------------------------------------------------

    def _publish(self, request: Request, version: str, user: str) -> Response:
        self._token(request)
        cid = _params(request).get("creation_id") or ""
        with self.lock:
            c = self.containers.get(cid)
            if c is None or c["user"] != user:
                raise GraphFailure(100, f"The container {cid} does not exist for this "
                                   "user.", subcode=33)
            if c["carouselItem"]:
                raise GraphFailure(100, "A carousel item cannot be published on its own.")
            status = self._status(c)
            if status == "PUBLISHED":
                raise GraphFailure(506, "Duplicate post: the container is already "
                                   "published.")
            if status == "EXPIRED":
                raise GraphFailure(100, "The container has expired (24 h); create a new "
                                   "one.")
            if status == "ERROR":
                raise GraphFailure(100, f"The container failed: {c['error_message']}.")
            if status != "FINISHED":
                raise GraphFailure(9007, "The media is not ready for publishing, please "
                                   "wait for a moment", subcode=2207027)
            self._check_quota(c)
            post = self._new_post(c)
        return json_response({"id": post["id"]})

    def _check_quota(self, c: dict[str, Any]) -> None:
        reply = c["replyTo"] is not None
        total = int(self.config["replyQuotaTotal" if reply else "quotaTotal"])
        if self._usage(reply) >= total:
            raise GraphFailure(9, f"Application request limit reached: {total} "
                               f"{'replies' if reply else 'posts'} in 24 hours.")

    def _new_post(self, c: dict[str, Any]) -> dict[str, Any]:
        mid = str(next(self.ids))
        code = secrets.token_urlsafe(8)
        post = {"id": mid, "containerId": c["id"], "user": c["user"], "created": self.now(),
                "text": c["text"], "media_type": "CAROUSEL_ALBUM"
                if c["mediaType"] == "CAROUSEL" else c["mediaType"] + (
                    "_POST" if c["mediaType"] == "TEXT" else ""),
                "replyTo": c["replyTo"], "children": list(c["children"]),
                "params": c["params"], "deleted": False,
                "permalink": f"https://www.threads.net/@{self.config['username']}/post/{code}"}
        self.posts[mid] = post
        c["mediaId"] = mid
        return post

    def _usage(self, reply: bool) -> int:
        since = self.now() - DAY
        return sum(1 for p in self.posts.values()
                   if p["created"] > since and (p["replyTo"] is not None) == reply)

    def _limit(self, request: Request, version: str, user: str) -> Response:
        self._token(request)
        with self.lock:
            return json_response({"data": [{
                "quota_usage": self._usage(False),
                "config": {"quota_total": int(self.config["quotaTotal"]),
                           "quota_duration": int(DAY)},
                "reply_quota_usage": self._usage(True),
                "reply_config": {"quota_total": int(self.config["replyQuotaTotal"]),
                                 "quota_duration": int(DAY)},
            }]})

    def _list_threads(self, request: Request, version: str, user: str) -> Response:
        return self._listing(request, user, replies=False)

    def _list_replies(self, request: Request, version: str, user: str) -> Response:
        return self._listing(request, user, replies=True)

    def _listing(self, request: Request, user: str, replies: bool) -> Response:
        self._token(request)
        fields = set((request.args.get("fields") or "id").split(",")) | {"id"}
        limit = int(request.args.get("limit") or 25)
        with self.lock:
            found = sorted((p for p in self.posts.values() if p["user"] == user
                            and not p["deleted"] and (p["replyTo"] is not None) == replies),
                           key=lambda p: p["created"], reverse=True)
            data = [{k: v for k, v in _public(p).items() if k in fields}
                    for p in found[:limit]]
        return json_response({"data": data})

    def _delete(self, request: Request, version: str, node: str) -> Response:
        self._token(request)
        with self.lock:
            post = self.posts.get(node)
            if post is None or post["deleted"]:
                raise GraphFailure(100, f"Object with ID '{node}' does not exist.",
                                   subcode=33, status=404)
            self.deletes = [t for t in self.deletes if t > self.now() - DAY]
            if len(self.deletes) >= int(self.config["deleteLimit"]):
                raise GraphFailure(4, "Application request limit reached: 100 deletions "
                                   "in 24 hours.", is_transient=True)
            self.deletes.append(self.now())
            post["deleted"] = True
        return json_response({"success": True, "deleted_id": node})

    # --- tokens and control --------------------------------------------------------------

    def _refresh(self, request: Request) -> Response:
        try:
            if request.args.get("grant_type") != "th_refresh_token":
                raise GraphFailure(100, "grant_type must be th_refresh_token")
            token = self._token(request)
            with self.lock:
                info = self.tokens[token]
                if self.now() - info["issuedAt"] < DAY:
                    raise GraphFailure(100, "The access token must be at least 24 hours "
                                       "old to be refreshed.")
                new = "THAA" + secrets.token_urlsafe(24)
                self.tokens[new] = {"issuedAt": self.now(), "revoked": False,
                                    "expiresAt": self.now() + TOKEN_LIFE}
        except GraphFailure as failure:
            return failure.response()
        return json_response({"access_token": new, "token_type": "bearer",
                              "expires_in": int(TOKEN_LIFE)})

    def _clock(self, request: Request) -> Response:
        body = request.get_json(force=True) or {}
        with self.lock:
            self.offset += float(body.get("advance") or 0.0)
            return json_response({"offset": self.offset})

    def _add_token(self, request: Request) -> Response:
        body = request.get_json(force=True) or {}
        now = self.now()
        with self.lock:
            self.tokens[str(body["token"])] = {
                "issuedAt": float(body.get("issuedAt", now - 2 * DAY)),
                "expiresAt": float(body.get("expiresAt", now + 58 * DAY)),
                "revoked": bool(body.get("revoked", False))}
        return json_response({"ok": True}, 201)

    def _fetcher(self) -> httpx.Client:
        with self.lock:
            if self._client is None:
                self._client = httpx.Client(timeout=FETCH_TIMEOUT_S, follow_redirects=True)
            return self._client


def _params(request: Request) -> dict[str, str]:
    """Graph parameters come in the query string or the form body."""
    return {**dict(request.args.items()), **dict(request.form.items())}


def _visible(params: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in params.items() if k != "access_token"}


def _public(post: dict[str, Any]) -> dict[str, Any]:
    return {"id": post["id"], "text": post["text"], "media_type": post["media_type"],
            "permalink": post["permalink"], "username": None,
            "timestamp": datetime.fromtimestamp(post["created"], UTC).strftime(
                "%Y-%m-%dT%H:%M:%S%z"),
            "is_reply": post["replyTo"] is not None, "replied_to": post["replyTo"],
            "containerId": post["containerId"], "params": post["params"],
            "children": post["children"], "deleted": post["deleted"]}
