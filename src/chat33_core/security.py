"""Secrets done right: API keys, passwords, sessions, encrypted platform tokens."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import attrs
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import ConfigurationError, Forbidden, Unauthorized, Unavailable
from .models import Credentials

API_KEY_PREFIX = "sk_live_"
KEY_PREFIX_LENGTH = 12

_hasher = PasswordHasher()


def generate_api_key() -> str:
    """``sk_live_`` followed by 32 random bytes, URL-safe base64 (43 characters)."""
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def digest(value: str) -> str:
    """SHA-256 hex digest: what the store keeps of API keys, session ids and CSRF tokens.
    They are 256-bit random values, so an unsalted fast digest is safe and lets the
    store look them up by value."""
    return hashlib.sha256(value.encode()).hexdigest()


def same_digest(value: str, expected_hex: str) -> bool:
    return hmac.compare_digest(digest(value), expected_hex)


def hash_password(password: str) -> str:
    """Argon2id, memory-hard."""
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches ``password_hash``. ``None`` (no such user) is checked
    against a stand-in hash made with the same parameters and is never a match: a
    sign-in for an unknown email spends the same hashing work as one for a known email,
    so the answer's timing does not tell which emails exist."""
    try:
        matched = _hasher.verify(password_hash or _stand_in_hash(), password)
    except (VerificationError, InvalidHashError):
        return False
    return matched and password_hash is not None


@functools.cache
def _stand_in_hash() -> str:
    """An argon2 hash of a random secret nobody knows, made once per process."""
    return _hasher.hash(secrets.token_urlsafe(32))


class HashGate:
    """At most ``slots`` password hashes at once in this process, and at most as many
    callers again waiting for a turn (each for at most ``wait_s``); anyone beyond that is
    refused at once with :class:`~chat33_core.errors.Unavailable`.

    An argon2 hash costs about half a second of CPU on purpose. Unbounded, a burst of
    sign-ins takes every core and every serving thread, and the rest of the API starves
    (16 parallel wrong passwords took other requests from 4 ms to 2.3 s); bounded, sign-ins
    hold at most ``2 * slots`` threads and ``slots`` cores of a process.
    """

    def __init__(self, slots: int, wait_s: float = 5.0) -> None:
        self.slots = max(1, slots)
        self.wait_s = wait_s
        self._turns = threading.BoundedSemaphore(self.slots)
        self._lock = threading.Lock()
        self._inside = 0  # hashing or waiting

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Hold one of the slots for the block."""
        with self._lock:
            if self._inside >= 2 * self.slots:
                raise _busy()
            self._inside += 1
        try:
            if not self._turns.acquire(timeout=self.wait_s):
                raise _busy()
            try:
                yield
            finally:
                self._turns.release()
        finally:
            with self._lock:
                self._inside -= 1


def _busy() -> Unavailable:
    return Unavailable("too many sign-ins at once; retry in a second", retry_after=1)


def new_token() -> str:
    return secrets.token_urlsafe(32)


class Vault:
    """Encrypts small secrets (platform credentials, webhook secrets) with a key derived
    from ``CHAT33_SECRET_KEY`` (HKDF-SHA256 → Fernet: AES-128-CBC + HMAC-SHA256)."""

    def __init__(self, secret_key: str) -> None:
        if not secret_key:
            raise ConfigurationError("a secret key is required to encrypt credentials")
        raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"chat33",
                   info=b"chat33 credentials v1").derive(secret_key.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(raw))

    def encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise ConfigurationError(
                "stored credentials cannot be decrypted: CHAT33_SECRET_KEY is not the key "
                "they were encrypted with") from None

    def encrypt_credentials(self, creds: Credentials) -> str:
        return self.encrypt(json.dumps({
            "access_token": creds.access_token,
            "refresh_token": creds.refresh_token,
            "expires_at": _iso(creds.expires_at),
            "issued_at": _iso(creds.issued_at),
            "extra": creds.extra,
        }))

    def decrypt_credentials(self, token: str) -> Credentials:
        data: dict[str, Any] = json.loads(self.decrypt(token))
        return Credentials(
            access_token=data["access_token"], refresh_token=data.get("refresh_token"),
            expires_at=_from_iso(data.get("expires_at")),
            issued_at=_from_iso(data.get("issued_at")), extra=data.get("extra") or {},
        )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _from_iso(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@attrs.frozen
class Principal:
    """Who is calling: an organization's user, by API key or by session."""

    org_id: str
    user_id: str
    scopes: frozenset[str]
    via: str  # "key" or "session"
    key_id: str | None = None
    csrf_hash: str | None = None

    def require(self, *scopes: str) -> None:
        missing = [s for s in scopes if s not in self.scopes]
        if missing:
            raise Forbidden(f"this API key lacks the scope {', '.join(missing)}")

    def require_session(self) -> None:
        if self.via != "session":
            raise Unauthorized("this endpoint needs a signed-in session; API keys cannot "
                               "manage API keys")
