"""Social accounts of an organization: adding, naming, removing, and their
credentials (encrypted by the vault)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from . import states
from .errors import Conflict, Issue, ValidationError
from .models import Account, AccountRemoval, Credentials, PostStatus, new_id
from .plugins import PluginHost
from .security import Vault
from .store import Store

log = logging.getLogger(__name__)


class Accounts:
    """The organization's accounts. Given the store, the plugin host (which platforms
    exist) and the vault (asked for on first use: only credentials need the secret
    key)."""

    def __init__(self, store: Store, host: PluginHost, vault: Callable[[], Vault]) -> None:
        self.store = store
        self.host = host
        self.vault = vault

    def add_account(self, org_id: str, platform: str, name: str, *, username: str | None = None,
                    external_id: str | None = None, credentials: Credentials | None = None,
                    metadata: Mapping[str, Any] | None = None) -> Account:
        issues = []
        if not self.host.has_platform(platform):
            known = ", ".join(sorted(self.host.platforms)) or "none installed"
            issues.append(Issue("platform", f"unknown platform {platform!r} (installed: {known})"))
        if not (name or "").strip():
            issues.append(Issue("name", "must not be empty"))
        if issues:
            raise ValidationError("invalid account", details=issues)
        account = Account(id=new_id("chan"), org_id=org_id, platform=platform, name=name.strip(),
                          username=username, external_id=external_id,
                          metadata=dict(metadata or {}))
        enc = self.vault().encrypt_credentials(credentials) if credentials else None
        return self.store.add_account(account, enc)

    def list_accounts(self, org_id: str, platform: str | None = None) -> list[Account]:
        return self.store.list_accounts(org_id, platform=platform, active_only=True)

    def get_account(self, org_id: str, account_id: str) -> Account:
        return self.store.get_account(account_id, org_id=org_id)

    def rename_account(self, org_id: str, account_id: str, name: str) -> Account:
        """Give the account a new display name (posts keep the name they were made
        with: it is part of their history)."""
        name = (name or "").strip()
        if not name or len(name) > 200:
            raise ValidationError("invalid account name",
                                  details=[Issue("name", "must be 1 to 200 characters")])
        return self.store.rename_account(org_id, account_id, name)

    def remove_account(self, org_id: str, account_id: str) -> AccountRemoval:
        """Disconnect the account: its credentials are forgotten, it leaves the account
        list, and its QUEUED posts are cancelled with a logged reason. Published posts
        and their history stay readable; DRAFT and FAILED posts stay too (they cannot be
        queued or retried on it). Removing a removed account changes nothing. The
        platform is not told: :meth:`disconnect_account` revokes the grant there first."""
        account = self.store.get_account(account_id, org_id=org_id)
        name = self.platform_name(account.platform)
        account, cancelled = self.store.remove_account(
            org_id, account_id, cancel_as=states.transition(PostStatus.QUEUED,
                                                             PostStatus.CANCELLED),
            reason=f"post cancelled: its {name} account {account.name!r} was removed")
        if cancelled:
            log.info("account %s removed; %d queued posts cancelled", account_id,
                     len(cancelled))
        return AccountRemoval(account=account, cancelled_posts=cancelled)

    def set_account_credentials(self, org_id: str, account_id: str,
                                credentials: Credentials) -> Account:
        """Replace the account's credentials (it was connected again): its
        ``needs_reconnect`` mark is cleared. A removed account is refused (409)."""
        account = self.store.get_account(account_id, org_id=org_id)
        if not account.is_active:
            raise Conflict(f"account {account_id} was removed; add it again instead")
        self.save_account_credentials(account.id, credentials)
        self.store.release_waiting_posts([account.id])
        return self.store.get_account(account_id, org_id=org_id)

    def account_credentials(self, account_id: str) -> Credentials | None:
        enc = self.store.account_credentials_enc(account_id)
        return None if enc is None else self.vault().decrypt_credentials(enc)

    def save_account_credentials(self, account_id: str, credentials: Credentials) -> None:
        self.store.set_account_credentials_enc(account_id,
                                               self.vault().encrypt_credentials(credentials))

    def platform_name(self, platform: str) -> str:
        """The platform's display name ("X", "TikTok"), or its name when its plugin is
        not installed here."""
        if not self.host.has_platform(platform):
            return platform
        found = self.host.platform(platform)
        return found.display_name or found.name

    def accounts_for(self, org_id: str, ids: Sequence[str],
                     read: Mapping[str, Account | None] | None = None
                     ) -> dict[str, Account | None]:
        """Each of ``ids`` -> the organization's Account, or None (not found, or another
        organization's), in one query; ``read``: accounts already read for this request
        (:meth:`Identity.authenticate_key_with_accounts`), used when they cover ``ids``."""
        wanted = list(dict.fromkeys(i for i in ids if isinstance(i, str)))
        if read is not None and all(i in read for i in wanted):
            # read with the API key moments ago, same organization
            return {account_id: read[account_id] for account_id in wanted}
        known = self.store.get_accounts(wanted, org_id)  # one query for all of them
        return {account_id: known.get(account_id) for account_id in wanted}


__all__ = ["Accounts"]
