"""Secrets: keys, passwords and tokens never stored in the clear."""

from __future__ import annotations

from pathlib import Path

import pytest

from chat33_core.errors import ConfigurationError, Unauthorized
from chat33_core.models import Credentials
from chat33_core.security import (
    Vault,
    digest,
    generate_api_key,
    hash_password,
    same_digest,
    verify_password,
)
from chat33_core.service import Chat33


def test_api_keys_are_long_random_and_prefixed() -> None:
    keys = {generate_api_key() for _ in range(50)}
    assert len(keys) == 50
    for key in keys:
        assert key.startswith("sk_live_")
        assert len(key) >= len("sk_live_") + 43  # 32 bytes, url-safe base64


def test_digest_check_is_exact() -> None:
    key = generate_api_key()
    assert same_digest(key, digest(key))
    assert not same_digest(key + "x", digest(key))


def test_password_hash_is_argon2_and_verifies() -> None:
    h = hash_password("correct horse")
    assert h.startswith("$argon2id$")
    assert verify_password(h, "correct horse")
    assert not verify_password(h, "wrong horse")
    assert not verify_password("not-a-hash", "correct horse")


def test_vault_round_trips_credentials() -> None:
    vault = Vault("k1")
    creds = Credentials(access_token="tok", refresh_token="ref")
    enc = vault.encrypt_credentials(creds)
    assert "tok" not in enc and "ref" not in enc
    assert vault.decrypt_credentials(enc) == creds


def test_vault_with_another_key_refuses_clearly() -> None:
    enc = Vault("k1").encrypt("secret")
    with pytest.raises(ConfigurationError, match="CHAT33_SECRET_KEY"):
        Vault("k2").decrypt(enc)


def test_vault_needs_a_key() -> None:
    with pytest.raises(ConfigurationError):
        Vault("")


def test_database_file_holds_no_raw_secret(tmp_path: Path, settings_for) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "secrets.db"
    core = Chat33(settings_for(f"sqlite:///{db}"))
    core.store.migrate()
    password = "pw-" + "Q7x9" * 6
    user = core.create_user("owner@example.com", password, "Acme")
    key, raw_key = core.create_api_key(user.org_id, user.id, "ci")
    access, refresh = "EAAG-access-" + "z" * 20, "refresh-" + "y" * 20
    core.add_account(user.org_id, "x", "X", credentials=Credentials(
        access_token=access, refresh_token=refresh))
    _, session, csrf = core.login("owner@example.com", password)
    webhook_secret = core.webhook_secret(user.org_id)
    core.store.dispose()
    blob = b"".join(p.read_bytes() for p in tmp_path.glob("secrets.db*"))
    for secret in (password, raw_key, access, refresh, session, csrf, webhook_secret,
                   raw_key[len("sk_live_"):]):
        assert secret.encode() not in blob, f"{secret[:10]}... is in the database file"
    assert key.key_prefix.encode() in blob  # only the 12-character prefix


def test_login_and_session(tmp_path: Path, settings_for) -> None:  # type: ignore[no-untyped-def]
    core = Chat33(settings_for(f"sqlite:///{tmp_path / 'db.sqlite'}"))
    core.store.migrate()
    core.create_user("a@example.com", "password1", "Acme")
    with pytest.raises(Unauthorized):
        core.login("a@example.com", "wrong-password")
    with pytest.raises(Unauthorized):
        core.login("nobody@example.com", "password1")
    user, session, csrf = core.login("A@Example.com", "password1")
    principal = core.authenticate_session(session)
    assert principal.user_id == user.id and principal.via == "session"
    core.check_csrf(principal, csrf)
    from chat33_core.errors import Forbidden

    with pytest.raises(Forbidden):
        core.check_csrf(principal, "forged")
    with pytest.raises(Forbidden):
        core.check_csrf(principal, None)
    core.logout(session)
    with pytest.raises(Unauthorized):
        core.authenticate_session(session)


def test_api_key_auth_revocation_and_last_used(tmp_path: Path, settings_for) -> None:  # type: ignore[no-untyped-def]
    core = Chat33(settings_for(f"sqlite:///{tmp_path / 'db.sqlite'}"))
    core.store.migrate()
    user = core.create_user("a@example.com", "password1", "Acme")
    key, raw = core.create_api_key(user.org_id, user.id, "k", ["posts:read"])
    principal = core.authenticate_key(raw)
    assert principal.scopes == frozenset({"posts:read"}) and principal.via == "key"
    assert core.list_api_keys(user.org_id)[0].last_used_at is not None
    for bad in (None, "", "sk_live_nope", raw + "x"):
        with pytest.raises(Unauthorized):
            core.authenticate_key(bad)
    core.revoke_api_key(user.org_id, key.id)
    with pytest.raises(Unauthorized, match="revoked"):
        core.authenticate_key(raw)




def test_a_hash_turn_not_given_in_time_is_unavailable() -> None:
    import threading

    from chat33_core.errors import Unavailable
    from chat33_core.security import HashGate

    gate = HashGate(1, wait_s=0.2)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with gate.turn():
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(30)
        with pytest.raises(Unavailable) as info, gate.turn():
            pytest.fail("no turn while the only slot is held")
        assert info.value.retry_after == 1 and info.value.http_status == 503
    finally:
        release.set()
        holder.join(30)
    with gate.turn():  # free again, and nobody left counted as waiting
        pass
    assert gate._inside == 0


def test_no_password_hash_never_verifies() -> None:
    assert not verify_password(None, "")
    assert not verify_password(None, "correct horse")
