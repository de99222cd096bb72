"""Each class of Graph error becomes the chat33 error that tells the worker what to do."""

from __future__ import annotations

import json

import httpx
import pytest
from chat33_facebook.graph import facebook_error

from chat33_core.errors import (
    PermanentError,
    ReconnectRequired,
    Throttled,
    TransientError,
    UnknownOutcome,
)
from chat33_core.graph import usage_wait_s
from chat33_core.models import MediaType

from .conftest import FB


def envelope(code: int, message: str = "m", **extra: object) -> dict:
    return {"error": {"message": message, "type": "OAuthException", "code": code, **extra}}


def test_revoked_page_token_requires_reconnecting(fb: FB) -> None:
    fb.configure(revoked_tokens=["sandbox-token"])
    with pytest.raises(ReconnectRequired) as caught:
        fb.platform.publish(fb.ctx("Token gone"))
    assert caught.value.platform_code == "190/460"
    assert "password was changed" in caught.value.message
    assert fb.state()["posts"] == []


def test_page_throttling_waits_as_long_as_the_usage_header_says(fb: FB) -> None:
    fb.configure(page_call_limit=2, throttle_minutes=7)
    fb.platform.publish(fb.ctx("First"))  # feed + permalink: two calls
    with pytest.raises(TransientError) as caught:
        fb.platform.publish(fb.ctx("Second"))
    assert caught.value.platform_code == "32"
    assert caught.value.retry_after == 7 * 60
    assert len(fb.state()["posts"]) == 1


def test_app_throttling_without_an_estimate_waits_the_default(fb: FB) -> None:
    fb.configure(app_call_limit=0)
    with pytest.raises(TransientError) as caught:
        fb.platform.publish(fb.ctx("Throttled"))
    assert caught.value.platform_code == "4" and caught.value.retry_after == 300


def test_unreachable_photo_fails_with_facebooks_message_for_the_user(fb: FB) -> None:
    [media] = fb.media("one.jpg")
    from attrs import evolve

    gone = evolve(media, url=f"{fb.media_url}/missing.jpg")
    with pytest.raises(PermanentError) as caught:
        fb.platform.publish(fb.ctx("Missing photo", media=[gone]))
    assert caught.value.platform_code == "324"
    assert "could not download" in caught.value.message and "HTTP 404" in caught.value.message


def test_photo_url_that_is_not_an_image_is_refused_by_its_bytes(fb: FB) -> None:
    [media] = fb.media("one.jpg")
    from attrs import evolve

    fake = evolve(media, url=f"{fb.media_url}/not-an-image.jpg")
    with pytest.raises(PermanentError, match="is not a JPEG, PNG, GIF, BMP or TIFF"):
        fb.platform.publish(fb.ctx("Fake photo", media=[fake]))


def test_duplicate_post_is_permanent_with_a_clear_message(fb: FB) -> None:
    fb.platform.publish(fb.ctx("Same words"))
    with pytest.raises(PermanentError, match="duplicate") as caught:
        fb.platform.publish(fb.ctx("Same words"))
    assert caught.value.platform_code == "506"


def test_policy_block_368_is_permanent(fb: FB) -> None:
    fb.fault(method="POST", path="/feed$", status=400, body=envelope(
        368, "It looks like you were misusing this feature by going too fast.",
        error_user_msg="You're temporarily blocked from posting."))
    with pytest.raises(PermanentError, match="temporarily blocked") as caught:
        fb.platform.publish(fb.ctx("Blocked"))
    assert caught.value.platform_code == "368"


def test_missing_permission_requires_reconnecting(fb: FB) -> None:
    fb.fault(method="POST", path="/feed$", status=400,
             body=envelope(200, "(#200) Requires pages_manage_posts permission"))
    with pytest.raises(ReconnectRequired, match="pages_manage_posts"):
        fb.platform.publish(fb.ctx("No permission"))


def test_transient_error_on_a_step_that_creates_nothing_is_retryable(fb: FB) -> None:
    fb.fault(method="POST", path="/photos$", status=500,
             body=envelope(2, "Service temporarily unavailable", is_transient=True))
    with pytest.raises(TransientError) as caught:
        fb.platform.publish(fb.ctx("Album", media=fb.media("one.jpg", "two.png")))
    assert not isinstance(caught.value, UnknownOutcome)
    assert caught.value.platform_code == "2"


def test_transient_error_on_the_creating_request_is_an_unknown_outcome(fb: FB) -> None:
    fb.fault(method="POST", path="/feed$", status=500,
             body=envelope(1, "An unknown error occurred", is_transient=True))
    with pytest.raises(UnknownOutcome):
        fb.platform.publish(fb.ctx("Unknown"))


def test_reel_processing_failure_is_permanent_with_the_phase_message(fb: FB) -> None:
    fb.configure(reel_processing_error="The audio track is corrupt")
    with pytest.raises(PermanentError, match="processing phase: The audio track is corrupt"):
        fb.platform.publish(fb.ctx("Bad reel", media=fb.media("reel.mp4"),
                                   media_type=MediaType.REEL))


def test_video_without_an_app_id_is_refused_clearly(fb: FB) -> None:
    settings = fb.settings.with_(env={k: v for k, v in fb.settings.env.items()
                                      if k != "CHAT33_FACEBOOK_APP_ID"})
    with pytest.raises(PermanentError, match="CHAT33_FACEBOOK_APP_ID"):
        type(fb.platform)(settings).publish(fb.ctx("Video", media=fb.media("clip.mp4"),
                                                   media_type=MediaType.VIDEO))


def test_connection_refused_is_transient_even_for_a_creating_request(fb: FB) -> None:
    settings = fb.settings.with_(env={**fb.settings.env,
                                      "CHAT33_FACEBOOK_API_BASE": "http://127.0.0.1:9"})
    with pytest.raises(TransientError) as caught:
        type(fb.platform)(settings).publish(fb.ctx("Nobody home"))
    assert not isinstance(caught.value, UnknownOutcome)


# --- the mapping itself, on Graph answers built as Meta sends them ---------------------------

def answer(status: int, body: object, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, content=json.dumps(body).encode(), headers=headers)


def test_user_message_becomes_the_error_message() -> None:
    err = facebook_error(answer(400, envelope(
        100, "Invalid parameter", error_subcode=1366046, error_user_title="Photo too small",
        error_user_msg="Photos should be at least 100 pixels wide.")))
    assert isinstance(err, PermanentError)
    assert err.message == "Photo too small: Photos should be at least 100 pixels wide."
    assert err.platform_code == "100/1366046"


@pytest.mark.parametrize("code", [4, 17, 32, 341, 613, 80001])
def test_every_throttling_code_is_a_rate_limit_to_wait_for(code: int) -> None:
    err = facebook_error(answer(400, envelope(code)), creates=True)
    assert type(err) is Throttled and err.retry_after == 300


def test_business_use_case_estimate_wins_for_the_wait() -> None:
    headers = {"X-Business-Use-Case-Usage": json.dumps({"1": [
        {"type": "pages", "call_count": 100, "estimated_time_to_regain_access": 12}]}),
        "X-App-Usage": json.dumps({"call_count": 100})}
    assert usage_wait_s(headers) == 720
    assert usage_wait_s({"X-App-Usage": json.dumps({"call_count": 40})}) is None


@pytest.mark.parametrize("code", [190, 102])
def test_token_errors_need_a_reconnect(code: int) -> None:
    err = facebook_error(answer(400, envelope(code, error_subcode=463)))
    assert isinstance(err, ReconnectRequired) and "token expired" in err.message


def test_gateway_errors_without_an_envelope() -> None:
    assert type(facebook_error(answer(503, {}))) is TransientError
    assert isinstance(facebook_error(answer(502, {}), creates=True), UnknownOutcome)


def test_upload_host_errors_resume_or_fail() -> None:
    offset = facebook_error(answer(400, {"debug_info": {"type": "OffsetInvalidError",
                                                     "message": "bad offset"}}))
    assert type(offset) is TransientError
    failed = facebook_error(answer(400, {"debug_info": {"type": "ProcessingFailedError",
                                                     "message": "corrupt"}}))
    assert isinstance(failed, PermanentError) and "corrupt" in failed.message
