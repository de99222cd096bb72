"""A stateful imitation of the Facebook Pages publishing API (platforms.md §2, §7, §8).

Paths are Meta's, under one origin: ``/{v}/{page}/feed``, ``/{v}/{page}/photos``,
``/{v}/{page}/videos``, ``/{v}/{page}/video_reels``, ``/{v}/{app}/uploads``,
``/{v}/upload:{session}``, ``/video-upload/{v}/{video}`` (the rupload host),
``/{v}/{page}/published_posts``, ``/{v}/{id}/comments``, ``GET``/``DELETE /{v}/{id}``.

What it reproduces:

* the Graph error envelope with HTTP 400 (tokens 190, throttling 4/32 with the
  ``X-App-Usage`` and ``X-Business-Use-Case-Usage`` headers, duplicates 506, ...);
* photos fetched for real from their ``url`` and checked by their magic bytes and size;
* resumable uploads (``file_offset`` and ``GET upload:<id>``) and reel uploads
  (``offset``/``file_size``, ``bytes_transfered``), hashed as they stream, never kept in
  memory; an upload can be cut short with ``interruptions`` (below);
* reel phases: uploading → processing → publishing, advancing on each status read.

Options (``FacebookSandbox(**options)`` or ``POST /_sandbox/config`` with JSON):
``max_text``, ``max_photo_bytes``, ``max_photos``, ``page_call_limit`` (Graph calls per
Page before error 32), ``app_call_limit`` (before error 4), ``throttle_minutes``,
``revoked_tokens`` (answered with 190/460), ``reel_processing_polls``,
``reel_processing_error`` (a message: processing fails), ``interruptions`` (a list of
byte counts: each upload request takes only that many bytes, then fails),
``duplicate_window_s``.

Facebook Login (:class:`chat33_core.facebook_login.FacebookLoginServer`): the dialog,
the token endpoint, ``/me``, ``/me/permissions``, ``/me/accounts`` (:data:`PAGES`:
two Pages the user may post on, one they may only analyze) and ``DELETE
/{user-id}/permissions``, after which the grant's tokens, Page tokens included, are
refused with 190. Switches: ``POST /_sandbox/oauth`` (deny, partial grants...) and
``POST /_sandbox/pages``.

Meta's upload hosts take headers with underscores in their names, which werkzeug's
development server drops from the WSGI environ (§8). The sandbox kit's server
(:func:`chat33_core.sandbox.serve`) keeps them as sent; see :func:`underscore_header`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
from werkzeug.routing import BaseConverter
from werkzeug.wrappers import Request, Response

from chat33_core.facebook_login import FacebookLoginServer
from chat33_core.graph import GraphFailure
from chat33_core.sandbox import SandboxApp, json_response, raw_header, sniff
from chat33_core.sandbox_oauth import AuthorizationServer

ALLOWED_UPLOAD_TYPES = frozenset({"application/pdf", "image/jpeg", "image/jpg", "image/png",
                                  "video/mp4"})
READ_BLOCK = 1024 * 1024
#: the photo formats Facebook takes, by their magic bytes (MPO is JPEG to a sniffer)
PHOTO_FORMATS = frozenset({"JPEG", "PNG", "GIF", "BMP", "TIFF"})
DEFAULTS: dict[str, Any] = {
    "max_text": 63_206, "max_photo_bytes": 10 * 1024 * 1024, "max_photos": 10,
    "page_call_limit": None, "app_call_limit": None, "throttle_minutes": 5,
    "revoked_tokens": [], "reel_processing_polls": 2, "reel_processing_error": None,
    "interruptions": [], "duplicate_window_s": 3600, "fetch_timeout_s": 10,
}

#: the sandbox user's Pages, as ``/me/accounts`` lists them
PAGES: tuple[dict[str, Any], ...] = (
    {"id": "104500000000001", "name": "Sandbox Bakery",
     "tasks": ["ADVERTISE", "ANALYZE", "CREATE_CONTENT", "MESSAGING", "MODERATE", "MANAGE"]},
    {"id": "104500000000002", "name": "Sandbox Books",
     "tasks": ["ANALYZE", "CREATE_CONTENT", "MODERATE"]},
    {"id": "104500000000003", "name": "Someone Else's Page", "tasks": ["ANALYZE"]},
)
#: the permissions the sandbox app may ask for
SCOPES = ("pages_show_list", "pages_manage_posts", "pages_read_engagement", "publish_video",
          "pages_manage_engagement", "business_management", "public_profile", "email")


class _Version(BaseConverter):
    regex = r"v\d+\.\d+"


class UploadFail(Exception):
    """An error answer of the rupload host: ``{"debug_info": {...}}``."""

    def __init__(self, kind: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.kind, self.status = kind, status

    def response(self) -> Response:
        return json_response({"debug_info": {"retriable": self.kind != "ProcessingFailedError",
                                              "type": self.kind, "message": str(self)}},
                             self.status)


def missing(object_id: str, verb: str = "get") -> GraphFailure:
    return GraphFailure(100, f"Unsupported {verb} request. Object with ID '{object_id}' does not "
                        "exist, cannot be loaded due to missing permissions, or does not support "
                        "this operation", subcode=33)


def underscore_header(request: Request, name: str) -> str | None:
    """A request header whose name contains ``_`` (``file_offset``, ``file_size``): the
    sandbox kit's server keeps them (werkzeug's would drop them)."""
    return raw_header(request, name)


def fb_time(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(ts))


class Stream:
    """Bytes of one upload, hashed in order as they arrive; only the head is kept."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.offset = 0
        self.sha = hashlib.sha256()
        self.head = b""

    def take(self, block: bytes) -> None:
        self.sha.update(block)
        if len(self.head) < 64:
            self.head += block[: 64 - len(self.head)]
        self.offset += len(block)

    @property
    def complete(self) -> bool:
        return self.offset >= self.size


class FacebookSandbox(SandboxApp):
    """The Facebook Pages sandbox; ``state()`` lists what it published."""

    name = "facebook"

    def __init__(self, **options: Any) -> None:
        super().__init__()
        self.url_map.converters["ver"] = _Version
        self.initial = {**DEFAULTS, **options}
        self._crawler: httpx.Client | None = None
        self.auth = AuthorizationServer("facebook", self, pkce="ignored", scope_separator=",")
        self.login = FacebookLoginServer(self, self.auth, PAGES, SCOPES)
        self.reset()
        r = self.route
        r("/_sandbox/config", self.h_config, ["POST"])
        r("/<ver:v>/<page>/feed", self.h_feed, ["POST"])
        r("/<ver:v>/<page>/photos", self.h_photos, ["POST"])
        r("/<ver:v>/<page>/videos", self.h_videos, ["POST"])
        r("/<ver:v>/<page>/videos", self.h_list_videos, ["GET"])
        r("/<ver:v>/<page>/published_posts", self.h_published_posts, ["GET"])
        r("/<ver:v>/<page>/video_reels", self.h_reels, ["POST"])
        r("/<ver:v>/<app>/uploads", self.h_new_upload, ["POST"])
        r("/<ver:v>/upload:<sid>", self.h_upload_offset, ["GET"])
        r("/<ver:v>/upload:<sid>", self.h_upload, ["POST"])
        r("/video-upload/<ver:v>/<vid>", self.h_rupload, ["POST"])
        r("/<ver:v>/<oid>/comments", self.h_comment, ["POST"])
        r("/<ver:v>/<oid>/comments", self.h_list_comments, ["GET"])
        r("/<ver:v>/<oid>", self.h_get, ["GET"])
        r("/<ver:v>/<oid>", self.h_delete, ["DELETE"])

    # --- state -------------------------------------------------------------------------

    def reset(self) -> None:
        self.options: dict[str, Any] = json.loads(json.dumps(self.initial))
        self.seq = 100_000_000_000_000
        self.objects: dict[str, dict[str, Any]] = {}
        self.uploads: dict[str, dict[str, Any]] = {}
        self.streams: dict[str, Stream] = {}
        self.calls: dict[str, int] = {}
        self.auth.reset()
        self.login.reset()

    def new_id(self) -> str:
        self.seq += 1
        return str(self.seq)

    def state(self) -> dict[str, Any]:
        with self.lock:
            live = [o for o in self.objects.values() if not o.get("deleted")]
            return {
                "posts": [_public(o) for o in reversed(live) if o["kind"] == "post"],
                "photos": [_public(o) for o in live if o["kind"] == "photo"],
                "videos": [_public(o) for o in live if o["kind"] in ("video", "reel")],
                "comments": [_public(o) for o in live if o["kind"] == "comment"],
                "deleted": [k for k, o in self.objects.items() if o.get("deleted")],
                "uploads": [{"id": f"upload:{sid}", "file_offset": self.streams[sid].offset,
                             "file_length": self.streams[sid].size,
                             "sha256": self.streams[sid].sha.hexdigest(),
                             "complete": self.streams[sid].complete}
                            for sid in self.uploads],
                "calls": dict(self.calls),
                "revocations": list(self.login.revocations),
                "options": dict(self.options),
            }

    def h_config(self, request: Request) -> Response:
        with self.lock:
            self.options.update(request.get_json(force=True) or {})
            return json_response({"ok": True, "options": self.options})

    # --- every Graph call: token, throttling, usage headers ---------------------------------

    def dispatch(self, request: Request) -> Response:
        if request.path.startswith("/_sandbox/") or self.login.public(request.path):
            return super().dispatch(request)
        parts = request.path.strip("/").split("/")
        # the Page of /{v}/{page}/edge and of /{v}/{page}_{post}; other objects count as "0"
        first = parts[1].split("_")[0] if len(parts) > 1 else ""
        page = first if first.isdigit() and (len(parts) > 2 or "_" in parts[1]) else "0"
        try:
            self.authorize(request, page)
            usage = self.count_call(page)
            response = super().dispatch(request)
        except (GraphFailure, UploadFail) as exc:
            usage = self.usage(page)
            response = exc.response()
        for name, value in usage.items():
            response.headers[name] = value
        return response

    def authorize(self, request: Request, page: str = "0") -> None:
        """Refuse a missing, revoked or foreign token: a Page token the sandbox issued
        acts on its own Page only."""
        auth = request.headers.get("Authorization", "")
        token = auth.split(" ", 1)[1] if " " in auth else request.values.get("access_token")
        if not token:
            raise GraphFailure(104, "An access token is required to request this resource.")
        self.login.check(token)
        issued = self.login.issued(token)
        if issued is not None and issued.page_id is not None and page not in (
                "0", issued.page_id):
            raise GraphFailure(200, "(#200) The user hasn't authorized the application to "
                               "perform this action on this Page")
        if token in self.options["revoked_tokens"]:
            raise GraphFailure(190, "Error validating access token: The session has been "
                               "invalidated because the user changed their password.", subcode=460)

    def count_call(self, page: str) -> dict[str, str]:
        with self.lock:
            self.calls[page] = self.calls.get(page, 0) + 1
            self.calls["app"] = self.calls.get("app", 0) + 1
            usage = self.usage(page)
            page_limit, app_limit = self.options["page_call_limit"], self.options["app_call_limit"]
            if page_limit is not None and self.calls[page] > page_limit:
                raise GraphFailure(32, "(#32) Page request limit reached")
            if app_limit is not None and self.calls["app"] > app_limit:
                raise GraphFailure(4, "(#4) Application request limit reached")
            return usage

    def usage(self, page: str) -> dict[str, str]:
        def pct(count: int, limit: int | None) -> int:
            return 0 if not limit else min(100, count * 100 // limit)

        with self.lock:
            page_pct = pct(self.calls.get(page, 0), self.options["page_call_limit"])
            app_pct = pct(self.calls.get("app", 0), self.options["app_call_limit"])
            regain = self.options["throttle_minutes"] if page_pct >= 100 else 0
        return {
            "X-App-Usage": json.dumps({"call_count": app_pct, "total_cputime": app_pct // 2,
                                       "total_time": app_pct // 2}),
            "X-Business-Use-Case-Usage": json.dumps({page: [{
                "type": "pages", "call_count": page_pct, "total_cputime": page_pct // 2,
                "total_time": page_pct // 2, "estimated_time_to_regain_access": regain}]}),
        }

    # --- posts --------------------------------------------------------------------------

    def add_post(self, page: str, post_type: str, message: str, params: list[str],
                 **extra: Any) -> dict[str, Any]:
        if message and len(message) > self.options["max_text"]:
            raise GraphFailure(100, "(#100) Message too long", user_title="Post too long",
                               user_msg=f"The post has {len(message)} characters; the limit is "
                               f"{self.options['max_text']}.")
        now = time.time()
        if message:
            for other in self.objects.values():
                if (other["kind"] == "post" and not other.get("deleted")
                        and other["page"] == page and other["message"] == message
                        and now - other["created"] < self.options["duplicate_window_s"]):
                    raise GraphFailure(506, "Duplicate status message")
        n = self.new_id()
        post = {"id": f"{page}_{n}", "kind": "post", "type": post_type, "page": page,
                "message": message, "created": now, "created_time": fb_time(now),
                "permalink_url": f"https://www.facebook.com/{page}/posts/{n}",
                "params": sorted(params), **extra}
        self.objects[post["id"]] = post
        return post

    def h_feed(self, request: Request, v: str, page: str) -> Response:
        form = request.form
        message = form.get("message", "")
        link = form.get("link")
        media = _attached_media(form)
        if not (message or link or media):
            raise GraphFailure(100, "(#100) Missing message or attachment")
        if link and not link.lower().startswith(("http://", "https://")):
            raise GraphFailure(1609005, "Error Posting Link", user_title="Link not valid",
                               user_msg=f"The link {link!r} could not be posted.")
        with self.lock:
            if len(media) > self.options["max_photos"]:
                raise GraphFailure(100, f"(#100) Too many attached photos ({len(media)}, at most "
                                   f"{self.options['max_photos']})")
            for i, fbid in enumerate(media):
                photo = self.objects.get(fbid)
                if (not photo or photo["kind"] != "photo" or photo.get("deleted")
                        or photo["published"] or photo.get("attached_to")
                        or photo["page"] != page):
                    raise GraphFailure(100, f"(#100) param attached_media[{i}] must be an "
                                       "unpublished photo of this Page")
            post_type = "album" if media else "link" if link else "status"
            post = self.add_post(page, post_type, message, list(form.keys()), link=link,
                                 attached_media=media)
            for fbid in media:
                self.objects[fbid]["attached_to"] = post["id"]
            return json_response({"id": post["id"]})

    def h_photos(self, request: Request, v: str, page: str) -> Response:
        form = request.form
        published = form.get("published", "true").lower() != "false"
        if "source" in request.files:
            data = request.files["source"].read(self.options["max_photo_bytes"] + 1)
            source = "upload"
        elif form.get("url"):
            source = form["url"]
            data = self.fetch(source)
        else:
            raise GraphFailure(324, "(#324) Requires upload file")
        if len(data) > self.options["max_photo_bytes"]:
            raise GraphFailure(100, "(#100) Photo too large", user_title="Photo too large",
                               user_msg=f"The photo is larger than "
                               f"{self.options['max_photo_bytes'] // (1024 * 1024)} MB.")
        fmt = sniff(data[:16])
        if fmt not in PHOTO_FORMATS:
            raise GraphFailure(324, "(#324) Missing or invalid image file",
                               user_title="Not an image",
                               user_msg=f"The file at {source} is not a JPEG, PNG, GIF, BMP or "
                               "TIFF image.")
        with self.lock:
            photo_id = self.new_id()
            photo = {"id": photo_id, "kind": "photo", "page": page, "published": published,
                     "format": fmt, "bytes": len(data), "source": source,
                     "sha256": hashlib.sha256(data).hexdigest(), "created": time.time(),
                     "permalink_url": f"https://www.facebook.com/photo/?fbid={photo_id}"}
            self.objects[photo_id] = photo
            if not published:
                return json_response({"id": photo_id})
            try:
                post = self.add_post(page, "photo", form.get("caption", ""), list(form.keys()),
                                     attached_media=[photo_id])
            except GraphFailure:
                del self.objects[photo_id]
                raise
            photo["attached_to"] = post["id"]
            return json_response({"id": photo_id, "post_id": post["id"]})

    @property
    def crawler(self) -> httpx.Client:
        """One client for every photo fetch, made on first use (building one is slow)."""
        with self.lock:
            if self._crawler is None:
                self._crawler = httpx.Client(headers={"User-Agent": "facebookexternalhit/1.1"})
            return self._crawler

    def fetch(self, url: str) -> bytes:
        """Download a photo as Facebook's crawler would, capped at the size limit."""
        cap = self.options["max_photo_bytes"] + 1
        try:
            with self.crawler.stream("GET", url, timeout=self.options["fetch_timeout_s"],
                                     follow_redirects=True) as response:
                if response.status_code != 200:
                    raise GraphFailure(324, "(#324) Missing or invalid image file",
                                       user_title="Photo not found",
                                       user_msg=f"Facebook could not download {url} (HTTP "
                                       f"{response.status_code}).")
                data = b""
                for block in response.iter_bytes():
                    data += block
                    if len(data) >= cap:
                        break
                return data
        except httpx.HTTPError as exc:
            raise GraphFailure(324, "(#324) Missing or invalid image file",
                               user_title="Photo not reachable",
                               user_msg=f"Facebook could not download {url}: {exc}.") from exc

    def h_published_posts(self, request: Request, v: str, page: str) -> Response:
        limit = int(request.args.get("limit", 25))
        fields = set((request.args.get("fields") or "id,message,created_time").split(","))
        with self.lock:
            posts = [o for o in reversed(self.objects.values())
                     if o["kind"] == "post" and o["page"] == page and not o.get("deleted")]
            rows = [_fields(o, fields) for o in posts[:limit]]
        return json_response({"data": rows, "paging": {}})

    # --- comments, objects, delete -----------------------------------------------------------

    def live(self, object_id: str, verb: str = "get") -> dict[str, Any]:
        obj = self.objects.get(object_id)
        if obj is None or obj.get("deleted"):
            raise missing(object_id, verb)
        return obj

    def h_comment(self, request: Request, v: str, oid: str) -> Response:
        message = request.form.get("message", "")
        if not message:
            raise GraphFailure(100, "(#100) Missing message")
        with self.lock:
            target = self.live(oid, "post")
            if target["kind"] == "reel" and target["publish_status"] != "published":
                raise GraphFailure(100, "(#100) The reel is not published yet")
            cid = f"{oid.split('_')[-1]}_{self.new_id()}"
            self.objects[cid] = {"id": cid, "kind": "comment", "parent": oid, "page": "",
                                 "message": message, "created": time.time()}
            return json_response({"id": cid})

    def h_list_comments(self, request: Request, v: str, oid: str) -> Response:
        with self.lock:
            self.live(oid)
            rows = [{"id": o["id"], "message": o["message"]} for o in self.objects.values()
                    if o["kind"] == "comment" and o["parent"] == oid and not o.get("deleted")]
        return json_response({"data": rows})

    def h_get(self, request: Request, v: str, oid: str) -> Response:
        fields = set((request.args.get("fields") or "id").split(","))
        with self.lock:
            obj = self.live(oid)
            if "status" in fields and obj["kind"] in ("video", "reel"):
                self.advance(obj)
            return json_response(_fields(obj, fields))

    def h_delete(self, request: Request, v: str, oid: str) -> Response:
        with self.lock:
            obj = self.live(oid, "delete")
            obj["deleted"] = True
            for other in self.objects.values():  # a video's or reel's post goes with it
                if other.get("video_id") == oid or oid in (other.get("attached_media") or ()):
                    other["deleted"] = other["kind"] == "post" or other.get("deleted", False)
            return json_response({"success": True})

    # --- Resumable Upload API ----------------------------------------------------------------

    def h_new_upload(self, request: Request, v: str, app: str) -> Response:
        values = request.values
        file_type = values.get("file_type", "")
        if file_type not in ALLOWED_UPLOAD_TYPES:
            raise GraphFailure(100, f"(#100) file_type {file_type!r} is not supported")
        try:
            length = int(values.get("file_length", ""))
        except ValueError:
            length = 0
        if length <= 0:
            raise GraphFailure(100, "(#100) file_length must be a positive number of bytes")
        with self.lock:
            sid = self.new_id()
            self.uploads[sid] = {"app": app, "file_name": values.get("file_name", ""),
                                 "file_type": file_type, "handle": None, "used": False}
            self.streams[sid] = Stream(length)
        return json_response({"id": f"upload:{sid}"})

    def session(self, sid: str) -> tuple[dict[str, Any], Stream]:
        if sid not in self.uploads:
            raise GraphFailure(100, f"(#100) Invalid upload session upload:{sid}")
        return self.uploads[sid], self.streams[sid]

    def h_upload_offset(self, request: Request, v: str, sid: str) -> Response:
        with self.lock:
            _, stream = self.session(sid)
            return json_response({"id": f"upload:{sid}", "file_offset": stream.offset})

    def h_upload(self, request: Request, v: str, sid: str) -> Response:
        raw = underscore_header(request, "file_offset")
        if raw is None or not raw.isdigit():
            raise GraphFailure(100, "(#100) The file_offset header is required")
        with self.lock:
            upload, stream = self.session(sid)
        if int(raw) != stream.offset:
            raise GraphFailure(100, f"(#100) file_offset {raw} does not match the "
                               f"{stream.offset} bytes already uploaded")
        if not self.receive(request, stream):
            raise GraphFailure(2, "Service temporarily unavailable", is_transient=True, status=500)
        if not stream.complete:
            return json_response({"id": f"upload:{sid}", "file_offset": stream.offset})
        with self.lock:
            upload["handle"] = upload["handle"] or (
                "2:" + base64.b64encode(sid.encode()).decode() + ":" + upload["file_type"]
                + ":" + stream.sha.hexdigest()[:16])
            return json_response({"h": upload["handle"]})

    def receive(self, request: Request, stream: Stream) -> bool:
        """Stream the body into ``stream``. False when an injected interruption cut it."""
        with self.lock:
            cut = self.options["interruptions"].pop(0) if self.options["interruptions"] else None
        remaining = stream.size - stream.offset
        body = request.content_length or 0
        if body > remaining:
            raise GraphFailure(100, f"(#100) {body} bytes sent but only {remaining} remain")
        taken = 0
        for block in _blocks(request):
            if cut is not None and taken + len(block) > cut:
                block = block[: max(0, cut - taken)]
            taken += len(block)
            stream.take(block)
        # The rest of an interrupted body was read above but never "arrived".
        return cut is None or cut >= body

    def h_videos(self, request: Request, v: str, page: str) -> Response:
        form = request.form
        handle = form.get("fbuploader_video_file_chunk")
        with self.lock:
            match = [(sid, u) for sid, u in self.uploads.items() if u["handle"] == handle]
            if not handle or not match:
                raise GraphFailure(100, "(#100) Invalid fbuploader_video_file_chunk handle")
            sid, upload = match[0]
            if upload["used"]:
                raise GraphFailure(100, "(#100) This upload handle was already used")
            if upload["file_type"] != "video/mp4" or sniff(self.streams[sid].head) != "MP4":
                raise GraphFailure(352, "(#352) Sorry, the video file you selected is in a "
                                   "format that we don't support.", user_title="Unsupported video",
                                   user_msg="The uploaded file is not an MP4 video.")
            upload["used"] = True
            video_id = self.new_id()
            now = time.time()
            description = form.get("description", "")
            self.objects[video_id] = {
                "id": video_id, "kind": "video", "page": page, "title": form.get("title"),
                "description": description, "created": now, "created_time": fb_time(now),
                "sha256": self.streams[sid].sha.hexdigest(), "bytes": self.streams[sid].size,
                "permalink_url": f"/{page}/videos/{video_id}/", "publish_status": "published",
                "phase": "ready", "params": sorted(form.keys()),
            }
            self.add_post(page, "video", "", list(form.keys()), video_id=video_id,
                          description=description)
            return json_response({"id": video_id})

    def h_list_videos(self, request: Request, v: str, page: str) -> Response:
        fields = set((request.args.get("fields") or "id,description").split(","))
        limit = int(request.args.get("limit", 25))
        with self.lock:
            rows = [_fields(o, fields) for o in reversed(self.objects.values())
                    if o["kind"] == "video" and o["page"] == page and not o.get("deleted")]
        return json_response({"data": rows[:limit], "paging": {}})

    # --- reels ---------------------------------------------------------------------------------

    def h_reels(self, request: Request, v: str, page: str) -> Response:
        values = dict(request.values)
        if request.is_json:
            values.update(request.get_json(silent=True) or {})
        phase = values.get("upload_phase")
        if phase == "start":
            with self.lock:
                vid = self.new_id()
                self.objects[vid] = {"id": vid, "kind": "reel", "page": page, "stream": None,
                                     "phase": "uploading", "polls": 0, "publish_status": "draft",
                                     "created": time.time(), "created_time": fb_time(time.time()),
                                     "permalink_url": f"/reel/{vid}", "error": None}
            return json_response({"video_id": vid,
                                  "upload_url": f"{request.root_url}video-upload/{v}/{vid}"})
        if phase != "finish":
            raise GraphFailure(100, f"(#100) upload_phase {phase!r} is not start or finish")
        state = values.get("video_state", "")
        if state not in ("PUBLISHED", "DRAFT", "SCHEDULED"):
            raise GraphFailure(100, f"(#100) video_state {state!r} is not valid")
        if state == "SCHEDULED" and not values.get("scheduled_publish_time"):
            raise GraphFailure(100, "(#100) scheduled_publish_time is required for SCHEDULED")
        with self.lock:
            reel = self.live(str(values.get("video_id", "")))
            if reel["kind"] != "reel" or reel["page"] != page:
                raise GraphFailure(100, "(#100) video_id is not a reel of this Page")
            if reel["stream"] is None or not reel["stream"].complete:
                raise GraphFailure(100, "(#100) The video upload is not complete",
                                   user_title="Upload incomplete",
                                   user_msg="Upload the whole video before publishing it.")
            if reel["phase"] != "uploading":
                raise GraphFailure(100, "(#100) This reel was already finished")
            reel.update(phase="processing", polls=0, target=state,
                        description=values.get("description", ""), title=values.get("title"),
                        params=sorted(values))
            if sniff(reel["stream"].head) != "MP4":
                reel["error"] = "The video file is not a supported format"
            elif self.options["reel_processing_error"]:
                reel["error"] = str(self.options["reel_processing_error"])
            return json_response({"success": True})

    def h_rupload(self, request: Request, v: str, vid: str) -> Response:
        offset_raw = underscore_header(request, "offset") or request.headers.get("offset")
        size_raw = underscore_header(request, "file_size")
        with self.lock:
            reel = self.live(vid)
            if reel["kind"] != "reel":
                raise UploadFail("OffsetInvalidError", f"{vid} is not a reel upload")
            if not size_raw or not size_raw.isdigit():
                raise UploadFail("PartialRequestError", "the file_size header is required")
            if reel["stream"] is None:
                reel["stream"] = Stream(int(size_raw))
            stream: Stream = reel["stream"]
        if int(size_raw) != stream.size:
            raise UploadFail("OffsetInvalidError", f"file_size {size_raw} differs from the "
                             f"{stream.size} bytes announced first")
        if offset_raw is None or not offset_raw.isdigit() or int(offset_raw) != stream.offset:
            raise UploadFail("OffsetInvalidError", f"offset {offset_raw} does not match the "
                             f"{stream.offset} bytes received")
        try:
            whole = self.receive(request, stream)
        except GraphFailure as exc:
            raise UploadFail("PartialRequestError", str(exc)) from exc
        if not whole:
            raise UploadFail("PartialRequestError", "the request body ended early")
        return json_response({"success": True})

    def advance(self, reel: dict[str, Any]) -> None:
        """Each status read moves a finished reel one step through its phases."""
        if reel["kind"] != "reel" or reel["phase"] != "processing":
            return
        reel["polls"] += 1
        if reel["error"]:
            reel["phase"] = "error"
        elif reel["polls"] > self.options["reel_processing_polls"]:
            reel["phase"] = "ready"
            if reel["target"] == "PUBLISHED":
                reel["publish_status"] = "published"
                reel["publish_time"] = fb_time(time.time())
                self.add_post(reel["page"], "reel", "", reel.get("params", []),
                              video_id=reel["id"], description=reel.get("description", ""))


def reel_status(obj: dict[str, Any]) -> dict[str, Any]:
    """The ``status`` object of a video or reel, as Graph shows it."""
    stream: Stream | None = obj.get("stream")
    if obj["kind"] == "video":
        done = {"status": "completed"}
        return {"video_status": "ready", "uploading_phase": {**done, "bytes_transfered":
                                                             obj["bytes"]},
                "processing_phase": done, "publishing_phase": {
                    **done, "publish_status": "published", "publish_time": obj["created_time"]}}
    received = stream.offset if stream else 0
    uploaded = bool(stream and stream.complete)
    phase = obj["phase"]
    processing = {"uploading": "not_started", "processing": "in_progress",
                  "ready": "completed", "error": "error"}[phase]
    publishing = "completed" if phase == "ready" else "not_started"
    status: dict[str, Any] = {
        "video_status": {"uploading": "upload_complete" if uploaded else "uploading",
                         "processing": "processing", "ready": "ready", "error": "error"}[phase],
        "uploading_phase": {"status": "completed" if uploaded else
                            "in_progress" if received else "not_started",
                            "bytes_transfered": received},
        "processing_phase": {"status": processing},
        "publishing_phase": {"status": publishing, "publish_status": obj["publish_status"]},
    }
    if phase == "error":
        status["processing_phase"]["error"] = {"message": obj["error"]}
    if obj.get("publish_time"):
        status["publishing_phase"]["publish_time"] = obj["publish_time"]
    return status


def _fields(obj: dict[str, Any], fields: set[str]) -> dict[str, Any]:
    row: dict[str, Any] = {"id": obj["id"]}
    for name in fields:
        if name == "status" and obj["kind"] in ("video", "reel"):
            row["status"] = reel_status(obj)
        elif name == "message" and obj.get("message"):
            row["message"] = obj["message"]
        elif name == "description" and obj.get("description"):
            row["description"] = obj["description"]
        elif name in ("created_time", "permalink_url", "title") and obj.get(name):
            row[name] = obj[name]
    if (obj["kind"] == "post" and obj.get("type") in ("video", "reel") and "message" in fields
            and obj.get("description")):
        row["message"] = obj["description"]
    return row


def _public(obj: dict[str, Any]) -> dict[str, Any]:
    row = {k: v for k, v in obj.items() if k not in ("stream", "created")}
    stream = obj.get("stream")
    if isinstance(stream, Stream):
        row["bytes"] = stream.offset
        row["sha256"] = stream.sha.hexdigest()
    return row


def _attached_media(form: Any) -> list[str]:
    """``attached_media[i]={"media_fbid": ..}`` form fields, or one JSON array."""
    raw: list[Any] = []
    if form.get("attached_media"):
        try:
            value = json.loads(form["attached_media"])
        except ValueError as exc:
            raise GraphFailure(100, "(#100) attached_media must be JSON") from exc
        raw = value if isinstance(value, list) else [value]
    indexed = sorted((int(k[len("attached_media["):-1]), k) for k in form
                     if k.startswith("attached_media[") and k.endswith("]")
                     and k[len("attached_media["):-1].isdigit())
    for _, key in indexed:
        try:
            raw.append(json.loads(form[key]))
        except ValueError as exc:
            raise GraphFailure(100, f"(#100) {key} must be JSON") from exc
    ids = []
    for item in raw:
        if not isinstance(item, dict) or not item.get("media_fbid"):
            raise GraphFailure(100, "(#100) attached_media entries need a media_fbid")
        ids.append(str(item["media_fbid"]))
    return ids


def _blocks(request: Request) -> Iterator[bytes]:
    stream = request.stream
    while True:
        block = stream.read(READ_BLOCK)
        if not block:
            return
        yield block
