"""Connecting accounts by OAuth 2: the flow the core runs (DESIGN.md "Connecting
accounts"); the plugins speak their platforms' protocols through the hooks of
:class:`~chat33_core.platforms.PlatformBase` (see :mod:`chat33_core.oauth`).

1. :meth:`Connector.start` makes a connection: a fresh ``state`` (256 bits; only its
   sha256 is stored) and PKCE verifier (stored encrypted), bound to the organization,
   the user and, when a browser session started it, that session; it expires in
   :data:`CONNECTION_LIFETIME` and its ``state`` is good once. It answers the platform's
   authorization URL.
2. :meth:`Connector.callback` takes the platform's redirect back: it checks ``state``
   first (unknown, used, expired, another session), then ``error``, then exchanges the
   ``code``, lists the grant's targets and connects them, or waits for a selection.
3. :meth:`Connector.select` connects the chosen targets.

Every refusal ends the connection ``failed`` (or ``expired``) with an error code and a
message, never a 500. Codes, tokens and verifiers never reach a log or an answer.
Connecting a platform identity the organization already has updates that account (new
tokens, ``needs_reconnect`` cleared; a grant without a refresh token keeps the stored one,
:meth:`~chat33_core.models.Credentials.replaced_by`); a reconnect must come back as the
same identity.
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

import attrs
import httpx

from .config import origin_of
from .errors import (
    Chat33Error,
    Conflict,
    Issue,
    NotConfigured,
    NotFound,
    NotSupported,
    OAuthError,
    ValidationError,
)
from .models import Account, AccountRemoval, Connection, new_id, utcnow
from .oauth import (
    AuthorizationRequest,
    Grant,
    OAuthClient,
    OAuthContext,
    Target,
    new_code_verifier,
    new_state,
)
from .security import Vault, digest

if TYPE_CHECKING:
    from .platforms import PlatformBase
    from .service import Chat33, Principal

log = logging.getLogger(__name__)

#: how long a started connection waits for the platform's redirect (and a ``select``
#: connection for the choice)
CONNECTION_LIFETIME = timedelta(minutes=10)
#: how long one request to the platform's token or API endpoints may take
OAUTH_TIMEOUT_S = 30.0
STATUSES = ("pending", "select", "connected", "failed", "expired")


@attrs.frozen
class ConnectionView:
    """A connection as ``GET /accounts/connect/{id}`` answers it."""

    connection: Connection
    accounts: list[Account]
    #: only in the answer that started it
    authorization_url: str | None = None

    @property
    def status(self) -> str:
        return self.connection.status

    @property
    def error(self) -> dict[str, str] | None:
        c = self.connection
        if c.error_code is None:
            return None
        return {"error": c.error_code, "message": c.error_message or c.error_code}


@attrs.frozen
class CallbackOutcome:
    """What the callback did: the connection (None when ``state`` named none that could
    be used), the HTTP answer's status and where to send the browser, if anywhere."""

    status: str
    error: str | None
    message: str
    connection: Connection | None = None
    redirect_url: str | None = None
    #: 200 for an outcome of a known connection, 400 for a refused ``state``
    http_status: int = 200

    def page(self) -> str:
        """The HTML page shown when there is no ``returnUrl`` (no script, no code)."""
        title = {"connected": "Account connected", "select": "Choose the accounts",
                 "failed": "Connection failed", "expired": "Connection expired"}.get(
                     self.status, "Connection refused")
        cid = (f"<p>Connection: <code>{html.escape(self.connection.id)}</code></p>"
               if self.connection else "")
        return (f"<!doctype html><html lang=en><meta charset=utf-8>"
                f"<meta name=referrer content=no-referrer><title>{title}</title>"
                f"<h1>{title}</h1><p>{html.escape(self.message)}</p>{cid}"
                f"<p>You can close this window.</p></html>")


class Connector:
    """The OAuth flow of one :class:`~chat33_core.service.Chat33`."""

    def __init__(self, core: Chat33) -> None:
        self.core = core
        self.store = core.store

    # --- helpers ----------------------------------------------------------------------

    def _platform(self, platform: str) -> PlatformBase:
        if not self.core.host.has_platform(platform):
            known = ", ".join(sorted(self.core.host.platforms)) or "none installed"
            raise ValidationError("invalid platform", details=[
                Issue("platform", f"unknown platform {platform!r} (installed: {known})")])
        plugin: PlatformBase = self.core.host.platform(platform)
        if not plugin.supports_connect:
            raise ValidationError(f"{plugin.display_name or platform} accounts cannot be "
                                  "connected by OAuth", details=[Issue(
                                      "platform", "this platform's plugin does not connect "
                                      "accounts by OAuth; add them with `chat33 accounts "
                                      "add`", code="not_connectable")])
        return plugin

    def client(self, platform: str) -> OAuthClient:
        """The registered app of ``platform``; NotConfigured when its credentials are
        missing."""
        settings = self.core.settings
        client_id, client_secret = settings.client_credentials(platform)
        missing = [f"CHAT33_{platform.upper()}_{n}" for n, v in
                   (("CLIENT_ID", client_id), ("CLIENT_SECRET", client_secret)) if not v]
        if missing:
            raise NotConfigured(f"connecting {platform} accounts needs the platform app's "
                                f"credentials: set {' and '.join(missing)}")
        assert client_id and client_secret
        return OAuthClient(client_id=client_id, client_secret=client_secret,
                           redirect_uri=settings.oauth_redirect_uri(platform))

    def _check_return_url(self, return_url: str | None) -> str | None:
        if return_url is None:
            return None
        allowed = self.core.settings.allowed_return_origins
        origin = origin_of(return_url) if isinstance(return_url, str) else None
        if origin is None or origin not in allowed or "#" in return_url \
                or len(return_url) > 2000 or urlsplit(return_url).username is not None:
            raise ValidationError("returnUrl is not allowed", details=[Issue(
                "returnUrl", "must be an http(s) URL without a fragment on the public "
                f"origin or CHAT33_ALLOWED_RETURN_ORIGINS ({', '.join(allowed)})",
                code="origin_not_allowed")])
        return return_url

    def _context(self, client: OAuthClient, http: httpx.Client) -> OAuthContext:
        return OAuthContext(client=client, http=http, settings=self.core.settings)

    def _accounts(self, connection: Connection) -> list[Account]:
        found = self.store.get_accounts(connection.account_ids, connection.org_id)
        return [found[i] for i in connection.account_ids if i in found]

    # --- starting -----------------------------------------------------------------------

    def start(self, principal: Principal, platform: str, return_url: str | None = None,
              reconnect_account_id: str | None = None) -> ConnectionView:
        """A new connection for ``principal``'s organization, and the URL to send the
        browser to. With ``reconnect_account_id``, the grant must come back as that
        account's platform identity."""
        if reconnect_account_id is not None:
            account = self.store.get_account(reconnect_account_id,
                                             org_id=principal.org_id)
            if not account.is_active:
                raise Conflict(f"account {account.id} was removed; connect it again "
                               "instead")
            platform = account.platform
        plugin = self._platform(platform)
        client = self.client(platform)
        return_url = self._check_return_url(return_url)
        state, verifier = new_state(), new_code_verifier()
        request = AuthorizationRequest(client=client, state=state, code_verifier=verifier,
                                       force_consent=reconnect_account_id is not None)
        url = plugin.authorization_url(request)
        now = utcnow()
        connection = Connection(
            id=new_id("conn"), org_id=principal.org_id, platform=platform, status="pending",
            expires_at=now + CONNECTION_LIFETIME, user_id=principal.user_id,
            return_url=return_url, reconnect_account_id=reconnect_account_id,
            created_at=now)
        binding = principal.csrf_hash if principal.via == "session" else None
        self.store.add_connection(connection, state_hash=digest(state),
                       verifier_enc=self.core.vault.encrypt(verifier),
                       session_binding=binding)
        log.info("connection %s started for %s (org %s%s)", connection.id, platform,
                 principal.org_id, f", reconnecting {reconnect_account_id}"
                 if reconnect_account_id else "")
        return ConnectionView(connection=connection, accounts=[], authorization_url=url)

    # --- reading ------------------------------------------------------------------------

    def get(self, org_id: str, connection_id: str) -> ConnectionView:
        connection = self.store.get_connection(connection_id, org_id)
        if connection.status in ("pending", "select") and connection.expires_at <= utcnow():
            connection = self._finish(connection, "expired", error=(
                "expired", "the connection expired before it was finished; start again"))
        return ConnectionView(connection=connection, accounts=self._accounts(connection))

    def _finish(self, connection: Connection, status: str, *,
                error: tuple[str, str] | None = None, **values: Any) -> Connection:
        changes: dict[str, Any] = {"status": status, **values}
        if error is not None:
            changes.update(error_code=error[0], error_message=error[1][:2000])
        if status != "select":
            changes["targets_enc"] = None  # tokens of targets not chosen are forgotten
        self.store.update_connection(connection.id, **changes)
        changes.pop("targets_enc", None)
        return attrs.evolve(connection, **changes)

    # --- the platform's redirect back -----------------------------------------------

    def callback(self, platform: str, params: Mapping[str, str],
                 session_binding: str | None = None) -> CallbackOutcome:
        """Handle ``GET /oauth/{platform}/callback``. ``params`` is the query string;
        ``session_binding``: the CSRF hash of the browser's session, if it has one."""
        state = params.get("state")
        found = self.store.connection_by_state(digest(state)) if state else None
        if found is None or found[0].platform != platform:
            return CallbackOutcome(
                status="failed", error="invalid_state", http_status=400,
                message="This sign-in link is not valid: its state is missing or unknown. "
                        "Start connecting the account again.")
        connection, secrets = found
        now = utcnow()
        if not self.store.claim_connection(connection.id, now):
            return CallbackOutcome(
                status="failed", error="state_used", http_status=400,
                message="This sign-in link was already used. Start connecting the account "
                        "again.")
        connection = attrs.evolve(connection, used_at=now)
        outcome = self._complete(connection, params, secrets, session_binding)
        log.info("connection %s (%s): %s%s", connection.id, platform, outcome.status,
                 f" ({outcome.error})" if outcome.error else "")
        return outcome

    def _complete(self, connection: Connection, params: Mapping[str, str],
                  secrets: Mapping[str, Any], session_binding: str | None
                  ) -> CallbackOutcome:
        def ended(status: str, error: str, message: str) -> CallbackOutcome:
            done = self._finish(connection, status, error=(error, message))
            return self._outcome(done, message)

        if connection.expires_at <= utcnow():
            return ended("expired", "expired", "the sign-in took longer than "
                         f"{int(CONNECTION_LIFETIME.total_seconds() // 60)} minutes; start "
                         "connecting the account again")
        bound = secrets.get("session_binding")
        if bound is not None and bound != session_binding:
            return ended("failed", "session_mismatch", "this sign-in was started in "
                         "another browser session; start it again from this one")
        if params.get("error"):
            refusal = str(params["error"])[:64]
            said = params.get("error_description") or params.get("error_reason") or ""
            what = ("the user denied access" if refusal == "access_denied"
                    else f"the platform refused the authorization ({refusal})")
            return ended("failed", refusal, what + (f": {said[:300]}" if said else ""))
        code = params.get("code")
        if not code:
            return ended("failed", "invalid_request", "the platform's answer has neither "
                         "a code nor an error")
        try:
            targets, grant = self._grant(connection, code, secrets)
        except OAuthError as exc:
            return ended("failed", exc.error[:64], exc.message)
        if not targets:
            return ended("failed", "no_targets", "the grant gives no account to publish "
                         "as (no Page, channel or professional account)")
        plugin = self.core.host.platform(connection.platform)
        if connection.reconnect_account_id is not None:
            return self._reconnect(connection, targets, grant)
        if len(targets) == 1 and not plugin.oauth_always_select:
            done = self._connect(connection, targets, grant)
            return self._outcome(done, "The account is connected.")
        vault = self.core.vault
        stored = json.dumps([_target_secret(t, grant, vault) for t in targets])
        done = self._finish(connection, "select", targets=[_public(t) for t in targets],
                            targets_enc=stored, expires_at=utcnow() + CONNECTION_LIFETIME)
        return self._outcome(done, "Choose the accounts to connect in the app.")

    def _grant(self, connection: Connection, code: str, secrets: Mapping[str, Any]
               ) -> tuple[list[Target], Grant]:
        """Exchange the code and list the targets; every failure is an OAuthError."""
        plugin = self.core.host.platform(connection.platform)
        name = plugin.display_name or plugin.name
        try:
            client = self.client(connection.platform)
        except NotConfigured as exc:
            raise OAuthError("not_configured", exc.message) from None
        request = AuthorizationRequest(
            client=client, state="", code_verifier=self.core.vault.decrypt(
                secrets["verifier_enc"]),
            force_consent=connection.reconnect_account_id is not None)
        try:
            with httpx.Client(timeout=OAUTH_TIMEOUT_S, follow_redirects=False) as http:
                ctx = self._context(client, http)
                grant = plugin.exchange_code(code, request, ctx)
                grant = plugin.long_lived(grant, ctx)
                targets = list(plugin.list_targets(grant, ctx))
        except OAuthError:
            raise
        except httpx.HTTPError as exc:  # never its text: it may hold the URL and query
            raise OAuthError("exchange_failed", f"{name} could not be reached "
                             f"({type(exc).__name__})") from None
        except Chat33Error as exc:
            raise OAuthError("exchange_failed", f"{name}: {exc.message}") from None
        except Exception as exc:  # a plugin bug: the connection fails, not the request
            log.error("connection %s: the %s plugin failed in the code exchange (%s)",
                      connection.id, plugin.name, type(exc).__name__)
            raise OAuthError("exchange_failed", f"the {name} plugin failed to complete "
                             f"the sign-in ({type(exc).__name__})") from None
        return targets, grant

    def _outcome(self, connection: Connection, message: str) -> CallbackOutcome:
        status = connection.status
        redirect = None
        if connection.return_url:
            sep = "&" if urlsplit(connection.return_url).query else "?"
            redirect = (connection.return_url.rstrip("?&") + sep + urlencode(
                {"connectionId": connection.id, "status": status}))
        if connection.error_message:
            message = connection.error_message
        return CallbackOutcome(status=status, error=connection.error_code, message=message,
                               connection=connection, redirect_url=redirect)

    # --- connecting the targets -----------------------------------------------------

    def _connect(self, connection: Connection, targets: Sequence[Target],
                 grant: Grant | None) -> Connection:
        """Create or update one account per target (one transaction), and end the
        connection ``connected``."""
        vault = self.core.vault
        new: list[tuple[Account, str]] = []
        updated: list[tuple[Account, str]] = []
        for target in targets:
            credentials = target.credentials or (grant.credentials if grant else None)
            if credentials is None:
                raise OAuthError("exchange_failed", f"no credentials for {target.name}")
            existing = self.store.find_account_by_external_id(
                connection.org_id, connection.platform, target.external_id)
            stored = self.core.account_credentials(existing.id) if existing else None
            if stored is not None:  # a grant without a refresh token keeps the stored one
                credentials = stored.replaced_by(credentials)
            enc = vault.encrypt_credentials(credentials)
            if existing is not None:
                updated.append((attrs.evolve(
                    existing, name=target.name or existing.name,
                    username=target.username or existing.username,
                    metadata={**existing.metadata, **dict(target.metadata)}), enc))
            else:
                new.append((Account(
                    id=new_id("chan"), org_id=connection.org_id,
                    platform=connection.platform, name=(target.name or target.username
                                                        or target.external_id)[:200],
                    username=target.username, external_id=target.external_id,
                    metadata=dict(target.metadata)), enc))
        self.store.save_connected_accounts(new, updated)
        ids = [a.id for a, _ in (*updated, *new)]
        return self._finish(connection, "connected", targets=[_public(t) for t in targets],
                            account_ids=ids, error_code=None, error_message=None)

    def _reconnect(self, connection: Connection, targets: Sequence[Target],
                   grant: Grant) -> CallbackOutcome:
        assert connection.reconnect_account_id is not None
        try:
            account = self.store.get_account(connection.reconnect_account_id,
                                             org_id=connection.org_id)
        except NotFound:
            account = None
        if account is None or not account.is_active:
            done = self._finish(connection, "failed", error=(
                "account_removed", "the account was removed while it was reconnected"))
            return self._outcome(done, "")
        same = [t for t in targets if t.external_id == account.external_id]
        if not same:
            ids = ", ".join(t.external_id for t in targets[:5])
            done = self._finish(connection, "failed", error=(
                "account_mismatch", f"the sign-in gave another account ({ids}) than the "
                f"one being reconnected ({account.external_id}); sign in as "
                f"{account.username or account.name} and try again"))
            return self._outcome(done, "")
        done = self._connect(connection, same[:1], grant)
        return self._outcome(done, "The account is reconnected.")

    def select(self, principal: Principal, connection_id: str,
               external_ids: Sequence[str]) -> ConnectionView:
        """Connect the chosen targets of a ``select`` connection."""
        view = self.get(principal.org_id, connection_id)
        connection = view.connection
        if connection.status != "select":
            raise Conflict(f"connection {connection_id} is {connection.status}, not waiting "
                           "for a selection", details=[Issue("status", connection.status)])
        offered = {t["externalId"] for t in connection.targets}
        wanted = list(dict.fromkeys(external_ids))
        unknown = [i for i in wanted if i not in offered]
        if not wanted or unknown:
            raise ValidationError("externalIds must name targets of this connection",
                                  details=[Issue("externalIds", "empty" if not wanted else
                                                 f"not offered: {', '.join(unknown[:10])}")])
        enc = self.store.connection_targets_enc(connection.id)
        if enc is None or not self.store.select_connection_once(connection.id):
            raise Conflict(f"connection {connection_id} was already completed")
        chosen = [_target_of(t, self.core.vault) for t in json.loads(enc)
                  if t["externalId"] in wanted]
        done = self._connect(connection, chosen, None)
        return ConnectionView(connection=done, accounts=self._accounts(done))

    # --- disconnecting ----------------------------------------------------------------

    def revoke(self, account: Account) -> str | None:
        """Give the account's grant back at the platform, where it can; the reason it
        was not, or None when it was."""
        credentials = self.core.account_credentials(account.id)
        if credentials is None:
            return "the account has no credentials"
        if not self.core.host.has_platform(account.platform):
            return "its platform plugin is not installed"
        plugin = self.core.host.platform(account.platform)
        try:
            client = self.client(account.platform)
        except NotConfigured as exc:
            return exc.message
        try:
            with httpx.Client(timeout=OAUTH_TIMEOUT_S, follow_redirects=False) as http:
                plugin.revoke(credentials, self._context(client, http))
        except NotSupported:
            return "the platform has no revocation"
        except OAuthError as exc:
            return f"the platform refused: {exc.error}"
        except Exception as exc:  # revoking is best effort: the tokens are forgotten
            return f"revocation failed ({type(exc).__name__})"
        return None

    def disconnect(self, org_id: str, account_id: str) -> AccountRemoval:
        """Revoke at the platform where it can, forget the tokens, cancel the QUEUED
        posts (with a logged reason); published history stays."""
        account = self.store.get_account(account_id, org_id=org_id)
        if account.is_active:
            why = self.revoke(account)
            if why is None:
                log.info("account %s: access revoked at %s", account.id, account.platform)
            else:
                log.info("account %s: not revoked at %s: %s", account.id, account.platform,
                         why)
        return self.core.remove_account(org_id, account_id)


def _public(target: Target) -> dict[str, Any]:
    return {"externalId": target.external_id, "name": target.name,
            "username": target.username, "pictureUrl": target.picture_url}


def _target_secret(target: Target, grant: Grant, vault: Vault) -> dict[str, Any]:
    credentials = target.credentials or grant.credentials
    return {**_public(target), "metadata": dict(target.metadata),
            "credentials": vault.encrypt_credentials(credentials)}


def _target_of(data: Mapping[str, Any], vault: Vault) -> Target:
    return Target(external_id=data["externalId"], name=data["name"],
                  username=data.get("username"), picture_url=data.get("pictureUrl"),
                  credentials=vault.decrypt_credentials(data["credentials"]),
                  metadata=data.get("metadata") or {})


__all__ = ["CONNECTION_LIFETIME", "CallbackOutcome", "ConnectionView", "Connector"]
