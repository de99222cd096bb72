"""Every TikTok failure maps to what the worker must do (envelope codes, HTTP 200 too)."""

from __future__ import annotations

import pytest

from chat33_core.errors import (
    CredentialsExpired,
    NotSupported,
    PermanentError,
    QuotaExceeded,
    ReconnectRequired,
    TransientError,
    UnknownOutcome,
)
from chat33_core.models import utcnow
from chat33_core.platforms import DeleteContext, MemoryCheckpoints

from .conftest import TT

INIT = r"/v2/post/publish/video/init/"


def envelope(code: str, message: str = "") -> dict:
    return {"data": {}, "error": {"code": code, "message": message, "log_id": "LOG123"}}


def test_rate_limit_is_transient_with_the_endpoint_window(tt: TT) -> None:
    tt.configure(rateLimits={"init": 1})
    tt.platform.publish(tt.ctx(tt.media("clip.mp4")))
    with pytest.raises(TransientError) as err:
        tt.platform.publish(tt.ctx(tt.media("clip.mp4")))
    assert err.value.platform_code == "rate_limit_exceeded"
    assert err.value.retry_after == pytest.approx(10.0)  # 6 a minute
    assert tt.state()["inits"] == 1


def test_creator_info_rate_limit_is_per_token(tt: TT) -> None:
    tt.configure(rateLimits={"creator_info": 1})
    tt.platform.publish(tt.ctx(tt.media("clip.mp4")))
    with pytest.raises(TransientError):
        tt.platform.publish(tt.ctx(tt.media("clip.mp4")))
    # another creator's token has its own budget
    tt.platform.publish(tt.ctx(tt.media("clip.mp4"), token="other-creator-token"))
    assert len(tt.state()["posts"]) == 2


def test_status_polling_rides_out_a_rate_limit(tt: TT) -> None:
    tt.fault(method="POST", path="status/fetch", status=429,
             body=envelope("rate_limit_exceeded"), count=2)
    result = tt.platform.publish(tt.ctx(tt.media("clip.mp4")))
    assert result.first.external_id


def test_daily_cap_with_http_200_defers(tt: TT) -> None:
    tt.configure(dailyCap=1)
    tt.platform.publish(tt.ctx(tt.media("clip.mp4")))
    with pytest.raises(QuotaExceeded) as err:
        tt.platform.publish(tt.ctx(tt.media("clip.mp4")))
    assert err.value.platform_code == "spam_risk_too_many_posts"
    assert err.value.retry_at is not None and err.value.retry_at > utcnow()
    assert tt.state()["inits"] == 1
    assert tt.paths()[-1] == "/v2/post/publish/creator_info/query/"


def test_daily_cap_at_init_defers(tt: TT) -> None:
    tt.fault(method="POST", path=INIT, status=403, body=envelope("spam_risk_too_many_posts"))
    with pytest.raises(QuotaExceeded):
        tt.platform.publish(tt.ctx(tt.media("clip.mp4")))


def test_invalid_token_asks_for_a_refresh(tt: TT) -> None:
    tt.configure(expireTokens=["sandbox-token"])
    with pytest.raises(CredentialsExpired) as err:
        tt.platform.publish(tt.ctx(tt.media("clip.mp4")))
    assert err.value.platform_code == "access_token_invalid"


def test_missing_scope_needs_a_reconnect(tt: TT) -> None:
    with pytest.raises(ReconnectRequired):
        tt.platform.publish(tt.ctx(tt.media("clip.mp4"), token="noscope-token"))


def test_privacy_level_not_offered_fails_before_any_init(tt: TT) -> None:
    ctx = tt.ctx(tt.media("clip.mp4"), token="private-account-token")
    with pytest.raises(PermanentError) as err:
        tt.platform.publish(ctx)
    assert err.value.platform_code == "privacy_level_option_mismatch"
    assert "FOLLOWER_OF_CREATOR" in err.value.message
    assert tt.state()["inits"] == 0


def test_private_account_chosen_by_a_control_call(tt: TT) -> None:
    tt.configure(account="private")
    with pytest.raises(PermanentError):
        tt.platform.publish(tt.ctx(tt.media("clip.mp4")))
    tt.platform.publish(tt.ctx(tt.media("clip.mp4"), config={
        "privacyLevel": "FOLLOWER_OF_CREATOR"}))
    assert tt.state()["posts"][0]["privacyLevel"] == "FOLLOWER_OF_CREATOR"


def test_privacy_mismatch_from_init_is_permanent_with_a_clear_message(tt: TT) -> None:
    tt.fault(method="POST", path=INIT, status=403, body=envelope(
        "privacy_level_option_mismatch", "privacy_level mismatch"))
    with pytest.raises(PermanentError) as err:
        tt.platform.publish(tt.ctx(tt.media("clip.mp4")))
    assert "choose one of the account's options" in err.value.message
    assert "LOG123" in err.value.message


def test_unaudited_client_can_post_only_private(tt: TT) -> None:
    tt.configure(unaudited=True)
    with pytest.raises(PermanentError) as err:
        tt.platform.publish(tt.ctx(tt.media("clip.mp4")))
    assert err.value.platform_code == "unaudited_client_can_only_post_to_private_accounts"
    assert "SELF_ONLY" in err.value.message
    tt.platform.publish(tt.ctx(tt.media("clip.mp4"), token="private-token",
                               config={"privacyLevel": "SELF_ONLY"}))
    assert len(tt.state()["posts"]) == 1


def test_unverified_media_domain_is_permanent(tt: TT) -> None:
    tt.configure(verifiedPrefixes=["https://media.example.com/"])
    with pytest.raises(PermanentError) as err:
        tt.platform.publish(tt.ctx(tt.media("one.jpg")))
    assert err.value.platform_code == "url_ownership_unverified"
    assert "CHAT33_PUBLIC_BASE_URL" in err.value.message


def test_invalid_param_is_permanent(tt: TT) -> None:
    tt.fault(method="POST", path=INIT, status=400, body=envelope("invalid_param", "bad title"))
    with pytest.raises(PermanentError) as err:
        tt.platform.publish(tt.ctx(tt.media("clip.mp4")))
    assert err.value.platform_code == "invalid_param"


def test_server_error_on_creator_info_is_transient(tt: TT) -> None:
    tt.fault(method="POST", path="creator_info", status=503, body="busy")
    with pytest.raises(TransientError):
        tt.platform.publish(tt.ctx(tt.media("clip.mp4")))


def test_internal_fail_reason_is_retried_with_a_new_publish(tt: TT) -> None:
    tt.configure(failReasons=["internal"])
    cp = MemoryCheckpoints()
    with pytest.raises(TransientError) as err:
        tt.platform.publish(tt.ctx(tt.media("clip.mp4"), checkpoints=cp))
    assert err.value.platform_code == "internal"
    first = next(iter(tt.state()["publishes"]))
    assert cp.data == {"abandoned": [first]}
    tt.platform.publish(tt.ctx(tt.media("clip.mp4"), checkpoints=cp))
    state = tt.state()
    assert state["inits"] == 2 and len(state["posts"]) == 1


def test_media_fail_reason_is_permanent_and_stays_so(tt: TT) -> None:
    tt.configure(failReasons=["frame_rate_check_failed"])
    cp = MemoryCheckpoints()
    for _ in range(2):
        with pytest.raises(PermanentError) as err:
            tt.platform.publish(tt.ctx(tt.media("clip.mp4"), checkpoints=cp))
        assert "frame_rate_check_failed" in err.value.message
    assert tt.state()["inits"] == 1


def test_cap_fail_reason_defers(tt: TT) -> None:
    tt.configure(failReasons=["spam_risk_too_many_posts"])
    with pytest.raises(QuotaExceeded):
        tt.platform.publish(tt.ctx(tt.media("clip.mp4")))


def test_lost_photo_init_answer_is_unknown_and_never_sent_twice(tt: TT) -> None:
    tt.fault(method="POST", path="content/init", status=502, body="bad gateway",
             after_body=True)
    cp = MemoryCheckpoints()
    ctx = tt.ctx(tt.media("one.jpg"), checkpoints=cp)
    with pytest.raises(UnknownOutcome):
        tt.platform.publish(ctx)
    with pytest.raises(UnknownOutcome):
        tt.platform.confirm(ctx)
    with pytest.raises(UnknownOutcome):
        tt.platform.publish(ctx)
    assert tt.state()["inits"] == 1


def test_refused_photo_init_leaves_nothing_pending(tt: TT) -> None:
    tt.fault(method="POST", path="content/init", status=400, body=envelope("invalid_param"))
    cp = MemoryCheckpoints()
    with pytest.raises(PermanentError):
        tt.platform.publish(tt.ctx(tt.media("one.jpg"), checkpoints=cp))
    assert "initPending" not in cp.data


def test_delete_is_not_supported(tt: TT) -> None:
    ctx = DeleteContext(account=tt.account, credentials=tt.ctx([]).credentials, http=tt.http,
                        settings=tt.settings, external_ids=["1"])
    with pytest.raises(NotSupported) as err:
        tt.platform.delete(ctx)
    assert "TikTok" in err.value.message
