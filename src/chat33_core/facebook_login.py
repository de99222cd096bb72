"""Facebook Login, shared by the Meta plugins that connect through it (Facebook Pages and
Instagram via Facebook Login), and its imitation for their sandboxes (oauth.md §3.3, §4).

The client half (:class:`FacebookLogin`) speaks the protocol for a plugin:

* the versioned dialog ``https://www.facebook.com/{v}/dialog/oauth`` with comma scopes;
* the code exchange, a **GET** of ``https://graph.facebook.com/{v}/oauth/access_token``
  with the secret in the query (``CHAT33_<P>_TOKEN_URL`` replaces that endpoint), then
  ``/me`` and ``/me/permissions``: a required permission the user declined is an
  ``OAuthError("insufficient_scope")`` naming it;
* the long-lived exchange (``grant_type=fb_exchange_token``);
* ``/me/accounts`` with its cursor paging;
* revocation, ``DELETE /{user-id}/permissions`` with the user token.

Every host goes through the plugin's ``platform_url``, so ``CHAT33_<P>_API_BASE`` stands
in for ``www.facebook.com`` and ``graph.facebook.com`` alike. Errors arrive in the Graph
envelope (:mod:`chat33_core.graph`) and leave as :class:`~chat33_core.errors.OAuthError`.

The sandbox half (:class:`FacebookLoginServer`) serves the same paths on a
:class:`~chat33_core.sandbox.SandboxApp`, on top of its
:class:`~chat33_core.sandbox_oauth.AuthorizationServer`, and keeps the tokens it issues
so the sandbox can refuse them (190) after a revocation.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import attrs
from werkzeug.wrappers import Request, Response

from .errors import NotSupported, OAuthError
from .graph import GraphError, GraphFailure
from .models import Credentials, utcnow
from .oauth import (
    AuthorizationRequest,
    Grant,
    OAuthContext,
    lifetime,
    oauth_call,
    require_scopes,
)
from .sandbox import json_response
from .sandbox_oauth import AuthorizationServer, GrantRefused

if TYPE_CHECKING:
    from .platforms import PlatformBase
    from .sandbox import SandboxApp

DIALOG = "https://www.facebook.com/{v}/dialog/oauth"
GRAPH = "https://graph.facebook.com"
#: Meta's long-lived user tokens last about 60 days
LONG_LIVED = timedelta(days=60)
#: Graph codes of a refused code or token exchange (bad, used or mismatched code; dead token)
INVALID_GRANT_CODES = frozenset({100, 190})
#: Graph codes of a refused app (unknown app id, wrong secret)
INVALID_CLIENT_CODES = frozenset({1, 101})


class FacebookLogin:
    """Facebook Login for one plugin (its name, version and display name)."""

    def __init__(self, platform: PlatformBase, version: str) -> None:
        self.platform = platform
        self.version = version
        self.display = platform.display_name or platform.name

    def graph_url(self, path: str) -> str:
        return self.platform.platform_url(f"{GRAPH}/{self.version}/{path.lstrip('/')}")

    def token_url(self) -> str:
        return self.platform.settings.token_url(
            self.platform.name, self.graph_url("oauth/access_token"))

    # --- the flow --------------------------------------------------------------------

    def authorization_url(self, request: AuthorizationRequest, scopes: Sequence[str]) -> str:
        params = {"client_id": request.client.client_id,
                  "redirect_uri": request.client.redirect_uri, "state": request.state,
                  "response_type": "code", "scope": ",".join(scopes)}
        if request.force_consent:
            params["auth_type"] = "rerequest"
        dialog = self.platform.platform_url(DIALOG.format(v=self.version))
        return f"{dialog}?{urlencode(params)}"

    def exchange_code(self, code: str, request: AuthorizationRequest, ctx: OAuthContext,
                      required: Sequence[str]) -> Grant:
        """The code for a short-lived user token, the user's id and the granted
        permissions (a required one missing is refused)."""
        body = self._token(ctx, "the code exchange", {
            "client_id": ctx.client.client_id, "client_secret": ctx.client.client_secret,
            "redirect_uri": ctx.client.redirect_uri, "code": code})
        credentials = _credentials(body)
        me = self.get(ctx, "me", credentials.access_token, "reading the user", fields="id,name")
        granted = self.permissions(ctx, credentials.access_token)
        require_scopes(self.display, granted, required)
        user_id = str(me.get("id") or "")
        if not user_id:
            raise OAuthError("exchange_failed", f"{self.display} did not tell who signed in")
        return Grant(credentials=credentials, scopes=tuple(granted), subject=user_id,
                     extra={"user_name": me.get("name")})

    def long_lived(self, grant: Grant, ctx: OAuthContext) -> Grant:
        body = self._token(ctx, "the long-lived token exchange", {
            "grant_type": "fb_exchange_token", "client_id": ctx.client.client_id,
            "client_secret": ctx.client.client_secret,
            "fb_exchange_token": grant.credentials.access_token})
        credentials = _credentials(body, LONG_LIVED)
        return attrs.evolve(grant, credentials=credentials)

    def permissions(self, ctx: OAuthContext, token: str) -> list[str]:
        body = self.get(ctx, "me/permissions", token, "reading the granted permissions")
        return [str(p.get("permission")) for p in body.get("data") or ()
                if isinstance(p, Mapping) and p.get("status") == "granted"]

    def pages(self, ctx: OAuthContext, token: str, fields: str) -> list[dict[str, Any]]:
        """Every Page of ``/me/accounts``, following ``paging.next``."""
        pages: list[dict[str, Any]] = []
        url: str | None = self.graph_url("me/accounts")
        params: dict[str, str] | None = {"fields": fields, "limit": "100"}
        seen: set[str] = set()
        while url and url not in seen:
            seen.add(url)
            body = self._get_url(ctx, url, token, "listing the Pages", params)
            pages.extend(p for p in body.get("data") or () if isinstance(p, dict))
            paging = body.get("paging")
            url = paging.get("next") if isinstance(paging, Mapping) else None
            params = None  # the next URL carries them
        return pages

    def revoke(self, credentials: Credentials, ctx: OAuthContext) -> None:
        """``DELETE /{user-id}/permissions`` with the user token kept in
        ``credentials.extra`` (``user_id``, ``user_token``)."""
        user_id = credentials.extra.get("user_id")
        token = credentials.extra.get("user_token") or credentials.access_token
        if not user_id:
            raise NotSupported(f"this {self.display} account was not connected by "
                               "Facebook Login: there is no grant to revoke")
        response, body = oauth_call(ctx, "DELETE", self.graph_url(f"{user_id}/permissions"),
                                    platform=self.display, what="the revocation",
                                    headers={"Authorization": f"OAuth {token}"})
        if response.status_code >= 400:
            raise _oauth_error(body, self.display, "the revocation")

    # --- HTTP ------------------------------------------------------------------------

    def get(self, ctx: OAuthContext, path: str, token: str, what: str,
            **params: str) -> dict[str, Any]:
        return self._get_url(ctx, self.graph_url(path), token, what, params or None)

    def _get_url(self, ctx: OAuthContext, url: str, token: str, what: str,
                 params: Mapping[str, str] | None) -> dict[str, Any]:
        response, body = oauth_call(ctx, "GET", url, platform=self.display, what=what,
                                    params=params, headers={"Authorization": f"OAuth {token}"})
        if response.status_code >= 400 or not isinstance(body, dict):
            raise _oauth_error(body, self.display, what)
        return body

    def _token(self, ctx: OAuthContext, what: str, params: Mapping[str, str]) -> dict[str, Any]:
        response, body = oauth_call(ctx, "GET", self.token_url(), platform=self.display,
                                    what=what, params=params)
        if response.status_code >= 400 or not isinstance(body, dict) \
                or not body.get("access_token"):
            raise _oauth_error(body, self.display, what)
        return body


def _credentials(body: Mapping[str, Any], default_life: timedelta | None = None) -> Credentials:
    now = utcnow()
    life = lifetime(body.get("expires_in"), default_life)
    return Credentials(access_token=str(body["access_token"]),
                       expires_at=now + life if life else None, issued_at=now)


def _oauth_error(body: Any, display: str, what: str) -> OAuthError:
    """A Graph envelope (or anything else) as the ``OAuthError`` of a step."""
    error = GraphError.parse(body)
    if error is None:
        return OAuthError("exchange_failed", f"{display} answered {what} outside the protocol")
    if error.code in INVALID_CLIENT_CODES:
        kind = "invalid_client"
    elif error.code in INVALID_GRANT_CODES:
        kind = "invalid_grant"
    else:
        kind = "exchange_failed"
    return OAuthError(kind, f"{display} refused {what}: {error.message or error.platform_code}")


# --- the sandbox half -----------------------------------------------------------------

SANDBOX_USER = {"id": "10150000000000001", "name": "Sandbox User"}


@attrs.define
class _Issued:
    """A token the sandbox issued: whose it is, and for which Page if a Page token."""

    user_id: str
    scopes: tuple[str, ...]
    requested: tuple[str, ...]
    page_id: str | None = None
    long_lived: bool = False


class FacebookLoginServer:
    """Facebook Login on a Meta sandbox: ``/{v}/dialog/oauth`` (``scope`` or
    ``config_id``; success redirects with ``#_=_``, and with ``granted_scopes`` and
    ``denied_scopes`` when ``return_scopes=true``), ``/{v}/oauth/access_token`` (GET or
    POST: the code, or ``fb_exchange_token``), ``/{v}/me``, ``/{v}/me/permissions``
    (granted and declined), ``/{v}/me/accounts`` (Page tokens, ``tasks``, ``picture``,
    cursor paging) and ``DELETE /{v}/{user-id}/permissions``, after which every token of
    the grant, Page tokens included, is refused with 190.

    The Pages are data: ``pages`` (each ``{"id", "name", "tasks", "picture"?,
    "instagram"?}``), replaced by ``POST /_sandbox/pages {"pages": [...], "pageSize": n}``.
    The host sandbox calls :meth:`check` for the token of each of its API calls."""

    def __init__(self, app: SandboxApp, auth: AuthorizationServer,
                 pages: Sequence[Mapping[str, Any]], scopes: Sequence[str], *,
                 page_size: int = 25,
                 other_me: Callable[[Request, str], Response] | None = None) -> None:
        self.auth = auth
        #: the permissions the app may ask for (a ``config_id`` stands for all of them)
        self.scopes = tuple(scopes)
        self.default_pages = [dict(p) for p in pages]
        self.default_page_size = page_size
        #: answers ``/{v}/me`` for tokens this server did not issue (Instagram Login)
        self.other_me = other_me
        self.lock = app.lock
        self.reset()
        for rule, handler, methods in (
                ("/<v>/dialog/oauth", self._dialog, ["GET"]),
                ("/<v>/oauth/access_token", self._access_token, ["GET", "POST"]),
                ("/<v>/me", self._me, ["GET"]),
                ("/<v>/me/permissions", self._permissions, ["GET"]),
                ("/<v>/me/accounts", self._accounts, ["GET"]),
                ("/<v>/<user_id>/permissions", self._revoke, ["DELETE"]),
                ("/_sandbox/pages", self._set_pages, ["POST"])):
            app.route(rule, _graph_answers(handler), methods=methods)

    def reset(self) -> None:
        with self.lock:
            self.pages = [dict(p) for p in self.default_pages]
            self.page_size = self.default_page_size
            self.tokens: dict[str, _Issued] = {}
            self.revoked: set[str] = set()
            self.revocations: list[str] = []

    @staticmethod
    def public(path: str) -> bool:
        """Paths a browser or the app reaches without an access token."""
        parts = path.strip("/").split("/")
        return parts[1:] in (["dialog", "oauth"], ["oauth", "access_token"])

    def check(self, token: str) -> None:
        """Refuse a token of a revoked grant (the host sandbox calls this)."""
        with self.lock:
            if token in self.revoked:
                raise GraphFailure(190, "Error validating access token: The user has not "
                                   "authorized application.", subcode=458)

    def issued(self, token: str) -> _Issued | None:
        with self.lock:
            return self.tokens.get(token)

    def instagram_account(self, ig_id: str) -> dict[str, Any] | None:
        with self.lock:
            for page in self.pages:
                account = page.get("instagram")
                if isinstance(account, Mapping) and str(account.get("id")) == ig_id:
                    return dict(account)
        return None

    # --- handlers ----------------------------------------------------------------------

    def _dialog(self, request: Request, v: str) -> Response:
        requested = self.auth.split_scopes(request.args.get("scope"))
        scopes = None
        if not requested and request.args.get("config_id"):
            scopes = requested = self.scopes

        def returned_scopes(granted: tuple[str, ...]) -> dict[str, str]:
            if request.args.get("return_scopes") != "true":
                return {}
            return {"granted_scopes": ",".join(granted),
                    "denied_scopes": ",".join(s for s in requested if s not in granted)}

        return self.auth.authorize(request, subject=SANDBOX_USER["id"], fragment="#_=_",
                                   allowed_scopes=self.scopes, scopes=scopes,
                                   extra={"requested": requested, "flow": "facebook"},
                                   redirect_extra=returned_scopes)

    def _access_token(self, request: Request, v: str) -> Response:
        values = request.values
        if values.get("grant_type") == "fb_exchange_token":
            return self._exchange(values)
        try:
            consent = self.auth.redeem(values.get("code"), client_id=values.get("client_id"),
                                       client_secret=values.get("client_secret") or "",
                                       redirect_uri=values.get("redirect_uri"))
        except GrantRefused as refused:
            if refused.error == "invalid_client":
                raise GraphFailure(101, "Error validating application. Invalid application "
                                   "ID or client secret.") from None
            raise GraphFailure(100, f"Error validating verification code: "
                               f"{refused.description}", subcode=36008) from None
        if consent.extra.get("flow") != "facebook":
            raise GraphFailure(100, "Error validating verification code: the code was not "
                               "issued by the Facebook Login dialog", subcode=36008)
        token = self._issue(_Issued(consent.subject, consent.scopes,
                                    tuple(consent.extra.get("requested") or consent.scopes)),
                            "EAAU")
        return json_response({"access_token": token, "token_type": "bearer",
                              "expires_in": 5400})

    def _exchange(self, values: Mapping[str, str]) -> Response:
        if not self.auth.client_ok(values.get("client_id"), values.get("client_secret") or ""):
            raise GraphFailure(101, "Error validating application. Invalid application ID or "
                               "client secret.")
        old = values.get("fb_exchange_token") or ""
        issued = self._user(old)
        token = self._issue(attrs.evolve(issued, long_lived=True), "EAAL")
        return json_response({"access_token": token, "token_type": "bearer",
                              "expires_in": int(LONG_LIVED.total_seconds())})

    def _me(self, request: Request, v: str) -> Response:
        token = _token_of(request)
        with self.lock:
            mine = token in self.tokens or token in self.revoked
        if not mine and self.other_me is not None:
            return self.other_me(request, v)
        self._user(token)
        return json_response(dict(SANDBOX_USER))

    def _permissions(self, request: Request, v: str) -> Response:
        issued = self._user(_token_of(request))
        data = [{"permission": s, "status": "granted"} for s in issued.scopes]
        data += [{"permission": s, "status": "declined"} for s in issued.requested
                 if s not in issued.scopes]
        return json_response({"data": data})

    def _accounts(self, request: Request, v: str) -> Response:
        user_token = _token_of(request)
        issued = self._user(user_token)
        fields = set((request.args.get("fields") or "id,name").split(","))
        try:
            start = int(request.args.get("after") or 0)
            limit = int(request.args.get("limit") or 25)
        except ValueError:
            raise GraphFailure(100, "(#100) after and limit must be numbers") from None
        with self.lock:
            size = max(1, min(limit, int(self.page_size)))
            chosen = self.pages[start:start + size]
            more = start + size < len(self.pages)
        data = []
        for page in chosen:
            token = self._issue(attrs.evolve(issued, page_id=str(page["id"])), "EAAP")
            row = {"id": str(page["id"]), "name": page["name"], "access_token": token,
                   "tasks": list(page.get("tasks") or ()),
                   "picture": {"data": {"url": page.get("picture")
                                        or f"https://scontent.example/{page['id']}.jpg"}}}
            if page.get("instagram"):
                row["instagram_business_account"] = {"id": str(page["instagram"]["id"])}
            data.append({k: val for k, val in row.items()
                         if k in fields or k == "id" or (k == "picture"
                                                        and any(f.startswith("picture")
                                                                for f in fields))})
        body: dict[str, Any] = {"data": data, "paging": {"cursors": {
            "before": str(start), "after": str(start + len(chosen))}}}
        if more:
            query = {k: val for k, val in request.args.items() if k != "after"}
            query["after"] = str(start + len(chosen))
            body["paging"]["next"] = f"{request.base_url}?{urlencode(query)}"
        return json_response(body)

    def _revoke(self, request: Request, v: str, user_id: str) -> Response:
        token = _token_of(request)
        issued = self._user(token)
        if issued.user_id != user_id:
            raise GraphFailure(200, "(#200) Permissions error: the token is not this user's")
        with self.lock:
            for other, info in self.tokens.items():
                if info.user_id == user_id:
                    self.revoked.add(other)
            for other in self.revoked:
                self.tokens.pop(other, None)
            self.revocations.append(user_id)
        return json_response({"success": True})

    def _set_pages(self, request: Request) -> Response:
        body = request.get_json(force=True, silent=True) or {}
        with self.lock:
            if "pages" in body:
                self.pages = [dict(p) for p in body["pages"]]
            if "pageSize" in body:
                self.page_size = int(body["pageSize"])
            return json_response({"pages": self.pages, "pageSize": self.page_size})

    # --- tokens ------------------------------------------------------------------------

    def _issue(self, info: _Issued, prefix: str) -> str:
        token = prefix + secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[token] = info
        return token

    def _user(self, token: str) -> _Issued:
        """The grant behind a user token this server issued, or the Graph refusal."""
        if not token:
            raise GraphFailure(2500, "An active access token must be used to query "
                               "information about the current user.")
        self.check(token)
        issued = self.issued(token)
        if issued is None or issued.page_id is not None:
            raise GraphFailure(190, "Invalid OAuth access token - Cannot parse access token")
        return issued


def _token_of(request: Request) -> str:
    auth = request.headers.get("Authorization", "")
    if " " in auth:
        return auth.split(" ", 1)[1].strip()
    return request.values.get("access_token") or ""


def _graph_answers(handler: Callable[..., Response]) -> Callable[..., Response]:
    """Answer a :class:`GraphFailure` with its envelope, whatever the host's dispatch."""

    def answer(request: Request, **kwargs: Any) -> Response:
        try:
            return handler(request, **kwargs)
        except GraphFailure as failure:
            return failure.response()

    answer.__name__ = handler.__name__
    return answer


__all__ = ["SANDBOX_USER", "FacebookLogin", "FacebookLoginServer"]
