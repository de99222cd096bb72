"""The authorization-server half of a platform sandbox, shared by every plugin.

A plugin's sandbox serves its platform's authorize and token endpoints at the documented
paths and in the platform's own shapes; what every platform checks the same way lives
here once (``reference/oauth.md`` §9):

* the registered app: ``CHAT33_<P>_CLIENT_ID`` / ``CHAT33_<P>_CLIENT_SECRET`` when set,
  else :data:`SANDBOX_CLIENT_ID` / :data:`SANDBOX_CLIENT_SECRET`;
* registered redirect URIs: any ``http(s)`` URI ending in ``/api/v1/oauth/<p>/callback``
  unless ``POST /_sandbox/oauth {"redirect_uris": [...]}`` lists them; an unknown client
  or redirect URI gets an error page, never a redirect;
* codes: random, single use, short-lived, bound to the client, the exact redirect URI,
  the scopes and the PKCE challenge (S256 in base64url, or hex for TikTok desktop, or
  plain); a reused, expired or mismatched code is ``invalid_grant``;
* ``state`` echoed byte for byte, on denial too;
* switches under ``POST /_sandbox/oauth``: ``deny`` (the user clicks Deny),
  ``granted_scopes`` (a partial grant), ``code_lifetime`` (seconds),
  ``refresh_tokens: false`` (code grants come without a refresh token, as Google's do
  without ``prompt=consent`` once the user consented; the sandboxes of platforms that
  send one, YouTube, X and TikTok, read ``AuthorizationServer.refresh_tokens``).

Usage in a sandbox::

    self.auth = AuthorizationServer("x", self, pkce="required")  # and self.auth.reset() in reset()
    ...
    def authorize(self, request):
        return self.auth.authorize(request, subject=DEFAULT_USER["id"])
    def token(self, request):
        try:
            consent = self.auth.redeem(form["code"], client_id=..., redirect_uri=...,
                                       code_verifier=form.get("code_verifier"))
        except GrantRefused as refused:
            return json_response(refused.body(), 400)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import os
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlencode

import attrs
from werkzeug.wrappers import Request, Response

from .sandbox import json_response

if TYPE_CHECKING:
    from .sandbox import SandboxApp

SANDBOX_CLIENT_ID = "chat33-sandbox-client"
SANDBOX_CLIENT_SECRET = "chat33-sandbox-secret"

Pkce = Literal["required", "optional", "ignored"]
RedirectExtra = Mapping[str, str] | Callable[[tuple[str, ...]], Mapping[str, str]]


class GrantRefused(Exception):
    """The token endpoint refuses: ``error`` is the RFC 6749 code."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


@attrs.define
class Consent:
    """What the user agreed to; a code stands for it until redeemed."""

    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    subject: str
    code_challenge: str | None
    challenge_method: str | None
    expires_at: float
    extra: dict[str, Any] = attrs.Factory(dict)


def _challenge(verifier: str, method: str | None, encoding: str) -> str:
    if method in (None, "", "plain"):
        return verifier
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    if encoding == "hex":
        return digest.hex()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class AuthorizationServer:
    """Codes, PKCE and the registered app of one platform's sandbox."""

    def __init__(self, platform: str, app: SandboxApp, *, pkce: Pkce = "optional",
                 scope_separator: str = " ", challenge_encoding: str = "base64url",
                 code_lifetime: float = 600.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.platform = platform
        self.pkce = pkce
        self.scope_separator = scope_separator
        self.challenge_encoding = challenge_encoding
        self.default_code_lifetime = code_lifetime
        self.clock = clock
        self.lock = app.lock
        env = os.environ
        self.client_id = env.get(f"CHAT33_{platform.upper()}_CLIENT_ID") or SANDBOX_CLIENT_ID
        self.client_secret = (env.get(f"CHAT33_{platform.upper()}_CLIENT_SECRET")
                              or SANDBOX_CLIENT_SECRET)
        self.reset()
        app.route("/_sandbox/oauth", self._configure, methods=["POST"])

    def reset(self) -> None:
        with self.lock:
            self.codes: dict[str, Consent] = {}
            self.deny = False
            self.granted_scopes: list[str] | None = None
            self.redirect_uris: list[str] | None = None
            self.code_lifetime = self.default_code_lifetime
            self.refresh_tokens = True
            #: every consent given, for tests: (subject, scopes)
            self.consents: list[tuple[str, tuple[str, ...]]] = []

    def _configure(self, request: Request) -> Response:
        body = request.get_json(force=True, silent=True) or {}
        known = {"deny", "granted_scopes", "redirect_uris", "code_lifetime",
                 "refresh_tokens"}
        unknown = sorted(set(body) - known)
        if unknown:
            return json_response({"error": f"unknown option(s): {', '.join(unknown)}",
                                  "options": sorted(known)}, 400)
        with self.lock:
            for key, value in body.items():
                setattr(self, key, value)
        return json_response({k: getattr(self, k) for k in sorted(known)})

    # --- the registered app ------------------------------------------------------

    def client_ok(self, client_id: str | None, client_secret: str | None = None) -> bool:
        if not client_id or not hmac.compare_digest(client_id, self.client_id):
            return False
        return client_secret is None or hmac.compare_digest(client_secret, self.client_secret)

    def redirect_ok(self, uri: str | None) -> bool:
        if not uri:
            return False
        if self.redirect_uris is not None:
            return uri in self.redirect_uris
        return (uri.startswith(("http://", "https://"))
                and uri.split("?")[0].endswith(f"/api/v1/oauth/{self.platform}/callback"))

    def split_scopes(self, raw: str | None, separators: str = ", ") -> tuple[str, ...]:
        text = raw or ""
        for sep in separators:
            text = text.replace(sep, " ")
        return tuple(s for s in text.split(" ") if s)

    # --- the authorize endpoint --------------------------------------------------

    def authorize(self, request: Request, *, subject: str, client_param: str = "client_id",
                  allowed_scopes: Sequence[str] | None = None, fragment: str = "",
                  extra: Mapping[str, Any] | None = None,
                  redirect_extra: RedirectExtra | None = None,
                  scopes: Sequence[str] | None = None) -> Response:
        """Check an authorize request and consent at once (or deny, when switched):
        redirect to the registered URI with ``code`` and ``state``, or ``error``.
        ``scopes`` replaces the request's ``scope`` (a Meta ``config_id`` names them);
        ``redirect_extra`` adds parameters to the success redirect, or is a function of
        the granted scopes that gives them (Facebook's ``granted_scopes``)."""
        args = request.args
        client_id = args.get(client_param)
        redirect_uri = args.get("redirect_uri")
        if not self.client_ok(client_id):
            return error_page(f"Unknown {client_param}: this app is not registered.")
        if not self.redirect_ok(redirect_uri):
            return error_page("redirect_uri does not match a URI registered for this app.")
        assert client_id is not None and redirect_uri is not None
        state = args.get("state")
        scopes = tuple(scopes) if scopes is not None else self.split_scopes(args.get("scope"))

        def back(**params: str) -> Response:
            if state is not None:
                params["state"] = state
            sep = "&" if "?" in redirect_uri else "?"
            return Response(status=302, headers={
                "Location": f"{redirect_uri}{sep}{urlencode(params)}{fragment}"})

        if args.get("response_type") != "code":
            return back(error="unsupported_response_type",
                        error_description="response_type must be code")
        if allowed_scopes is not None:
            unknown = [s for s in scopes if s not in allowed_scopes]
            if unknown:
                return back(error="invalid_scope",
                            error_description=f"unknown scope(s): {', '.join(unknown)}")
        challenge = args.get("code_challenge") or None
        method = args.get("code_challenge_method") or None
        if self.pkce == "ignored":
            challenge = method = None
        elif challenge is None and self.pkce == "required":
            return back(error="invalid_request", error_description="code_challenge is required")
        elif challenge is not None and method not in (None, "plain", "S256"):
            return back(error="invalid_request",
                        error_description="code_challenge_method must be S256 or plain")
        with self.lock:
            if self.deny:
                return back(error="access_denied", error_reason="user_denied",
                            error_description="The user denied the request.")
            granted = (tuple(s for s in scopes if s in self.granted_scopes)
                       if self.granted_scopes is not None else scopes)
            code = secrets.token_urlsafe(24)
            self.codes[code] = Consent(
                client_id=client_id, redirect_uri=redirect_uri, scopes=granted,
                subject=subject, code_challenge=challenge,
                challenge_method=(method or "plain") if challenge else None,
                expires_at=self.clock() + float(self.code_lifetime), extra=dict(extra or {}))
            self.consents.append((subject, granted))
        extras = redirect_extra(granted) if callable(redirect_extra) else redirect_extra
        return back(code=code, **dict(extras or {}))

    # --- the token endpoint ------------------------------------------------------

    def redeem(self, code: str | None, *, client_id: str | None, redirect_uri: str | None,
               code_verifier: str | None = None, client_secret: str | None = None) -> Consent:
        """Take a code back, once. Raises :class:`GrantRefused` as the platform would."""
        if not self.client_ok(client_id, client_secret):
            raise GrantRefused("invalid_client", "Client authentication failed.")
        with self.lock:
            consent = self.codes.pop(code or "", None)
        if consent is None:
            raise GrantRefused("invalid_grant", "The authorization code is invalid or was "
                                                "already used.")
        if consent.expires_at < self.clock():
            raise GrantRefused("invalid_grant", "The authorization code has expired.")
        if consent.client_id != client_id:
            raise GrantRefused("invalid_grant", "The code was issued to another client.")
        if consent.redirect_uri != redirect_uri:
            raise GrantRefused("invalid_grant", "redirect_uri does not match the one "
                                                "used in the authorization request.")
        if consent.code_challenge is not None:
            if not code_verifier:
                raise GrantRefused("invalid_grant", "code_verifier is required.")
            expected = _challenge(code_verifier, consent.challenge_method,
                                  self.challenge_encoding)
            if not hmac.compare_digest(expected, consent.code_challenge):
                raise GrantRefused("invalid_grant", "code_verifier does not match the "
                                                    "code_challenge.")
        return consent


    def redeem_form(self, form: Mapping[str, str], *, client_param: str = "client_id",
                    client_id: str | None = None, client_secret: str | None = None
                    ) -> Consent:
        """:meth:`redeem` with the fields of a token request's form: ``code``,
        ``redirect_uri``, ``code_verifier`` and the client's credentials in the body
        (``client_param`` and ``client_secret``) unless given (HTTP Basic)."""
        return self.redeem(form.get("code"), redirect_uri=form.get("redirect_uri"),
                           code_verifier=form.get("code_verifier"),
                           client_id=client_id if client_id is not None
                           else form.get(client_param),
                           client_secret=client_secret if client_id is not None
                           else form.get("client_secret"))


def error_page(message: str, status: int = 400) -> Response:
    """What an authorization server shows instead of redirecting (RFC 6749 §4.1.2.1)."""
    body = (f"<!doctype html><title>Authorization error</title>"
            f"<h1>Authorization error</h1><p>{html.escape(message)}</p>")
    return Response(body, status=status, content_type="text/html; charset=utf-8")


__all__ = [
    "SANDBOX_CLIENT_ID", "SANDBOX_CLIENT_SECRET", "AuthorizationServer", "Consent",
    "GrantRefused", "error_page",
]
