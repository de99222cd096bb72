"""A stateful imitation of TikTok's Content Posting API and OAuth token endpoint
(platforms.md §3, §7), for tests and the demo.

What it reproduces:

* the ``{data, error: {code, message, log_id}}`` envelope, HTTP 200 with ``ok``; the
  spam-risk codes with HTTP 200 on ``creator_info``;
* creator info per account variant: a public account offers PUBLIC_TO_EVERYONE,
  MUTUAL_FOLLOW_FRIENDS, SELF_ONLY; a private one FOLLOWER_OF_CREATOR,
  MUTUAL_FOLLOW_FRIENDS, SELF_ONLY. A token containing ``private`` is a private account;
  ``POST /_sandbox/config {"account": "private"}`` or ``{"accounts": {token: ...}}``
  chooses too;
* ``video/init`` checks the chunk plan by TikTok's rules and returns an absolute
  ``upload_url`` on this server; ``PUT`` chunks are checked in order (206 while more are
  expected, 201 at the end, 416 with the range held on a mismatch, 400 on bad headers or
  length, 403 once the URL expired, 404 for an unknown task) and every answer carries
  ``Content-Range: bytes 0-{last held}/{total}``. Bodies are streamed and hashed, never
  kept;
* ``content/init`` photos: it really downloads every ``PULL_FROM_URL`` image and checks
  it is JPEG or WebP of at most 20 MB;
* ``status/fetch`` moves PROCESSING_UPLOAD / PROCESSING_DOWNLOAD → PUBLISH_COMPLETE (or
  SEND_TO_USER_INBOX), or FAILED with the next queued ``failReasons`` entry;
* per-token limits: creator info 20, init 6, status 30 requests a minute (429
  ``rate_limit_exceeded``); a daily cap per creator (``spam_risk_too_many_posts``);
* rotating refresh tokens (``sandbox-refresh`` to begin with): each refresh returns a
  new pair and the old refresh token stops working (``invalid_grant``);
* Login Kit (oauth.md §5, §9): ``GET /v2/auth/authorize/`` (``client_key``, comma
  scopes, consents at once as the ``oauthUser`` open_id; the redirect carries
  ``scopes``), the ``authorization_code`` grant at ``/v2/oauth/token/``,
  ``GET /v2/user/info/`` in the ``data.user`` envelope, and ``POST /v2/oauth/revoke/``
  (answers ``{}``; the token and its refresh token stop working).

Control (besides faults/state/reset): ``POST /_sandbox/config`` with any of ``account``,
``accounts``, ``unaudited``, ``maxDurationSec``, ``dailyCap``, ``rateLimits``,
``processingPolls``, ``failReasons``, ``moderationPending``, ``verifiedPrefixes``,
``clientKey``, ``clientSecret``, ``oauthUser``, ``expireTokens`` (list),
``expireUploads`` (true).
"""

from __future__ import annotations

import hashlib
import itertools
import re
import secrets
import time
from collections import defaultdict, deque
from typing import Any

import httpx
from werkzeug.wrappers import Request, Response

from chat33_core.sandbox import SandboxApp, json_response, sniff
from chat33_core.sandbox_oauth import AuthorizationServer, GrantRefused

from .chunks import ChunkPlan, plan_problems
from .rules import (
    CAPTION_MAX,
    MAX_PHOTOS,
    PHOTO_DESCRIPTION_MAX,
    PHOTO_MAX_BYTES,
    PHOTO_TITLE_MAX,
    utf16_length,
)

PUBLIC_OPTIONS = ["PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"]
PRIVATE_OPTIONS = ["FOLLOWER_OF_CREATOR", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"]
VIDEO_TYPES = ("video/mp4", "video/quicktime", "video/webm")
DEFAULTS: dict[str, Any] = {
    "account": "public", "accounts": {}, "unaudited": False, "maxDurationSec": 600,
    "dailyCap": 15, "rateLimits": {"creator_info": 20, "init": 6, "status": 30},
    "processingPolls": 1, "failReasons": [], "moderationPending": False,
    "verifiedPrefixes": None, "clientKey": None, "clientSecret": None,
    "commentDisabled": False, "duetDisabled": False, "stitchDisabled": False,
    "oauthUser": "sandbox-open-id",
}
SCOPES = ("user.info.basic", "user.info.profile", "video.publish", "video.upload")
FIRST_REFRESH_TOKEN = "sandbox-refresh"
FIRST_ACCESS_TOKEN = "sandbox-token"
_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")
READ = 64 * 1024


def _log_id() -> str:
    return time.strftime("%Y%m%d%H%M%S") + secrets.token_hex(10).upper()


def ok(data: Any, status: int = 200) -> Response:
    return json_response({"data": data, "error": {"code": "ok", "message": "",
                                                  "log_id": _log_id()}}, status)


def fail(status: int, code: str, message: str) -> Response:
    return json_response({"data": {}, "error": {"code": code, "message": message,
                                                "log_id": _log_id()}}, status)


class Publish:
    """One publish_id and everything TikTok tracks about it."""

    def __init__(self, publish_id: str, kind: str, owner: str, token: str,
                 post_info: dict[str, Any], inbox: bool) -> None:
        self.publish_id = publish_id
        self.kind = kind  # video or photo
        self.owner = owner
        self.token = token
        self.post_info = post_info
        self.inbox = inbox
        self.status = "PROCESSING_UPLOAD" if kind == "video" else "PROCESSING_DOWNLOAD"
        self.fail_reason = ""
        self.polls_done = 0
        self.post_id: int | None = None
        self.created = time.time()
        # video upload
        self.plan: ChunkPlan | None = None
        self.upload_id = ""
        self.upload_token = ""
        self.expires_at = 0.0
        self.uploaded = 0
        self.chunks = 0
        self.hash = hashlib.sha256()
        self.content_type = ""
        # photo pull
        self.images: list[dict[str, Any]] = []
        self.pull_error = ""

    @property
    def ready(self) -> bool:
        """Every byte is in: processing may finish."""
        if self.kind == "video":
            return self.plan is not None and self.uploaded == self.plan.video_size
        return True

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "publishId": self.publish_id, "kind": self.kind, "owner": self.owner,
            "status": self.status, "failReason": self.fail_reason, "inbox": self.inbox,
            "postInfo": self.post_info, "postId": self.post_id,
        }
        if self.plan is not None:
            out.update(videoSize=self.plan.video_size, chunkSize=self.plan.chunk_size,
                       totalChunks=self.plan.total_chunk_count, uploadedBytes=self.uploaded,
                       chunksReceived=self.chunks, contentType=self.content_type,
                       sha256=self.hash.hexdigest() if self.ready else None)
        if self.kind == "photo":
            out["images"] = self.images
        return out


class TikTokSandbox(SandboxApp):
    name = "tiktok"

    def __init__(self) -> None:
        super().__init__()
        self.auth = AuthorizationServer("tiktok", self, pkce="ignored", scope_separator=",")
        self.reset()
        self.route("/v2/auth/authorize/", self.oauth_authorize, methods=["GET"])
        self.route("/v2/user/info/", self.user_info, methods=["GET"])
        self.route("/v2/oauth/revoke/", self.oauth_revoke, methods=["POST"])
        base = "/v2/post/publish"
        self.route(f"{base}/creator_info/query/", self.creator_info, methods=["POST"])
        self.route(f"{base}/video/init/", self.video_init, methods=["POST"])
        self.route(f"{base}/inbox/video/init/", self.inbox_init, methods=["POST"])
        self.route(f"{base}/content/init/", self.content_init, methods=["POST"])
        self.route(f"{base}/status/fetch/", self.status_fetch, methods=["POST"])
        self.route(f"{base}/cancel/", self.cancel, methods=["POST"])
        self.route("/video/", self.put_chunk, methods=["PUT"])
        self.route("/v2/oauth/token/", self.token, methods=["POST"])
        self.route("/_sandbox/config", self.configure, methods=["POST"])

    def reset(self) -> None:
        if hasattr(self, "auth"):
            self.auth.reset()
        with self.lock:
            self.options: dict[str, Any] = {k: (v.copy() if isinstance(v, dict | list) else v)
                                            for k, v in DEFAULTS.items()}
            self.publishes: dict[str, Publish] = {}
            self.uploads: dict[str, str] = {}
            self.posts: list[dict[str, Any]] = []
            self.calls: dict[tuple[str, str], deque[float]] = defaultdict(deque)
            self.refresh_tokens: dict[str, str] = {FIRST_REFRESH_TOKEN: "sandbox-open-id"}
            self.owners: dict[str, str] = {FIRST_ACCESS_TOKEN: "sandbox-open-id"}
            self.revoked: set[str] = set()
            #: access token -> its refresh token (revoking one ends both)
            self.pairs: dict[str, str] = {}
            self.revocations = 0
            self.refreshes = 0
            self.inits = 0
            self.ids = itertools.count(7_300_000_000_000_000_001)

    def state(self) -> dict[str, Any]:
        with self.lock:
            return {
                "posts": list(self.posts),
                "publishes": {pid: p.summary() for pid, p in self.publishes.items()},
                "inits": self.inits,
                "refreshes": self.refreshes, "revocations": self.revocations,
                "refreshTokens": sorted(self.refresh_tokens),
                "config": self.options,
                "requests": [list(r) for r in self.requests],
            }

    def configure(self, request: Request) -> Response:
        body = request.get_json(force=True) or {}
        with self.lock:
            for token in body.pop("expireTokens", []) or []:
                self.revoked.add(str(token))
            if body.pop("expireUploads", False):
                for publish in self.publishes.values():
                    publish.expires_at = 0.0
            for key, value in body.items():
                if key not in DEFAULTS:
                    return json_response({"error": f"unknown option {key}"}, 400)
                if key == "rateLimits":
                    self.options[key] = {**self.options[key], **value}
                else:
                    self.options[key] = value
        return json_response({"ok": True, "config": self.options})

    # --- who is asking ----------------------------------------------------------------

    def authorize(self, request: Request, bucket: str | None) -> tuple[str, str] | Response:
        """(token, open_id), or the error answer (401 bad token, 429 over the limit)."""
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header.startswith("Bearer ") else ""
        if not token or token in self.revoked or token.startswith("expired"):
            return fail(401, "access_token_invalid", "The access token is invalid or not "
                        "found in the request.")
        if "noscope" in token:
            return fail(401, "scope_not_authorized", "The user did not authorize the scope "
                        "required for completing this request.")
        if bucket is not None:
            limit = int(self.options["rateLimits"].get(bucket, 1_000_000))
            now = time.monotonic()
            window = self.calls[(token, bucket)]
            while window and window[0] <= now - 60:
                window.popleft()
            if len(window) >= limit:
                return fail(429, "rate_limit_exceeded", f"The API rate limit was exceeded "
                            f"({limit} requests per minute for this token).")
            window.append(now)
        return token, self.owner(token)

    def owner(self, token: str) -> str:
        """The creator (open_id) a token belongs to; made up for tokens never issued."""
        if token not in self.owners:
            kind = "private" if "private" in token else "user"
            self.owners[token] = f"open-{kind}-{hashlib.sha1(token.encode()).hexdigest()[:12]}"
        return self.owners[token]

    def variant(self, token: str) -> str:
        owner = self.owner(token)
        chosen = self.options["accounts"].get(token) or self.options["accounts"].get(owner)
        if chosen:
            return str(chosen)
        return "private" if "private" in owner else str(self.options["account"])

    def options_for(self, token: str) -> list[str]:
        return list(PRIVATE_OPTIONS if self.variant(token) == "private" else PUBLIC_OPTIONS)

    def posts_today(self, owner: str) -> int:
        day_ago = time.time() - 86400
        return sum(1 for p in self.publishes.values()
                   if p.owner == owner and p.status != "FAILED" and not p.inbox
                   and p.created >= day_ago)

    # --- creator info -----------------------------------------------------------------

    def creator_info(self, request: Request) -> Response:
        with self.lock:
            who = self.authorize(request, "creator_info")
            if isinstance(who, Response):
                return who
            token, owner = who
            if self.posts_today(owner) >= int(self.options["dailyCap"]):
                # HTTP 200 on purpose, as TikTok does
                return fail(200, "spam_risk_too_many_posts", "The daily post cap of this "
                            "creator is reached.")
            return ok({
                "creator_avatar_url": "https://p16.tiktokcdn.example/avatar.jpeg",
                "creator_username": "chat33test", "creator_nickname": "chat33 test",
                "privacy_level_options": self.options_for(token),
                "comment_disabled": bool(self.options["commentDisabled"]),
                "duet_disabled": bool(self.options["duetDisabled"]),
                "stitch_disabled": bool(self.options["stitchDisabled"]),
                "max_video_post_duration_sec": int(self.options["maxDurationSec"]),
            })

    # --- init -------------------------------------------------------------------------

    def _check_post(self, token: str, owner: str, post_info: dict[str, Any],
                    photo: bool) -> Response | None:
        privacy = post_info.get("privacy_level")
        if not privacy:
            return fail(400, "invalid_param", "post_info.privacy_level is required.")
        if privacy not in self.options_for(token):
            return fail(403, "privacy_level_option_mismatch", f"privacy_level {privacy} is "
                        "not one of the creator's privacy_level_options.")
        if self.options["unaudited"] and (self.variant(token) != "private"
                                          or privacy != "SELF_ONLY"):
            return fail(403, "unaudited_client_can_only_post_to_private_accounts",
                        "Unaudited clients can only post to private accounts with SELF_ONLY.")
        if self.posts_today(owner) >= int(self.options["dailyCap"]):
            return fail(403, "spam_risk_too_many_posts", "The daily post cap of this creator "
                        "is reached.")
        for key in ("disable_duet", "disable_comment", "disable_stitch",
                    "brand_content_toggle", "brand_organic_toggle", "is_aigc",
                    "auto_add_music"):
            if key in post_info and not isinstance(post_info[key], bool):
                return fail(400, "invalid_param", f"post_info.{key} must be a boolean.")
        title = post_info.get("title") or ""
        limit = PHOTO_TITLE_MAX if photo else CAPTION_MAX
        if utf16_length(title) > limit:
            return fail(400, "invalid_param", f"post_info.title is over {limit} runes.")
        if photo and utf16_length(post_info.get("description") or "") > PHOTO_DESCRIPTION_MAX:
            return fail(400, "invalid_param", "post_info.description is over 4000 runes.")
        return None

    def _new_publish(self, prefix: str, kind: str, token: str, owner: str,
                     post_info: dict[str, Any], inbox: bool) -> Publish:
        publish_id = f"{prefix}~v2-1.{next(self.ids)}"
        publish = Publish(publish_id, kind, owner, token, post_info, inbox)
        self.publishes[publish_id] = publish
        self.inits += 1
        return publish

    def _file_upload(self, request: Request, source: dict[str, Any], publish: Publish
                     ) -> dict[str, Any]:
        assert publish.plan is not None
        publish.upload_id = secrets.token_hex(8)
        publish.upload_token = secrets.token_urlsafe(12)
        publish.expires_at = time.time() + 3600
        self.uploads[publish.upload_id] = publish.publish_id
        # absolute, on this very server (and under its mount point, if any)
        url = (f"{request.url_root.rstrip('/')}/video/?upload_id={publish.upload_id}"
               f"&upload_token={publish.upload_token}")
        return {"publish_id": publish.publish_id, "upload_url": url}

    def _source_plan(self, source: Any) -> ChunkPlan | Response:
        if not isinstance(source, dict) or source.get("source") != "FILE_UPLOAD":
            return fail(400, "invalid_param", "source_info.source must be FILE_UPLOAD here "
                        "(the sandbox does not pull videos).")
        try:
            size = int(source["video_size"])
            chunk = int(source["chunk_size"])
            count = int(source["total_chunk_count"])
        except (KeyError, TypeError, ValueError):
            return fail(400, "invalid_param", "source_info needs video_size, chunk_size and "
                        "total_chunk_count.")
        problems = plan_problems(size, chunk, count)
        if problems:
            return fail(400, "invalid_param", "; ".join(problems))
        return ChunkPlan(size, chunk, count)

    def video_init(self, request: Request) -> Response:
        body = request.get_json(force=True, silent=True) or {}
        with self.lock:
            who = self.authorize(request, "init")
            if isinstance(who, Response):
                return who
            token, owner = who
            post_info = body.get("post_info") or {}
            problem = self._check_post(token, owner, post_info, photo=False)
            if problem is not None:
                return problem
            chunks = self._source_plan(body.get("source_info"))
            if isinstance(chunks, Response):
                return chunks
            publish = self._new_publish("v_pub_file", "video", token, owner, post_info,
                                        inbox=False)
            publish.plan = chunks
            return ok(self._file_upload(request, body["source_info"], publish))

    def inbox_init(self, request: Request) -> Response:
        body = request.get_json(force=True, silent=True) or {}
        with self.lock:
            who = self.authorize(request, "init")
            if isinstance(who, Response):
                return who
            token, owner = who
            pending = sum(1 for p in self.publishes.values()
                          if p.owner == owner and p.inbox and p.status != "FAILED")
            if pending >= 5:
                return fail(403, "spam_risk_too_many_pending_share", "Too many pending "
                            "shares in the creator's inbox.")
            chunks = self._source_plan(body.get("source_info"))
            if isinstance(chunks, Response):
                return chunks
            publish = self._new_publish("v_inbox_file", "video", token, owner, {}, inbox=True)
            publish.plan = chunks
            return ok(self._file_upload(request, body["source_info"], publish))

    def content_init(self, request: Request) -> Response:
        body = request.get_json(force=True, silent=True) or {}
        source = body.get("source_info") or {}
        images = source.get("photo_images") or []
        with self.lock:
            who = self.authorize(request, "init")
            if isinstance(who, Response):
                return who
            token, owner = who
            inbox = body.get("post_mode") == "MEDIA_UPLOAD"
            if body.get("post_mode") not in ("DIRECT_POST", "MEDIA_UPLOAD"):
                return fail(400, "invalid_param", "post_mode must be DIRECT_POST or "
                            "MEDIA_UPLOAD.")
            if body.get("media_type") != "PHOTO":
                return fail(400, "invalid_param", "media_type must be PHOTO.")
            if source.get("source") != "PULL_FROM_URL":
                return fail(400, "invalid_param", "photos are only accepted PULL_FROM_URL.")
            if not isinstance(images, list) or not 1 <= len(images) <= MAX_PHOTOS:
                return fail(400, "invalid_param", f"photo_images needs 1 to {MAX_PHOTOS} "
                            "URLs.")
            index = source.get("photo_cover_index", 0)
            if not isinstance(index, int) or not 0 <= index < len(images):
                return fail(400, "invalid_param", "photo_cover_index is out of range.")
            post_info = body.get("post_info") or {}
            if not inbox:
                problem = self._check_post(token, owner, post_info, photo=True)
                if problem is not None:
                    return problem
            prefixes = self.options["verifiedPrefixes"]
            if prefixes is not None and not all(
                    any(str(u).startswith(p) for p in prefixes) for u in images):
                return fail(403, "url_ownership_unverified", "The domain or URL prefix of "
                            "the photos is not verified for this client.")
            publish = self._new_publish("p_pub_url", "photo", token, owner, post_info,
                                        inbox=inbox)
        # the pull happens without holding the lock (it is real network I/O)
        self._pull_photos(publish, [str(u) for u in images])
        return ok({"publish_id": publish.publish_id})

    def _pull_photos(self, publish: Publish, urls: list[str]) -> None:
        results: list[dict[str, Any]] = []
        error = ""
        with httpx.Client(timeout=10, follow_redirects=False) as client:
            for url in urls:
                entry: dict[str, Any] = {"url": url}
                try:
                    with client.stream("GET", url) as response:
                        entry["status"] = response.status_code
                        if response.status_code != 200:
                            error = error or "photo_pull_failed"
                        else:
                            digest = hashlib.sha256()
                            size = 0
                            head = b""
                            for piece in response.iter_bytes(READ):
                                if len(head) < 16:
                                    head += piece[:16]
                                digest.update(piece)
                                size += len(piece)
                                if size > PHOTO_MAX_BYTES:
                                    break
                            entry.update(size=size, sha256=digest.hexdigest())
                            if size > PHOTO_MAX_BYTES:
                                error = error or "picture_size_check_failed"
                            elif sniff(head) not in ("JPEG", "WEBP"):
                                error = error or "file_format_check_failed"
                except httpx.HTTPError as exc:
                    entry["error"] = type(exc).__name__
                    error = error or "photo_pull_failed"
                results.append(entry)
        with self.lock:
            publish.images = results
            publish.pull_error = error

    # --- chunk upload -----------------------------------------------------------------

    @staticmethod
    def _drain(request: Request) -> None:
        """Read what the client sends, so a refusal reaches it instead of a reset."""
        remaining = min(request.content_length or 0, 200 * 1024 * 1024)
        while remaining > 0:
            piece = request.stream.read(min(READ, remaining))
            if not piece:
                break
            remaining -= len(piece)

    def _held(self, publish: Publish) -> dict[str, str]:
        assert publish.plan is not None
        total = publish.plan.video_size
        held = f"bytes 0-{publish.uploaded - 1}/{total}" if publish.uploaded \
            else f"bytes */{total}"
        return {"Content-Range": held}

    def put_chunk(self, request: Request) -> Response:
        upload_id = request.args.get("upload_id", "")
        with self.lock:
            publish = self.publishes.get(self.uploads.get(upload_id, ""))
            if publish is None or request.args.get("upload_token") != publish.upload_token:
                self._drain(request)
                return fail(404, "upload_not_found", "No upload task for this URL.")
            if time.time() > publish.expires_at:
                self._drain(request)
                return fail(403, "upload_url_expired", "The upload URL has expired.")
            assert publish.plan is not None
            chunks = publish.plan
            held = self._held(publish)
            start = publish.uploaded
            running = publish.hash.copy()
        match = _RANGE.match(request.headers.get("Content-Range", ""))
        content_type = (request.headers.get("Content-Type") or "").split(";")[0].strip()
        if match is None or content_type not in VIDEO_TYPES:
            self._drain(request)
            return fail(400, "invalid_header", "Content-Range must be 'bytes a-b/total' and "
                        f"Content-Type one of {', '.join(VIDEO_TYPES)}.")
        first, last, total = (int(g) for g in match.groups())
        if total != chunks.video_size or last < first or last >= total:
            self._drain(request)
            return fail(400, "invalid_header", "Content-Range does not fit the video size.")
        if first != start:
            self._drain(request)
            return Response(status=416, headers=held)
        index = first // chunks.chunk_size
        if first % chunks.chunk_size or index >= chunks.total_chunk_count or \
                chunks.chunk_range(index) != (first, last):
            self._drain(request)
            return fail(400, "invalid_chunk", "The chunk does not match the chunk plan.")
        length = last - first + 1
        if request.content_length != length:
            self._drain(request)
            return fail(400, "invalid_length", "Content-Length does not match Content-Range.")
        received = 0
        while received < length:
            piece = request.stream.read(min(READ, length - received))
            if not piece:
                break
            running.update(piece)
            received += len(piece)
        if received != length:
            return fail(400, "invalid_length", f"got {received} of {length} bytes.")
        with self.lock:
            if publish.uploaded != start:  # another PUT of this chunk won the race
                return Response(status=416, headers=self._held(publish))
            publish.hash = running
            publish.uploaded = last + 1
            publish.chunks += 1
            publish.content_type = content_type
            done = publish.uploaded == chunks.video_size
            return Response(status=201 if done else 206, headers=self._held(publish))

    # --- status -----------------------------------------------------------------------

    def status_fetch(self, request: Request) -> Response:
        body = request.get_json(force=True, silent=True) or {}
        with self.lock:
            who = self.authorize(request, "status")
            if isinstance(who, Response):
                return who
            publish = self.publishes.get(str(body.get("publish_id") or ""))
            if publish is None:
                return fail(400, "invalid_publish_id", "The publish_id does not exist.")
            if publish.owner != who[1]:
                return fail(403, "token_not_authorized_for_specified_publish_id",
                            "This token may not read that publish_id.")
            self._advance(publish)
            data: dict[str, Any] = {"status": publish.status,
                                    "publicaly_available_post_id":
                                        [publish.post_id] if publish.post_id else []}
            if publish.fail_reason:
                data["fail_reason"] = publish.fail_reason
            if publish.kind == "video":
                data["uploaded_bytes"] = publish.uploaded
            else:
                data["downloaded_bytes"] = sum(int(i.get("size") or 0) for i in publish.images)
            return ok(data)

    def _advance(self, publish: Publish) -> None:
        """One poll's worth of progress: processing ends after ``processingPolls``."""
        if publish.status in ("PUBLISH_COMPLETE", "SEND_TO_USER_INBOX", "FAILED"):
            return
        if not publish.ready:
            return
        publish.polls_done += 1
        if publish.polls_done <= int(self.options["processingPolls"]):
            return
        queued = self.options["failReasons"]
        reason = publish.pull_error or (queued.pop(0) if queued else "")
        if reason:
            publish.status, publish.fail_reason = "FAILED", reason
            return
        if publish.inbox:
            publish.status = "SEND_TO_USER_INBOX"
            return
        publish.status = "PUBLISH_COMPLETE"
        if not self.options["moderationPending"]:
            publish.post_id = next(self.ids)
        self.posts.append({
            "publishId": publish.publish_id, "postId": publish.post_id, "kind": publish.kind,
            "owner": publish.owner, "title": publish.post_info.get("title"),
            "description": publish.post_info.get("description"),
            "privacyLevel": publish.post_info.get("privacy_level"),
            "postInfo": publish.post_info,
            "sha256": publish.hash.hexdigest() if publish.kind == "video" else None,
            "videoSize": publish.plan.video_size if publish.plan else None,
            "images": [i.get("sha256") for i in publish.images],
        })

    def cancel(self, request: Request) -> Response:
        body = request.get_json(force=True, silent=True) or {}
        with self.lock:
            who = self.authorize(request, None)
            if isinstance(who, Response):
                return who
            publish = self.publishes.get(str(body.get("publish_id") or ""))
            if publish is None:
                return fail(400, "invalid_publish_id", "The publish_id does not exist.")
            if publish.status != "PROCESSING_UPLOAD" or publish.ready:
                return fail(400, "publish_not_cancellable", "This publish cannot be "
                            "cancelled any more.")
            publish.status, publish.fail_reason = "FAILED", "publish_cancelled"
            return ok({})

    # --- OAuth --------------------------------------------------------------------------

    def token(self, request: Request) -> Response:
        form = request.form

        def oauth_error(status: int, code: str, description: str) -> Response:
            return json_response({"error": code, "error_description": description,
                                  "log_id": _log_id()}, status)

        with self.lock:
            key, secret = form.get("client_key"), form.get("client_secret")
            want_key, want_secret = self.options["clientKey"], self.options["clientSecret"]
            if not key or not secret or (want_key and key != want_key) or \
                    (want_secret and secret != want_secret):
                return oauth_error(401, "invalid_client", "Client key or secret is invalid.")
            if form.get("grant_type") == "authorization_code":
                try:
                    consent = self.auth.redeem_form(form, client_param="client_key")
                except GrantRefused as refused:
                    return oauth_error(401 if refused.error == "invalid_client" else 400,
                                       refused.error, refused.description)
                return self._issue(consent.subject, ",".join(consent.scopes),
                                   refresh=self.auth.refresh_tokens)
            if form.get("grant_type") != "refresh_token":
                return oauth_error(400, "unsupported_grant_type",
                                   "grant_type must be authorization_code or "
                                   "refresh_token.")
            old = form.get("refresh_token") or ""
            owner = self.refresh_tokens.pop(old, None)
            if owner is None:
                return oauth_error(400, "invalid_grant", "Refresh token is invalid or "
                                   "expired.")
            self.refreshes += 1
            return self._issue(owner, "user.info.basic,video.publish")

    def _issue(self, owner: str, scope: str, *, refresh: bool = True) -> Response:
        """A new token pair for the creator ``owner`` (under the lock); only the access
        token when ``refresh`` is false (the ``refresh_tokens`` switch)."""
        access, token = f"act.{secrets.token_urlsafe(24)}", \
            f"rft.{secrets.token_urlsafe(24)}"
        self.owners[access] = owner
        body = {"access_token": access, "expires_in": 7200, "open_id": owner,
                "scope": scope, "token_type": "Bearer"}
        if refresh:
            self.refresh_tokens[token] = owner
            self.pairs[access] = token
            body.update(refresh_expires_in=15_552_000, refresh_token=token)
        return json_response(body, headers={"Cache-Control": "no-store"})

    # --- Login Kit --------------------------------------------------------------------

    def oauth_authorize(self, request: Request) -> Response:
        with self.lock:
            subject = str(self.options["oauthUser"])
        scopes = self.auth.split_scopes(request.args.get("scope"), ",")
        return self.auth.authorize(request, subject=subject, client_param="client_key",
                                   allowed_scopes=SCOPES,
                                   redirect_extra={"scopes": ",".join(scopes)})

    def user_info(self, request: Request) -> Response:
        with self.lock:
            found = self.authorize(request, None)
            if isinstance(found, Response):
                return found
            _, owner = found
        user = {"open_id": owner, "union_id": f"union-{owner}",
                "avatar_url": f"https://p16-sign.tiktokcdn.com/{owner}.jpeg",
                "display_name": f"Creator {owner}", "username": f"creator_{owner[-6:]}"}
        fields = [f for f in (request.args.get("fields") or "").split(",") if f]
        return ok({"user": {k: v for k, v in user.items() if not fields or k in fields}})

    def oauth_revoke(self, request: Request) -> Response:
        form = request.form
        with self.lock:
            if not self.auth.client_ok(form.get("client_key"), form.get("client_secret")):
                return json_response({"error": "invalid_client", "error_description":
                                      "Client key or secret is invalid.",
                                      "log_id": _log_id()}, 401)
            token = form.get("token") or ""
            if token in self.owners:
                self.revoked.add(token)
                self.refresh_tokens.pop(self.pairs.get(token, ""), None)
                self.revocations += 1
        return json_response({})
