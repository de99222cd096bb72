"""An attempt's account and its credentials: decrypted (cached per process) and, when
they expire or the platform refuses them, refreshed through the plugin and stored back
with compare-and-set, so that a rotating refresh token is never lost."""

from __future__ import annotations

import functools
import logging
import threading
from datetime import timedelta
from typing import TYPE_CHECKING

import attrs
import httpx

from .. import metrics
from ..errors import (
    Chat33Error,
    PermanentError,
    ReconnectRequired,
    StoreUnavailable,
    TransientError,
)
from ..http import transport_error
from ..models import Account, Credentials
from ..platforms import EventLog, PlatformBase, RefreshContext
from .batch import retrying
from .outcomes import plugin_error_message
from .queue import Claim

if TYPE_CHECKING:
    from ..service import Chat33

log = logging.getLogger(__name__)

#: decrypted credentials kept per worker process (by ciphertext)
DECRYPT_CACHE_SIZE = 1024


class AccountCredentials:
    """The accounts' credentials for one worker's attempts (thread-safe). Refreshes of
    one account are serialized in this process, and on PostgreSQL across machines by
    locking the account row."""

    def __init__(self, core: Chat33, http: httpx.Client, retry_for: timedelta) -> None:
        self.core = core
        self.store = core.store
        self.http = http
        #: how long storing refreshed credentials is tried while the database is away
        self.retry_for = retry_for
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._decrypted: dict[str, Credentials] = {}

    def load(self, claim: Claim) -> tuple[Account, str | None]:
        """The claim's account and its encrypted credentials (read with the claim, or
        now when the claim did not read them)."""
        if claim.account is not None:
            return claim.account, claim.credentials_enc
        return self.store.account_with_credentials(claim.post.account_id)

    def decrypt(self, enc: str) -> Credentials:
        """Decrypted credentials, cached by their ciphertext: the same ciphertext always
        decrypts to the same value, and a refresh stores a new ciphertext, so the cache
        can never hand out stale credentials (refreshes still go through
        :meth:`refresh`'s compare-and-set)."""
        with self._guard:
            cached = self._decrypted.get(enc)
        if cached is not None:
            # a copy of the one mutable part: threads must not share it
            return attrs.evolve(cached, extra=dict(cached.extra))
        credentials = self.core.vault.decrypt_credentials(enc)
        with self._guard:
            if len(self._decrypted) >= DECRYPT_CACHE_SIZE:
                self._decrypted.clear()
            self._decrypted[enc] = attrs.evolve(credentials, extra=dict(credentials.extra))
        return credentials

    def refresh(self, platform: PlatformBase, account: Account, credentials: Credentials,
                alog: EventLog, *, force: bool = False) -> Credentials:
        """Refresh through the plugin and store the result encrypted, compare-and-set on
        the stored value: when another worker refreshed meanwhile its (possibly rotated)
        tokens win and are used. ``force``: the platform refused ``credentials``, so
        stored ones that differ are used even if they do not look expired."""
        vault = self.core.vault
        fresh: Credentials | None = None
        fresh_enc = current_enc = None
        try:
            with self._lock(account.id), self.store.credentials_held(account.id) as held:
                current_enc = held.current
                if current_enc is None:
                    raise ReconnectRequired("the account has no credentials")
                current = vault.decrypt_credentials(current_enc)
                if current.access_token != credentials.access_token and (
                        force or not platform.needs_refresh(current)):
                    metrics.record_token_refresh(platform.name, "reused")
                    return current  # someone refreshed already
                fresh = current.replaced_by(_refreshed(platform, current, RefreshContext(
                    account=account, http=self.http, settings=self.core.settings)))
                fresh_enc = vault.encrypt_credentials(fresh)
                stored = held.replace(fresh_enc)
        except StoreUnavailable:
            if fresh is None or fresh_enc is None:
                raise  # the platform was not asked: nothing new to keep
            # the platform may have rotated the refresh token (the old one is spent):
            # the new tokens must be stored, in a transaction of their own
            stored = retrying(functools.partial(self.store.set_account_credentials_enc,
                                                account.id, fresh_enc, current_enc),
                              self.retry_for.total_seconds(),
                              lambda: f"the refreshed credentials of {account.id}")
        if not stored:
            # lost the race to another process (or our commit landed unanswered): use
            # what is stored
            latest = self.store.account_credentials_enc(account.id)
            return vault.decrypt_credentials(latest) if latest else fresh
        alog("credentials_refreshed", f"{platform.display_name or platform.name} access "
             "token refreshed")
        return fresh

    def _lock(self, account_id: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(account_id, threading.Lock())


def _refreshed(platform: PlatformBase, credentials: Credentials,
               ctx: RefreshContext) -> Credentials:
    """:func:`_plugin_refresh`, counted by outcome (``chat33_token_refreshes_total``)."""
    try:
        fresh = _plugin_refresh(platform, credentials, ctx)
    except ReconnectRequired:
        metrics.record_token_refresh(platform.name, "reconnect")
        raise
    except TransientError:
        metrics.record_token_refresh(platform.name, "transient")
        raise
    except PermanentError:
        metrics.record_token_refresh(platform.name, "failed")
        raise
    metrics.record_token_refresh(platform.name, "refreshed")
    return fresh


def _plugin_refresh(platform: PlatformBase, credentials: Credentials,
                    ctx: RefreshContext) -> Credentials:
    """``platform.refresh_credentials``, whose failures are one of three:
    ``ReconnectRequired``, ``TransientError`` (an unanswered token request too: it
    creates no post), or ``PermanentError`` for anything else (a plugin bug named as
    such, logged with its traceback)."""
    name = platform.display_name or platform.name
    try:
        return platform.refresh_credentials(credentials, ctx)
    except (ReconnectRequired, TransientError):
        raise
    except httpx.RequestError as exc:  # a token request creates no post: retry
        raise transport_error(exc, platform=name, what="token refresh",
                              creates=False) from exc
    except Chat33Error as exc:
        raise PermanentError(f"refreshing the {name} token failed: {exc.message}",
                             platform_code=getattr(exc, "platform_code", None)) from exc
    except Exception as exc:
        log.exception("the %s plugin raised while refreshing a token", name)
        raise PermanentError(plugin_error_message(platform, exc),
                             platform_code=type(exc).__name__) from exc
