"""App-password sessions (platforms-more.md §1.2).

An account is added with its app password as the token (DESIGN.md, "Adding accounts of
the wave-1 platforms by hand"). The plugin turns it into a session itself and keeps the
session in the account's credentials, so the core's refresh machinery stores and
serializes it like any OAuth token:

==================  =====================================================================
``access_token``    the access JWT (before the first session: the app password itself)
``refresh_token``   the refresh JWT; ``refreshSession`` rotates it, the new one is kept
``expires_at``      the access JWT's ``exp``
``extra``           ``appPassword`` (its presence marks a session), ``did``, ``handle``,
                    ``pds`` (the PDS named in the DID document, where the repo lives)
==================  =====================================================================

``createSession`` is limited (30 per 5 minutes, 300 a day), so it is only used when there
is no session yet or the refresh JWT is refused; otherwise ``refreshSession`` renews it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from chat33_core.errors import CredentialsExpired, PermanentError, ReconnectRequired
from chat33_core.models import Account, Credentials, utcnow

from .xrpc import Xrpc, body_of

CREATE_SESSION = "com.atproto.server.createSession"
REFRESH_SESSION = "com.atproto.server.refreshSession"
#: errors that mean the owner must act (a new app password, an account back online)
ACCOUNT_ERRORS = frozenset({"AccountTakedown", "AccountDeactivated", "AuthFactorTokenRequired"})


def has_session(credentials: Credentials) -> bool:
    return "appPassword" in credentials.extra


def app_password(credentials: Credentials) -> str:
    if has_session(credentials):
        return str(credentials.extra["appPassword"])
    return credentials.access_token


def pds_of(credentials: Credentials, entryway: str) -> str:
    """Where the account's repository lives (the entryway until a session names it)."""
    return str(credentials.extra.get("pds") or entryway).rstrip("/")


def jwt_expiry(token: str) -> datetime | None:
    """The ``exp`` claim of a JWT, read without verifying it (only the server can), or
    None when the token is not a readable JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
        return datetime.fromtimestamp(float(claims["exp"]), UTC)
    except (ValueError, KeyError, TypeError, OverflowError):
        return None


def pds_endpoint(did_doc: Any) -> str | None:
    """The ``#atproto_pds`` service endpoint of a DID document."""
    if not isinstance(did_doc, Mapping):
        return None
    for service in did_doc.get("service") or []:
        if (isinstance(service, Mapping) and str(service.get("id", "")).endswith("#atproto_pds")
                and isinstance(service.get("serviceEndpoint"), str)):
            return str(service["serviceEndpoint"])
    return None


def identifier(account: Account) -> str:
    """What ``createSession`` logs in with: the DID when known (a handle can change)."""
    if account.external_id and account.external_id.startswith("did:"):
        return account.external_id
    if account.username:
        return account.username.lstrip("@")
    raise ReconnectRequired("this Bluesky account has neither a DID (external id) nor a "
                            "handle (username) to log in with")


def _session_credentials(body: Mapping[str, Any], account: Account, password: str,
                         fallback_pds: str) -> Credentials:
    access, refresh, did = body.get("accessJwt"), body.get("refreshJwt"), body.get("did")
    if not (isinstance(access, str) and isinstance(refresh, str) and isinstance(did, str)):
        raise PermanentError("Bluesky answered the session request without tokens",
                             platform_code="bad-response")
    expected = account.external_id
    if expected and expected.startswith("did:") and expected != did:
        raise ReconnectRequired(f"the app password belongs to {did}, not to this account "
                                f"({expected}): give this account's own app password",
                                platform_code="wrong-account")
    return Credentials(
        access_token=access, refresh_token=refresh, expires_at=jwt_expiry(access),
        issued_at=utcnow(),
        extra={"appPassword": password, "did": did, "handle": body.get("handle"),
               "pds": (pds_endpoint(body.get("didDoc")) or fallback_pds).rstrip("/")})


def create(http: httpx.Client, entryway: str, account: Account,
           credentials: Credentials) -> Credentials:
    """``createSession`` with the app password. A refused password or a suspended account
    is :class:`ReconnectRequired`; limits and outages are transient (raised as is)."""
    password = app_password(credentials)
    xrpc = Xrpc(http, entryway)
    try:
        response = xrpc.call("POST", CREATE_SESSION, what="Bluesky login",
                             json={"identifier": identifier(account), "password": password})
    except (CredentialsExpired, PermanentError) as exc:
        raise ReconnectRequired(f"Bluesky refused the app password ({exc.message}); create a "
                                "new app password and update the account",
                                platform_code=exc.platform_code) from exc
    return _session_credentials(body_of(response, "Bluesky login"), account, password,
                                entryway)


def refresh(http: httpx.Client, entryway: str, account: Account,
            credentials: Credentials) -> Credentials:
    """``refreshSession`` with the refresh JWT on the PDS; when that JWT is refused
    (expired, revoked, or already rotated by someone else), a new session from the app
    password. Without a session yet, straight to ``createSession``."""
    if not has_session(credentials) or not credentials.refresh_token:
        return create(http, entryway, account, credentials)
    pds = pds_of(credentials, entryway)
    try:
        response = Xrpc(http, pds, credentials.refresh_token).call(
            "POST", REFRESH_SESSION, what="Bluesky session refresh")
    except (CredentialsExpired, PermanentError) as exc:
        if exc.platform_code in ACCOUNT_ERRORS:
            raise ReconnectRequired(f"Bluesky refused the session: {exc.message}",
                                    platform_code=exc.platform_code) from exc
        return create(http, entryway, account, credentials)
    return _session_credentials(body_of(response, "Bluesky session refresh"), account,
                                app_password(credentials), pds)
