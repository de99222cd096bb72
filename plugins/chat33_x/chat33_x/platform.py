"""X: the platform object chat33's core calls (platforms.md §5).

* ``validate`` — weighted text length (twitter-text v3), media combinations and specs,
  ``platformConfig.x``; every thread item the same way;
* ``publish`` — media through the v2 upload endpoints, then ``POST /2/tweets``; thread
  items are replies to the previous item. Exactly once: each posted id is checkpointed
  the moment X returns it, and a ``POST /2/tweets`` whose answer was lost is looked up
  among the user's posts before anything is posted again;
* ``confirm`` — that lookup (``GET /2/users/{id}/tweets``, exact text and reply target);
* ``delete`` — ``DELETE /2/tweets/{id}`` for every post of the thread;
* ``refresh_credentials`` — OAuth 2 refresh token grant; X rotates refresh tokens;
* connecting accounts (oauth.md §7): ``/i/oauth2/authorize`` with PKCE S256, the code
  exchange at ``/2/oauth2/token`` (HTTP Basic for a confidential client), the user of
  ``/2/users/me`` as the one target, and ``/2/oauth2/revoke``.
"""

from __future__ import annotations

import html
import time
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlencode

import httpx

from chat33_core.errors import (
    CredentialsExpired,
    Issue,
    PermanentError,
    PlatformError,
    ReconnectRequired,
    TransientError,
    UnknownOutcome,
)
from chat33_core.http import send
from chat33_core.models import Account, Credentials, utcnow
from chat33_core.oauth import (
    AuthorizationRequest,
    Grant,
    OAuthClient,
    OAuthContext,
    OAuthError,
    Target,
)
from chat33_core.options import Option
from chat33_core.platforms import (
    Capabilities,
    DeleteContext,
    Limits,
    PlatformBase,
    PostDraft,
    PublishContext,
    PublishItem,
    PublishResult,
    RateLimit,
    Receipt,
    RefreshContext,
    WSGIApp,
)

from . import counting, rules
from .api import RateLimitedByX, XApi, error_message
from .progress import Progress
from .upload import DEFAULT_SEGMENT_BYTES, MediaUploader

#: pages of the user's timeline searched by ``confirm`` (100 posts each)
CONFIRM_PAGES = 3
#: look this far before the lost request was sent (clock skew)
CONFIRM_MARGIN = timedelta(minutes=5)


#: the declared limit X's ``x-rate-limit-*`` headers on POST /2/tweets describe
TWEETS_PER_USER = "tweets-per-user"


def _report_window(ctx: PublishContext, response: httpx.Response | None) -> None:
    """Tell the core what X says of the user's POST /2/tweets window."""
    if response is None:
        return
    remaining, reset = (response.headers.get("x-rate-limit-remaining"),
                        response.headers.get("x-rate-limit-reset"))
    try:
        ctx.limits(TWEETS_PER_USER,
                   remaining=int(remaining) if remaining is not None else None,
                   resets_at=datetime.fromtimestamp(int(reset), UTC) if reset else None)
    except ValueError:
        return  # not numbers: nothing to learn


class XPlatform(PlatformBase):
    name = "x"
    display_name = "X"
    default_api_base = "https://api.x.com"
    capabilities = Capabilities(threads=True, delete=True, text_only=True, images=True,
                                video=True)
    limits = Limits(caption_length=counting.DEFAULT_LIMIT, max_images=rules.MAX_IMAGES,
                    max_videos=1, max_image_bytes=rules.MAX_IMAGE_BYTES,
                    max_video_bytes=rules.DEFAULT_VIDEO_MAX_BYTES)
    options: ClassVar[tuple[Option, ...]] = rules.OPTIONS
    #: posting, media and a refresh token (oauth.md §7)
    oauth_scopes = ("tweet.read", "tweet.write", "users.read", "media.write", "offline.access")
    authorize_url = "https://x.com/i/oauth2/authorize"
    #: POST /2/tweets, one request per thread item, shared by all workers: per user
    #: (the account's token) and per app; X's own ``x-rate-limit-*`` headers win
    rate_limits = (
        RateLimit(TWEETS_PER_USER, per="account", units=100, window=timedelta(minutes=15),
                  per_item=True, description="posts per 15 minutes"),
        RateLimit("tweets-per-app", per="app", units=10_000, window=timedelta(hours=24),
                  per_item=True, description="posts per 24 hours"),
    )

    # --- preflight --------------------------------------------------------------------

    def validate(self, draft: PostDraft, account: Account) -> list[Issue]:
        """Text by X's weighted count against the account's limit (280, Premium 25,000,
        or ``metadata.textLimit``), media rules, ``platformConfig.x``; thread items too."""
        limits = rules.account_limits(account, self.settings.env)
        issues = self._validate_item(draft, limits)
        config = draft.platform_config.get(self.name) if draft.platform_config else None
        if isinstance(config, Mapping):
            issues += rules.check_config(config, has_media=bool(draft.media))
        for item in draft.thread:
            issues += self._validate_item(item, limits)
        return issues

    def text_count(self, text: str, account: Account) -> tuple[int, int]:
        """X's weighted count (URLs 23, emoji and CJK 2) against the account's limit."""
        limit = rules.account_limits(account, self.settings.env).text
        return counting.count(text, limit).weighted_length, limit

    def _validate_item(self, draft: PostDraft, limits: rules.AccountLimits) -> list[Issue]:
        return [*rules.check_text(draft.text, bool(draft.media), limits.text, draft.path),
                *rules.check_media(draft.media, limits, draft.path)]

    # --- publishing ---------------------------------------------------------------------

    def publish(self, ctx: PublishContext) -> PublishResult:
        """Publish the post and its thread items, continuing from the checkpoints.

        A failure after some items are on X carries them in ``posted`` (a thread failing
        half-way is not silently published); a lost answer to ``POST /2/tweets`` raises
        :class:`UnknownOutcome` and leaves a ``pending`` checkpoint that the next attempt
        (or :meth:`confirm`) resolves by looking the post up.
        """
        progress = Progress(ctx.checkpoints)
        api = self._api(ctx.http, ctx.credentials)
        items = list(ctx.items)
        try:
            if progress.pending:
                self._resolve_pending(ctx, api, progress)
            if 0 < len(progress.posted) < len(items):
                ctx.log("x.resume", f"{len(progress.posted)} of {len(items)} posts already on "
                        "X; continuing the thread", posted=progress.posted_ids())
            uploader = MediaUploader(
                api, progress, segment_bytes=self._segment_bytes(), sleep=ctx.sleep,
                delays=ctx.poll_delays, log=ctx.log)
            for index in range(len(progress.posted), len(items)):
                self._post_item(ctx, api, progress, uploader, index, items[index])
        except PlatformError as exc:
            # whatever happened, the posts already on X are never forgotten
            exc.posted = self._receipts(ctx, progress)
            raise
        return PublishResult(receipts=self._receipts(ctx, progress))

    def _post_item(self, ctx: PublishContext, api: XApi, progress: Progress,
                   uploader: MediaUploader, index: int, item: PublishItem) -> None:
        media_ids: list[str] = []
        media_keys: list[str] = []
        for number, media in enumerate(item.media):
            media_id, media_key = uploader.upload(index, number, media)
            media_ids.append(media_id)
            if media_key:
                media_keys.append(media_key)
        ids = progress.posted_ids()
        reply_to = ids[-1] if ids else None
        body = self._tweet_body(ctx, index, item, media_ids, reply_to)
        progress.set_pending({"index": index, "replyTo": reply_to, "text": item.text or "",
                              "mediaKeys": media_keys, "sentAt": time.time()})
        try:
            response = api.send("POST", "/2/tweets", json=body, creating=True,
                                what=f"X post {index + 1}/{len(ctx.items)}")
        except UnknownOutcome:
            ctx.log("x.unknown", f"no clear answer to post {index + 1}; it will be looked "
                    "up before posting again", index=index)
            raise
        except PlatformError as exc:
            # X answered and refused: nothing was created
            progress.set_pending(None)
            _report_window(ctx, getattr(exc.__cause__, "response", None))
            raise
        _report_window(ctx, response)
        try:
            tweet_id = str(api.data(response, "X post")["id"])
        except (PlatformError, KeyError) as exc:
            raise UnknownOutcome(f"X accepted post {index + 1} but its answer had no id: "
                                 f"{response.text[:200]}", platform_code="bad-response") from exc
        progress.mark_posted(index, tweet_id, item.post_id)
        ctx.log("x.posted", f"post {index + 1}/{len(ctx.items)} is on X as {tweet_id}",
                external_id=tweet_id, index=index, in_reply_to=reply_to)

    def _tweet_body(self, ctx: PublishContext, index: int, item: PublishItem,
                    media_ids: Sequence[str], reply_to: str | None) -> dict[str, Any]:
        """``CreatePostsRequest``. Reply settings and the AI label apply to every post of
        a thread; a poll or a quote to the first only."""
        config = ctx.config(self.name)
        body: dict[str, Any] = {}
        if item.text:
            body["text"] = item.text
        if media_ids:
            body["media"] = {"media_ids": list(media_ids)}
        if reply_to:
            body["reply"] = {"in_reply_to_tweet_id": reply_to}
        if config.get("replySettings"):
            body["reply_settings"] = config["replySettings"]
        if config.get("madeWithAi") is not None:
            body["made_with_ai"] = bool(config["madeWithAi"])
        if index == 0:
            if config.get("quoteTweetId") is not None:
                body["quote_tweet_id"] = str(config["quoteTweetId"])
            poll = config.get("poll")
            if isinstance(poll, Mapping):
                options, minutes = rules.poll_fields(poll)
                body["poll"] = {"options": options, "duration_minutes": int(minutes)}
        return body

    # --- exactly once -----------------------------------------------------------------------

    def confirm(self, ctx: PublishContext) -> PublishResult | None:
        """Resolve a lost ``POST /2/tweets``: look the post up among the user's posts.

        Returns the result when every item of the post is on X; ``None`` when the post
        (or, for a thread, its remaining items) is not there — what was found is
        checkpointed, so publishing again continues the thread without reposting.
        Raises :class:`UnknownOutcome` when X cannot be asked.
        """
        progress = Progress(ctx.checkpoints)
        api = self._api(ctx.http, ctx.credentials)
        if progress.pending:
            try:
                self._resolve_pending(ctx, api, progress)
            except (CredentialsExpired, ReconnectRequired) as exc:
                exc.posted = self._receipts(ctx, progress)
                raise  # the worker refreshes the token and asks again
            except PlatformError as exc:
                raise UnknownOutcome(f"could not look the post up on X: {exc.message}",
                                     platform_code=exc.platform_code,
                                     posted=self._receipts(ctx, progress)) from exc
        if len(progress.posted) >= len(ctx.items):
            return PublishResult(receipts=self._receipts(ctx, progress))
        return None

    def _resolve_pending(self, ctx: PublishContext, api: XApi, progress: Progress) -> None:
        pending = progress.pending
        assert pending is not None
        index = int(pending["index"])
        if index != len(progress.posted):
            progress.set_pending(None)  # stale: that item was recorded since
            return
        found = self._find_posted(ctx, api, pending)
        if found is None:
            ctx.log("x.confirm", f"post {index + 1} is not on X; it will be posted",
                    index=index)
            progress.set_pending(None)
            return
        ctx.log("x.confirm", f"post {index + 1} was on X after all as {found}",
                external_id=found, index=index)
        progress.mark_posted(index, found, ctx.items[index].post_id)

    def _find_posted(self, ctx: PublishContext, api: XApi,
                     pending: Mapping[str, Any]) -> str | None:
        """The id of the user's post with the pending item's exact text, reply target
        (and media), or None."""
        user_id = self._user_id(ctx.account, api)
        sent_at = datetime.fromtimestamp(float(pending.get("sentAt") or time.time()), UTC)
        params: dict[str, Any] = {
            "max_results": 100,
            "tweet.fields": "created_at,referenced_tweets,attachments,entities,conversation_id",
            "start_time": (sent_at - CONFIRM_MARGIN).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        want_text = _comparable(str(pending.get("text") or ""))
        want_reply = pending.get("replyTo")
        want_media = set(pending.get("mediaKeys") or [])
        for _ in range(CONFIRM_PAGES):
            response = api.send("GET", f"/2/users/{user_id}/tweets", params=params,
                                what="X timeline lookup")
            try:
                body = response.json()
            except ValueError as exc:
                raise TransientError("X timeline lookup answered with no JSON",
                                     platform_code="bad-response") from exc
            for tweet in body.get("data") or []:
                if _replied_to(tweet) != want_reply:
                    continue
                if _comparable(_original_text(tweet)) != want_text:
                    continue
                keys = set((tweet.get("attachments") or {}).get("media_keys") or [])
                if want_media and keys and keys != want_media:
                    continue
                return str(tweet["id"])
            next_token = (body.get("meta") or {}).get("next_token")
            if not next_token:
                return None
            params["pagination_token"] = next_token
        return None

    def _user_id(self, account: Account, api: XApi) -> str:
        if account.external_id and account.external_id.isdigit():
            return account.external_id
        response = api.send("GET", "/2/users/me", what="X user lookup")
        return str(api.data(response, "X user lookup")["id"])

    # --- receipts ----------------------------------------------------------------------------

    def post_url(self, account: Account, tweet_id: str) -> str:
        username = (account.username or "").lstrip("@") or "i"  # x.com/i/status/<id> works too
        return f"https://x.com/{username}/status/{tweet_id}"

    def _receipts(self, ctx: PublishContext, progress: Progress) -> list[Receipt]:
        return [Receipt(external_id=entry["id"], external_url=self.post_url(ctx.account,
                                                                             entry["id"]),
                        post_id=entry.get("postId"), extra={"position": position})
                for position, entry in enumerate(progress.posted)]

    # --- delete --------------------------------------------------------------------------------

    def delete(self, ctx: DeleteContext) -> None:
        """``DELETE /2/tweets/{id}`` for every post of the thread, replies first.

        A post already gone counts as deleted. Refused credentials and rate limits stop at
        once (the worker refreshes or waits; deleting again is harmless); other failures
        are collected and raised together after trying every post.
        """
        api = self._api(ctx.http, ctx.credentials)
        failures: list[tuple[str, PlatformError]] = []
        for tweet_id in reversed(list(ctx.external_ids)):
            try:
                response = api.send("DELETE", f"/2/tweets/{tweet_id}", allow=(404,),
                                    what=f"X delete {tweet_id}")
            except (CredentialsExpired, ReconnectRequired, RateLimitedByX):
                raise
            except PlatformError as exc:
                failures.append((tweet_id, exc))
                continue
            if response.status_code == 404:
                ctx.log("x.delete", f"post {tweet_id} was already gone", external_id=tweet_id)
            elif (response.json().get("data") or {}).get("deleted") is False:
                failures.append((tweet_id, PermanentError(
                    f"X did not delete post {tweet_id}", platform_code="not-deleted")))
            else:
                ctx.log("x.delete", f"post {tweet_id} deleted on X", external_id=tweet_id)
        if failures:
            first = failures[0][1]
            ids = ", ".join(tweet_id for tweet_id, _ in failures)
            raise type(first)(f"X did not delete {ids}: {first.message}",
                              platform_code=first.platform_code)

    # --- credentials --------------------------------------------------------------------------

    def token_url(self) -> str:
        return self.settings.token_url(self.name, f"{self.api_base()}/2/oauth2/token")

    def refresh_credentials(self, credentials: Credentials, ctx: RefreshContext) -> Credentials:
        """OAuth 2 ``refresh_token`` grant at ``/2/oauth2/token``. X's refresh tokens are
        single-use: the answer's new one replaces the old (the core saves both tokens in
        one write)."""
        if not credentials.refresh_token:
            raise ReconnectRequired("this X account has no refresh token (the offline.access "
                                    "scope was not granted): reconnect it")
        client_id, client_secret = ctx.settings.client_credentials(self.name)
        client_id = client_id or credentials.extra.get("clientId")
        form = {"grant_type": "refresh_token", "refresh_token": credentials.refresh_token}
        auth: httpx.Auth | None = None
        if client_id and client_secret:
            auth = httpx.BasicAuth(client_id, client_secret)  # confidential client
        elif client_id:
            form["client_id"] = client_id  # public client
        # without client credentials, the client's own auth (none) stays
        extra: dict[str, Any] = {"auth": auth} if auth else {}
        response = send(ctx.http, "POST", self.token_url(), platform="X",
                        what="X token refresh", creates=False, data=form, **extra)
        if response.status_code in (400, 401, 403):
            message, code = error_message(response)
            raise ReconnectRequired(f"X refused the refresh token: {message}; reconnect the "
                                    "account", platform_code=code or
                                    str(response.status_code))
        if not response.is_success:
            message, code = error_message(response)
            raise TransientError(f"X token refresh failed: {message}",
                                 platform_code=code or str(response.status_code))
        body = response.json()
        if not body.get("access_token"):
            raise TransientError("X token refresh answered without an access token",
                                 platform_code="bad-response")
        now = utcnow()
        expires_in = body.get("expires_in")
        extra = dict(credentials.extra)
        if body.get("scope"):
            extra["scope"] = body["scope"]
        return Credentials(
            access_token=body["access_token"],
            refresh_token=body.get("refresh_token") or None,  # none: the core keeps the old
            expires_at=now + timedelta(seconds=float(expires_in)) if expires_in else None,
            issued_at=now, extra=extra)

    # --- connecting accounts (oauth.md §7) -----------------------------------------------------

    def authorization_url(self, request: AuthorizationRequest) -> str:
        query = {"response_type": "code", "client_id": request.client.client_id,
                 "redirect_uri": request.client.redirect_uri,
                 "scope": " ".join(self.oauth_scopes), "state": request.state,
                 "code_challenge": request.code_challenge, "code_challenge_method": "S256"}
        return f"{self.platform_url(self.authorize_url)}?{urlencode(query)}"

    def _token_request(self, form: dict[str, str], client: OAuthClient, http: httpx.Client,
                       url: str, what: str) -> httpx.Response:
        """A form POST to the OAuth endpoints with the client's authentication: HTTP
        Basic for a confidential client, ``client_id`` in the body for a public one."""
        extra: dict[str, Any] = {}
        if client.client_secret:
            extra["auth"] = httpx.BasicAuth(client.client_id, client.client_secret)
        else:
            form = {**form, "client_id": client.client_id}
        return send(http, "POST", url, platform="X", what=what, creates=False, data=form,
                    **extra)

    def exchange_code(self, code: str, request: AuthorizationRequest,
                      ctx: OAuthContext) -> Grant:
        response = self._token_request(
            {"grant_type": "authorization_code", "code": code,
             "redirect_uri": request.client.redirect_uri,
             "code_verifier": request.code_verifier},
            request.client, ctx.http, self.token_url(), "X code exchange")
        body = _json_object(response)
        if not response.is_success or not body.get("access_token"):
            raise OAuthError(str(body.get("error") or "exchange_failed"),
                             f"X refused the authorization code: "
                             f"{body.get('error_description') or response.status_code}")
        scopes = tuple(str(body.get("scope") or "").split())
        now = utcnow()
        expires_in = body.get("expires_in")
        credentials = Credentials(
            access_token=body["access_token"], refresh_token=body.get("refresh_token"),
            expires_at=now + timedelta(seconds=float(expires_in)) if expires_in else None,
            issued_at=now, extra={"scope": " ".join(scopes)} if scopes else {})
        return Grant(credentials=credentials, scopes=scopes)

    def list_targets(self, grant: Grant, ctx: OAuthContext) -> Sequence[Target]:
        api = self._api(ctx.http, grant.credentials)
        response = api.send("GET", "/2/users/me?user.fields=profile_image_url",
                            what="X user lookup")
        user = api.data(response, "X user lookup")
        return [Target(external_id=str(user["id"]), name=str(user.get("name") or
                                                              user["username"]),
                       username=user.get("username"),
                       picture_url=user.get("profile_image_url"))]

    def revoke(self, credentials: Credentials, ctx: OAuthContext) -> None:
        """``/2/oauth2/revoke`` for the refresh token (which ends the grant) and the
        access token."""
        for token, hint in ((credentials.refresh_token, "refresh_token"),
                            (credentials.access_token, "access_token")):
            if not token:
                continue
            response = self._token_request(
                {"token": token, "token_type_hint": hint}, ctx.client, ctx.http,
                self.platform_url(f"{self.default_api_base}/2/oauth2/revoke"), "X revoke")
            if not response.is_success:
                body = _json_object(response)
                raise OAuthError(str(body.get("error") or response.status_code),
                                 "X refused to revoke the token")

    # --- plumbing ------------------------------------------------------------------------------

    def _api(self, http: httpx.Client, credentials: Credentials) -> XApi:
        return XApi(http, self.api_base(), credentials.access_token)

    def _segment_bytes(self) -> int:
        raw = self.settings.platform_value(self.name, "SEGMENT_BYTES")
        try:
            return int(raw) if raw else DEFAULT_SEGMENT_BYTES
        except ValueError:
            return DEFAULT_SEGMENT_BYTES

    def sandbox(self) -> WSGIApp | None:
        from .sandbox import XSandbox

        return XSandbox()


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


# --- matching a post found on X to the one we sent ---------------------------------------


def _comparable(text: str) -> str:
    return unicodedata.normalize("NFC", text.replace("\r\n", "\n")).strip()


def _original_text(tweet: Mapping[str, Any]) -> str:
    """The text as the user wrote it: X escapes ``& < >``, shortens links to t.co and
    appends a link to attached media."""
    text = html.unescape(str(tweet.get("text") or ""))
    for entity in ((tweet.get("entities") or {}).get("urls") or []):
        short = entity.get("url")
        if not short:
            continue
        if entity.get("media_key") or str(entity.get("display_url", "")).startswith(
                ("pic.x.com", "pic.twitter.com")):
            text = text.replace(short, "")
        elif entity.get("expanded_url"):
            text = text.replace(short, entity["expanded_url"])
    return text


def _replied_to(tweet: Mapping[str, Any]) -> str | None:
    for ref in tweet.get("referenced_tweets") or []:
        if ref.get("type") == "replied_to":
            return str(ref.get("id"))
    return None
