"""Every error class: what the sandbox answers, and what the worker is told to do."""

from __future__ import annotations

from typing import Any

import pytest
from chat33_instagram.graph import INSTAGRAM

from chat33_core.errors import (
    CredentialsExpired,
    PermanentError,
    QuotaExceeded,
    ReconnectRequired,
    Throttled,
    TransientError,
    UnknownOutcome,
)
from chat33_core.graph import GraphError, envelope_error
from chat33_core.models import MediaType
from chat33_core.testing import publish_context


def envelope(code: int, subcode: int | None = None, message: str = "boom",
             user_msg: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code,
                             "fbtrace_id": "Axyz"}
    if subcode is not None:
        error["error_subcode"] = subcode
    if user_msg:
        error["error_user_msg"] = user_msg
    return {"error": error}


def fail_next(control: Any, method: str, path: str, body: Any, status: int = 400,
              **extra: Any) -> None:
    control("POST", "/_sandbox/faults", json={"method": method, "path": path,
                                              "status": status, "body": body, **extra})


def publish(platform: Any, settings: Any, files: list[Any], **kw: Any) -> Any:
    return platform.publish(publish_context(platform, settings=settings, media=files, **kw))


# --- the mapping, code by code (platforms.md §1.7) ------------------------------------

@pytest.mark.parametrize(("code", "subcode", "expected"), [
    (-2, 2207003, TransientError),
    (-1, 2207001, TransientError),
    (-1, 2207032, TransientError),
    (-2, 2207020, TransientError),
    (-1, 2207053, TransientError),
    (24, 2207008, TransientError),
    (1, None, TransientError),
    (2, None, TransientError),
    (4, None, Throttled),
    (17, None, Throttled),
    (32, None, Throttled),
    (341, None, Throttled),
    (613, None, Throttled),
    (80002, None, Throttled),
    (9007, 2207027, TransientError),
    (9, 2207042, QuotaExceeded),
    (190, None, CredentialsExpired),
    (190, 463, CredentialsExpired),
    (102, None, CredentialsExpired),
    (190, 458, ReconnectRequired),
    (190, 460, ReconnectRequired),
    (190, 467, ReconnectRequired),
    (190, 492, ReconnectRequired),
    (10, None, ReconnectRequired),
    (200, None, ReconnectRequired),
    (1, 2207057, PermanentError),
    (4, 2207051, PermanentError),
    (25, 2207050, PermanentError),
    (24, 2207006, PermanentError),
    (100, 2207023, PermanentError),
    (100, 2207028, PermanentError),
    (100, 2207040, PermanentError),
    (352, 2207026, PermanentError),
    (9004, 2207052, PermanentError),
    (36000, 2207004, PermanentError),
    (36001, 2207005, PermanentError),
    (36003, 2207009, PermanentError),
    (36004, 2207010, PermanentError),
    (368, None, PermanentError),
    (506, None, PermanentError),
])
def test_graph_error_maps_to_what_the_worker_must_do(code, subcode, expected):
    error = envelope_error(GraphError.parse(envelope(code, subcode)), INSTAGRAM)
    assert type(error) is expected
    assert error.platform_code == (f"{code}/{subcode}" if subcode else str(code))


def test_user_fixable_errors_carry_the_platforms_user_message():
    error = envelope_error(GraphError.parse(envelope(
        36000, 2207004, "The image size is too large.",
        user_msg="The image is too large to download. It should be less than 8 MiB.")),
        INSTAGRAM)
    assert isinstance(error, PermanentError)
    assert error.message == "The image is too large to download. It should be less than 8 MiB."


# --- over HTTP against the sandbox ---------------------------------------------------------

@pytest.mark.parametrize(("code", "subcode"), [(-2, 2207003), (-1, 2207001), (1, None),
                                               (2, None)])
def test_transient_graph_errors_are_retried_later(platform, settings, media, control,
                                                  code, subcode):
    fail_next(control, "POST", r"/media$", envelope(code, subcode))
    with pytest.raises(TransientError) as caught:
        publish(platform, settings, [media("square.jpg")])
    assert caught.value.platform_code == (f"{code}/{subcode}" if subcode else str(code))


@pytest.mark.parametrize("code", [4, 17, 32, 613, 80002])
def test_throttling_waits_for_the_estimated_time_to_regain_access(
        platform, settings, media, control, code):
    control("POST", "/_sandbox/throttle", json={"code": code, "count": 1, "minutes": 7})
    with pytest.raises(TransientError) as caught:
        publish(platform, settings, [media("square.jpg")])
    assert caught.value.platform_code == str(code)
    assert caught.value.retry_after == 7 * 60


def test_hourly_call_budget_spent_throttles_with_80002(platform, settings, media, control):
    control("POST", "/_sandbox/config", json={"callsPerHour": 3})
    with pytest.raises(TransientError) as caught:
        publish(platform, settings, [media("square.jpg")])
    assert caught.value.platform_code == "80002"
    assert caught.value.retry_after is not None and caught.value.retry_after >= 60


def test_high_app_usage_is_logged(platform, settings, media, control):
    control("POST", "/_sandbox/config", json={"callsPerHour": 6})
    events: list[Any] = []
    publish(platform, settings, [media("square.jpg")], events=events)
    assert any(e[0] == "rate_limit_warning" for e in events)


def test_unsupported_image_format_is_refused_with_the_users_message(
        platform, settings, media, control):
    with pytest.raises(PermanentError) as caught:
        publish(platform, settings, [media("picture.png")])
    assert caught.value.platform_code == "36001/2207005"
    assert "PNG" in caught.value.message


def test_aspect_ratio_out_of_range(platform, settings, media):
    with pytest.raises(PermanentError) as caught:
        publish(platform, settings, [media("tall.jpg")])
    assert caught.value.platform_code == "36003/2207009"
    assert "540:960" in caught.value.message


def test_image_over_8_mib(platform, settings, media, media_dir):
    big = media_dir / "big.jpg"
    if not big.exists():
        data = (media_dir / "square.jpg").read_bytes()
        big.write_bytes(data + b"\0" * (8 * 1024 * 1024 + 1 - len(data)))
    with pytest.raises(PermanentError) as caught:
        publish(platform, settings, [media("big.jpg")])
    assert caught.value.platform_code == "36000/2207004"
    assert "8 MiB" in caught.value.message


def test_caption_with_too_many_hashtags(platform, settings, media):
    text = " ".join(f"#tag{i}" for i in range(31))
    with pytest.raises(PermanentError) as caught:
        publish(platform, settings, [media("square.jpg")], text=text)
    assert caught.value.platform_code == "36004/2207010"


def test_caption_with_too_many_mentions(platform, settings, media):
    text = " ".join(f"@user{i}" for i in range(21))
    with pytest.raises(PermanentError) as caught:
        publish(platform, settings, [media("square.jpg")], text=text)
    assert caught.value.platform_code == "100/2207040"


def test_thumb_offset_beyond_the_video(platform, settings, media):
    with pytest.raises(PermanentError) as caught:
        publish(platform, settings, [media("reel.mp4")], media_type=MediaType.REEL,
                platform_config={"instagram": {"thumbOffsetMs": 60_000}})
    assert caught.value.platform_code == "1/2207057"


def test_video_too_short_for_a_reel_fails_in_processing(platform, settings, media):
    with pytest.raises(PermanentError) as caught:
        publish(platform, settings, [media("short.mp4")], media_type=MediaType.REEL)
    assert caught.value.platform_code == "ERROR/2207026"


def test_media_the_platform_cannot_fetch(platform, settings, media, media_url):
    missing = media("square.jpg")
    from chat33_core.platforms import MediaFile

    gone = MediaFile(path=missing.path, info=missing.info, url=f"{media_url}/nowhere.jpg")
    with pytest.raises(PermanentError) as caught:
        publish(platform, settings, [gone])
    assert caught.value.platform_code == "9004/2207052"


def test_carousel_count_error_from_the_platform(platform, settings, media, control):
    fail_next(control, "POST", r"/media$", envelope(
        100, 2207028, user_msg="A carousel needs 2 to 10 items."))
    with pytest.raises(PermanentError) as caught:
        publish(platform, settings, [media("square.jpg")])
    assert caught.value.message == "A carousel needs 2 to 10 items."


def test_expired_token_asks_for_a_refresh(platform, settings, media, control):
    control("POST", "/_sandbox/tokens", json={"token": "old-token", "expiresAt": 1})
    from chat33_core.models import Credentials

    with pytest.raises(CredentialsExpired) as caught:
        publish(platform, settings, [media("square.jpg")],
                credentials=Credentials(access_token="old-token"))
    assert caught.value.platform_code == "190/463"


def test_invalidated_session_needs_a_reconnect(platform, settings, media, control):
    control("POST", "/_sandbox/tokens", json={"token": "revoked", "revoked": True})
    from chat33_core.models import Credentials

    with pytest.raises(ReconnectRequired) as caught:
        publish(platform, settings, [media("square.jpg")],
                credentials=Credentials(access_token="revoked"))
    assert caught.value.platform_code == "190/460"


def test_quota_error_from_media_publish_defers(platform, settings, media, control):
    fail_next(control, "POST", r"/media_publish$", envelope(9, 2207042))
    with pytest.raises(QuotaExceeded) as caught:
        publish(platform, settings, [media("square.jpg")])
    assert caught.value.retry_at is not None


def test_server_error_on_container_creation_is_transient(platform, settings, media, control):
    fail_next(control, "POST", r"/media$", "Service Unavailable", status=503)
    with pytest.raises(TransientError):
        publish(platform, settings, [media("square.jpg")])


def test_server_error_on_media_publish_is_an_unknown_outcome(platform, settings, media,
                                                             control):
    fail_next(control, "POST", r"/media_publish$", "Internal Server Error", status=500)
    with pytest.raises(UnknownOutcome):
        publish(platform, settings, [media("square.jpg")])


def test_unreachable_platform_is_transient(settings, media):
    from chat33_instagram import InstagramPlatform

    from chat33_core.config import Settings

    closed = InstagramPlatform(Settings.from_env({
        "CHAT33_INSTAGRAM_API_BASE": "http://127.0.0.1:9", "CHAT33_POLL_INTERVAL_S": "0"}))
    with pytest.raises(TransientError):
        closed.publish(publish_context(closed, settings=closed.settings,
                                       media=[media("square.jpg")]))
