"""TikTok: the platform object chat33's core calls (platforms.md §3).

* ``validate`` — one video or 1-35 photos with TikTok's media rules, the caption in
  UTF-16 code units, ``platformConfig.tiktok`` (``privacyLevel`` required);
* ``publish`` — creator info, then ``FILE_UPLOAD`` chunks (video) or ``PULL_FROM_URL``
  (photos), then ``status/fetch``; exactly once through checkpoints (:mod:`.publishing`);
* ``confirm`` — ``status/fetch`` of the checkpointed ``publish_id``;
* ``delete`` — not offered by TikTok's API (``capabilities.delete`` is false);
* ``refresh_credentials`` — ``/v2/oauth/token/``; TikTok rotates refresh tokens;
* connecting accounts (oauth.md §5): Login Kit for web (``client_key``, comma-separated
  scopes, no PKCE), the code exchange at ``/v2/oauth/token/``, the creator of
  ``/v2/user/info/`` as the one target, and ``/v2/oauth/revoke/``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, ClassVar
from urllib.parse import urlencode

import httpx

from chat33_core.errors import (
    Issue,
    PlatformError,
    ReconnectRequired,
    TransientError,
    UnknownOutcome,
)
from chat33_core.http import send
from chat33_core.models import Account, Credentials, utcnow
from chat33_core.oauth import AuthorizationRequest, Grant, OAuthContext, OAuthError, Target
from chat33_core.options import Option
from chat33_core.platforms import (
    Capabilities,
    Limits,
    PlatformBase,
    PostDraft,
    PublishContext,
    PublishResult,
    RateLimit,
    RefreshContext,
    WSGIApp,
)

from . import rules
from .chunks import MAX_VIDEO_BYTES
from .publishing import Publisher

TOKEN_PATH = "/v2/oauth/token/"
#: OAuth error codes after which only the account's owner can help
RECONNECT_ERRORS = {"invalid_grant", "access_denied", "invalid_scope", "unauthorized_client"}


class TikTokPlatform(PlatformBase):
    name = "tiktok"
    display_name = "TikTok"
    default_api_base = "https://open.tiktokapis.com"
    capabilities = Capabilities(threads=False, delete=False, text_only=False, images=True,
                                video=True)
    #: the API's documented per-channel cap (chat33-api.md: TikTok 20). TikTok's own
    #: limit is "typically around 15 posts per day/creator account" (platforms.md §3.7)
    #: and varies: when TikTok says spam_risk_too_many_posts the post is deferred too
    limits = Limits(caption_length=rules.CAPTION_MAX, max_images=rules.MAX_PHOTOS,
                    max_videos=1, max_image_bytes=rules.PHOTO_MAX_BYTES,
                    max_video_bytes=MAX_VIDEO_BYTES, daily_cap=20)
    #: the per-token rate of the publish endpoints (video and photo ``init``), shared by
    #: all workers publishing for the account
    rate_limits = (RateLimit("publish-init", per="account", units=6,
                             window=timedelta(minutes=1),
                             description="publish requests per minute"),)
    options: ClassVar[tuple[Option, ...]] = rules.OPTIONS
    #: access tokens live 2 hours: refresh a little earlier than the default margin
    refresh_margin: ClassVar[timedelta] = timedelta(minutes=10)
    #: the creator's profile and posting (oauth.md §5)
    oauth_scopes = ("user.info.basic", "user.info.profile", "video.publish", "video.upload")
    authorize_url = "https://www.tiktok.com/v2/auth/authorize/"

    # --- preflight --------------------------------------------------------------------

    def validate(self, draft: PostDraft, account: Account) -> list[Issue]:
        """TikTok's rules for ``draft``; the creator's ``maxVideoPostDurationSec`` and
        ``privacyLevelOptions`` from the account's metadata when known."""
        raw_config = draft.platform_config.get(self.name) if draft.platform_config else None
        config: Mapping[str, Any] = raw_config if isinstance(raw_config, Mapping) else {}
        meta = account.metadata or {}
        max_s = meta.get("maxVideoPostDurationSec", meta.get("max_video_post_duration_sec"))
        options = meta.get("privacyLevelOptions", meta.get("privacy_level_options"))
        has_video = any(m.is_video for m in draft.media)
        issues = rules.check_media(draft.media,
                                   float(max_s) if isinstance(max_s, int | float) else None,
                                   draft.path)
        issues += rules.check_text(draft.text, has_video or not draft.media, config,
                                   draft.path)
        duration = draft.media[0].duration_s if has_video else None
        issues += rules.check_config(
            config, has_video=has_video, duration_s=duration,
            privacy_options=options if isinstance(options, list) else None, path=draft.path)
        index = config.get("photoCoverIndex")
        if not has_video and index is not None and draft.media and index >= len(draft.media):
            issues.append(Issue(f"{draft.path}platformConfig.tiktok.photoCoverIndex",
                                f"photoCoverIndex {index} is past the last of "
                                f"{len(draft.media)} photo(s)", "out_of_range"))
        return issues

    # --- publishing -------------------------------------------------------------------

    def publish(self, ctx: PublishContext) -> PublishResult:
        """Publish the post; resumes from ``ctx.checkpoints`` (see :mod:`.publishing`)."""
        return Publisher(ctx, self.api_base(), self.name).run()

    def confirm(self, ctx: PublishContext) -> PublishResult | None:
        """After a lost answer: the result if TikTok published the checkpointed
        ``publish_id``; ``None`` when no post exists or one is still on its way (the
        next publish resumes it, it never inits again); ``UnknownOutcome`` for a photo
        init whose answer never came (TikTok has no lookup without a publish_id)."""
        publisher = Publisher(ctx, self.api_base(), self.name)
        state = publisher.state
        publish_id = state.get("publishId")
        if not publish_id:
            if state.get("initPending"):
                raise UnknownOutcome(
                    f"TikTok was asked to post photos and never answered; it offers no way "
                    f"to look the post up: check the account {ctx.account.name!r} before "
                    "posting again", platform_code="init-lost")
            return None
        try:
            status = publisher.status(str(publish_id))
        except TransientError:
            raise
        except PlatformError as exc:
            raise UnknownOutcome(f"could not ask TikTok about publish {publish_id}: "
                                 f"{exc.message}", platform_code=exc.platform_code) from exc
        if status.get("status") in ("PUBLISH_COMPLETE", "SEND_TO_USER_INBOX"):
            return publisher.published(str(publish_id), status)
        return None

    # --- credentials ------------------------------------------------------------------

    def token_url(self) -> str:
        return self.settings.token_url(self.name, f"{self.api_base()}{TOKEN_PATH}")

    def refresh_credentials(self, credentials: Credentials, ctx: RefreshContext) -> Credentials:
        """``grant_type=refresh_token`` with the app's ``client_key``/``client_secret``.

        TikTok rotates refresh tokens: the old one stops working once the new one is
        issued, so the returned credentials carry the new refresh token (the core writes
        both tokens in one update). OAuth errors come as ``{error, error_description,
        log_id}``: a refused grant means the owner must reconnect.
        """
        if not credentials.refresh_token:
            raise ReconnectRequired("this TikTok account has no refresh token: reconnect it")
        client_key, client_secret = ctx.settings.client_credentials(self.name)
        client_key = (ctx.settings.platform_value(self.name, "CLIENT_KEY") or client_key
                      or credentials.extra.get("clientKey"))
        if not client_key or not client_secret:
            raise ReconnectRequired("TikTok token refresh needs CHAT33_TIKTOK_CLIENT_KEY (or "
                                    "_CLIENT_ID) and CHAT33_TIKTOK_CLIENT_SECRET",
                                    platform_code="client-credentials-missing")
        form = {"client_key": client_key, "client_secret": client_secret,
                "grant_type": "refresh_token", "refresh_token": credentials.refresh_token}
        response = send(ctx.http, "POST", self.token_url(), platform="TikTok",
                        what="TikTok token refresh", creates=False, data=form, headers={
                            "Content-Type": "application/x-www-form-urlencoded",
                            "Cache-Control": "no-cache"})
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, Mapping):
            raise TransientError(f"TikTok token refresh: HTTP {response.status_code}, "
                                 f"{response.text[:200]}", platform_code=str(
                                     response.status_code))
        error = body.get("error")
        if isinstance(error, Mapping):  # the API envelope, if the endpoint ever uses it
            code = str(error.get("code") or "")
            error = None if code == "ok" else code
            body = {**body, "error_description": body.get("error", {}).get("message")}
        if error or not response.is_success:
            self._refresh_failed(response, str(error or f"http_{response.status_code}"),
                                 str(body.get("error_description") or ""), body.get("log_id"))
        if not body.get("access_token"):
            raise TransientError("TikTok token refresh answered without an access token",
                                 platform_code="bad-response")
        now = utcnow()
        extra = dict(credentials.extra)
        for key, name in (("open_id", "openId"), ("scope", "scope")):
            if body.get(key):
                extra[name] = body[key]
        if body.get("refresh_expires_in"):
            extra["refreshExpiresAt"] = (
                now + timedelta(seconds=float(body["refresh_expires_in"]))).isoformat()
        expires_in = body.get("expires_in")
        return Credentials(
            access_token=str(body["access_token"]),
            refresh_token=str(body.get("refresh_token") or "") or None,  # none: the core
            # keeps the old one (Credentials.replaced_by)
            expires_at=now + timedelta(seconds=float(expires_in)) if expires_in else None,
            issued_at=now, extra=extra)

    def _refresh_failed(self, response: httpx.Response, code: str, description: str,
                        log_id: Any) -> None:
        detail = code + (f": {description}" if description else "") + \
            (f" [log_id {log_id}]" if log_id else "")
        cause = httpx.HTTPStatusError(detail, request=response.request, response=response)
        if code in RECONNECT_ERRORS:
            raise ReconnectRequired(f"TikTok refused the refresh token ({detail}); reconnect "
                                    "the account", platform_code=code) from cause
        if code == "invalid_client":
            raise ReconnectRequired(f"TikTok refused chat33's client key or secret ({detail}); "
                                    "check CHAT33_TIKTOK_CLIENT_KEY/_CLIENT_SECRET",
                                    platform_code=code) from cause
        if response.status_code >= 500 or response.status_code == 429 or \
                code in ("temporarily_unavailable", "server_error", "rate_limit_exceeded"):
            raise TransientError(f"TikTok token refresh failed: {detail}",
                                 platform_code=code) from cause
        # invalid_request, unsupported_grant_type...: refreshing cannot work as things are
        raise ReconnectRequired(f"TikTok token refresh failed ({detail}); reconnect the "
                                "account", platform_code=code) from cause

    # --- connecting accounts (oauth.md §5) ---------------------------------------------

    def authorization_url(self, request: AuthorizationRequest) -> str:
        # TikTok web checks no PKCE (oauth.md §2.2): none is sent
        query = {"client_key": request.client.client_id, "response_type": "code",
                 "scope": ",".join(self.oauth_scopes),
                 "redirect_uri": request.client.redirect_uri, "state": request.state}
        if request.force_consent:
            query["disable_auto_auth"] = "1"
        return f"{self.platform_url(self.authorize_url)}?{urlencode(query)}"

    def _oauth_form(self, ctx: OAuthContext, what: str, url: str,
                    form: dict[str, str]) -> dict[str, Any]:
        """POST ``form`` with the app's ``client_key``/``client_secret``; the answer's
        JSON object. OAuth errors (``{error, error_description, log_id}``) raise
        OAuthError."""
        client = ctx.client
        response = send(ctx.http, "POST", url, platform="TikTok", what=what, creates=False,
                        data={"client_key": client.client_id,
                              "client_secret": client.client_secret, **form},
                        headers={"Cache-Control": "no-cache"})
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, Mapping):
            raise OAuthError("exchange_failed", f"{what}: HTTP {response.status_code}, not "
                                                "JSON")
        error = body.get("error")
        if isinstance(error, Mapping):
            error = None if error.get("code") in ("ok", None) else error.get("code")
        if error or not response.is_success:
            code = str(error or f"http_{response.status_code}")
            raise OAuthError(code, f"TikTok refused the {what}: {code}"
                             + (f": {body.get('error_description')}"
                                if body.get("error_description") else ""))
        return dict(body)

    def exchange_code(self, code: str, request: AuthorizationRequest,
                      ctx: OAuthContext) -> Grant:
        body = self._oauth_form(ctx, "code exchange", self.token_url(), {
            "code": code, "grant_type": "authorization_code",
            "redirect_uri": request.client.redirect_uri})
        if not body.get("access_token"):
            raise OAuthError("exchange_failed", "TikTok answered without an access token")
        now = utcnow()
        scopes = tuple(s for s in str(body.get("scope") or "").split(",") if s)
        extra: dict[str, Any] = {"openId": body.get("open_id"), "scope": ",".join(scopes)}
        if body.get("refresh_expires_in"):
            extra["refreshExpiresAt"] = (
                now + timedelta(seconds=float(body["refresh_expires_in"]))).isoformat()
        expires_in = body.get("expires_in")
        credentials = Credentials(
            access_token=str(body["access_token"]), refresh_token=body.get("refresh_token"),
            expires_at=now + timedelta(seconds=float(expires_in)) if expires_in else None,
            issued_at=now, extra=extra)
        return Grant(credentials=credentials, scopes=scopes,
                     subject=str(body["open_id"]) if body.get("open_id") else None)

    def list_targets(self, grant: Grant, ctx: OAuthContext) -> Sequence[Target]:
        url = self.platform_url(f"{self.default_api_base}/v2/user/info/")
        response = send(ctx.http, "GET", url, platform="TikTok", what="TikTok user info",
                        creates=False, params={
                            "fields": "open_id,union_id,avatar_url,display_name,username"},
                        headers={"Authorization": f"Bearer {grant.credentials.access_token}"})
        try:
            body = response.json()
        except ValueError:
            body = {}
        user = ((body.get("data") or {}).get("user") if isinstance(body, Mapping) else None)
        if not response.is_success or not isinstance(user, Mapping) or not user.get("open_id"):
            raise OAuthError("exchange_failed", f"TikTok user info failed: HTTP "
                             f"{response.status_code}")
        return [Target(external_id=str(user["open_id"]),
                       name=str(user.get("display_name") or user.get("username") or
                                user["open_id"]),
                       username=user.get("username"), picture_url=user.get("avatar_url"))]

    def revoke(self, credentials: Credentials, ctx: OAuthContext) -> None:
        self._oauth_form(ctx, "revocation",
                         self.platform_url(f"{self.default_api_base}/v2/oauth/revoke/"),
                         {"token": credentials.access_token})

    # --- sandbox ----------------------------------------------------------------------

    def sandbox(self) -> WSGIApp | None:
        from .sandbox import TikTokSandbox

        return TikTokSandbox()
