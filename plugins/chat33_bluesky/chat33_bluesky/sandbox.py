"""A stateful imitation of the Bluesky hosts chat33 talks to (platforms-more.md §1.11).

One server stands in for the entryway (``/xrpc/...``), the account's PDS (``/pds/xrpc/...``,
named in the DID document that ``createSession`` returns, so the plugin must follow it)
and the video service (``/xrpc/app.bsky.video.*``). It reproduces:

* ``createSession`` / ``refreshSession`` with JWT-shaped, signed tokens carrying ``exp``;
  refresh JWTs rotate (a used one is refused); an expired access JWT is a **400
  ExpiredToken**, a forged one 400 InvalidToken, none 401 AuthMissing; createSession is
  limited (30 per 5 minutes by default);
* ``uploadBlob`` (content-addressed: the same bytes give the same ref; 413 PayloadTooLarge
  above the upload limit; unreferenced blobs are dropped after ``blob_ttl_s``);
* ``createRecord`` (client-chosen TID ``rkey`` honoured, a taken one refused), validating
  the post record: 300 graphemes / 3,000 bytes, ``langs`` ≤ 3, facets inside the text and
  not overlapping, ≤ 4 images with ``alt``, blob MIME and size (2,000,000 bytes by default),
  ``reply.root`` and ``reply.parent`` together and pointing at existing posts;
  ``getRecord``, ``listRecords``, ``deleteRecord`` (idempotent);
* ``resolveHandle``; ``getServiceAuth``;
* the video service: ``uploadVideo`` answering the JobStatus at top level, ``getJobStatus``
  stepping through the states to a ``blob`` (or ``JOB_STATE_FAILED`` with a
  ``failureCode``), ``already_exists`` with the blob for a video it has seen;
* write points per account (create 3, delete 1; 5,000 an hour): past them a 429
  ``RateLimitExceeded`` with ``RateLimit-Limit/-Remaining/-Reset/-Policy`` headers.

Control API beyond ``/_sandbox/faults``, ``/state``, ``/reset``:

* ``POST /_sandbox/config`` — the knobs in :data:`DEFAULTS`;
* ``POST /_sandbox/accounts`` ``{"did", "handle", "password"}`` — add an account or change
  its app password (the old one is refused from then on);
* ``POST /_sandbox/clock`` ``{"advance": seconds}`` — move the sandbox's clock (tokens,
  blobs and rate windows age without waiting).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import re
import secrets
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from werkzeug.wrappers import Request, Response

from chat33_core.sandbox import SandboxApp, json_response

from .richtext import graphemes

DEMO_ACCOUNT = {"did": "did:plc:chat33sandboxdemouser234", "handle": "chat33demo.bsky.social",
                "password": "sandbox-token"}
#: a handle every sandbox resolves (the example of Bluesky's rich-text guide)
KNOWN_HANDLES = {"atproto.com": "did:plc:ewvi7nxzyoun6zhxrhs64oiz"}
DEFAULTS: dict[str, Any] = {
    "access_ttl_s": 7200, "refresh_ttl_s": 90 * 86400,
    "create_session_limit": 30, "create_session_window_s": 300,
    "write_points": 5000, "write_window_s": 3600,
    "image_max_bytes": 2_000_000, "upload_limit_bytes": 52_428_800,
    "video_max_bytes": 300_000_000, "blob_ttl_s": 600,
    "video_steps": 3, "video_failure": None, "wrap_job_status": False,
}
POST = "app.bsky.feed.post"
WRITE_COST = {"create": 3, "delete": 1}
VIDEO_STATES = ["JOB_STATE_ENCODING", "JOB_STATE_SCANNING", "JOB_STATE_UPLOADING"]
_TID = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def xrpc_error(status: int, name: str, message: str,
               headers: dict[str, str] | None = None) -> Response:
    return json_response({"error": name, "message": message}, status, headers)


def invalid(message: str, name: str = "InvalidRequest") -> Response:
    return xrpc_error(400, name, message)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _cid(prefix: str, data: bytes) -> str:
    digest = base64.b32encode(hashlib.sha256(data).digest()).decode().lower().rstrip("=")
    return prefix + digest


class Rejected(Exception):
    """A request the sandbox refuses; carries the XRPC error response."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


class BlueskySandbox(SandboxApp):
    """The Bluesky sandbox. State lives under ``self.lock``; see the module docstring."""

    name = "bluesky"

    def __init__(self) -> None:
        super().__init__()
        self.secret = secrets.token_bytes(32)
        self.configurable(**DEFAULTS)
        self.reset()
        self.procedures: dict[str, Callable[[Request, str], Response]] = {
            "com.atproto.server.createSession": self.create_session,
            "com.atproto.server.refreshSession": self.refresh_session,
            "com.atproto.repo.uploadBlob": self.upload_blob,
            "com.atproto.repo.createRecord": self.create_record,
            "com.atproto.repo.deleteRecord": self.delete_record,
            "app.bsky.video.uploadVideo": self.upload_video,
        }
        self.queries: dict[str, Callable[[Request, str], Response]] = {
            "com.atproto.repo.getRecord": self.get_record,
            "com.atproto.repo.listRecords": self.list_records,
            "com.atproto.identity.resolveHandle": self.resolve_handle,
            "com.atproto.server.getServiceAuth": self.service_auth,
            "app.bsky.video.getJobStatus": self.job_status,
        }
        for prefix, host in (("", "entryway"), ("/pds", "pds")):
            self.route(f"{prefix}/xrpc/<nsid>", self._xrpc(host), ["GET", "POST"])
        self.route("/_sandbox/accounts", self.add_account, ["POST"])
        self.route("/_sandbox/clock", self.move_clock, ["POST"])

    # --- state ------------------------------------------------------------------------

    def reset(self) -> None:
        with self.lock:
            self.config = dict(self.defaults)
            self.offset = 0.0
            self.accounts: dict[str, dict[str, Any]] = {}
            self._add(dict(DEMO_ACCOUNT))
            self.used_refresh: set[str] = set()
            self.records: dict[str, dict[str, Any]] = {}  # uri -> record entry
            self.blobs: dict[tuple[str, str], dict[str, Any]] = {}  # (did, cid) -> blob
            self.jobs: dict[str, dict[str, Any]] = {}
            self.videos: dict[tuple[str, str], str] = {}  # (did, sha256) -> job id
            self.windows: dict[str, list[float]] = {}
            self.calls: list[tuple[str, str]] = []
            self.sessions = {"created": 0, "refreshed": 0}
            self._jobs = itertools.count(1)

    def _add(self, account: dict[str, Any]) -> None:
        self.accounts[account["did"]] = account

    def state(self) -> dict[str, Any]:
        with self.lock:
            return {
                "accounts": [{"did": a["did"], "handle": a["handle"]}
                             for a in self.accounts.values()],
                "posts": [dict(r) for r in self.records.values()],
                "blobs": [{"did": did, "cid": cid, **{k: v for k, v in b.items()}}
                          for (did, cid), b in self.blobs.items()],
                "jobs": [dict(j) for j in self.jobs.values()],
                "sessions": dict(self.sessions),
                "calls": [list(c) for c in self.calls],
                "config": dict(self.config),
            }

    def now(self) -> float:
        return time.time() + self.offset

    # --- control ------------------------------------------------------------------------

    def add_account(self, request: Request) -> Response:
        body = request.get_json(force=True) or {}
        if not all(isinstance(body.get(k), str) for k in ("did", "handle", "password")):
            return json_response({"error": "did, handle and password are required"}, 400)
        with self.lock:
            self._add({k: body[k] for k in ("did", "handle", "password")})
        return json_response({"ok": True}, 201)

    def move_clock(self, request: Request) -> Response:
        body = request.get_json(force=True) or {}
        with self.lock:
            self.offset += float(body.get("advance") or 0)
            return json_response({"now": self.now()})

    # --- XRPC dispatch --------------------------------------------------------------------

    def _xrpc(self, host: str) -> Callable[..., Response]:
        def handle(request: Request, nsid: str) -> Response:
            table = self.procedures if request.method == "POST" else self.queries
            handler = table.get(nsid)
            with self.lock:
                self.calls.append((host, nsid))
            if handler is None:
                known = nsid in self.procedures or nsid in self.queries
                if known:
                    return invalid(f"Incorrect HTTP method ({request.method}) for {nsid}")
                return xrpc_error(501, "MethodNotImplemented", "Method Not Implemented")
            try:
                with self.lock:
                    return handler(request, host)
            except Rejected as exc:
                return exc.response

        handle.__name__ = f"xrpc_{host}"
        return handle

    # --- tokens ----------------------------------------------------------------------------

    def _jwt(self, claims: dict[str, Any]) -> str:
        head = _b64(json.dumps({"typ": "at+jwt", "alg": "HS256"}).encode())
        body = _b64(json.dumps(claims, separators=(",", ":")).encode())
        signature = hmac.new(self.secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
        return f"{head}.{body}.{_b64(signature)}"

    def _claims(self, request: Request, scope: str) -> dict[str, Any]:
        header = request.headers.get("Authorization") or ""
        if not header.startswith("Bearer "):
            raise Rejected(xrpc_error(401, "AuthMissing", "Authentication Required"))
        token = header.removeprefix("Bearer ").strip()
        parts = token.split(".")
        if len(parts) != 3:
            raise Rejected(invalid("Token could not be verified", "InvalidToken"))
        expected = hmac.new(self.secret, f"{parts[0]}.{parts[1]}".encode(),
                            hashlib.sha256).digest()
        if not hmac.compare_digest(_b64(expected), parts[2]):
            raise Rejected(invalid("Token could not be verified", "InvalidToken"))
        claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(
            parts[1] + "=" * (-len(parts[1]) % 4)))
        if claims.get("scope") != scope:
            raise Rejected(invalid("Bad token scope", "InvalidToken"))
        if float(claims["exp"]) <= self.now():
            raise Rejected(invalid("Token has expired", "ExpiredToken"))
        if claims.get("sub") not in self.accounts:
            raise Rejected(invalid("Token could not be verified", "InvalidToken"))
        return claims

    def _session(self, account: dict[str, Any], request: Request) -> Response:
        now = self.now()
        access = self._jwt({"scope": "com.atproto.appPass", "sub": account["did"],
                            "iat": int(now), "exp": int(now + self.config["access_ttl_s"]),
                            "aud": "did:web:sandbox.bsky", "jti": secrets.token_hex(8)})
        refresh = self._jwt({"scope": "com.atproto.refresh", "sub": account["did"],
                             "iat": int(now), "exp": int(now + self.config["refresh_ttl_s"]),
                             "jti": secrets.token_hex(8)})
        pds = request.root_url.rstrip("/").removesuffix("/pds") + "/pds"
        did_doc = {
            "@context": ["https://www.w3.org/ns/did/v1"], "id": account["did"],
            "alsoKnownAs": [f"at://{account['handle']}"],
            "service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer",
                         "serviceEndpoint": pds}]}
        return json_response({"accessJwt": access, "refreshJwt": refresh,
                              "handle": account["handle"], "did": account["did"],
                              "didDoc": did_doc, "active": True})

    def create_session(self, request: Request, host: str) -> Response:
        body = request.get_json(force=True, silent=True) or {}
        ident, password = body.get("identifier"), body.get("password")
        if not isinstance(ident, str) or not isinstance(password, str):
            return invalid("Input must have the properties \"identifier\" and \"password\"")
        account = next((a for a in self.accounts.values()
                        if ident.lower() in (a["did"], a["handle"].lower())), None)
        limited = self._take("session:" + (account["did"] if account else ident), 1,
                             self.config["create_session_limit"],
                             self.config["create_session_window_s"])
        if limited is not None:
            return limited
        if account is None or not hmac.compare_digest(account["password"], password):
            return xrpc_error(401, "AuthenticationRequired", "Invalid identifier or password")
        self.sessions["created"] += 1
        return self._session(account, request)

    def refresh_session(self, request: Request, host: str) -> Response:
        claims = self._claims(request, "com.atproto.refresh")
        if claims["jti"] in self.used_refresh:
            return invalid("Token has been revoked", "ExpiredToken")
        self.used_refresh.add(claims["jti"])
        self.sessions["refreshed"] += 1
        return self._session(self.accounts[claims["sub"]], request)

    def service_auth(self, request: Request, host: str) -> Response:
        claims = self._claims(request, "com.atproto.appPass")
        aud, lxm = request.args.get("aud", ""), request.args.get("lxm")
        if not aud.startswith("did:"):
            return invalid("aud must be a DID")
        now = self.now()
        try:
            exp = float(request.args.get("exp") or now + 60)
        except ValueError:
            return invalid("exp must be an integer")
        if exp <= now or exp > now + 3600:
            return invalid("expiration must be in the next hour", "BadExpiration")
        return json_response({"token": self._jwt({"scope": "service", "sub": claims["sub"],
                                                  "iss": claims["sub"], "aud": aud, "lxm": lxm,
                                                  "exp": int(exp)})})

    # --- rate limits ------------------------------------------------------------------------

    def _take(self, key: str, cost: int, limit: int, window: float) -> Response | None:
        """Spend ``cost`` points of ``key``'s window; a 429 answer when they are gone."""
        now = self.now()
        spent = [t for t in self.windows.get(key, []) if t > now - window]
        headers = {"RateLimit-Limit": str(limit), "RateLimit-Policy": f"{limit};w={int(window)}",
                   "RateLimit-Reset": str(int((spent[0] if spent else now) + window))}
        if len(spent) + cost > limit:
            self.windows[key] = spent
            headers["RateLimit-Remaining"] = "0"
            return xrpc_error(429, "RateLimitExceeded", "Rate Limit Exceeded", headers)
        spent.extend([now] * cost)
        self.windows[key] = spent
        return None

    def _write(self, did: str, kind: str) -> None:
        limited = self._take("write:" + did, WRITE_COST[kind], self.config["write_points"],
                             self.config["write_window_s"])
        if limited is not None:
            raise Rejected(limited)

    # --- blobs ---------------------------------------------------------------------------

    def _live_blob(self, did: str, cid: str) -> dict[str, Any] | None:
        blob = self.blobs.get((did, cid))
        if blob is None:
            return None
        if not blob["referenced"] and self.now() - blob["at"] > self.config["blob_ttl_s"]:
            del self.blobs[(did, cid)]  # the PDS drops blobs no record names
            return None
        return blob

    def _store_blob(self, did: str, data: bytes, mime: str) -> dict[str, Any]:
        cid = _cid("bafkrei", data)
        known = self.blobs.get((did, cid))
        self.blobs[(did, cid)] = {"mimeType": mime, "size": len(data), "at": self.now(),
                                  "referenced": bool(known and known["referenced"])}
        return {"$type": "blob", "ref": {"$link": cid}, "mimeType": mime, "size": len(data)}

    def upload_blob(self, request: Request, host: str) -> Response:
        claims = self._claims(request, "com.atproto.appPass")
        if (request.content_length or 0) > self.config["upload_limit_bytes"]:
            return xrpc_error(413, "PayloadTooLarge", "request entity too large")
        data = request.get_data()
        if len(data) > self.config["upload_limit_bytes"]:
            return xrpc_error(413, "PayloadTooLarge", "request entity too large")
        mime = (request.mimetype or "application/octet-stream").lower()
        return json_response({"blob": self._store_blob(claims["sub"], data, mime)})

    # --- records -------------------------------------------------------------------------

    def _repo(self, value: Any) -> str | None:
        """A repo parameter (DID or handle) as a DID."""
        if not isinstance(value, str):
            return None
        if value in self.accounts:
            return value
        return next((d for d, a in self.accounts.items() if a["handle"] == value.lower()), None)

    def create_record(self, request: Request, host: str) -> Response:
        claims = self._claims(request, "com.atproto.appPass")
        body = request.get_json(force=True, silent=True) or {}
        did = claims["sub"]
        if body.get("repo") not in (did, self.accounts[did]["handle"]):
            return xrpc_error(401, "AuthRequired", "Invalid repo for this session")
        if body.get("collection") != POST:
            return invalid(f"this sandbox stores {POST} records only")
        rkey = body.get("rkey")
        if rkey is None:
            rkey = self._tid()
        elif not isinstance(rkey, str) or not _TID.match(rkey):
            return invalid(f"Invalid record key for {POST}: {rkey!r} is not a TID")
        uri = f"at://{did}/{POST}/{rkey}"
        if uri in self.records and not self.records[uri]["deleted"]:
            return invalid(f"Record already exists: {uri}")
        record = body.get("record")
        problem = self._check_post(did, record)
        if problem is not None:
            return problem
        self._write(did, "create")
        assert isinstance(record, dict)
        for cid in self._blob_refs(record):
            self.blobs[(did, cid)]["referenced"] = True
        cid = _cid("bafyrei", json.dumps(record, sort_keys=True).encode())
        self.records[uri] = {"uri": uri, "cid": cid, "value": record, "deleted": False,
                             "host": host, "rkey": rkey}
        return json_response({"uri": uri, "cid": cid,
                              "commit": {"cid": _cid("bafyrei", uri.encode()), "rev": rkey},
                              "validationStatus": "valid"})

    def _tid(self) -> str:
        value = (int(self.now() * 1_000_000) << 10) | secrets.randbelow(1024)
        alphabet = "234567abcdefghijklmnopqrstuvwxyz"
        return "".join(alphabet[(value >> s) & 31] for s in range(60, -1, -5))

    def get_record(self, request: Request, host: str) -> Response:
        did = self._repo(request.args.get("repo"))
        uri = f"at://{did}/{request.args.get('collection')}/{request.args.get('rkey')}"
        entry = self.records.get(uri)
        if did is None or entry is None or entry["deleted"]:
            return invalid(f"Could not locate record: {uri}", "RecordNotFound")
        return json_response({"uri": uri, "cid": entry["cid"], "value": entry["value"]})

    def list_records(self, request: Request, host: str) -> Response:
        did = self._repo(request.args.get("repo"))
        if did is None:
            return invalid(f"Could not find repo: {request.args.get('repo')}")
        prefix = f"at://{did}/{request.args.get('collection')}/"
        entries = sorted((e for u, e in self.records.items()
                          if u.startswith(prefix) and not e["deleted"]),
                         key=lambda e: e["rkey"], reverse=request.args.get("reverse") != "true")
        cursor = request.args.get("cursor")
        if cursor:
            entries = [e for e in entries if (e["rkey"] < cursor if
                                              request.args.get("reverse") != "true"
                                              else e["rkey"] > cursor)]
        limit = max(1, min(100, int(request.args.get("limit") or 50)))
        page = entries[:limit]
        body: dict[str, Any] = {"records": [{"uri": e["uri"], "cid": e["cid"],
                                             "value": e["value"]} for e in page]}
        if len(entries) > limit:
            body["cursor"] = page[-1]["rkey"]
        return json_response(body)

    def delete_record(self, request: Request, host: str) -> Response:
        claims = self._claims(request, "com.atproto.appPass")
        body = request.get_json(force=True, silent=True) or {}
        did = claims["sub"]
        if self._repo(body.get("repo")) != did:
            return xrpc_error(401, "AuthRequired", "Invalid repo for this session")
        self._write(did, "delete")
        entry = self.records.get(f"at://{did}/{body.get('collection')}/{body.get('rkey')}")
        if entry is not None:
            entry["deleted"] = True  # deleting what is gone is a success too
        return json_response({"commit": {"cid": _cid("bafyrei", secrets.token_bytes(8)),
                                         "rev": self._tid()}})

    def resolve_handle(self, request: Request, host: str) -> Response:
        handle = (request.args.get("handle") or "").lower()
        did = self._repo(handle) or KNOWN_HANDLES.get(handle)
        if did is None:
            return invalid("Unable to resolve handle")
        return json_response({"did": did})

    # --- record validation -----------------------------------------------------------------

    def _check_post(self, did: str, record: Any) -> Response | None:
        def bad(message: str) -> Response:
            return invalid(f"Invalid app.bsky.feed.post record: {message}")

        if not isinstance(record, dict) or record.get("$type") != POST:
            return bad("Record/$type must be app.bsky.feed.post")
        text = record.get("text")
        if not isinstance(text, str):
            return bad("Record must have the property \"text\"")
        if graphemes(text) > 300:
            return bad("Record/text must not be longer than 300 graphemes")
        size = len(text.encode("utf-8"))
        if size > 3000:
            return bad("Record/text must not be longer than 3000 characters")
        created = record.get("createdAt")
        if not isinstance(created, str) or not _DATETIME.match(created):
            return bad("Record/createdAt must be a valid datetime")
        try:
            datetime.fromisoformat(created.replace("Z", "+00:00"))
        except ValueError:
            return bad("Record/createdAt must be a valid datetime")
        langs = record.get("langs", [])
        if not isinstance(langs, list) or len(langs) > 3:
            return bad("Record/langs must not have more than 3 elements")
        return (self._check_facets(record.get("facets", []), size, bad)
                or self._check_reply(record.get("reply"), bad)
                or self._check_embed(did, record.get("embed"), bad))

    def _check_facets(self, facets: Any, size: int,
                      bad: Callable[[str], Response]) -> Response | None:
        if not isinstance(facets, list):
            return bad("Record/facets must be an array")
        last_end = 0
        for i, facet in enumerate(sorted(facets, key=lambda f: (f.get("index") or {})
                                         .get("byteStart", 0) if isinstance(f, dict) else 0)):
            index = facet.get("index") if isinstance(facet, dict) else None
            if not isinstance(index, dict):
                return bad(f"Record/facets/{i}/index is required")
            start, end = index.get("byteStart"), index.get("byteEnd")
            if not (isinstance(start, int) and isinstance(end, int)
                    and 0 <= start < end <= size):
                return bad(f"Record/facets/{i}/index is outside the text ({size} bytes)")
            if start < last_end:
                return bad(f"Record/facets/{i} overlaps the facet before it")
            last_end = end
            features = facet.get("features")
            if not isinstance(features, list) or not features:
                return bad(f"Record/facets/{i}/features must not be empty")
            for feature in features:
                kind = feature.get("$type") if isinstance(feature, dict) else None
                field = {"app.bsky.richtext.facet#link": "uri",
                         "app.bsky.richtext.facet#mention": "did",
                         "app.bsky.richtext.facet#tag": "tag"}.get(str(kind))
                if field is None or not isinstance(feature.get(field), str):
                    return bad(f"Record/facets/{i}/features has an invalid feature")
        return None

    def _check_reply(self, reply: Any, bad: Callable[[str], Response]) -> Response | None:
        if reply is None:
            return None
        if not isinstance(reply, dict):
            return bad("Record/reply must be an object")
        for part in ("root", "parent"):
            ref = reply.get(part)
            if not (isinstance(ref, dict) and isinstance(ref.get("uri"), str)
                    and isinstance(ref.get("cid"), str)):
                return bad(f"Record/reply must have the property \"{part}\" (uri and cid)")
            entry = self.records.get(ref["uri"])
            if ref["uri"].split("/")[2] in self.accounts and (
                    entry is None or entry["deleted"] or entry["cid"] != ref["cid"]):
                return bad(f"Record/reply/{part} does not name an existing post")
        return None

    def _blob(self, did: str, value: Any, accept: str, max_size: int, where: str,
              bad: Callable[[str], Response]) -> Response | None:
        ref = (value.get("ref") or {}).get("$link") if isinstance(value, dict) else None
        if not isinstance(ref, str):
            return bad(f"{where} must be a blob")
        blob = self._live_blob(did, ref)
        if blob is None:
            return invalid(f"Could not find blob: {ref}", "BlobNotFound")
        if not blob["mimeType"].startswith(accept):
            return invalid(f"Wrong type of file. It is {blob['mimeType']} but it must match "
                           f"{accept}*", "InvalidMimeType")
        if blob["size"] > max_size:
            return bad(f"{where} file size too large. {blob['size']} bytes is above "
                       f"{max_size} bytes")
        return None

    def _check_embed(self, did: str, embed: Any,
                     bad: Callable[[str], Response]) -> Response | None:
        if embed is None:
            return None
        kind = embed.get("$type") if isinstance(embed, dict) else None
        assert isinstance(embed, dict) or kind is None
        if kind == "app.bsky.embed.images":
            images = embed.get("images")
            if not isinstance(images, list) or not 1 <= len(images) <= 4:
                return bad("Record/embed/images must have 1 to 4 elements")
            for i, image in enumerate(images):
                where = f"Record/embed/images/{i}"
                if not isinstance(image, dict) or not isinstance(image.get("alt"), str):
                    return bad(f"{where} must have the property \"alt\"")
                ratio = image.get("aspectRatio")
                if ratio is not None and not (isinstance(ratio, dict) and all(
                        isinstance(ratio.get(k), int) and ratio[k] >= 1
                        for k in ("width", "height"))):
                    return bad(f"{where}/aspectRatio must have width and height of at least 1")
                problem = self._blob(did, image.get("image"), "image/",
                                     self.config["image_max_bytes"], f"{where}/image", bad)
                if problem is not None:
                    return problem
            return None
        if kind == "app.bsky.embed.video":
            return self._blob(did, embed.get("video"), "video/mp4",
                              self.config["video_max_bytes"], "Record/embed/video", bad)
        if kind == "app.bsky.embed.external":
            external = embed.get("external")
            if not isinstance(external, dict) or not all(
                    isinstance(external.get(k), str) for k in ("uri", "title", "description")):
                return bad("Record/embed/external must have uri, title and description")
            if external.get("thumb") is not None:
                return self._blob(did, external["thumb"], "image/", 1_000_000,
                                  "Record/embed/external/thumb", bad)
            return None
        return bad(f"Record/embed has an unsupported type {kind!r}")

    @staticmethod
    def _blob_refs(record: dict[str, Any]) -> list[str]:
        embed = record.get("embed") or {}
        values = [i.get("image") for i in embed.get("images") or []]
        values += [embed.get("video"), (embed.get("external") or {}).get("thumb")]
        return [v["ref"]["$link"] for v in values if isinstance(v, dict)]

    # --- video service ---------------------------------------------------------------------

    def _job_body(self, job: dict[str, Any], wrapped: bool) -> dict[str, Any]:
        status = {k: v for k, v in job.items() if k not in ("polls", "ok", "sha")}
        return {"jobStatus": status} if wrapped else status

    def upload_video(self, request: Request, host: str) -> Response:
        claims = self._claims(request, "service")
        if claims.get("lxm") != "com.atproto.repo.uploadBlob":
            return invalid("Bad token method", "InvalidToken")
        did = str(claims["sub"])
        if request.args.get("did") != did:
            return invalid("did does not match the service token")
        data = request.get_data()
        if len(data) > self.config["video_max_bytes"]:
            return xrpc_error(413, "PayloadTooLarge", "request entity too large")
        sha = hashlib.sha256(data).hexdigest()
        known = self.videos.get((did, sha))
        if known is not None and self.jobs[known].get("blob"):
            # the service keeps the processed video and hands its blob to the PDS again
            job = self.jobs[known]
            job["blob"] = self._video_blob(job)
            body = self._job_body(job, False)
            return json_response({**body, "error": "already_exists",
                                  "message": "Video already processed"}, 409)
        job_id = f"job{next(self._jobs):06d}"
        self.jobs[job_id] = {"jobId": job_id, "did": did, "state": "JOB_STATE_CREATED",
                             "polls": 0, "sha": sha, "ok": data[4:8] == b"ftyp",
                             "size": len(data), "name": request.args.get("name")}
        self.videos[(did, sha)] = job_id
        # the service answers the JobStatus at top level, unlike its lexicon
        return json_response(self._job_body(self.jobs[job_id],
                                             bool(self.config["wrap_job_status"])))

    def _video_blob(self, job: dict[str, Any]) -> dict[str, Any]:
        """The processed video put on the account's PDS (a blob of its own bytes)."""
        blob = self._store_blob(job["did"], job["sha"].encode(), "video/mp4")
        self.blobs[(job["did"], blob["ref"]["$link"])]["size"] = job["size"]
        return {**blob, "size": job["size"]}

    def job_status(self, request: Request, host: str) -> Response:
        job = self.jobs.get(request.args.get("jobId") or "")
        if job is None:
            return invalid("Job not found", "NotFound")
        if job["state"] not in ("JOB_STATE_COMPLETED", "JOB_STATE_FAILED"):
            job["polls"] += 1
            steps = max(1, int(self.config["video_steps"]))
            failure = self.config["video_failure"] or (None if job["ok"]
                                                       else "validation_failure")
            if job["polls"] >= steps and failure:
                job.update(state="JOB_STATE_FAILED", failureCode=failure,
                           error=failure, message="Video processing failed")
            elif job["polls"] >= steps:
                job.update(state="JOB_STATE_COMPLETED", progress=100,
                           blob=self._video_blob(job))
            else:
                job.update(state=VIDEO_STATES[min(job["polls"] - 1, len(VIDEO_STATES) - 1)],
                           progress=int(100 * job["polls"] / steps))
        return json_response(self._job_body(job, True))
