"""Organizations, users, sessions and API keys: who is calling, and signing in."""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from datetime import timedelta

from .errors import Forbidden, Issue, NotFound, Unauthorized, Unavailable, ValidationError
from .models import (
    ALL_SCOPES,
    DEFAULT_SCOPES,
    Account,
    ApiKey,
    Organization,
    User,
    new_id,
    utcnow,
)
from .ratelimits import RateLimits
from .security import (
    KEY_PREFIX_LENGTH,
    HashGate,
    Principal,
    digest,
    generate_api_key,
    hash_password,
    new_token,
    same_digest,
    verify_password,
)
from .store import Store

SESSION_LIFETIME = timedelta(days=14)


class Identity:
    """Users, sessions and API keys. Given the store, the gate that bounds password
    hashing, and the rate limits (sign-ins are throttled)."""

    def __init__(self, store: Store, hash_gate: HashGate, limits: RateLimits) -> None:
        self.store = store
        self.hash_gate = hash_gate
        self.limits = limits

    # --- organizations and users --------------------------------------------------------

    def ensure_org(self, name: str) -> Organization:
        org = self.store.find_org_by_name(name)
        if org is not None:
            return org
        # the webhook secret is made on first use: creating users needs no secret key
        return self.store.add_org(Organization.new(name))

    def create_user(self, email: str, password: str, org_name: str) -> User:
        issues = []
        email = (email or "").strip().lower()
        if "@" not in email or email.startswith("@") or email.endswith("@"):
            issues.append(Issue("email", "must be an email address"))
        if len(password or "") < 8:
            issues.append(Issue("password", "must be at least 8 characters"))
        if not (org_name or "").strip():
            issues.append(Issue("org", "must not be empty"))
        if issues:
            raise ValidationError("invalid user", details=issues)
        org = self.ensure_org(org_name.strip())
        with self.hash_gate.turn():
            password_hash = hash_password(password)
        user = User(id=new_id("user"), org_id=org.id, email=email, password_hash=password_hash)
        return self.store.add_user(user)

    def list_users(self, org_id: str | None = None) -> list[User]:
        return self.store.list_users(org_id)

    def get_user(self, user_id: str) -> User:
        return self.store.get_user(user_id)

    def set_password(self, email: str, password: str) -> tuple[User, int]:
        """Give the user with ``email`` a new password; their sessions end. Returns the
        user and the number of sessions ended."""
        if len(password or "") < 8:
            raise ValidationError("invalid password", details=[
                Issue("password", "must be at least 8 characters")])
        user = self.store.find_user_by_email((email or "").strip().lower())
        if user is None:
            raise NotFound(f"no user with the email {email!r}")
        ended = self.store.set_user_password(user.id, hash_password(password))
        return user, ended

    # --- authentication -----------------------------------------------------------------

    def authenticate_key(self, raw_key: str | None) -> Principal:
        """The principal of an API key, or Unauthorized."""
        key_hash = self._key_hash(raw_key)
        return self._principal(key_hash, self.store.find_api_key_by_hash(key_hash))

    def authenticate_key_with_accounts(self, raw_key: str | None, account_ids: Sequence[str]
                                       ) -> tuple[Principal, dict[str, Account | None]]:
        """:meth:`authenticate_key`, with the accounts ``account_ids`` (a post's
        ``accountIds``) read in the same query as the key: each id -> the key's
        organization's Account, or None. For the request that is about to use them
        (:meth:`Posts.create_posts` takes them), not to be kept."""
        key_hash = self._key_hash(raw_key)
        wanted = [i for i in dict.fromkeys(account_ids) if isinstance(i, str)]
        if not wanted:
            return self._principal(key_hash, self.store.find_api_key_by_hash(key_hash)), {}
        key, found = self.store.find_api_key_with_accounts(key_hash, wanted)
        return self._principal(key_hash, key), {i: found.get(i) for i in wanted}

    @staticmethod
    def _key_hash(raw_key: str | None) -> str:
        if not raw_key:
            raise Unauthorized("missing API key: send it in the x-api-key header")
        return digest(raw_key)

    def _principal(self, key_hash: str, key: ApiKey | None) -> Principal:
        """The principal of ``key`` (the key found for ``key_hash``, if any)."""
        if key is None or not hmac.compare_digest(key_hash, key.key_hash):
            raise Unauthorized("invalid API key")
        now = utcnow()
        if not key.is_active:
            raise Unauthorized("this API key has been revoked")
        if key.expires_at is not None and key.expires_at <= now:
            raise Unauthorized("this API key has expired")
        if key.last_used_at is None or now - key.last_used_at > timedelta(seconds=60):
            self.store.touch_api_key(key.id, now)  # coarse, so reads do not all write
        return Principal(org_id=key.org_id, user_id=key.user_id, scopes=frozenset(key.scopes),
                         via="key", key_id=key.id)

    def login(self, email: str, password: str, *, client: str | None = None
              ) -> tuple[User, str, str]:
        """Check the password; returns (user, session token, CSRF token). Only digests
        of the two tokens are stored.

        Throttled: every attempt is counted against the failed sign-ins of its email and
        of its ``client`` address (the ``auth.login.*`` rate limits, in the store, so the
        count holds across processes) *before* the password is checked, so parallel
        guesses cannot outrun it; an attempt with the right password is given back. A
        throttled attempt is RateLimited without checking anything. Unknown emails cost
        the same hashing work as known ones; hashing waits its turn (:class:`HashGate`).
        """
        email = (email or "").strip().lower()
        user = self.store.find_user_by_email(email)
        counted = self.limits.count_login(email, client)
        try:
            with self.hash_gate.turn():
                matched = verify_password(user.password_hash if user else None,
                                          password or "")
        except Unavailable:  # nothing was checked: not a failed attempt
            self.limits.give_back(counted)
            raise
        if user is None or not matched:
            raise Unauthorized("wrong email or password")
        self.limits.give_back(counted)
        session, csrf = new_token(), new_token()
        self.store.add_session(digest(session), user.id, digest(csrf),
                               utcnow() + SESSION_LIFETIME)
        return user, session, csrf

    def authenticate_session(self, session_token: str | None) -> Principal:
        if not session_token:
            raise Unauthorized("not signed in")
        row = self.store.get_session(digest(session_token))
        if row is None or row["expires_at"] <= utcnow():
            raise Unauthorized("the session has ended; sign in again")
        user = self.store.get_user(row["user_id"])
        # a signed-in user may do everything in their organization
        return Principal(org_id=user.org_id, user_id=user.id, scopes=frozenset(ALL_SCOPES),
                         via="session", csrf_hash=row["csrf_hash"])

    def check_csrf(self, principal: Principal, token: str | None) -> None:
        if principal.via != "session":
            return
        if not token or principal.csrf_hash is None or not same_digest(token, principal.csrf_hash):
            raise Forbidden("missing or wrong x-csrf-token header for a session request")

    def logout(self, session_token: str | None) -> None:
        if session_token:
            self.store.delete_session(digest(session_token))

    # --- API keys -----------------------------------------------------------------------

    def create_api_key(self, org_id: str, user_id: str, name: str | None = None,
                       scopes: Sequence[str] | None = None) -> tuple[ApiKey, str]:
        """Returns the key and its raw value, which is never stored and never shown again."""
        name = (name or "Default API Key").strip()
        if not name or len(name) > 200:
            raise ValidationError("invalid API key name",
                                  details=[Issue("name", "must be 1 to 200 characters")])
        scopes = list(scopes) if scopes is not None else list(DEFAULT_SCOPES)
        unknown = [s for s in scopes if s not in ALL_SCOPES]
        if unknown or not scopes:
            raise ValidationError("invalid scopes", details=[Issue(
                "scopes", f"unknown scope(s) {', '.join(unknown)}; known: "
                f"{', '.join(ALL_SCOPES)}" if unknown else "at least one scope is needed")])
        raw = generate_api_key()
        key = ApiKey(id=new_id("key"), org_id=org_id, user_id=user_id, name=name,
                     key_prefix=raw[:KEY_PREFIX_LENGTH], key_hash=digest(raw), scopes=scopes)
        return self.store.add_api_key(key), raw

    def list_api_keys(self, org_id: str) -> list[ApiKey]:
        return self.store.list_api_keys(org_id)

    def revoke_api_key(self, org_id: str, key_id: str) -> ApiKey:
        return self.store.revoke_api_key(org_id, key_id)


__all__ = ["SESSION_LIFETIME", "Identity"]
