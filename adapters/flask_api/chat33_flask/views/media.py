"""``/media/upload`` (multipart file or JSON URL ingestion) and the media files themselves.

The files are served outside ``/api/v1`` at ``/media/<name>`` — the URL layout the media
service builds on ``CHAT33_PUBLIC_BASE_URL`` — without authentication (platforms fetch
them), with Content-Type, a strong ETag (the content hash) and HTTP ranges.
"""

from __future__ import annotations

import os
import re
from typing import Any

from flask import Blueprint, current_app, request, send_file
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from chat33_core.errors import Issue, ValidationError
from chat33_core.service import Principal

from ..errors import ApiError
from ..routing import core, counted, json_body, route
from ..schemas import MediaUrlRequest, media_json

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
    word). Files are anyone's uploads: ``nosniff`` keeps browsers from reading a JPEG
    with HTML inside as a page, the sandboxing CSP keeps anything shown from running
    scripts, and a type that is not an image or video is only offered as a download."""
    path, content_type = core().media_file(name)
    inline = bool(_INLINE.fullmatch(content_type))
    # names are content-addressed (<sha256>.<ext>): the hash is a strong ETag, and a
    # name's bytes never change, so caches may keep them
    # conditional=True: If-None-Match / If-Modified-Since and Range (206, 416)
    response = send_file(path, mimetype=content_type if inline else "application/octet-stream",
                         conditional=True, etag=name.split(".", 1)[0], max_age=86400,
                         as_attachment=not inline, download_name=name)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
