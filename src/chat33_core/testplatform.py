"""``echo``: a zero-latency platform for testing and benchmarking the worker.

It is built exactly as a third-party plugin would be (a :class:`PlatformBase` subclass
registered through ``chat33_register_platforms``) and talks real HTTP to its sandbox,
:class:`EchoSandbox`, which records every post it receives. Multi-process tests count
the records per post to prove "published exactly once".

The protocol (all JSON, ``Authorization: Bearer <token>``):

* ``POST /v1/posts`` ``{marker, text, replyTo}`` -> ``201 {id, url}``. ``marker`` is
  chat33's post id, so the post can be found again after an unknown outcome;
* ``GET /v1/posts?marker=M`` -> ``{data: [{id, url, marker}...]}``;
* ``DELETE /v1/posts/<id>``;
* ``POST /oauth/token`` ``{grant_type: refresh_token, refresh_token}`` -> a new access
  token *and a new refresh token* (rotation: a used refresh token is refused afterwards).

Errors: 401 ``token_expired`` (refresh), 403 ``reconnect`` (revoked), 400 (refused, the
message is the user's), 429 with ``Retry-After`` (transient) or ``{"error": "quota"}``
(quota spent, ``retryAt``), 5xx (transient, or unknown outcome after a creating POST).

Connecting by OAuth (:mod:`chat33_core.oauth`), so the core's flow is tested on a
platform of its own: ``GET /oauth/authorize`` (PKCE S256 required, consents at once,
:class:`~chat33_core.sandbox_oauth.AuthorizationServer`), ``POST /oauth/token`` with
``grant_type=authorization_code`` (a form), ``GET /v1/me/channels`` (the grant's
targets: ``channels`` of ``/_sandbox/config``, one unless set) and ``POST /oauth/revoke``.

Settings: ``CHAT33_ECHO_DAILY_CAP`` (a daily cap per channel), ``CHAT33_ECHO_APP_LIMIT``
and ``CHAT33_ECHO_ACCOUNT_LIMIT`` (``UNITS/SECONDS``: shared limits on posts for the
app and per channel, see :class:`~chat33_core.platforms.RateLimit`).

Knobs (``POST /_sandbox/config``): ``delay_s`` (each request sleeps that long),
``channels`` and ``user`` (who consents), plus the standard fault injection of
:class:`~chat33_core.sandbox.SandboxApp`; ``POST /_sandbox/revoke {"token": ...}``
makes a token answer 401.

Use it in a worker process with ``chat33 worker --plugin chat33_core.testplatform``.

The module also registers ``instant``, the zero-latency platform: it publishes in
process, at no cost, so a worker publishing to it spends its time only on its own work
(claims, attempts, logs, final states). ``bench/scheduler.py`` measures the worker's
overhead with it.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlencode

import httpx
from werkzeug.wrappers import Request, Response

from .errors import (
    CredentialsExpired,
    PermanentError,
    QuotaExceeded,
    ReconnectRequired,
    TransientError,
    UnknownOutcome,
)
from .hookspecs import hookimpl
from .http import reaching, send
from .models import Credentials, utcnow
from .oauth import AuthorizationRequest, Grant, OAuthContext, OAuthError, Target
from .platforms import (
    Capabilities,
    DeleteContext,
    Limits,
    PlatformBase,
    PublishContext,
    PublishResult,
    RateLimit,
    Receipt,
    RefreshContext,
)
from .sandbox import SandboxApp, json_response
from .sandbox_oauth import AuthorizationServer, GrantRefused


class EchoSandbox(SandboxApp):
    """The echo platform's server: records each post it receives (duplicates included)."""

    name = "echo"

    def __init__(self) -> None:
        super().__init__()
        self.route("/v1/posts", self._create, methods=["POST"])
        self.route("/v1/posts", self._find, methods=["GET"])
        self.route("/v1/posts/<post_id>", self._delete, methods=["DELETE"])
        self.route("/oauth/token", self._token, methods=["POST"])
        self.route("/oauth/authorize", self._authorize, methods=["GET"])
        self.route("/oauth/revoke", self._oauth_revoke, methods=["POST"])
        self.route("/v1/me/channels", self._channels, methods=["GET"])
        self.route("/_sandbox/config", self._config, methods=["POST"])
        self.route("/_sandbox/revoke", self._revoke, methods=["POST"])
        self.auth = AuthorizationServer("echo", self, pkce="required")
        self.reset()

    def reset(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.deleted: list[str] = []
        self.revoked: set[str] = set()
        self.used_refresh: set[str] = set()
        self.refreshes = 0
        self.delay_s = 0.0
        self.channels = 1
        self.user = "echo-user"
        self._ids = itertools.count(1)
        if hasattr(self, "auth"):
            self.auth.reset()

    # --- control ----------------------------------------------------------------

    def _config(self, request: Request) -> Response:
        body = request.get_json(force=True) or {}
        with self.lock:
            self.delay_s = float(body.get("delay_s", self.delay_s))
            self.channels = int(body.get("channels", self.channels))
            self.user = str(body.get("user", self.user))
        return json_response({"ok": True})

    # --- OAuth ----------------------------------------------------------------------

    def _authorize(self, request: Request) -> Response:
        with self.lock:
            user = self.user
        return self.auth.authorize(request, subject=user)

    def _code_grant(self, request: Request) -> Response:
        try:
            consent = self.auth.redeem_form(request.form)
        except GrantRefused as refused:
            return json_response(refused.body(), 400)
        with self.lock:
            n = next(self._ids)
            channels = self.channels
        user = consent.subject
        return json_response({"access_token": f"echo-at-{user}-c{n}",
                              "refresh_token": f"echo-rt-{user}-c{n}", "expires_in": 3600,
                              "channels": channels})

    def _channels(self, request: Request) -> Response:
        refused = self._auth(request)
        if refused is not None:
            return refused
        token = request.headers["Authorization"].removeprefix("Bearer ").strip()
        user = token.removeprefix("echo-at-").rsplit("-c", 1)[0]
        with self.lock:
            n = self.channels
        return json_response({"data": [
            {"id": f"{user}-ch{i}", "name": f"Echo channel {i}", "handle": f"echo{i}"}
            for i in range(1, n + 1)]})

    def _oauth_revoke(self, request: Request) -> Response:
        if not self.auth.client_ok(request.form.get("client_id"),
                                   request.form.get("client_secret")):
            return json_response({"error": "invalid_client"}, 401)
        with self.lock:
            self.revoked.add(request.form.get("token", ""))
        return json_response({})

    def _revoke(self, request: Request) -> Response:
        body = request.get_json(force=True) or {}
        with self.lock:
            self.revoked.add(str(body["token"]))
        return json_response({"ok": True})

    def counts(self) -> Counter[str]:
        """How many times each marker (chat33 post id) was posted."""
        with self.lock:
            return Counter(p["marker"] for p in self.posts)

    def state(self) -> dict[str, Any]:
        with self.lock:
            counts = Counter(p["marker"] for p in self.posts)
            return {
                "posts": list(self.posts),
                "count": len(self.posts),
                "duplicates": sorted(m for m, n in counts.items() if n > 1),
                "deleted": list(self.deleted),
                "refreshes": self.refreshes,
            }

    # --- the platform ---------------------------------------------------------------

    def _pause(self) -> None:
        if self.delay_s:
            time.sleep(self.delay_s)

    def _auth(self, request: Request) -> Response | None:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not token:
            return json_response({"error": "unauthorized", "message": "no token"}, 401)
        with self.lock:
            revoked = token in self.revoked
        if revoked:
            return json_response({"error": "token_expired",
                                  "message": "the access token has expired"}, 401)
        return None

    def _create(self, request: Request) -> Response:
        self._pause()
        denied = self._auth(request)
        if denied is not None:
            return denied
        body = request.get_json(force=True) or {}
        marker = str(body.get("marker") or "")
        text = body.get("text")
        if text is not None and len(str(text)) > EchoPlatform.limits.caption_length:
            return json_response({"error": "invalid", "message": "The text is too long."}, 400)
        with self.lock:
            post_id = f"e{next(self._ids)}"
            record = {"id": post_id, "url": f"https://echo.example/p/{post_id}",
                      "marker": marker, "text": text, "replyTo": body.get("replyTo"),
                      "at": time.time()}
            self.posts.append(record)
        return json_response({"id": post_id, "url": record["url"]}, 201)

    def _find(self, request: Request) -> Response:
        self._pause()
        denied = self._auth(request)
        if denied is not None:
            return denied
        marker = request.args.get("marker", "")
        with self.lock:
            found = [{"id": p["id"], "url": p["url"], "marker": p["marker"]}
                     for p in self.posts if p["marker"] == marker]
        return json_response({"data": found})

    def _delete(self, request: Request, post_id: str) -> Response:
        denied = self._auth(request)
        if denied is not None:
            return denied
        with self.lock:
            if not any(p["id"] == post_id for p in self.posts):
                return json_response({"error": "not_found", "message": "No such post."}, 404)
            self.deleted.append(post_id)
        return Response(status=204)

    def _token(self, request: Request) -> Response:
        if request.form.get("grant_type") == "authorization_code":
            return self._code_grant(request)
        body = request.get_json(force=True) or {}
        refresh = str(body.get("refresh_token") or "")
        with self.lock:
            if not refresh or refresh in self.used_refresh or refresh.startswith("revoked"):
                return json_response({"error": "invalid_grant",
                                      "message": "The refresh token is invalid."}, 400)
            self.used_refresh.add(refresh)
            self.refreshes += 1
            n = self.refreshes
        return json_response({"access_token": f"echo-at-{n}", "refresh_token": f"echo-rt-{n}",
                              "expires_in": 3600})


class EchoPlatform(PlatformBase):
    """Posts text (and thread replies) to the echo sandbox; resumable and confirmable."""

    name = "echo"
    display_name = "Echo"
    capabilities = Capabilities(threads=True, delete=True)
    limits: ClassVar[Limits] = Limits(caption_length=500, max_images=4)
    default_api_base = "http://echo.invalid"

    def __init__(self, settings: Any = None) -> None:
        super().__init__(settings)
        cap = self.settings.platform_value(self.name, "DAILY_CAP")
        if cap:
            # an instance attribute: one process may run echo with a cap, another without
            self.limits = Limits(caption_length=500, max_images=4,  # type: ignore[misc]
                                 daily_cap=int(cap))
        # shared limits, "UNITS/SECONDS": CHAT33_ECHO_APP_LIMIT (posts for the whole app),
        # CHAT33_ECHO_ACCOUNT_LIMIT (posts per channel)
        declared = []
        for per in ("app", "account"):
            spec = self.settings.platform_value(self.name, f"{per.upper()}_LIMIT")
            if spec:
                units, seconds = spec.split("/")
                declared.append(RateLimit(f"posts-per-{per}", per=per, units=int(units),
                                          window=timedelta(seconds=float(seconds)),
                                          description="posts"))
        if declared:
            self.rate_limits = tuple(declared)  # type: ignore[misc]

    # --- publishing -----------------------------------------------------------------

    def publish(self, ctx: PublishContext) -> PublishResult:
        state = ctx.checkpoints.load()
        posted: list[dict[str, Any]] = list(state.get("posted", []))
        for index in range(len(posted), len(ctx.items)):
            item = ctx.items[index]
            if state.get("sending") == index:
                # the last run sent this item and may have died before the answer: look first
                found = self._lookup(ctx, item.post_id)
                if found is not None:
                    posted.append(found)
                    state = {"posted": posted}
                    ctx.checkpoints.save(state)
                    continue
            state = {"posted": posted, "sending": index}
            ctx.checkpoints.save(state)
            reply_to = posted[-1]["id"] if posted else None
            answer = self._call(ctx, "POST", "/v1/posts", creating=True, posted=posted,
                                json={"marker": item.post_id, "text": item.text,
                                      "replyTo": reply_to})
            # no save after the answer: the next item's "sending" save records it, and a
            # run that dies first finds it by its marker (one durable write per item)
            posted.append({"id": answer["id"], "url": answer["url"], "post_id": item.post_id})
            ctx.log("step", f"item {index + 1} of {len(ctx.items)} posted as {answer['id']}",
                    externalId=answer["id"])
        return PublishResult(receipts=[_receipt(p) for p in posted])

    def confirm(self, ctx: PublishContext) -> PublishResult | None:
        receipts = []
        for item in ctx.items:
            found = self._lookup(ctx, item.post_id)
            if found is None:
                return None
            receipts.append(_receipt(found))
        return PublishResult(receipts=receipts)

    def _lookup(self, ctx: PublishContext, marker: str) -> dict[str, Any] | None:
        answer = self._call(ctx, "GET", "/v1/posts", params={"marker": marker})
        data = answer.get("data") or []
        if not data:
            return None
        return {"id": data[0]["id"], "url": data[0]["url"], "post_id": marker}

    def _call(self, ctx: PublishContext, method: str, path: str, *, creating: bool = False,
              posted: list[dict[str, Any]] | None = None, **kw: Any) -> dict[str, Any]:
        done = [_receipt(p) for p in posted or []]
        headers = {"Authorization": f"Bearer {ctx.credentials.access_token}"}
        with reaching("echo", f"{method} {path}", creates=creating, posted=done):
            response = ctx.http.request(method, self.api_base() + path, headers=headers, **kw)
        return _answer(response, creating=creating, posted=done)

    def delete(self, ctx: DeleteContext) -> None:
        for external_id in ctx.external_ids:
            response = ctx.http.delete(
                f"{self.api_base()}/v1/posts/{external_id}",
                headers={"Authorization": f"Bearer {ctx.credentials.access_token}"})
            if response.status_code != 204:
                _answer(response, creating=False, posted=[])

    # --- credentials ----------------------------------------------------------------

    def refresh_credentials(self, credentials: Credentials, ctx: RefreshContext) -> Credentials:
        if not credentials.refresh_token:
            raise ReconnectRequired("Echo has no refresh token: reconnect the account")
        url = self.settings.token_url(self.name, self.api_base() + "/oauth/token")
        response = send(ctx.http, "POST", url, platform="echo", what="token refresh",
                        creates=False, json={"grant_type": "refresh_token",
                                             "refresh_token": credentials.refresh_token})
        if response.status_code == 400:
            raise ReconnectRequired("Echo refused the refresh token: reconnect the account")
        body = _answer(response, creating=False, posted=[])
        now = utcnow()
        return Credentials(access_token=body["access_token"],
                           refresh_token=body.get("refresh_token") or credentials.refresh_token,
                           expires_at=now + timedelta(seconds=int(body["expires_in"])),
                           issued_at=now)

    # --- connecting by OAuth ----------------------------------------------------------

    def authorization_url(self, request: AuthorizationRequest) -> str:
        query = {"response_type": "code", "client_id": request.client.client_id,
                 "redirect_uri": request.client.redirect_uri, "state": request.state,
                 "scope": "post", "code_challenge": request.code_challenge,
                 "code_challenge_method": "S256"}
        return f"{self.api_base()}/oauth/authorize?{urlencode(query)}"

    def exchange_code(self, code: str, request: AuthorizationRequest,
                      ctx: OAuthContext) -> Grant:
        client = request.client
        response = send(ctx.http, "POST", self.settings.token_url(
            self.name, self.api_base() + "/oauth/token"), platform="echo",
            what="code exchange", creates=False, data={
                "grant_type": "authorization_code", "code": code,
                "redirect_uri": client.redirect_uri, "code_verifier": request.code_verifier,
                "client_id": client.client_id, "client_secret": client.client_secret})
        body = response.json() if response.headers.get("content-type", "").startswith(
            "application/json") else {}
        if response.status_code != 200 or not body.get("access_token"):
            raise OAuthError(str(body.get("error") or "exchange_failed"),
                             f"Echo refused the code: {body.get('error_description', '')}")
        now = utcnow()
        return Grant(credentials=Credentials(
            access_token=body["access_token"], refresh_token=body.get("refresh_token"),
            expires_at=now + timedelta(seconds=int(body["expires_in"])), issued_at=now))

    def list_targets(self, grant: Grant, ctx: OAuthContext) -> list[Target]:
        response = send(ctx.http, "GET", self.api_base() + "/v1/me/channels",
                        platform="echo", what="channels", creates=False,
                        headers={"Authorization": f"Bearer {grant.credentials.access_token}"})
        body = _answer(response, creating=False, posted=[])
        return [Target(external_id=c["id"], name=c["name"], username=c["handle"])
                for c in body["data"]]

    def revoke(self, credentials: Credentials, ctx: OAuthContext) -> None:
        response = send(ctx.http, "POST", self.api_base() + "/oauth/revoke",
                        platform="echo", what="revoke", creates=False, data={
                            "token": credentials.access_token,
                            "client_id": ctx.client.client_id,
                            "client_secret": ctx.client.client_secret})
        if response.status_code != 200:
            raise OAuthError("revoke_failed", f"Echo answered {response.status_code}")

    def sandbox(self) -> EchoSandbox:
        return EchoSandbox()


def _receipt(p: dict[str, Any]) -> Receipt:
    return Receipt(external_id=p["id"], external_url=p.get("url"), post_id=p.get("post_id"))


def _answer(response: httpx.Response, *, creating: bool, posted: list[Receipt]
            ) -> dict[str, Any]:
    """The JSON body of a 2xx answer; every other status as the worker's error class."""
    status = response.status_code
    if 200 <= status < 300:
        return response.json() if response.content else {}
    try:
        body = response.json()
    except ValueError:
        body = {}
    message = str(body.get("message") or body.get("error") or f"HTTP {status}")
    code = str(body.get("error") or status)
    request = response.request
    exc = httpx.HTTPStatusError(message, request=request, response=response)
    if status == 401:
        raise CredentialsExpired(message, platform_code=code, posted=posted) from exc
    if status == 403:
        raise ReconnectRequired(f"Echo revoked access: {message}; reconnect the account",
                                platform_code=code, posted=posted) from exc
    if status == 429:
        if code == "quota":
            retry_at = body.get("retryAt")
            when = (datetime.fromisoformat(retry_at) if retry_at
                    else datetime.now(UTC) + timedelta(hours=1))
            raise QuotaExceeded(message, retry_at=when, platform_code=code,
                                posted=posted) from exc
        after = response.headers.get("Retry-After")
        raise TransientError(message, retry_after=float(after) if after else None,
                             platform_code=code, posted=posted) from exc
    if status >= 500:
        if creating:
            raise UnknownOutcome(f"echo answered {status} to a creating request: {message}",
                                 platform_code=code, posted=posted) from exc
        raise TransientError(message, platform_code=code, posted=posted) from exc
    raise PermanentError(message, platform_code=code, posted=posted) from exc


class InstantPlatform(PlatformBase):
    """Publishes at once, in process: each item's external id is made from chat33's post
    id, so publishing a post again gives the same receipt, and ``confirm`` always finds
    it (the platform is idempotent by construction)."""

    name = "instant"
    display_name = "Instant"
    capabilities = Capabilities(threads=True)
    limits: ClassVar[Limits] = Limits(caption_length=500, max_images=4)

    def publish(self, ctx: PublishContext) -> PublishResult:
        return PublishResult(receipts=[
            Receipt(external_id="instant-" + item.post_id,
                    external_url="https://instant.example/p/" + item.post_id,
                    post_id=item.post_id) for item in ctx.items])

    def confirm(self, ctx: PublishContext) -> PublishResult | None:
        return self.publish(ctx)


@hookimpl
def chat33_register_platforms(register: Callable[[type[PlatformBase]], None]) -> None:
    register(EchoPlatform)
    register(InstantPlatform)
