"""A local imitation of LinkedIn's Posts, Images and Videos APIs (platforms-more.md §4.7).

What it reproduces, because the plugin's real code path depends on it:

* every ``/rest`` call needs ``LinkedIn-Version`` (400 without; 426 for a version in
  ``sunset_versions``) and ``X-Restli-Protocol-Version: 2.0.0`` (400 without), and a
  known bearer token (401 ``{"status":401,"serviceErrorCode":65600,"code":
  "INVALID_ACCESS_TOKEN"}``; ``EXPIRED_ACCESS_TOKEN`` for an expired one);
* ``POST /rest/posts``: 201 with an empty body and the URN in ``x-restli-id``; the
  author must be the token's member, or an organization it administers (403 else);
  ``commentary`` is **cut at the first unescaped reserved character** (as LinkedIn does,
  silently) and over ``max_characters`` UTF-16 units is 422; identical commentary and
  media within ``duplicate_window_s`` is 422 ``DUPLICATE_POST`` naming the first post;
  ``multiImage`` takes 2-20 images; media must be uploaded (and a video ``AVAILABLE``);
* ``GET /rest/posts?q=author&author=...``: the author's posts, newest first (403 when
  ``posts_readable`` is off, as for a ``w_member_social``-only token); posts younger than
  ``listing_lag_s`` are not listed yet (whether LinkedIn's finder lags: [?]);
* ``DELETE /rest/posts/{urn}``: 204, 404 once gone;
* images: ``initializeUpload`` → one ``PUT`` of the whole file (sniffed: JPEG/PNG/GIF);
  upload URLs expire after ``upload_url_ttl_s`` (403 after);
* videos: ``initializeUpload`` with ``fileSizeBytes`` → ``uploadInstructions`` of
  ``part_bytes`` (4 MB) → ``PUT`` each part, answered with an ``ETag`` → ``finalizeUpload``
  checks the ETags in order → ``GET /rest/videos/{urn}`` answers ``PROCESSING`` for
  ``processing_polls`` polls, then ``AVAILABLE``;
* ``POST /oauth/v2/accessToken`` ``grant_type=refresh_token``: only when
  ``refresh_enabled`` (LinkedIn grants refresh tokens to approved apps); a new access
  token of 60 days, the same refresh token with its remaining lifetime;
* daily limits per member (``daily_posts``), reset at midnight UTC: 429.
"""

from __future__ import annotations

import hashlib
import itertools
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from werkzeug.wrappers import Request, Response

from chat33_core.sandbox import SandboxApp, json_response, sniff

from .rules import RESERVED

DEMO_ACCOUNT = {"urn": "urn:li:person:chat33Demo", "username": "chat33-demo",
                "token": "sandbox-token", "refresh_token": "sandbox-refresh",
                "organization": "urn:li:organization:3300"}
ACCESS_TOKEN_S = 60 * 24 * 3600
REFRESH_TOKEN_S = 365 * 24 * 3600


def error(status: int, code: str, message: str, service_code: int = 100,
          **extra: Any) -> Response:
    return json_response({"status": status, "serviceErrorCode": service_code, "code": code,
                          "message": message} | extra, status)


def unescaped(commentary: str) -> str:
    """What LinkedIn keeps of ``commentary``: everything before the first reserved
    character that no backslash escapes, with the escapes removed."""
    kept, escaping = [], False
    for ch in commentary:
        if escaping:
            kept.append(ch)
            escaping = False
        elif ch == "\\":
            escaping = True
        elif ch in RESERVED:
            break
        else:
            kept.append(ch)
    return "".join(kept)


class LinkedInSandbox(SandboxApp):
    name = "linkedin"

    def __init__(self) -> None:
        super().__init__()
        self.configurable(max_characters=3000, part_bytes=4_194_304, processing_polls=2,
                          duplicate_window_s=600, posts_readable=True, listing_lag_s=0,
                          refresh_enabled=True, daily_posts=150,
                          sunset_versions=["202401", "202507"],
                          fail_processing=False, upload_url_ttl_s=3600)
        self.route("/rest/posts", self.create_post, ["POST"])
        self.route("/rest/posts", self.list_posts, ["GET"])
        self.route("/rest/posts/<path:urn>", self.delete_post, ["DELETE"])
        self.route("/rest/images", self.images_action, ["POST"])
        self.route("/rest/videos", self.videos_action, ["POST"])
        self.route("/rest/videos/<path:urn>", self.get_video, ["GET"])
        self.route("/dms-uploads/<kind>/<upload_id>", self.upload, ["PUT"])
        self.route("/oauth/v2/accessToken", self.token, ["POST"])
        self.route("/_sandbox/tokens", self.add_token, ["POST"])
        self.reset()

    def reset(self) -> None:
        self.config = dict(self.defaults)
        self.ids = itertools.count(7_300_000_000_000_000_001)
        now = time.time()
        self.tokens: dict[str, dict[str, Any]] = {DEMO_ACCOUNT["token"]: {
            "member": DEMO_ACCOUNT["urn"], "organizations": [DEMO_ACCOUNT["organization"]],
            "expires": now + ACCESS_TOKEN_S}}
        self.refresh_tokens: dict[str, dict[str, Any]] = {DEMO_ACCOUNT["refresh_token"]: {
            "member": DEMO_ACCOUNT["urn"], "expires": now + REFRESH_TOKEN_S}}
        self.posts: dict[str, dict[str, Any]] = {}
        self.images: dict[str, dict[str, Any]] = {}
        self.videos: dict[str, dict[str, Any]] = {}
        self.uploads: dict[str, dict[str, Any]] = {}
        self.daily: dict[tuple[str, str], int] = {}

    def state(self) -> dict[str, Any]:
        with self.lock:
            return {"posts": list(self.posts.values()),
                    "images": list(self.images.values()),
                    "videos": [{k: v for k, v in video.items() if k != "data"}
                               for video in self.videos.values()],
                    "tokens": sorted(self.tokens), "config": dict(self.config),
                    "requests": list(self.requests)}

    # --- headers, tokens, limits -------------------------------------------------------------

    def _check(self, request: Request, headers: bool = True) -> dict[str, Any] | Response:
        """The token's grant, or the answer refusing the request."""
        if headers:
            version = request.headers.get("LinkedIn-Version")
            if not version:
                return error(400, "VERSION_MISSING", "A version must be present. Please "
                             "specify a version by adding the LinkedIn-Version header.")
            if version in self.config["sunset_versions"]:
                return error(426, "NONEXISTENT_VERSION",
                             f"Requested version {version} is not active")
            if request.headers.get("X-Restli-Protocol-Version") != "2.0.0":
                return error(400, "ILLEGAL_ARGUMENT", "X-Restli-Protocol-Version 2.0.0 is "
                             "required by this API")
        auth = request.headers.get("Authorization", "")
        grant = self.tokens.get(auth.removeprefix("Bearer ").strip()) \
            if auth.startswith("Bearer ") else None
        if grant is None:
            return error(401, "INVALID_ACCESS_TOKEN", "Invalid access token", 65600)
        if grant["expires"] <= time.time():
            return error(401, "EXPIRED_ACCESS_TOKEN", "The token used in the request has "
                         "expired", 65601)
        return grant

    def _may_author(self, grant: dict[str, Any], author: str) -> bool:
        return author == grant["member"] or author in grant["organizations"]

    # --- posts ---------------------------------------------------------------------------------

    def create_post(self, request: Request) -> Response:
        with self.lock:
            grant = self._check(request)
            if isinstance(grant, Response):
                return grant
            body = request.get_json(silent=True)
            if not isinstance(body, dict) or not isinstance(body.get("author"), str):
                return error(400, "ILLEGAL_ARGUMENT", "author is required")
            if not self._may_author(grant, body["author"]):
                return error(403, "ACCESS_DENIED", "Not enough permissions to access: "
                             "partnerApiPostsExternal.CREATE.20260101")
            day = datetime.now(UTC).date().isoformat()
            used = self.daily.get((grant["member"], day), 0)
            if used >= int(self.config["daily_posts"]):
                return error(429, "TOO_MANY_REQUESTS", "Resource level throttle APPLICATION "
                             "DAY limit for calls to this resource is reached.")
            if body.get("visibility") not in ("PUBLIC", "CONNECTIONS", "LOGGED_IN"):
                return error(422, "UNPROCESSABLE_ENTITY", "/visibility :: invalid value")
            raw = str(body.get("commentary") or "")
            if len(raw.encode("utf-16-le")) // 2 > int(self.config["max_characters"]):
                return error(422, "UNPROCESSABLE_ENTITY", "/commentary :: length exceeds "
                             f"{self.config['max_characters']} characters")
            problem = self._content_problem(body.get("content"), body["author"])
            if problem is not None:
                return problem
            now = time.time()
            signature = hashlib.sha256(repr((body["author"], raw, body.get("content")))
                                       .encode()).hexdigest()
            for post in self.posts.values():
                if (post["signature"] == signature and not post["deleted"]
                        and now - post["createdAt"] / 1000 <= self.config["duplicate_window_s"]):
                    return json_response({
                        "errorDetailType": "com.linkedin.common.error.BadRequest",
                        "message": f"Unable to create post: Content is a duplicate of "
                                   f"{post['id']}",
                        "errorDetails": {"inputErrors": [{
                            "description": "Duplicate post is detected", "input": {},
                            "code": "DUPLICATE_POST"}]}, "status": 422}, 422)
            urn = f"urn:li:share:{next(self.ids)}"
            self.posts[urn] = {
                "id": urn, "author": body["author"], "commentary": raw,
                "text": unescaped(raw), "visibility": body["visibility"],
                "distribution": body.get("distribution"), "content": body.get("content"),
                "lifecycleState": body.get("lifecycleState"),
                "isReshareDisabledByAuthor": body.get("isReshareDisabledByAuthor"),
                "createdAt": int(now * 1000), "signature": signature, "deleted": False}
            self.daily[(grant["member"], day)] = used + 1
            return Response("", status=201, headers={"x-restli-id": urn})

    def _content_problem(self, content: Any, author: str) -> Response | None:
        if content is None:
            return None
        if not isinstance(content, dict):
            return error(422, "UNPROCESSABLE_ENTITY", "/content :: invalid value")
        if "multiImage" in content:
            images = (content["multiImage"] or {}).get("images") or []
            if not 2 <= len(images) <= 20:
                return error(422, "UNPROCESSABLE_ENTITY", "/content/multiImage/images :: "
                             "between 2 and 20 images are required")
            ids = [str(i.get("id")) for i in images]
        elif isinstance(content.get("media"), dict):
            ids = [str(content["media"].get("id"))]
        else:
            return error(422, "UNPROCESSABLE_ENTITY", "/content :: unknown content type")
        for media_id in ids:
            media = self.images.get(media_id) or self.videos.get(media_id)
            if media is None or media["owner"] != author:
                return error(400, "INVALID_MEDIA", f"{media_id} does not exist or belongs "
                             "to another owner")
            if media_id.startswith("urn:li:video:") and len(ids) > 1:
                return error(422, "UNPROCESSABLE_ENTITY", "a video cannot be combined")
            if media["status"] != "AVAILABLE":
                return error(400, "MEDIA_NOT_READY", f"{media_id} is {media['status']}")
        return None

    def list_posts(self, request: Request) -> Response:
        with self.lock:
            grant = self._check(request)
            if isinstance(grant, Response):
                return grant
            if request.args.get("q") != "author" or not request.args.get("author"):
                return error(400, "ILLEGAL_ARGUMENT", "q=author&author= is required")
            if not self.config["posts_readable"]:
                return error(403, "ACCESS_DENIED", "Not enough permissions to access: "
                             "partnerApiPostsExternal.FINDER-author.20260101")
            author = unquote(request.args["author"])
            if not self._may_author(grant, author):
                return error(403, "ACCESS_DENIED", "Not enough permissions to access posts "
                             f"of {author}")
            count = int(request.args.get("count") or 10)
            # the finder reads a replica: the newest posts may be missing for a while
            newest = (time.time() - float(self.config["listing_lag_s"])) * 1000
            posts = sorted((p for p in self.posts.values()
                            if p["author"] == author and not p["deleted"]
                            and p["createdAt"] <= newest),
                           key=lambda p: p["createdAt"], reverse=True)
            keep = ("id", "author", "commentary", "visibility", "content", "createdAt",
                    "lifecycleState")
            return json_response({"elements": [{k: p[k] for k in keep}
                                               for p in posts[:count]],
                                  "paging": {"start": 0, "count": count,
                                             "total": len(posts)}})

    def delete_post(self, request: Request, urn: str) -> Response:
        with self.lock:
            grant = self._check(request)
            if isinstance(grant, Response):
                return grant
            post = self.posts.get(unquote(urn))
            if post is None or post["deleted"]:
                return error(404, "NOT_FOUND", f"Post {unquote(urn)} does not exist")
            if not self._may_author(grant, post["author"]):
                return error(403, "ACCESS_DENIED", "Not enough permissions to delete")
            post["deleted"] = True
            return Response("", status=204)

    # --- media ---------------------------------------------------------------------------------

    def _init_request(self, request: Request, grant: dict[str, Any]
                      ) -> dict[str, Any] | Response:
        body = request.get_json(silent=True) or {}
        init = body.get("initializeUploadRequest") if isinstance(body, dict) else None
        if not isinstance(init, dict) or not isinstance(init.get("owner"), str):
            return error(400, "ILLEGAL_ARGUMENT", "initializeUploadRequest.owner is required")
        if not self._may_author(grant, init["owner"]):
            return error(403, "ACCESS_DENIED", "Accessing this resource is forbidden. Please "
                         "check your permissions for this resource")
        return init

    def images_action(self, request: Request) -> Response:
        with self.lock:
            grant = self._check(request)
            if isinstance(grant, Response):
                return grant
            if request.args.get("action") != "initializeUpload":
                return error(400, "ILLEGAL_ARGUMENT", "unknown action")
            init = self._init_request(request, grant)
            if isinstance(init, Response):
                return init
            number = next(self.ids)
            urn, upload_id = f"urn:li:image:C4E{number}", f"img{number}"
            self.images[urn] = {"id": urn, "owner": init["owner"], "status": "WAITING_UPLOAD",
                                "format": None, "size": 0}
            expires = time.time() + float(self.config["upload_url_ttl_s"])
            self.uploads[upload_id] = {"kind": "image", "urn": urn, "expires": expires}
            return json_response({"value": {
                "uploadUrlExpiresAt": int(expires * 1000),
                "uploadUrl": f"{request.root_url}dms-uploads/image/{upload_id}",
                "image": urn}})

    def videos_action(self, request: Request) -> Response:
        with self.lock:
            grant = self._check(request)
            if isinstance(grant, Response):
                return grant
            action = request.args.get("action")
            if action == "initializeUpload":
                return self._init_video(request, grant)
            if action == "finalizeUpload":
                return self._finalize_video(request)
            return error(400, "ILLEGAL_ARGUMENT", "unknown action")

    def _init_video(self, request: Request, grant: dict[str, Any]) -> Response:
        init = self._init_request(request, grant)
        if isinstance(init, Response):
            return init
        size = init.get("fileSizeBytes")
        if not isinstance(size, int) or size <= 0:
            return error(400, "ILLEGAL_ARGUMENT", "fileSizeBytes is required")
        number = next(self.ids)
        urn = f"urn:li:video:C5F{number}"
        part = int(self.config["part_bytes"])
        expires = time.time() + float(self.config["upload_url_ttl_s"])
        instructions: list[dict[str, Any]] = []
        etags: list[str | None] = []
        for index, first in enumerate(range(0, size, part)):
            upload_id = f"vid{number}-{index}"
            self.uploads[upload_id] = {"kind": "video", "urn": urn, "index": index,
                                       "expires": expires}
            instructions.append({"uploadUrl": f"{request.root_url}dms-uploads/video/"
                                              f"{upload_id}",
                                 "firstByte": first, "lastByte": min(size, first + part) - 1})
            etags.append(None)
        self.videos[urn] = {"id": urn, "owner": init["owner"], "size": size,
                            "status": "WAITING_UPLOAD", "token": f"token{number}",
                            "instructions": instructions, "etags": etags,
                            "data": [b""] * len(instructions), "polls": 0}
        return json_response({"value": {"video": urn, "uploadToken": f"token{number}",
                                        "uploadUrlsExpireAt": int(expires * 1000),
                                        "uploadInstructions": instructions}})

    def _finalize_video(self, request: Request) -> Response:
        body = (request.get_json(silent=True) or {}).get("finalizeUploadRequest") or {}
        video = self.videos.get(str(body.get("video")))
        if video is None:
            return error(404, "NOT_FOUND", "video not found")
        if body.get("uploadToken") != video["token"]:
            return error(400, "ILLEGAL_ARGUMENT", "uploadToken does not match")
        if body.get("uploadedPartIds") != video["etags"] or None in video["etags"]:
            return error(400, "ILLEGAL_ARGUMENT", "uploadedPartIds must list the ETag of "
                         "every part, in order")
        if sniff(b"".join(video["data"])[:16]) != "MP4":
            video["status"] = "PROCESSING_FAILED"
        else:
            video["status"] = ("PROCESSING_FAILED" if self.config["fail_processing"]
                               else "PROCESSING")
            video["pending"] = int(self.config["processing_polls"])
        return Response("", status=200)

    def get_video(self, request: Request, urn: str) -> Response:
        with self.lock:
            grant = self._check(request)
            if isinstance(grant, Response):
                return grant
            video = self.videos.get(unquote(urn))
            if video is None:
                return error(404, "NOT_FOUND", "video not found")
            if not self._may_author(grant, video["owner"]):
                return error(403, "ACCESS_DENIED", "Accessing this video resource is "
                             "forbidden. Please check your permissions for this resource")
            video["polls"] += 1
            if video["status"] == "PROCESSING":
                if video["pending"] <= 0:
                    video["status"] = "AVAILABLE"
                else:
                    video["pending"] -= 1
            return json_response({"id": video["id"], "owner": video["owner"],
                                  "status": video["status"]})

    def upload(self, request: Request, kind: str, upload_id: str) -> Response:
        with self.lock:
            grant = self._check(request, headers=False)
            if isinstance(grant, Response):
                return grant
            target = self.uploads.get(upload_id)
            if target is None or target["kind"] != kind:
                return error(404, "NOT_FOUND", "unknown upload")
            if target["expires"] <= time.time():
                return error(403, "ACCESS_DENIED", "The upload URL has expired")
            data = request.get_data()
            if kind == "image":
                image = self.images[target["urn"]]
                image["format"] = sniff(data[:16])
                image["size"] = len(data)  # a second PUT replaces the first
                image["status"] = ("AVAILABLE" if image["format"] in ("JPEG", "PNG", "GIF")
                                   else "PROCESSING_FAILED")
                return Response("", status=201)
            video = self.videos[target["urn"]]
            part = video["instructions"][target["index"]]
            if len(data) != part["lastByte"] - part["firstByte"] + 1:
                return error(400, "ILLEGAL_ARGUMENT", "the part's length does not match its "
                             "byte range")
            video["data"][target["index"]] = data
            etag = f'"{hashlib.md5(data).hexdigest()}"'  # an ETag, not security
            video["etags"][target["index"]] = etag
            return Response("", status=200, headers={"ETag": etag})

    def add_token(self, request: Request) -> Response:
        """Control: ``{"token", "expiresIn"?, "member"?}`` adds (or replaces) an access
        token, e.g. one that expired (``expiresIn`` <= 0)."""
        body = request.get_json(force=True) or {}
        with self.lock:
            self.tokens[str(body["token"])] = {
                "member": body.get("member") or DEMO_ACCOUNT["urn"], "organizations": [],
                "expires": time.time() + float(body.get("expiresIn", ACCESS_TOKEN_S))}
        return json_response({"token": body["token"]}, 201)

    # --- tokens --------------------------------------------------------------------------------

    def token(self, request: Request) -> Response:
        with self.lock:
            form = request.form
            if form.get("grant_type") != "refresh_token":
                return json_response({"error": "unsupported_grant_type",
                                      "error_description": "grant_type is not supported"},
                                     400)
            grant = self.refresh_tokens.get(form.get("refresh_token") or "")
            if not self.config["refresh_enabled"] or grant is None \
                    or grant["expires"] <= time.time():
                return json_response({"error": "invalid_request", "error_description":
                                      "The provided refresh token is invalid"}, 400)
            token = f"token-{next(self.ids)}"
            self.tokens[token] = {"member": grant["member"],
                                  "organizations": [DEMO_ACCOUNT["organization"]],
                                  "expires": time.time() + ACCESS_TOKEN_S}
            return json_response({
                "access_token": token, "expires_in": ACCESS_TOKEN_S,
                "refresh_token": form["refresh_token"],
                "refresh_token_expires_in": int(grant["expires"] - time.time()),
                "scope": "openid,profile,w_member_social"})
