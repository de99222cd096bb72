"""``/media/upload`` (multipart file or JSON URL ingestion) and the media files themselves.

The files are served outside ``/api/v1`` at ``/media/<name>`` — the URL layout the media
service builds on ``CHAT33_PUBLIC_BASE_URL`` — without authentication (platforms fetch
them), with Content-Type, a strong ETag (the content hash) and HTTP ranges.
"""

from __future__ import annotations

import os
import re
from typing import Any

from flask import Blueprint, Response, current_app, request, send_file, url_for
from werkzeug.exceptions import ClientDisconnected, HTTPException, RequestEntityTooLarge
from werkzeug.wsgi import wrap_file

from chat33_core.errors import Issue, ValidationError
from chat33_core.mediauploads import DECLARED_TYPES, UPLOAD_TTL, Received
from chat33_core.security import Principal

from ..errors import ApiError
from ..routing import Param, core, counted, json_body, query, route
from ..schemas import MediaUrlRequest, PresignRequest, library_json, media_json

bp = Blueprint("chat33_media", __name__)
files = Blueprint("chat33_media_files", __name__)

#: multipart uploads: 4.5 MB of file (4.5 MiB); bigger files go through URL ingestion
MAX_UPLOAD_BYTES = 4_718_592
#: the multipart envelope around the file (boundaries, headers, a filename)
_ENVELOPE = 64 * 1024


@route(bp, "POST", "/media/upload", summary="Upload media", tag="Media", scope="media:write",
       description="Two modes. **Multipart** (`multipart/form-data` with a `file` field) for "
       f"files up to 4.5 MB ({MAX_UPLOAD_BYTES} bytes; larger: 413 PAYLOAD_TOO_LARGE). **URL "
       "ingestion** (`application/json` with `{url, filename}`): fetched through the guarded "
       "client (no private addresses), any size up to the limits, within "
       "`CHAT33_FETCH_TIMEOUT_S` (60 s); an organization has at most "
       "`CHAT33_FETCH_CONCURRENCY` (2) fetches in flight per API process (429 with "
       "Retry-After beyond). Limits: images 10MB, videos 100MB. The type is decided by "
       "inspecting the bytes. Rate limit 50/hour per organization, shared with the media "
       "that posts fetch from `mediaUrls`; a refused upload (not media, corrupt, "
       "unreachable) does not count. Other content types: 415.",
       body={"application/json": "MediaUrlRequest", "multipart/form-data": {
           "type": "object", "required": ["file"],
           "properties": {"file": {"type": "string", "minLength": 1, "contentMediaType":
                                   "application/octet-stream"}}}},
       body_required=True, rate_limit="media.upload",
       responses={201: ("Uploaded", {"$ref": "Media"})}, errors=[400, 413, 415])
def upload(principal: Principal) -> Any:
    app = core()
    if request.mimetype == "multipart/form-data":
        length = request.content_length
        if length is not None and length > MAX_UPLOAD_BYTES + _ENVELOPE:
            raise _too_large(length)
        # werkzeug stops reading past this (413) when no Content-Length was sent
        request.max_content_length = MAX_UPLOAD_BYTES + _ENVELOPE
        # counted before the body is read (a limited client costs no upload); a refused
        # upload is given back
        with app.counted("media.upload", principal.org_id) as rate:
            try:
                upload = request.files.get("file")
            except RequestEntityTooLarge:  # a body without Content-Length, cut off
                raise _too_large(None) from None
            if upload is None:
                raise ValidationError("send the file in the multipart field `file`",
                                      details=[Issue("file", "this field is required",
                                                     code="required")])
            stream = upload.stream
            stream.seek(0, os.SEEK_END)
            size = stream.tell()
            stream.seek(0)
            if size > MAX_UPLOAD_BYTES:
                raise _too_large(size)
            asset = app.upload_media(principal.org_id, stream, upload.filename or None)
        counted(rate)
        return media_json(asset), 201
    if request.is_json or not request.get_data(cache=True).strip():
        req = json_body(MediaUrlRequest)
        with app.counted("media.upload", principal.org_id) as rate:
            asset = app.ingest_media(principal.org_id, req.url, req.filename)
        counted(rate)
        return media_json(asset), 201
    raise ApiError(415, "UNSUPPORTED_MEDIA_TYPE",
                   "send multipart/form-data with a `file` field, or application/json with "
                   f"{{url, filename}} (got {request.mimetype})",
                   details=[Issue("body", "unsupported Content-Type")])


def _too_large(size: int | None) -> ApiError:
    """The 413 of a multipart upload, saying how to send the file instead."""
    got = f"{size:,} bytes is" if size is not None else "the body is"
    return ApiError(413, "PAYLOAD_TOO_LARGE",
                    f"multipart uploads are limited to 4.5 MB ({MAX_UPLOAD_BYTES:,} bytes). "
                    f"{bigger_file_hint()}",
                    details=[Issue("file", f"{got} over the {MAX_UPLOAD_BYTES:,}-byte "
                                           "multipart limit")])


def bigger_file_hint() -> str:
    """How to send a file over the multipart limit: URL ingestion (the server fetches it,
    images up to 10 MB, videos up to 100 MB), or the public URL straight in
    ``mediaUrls``; and the large-upload path when this server has one."""
    upload_path = request.path
    hint = (f"Send a bigger file by URL instead: POST {upload_path} with JSON "
            '{"url": "https://…/file.mp4", "filename": "file.mp4"} and the server fetches '
            "it (images up to 10 MB, videos up to 100 MB), or put its public URL straight "
            "into mediaUrls")
    presign = upload_path.rsplit("/", 1)[0] + "/presign"
    if _serves(presign, "POST"):
        media = upload_path.rsplit("/", 1)[0]
        hint += (f"; or upload it directly: POST {presign}, PUT the file to the uploadUrl "
                 f"it answers, then POST {media}/{{id}}/complete")
    return hint + "."


def _serves(path: str, method: str) -> bool:
    try:
        current_app.url_map.bind("localhost").match(path, method=method)
    except HTTPException:
        return False
    return True


#: what a browser may be shown in place: the types inspection gives images and videos
#: (SVG is an image type that runs scripts: never inline)
_INLINE = re.compile(r"(image/(?!svg)|video/)[a-z0-9.+-]+")


@files.get("/media/<name>")
def serve_media(name: str) -> Any:
    """A kept file, with the type its bytes were inspected to be (never a client's
    word), streamed from the media store. Files are anyone's uploads: ``nosniff`` keeps
    browsers from reading a JPEG with HTML inside as a page, the sandboxing CSP keeps
    anything shown from running scripts, and a type that is not an image or video is
    only offered as a download."""
    asset, store = core().media_file(name)
    content_type = asset.content_type
    inline = bool(_INLINE.fullmatch(content_type))
    mimetype = content_type if inline else "application/octet-stream"
    # names are content-addressed (<sha256>.<ext>) or a direct upload's id: the stem is
    # a strong ETag, and a name's bytes never change, so caches may keep them
    etag = name.split(".", 1)[0]
    response: Any
    if store.local:
        # conditional=True: If-None-Match / If-Modified-Since and Range (206, 416)
        response = send_file(store.local_file(name), mimetype=mimetype, conditional=True,
                             etag=etag, max_age=86400, as_attachment=not inline,
                             download_name=name)
    else:
        # an object store: a seekable stream of the object (ranges are ranged GETs)
        stream = store.open(name)
        size = stream.seek(0, os.SEEK_END)
        stream.seek(0)
        streamed = Response(wrap_file(request.environ, stream), mimetype=mimetype,
                            direct_passthrough=True)
        streamed.content_length = size
        streamed.set_etag(etag)
        streamed.cache_control.public = True
        streamed.cache_control.max_age = 86400
        streamed.headers["Content-Disposition"] = (
            f"{'inline' if inline else 'attachment'}; filename={name}")
        response = streamed.make_conditional(request.environ, accept_ranges=True,
                                             complete_length=size)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


# --- direct uploads ---------------------------------------------------------------------

_UPLOAD_STATE = {"type": "object", "required": ["mediaId", "received", "size", "complete"],
                 "properties": {"mediaId": {"type": "string"},
                                "received": {"type": "integer", "minimum": 0},
                                "size": {"type": "integer", "minimum": 1},
                                "complete": {"type": "boolean"}}}


@route(bp, "POST", "/media/presign", summary="Start a direct upload", tag="Media",
       scope="media:write", rate_limit="media.upload",
       description="For files of any size up to `CHAT33_MAX_UPLOAD_BYTES` (5 GiB by "
       "default; images 10 MB). Declare the file; the answer says where to `PUT` its bytes "
       "(`uploadUrl`, with `headers` to send as given), valid until `expiresAt` "
       f"({int(UPLOAD_TTL.total_seconds() // 3600)} h). With object storage `uploadUrl` is "
       "a pre-signed URL of the bucket, its size and type bound in the signature; "
       "otherwise it is `PUT /media/uploads/{token}` of this API, which resumes with "
       "`Content-Range`. Then `POST /media/{mediaId}/complete`. `contentType` is one of "
       + ", ".join(f"`{t}`" for t in DECLARED_TYPES) + ". Counts against the upload "
       "rate limit (50/hour).",
       body={"application/json": "PresignRequest"}, body_required=True,
       responses={201: ("Where to upload the file", {
           "type": "object",
           "required": ["mediaId", "uploadUrl", "method", "headers", "expiresAt", "url"],
           "properties": {"mediaId": {"type": "string"},
                          "uploadUrl": {"type": "string", "format": "uri"},
                          "method": {"type": "string", "enum": ["PUT"]},
                          "headers": {"type": "object",
                                      "additionalProperties": {"type": "string"}},
                          "expiresAt": {"type": "string", "format": "date-time"},
                          "url": {"type": "string", "format": "uri"}}})},
       errors=[400])
def presign(principal: Principal) -> Any:
    req = json_body(PresignRequest)
    with core().counted("media.upload", principal.org_id) as rate:
        ticket = core().media.uploads.presign(principal.org_id, req.filename,
                                              req.content_type, req.size)
    counted(rate)
    upload = ticket.upload
    if ticket.presigned is not None:
        upload_url, headers = ticket.presigned
    else:
        path = url_for("chat33_media.put_upload", token=ticket.token)
        upload_url = core().settings.media_base_url + path
        headers = {"Content-Type": upload.content_type}
    return {"mediaId": upload.id, "uploadUrl": upload_url, "method": "PUT",
            "headers": headers, "expiresAt": upload.expires_at.isoformat(),
            "url": ticket.url}, 201


@route(bp, "PUT", "/media/uploads/{token}", summary="Upload a file's bytes", tag="Media",
       auth=False,
       description="The `uploadUrl` of `/media/presign` when media is kept in a folder "
       "(the token in the URL is the credential; no API key). The body is the file, "
       "streamed to disk. A broken upload resumes: `Content-Range: bytes */SIZE` with "
       "an empty body answers how many bytes arrived (`received`); then send the rest "
       "with `Content-Range: bytes RECEIVED-(SIZE-1)/SIZE`. A range may not start past "
       "what arrived (409). A body longer than the declared size (or its range), with or "
       "without `Content-Length`, is a 400 and nothing of it is kept. An expired URL is "
       "410; one already completed 409.",
       body={"application/octet-stream": {"type": "string",
                                          "contentMediaType": "application/octet-stream"}},
       responses={200: ("What has arrived", _UPLOAD_STATE)}, errors=[400, 409, 410])
def put_upload(principal: Principal, token: str) -> Any:
    uploads = core().media.uploads
    try:
        state = uploads.receive(token, request.stream, request.content_length,
                                request.headers.get("Content-Range"))
    except ClientDisconnected:  # what arrived is kept: the client resumes from there
        state = uploads.status(token)
    return _state(state)


def _state(state: Received) -> dict[str, Any]:
    return {"mediaId": state.media_id, "received": state.received, "size": state.size,
            "complete": state.complete}


@route(bp, "POST", "/media/{id}/complete", summary="Complete a direct upload", tag="Media",
       scope="media:write",
       description="Inspects the uploaded file (its headers), hashes it (`sha256`, "
       "streamed) and keeps it as the organization's media: answers the same media object "
       "as `/media/upload`. A file "
       "whose size or type is not what was declared is refused (400) and deleted; one "
       "still arriving (folder uploads) is a 400 saying where to resume. Completing "
       "twice is a 409.",
       responses={201: ("Uploaded", {"$ref": "Media"})}, errors=[400, 409])
def complete_upload(principal: Principal, id: str) -> Any:
    asset = core().media.uploads.complete(principal.org_id, id)
    return media_json(asset), 201


# --- the library ------------------------------------------------------------------------

@route(bp, "GET", "/media", summary="List media", tag="Media", scope="media:write",
       description="The organization's media, newest first, `limit` (1 to 100, default "
       "20) at a time; pass the answer's `nextCursor` as `cursor` for the next page. "
       "`queuedPosts` counts the posts not yet done (draft, queued, publishing) using "
       "each file.",
       params=[Param("cursor", description="nextCursor of the previous page"),
               Param("limit", "integer", default=20, minimum=1, maximum=100)],
       responses={200: ("A page of media", {
           "type": "object", "required": ["items", "nextCursor", "hasMore"],
           "properties": {"items": {"type": "array", "items": {"$ref": "MediaItem"}},
                          "nextCursor": {"type": ["string", "null"]},
                          "hasMore": {"type": "boolean"}}})},
       errors=[400])
def list_media(principal: Principal) -> Any:
    args = query()
    limit = args["limit"]
    assets, uses = core().media.library(principal.org_id, limit + 1, args["cursor"])
    more = len(assets) > limit
    page = list(assets[:limit])
    return {"items": [library_json(a, uses[a.id]) for a in page],
            "nextCursor": page[-1].id if more else None, "hasMore": more}


@route(bp, "GET", "/media/{id}", summary="Show one media file", tag="Media",
       scope="media:write", responses={200: ("The media", {"$ref": "MediaItem"})})
def show_media(principal: Principal, id: str) -> Any:
    asset, uses = core().media.show(principal.org_id, id)
    return library_json(asset, uses)


@route(bp, "DELETE", "/media/{id}", summary="Delete a media file", tag="Media",
       scope="media:write",
       description="Refused (409) while a post not yet done (draft, queued, publishing) "
       "uses it. The file itself is removed when no other organization keeps the same "
       "bytes.",
       responses={200: ("Deleted", {"type": "object", "required": ["deleted"],
                                    "properties": {"deleted": {"const": True}}})},
       errors=[409])
def delete_media(principal: Principal, id: str) -> Any:
    core().media.remove(principal.org_id, id)
    return {"deleted": True}
