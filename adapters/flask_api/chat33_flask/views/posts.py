"""``/posts``: create (one per channel), list, get, edit, delete/cancel, duplicate, logs,
validate. Views parse, call the core service, render; nothing else."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from chat33_core.errors import Issue, ValidationError
from chat33_core.models import PostRequest, PostSort, PostStatus
from chat33_core.serialization import converter, post_json, post_rows, summary_json
from chat33_core.service import Principal

from ..routing import Param, core, count_request, counted, json_body, query, route, state
from ..schemas import DuplicatePostRequest, UpdatePostRequest, log_json

bp = Blueprint("chat33_posts", __name__)

JSON = "application/json"
_POSTS = {"type": "array", "items": {"$ref": "PostSummary"}}
_GROUP = {"type": ["string", "null"],
          "description": "Set for multi-channel posts to group sibling posts"}
#: how mediaUrls are fetched (the create, edit and duplicate routes)
MEDIA_URLS = (
    "Media URLs chat33 does not hold yet are fetched and kept: that needs the scope "
    "`media:write` as well (403 without), and each one counts against the upload limit "
    "(50/hour, 429). One request fetches at most `CHAT33_FETCH_REQUEST_MAX_BYTES` (200 MB "
    "by default) within one `CHAT33_FETCH_TIMEOUT_S` (60 s); an organization has at most "
    "`CHAT33_FETCH_CONCURRENCY` (2) such requests in flight per API process (429 with "
    "Retry-After beyond). URLs of media already uploaded need neither.")


@route(bp, "POST", "/posts", summary="Create and queue a post", tag="Posts",
       description="Creates a post (or one per channel for multi-platform). If `scheduledAt` "
       "is omitted, the post publishes on the next worker tick. Rate limited to 30 posts/hour "
       "per organization, counting every post made: one per account, and a thread each of "
       "its parts on each account; a request that does not fit creates none of its posts "
       "(429), one bigger than the whole limit is a 400. Additive: `thread` items follow the "
       "first post as a thread (replies "
       "on X; separate posts where a platform has no threads); `posts` lists every created "
       "post, thread items included. " + MEDIA_URLS,
       scope="posts:write", body={JSON: "CreatePostRequest"}, body_required=True,
       rate_limit="posts.create", reads_accounts=True,
       responses={201: ("Post(s) created", {
           "type": "object", "required": ["posts", "groupId"],
           "properties": {"posts": _POSTS, "groupId": _GROUP}})},
       errors=[400])
def create_post(principal: Principal) -> Any:
    req = json_body(PostRequest)
    created = core().create_posts(principal, req, accounts=state().accounts)
    counted(created.rate)
    return {"posts": [summary_json(p) for p in created.posts], "groupId": created.group_id}, 201


@route(bp, "GET", "/posts", summary="List posts", tag="Posts",
       description="Paginated list of posts, newest first, filterable by status, platform, "
       "channel and time. `page` starts at 1; `limit` is 1 to 100 (default 20). Additive: "
       "`from` (inclusive) and `to` (exclusive) bound when each post goes out: its "
       "`scheduledAt`, or its `createdAt` when it has none (published on the next worker "
       "tick); ISO 8601 instants, UTC when they have no offset. `accountId` is another "
       "name of `channelId` (the summary of a post calls it `accountId`, the full post "
       "`channelId`); give one, or both with the same value. `sort` is `createdAt` or "
       "`scheduledAt` (the same instant `from`/`to` use), ascending, or newest first with "
       "a leading `-`; default `-createdAt`. An unknown query parameter is a 400 naming "
       "it.",
       scope="posts:read",
       params=[Param("status", enum=tuple(s.value for s in PostStatus)),
               Param("platform", "platform"),
               Param("channelId", description="Only the posts of this account"),
               Param("accountId", description="Another name of channelId"),
               Param("from", "instant", description="Posts going out at or after this "
                     "instant (scheduledAt, else createdAt)"),
               Param("to", "instant", description="Posts going out before this instant "
                     "(scheduledAt, else createdAt)"),
               Param("sort", enum=tuple(s.value for s in PostSort),
                     default=PostSort.CREATED_DESC.value,
                     description="Field to sort by; a leading - sorts newest first"),
               Param("page", "integer", default=1, minimum=1, maximum=10**9),
               Param("limit", "integer", default=20, minimum=1, maximum=100)],
       responses={200: ("Paginated post list", {
           "type": "object", "required": ["items", "total", "page", "limit", "hasMore"],
           "properties": {"items": {"type": "array", "items": {"$ref": "Post"}},
                          "total": {"type": "integer"}, "page": {"type": "integer"},
                          "limit": {"type": "integer"}, "hasMore": {"type": "boolean"}}})},
       errors=[400])
def list_posts(principal: Principal) -> Any:
    args = query()
    channel, account = args["channelId"], args["accountId"]
    if channel is not None and account is not None and channel != account:
        raise ValidationError("channelId and accountId name the same filter; give one", details=[
            Issue("accountId", "differs from channelId (they are two names of one filter)")])
    filters = {"status": args["status"], "platform": args["platform"],
               "channel_id": channel if channel is not None else account,
               "since": args["from"], "until": args["to"], "sort": PostSort(args["sort"]),
               "page": args["page"], "limit": args["limit"]}
    page = core().list_post_rows(principal.org_id, post_rows.columns, utc_text=True,
                                 **filters)
    return {"items": [post_rows.json(row) for row in page.items], "total": page.total,
            "page": page.page, "limit": page.limit, "hasMore": page.has_more}


@route(bp, "POST", "/posts/validate", summary="Validate a post (dry run)", tag="Posts",
       description="Checks the post against platform rules (media format, caption length, "
       "channel validity) without creating anything. Media URLs are fetched to be "
       "inspected, then discarded; fetching needs the scope `media:write`, and one request "
       "fetches at most `CHAT33_FETCH_REQUEST_MAX_BYTES` (200 MB by default) within one "
       "`CHAT33_FETCH_TIMEOUT_S`. Rate limited to 120 requests/hour per organization. A "
       "request whose body cannot be read as a post is a 400; problems with the post "
       "itself are reported in the 200 answer (`valid: false`).",
       scope="posts:write", body={JSON: "CreatePostRequest"}, body_required=True,
       rate_limit="posts.validate",
       responses={200: ("Validation result", {"$ref": "ValidationReport"})},
       errors=[400])
def validate_post(principal: Principal) -> Any:
    count_request(principal.org_id)
    req = json_body(PostRequest)
    return converter.unstructure(core().validate_post(principal, req))


@route(bp, "GET", "/posts/{id}", summary="Get post details", tag="Posts", scope="posts:read",
       responses={200: ("Post details", {"$ref": "Post"})})
def get_post(principal: Principal, id: str) -> Any:
    return post_json(core().get_post(principal.org_id, id))


@route(bp, "PATCH", "/posts/{id}", summary="Update a post", tag="Posts", scope="posts:write",
       description="Only DRAFT and QUEUED posts can be edited (409 otherwise). Use to "
       "reschedule, change caption, or move to draft. `scheduledAt: null` publishes on the "
       "next worker tick; `status: CANCELLED` cancels. " + MEDIA_URLS,
       body={JSON: "UpdatePostRequest"},
       responses={200: ("Updated post", {"$ref": "Post"})}, errors=[400, 409, 429])
def update_post(principal: Principal, id: str) -> Any:
    changes = json_body(UpdatePostRequest).changes()
    return post_json(core().update_post(principal, id, changes))


@route(bp, "DELETE", "/posts/{id}", summary="Delete or cancel a post", tag="Posts",
       scope="posts:write",
       description="Hard-deletes DRAFT posts (`deleted: true`). Cancels QUEUED/PUBLISHED/"
       "FAILED posts (`status: CANCELLED`). Cannot delete a post currently being published "
       "(409). Additive: `fromPlatform=true` also deletes a PUBLISHED post on the platform "
       "where the plugin supports it (409 where the platform cannot); the answer then tells "
       "`platformDeleted` and `platformError`.",
       params=[Param("fromPlatform", "boolean", default=False)],
       responses={200: ("Deleted or cancelled", {
           "type": "object", "required": ["id", "deleted", "status"],
           "properties": {"id": {"type": "string"}, "deleted": {"type": "boolean"},
                          "status": {"anyOf": [{"$ref": "PostStatus"}, {"type": "null"}]},
                          "platformDeleted": {"type": "boolean"},
                          "platformError": {"type": ["string", "null"]}}})},
       errors=[400, 409])
def delete_post(principal: Principal, id: str) -> Any:
    args = query()
    outcome = core().delete_post(principal.org_id, id, from_platform=args["fromPlatform"])
    return converter.unstructure(outcome)


@route(bp, "POST", "/posts/{id}/duplicate", summary="Duplicate a post", tag="Posts",
       scope="posts:write",
       description="Clones a post for reposting or rescheduling. Defaults to a DRAFT copy "
       "on the same channel; a QUEUED copy is validated like a new post. Each copy counts "
       "against the 30 posts/hour of `POST /posts`. " + MEDIA_URLS,
       body={JSON: "DuplicatePostRequest"}, rate_limit="posts.create",
       responses={201: ("Duplicated post(s)", {
           "type": "object", "required": ["duplicatedFrom", "posts", "groupId"],
           "properties": {"duplicatedFrom": {"type": "string"}, "posts": _POSTS,
                          "groupId": _GROUP}})},
       errors=[400])
def duplicate_post(principal: Principal, id: str) -> Any:
    req = json_body(DuplicatePostRequest)
    created = core().duplicate_post(principal, id, account_ids=req.account_ids,
                                    scheduled_at=req.scheduled_at, status=req.status)
    counted(created.rate)
    return {"duplicatedFrom": id, "posts": [summary_json(p) for p in created.posts],
            "groupId": created.group_id}, 201


@route(bp, "POST", "/posts/{id}/retry", summary="Retry a failed post", tag="Posts",
       scope="posts:write",
       description="Additive. Puts a FAILED post back in the queue, due now, with its "
       "attempts (`retryCount`) reset and its error cleared; the retry is logged. 409 "
       "CONFLICT from any other status, for a thread item published with its first post "
       "(retry that one: it takes its failed items along), and while the post's account "
       "is removed or `needsReconnect` (reconnect it first). A post whose outcome was "
       "unknown is looked for on the platform before it is sent again.",
       responses={200: ("The post, QUEUED again", {"$ref": "Post"})}, errors=[409])
def retry_post(principal: Principal, id: str) -> Any:
    return post_json(core().retry_post(principal.org_id, id))


@route(bp, "GET", "/posts/{id}/logs", summary="Get publish attempt logs", tag="Posts",
       scope="posts:read",
       description="Returns the events of this post (creation, edits, publish attempts, "
       "successes, failures), oldest first.",
       responses={200: ("Log entries", {"type": "object", "required": ["logs"], "properties": {
           "logs": {"type": "array", "items": {"$ref": "LogEvent"}}}})})
def post_logs(principal: Principal, id: str) -> Any:
    return {"logs": [log_json(e) for e in core().post_logs(principal.org_id, id)]}
