"""Signing in: failed attempts are throttled per email and per client address in the
store (two app instances on one database share the count), unknown emails cost the same
hashing work as known ones, and password hashing cannot take every thread of a process."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

import chat33_core.security as security
from chat33_core.errors import Unauthorized, Unavailable

from .conftest import PASSWORD, two_apps_on

LOGIN = "/api/v1/auth/login"
LIMITS = {"auth.login.email": (3, timedelta(hours=1)),
          "auth.login.address": (4, timedelta(hours=1))}


@pytest.fixture
def two_apps(db_url: str, settings_for: Any) -> Iterator[Any]:
    with two_apps_on(settings_for(db_url), LIMITS) as apps:
        yield apps


def _login(client: Any, email: str, password: str, address: str) -> Any:
    return client.post(LOGIN, json={"email": email, "password": password},
                       environ_base={"REMOTE_ADDR": address})


def _assert_throttled(response: Any, limit: int) -> None:
    assert response.status_code == 429, response.get_json()
    body = response.get_json()
    assert set(body) == {"error", "message", "details"}
    assert body["error"] == "RATE_LIMIT"
    assert "too many failed sign-ins" in body["message"]
    assert int(response.headers["Retry-After"]) >= 1
    assert response.headers["RateLimit-Limit"] == str(limit)
    assert response.headers["RateLimit-Remaining"] == "0"
    assert "Set-Cookie" not in response.headers


def test_failed_logins_are_throttled_per_email_across_two_apps(two_apps: Any) -> None:
    clients, org = two_apps
    for i in range(3):  # each from another address: the email's count is what fills
        response = _login(clients[i % 2], org.email, "wrong password", f"10.0.0.{i}")
        assert response.status_code == 401
    # the right password does not get through either while the email is throttled
    for client in clients:
        _assert_throttled(_login(client, org.email, PASSWORD, "10.0.1.1"), 3)
    # other emails are not affected (same address as the first attempt)
    other = _login(clients[0], "nobody@example.com", "wrong password", "10.0.0.0")
    assert other.status_code == 401


def test_failed_logins_are_throttled_per_address_across_two_apps(two_apps: Any) -> None:
    clients, org = two_apps
    for i in range(4):  # a different unknown email each time: the address's count fills
        response = _login(clients[i % 2], f"guess{i}@example.com", "pw", "192.0.2.7")
        assert response.status_code == 401
    _assert_throttled(_login(clients[1], org.email, PASSWORD, "192.0.2.7"), 4)
    # another address signs in to the same account
    assert _login(clients[0], org.email, PASSWORD, "192.0.2.8").status_code == 200


def test_a_right_password_is_given_back(two_apps: Any) -> None:
    clients, org = two_apps
    assert _login(clients[0], org.email, "wrong password", "10.0.0.1").status_code == 401
    for i in range(4):  # more sign-ins than the limit of 3: none of them failed
        assert _login(clients[i % 2], org.email, PASSWORD, "10.0.0.1").status_code == 200
    assert _login(clients[1], org.email, "wrong", "10.0.0.1").status_code == 401
    assert _login(clients[0], org.email, "wrong", "10.0.0.1").status_code == 401
    _assert_throttled(_login(clients[1], org.email, PASSWORD, "10.0.0.1"), 3)


class _CountingHasher(security.PasswordHasher):
    """The real argon2 hasher, noting every hash it checks against and how many of its
    calls run at once; ``gate`` (when set) holds each call until it is opened."""

    def __init__(self) -> None:
        super().__init__()
        self.checked: list[str] = []
        self.inside = 0
        self.most_inside = 0
        self.gate: threading.Event | None = None
        self._lock = threading.Lock()

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        with self._lock:
            self.checked.append(hash if isinstance(hash, str) else hash.decode())
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        try:
            if self.gate is not None:
                assert self.gate.wait(30)
            return bool(super().verify(hash, password))
        finally:
            with self._lock:
                self.inside -= 1


@pytest.fixture
def hasher(monkeypatch: pytest.MonkeyPatch) -> _CountingHasher:
    counting = _CountingHasher()
    monkeypatch.setattr(security, "_hasher", counting)
    return counting


def _parameters(argon2_hash: str) -> str:
    """``$argon2id$v=19$m=65536,t=3,p=4``: what decides the work of checking a hash."""
    return "$".join(argon2_hash.split("$")[:4])


def test_an_unknown_email_costs_the_same_hashing_work(sqlite_api: Any,
                                                      hasher: _CountingHasher) -> None:
    client = sqlite_api.client
    known = client.post(LOGIN, json={"email": sqlite_api.org.email, "password": "nope"})
    unknown = client.post(LOGIN, json={"email": "nobody@example.com", "password": "nope"})
    assert known.status_code == unknown.status_code == 401
    assert known.get_json() == unknown.get_json()
    assert len(hasher.checked) == 2  # one argon2 check each
    user_hash, stand_in = hasher.checked
    assert user_hash == sqlite_api.core.store.get_user(sqlite_api.org.user_id).password_hash
    assert stand_in != user_hash
    assert _parameters(stand_in) == _parameters(user_hash)
    # the stand-in never matches, even for the password it was made from
    assert not security.verify_password(None, "")


def test_hashing_is_bounded_per_process(sqlite_api: Any, hasher: _CountingHasher) -> None:
    core = sqlite_api.core
    core.identity.hash_gate = security.HashGate(2, wait_s=30)
    hasher.gate = threading.Event()
    outcomes: list[str] = []

    def sign_in(i: int) -> None:
        try:
            core.login(f"user{i}@example.com", "wrong password")
        except (Unauthorized, Unavailable) as exc:
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=sign_in, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    # two hash, two wait for a turn, two are refused at once
    deadline = time.monotonic() + 30
    while outcomes.count("Unavailable") < 2 or hasher.inside < 2:
        assert time.monotonic() < deadline, (outcomes, hasher.inside)
        time.sleep(0.01)
    assert hasher.inside == 2
    hasher.gate.set()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["Unauthorized"] * 4 + ["Unavailable"] * 2
    assert hasher.most_inside == 2


def test_a_busy_server_answers_503_with_retry_after(sqlite_api: Any) -> None:
    gate = sqlite_api.core.identity.hash_gate = security.HashGate(1, wait_s=30)
    # one failed sign-in allowed: the refused attempt below must not be it
    sqlite_api.core.rate_limits["auth.login.email"] = (1, timedelta(hours=1))
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with gate.turn():
            held.set()
            release.wait(30)

    def wait_for_turn() -> None:
        with gate.turn():
            pass

    holder, waiter = threading.Thread(target=hold), threading.Thread(target=wait_for_turn)
    holder.start()
    assert held.wait(30)
    waiter.start()
    try:
        deadline = time.monotonic() + 30
        while gate._inside < 2:  # the waiter is in line behind the holder
            assert time.monotonic() < deadline
            time.sleep(0.01)
        response = sqlite_api.client.post(LOGIN, json={"email": sqlite_api.org.email,
                                                       "password": PASSWORD})
        assert response.status_code == 503
        assert response.get_json()["error"] == "SERVICE_UNAVAILABLE"
        assert response.headers["Retry-After"] == "1"
    finally:
        release.set()
        holder.join(30)
        waiter.join(30)
    ok = sqlite_api.client.post(LOGIN, json={"email": sqlite_api.org.email,
                                             "password": PASSWORD})
    assert ok.status_code == 200
    wrong = sqlite_api.client.post(LOGIN, json={"email": sqlite_api.org.email,
                                                "password": "wrong"})
    assert wrong.status_code == 401
    _assert_throttled(sqlite_api.client.post(LOGIN, json={"email": sqlite_api.org.email,
                                                          "password": PASSWORD}), 1)
