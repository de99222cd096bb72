"""Webhooks: outbox rows written with the final state, the exact payload, Standard
Webhooks signatures checked by a local receiver with the spec's algorithm, retries."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from werkzeug.datastructures import Headers
from werkzeug.wrappers import Request, Response

from chat33_core import webhooks
from chat33_core.models import PostStatus
from chat33_core.sandbox import serve
from chat33_core.scheduling import Publisher, Queue
from chat33_core.store import tables as t

from .conftest import Env


def spec_verify(secret: str, headers: Any, body: bytes) -> bool:
    """The Standard Webhooks verification, written from the spec (not chat33's code):
    key = base64-decode(secret without 'whsec_'); signed content = id.timestamp.body;
    signature = base64(HMAC-SHA256); header = space-separated 'v1,<sig>' entries."""
    key = base64.b64decode(secret.split("_", 1)[1])
    msg_id = headers["webhook-id"]
    stamp = headers["webhook-timestamp"]
    if abs(time.time() - int(stamp)) > 300:
        return False
    content = f"{msg_id}.{stamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    return any(part.split(",", 1) == ["v1", expected]
               for part in headers["webhook-signature"].split(" "))


class Receiver:
    """A webhook receiver on loopback that verifies every request it gets."""

    def __init__(self, secret_of: Any, fail_first: int = 0) -> None:
        self.secret_of = secret_of
        self.fail_first = fail_first
        self.received: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        body = request.get_data()
        with self.lock:
            self.received.append({"headers": dict(request.headers), "body": body,
                                  "valid": spec_verify(self.secret_of(), request.headers, body)})
            failing = len(self.received) <= self.fail_first
        response = Response("nope", status=503) if failing else Response("ok")
        return response(environ, start_response)


@pytest.fixture
def receiver(env: Env) -> Iterator[tuple[Receiver, str]]:
    rec = Receiver(lambda: env.core.webhook_secret(env.principal.org_id))
    with serve(rec) as url:
        yield rec, url + "/hook"


def test_the_org_secret_is_in_the_standard_format(env: Env) -> None:
    secret = env.core.webhook_secret(env.principal.org_id)
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret[6:], validate=True)) >= 24
    rotated = env.core.rotate_webhook_secret(env.principal.org_id).secret
    assert rotated != secret and env.core.webhook_secret(env.principal.org_id) == rotated


def test_after_a_rotation_deliveries_verify_with_the_old_and_the_new_secret(env: Env) -> None:
    """Receivers switch secrets at their own pace: during the grace period each delivery
    carries a v1 signature per live secret, and the spec's check accepts any of them."""
    org_id = env.principal.org_id
    old = env.core.webhook_secret(org_id)
    new = env.core.rotate_webhook_secret(org_id).secret
    received: list[tuple[Any, bytes]] = []

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        received.append((Headers(request.headers), request.get_data()))
        return Response("ok")(environ, start_response)

    with serve(app) as url:
        (post,) = env.posts(1, callback_url=url + "/hook")
        env.run_once()
        env.core.rotate_webhook_secret(org_id, grace=timedelta(0))
        (after,) = env.posts(1, callback_url=url + "/hook")
        env.run_once()
    (headers, body), (headers_after, body_after) = received
    assert len(headers["Webhook-Signature"].split(" ")) == 2
    assert spec_verify(old, headers, body) and spec_verify(new, headers, body)
    assert not spec_verify("whsec_" + "A" * 44, headers, body)
    # grace 0: the older secrets stop at once
    assert len(headers_after["Webhook-Signature"].split(" ")) == 1
    assert not spec_verify(old, headers_after, body_after)
    assert not spec_verify(new, headers_after, body_after)
    assert spec_verify(env.core.webhook_secret(org_id), headers_after, body_after)
    assert {json.loads(b)["postId"] for _, b in received} == {post.id, after.id}


def test_signature_matches_the_spec_example() -> None:
    # the example from the Standard Webhooks specification
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    got = webhooks.sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
    assert got == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    headers = {"webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
               "webhook-timestamp": "1614265330", "webhook-signature": got}
    assert webhooks.verify(secret, headers, body, now=1614265330 + 10)
    assert not webhooks.verify(secret, headers, body + b" ", now=1614265330)
    assert not webhooks.verify(secret, headers, body, now=1614265330 + 3600)


def test_outbox_row_is_written_with_the_final_state(env: Env) -> None:
    (post,) = env.posts(1, callback_url="https://hooks.example/x")
    queue = Queue(env.store, "w")
    (claim,) = queue.claim(1)
    Publisher(env.core, queue).run(claim)
    with env.store.read() as c:
        rows = c.execute(sa.select(t.webhook_deliveries)).mappings().all()
    assert len(rows) == 1 and rows[0]["status"] == "pending"
    done = env.get(post.id)
    assert rows[0]["payload"] == {"postId": post.id, "status": "PUBLISHED",
                                  "externalPostId": done.external_post_id,
                                  "externalPostUrl": done.external_post_url, "error": None}


def test_a_published_post_is_delivered_signed_with_the_exact_payload(
        env: Env, receiver: tuple[Receiver, str]) -> None:
    rec, url = receiver
    (post,) = env.posts(1, callback_url=url)
    env.run_once()
    done = env.get(post.id)
    assert len(rec.received) == 1
    got = rec.received[0]
    assert got["valid"]
    assert json.loads(got["body"]) == {
        "postId": post.id, "status": "PUBLISHED", "externalPostId": done.external_post_id,
        "externalPostUrl": done.external_post_url, "error": None}
    assert got["headers"]["Content-Type"] == "application/json"
    assert got["headers"]["Webhook-Id"].startswith("msg_")
    logs = env.store.list_logs(post.id)
    delivered = [e for e in logs if e.event == "webhook_delivered"]
    assert len(delivered) == 1 and delivered[0].data["statusCode"] == 200


def test_a_failed_post_is_delivered_with_its_error(env: Env,
                                                    receiver: tuple[Receiver, str]) -> None:
    rec, url = receiver
    (post,) = env.posts(1, text="x" * 600, callback_url=url)
    env.run_once()
    body = json.loads(rec.received[0]["body"])
    assert body["postId"] == post.id and body["status"] == "FAILED"
    assert body["error"] == "The text is too long."
    assert body["externalPostId"] is None and rec.received[0]["valid"]


def test_failed_deliveries_are_retried_with_the_same_id(make_env) -> None:  # type: ignore[no-untyped-def]
    env: Env = make_env(CHAT33_WEBHOOK_RETRY_SCHEDULE_S="0.05,0.05,0.05")
    rec = Receiver(lambda: env.core.webhook_secret(env.principal.org_id), fail_first=2)
    with serve(rec) as url:
        (post,) = env.posts(1, callback_url=url)
        env.run_once()
    assert len(rec.received) == 3
    assert all(r["valid"] for r in rec.received)
    assert len({r["headers"]["Webhook-Id"] for r in rec.received}) == 1
    events = env.events(post.id)
    assert events.count("webhook_retry_scheduled") == 2
    assert events[-1] == "webhook_delivered"
    with env.store.read() as c:
        row = c.execute(sa.select(t.webhook_deliveries)).mappings().one()
    assert row["status"] == "delivered" and row["attempts"] == 3


def test_deliveries_give_up_when_the_schedule_is_spent(make_env) -> None:  # type: ignore[no-untyped-def]
    env: Env = make_env(CHAT33_WEBHOOK_RETRY_SCHEDULE_S="0.05")
    rec = Receiver(lambda: env.core.webhook_secret(env.principal.org_id), fail_first=99)
    with serve(rec) as url:
        (post,) = env.posts(1, callback_url=url)
        env.run_once()
    assert len(rec.received) == 2
    failed = [e for e in env.store.list_logs(post.id) if e.event == "webhook_failed"]
    assert len(failed) == 1 and "HTTP 503" in failed[0].message
    assert env.get(post.id).status is PostStatus.PUBLISHED  # the post itself is unaffected


def test_a_blocked_callback_address_is_refused_without_retries(make_env) -> None:  # type: ignore[no-untyped-def]
    env: Env = make_env(CHAT33_ALLOW_PRIVATE_URLS="0")
    (post,) = env.posts(1, callback_url="http://127.0.0.1:9/hook")
    env.run_once()
    failed = [e for e in env.store.list_logs(post.id) if e.event == "webhook_failed"]
    assert len(failed) == 1 and "loopback" in failed[0].message


def test_the_default_schedule_lasts_about_a_day() -> None:
    total = sum(webhooks.DEFAULT_SCHEDULE)
    assert 20 * 3600 <= total <= 30 * 3600
    assert webhooks.retry_delay(len(webhooks.DEFAULT_SCHEDULE) + 1) is None
