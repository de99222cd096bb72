"""X's errors, in every shape X sends them, become the chat33 error the worker acts on."""

from __future__ import annotations

import time

import pytest

from chat33_core.errors import (
    CredentialsExpired,
    PermanentError,
    QuotaExceeded,
    TransientError,
    UnknownOutcome,
)
from chat33_core.testing import CrashingCheckpoints

from .conftest import Sandbox, after_posts

POST_TWEETS = "^/2/tweets$"
APPEND = "/append$"


def test_duplicate_content_is_permanent_with_xs_message(sandbox: Sandbox) -> None:
    sandbox.platform.publish(sandbox.context(["say it once"]))
    ctx = sandbox.context(["say it once"])
    with pytest.raises(PermanentError) as info:
        sandbox.platform.publish(ctx)
    assert info.value.message == "You are not allowed to create a Tweet with duplicate content."
    assert info.value.platform_code == "duplicate-content"
    assert not ctx.checkpoints.load().get("pending"), "a refusal is no unknown outcome"


def test_legacy_duplicate_code_187_is_recognized(sandbox: Sandbox) -> None:
    sandbox.fault(method="POST", path=POST_TWEETS, status=403,
                  body={"errors": [{"code": 187, "message": "Status is a duplicate."}]})
    with pytest.raises(PermanentError) as info:
        sandbox.platform.publish(sandbox.context(["legacy"]))
    assert info.value.message == "Status is a duplicate."
    assert info.value.platform_code == "duplicate-content"


def test_thread_failing_half_way_reports_the_posted_part(sandbox: Sandbox) -> None:
    sandbox.platform.publish(sandbox.context(["part 3"]))  # makes part 3 a duplicate
    texts = ["part 1", "part 2", "part 3", "part 4"]
    with pytest.raises(PermanentError) as info:
        sandbox.platform.publish(sandbox.context(texts))
    posted = info.value.posted
    assert [r.external_id for r in posted] == [t["id"] for t in sandbox.tweets()[1:]]
    assert len(posted) == 2 and all(r.external_url for r in posted)
    assert "duplicate" in info.value.message


def test_problem_json_invalid_request_gives_the_specific_messages(sandbox: Sandbox) -> None:
    config = {"x": {"quoteTweetId": "123"}}  # no such post on X
    with pytest.raises(PermanentError) as info:
        sandbox.platform.publish(sandbox.context(["quoting nothing"], platform_config=config))
    assert info.value.message == "Quoted Tweet not visible or deleted"
    assert info.value.platform_code == "invalid-request"


def test_openapi_code_message_shape_is_parsed(sandbox: Sandbox) -> None:
    sandbox.fault(method="POST", path=POST_TWEETS, status=400,
                  body={"code": 44, "message": "attachment_url parameter is invalid."})
    with pytest.raises(PermanentError) as info:
        sandbox.platform.publish(sandbox.context(["shape"]))
    assert info.value.message == "attachment_url parameter is invalid."
    assert info.value.platform_code == "44"


def test_real_rate_limit_waits_until_reset(sandbox: Sandbox) -> None:
    sandbox.config(limits={"tweets": 2})
    sandbox.platform.publish(sandbox.context(["one", "two"]))
    ctx = sandbox.context(["three"])
    with pytest.raises(TransientError) as info:
        sandbox.platform.publish(ctx)
    assert info.value.platform_code == "429"
    # the sandbox window is 900 s: the wait comes from x-rate-limit-reset
    assert info.value.retry_after is not None and 800 < info.value.retry_after <= 902
    assert not ctx.checkpoints.load().get("pending")
    assert len(sandbox.tweets()) == 2


def test_legacy_rate_limit_body_with_reset_header(sandbox: Sandbox) -> None:
    reset = int(time.time()) + 120
    sandbox.fault(method="POST", path=POST_TWEETS, status=429,
                  body={"errors": [{"code": 88, "message": "Rate limit exceeded"}]},
                  headers={"x-rate-limit-limit": "100", "x-rate-limit-remaining": "0",
                           "x-rate-limit-reset": str(reset)})
    with pytest.raises(TransientError) as info:
        sandbox.platform.publish(sandbox.context(["later"]))
    assert info.value.message == "X rate limit: Rate limit exceeded"
    assert info.value.platform_code == "88"
    assert 100 < info.value.retry_after <= 121


def test_usage_cap_defers_instead_of_failing(sandbox: Sandbox) -> None:
    reset = int(time.time()) + 3600
    sandbox.fault(method="POST", path=POST_TWEETS, status=429,
                  body={"title": "UsageCapExceeded", "detail": "Usage cap exceeded: Monthly "
                        "product cap", "type": "https://api.x.com/2/problems/usage-capped",
                        "status": 429}, headers={"x-rate-limit-reset": str(reset)})
    with pytest.raises(QuotaExceeded) as info:
        sandbox.platform.publish(sandbox.context(["capped"]))
    assert info.value.retry_at is not None
    assert abs(info.value.retry_at.timestamp() - reset) < 5


def test_revoked_token_asks_for_a_refresh(sandbox: Sandbox) -> None:
    sandbox.revoke("sandbox-token")
    with pytest.raises(CredentialsExpired):
        sandbox.platform.publish(sandbox.context(["who am I"]))


def test_5xx_on_post_creation_is_an_unknown_outcome(sandbox: Sandbox) -> None:
    sandbox.fault(method="POST", path=POST_TWEETS, status=503,
                  body={"title": "Service Unavailable", "type": "about:blank", "status": 503,
                        "detail": "Service Unavailable"})
    with pytest.raises(UnknownOutcome) as info:
        sandbox.platform.publish(sandbox.context(["maybe"]))
    assert "Service Unavailable" in info.value.message


def test_5xx_during_upload_is_transient_and_resumes(sandbox: Sandbox, media) -> None:
    sandbox.fault(method="POST", path=APPEND, status=503)
    ctx = sandbox.context(["photo"], media=[[media("photo.jpg")]])
    with pytest.raises(TransientError) as info:
        sandbox.platform.publish(ctx)
    assert not isinstance(info.value, UnknownOutcome)
    sandbox.platform.publish(ctx)
    assert len(sandbox.state()["media"]) == 1 and len(sandbox.tweets()) == 1


def test_errors_after_part_one_carry_it_whatever_their_class(sandbox: Sandbox) -> None:
    checkpoints = CrashingCheckpoints(after_posts(1), hook=lambda: sandbox.revoke("sandbox-token"))
    with pytest.raises(CredentialsExpired) as info:
        sandbox.platform.publish(sandbox.context(["first", "second"], checkpoints=checkpoints))
    assert [r.external_id for r in info.value.posted] == [sandbox.tweets()[0]["id"]]


def test_network_failure_before_sending_is_transient(sandbox: Sandbox) -> None:
    from chat33_x import XPlatform

    from chat33_core.config import Settings
    from chat33_core.testing import publish_context

    platform = XPlatform(Settings.from_env({"CHAT33_X_API_BASE": "http://127.0.0.1:9"}))
    ctx = publish_context(platform, settings=platform.settings, http=sandbox.http)
    with pytest.raises(TransientError) as info:
        platform.publish(ctx)
    assert not isinstance(info.value, UnknownOutcome)
    assert info.value.platform_code == "network"
