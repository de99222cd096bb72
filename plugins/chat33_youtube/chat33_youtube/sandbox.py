"""A stateful imitation of YouTube's upload API (platforms.md §4, §7).

Paths are Google's own (``/upload/youtube/v3/videos``, ``/youtube/v3/videos``...), so the
plugin's real code runs against it with ``CHAT33_YOUTUBE_API_BASE`` pointing here, and
its token endpoint is served too (``/token``, for ``CHAT33_YOUTUBE_TOKEN_URL``). What it
imitates:

* resumable sessions: ``POST ...?uploadType=resumable`` checks the video resource
  (``invalidTitle``, ``invalidDescription``, ``invalidTags``, ``invalidCategoryId``,
  ``invalidPublishAt``...) and answers ``200`` with an absolute ``Location`` on this
  server; ``PUT`` chunks (``Content-Range: bytes A-B/TOTAL``, every chunk but the last a
  multiple of 262,144 bytes) answer ``308`` with ``Range: bytes=0-N``, the last one
  ``201`` with the video resource; ``bytes */TOTAL`` probes answer ``308`` (no ``Range``
  when nothing arrived) or the final response again; expired sessions answer ``404``;
* bytes are counted and checksummed (CRC-32), never kept, and persisted in 262,144-byte
  units as they arrive, so a dropped connection loses only the unit in flight;
* quota per bucket: ``videos.insert`` calls (100 a day) and units for everything else
  (10,000: thumbnails.set and videos.delete 50, videos.list 1), ``quotaExceeded`` 403;
  the channel's own daily upload limit (``uploadLimitExceeded`` 400) when configured;
* thumbnails.set (JPEG/PNG by their bytes; ``forbidden`` for unverified channels),
  videos.list, videos.delete; access tokens that expire (401 ``authError``) and the
  refresh_token grant (``invalid_grant`` for revoked refresh tokens).

Beyond the common control API (faults, state, reset) it answers:

Google's authorization server too (oauth.md §6, §9), on
:class:`chat33_core.sandbox_oauth.AuthorizationServer`: ``/o/oauth2/v2/auth`` (PKCE S256
or plain), ``/token`` with ``authorization_code`` (a ``refresh_token`` only with
``access_type=offline``, and only on the user's first consent to the app or with
``prompt=consent``) and ``refresh_token``, ``/tokeninfo``, ``/revoke`` (``?token=`` or a
form; one token revokes the whole grant, whose tokens then get 401 and
``invalid_grant``) and ``/youtube/v3/channels?mine=true`` (the ``channels`` setting:
one channel, several, or none). Tokens it issues publish like any other.

* ``POST /_sandbox/config`` — ``insertQuota``, ``unitQuota``, ``uploadLimit``,
  ``thumbnailsAllowed``, ``clientId``, ``clientSecret`` (the refresh grant's client
  for tokens the sandbox did not issue), ``channels``, ``testingMode`` (the app is in
  Testing status: refresh tokens issued meanwhile die after 7 days);
* ``POST /_sandbox/clock`` ``{"advance": seconds}`` — move the sandbox's clock;
* ``POST /_sandbox/oauth`` — deny, partial grants, code lifetime...;
* ``POST /_sandbox/drops`` ``{"afterBytes": K, "count": 1}`` — the next upload ``PUT``
  loses its connection after K bytes of its body (no answer at all);
* ``POST /_sandbox/expire`` ``{"uploadId": "..."}`` (or ``{}`` for all) — sessions
  answer 404 from now on;
* ``POST /_sandbox/tokens`` ``{"expired": [access tokens], "revoked": [refresh tokens]}``.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import secrets
import socket
import string
import time
import zlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from werkzeug.exceptions import ClientDisconnected
from werkzeug.wrappers import Request, Response

from chat33_core.sandbox import SandboxApp, json_response, sniff
from chat33_core.sandbox_oauth import AuthorizationServer, GrantRefused

from . import rules

CHUNK_UNIT = 262_144
READ_PIECE = CHUNK_UNIT
UPLOAD_PATH = "upload/youtube/v3/videos"
COSTS = {"thumbnails.set": 50, "videos.delete": 50, "videos.list": 1}
_ID_CHARS = string.ascii_letters + string.digits + "-_"
_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)$")
_PROBE = re.compile(r"bytes \*/(\d+)$")
#: the Google account that consents, and its channel
GOOGLE_SUB = "110000000000000000001"
CHANNELS: tuple[dict[str, Any], ...] = (
    {"id": "UCsandbox0000000000000000", "title": "Sandbox Channel",
     "customUrl": "@sandboxchannel"},
)
SCOPES = ("https://www.googleapis.com/auth/youtube.force-ssl",
          "https://www.googleapis.com/auth/youtube.upload",
          "https://www.googleapis.com/auth/youtube",
          "https://www.googleapis.com/auth/youtube.readonly", "openid", "email", "profile")
#: an app in Testing status: its refresh tokens die after 7 days (platforms.md §4.7)
TESTING_REFRESH_LIFE = 7 * 86_400.0
STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED"}


class GoogleFailure(Exception):
    """Answer with Google's error envelope."""

    def __init__(self, status: int, reason: str, message: str,
                 domain: str = "youtube.video") -> None:
        super().__init__(message)
        self.status, self.reason, self.message, self.domain = status, reason, message, domain

    def response(self) -> Response:
        return google_error(self.status, self.reason, self.message, self.domain)


def google_error(status: int, reason: str, message: str,
                 domain: str = "youtube.video") -> Response:
    error: dict[str, Any] = {"code": status, "message": message,
                             "errors": [{"message": message, "domain": domain,
                                         "reason": reason}]}
    if status in STATUS_NAMES:
        error["status"] = STATUS_NAMES[status]
    return json_response({"error": error}, status)


class YouTubeSandbox(SandboxApp):
    """YouTube's upload, thumbnail, video and token endpoints, in memory."""

    name = "youtube"

    def __init__(self, insert_quota: int = 100, unit_quota: int = 10_000,
                 upload_limit: int | None = None, thumbnails_allowed: bool = True,
                 client_id: str | None = None, client_secret: str | None = None) -> None:
        super().__init__()
        self.configurable(
            insertQuota=insert_quota, unitQuota=unit_quota, uploadLimit=upload_limit,
            thumbnailsAllowed=thumbnails_allowed, clientId=client_id, clientSecret=client_secret,
            channels=[dict(c) for c in CHANNELS], testingMode=False)
        self.auth = AuthorizationServer("youtube", self, pkce="optional", clock=self.now)
        self.reset()
        self.route(f"/{UPLOAD_PATH}", self._start, methods=["POST"])
        self.route(f"/{UPLOAD_PATH}", self._put, methods=["PUT"])
        self.route("/upload/youtube/v3/thumbnails/set", self._thumbnail, methods=["POST"])
        self.route("/youtube/v3/videos", self._list, methods=["GET"])
        self.route("/youtube/v3/videos", self._delete, methods=["DELETE"])
        self.route("/token", self._token, methods=["POST"])
        self.route("/o/oauth2/v2/auth", self._consent, methods=["GET"])
        self.route("/tokeninfo", self._tokeninfo, methods=["GET"])
        self.route("/revoke", self._revoke, methods=["POST"])
        self.route("/youtube/v3/channels", self._channels, methods=["GET"])
        self.route("/_sandbox/drops", self._drops, methods=["POST"])
        self.route("/_sandbox/expire", self._expire, methods=["POST"])
        self.route("/_sandbox/tokens", self._tokens, methods=["POST"])
        self.route("/_sandbox/clock", self._clock, methods=["POST"])

    # --- state ----------------------------------------------------------------------------

    def reset(self) -> None:
        with self.lock:
            self.config = dict(self.defaults)
            self.sessions: dict[str, dict[str, Any]] = {}
            self.videos: dict[str, dict[str, Any]] = {}
            self.deleted: list[str] = []
            self.used = {"videos.insert": 0, "units": 0}
            self.pending_drops: list[int] = []
            self.dropped = 0
            self.expired_tokens: set[str] = set()
            self.revoked_refresh: set[str] = set()
            self.issued: list[dict[str, Any]] = []
            #: OAuth grants by id, and which grant each token it issued belongs to
            self.grants: dict[str, dict[str, Any]] = {}
            self.grant_of: dict[str, str] = {}
            #: (user, client) pairs that consented once: later consents get no refresh
            #: token unless prompt=consent
            self.consented: set[tuple[str, str]] = set()
            self.clock_offset = 0.0
        self.auth.reset()

    def state(self) -> dict[str, Any]:
        with self.lock:
            return {
                "videos": [dict(v) for v in self.videos.values()],
                "deleted": list(self.deleted),
                "sessions": [{k: v for k, v in s.items() if k != "resource"}
                             for s in self.sessions.values()],
                "quota": {"videos.insert": self.used["videos.insert"],
                          "units": self.used["units"],
                          "insertQuota": self.config["insertQuota"],
                          "unitQuota": self.config["unitQuota"]},
                "dropped": self.dropped,
                "issuedTokens": [dict(t) for t in self.issued],
                "grants": [{k: v for k, v in g.items() if k != "tokens"}
                           for g in self.grants.values()],
                "config": dict(self.config),
            }

    # --- control ----------------------------------------------------------------------------

    def _drops(self, request: Request) -> Response:
        body = request.get_json(force=True) or {}
        with self.lock:
            self.pending_drops.extend([int(body.get("afterBytes", 0))] *
                                      int(body.get("count", 1)))
        return json_response({"pending": len(self.pending_drops)}, 201)

    def _expire(self, request: Request) -> Response:
        body = request.get_json(force=True, silent=True) or {}
        wanted = body.get("uploadId")
        with self.lock:
            for sid, session in self.sessions.items():
                if wanted in (None, sid):
                    session["expired"] = True
        return json_response({"ok": True})

    def now(self) -> float:
        return time.time() + self.clock_offset

    def _clock(self, request: Request) -> Response:
        body = request.get_json(force=True, silent=True) or {}
        with self.lock:
            self.clock_offset += float(body.get("advance", 0))
        return json_response({"offset": self.clock_offset})

    def _tokens(self, request: Request) -> Response:
        body = request.get_json(force=True) or {}
        with self.lock:
            self.expired_tokens.update(body.get("expired") or [])
            self.revoked_refresh.update(body.get("revoked") or [])
        return json_response({"ok": True})

    # --- checks -------------------------------------------------------------------------------

    def _authorize(self, request: Request) -> str:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer ") or not header[7:].strip():
            raise GoogleFailure(401, "required", "Login Required.", "global")
        token = header[7:].strip()
        with self.lock:
            if token in self.expired_tokens or self._revoked(token):
                raise GoogleFailure(401, "authError", "Invalid Credentials", "global")
        return token

    def _revoked(self, token: str) -> bool:
        """Whether ``token`` belongs to a grant revoked since (caller holds the lock)."""
        grant = self.grants.get(self.grant_of.get(token, ""))
        return grant is not None and grant["revoked"]

    def _charge(self, bucket: str, cost: int) -> None:
        """Spend quota; every call costs, even one that fails afterwards."""
        with self.lock:
            limit = self.config["insertQuota" if bucket == "videos.insert" else "unitQuota"]
            if self.used[bucket] + cost > int(limit):
                raise GoogleFailure(403, "quotaExceeded", "The request cannot be completed "
                                    "because you have exceeded your quota.", "youtube.quota")
            self.used[bucket] += cost

    # --- videos.insert ------------------------------------------------------------------------

    def _start(self, request: Request) -> Response:
        try:
            self._authorize(request)
            if request.args.get("uploadType") != "resumable":
                raise GoogleFailure(400, "badRequest", "this sandbox takes resumable "
                                                       "uploads only (uploadType=resumable)")
            self._charge("videos.insert", 1)
            parts = set((request.args.get("part") or "").split(","))
            if not {"snippet", "status"} <= parts:
                raise GoogleFailure(400, "invalidPart", "part must name snippet and status")
            total = request.headers.get("X-Upload-Content-Length", "")
            if not total.isdigit() or int(total) == 0:
                raise GoogleFailure(400, "mediaBodyRequired", "X-Upload-Content-Length must "
                                                              "give the video's size")
            resource = request.get_json(force=True, silent=True)
            check_resource(resource)
            with self.lock:
                limit = self.config["uploadLimit"]
                if limit is not None and len(self.videos) >= int(limit):
                    raise GoogleFailure(400, "uploadLimitExceeded", "The user has exceeded "
                                        "the number of videos they may upload.")
                sid = secrets.token_urlsafe(18)
                self.sessions[sid] = {
                    "id": sid, "total": int(total), "received": 0, "crc32": 0,
                    "contentType": request.headers.get("X-Upload-Content-Type"),
                    "notifySubscribers": request.args.get("notifySubscribers"),
                    "resource": resource, "videoId": None, "expired": False, "chunks": 0,
                    "starts": [],
                }
        except GoogleFailure as failure:
            return failure.response()
        # absolute, on this server (under any prefix it is mounted at)
        location = f"{request.url_root}{UPLOAD_PATH}?uploadType=resumable&upload_id={sid}" \
                   "&part=snippet,status"
        return Response(b"", status=200, headers={"Location": location})

    def _put(self, request: Request) -> Response:
        sid = request.args.get("upload_id") or ""
        with self.lock:
            session = self.sessions.get(sid)
        if session is None or session["expired"]:
            return google_error(404, "notFound", "The upload session was not found or has "
                                                 "expired.", "global")
        content_range = request.headers.get("Content-Range", "")
        probe = _PROBE.match(content_range)
        if probe:
            return self._status(session)
        match = _RANGE.match(content_range)
        length = request.content_length or 0
        if match:
            start, end, total = (int(g) for g in match.groups())
        elif not content_range:
            start, end, total = 0, length - 1, session["total"]
        else:
            return google_error(400, "badRequest", f"Invalid Content-Range {content_range!r}")
        with self.lock:
            received, finished = session["received"], session["videoId"] is not None
        if finished:
            return self._status(session)
        if total != session["total"]:
            return google_error(400, "badRequest", f"Content-Range total {total} differs from "
                                                   f"X-Upload-Content-Length {session['total']}")
        if start != received:
            return google_error(400, "badRequest", f"the chunk starts at byte {start}; the "
                                                   f"session has {received} bytes")
        if end < start or end >= total or length != end - start + 1:
            return google_error(400, "badRequest", "Content-Length does not match the "
                                                   "Content-Range")
        if end + 1 < total and length % CHUNK_UNIT:
            return google_error(400, "badRequest", f"a chunk of {length} bytes is not a "
                                                   f"multiple of {CHUNK_UNIT}")
        with self.lock:
            drop_after = self.pending_drops.pop(0) if self.pending_drops else None
            session["starts"].append(start)
        complete = self._receive(request, session, start, length, drop_after)
        if not complete:
            return google_error(400, "badRequest", "the request body ended early")
        with self.lock:
            session["chunks"] += 1
            if session["received"] == total and session["videoId"] is None:
                self._finish(session)
        return self._status(session)

    def _receive(self, request: Request, session: dict[str, Any], start: int, length: int,
                 drop_after: int | None) -> bool:
        """Read the body, persisting each whole 262,144-byte unit as it arrives; drop the
        connection after ``drop_after`` bytes when asked to (after the whole body, and
        without an answer, when the body is shorter). False if the body ended early."""
        pos, crc, read = start, session["crc32"], 0
        stream = request.stream
        while read < length:
            to_boundary = CHUNK_UNIT - pos % CHUNK_UNIT
            want = min(READ_PIECE, length - read, to_boundary)
            if drop_after is not None:
                if read >= drop_after:
                    self._drop(request)
                want = min(want, drop_after - read)
            try:
                piece = stream.read(want)
            except ClientDisconnected:
                return False
            if not piece:
                return False
            crc = zlib.crc32(piece, crc)
            pos += len(piece)
            read += len(piece)
            if pos % CHUNK_UNIT == 0 or read == length:
                with self.lock:
                    session["received"], session["crc32"] = pos, crc
        if drop_after is not None:
            # asked to drop after more bytes than the body had: the whole chunk arrived
            # and its answer is lost (the last chunk: the video exists, the client never
            # hears of it)
            with self.lock:
                if session["received"] == session["total"] and session["videoId"] is None:
                    self._finish(session)
            self._drop(request)
        return True

    def _drop(self, request: Request) -> None:
        """Close the connection without an answer, as a network failure would."""
        with self.lock:
            self.dropped += 1
        sock = request.environ.get("werkzeug.socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            # drain what the server already buffered, or it would parse the rest of the
            # body as a next request
            raw = request.environ.get("wsgi.input")
            with contextlib.suppress(OSError, ValueError):
                while raw is not None and raw.read(READ_PIECE):
                    pass
        # werkzeug's server treats a ConnectionError as a dropped client: no answer is sent
        raise ConnectionAbortedError("the sandbox dropped the upload connection")

    def _status(self, session: dict[str, Any]) -> Response:
        with self.lock:
            video_id, received = session["videoId"], session["received"]
            video = dict(self.videos[video_id]) if video_id in self.videos else None
        if video_id is not None:
            body = _public(video) if video else {"kind": "youtube#video", "id": video_id}
            return json_response(body, 201)
        headers = {"Range": f"bytes=0-{received - 1}"} if received else {}
        return Response(b"", status=308, headers=headers)

    def _finish(self, session: dict[str, Any]) -> None:
        """The last byte arrived: the video exists now (caller holds the lock)."""
        resource = session["resource"] or {}
        snippet = dict(resource.get("snippet") or {})
        status = dict(resource.get("status") or {})
        video_id = "".join(secrets.choice(_ID_CHARS) for _ in range(11))
        now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        snippet.setdefault("description", "")
        snippet.update(publishedAt=now, channelId="UCsandbox0000000000000000")
        status.update(uploadStatus="uploaded")
        self.videos[video_id] = {
            "kind": "youtube#video", "id": video_id,
            "etag": hashlib.sha1(video_id.encode()).hexdigest(),
            "snippet": snippet, "status": status,
            "size": session["total"], "crc32": session["crc32"],
            "contentType": session["contentType"], "uploadId": session["id"],
            "thumbnail": None,
        }
        session["videoId"] = video_id

    # --- thumbnails.set, videos.list, videos.delete -------------------------------------------

    def _thumbnail(self, request: Request) -> Response:
        try:
            self._authorize(request)
            self._charge("units", COSTS["thumbnails.set"])
            video_id = request.args.get("videoId", "")
            with self.lock:
                video = self.videos.get(video_id)
                allowed = bool(self.config["thumbnailsAllowed"])
            if video is None:
                raise GoogleFailure(404, "videoNotFound", "The video that you are trying to "
                                                          "update cannot be found.")
            if not allowed:
                raise GoogleFailure(403, "forbidden", "The authenticated user doesn't have "
                                    "permissions for uploading and setting custom video "
                                    "thumbnails.", "youtube.thumbnail")
            size, head = 0, b""
            while piece := request.stream.read(READ_PIECE):
                head = head or piece[:8]
                size += len(piece)
                if size > rules.THUMBNAIL_MAX_BYTES:
                    raise GoogleFailure(400, "mediaTooLarge", "The thumbnail is too large.")
            if size == 0:
                raise GoogleFailure(400, "mediaBodyRequired", "The request does not include "
                                                              "the image content.")
            kind = sniff(head)
            if kind not in rules.THUMBNAIL_FORMATS:
                raise GoogleFailure(400, "invalidImage", "The provided image content is "
                                                         "invalid.", "youtube.thumbnail")
        except GoogleFailure as failure:
            return failure.response()
        with self.lock:
            video["thumbnail"] = {"format": kind, "size": size}
        url = f"https://i.ytimg.com/vi/{video_id}/default.jpg"
        return json_response({"kind": "youtube#thumbnailSetResponse",
                              "etag": secrets.token_hex(8),
                              "items": [{"default": {"url": url, "width": 120, "height": 90}}]})

    def _list(self, request: Request) -> Response:
        try:
            self._authorize(request)
            self._charge("units", COSTS["videos.list"])
        except GoogleFailure as failure:
            return failure.response()
        ids = [i for i in (request.args.get("id") or "").split(",") if i]
        with self.lock:
            items = [_public(self.videos[i]) for i in ids if i in self.videos]
        return json_response({"kind": "youtube#videoListResponse", "items": items,
                              "pageInfo": {"totalResults": len(items),
                                           "resultsPerPage": len(items)}})

    def _delete(self, request: Request) -> Response:
        try:
            self._authorize(request)
            self._charge("units", COSTS["videos.delete"])
            video_id = request.args.get("id", "")
            with self.lock:
                if self.videos.pop(video_id, None) is None:
                    raise GoogleFailure(404, "videoNotFound", "The video that you are trying "
                                                              "to delete cannot be found.")
                self.deleted.append(video_id)
        except GoogleFailure as failure:
            return failure.response()
        return Response(b"", status=204)

    # --- OAuth ----------------------------------------------------------------------------------

    def _consent(self, request: Request) -> Response:
        """Google's consent page, consenting at once (or denying, when switched)."""
        prompt = set((request.args.get("prompt") or "").split())

        def google_extras(granted: tuple[str, ...]) -> dict[str, str]:
            # Google appends the granted scope, the account index and the prompt shown
            return {"scope": " ".join(granted), "authuser": "0",
                    "prompt": "consent" if "consent" in prompt else "none"}

        return self.auth.authorize(request, subject=GOOGLE_SUB, allowed_scopes=SCOPES,
                                   extra={"offline": request.args.get("access_type")
                                          == "offline", "consent": "consent" in prompt},
                                   redirect_extra=google_extras)

    def _token(self, request: Request) -> Response:
        if request.mimetype != "application/x-www-form-urlencoded":
            return json_response({"error": "invalid_request", "error_description":
                                  "The token request must be form-encoded."}, 400)
        form = request.form
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            return self._code_grant(form)
        if grant_type != "refresh_token":
            return json_response({"error": "unsupported_grant_type",
                                  "error_description": "Invalid grant_type."}, 400)
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        refresh = form.get("refresh_token") or ""
        with self.lock:
            grant = self.grants.get(self.grant_of.get(refresh, ""))
            want_id, want_secret = self.config["clientId"], self.config["clientSecret"]
        if grant is not None:  # issued here: only its own client may use it
            client_ok = self.auth.client_ok(client_id, client_secret or "")
        else:
            client_ok = bool(client_id and client_secret) and not (
                (want_id and client_id != want_id)
                or (want_secret and client_secret != want_secret))
        if not client_ok:
            return json_response({"error": "invalid_client",
                                  "error_description": "The OAuth client was not found."}, 401)
        with self.lock:
            expired = grant is not None and grant["testing"] and (
                self.now() - grant["issuedAt"] > TESTING_REFRESH_LIFE)
            if not refresh or refresh in self.revoked_refresh or expired or (
                    grant and grant["revoked"]):
                return json_response({"error": "invalid_grant",
                                      "error_description": "Token has been expired or "
                                                           "revoked."}, 400)
            token = "ya29.sandbox-" + secrets.token_urlsafe(24)
            self.issued.append({"accessToken": token, "refreshToken": refresh,
                                "clientId": client_id})
            scope = "https://www.googleapis.com/auth/youtube.upload"
            if grant is not None:
                self.grant_of[token] = grant["id"]
                scope = " ".join(grant["scopes"])
        return json_response({"access_token": token, "expires_in": 3599, "scope": scope,
                              "token_type": "Bearer"})

    def _code_grant(self, form: Mapping[str, str]) -> Response:
        try:
            consent = self.auth.redeem(form.get("code"), client_id=form.get("client_id"),
                                       client_secret=form.get("client_secret") or "",
                                       redirect_uri=form.get("redirect_uri"),
                                       code_verifier=form.get("code_verifier"))
        except GrantRefused as refused:
            return json_response(refused.body(), 401 if refused.error == "invalid_client"
                                 else 400)
        with self.lock:
            grant_id = secrets.token_hex(8)
            access = "ya29.sandbox-" + secrets.token_urlsafe(24)
            first = (consent.subject, consent.client_id) not in self.consented
            self.consented.add((consent.subject, consent.client_id))
            body: dict[str, Any] = {"access_token": access, "expires_in": 3599,
                                    "scope": " ".join(consent.scopes), "token_type": "Bearer"}
            if consent.extra.get("offline") and (first or consent.extra.get("consent")) \
                    and self.auth.refresh_tokens:
                body["refresh_token"] = "1//sandbox-" + secrets.token_urlsafe(32)
                self.grant_of[body["refresh_token"]] = grant_id
            self.grant_of[access] = grant_id
            self.grants[grant_id] = {"id": grant_id, "subject": consent.subject,
                                     "clientId": consent.client_id, "scopes": consent.scopes,
                                     "offline": "refresh_token" in body, "revoked": False,
                                     "issuedAt": self.now(),
                                     "testing": bool(self.config["testingMode"])}
        return json_response(body, headers={"Cache-Control": "no-store"})

    def _tokeninfo(self, request: Request) -> Response:
        token = request.args.get("access_token") or ""
        with self.lock:
            grant = self.grants.get(self.grant_of.get(token, ""))
            if grant is None or grant["revoked"] or token.startswith("1//"):
                return json_response({"error": "invalid_token",
                                      "error_description": "Invalid Value"}, 400)
            return json_response({"aud": grant["clientId"], "sub": grant["subject"],
                                  "scope": " ".join(grant["scopes"]), "expires_in": 3599,
                                  "access_type": "offline" if grant["offline"] else "online"})

    def _revoke(self, request: Request) -> Response:
        """One token, access or refresh, revokes its whole grant."""
        token = request.args.get("token") or request.form.get("token") or ""
        with self.lock:
            grant = self.grants.get(self.grant_of.get(token, ""))
            if grant is None or grant["revoked"]:
                return json_response({"error": "invalid_token",
                                      "error_description": "Token expired or revoked"}, 400)
            grant["revoked"] = True
        return json_response({})

    def _channels(self, request: Request) -> Response:
        try:
            self._authorize(request)
            self._charge("units", COSTS["videos.list"])
            if request.args.get("mine") != "true":
                raise GoogleFailure(400, "missingRequiredParameter", "This sandbox lists the "
                                    "channels of mine=true only.")
        except GoogleFailure as failure:
            return failure.response()
        with self.lock:
            channels = [dict(c) for c in self.config["channels"]]
        items = [{"kind": "youtube#channel", "etag": secrets.token_hex(8), "id": c["id"],
                  "snippet": {"title": c["title"], "description": "",
                              "customUrl": c.get("customUrl"),
                              "thumbnails": {"default": {
                                  "url": f"https://yt3.ggpht.example/{c['id']}=s88",
                                  "width": 88, "height": 88}}}} for c in channels]
        return json_response({"kind": "youtube#channelListResponse", "items": items,
                              "pageInfo": {"totalResults": len(items),
                                           "resultsPerPage": len(items)}})


def check_resource(resource: Any) -> None:
    """Refuse a video resource the way YouTube does, one reason per problem."""
    if not isinstance(resource, Mapping):
        raise GoogleFailure(400, "invalidVideoMetadata", "The request metadata is invalid.")
    snippet = resource.get("snippet") or {}
    status = resource.get("status") or {}
    title = snippet.get("title")
    if not isinstance(title, str) or not title.strip() or len(title) > rules.TITLE_MAX \
            or "<" in title or ">" in title:
        raise GoogleFailure(400, "invalidTitle", "The request metadata specifies an invalid "
                                                 "or empty video title.")
    description = snippet.get("description") or ""
    if not isinstance(description, str) or "<" in description or ">" in description or \
            len(description.encode("utf-8")) > rules.DESCRIPTION_MAX_BYTES:
        raise GoogleFailure(400, "invalidDescription", "The request metadata specifies an "
                                                       "invalid video description.")
    tags = snippet.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags) or \
            rules.tags_length(tags) > rules.TAGS_MAX:
        raise GoogleFailure(400, "invalidTags", "The request metadata specifies invalid "
                                                "video keywords.")
    category = snippet.get("categoryId")
    if category is not None and not (isinstance(category, str) and category.isdigit()):
        raise GoogleFailure(400, "invalidCategoryId", "The snippet.categoryId property "
                                                      "specifies an invalid category ID.")
    privacy = status.get("privacyStatus")
    if privacy not in rules.PRIVACY:
        raise GoogleFailure(400, "invalidVideoMetadata", "status.privacyStatus is invalid.")
    publish_at = status.get("publishAt")
    if publish_at is not None and (privacy != "private"
                                   or rules.parse_publish_at(publish_at) is None):
        raise GoogleFailure(400, "invalidPublishAt", "The request metadata specifies an "
                                                     "invalid scheduled publishing time.")


def _public(video: Mapping[str, Any]) -> dict[str, Any]:
    """The video resource as YouTube shows it (without the sandbox's bookkeeping)."""
    return {k: video[k] for k in ("kind", "etag", "id", "snippet", "status")}
