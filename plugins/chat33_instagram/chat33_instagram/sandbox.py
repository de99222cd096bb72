"""A stateful imitation of Instagram's content-publishing API (platforms.md §1, §7).

Paths are Meta's own (``/v25.0/{ig-user-id}/media`` ...), so the plugin's real code runs
against it with ``CHAT33_INSTAGRAM_API_BASE`` pointing here. What it imitates:

* containers that download their ``image_url``/``video_url`` for real and check the
  bytes (JPEG, 8 MiB, aspect ratio; MP4/MOV boxes, codecs, duration), then go
  ``IN_PROGRESS`` → ``FINISHED``/``ERROR`` (``status`` carries the subcode) →
  ``PUBLISHED``, or ``EXPIRED`` 24 h after creation;
* ``media_publish`` before ``FINISHED`` → 9007/2207027; again after → 506;
* the rolling 24 h publishing quota (``quota_total`` 50 by default) → 9/2207042;
* ``X-App-Usage``/``X-Business-Use-Case-Usage`` on every answer, and throttling
  (code 80002 when the hourly call budget is spent, or any code forced through
  ``POST /_sandbox/throttle``) with ``estimated_time_to_regain_access``;
* long-lived tokens that expire (190/463) and ``refresh_access_token``;
* both ways of connecting (oauth.md §3, §9): Facebook Login
  (:class:`chat33_core.facebook_login.FacebookLoginServer`: the dialog, the token
  endpoint, ``/me/accounts`` with the Pages of :data:`PAGES`, one linked to a
  professional account, ``/{ig-user-id}``, and ``DELETE /{user-id}/permissions``), and
  Instagram Login: ``/oauth/authorize`` (redirects with ``#_``), ``POST
  /oauth/access_token`` (flat, or ``data: [...]`` with ``tokenShape: "data"``; errors in
  the legacy ``error_type``/``error_message`` shape), ``/access_token``
  (``ig_exchange_token``: 60 days) and ``/me``. Tokens it issues publish, refresh and
  die with their revoked grant like any other.

Beyond the common control API (faults, state, reset) it answers:

* ``POST /_sandbox/config`` — ``quotaTotal``, ``processingPolls``, ``callsPerHour``,
  ``username``, ``tokenShape``;
* ``POST /_sandbox/oauth`` (deny, partial grants...) and ``POST /_sandbox/pages``;
* ``POST /_sandbox/clock`` ``{"advance": seconds}`` — move the sandbox's clock;
* ``POST /_sandbox/tokens`` ``{"token", "issuedAt", "expiresAt", "revoked"}`` (unix
  seconds) — register a token (unknown tokens are accepted as 2 days old, 58 days left);
* ``POST /_sandbox/throttle`` ``{"code": 4, "count": 1, "minutes": 5}``;
* ``POST /_sandbox/containers/<id>`` ``{"status": "EXPIRED" | "ERROR", "subcode": n}``.
"""

from __future__ import annotations

import itertools
import json
import random
import secrets
import string
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
from werkzeug.wrappers import Request, Response

from chat33_core.facebook_login import FacebookLoginServer
from chat33_core.graph import GraphFailure
from chat33_core.sandbox import SandboxApp, json_response
from chat33_core.sandbox_oauth import AuthorizationServer, GrantRefused

from . import rules
from .media_checks import BadMedia, image_facts, video_facts

DAY = 86_400.0
TOKEN_LIFE = 60 * DAY
HOUR = 3600.0
FETCH_TIMEOUT_S = 10.0
#: the Facebook Login user's Pages: one linked to a professional account, one not
PAGES: tuple[dict[str, Any], ...] = (
    {"id": "104600000000001", "name": "Sandbox Studio",
     "tasks": ["ANALYZE", "CREATE_CONTENT", "MODERATE", "MANAGE"],
     "instagram": {"id": "17841400000000001", "username": "sandbox.studio",
                   "name": "Sandbox Studio",
                   "profile_picture_url": "https://scontent.example/ig-studio.jpg"}},
    {"id": "104600000000002", "name": "Page without Instagram",
     "tasks": ["ANALYZE", "CREATE_CONTENT"]},
)
#: what the Facebook Login dialog and Instagram Login's authorize page accept
FACEBOOK_SCOPES = ("instagram_basic", "instagram_content_publish", "pages_show_list",
                   "pages_read_engagement", "business_management", "instagram_manage_comments",
                   "instagram_manage_insights", "public_profile")
INSTAGRAM_SCOPES = ("instagram_business_basic", "instagram_business_content_publish",
                    "instagram_business_manage_comments", "instagram_business_manage_insights")
#: the account that signs in with Instagram Login
IG_LOGIN_USER = {"user_id": "17841400000000009", "id": "26000000000000009",
                 "name": "chat33 sandbox", "account_type": "BUSINESS",
                 "profile_picture_url": "https://scontent.example/ig-sandbox.jpg"}
SHORT_TOKEN_LIFE = HOUR


class InstagramSandbox(SandboxApp):
    """Instagram's Graph API publishing endpoints, in memory."""

    name = "instagram"

    def __init__(self, quota_total: int = 50, processing_polls: int = 2,
                 calls_per_hour: int = 4800, username: str = "chat33sandbox") -> None:
        super().__init__()
        self._fetch_client: httpx.Client | None = None
        self.configurable(quotaTotal=quota_total, processingPolls=processing_polls,
                          callsPerHour=calls_per_hour, username=username, tokenShape="flat")
        self.auth = AuthorizationServer("instagram", self, pkce="ignored")
        self.login = FacebookLoginServer(self, self.auth, PAGES, FACEBOOK_SCOPES,
                                         other_me=self._ig_me)
        self.reset()
        graph = "/<version>"
        self.route("/oauth/authorize", self._ig_authorize, methods=["GET"])
        self.route("/oauth/access_token", self._ig_token, methods=["POST"])
        self.route("/access_token", self._ig_exchange, methods=["GET"])
        self.route("/me", self._ig_me, methods=["GET"])
        self.route("/refresh_access_token", self._refresh, methods=["GET"])
        self.route("/<version>/refresh_access_token", self._refresh, methods=["GET"])
        self.route(f"{graph}/<user>/media", self._create, methods=["POST"])
        self.route(f"{graph}/<user>/media", self._list_media, methods=["GET"])
        self.route(f"{graph}/<user>/stories", self._list_stories, methods=["GET"])
        self.route(f"{graph}/<user>/media_publish", self._publish, methods=["POST"])
        self.route(f"{graph}/<user>/content_publishing_limit", self._limit, methods=["GET"])
        self.route(f"{graph}/<node>/comments", self._comment, methods=["POST"])
        self.route(f"{graph}/<node>", self._node, methods=["GET"])
        self.route("/_sandbox/clock", self._clock, methods=["POST"])
        self.route("/_sandbox/tokens", self._add_token, methods=["POST"])
        self.route("/_sandbox/throttle", self._throttle, methods=["POST"])
        self.route("/_sandbox/containers/<cid>", self._force_container, methods=["POST"])

    # --- state ----------------------------------------------------------------------

    def reset(self) -> None:
        with self.lock:
            self.config = dict(self.defaults)
            self.offset = 0.0
            self.containers: dict[str, dict[str, Any]] = {}
            self.media: dict[str, dict[str, Any]] = {}
            self.comments: list[dict[str, Any]] = []
            self.tokens: dict[str, dict[str, Any]] = {}
            self.calls: list[float] = []
            self.forced_throttle: dict[str, Any] | None = None
            self.fetches: list[dict[str, Any]] = []
            self.ids = itertools.count(random.randint(10**14, 9 * 10**14))
        self.auth.reset()
        self.login.reset()

    def now(self) -> float:
        return time.time() + self.offset

    def state(self) -> dict[str, Any]:
        with self.lock:
            published = sorted(self.media.values(), key=lambda m: m["created"])
            return {
                "config": dict(self.config),
                "clockOffset": self.offset,
                "containers": [self._container_view(c) for c in self.containers.values()],
                "published": [_public(m) for m in published],
                "comments": list(self.comments),
                "fetches": list(self.fetches),
                "quota": {"total": self.config["quotaTotal"], "usage": self._usage(DAY)},
                "tokens": [{"token": t, **info} for t, info in self.tokens.items()],
                # the latest API requests, e.g. to count media_publish calls
                "requests": [f"{m} {p}" for m, p in self.requests
                             if not p.startswith("/_sandbox/")][-200:],
            }

    def _container_view(self, c: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in c.items() if k not in ("outcome",)} | {
            "status_code": self._status_of(c)}

    # --- WSGI plumbing: auth, usage headers, errors ---------------------------------------

    def dispatch(self, request: Request) -> Response:
        if request.path.startswith("/_sandbox/"):
            return super().dispatch(request)
        try:
            with self.lock:
                usage = self._count_call(request)
            try:
                response = super().dispatch(request)
            except (ValueError, KeyError, TypeError) as exc:
                # a malformed parameter: Meta answers 100, never a bare 500
                raise GraphFailure(100, f"Invalid parameter: {exc}") from exc
        except GraphFailure as failure:
            response = failure.response()
            usage = failure.headers or self._usage_headers(request)
        if isinstance(usage, dict):
            for key, value in usage.items():
                response.headers.setdefault(key, value)
        return response

    def _count_call(self, request: Request) -> dict[str, str]:
        now = self.now()
        self.calls = [t for t in self.calls if t > now - HOUR]
        forced = self.forced_throttle
        if forced is not None and forced["count"] > 0:
            forced["count"] -= 1
            if forced["count"] == 0:
                self.forced_throttle = None
            headers = self._usage_headers(request, percent=100 + forced["code"] % 7,
                                          regain_minutes=forced["minutes"])
            raise GraphFailure(forced["code"], _THROTTLE_MESSAGES.get(
                forced["code"], "Calls to this API have exceeded the rate limit."),
                headers=headers, is_transient=True)
        limit = max(1, int(self.config["callsPerHour"]))
        if len(self.calls) >= limit:
            regain = max(1, round((self.calls[0] + HOUR - now) / 60))
            headers = self._usage_headers(request, percent=100, regain_minutes=regain)
            raise GraphFailure(80002, "There have been too many calls to this Instagram "
                               "account. Wait a bit and try again.", headers=headers,
                               is_transient=True)
        self.calls.append(now)
        return self._usage_headers(request)

    def _usage_headers(self, request: Request, percent: float | None = None,
                       regain_minutes: int = 0) -> dict[str, str]:
        limit = max(1, int(self.config["callsPerHour"]))
        pct = int(percent if percent is not None else 100 * len(self.calls) / limit)
        owner = request.path.strip("/").split("/")[1] if request.path.count("/") >= 2 else "0"
        app = {"call_count": pct, "total_cputime": pct // 2, "total_time": pct // 2}
        buc = {owner: [{"type": "instagram", "call_count": pct, "total_cputime": pct // 2,
                        "total_time": pct // 2,
                        "estimated_time_to_regain_access": regain_minutes}]}
        return {"X-App-Usage": json.dumps(app), "X-Business-Use-Case-Usage": json.dumps(buc)}

    def _token(self, request: Request) -> str:
        """The request's token, checked; raises the Graph error Meta would give."""
        auth = request.headers.get("Authorization", "")
        token = ""
        if auth.lower().startswith(("bearer ", "oauth ")):
            token = auth.split(" ", 1)[1].strip()
        token = token or request.args.get("access_token") or request.form.get(
            "access_token") or ""
        if not token:
            raise GraphFailure(2500, "An active access token must be used to query "
                               "information about the current user.")
        self.login.check(token)
        with self.lock:
            info = self.tokens.setdefault(token, {
                "issuedAt": self.now() - 2 * DAY, "expiresAt": self.now() + 58 * DAY,
                "revoked": False})
            if info.get("revoked"):
                raise GraphFailure(190, "Error validating access token: The session has "
                                   "been invalidated because the user changed their "
                                   "password or Facebook has changed the session for "
                                   "security reasons.", subcode=460)
            if info["expiresAt"] <= self.now():
                raise GraphFailure(190, "Error validating access token: Session has expired.",
                                   subcode=463)
        return token

    # --- containers -----------------------------------------------------------------------

    def _create(self, request: Request, version: str, user: str) -> Response:
        self._token(request)
        p = _params(request)
        media_type = (p.get("media_type") or "").upper() or None
        carousel_item = p.get("is_carousel_item", "").lower() == "true"
        caption = p.get("caption")
        if media_type not in (None, "REELS", "STORIES", "CAROUSEL", "VIDEO", "IMAGE"):
            raise GraphFailure(100, f"The media type {media_type} is not supported.",
                               subcode=2207023)
        if carousel_item and (caption or p.get("location_id")):
            raise GraphFailure(100, "Caption and location are not allowed on carousel "
                               "items; set them on the carousel container.")
        if caption is not None:
            _check_caption(caption)
        container: dict[str, Any] = {
            "id": str(next(self.ids)), "user": user, "mediaType": media_type or "IMAGE",
            "carouselItem": carousel_item, "caption": caption, "created": self.now(),
            "params": {k: v for k, v in p.items() if k != "access_token"},
            "status": None, "pollsLeft": 0, "outcome": "FINISHED", "subcode": None,
            "mediaId": None, "children": [],
        }
        if media_type == "CAROUSEL":
            self._carousel_parent(container, p)
        elif p.get("video_url") or media_type in ("REELS", "VIDEO"):
            self._video_container(container, p, media_type)
        else:
            self._image_container(container, p, media_type)
        with self.lock:
            self.containers[container["id"]] = container
        return json_response({"id": container["id"]})

    def _image_container(self, c: dict[str, Any], p: Mapping[str, str],
                         media_type: str | None) -> None:
        url = p.get("image_url")
        if not url:
            raise GraphFailure(100, "The parameter image_url is required.")
        data = self._fetch(url, rules.IMAGE_MAX_BYTES, too_big=GraphFailure(
            36000, "The image size is too large.", subcode=2207004,
            user_msg="The image is too large to download. It should be less than 8 MiB."))
        try:
            facts = image_facts(data)
        except BadMedia as exc:
            raise GraphFailure(36001, "The image format is not supported.", subcode=2207005,
                               user_msg=f"The image could not be read ({exc}).") from exc
        if facts.format != "JPEG":  # MPO and JPS included: Meta takes plain JPEG only
            raise GraphFailure(36001, "The image format is not supported.", subcode=2207005,
                               user_msg=f"The image format {facts.format} is not supported; "
                               "use JPEG.")
        ratio = facts.width / facts.height
        lo, hi = rules.IMAGE_RATIO
        if media_type != "STORIES" and not lo - rules.RATIO_SLACK <= ratio <= \
                hi + rules.RATIO_SLACK:
            raise GraphFailure(36003, "The aspect ratio is not supported.", subcode=2207009,
                               user_msg=f"The submitted image with aspect ratio "
                               f"{facts.width}:{facts.height} cannot be published. Please "
                               "submit an image with a valid aspect ratio.")
        for tag in _json_list(p.get("user_tags")):
            if media_type != "STORIES" and ("x" not in tag or "y" not in tag):
                raise GraphFailure(100, "user_tags need x and y on images.")
            for axis in ("x", "y"):
                if axis in tag and not 0.0 <= float(tag[axis]) <= 1.0:
                    raise GraphFailure(100, f"user_tags {axis} must be between 0 and 1.")
        c["facts"] = {"format": facts.format, "width": facts.width, "height": facts.height,
                      "bytes": len(data)}

    def _video_container(self, c: dict[str, Any], p: Mapping[str, str],
                         media_type: str | None) -> None:
        url = p.get("video_url")
        if not url:
            raise GraphFailure(100, "The parameter video_url is required.")
        story = media_type == "STORIES"
        max_bytes = rules.STORY_MAX_BYTES if story else rules.REEL_MAX_BYTES
        lo, hi = rules.STORY_DURATION_S if story else rules.REEL_DURATION_S
        c["pollsLeft"] = int(self.config["processingPolls"])
        c["status"] = "IN_PROGRESS"
        try:
            data = self._fetch(url, max_bytes, too_big=None)
        except _TooBig:
            c["outcome"], c["subcode"] = "ERROR", 2207026
            return
        try:
            facts = video_facts(data)
        except BadMedia as exc:
            c["outcome"], c["subcode"], c["reason"] = "ERROR", 2207026, str(exc)
            return
        c["facts"] = attrs_dict(facts) | {"bytes": len(data)}
        problems = []
        if facts.video_codec not in rules.VIDEO_CODECS:
            problems.append(f"video codec {facts.video_codec}")
        if facts.audio_codec not in (None, "aac"):
            problems.append(f"audio codec {facts.audio_codec}")
        if facts.duration_s is None or not lo <= facts.duration_s <= hi:
            problems.append(f"duration {facts.duration_s}")
        if problems:
            c["outcome"], c["subcode"], c["reason"] = "ERROR", 2207026, "; ".join(problems)
        offset = p.get("thumb_offset")
        if offset is not None and facts.duration_s is not None \
                and not 0 <= float(offset) < facts.duration_s * 1000:
            raise GraphFailure(1, "The thumbnail offset is out of range.", subcode=2207057,
                               user_msg="The thumb_offset must be at least 0 and less "
                               "than the video's duration.")

    def _carousel_parent(self, c: dict[str, Any], p: Mapping[str, str]) -> None:
        ids = [i for i in (p.get("children") or "").split(",") if i]
        if not rules.CAROUSEL_MIN <= len(ids) <= rules.CAROUSEL_MAX:
            raise GraphFailure(100, "The carousel must have 2 to 10 items.", subcode=2207028,
                               user_msg=f"A carousel needs 2 to 10 items; {len(ids)} given.")
        with self.lock:
            for cid in ids:
                child = self.containers.get(cid)
                if child is None or not child["carouselItem"] or child["user"] != c["user"]:
                    raise GraphFailure(100, f"Child {cid} is not a carousel item of this "
                                       "account.")
                status = self._status_of(child)
                if status == "EXPIRED":
                    raise GraphFailure(-2, "The media has expired.", subcode=2207020)
                if status != "FINISHED":
                    raise GraphFailure(9007, "The media is not ready for publishing, please "
                                       "wait for a moment", subcode=2207027)
        c["children"] = ids
        c["pollsLeft"] = 1  # the album is assembled while the client waits

    def _status_of(self, c: dict[str, Any]) -> str:
        if c["status"] == "PUBLISHED":
            return "PUBLISHED"
        if c.get("forced"):
            return str(c["forced"])
        if self.now() - c["created"] >= DAY:
            return "EXPIRED"
        if c["pollsLeft"] > 0:
            return "IN_PROGRESS"
        return str(c["outcome"])

    def _node(self, request: Request, version: str, node: str) -> Response:
        self._token(request)
        fields = [f for f in (request.args.get("fields") or "id").split(",") if f]
        with self.lock:
            if node in self.containers:
                c = self.containers[node]
                status = self._status_of(c)
                if status == "IN_PROGRESS":
                    c["pollsLeft"] -= 1  # processing advances as the client looks
                out: dict[str, Any] = {"id": node, "status_code": status}
                if status == "ERROR":
                    out["status"] = f"Error: {c['subcode']}"
                elif status == "EXPIRED":
                    out["status"] = "Error: 2207020"
                else:
                    out["status"] = status.title().replace("_", " ")
                return json_response({k: v for k, v in out.items()
                                      if k in fields or k == "id"})
            if node in self.media:
                m = self.media[node]
                return json_response({k: v for k, v in _public(m).items()
                                      if k in fields or k == "id"})
        account = self.login.instagram_account(node)
        if account is not None:  # a professional account linked to a Page
            return json_response({k: v for k, v in account.items()
                                  if k in fields or k == "id"})
        raise GraphFailure(100, f"Unsupported get request. Object with ID '{node}' does not "
                           "exist, cannot be loaded due to missing permissions, or does not "
                           "support this operation.", subcode=33)

    def _force_container(self, request: Request, cid: str) -> Response:
        body = request.get_json(force=True) or {}
        with self.lock:
            c = self.containers.get(cid)
            if c is None:
                return json_response({"error": "no such container"}, 404)
            status = body.get("status")
            if status == "EXPIRED":
                c["created"] = self.now() - DAY - 1
            elif status == "ERROR":
                c["pollsLeft"], c["outcome"] = 0, "ERROR"
                c["subcode"] = int(body.get("subcode") or 2207053)
            elif status == "FINISHED":
                c["pollsLeft"], c["outcome"] = 0, "FINISHED"
        return json_response({"ok": True})

    # --- publishing -----------------------------------------------------------------------

    def _publish(self, request: Request, version: str, user: str) -> Response:
        self._token(request)
        cid = _params(request).get("creation_id")
        with self.lock:
            c = self.containers.get(cid or "")
            if c is None or c["user"] != user:
                raise GraphFailure(100, f"The container {cid} does not exist for this "
                                   "account.", subcode=33)
            if c["carouselItem"]:
                raise GraphFailure(100, "A carousel item cannot be published on its own.")
            status = self._status_of(c)
            if status == "PUBLISHED":
                raise GraphFailure(506, "Duplicate post: the container is already "
                                   "published.")
            if status == "EXPIRED":
                raise GraphFailure(-2, "The media has expired.", subcode=2207020,
                                   user_msg="The media container expired; create a new one.")
            if status == "ERROR":
                raise GraphFailure(-1, "The media failed processing.", subcode=2207053,
                                   user_msg="Create a new container.")
            if status != "FINISHED":
                raise GraphFailure(9007, "The media is not ready for publishing, please wait "
                                   "for a moment", subcode=2207027,
                                   user_msg="Media ID is not available")
            if self._usage(DAY) >= int(self.config["quotaTotal"]):
                raise GraphFailure(9, "Application request limit reached", subcode=2207042,
                                   user_msg="You reached the maximum number of posts that "
                                   "is allowed to be published by Content Publishing API.")
            media = self._new_media(c)
        return json_response({"id": media["id"]})

    def _new_media(self, c: dict[str, Any]) -> dict[str, Any]:
        mid = str(next(self.ids))
        code = "".join(random.choices(string.ascii_letters + string.digits + "_-", k=11))
        kind = c["mediaType"]
        username = self.config["username"]
        if kind == "STORIES":
            permalink = f"https://www.instagram.com/stories/{username}/{mid}/"
            product, media_type = "STORY", "VIDEO" if "video_url" in c["params"] else "IMAGE"
        elif kind == "REELS":
            permalink, product, media_type = (f"https://www.instagram.com/reel/{code}/",
                                              "REELS", "VIDEO")
        elif kind == "CAROUSEL":
            permalink, product, media_type = (f"https://www.instagram.com/p/{code}/", "FEED",
                                              "CAROUSEL_ALBUM")
        else:
            permalink, product, media_type = (f"https://www.instagram.com/p/{code}/", "FEED",
                                              "IMAGE")
        media = {"id": mid, "containerId": c["id"], "user": c["user"], "created": self.now(),
                 "caption": c["caption"], "media_type": media_type,
                 "media_product_type": product, "permalink": permalink,
                 "shortcode": code, "username": username, "children": list(c["children"]),
                 "params": c["params"]}
        self.media[mid] = media
        c["status"], c["mediaId"] = "PUBLISHED", mid
        return media

    def _usage(self, window: float) -> int:
        since = self.now() - window
        return sum(1 for m in self.media.values() if m["created"] > since)

    def _limit(self, request: Request, version: str, user: str) -> Response:
        self._token(request)
        since_raw = request.args.get("since")
        window = DAY
        if since_raw:
            since = float(since_raw)
            if since < self.now() - DAY - 60:
                raise GraphFailure(100, "The since parameter must be no older than 24 hours.")
            window = max(0.0, self.now() - since)
        with self.lock:
            usage = self._usage(window)
        return json_response({"data": [{
            "quota_usage": usage,
            "config": {"quota_total": int(self.config["quotaTotal"]), "quota_duration": 86400},
        }]})

    def _list_media(self, request: Request, version: str, user: str) -> Response:
        return self._listing(request, user, stories=False)

    def _list_stories(self, request: Request, version: str, user: str) -> Response:
        return self._listing(request, user, stories=True)

    def _listing(self, request: Request, user: str, stories: bool) -> Response:
        self._token(request)
        fields = (request.args.get("fields") or "id").split(",")
        limit = int(request.args.get("limit") or 25)
        with self.lock:
            items = [m for m in self.media.values() if m["user"] == user and
                     (m["media_product_type"] == "STORY") == stories]
            if stories:  # stories are listed for 24 h only
                items = [m for m in items if m["created"] > self.now() - DAY]
            items.sort(key=lambda m: m["created"], reverse=True)
            data = [{k: v for k, v in _public(m).items() if k in fields or k == "id"}
                    for m in items[:limit]]
        return json_response({"data": data})

    def _comment(self, request: Request, version: str, node: str) -> Response:
        self._token(request)
        message = _params(request).get("message")
        with self.lock:
            if node not in self.media:
                raise GraphFailure(100, f"Object with ID '{node}' does not exist.", subcode=33)
            if not message:
                raise GraphFailure(100, "The parameter message is required.")
            comment = {"id": str(next(self.ids)), "mediaId": node, "text": message}
            self.comments.append(comment)
        return json_response({"id": comment["id"]})

    # --- tokens ------------------------------------------------------------------------

    def _refresh(self, request: Request, version: str | None = None) -> Response:
        try:
            if request.args.get("grant_type") != "ig_refresh_token":
                raise GraphFailure(100, "grant_type must be ig_refresh_token")
            token = request.args.get("access_token") or ""
            if not token:
                raise GraphFailure(100, "The parameter access_token is required.")
            self._token(request)
            with self.lock:
                info = self.tokens[token]
                if self.now() - info["issuedAt"] < DAY:
                    raise GraphFailure(100, "The access token must be at least 24 hours "
                                       "old to be refreshed.")
                new = "IGAA" + secrets.token_urlsafe(24)
                self.tokens[new] = {"issuedAt": self.now(), "expiresAt": self.now() + TOKEN_LIFE,
                                    "revoked": False, "refreshedFrom": token}
        except GraphFailure as failure:
            return failure.response()
        return json_response({"access_token": new, "token_type": "bearer",
                              "expires_in": int(TOKEN_LIFE)})

    # --- Instagram Login ---------------------------------------------------------------

    def _ig_authorize(self, request: Request) -> Response:
        return self.auth.authorize(request, subject=IG_LOGIN_USER["user_id"], fragment="#_",
                                   allowed_scopes=INSTAGRAM_SCOPES,
                                   extra={"flow": "instagram"})

    def _ig_token(self, request: Request) -> Response:
        """``POST /oauth/access_token`` (url-encoded or multipart): a short-lived token."""
        form = request.form
        if form.get("grant_type") != "authorization_code":
            return _legacy_error("Invalid grant_type: authorization_code is expected")
        try:
            consent = self.auth.redeem(form.get("code"), client_id=form.get("client_id"),
                                       client_secret=form.get("client_secret") or "",
                                       redirect_uri=form.get("redirect_uri"))
        except GrantRefused as refused:
            if refused.error == "invalid_client":
                return _legacy_error("Error validating client secret.")
            return _legacy_error(f"Error validating verification code: "
                                 f"{refused.description}")
        if consent.extra.get("flow") != "instagram":
            return _legacy_error("Error validating verification code: the code was not "
                                 "issued by Instagram Login")
        token = "IGQW" + secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[token] = {"issuedAt": self.now(),
                                  "expiresAt": self.now() + SHORT_TOKEN_LIFE,
                                  "revoked": False, "igLogin": "short"}
            shape = self.config["tokenShape"]
        body = {"access_token": token, "user_id": IG_LOGIN_USER["user_id"],
                "permissions": ",".join(consent.scopes)}
        return json_response({"data": [body]} if shape == "data" else body)

    def _ig_exchange(self, request: Request) -> Response:
        """``GET /access_token?grant_type=ig_exchange_token``: a 60-day token."""
        try:
            if request.args.get("grant_type") != "ig_exchange_token":
                raise GraphFailure(100, "grant_type must be ig_exchange_token")
            if not self.auth.client_ok(self.auth.client_id,
                                       request.args.get("client_secret") or ""):
                raise GraphFailure(101, "Error validating client secret.")
            short = self._token(request)
            with self.lock:
                if self.tokens[short].get("igLogin") != "short":
                    raise GraphFailure(190, "Invalid OAuth access token: not a short-lived "
                                       "Instagram Login token")
                token = "IGAA" + secrets.token_urlsafe(24)
                self.tokens[token] = {"issuedAt": self.now(),
                                      "expiresAt": self.now() + TOKEN_LIFE,
                                      "revoked": False, "igLogin": "long"}
        except GraphFailure as failure:
            return failure.response()
        return json_response({"access_token": token, "token_type": "bearer",
                              "expires_in": int(TOKEN_LIFE)})

    def _ig_me(self, request: Request, version: str | None = None) -> Response:
        """``/me`` of graph.instagram.com, for the Instagram Login account."""
        try:
            token = self._token(request)
            with self.lock:
                if not self.tokens[token].get("igLogin"):
                    raise GraphFailure(190, "Invalid OAuth access token - Cannot parse "
                                       "access token")
                user = {**IG_LOGIN_USER, "username": self.config["username"]}
        except GraphFailure as failure:
            return failure.response()
        fields = [f for f in (request.args.get("fields") or "id").split(",") if f]
        return json_response({k: v for k, v in user.items() if k in fields or k == "id"})

    # --- control API --------------------------------------------------------------------

    def _clock(self, request: Request) -> Response:
        body = request.get_json(force=True) or {}
        with self.lock:
            self.offset += float(body.get("advance") or 0.0)
            return json_response({"now": self.now(), "offset": self.offset})

    def _add_token(self, request: Request) -> Response:
        body = request.get_json(force=True) or {}
        now = self.now()
        with self.lock:
            self.tokens[str(body["token"])] = {
                "issuedAt": float(body.get("issuedAt", now - 2 * DAY)),
                "expiresAt": float(body.get("expiresAt", now + 58 * DAY)),
                "revoked": bool(body.get("revoked", False)),
            }
        return json_response({"ok": True}, 201)

    def _throttle(self, request: Request) -> Response:
        body = request.get_json(force=True) or {}
        with self.lock:
            self.forced_throttle = {"code": int(body.get("code", 80002)),
                                    "count": int(body.get("count", 1)),
                                    "minutes": int(body.get("minutes", 5))}
        return json_response({"ok": True}, 201)

    # --- fetching media ---------------------------------------------------------------

    def _fetch(self, url: str, max_bytes: int, too_big: GraphFailure | None) -> bytes:
        """Download ``url`` as Meta's fetcher would (never holding the lock)."""
        record: dict[str, Any] = {"url": url, "status": None, "bytes": 0}
        chunks: list[bytes] = []
        try:
            with self._fetcher().stream("GET", url) as response:
                record["status"] = response.status_code
                if response.status_code != 200:
                    raise GraphFailure(9004, "The media could not be fetched from this uri.",
                                       subcode=2207052,
                                       user_msg=f"The media at {url} answered "
                                       f"{response.status_code}.")
                for chunk in response.iter_bytes(64 * 1024):
                    record["bytes"] += len(chunk)
                    if record["bytes"] > max_bytes:
                        if too_big is not None:
                            raise too_big
                        raise _TooBig
                    chunks.append(chunk)
        except httpx.TimeoutException as exc:
            raise GraphFailure(-2, "Media download has timed out.", subcode=2207003,
                               is_transient=True) from exc
        except httpx.HTTPError as exc:
            raise GraphFailure(9004, "The media could not be fetched from this uri.",
                               subcode=2207052, user_msg=f"Could not fetch {url}.") from exc
        finally:
            with self.lock:
                self.fetches.append(record)
        return b"".join(chunks)


    def _fetcher(self) -> httpx.Client:
        # one client for every download: its connections are reused (thread-safe)
        with self.lock:
            if self._fetch_client is None:
                self._fetch_client = httpx.Client(timeout=FETCH_TIMEOUT_S,
                                                  follow_redirects=True)
            return self._fetch_client


class _TooBig(Exception):
    pass


_THROTTLE_MESSAGES = {
    4: "Application request limit reached",
    17: "User request limit reached",
    32: "Page request limit reached",
    613: "Calls to this api have exceeded the rate limit.",
    80002: "There have been too many calls to this Instagram account.",
}


def _legacy_error(message: str) -> Response:
    """api.instagram.com's own error shape (oauth.md §2.4)."""
    return json_response({"error_type": "OAuthException", "code": 400,
                          "error_message": message}, 400)


def _params(request: Request) -> dict[str, str]:
    """Graph parameters come in the query string or the form body."""
    out = dict(request.args.items())
    out.update(request.form.items())
    return out


def _json_list(raw: str | None) -> list[dict[str, Any]]:
    if not raw:
        return []
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise GraphFailure(100, "Invalid JSON in user_tags.") from exc
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise GraphFailure(100, "user_tags must be a JSON array of objects.")
    return value


def _check_caption(caption: str) -> None:
    if len(caption) > rules.CAPTION_MAX or \
            len(rules.HASHTAG.findall(caption)) > rules.HASHTAGS_MAX:
        raise GraphFailure(36004, "The caption is too long.", subcode=2207010,
                           user_msg="The caption is too long: at most 2,200 characters "
                           "and 30 hashtags.")
    if len(rules.MENTION.findall(caption)) > rules.MENTIONS_MAX:
        raise GraphFailure(100, "Too many tags.", subcode=2207040,
                           user_msg="You can mention at most 20 accounts in a caption.")


def _public(m: Mapping[str, Any]) -> dict[str, Any]:
    """A media object as the Graph API shows it."""
    return {
        "id": m["id"], "caption": m["caption"], "media_type": m["media_type"],
        "media_product_type": m["media_product_type"], "permalink": m["permalink"],
        "shortcode": m["shortcode"], "username": m["username"],
        "timestamp": datetime.fromtimestamp(m["created"], UTC).strftime("%Y-%m-%dT%H:%M:%S%z"),
        "containerId": m["containerId"],
        "children": {"data": [{"id": c} for c in m["children"]]} if m["children"] else None,
        "params": m["params"],
    }


def attrs_dict(value: Any) -> dict[str, Any]:
    import attrs

    return attrs.asdict(value)
