"""Each class of YouTube error, over HTTP against the sandbox, and token refresh."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from chat33_youtube import YouTubePlatform
from chat33_youtube.google_errors import next_quota_reset

from chat33_core.config import Settings
from chat33_core.errors import (
    CredentialsExpired,
    PermanentError,
    QuotaExceeded,
    ReconnectRequired,
    TransientError,
)
from chat33_core.models import Account, Credentials, utcnow
from chat33_core.platforms import DeleteContext, RefreshContext

PACIFIC = ZoneInfo("America/Los_Angeles")


def envelope(status: int, reason: str, message: str = "refused") -> dict[str, Any]:
    return {"error": {"code": status, "message": message,
                      "errors": [{"message": message, "domain": "youtube", "reason": reason}]}}


def fail_next(control: Any, status: int, reason: str, path: str = "/upload/", method: str = "",
              **kw: Any) -> None:
    control("POST", "/_sandbox/faults", json={"method": method, "path": path,
                                              "status": status, "count": 20,
                                              "body": envelope(status, reason), **kw})


def test_quota_exceeded_defers_until_midnight_pacific(platform, context, video, control,
                                                      state):
    control("POST", "/_sandbox/config", json={"insertQuota": 0})
    ctx, _ = context(media=[video])
    with pytest.raises(QuotaExceeded) as caught:
        platform.publish(ctx)
    assert caught.value.platform_code == "quotaExceeded"
    at = caught.value.retry_at
    assert at is not None and utcnow() < at <= utcnow() + timedelta(hours=24)
    assert at.astimezone(PACIFIC).time().isoformat() == "00:00:00"
    assert state()["quota"]["videos.insert"] == 0 and ctx.checkpoints.load() == {}


def test_the_channel_upload_limit_defers_too(platform, context, video, control):
    control("POST", "/_sandbox/config", json={"uploadLimit": 0})
    with pytest.raises(QuotaExceeded) as caught:
        platform.publish(context(media=[video])[0])
    assert caught.value.platform_code == "uploadLimitExceeded"
    assert "daily upload limit" in caught.value.message


def test_quota_buckets_are_counted_separately(platform, context, video, thumbnail, control,
                                              state):
    control("POST", "/_sandbox/config", json={"insertQuota": 1, "unitQuota": 49})
    result = platform.publish(context(media=[video], cover=thumbnail)[0])
    # the upload used the insert bucket; thumbnails.set needs 50 units: refused, logged
    assert result.first.extra["thumbnail"] == "refused"
    assert state()["quota"]["videos.insert"] == 1
    with pytest.raises(QuotaExceeded):
        platform.publish(context(media=[video])[0])


@pytest.mark.parametrize(("status", "reason"), [
    (403, "rateLimitExceeded"), (403, "userRateLimitExceeded"), (429, "rateLimitExceeded"),
    (503, "backendError"), (500, "internalError")])
def test_busy_answers_are_transient(platform, context, video, control, status, reason):
    fail_next(control, status, reason, method="POST")
    ctx, _ = context(media=[video])
    with pytest.raises(TransientError) as caught:
        platform.publish(ctx)
    assert caught.value.platform_code == reason
    assert ctx.checkpoints.load() == {}, "nothing was created"


def test_retry_after_is_passed_on(platform, context, video, control):
    fail_next(control, 429, "rateLimitExceeded", method="POST", headers={"Retry-After": "7"})
    with pytest.raises(TransientError) as caught:
        platform.publish(context(media=[video])[0])
    assert caught.value.retry_after == 7.0


@pytest.mark.parametrize(("config", "reason", "path"), [
    ({"title": "a <b> title"}, "invalidTitle", "platformConfig.youtube.title"),
    ({"categoryId": "music"}, "invalidCategoryId", "platformConfig.youtube.categoryId"),
    ({"privacyStatus": "public", "publishAt": "2031-01-01T00:00:00Z"}, "invalidPublishAt",
     "platformConfig.youtube.publishAt"),
    ({"tags": ["long tag"] * 60}, "invalidTags", "platformConfig.youtube.tags"),
])
def test_refused_metadata_is_permanent_and_names_the_field(platform, context, video, config,
                                                           reason, path):
    cfg = {"youtube": {"title": "ok", "selfDeclaredMadeForKids": False, **config}}
    with pytest.raises(PermanentError) as caught:
        platform.publish(context(media=[video], platform_config=cfg)[0])
    assert caught.value.platform_code == reason
    assert [d.path for d in caught.value.details] == [path]


def test_a_refused_description_names_the_text(platform, context, video):
    with pytest.raises(PermanentError) as caught:
        platform.publish(context(media=[video], text="a <b> c")[0])
    assert caught.value.platform_code == "invalidDescription"
    assert caught.value.details[0].path == "text"


def test_a_refused_token_asks_for_a_refresh_then_works(platform, context, video, control):
    control("POST", "/_sandbox/tokens", json={"expired": ["old-token"]})
    ctx, _ = context(media=[video], credentials=Credentials(access_token="old-token",
                                                            refresh_token="refresh-1"))
    with pytest.raises(CredentialsExpired) as caught:
        platform.publish(ctx)
    assert caught.value.platform_code == "authError"

    ctx.credentials = platform.refresh_credentials(ctx.credentials, refresh_context(platform,
                                                                                    ctx.http))
    assert platform.publish(ctx).first.external_id


def test_an_expired_token_mid_upload_keeps_the_session(platform, context, video, control,
                                                       state):
    fail_next(control, 401, "authError", method="PUT", count=1)
    ctx, _ = context(media=[video])
    with pytest.raises(CredentialsExpired):
        platform.publish(ctx)
    assert ctx.checkpoints.load()["sessionUri"]
    platform.publish(ctx)
    assert len(state()["sessions"]) == 1 and len(state()["videos"]) == 1


@pytest.mark.parametrize("reason", ["insufficientPermissions", "youtubeSignupRequired"])
def test_account_problems_need_a_reconnect(platform, context, video, control, reason):
    fail_next(control, 403 if reason == "insufficientPermissions" else 401, reason,
              method="POST")
    with pytest.raises(ReconnectRequired):
        platform.publish(context(media=[video])[0])


def test_other_refusals_of_a_chunk_are_permanent(platform, context, video, control):
    fail_next(control, 400, "badContent", method="PUT", count=1)
    with pytest.raises(PermanentError):
        platform.publish(context(media=[video])[0])


def test_a_session_that_never_answers_gives_up_for_now_and_resumes_later(
        platform, context, video, control, state):
    fail_next(control, 503, "backendError", method="PUT", count=30)
    ctx, _ = context(media=[video])
    with pytest.raises(TransientError) as caught:
        platform.publish(ctx)
    assert caught.value.platform_code == "uploadInterrupted"
    control("POST", "/_sandbox/reset")
    # the session is gone with the reset: the next attempt starts a new one and succeeds
    assert platform.publish(ctx).first.external_id
    assert len(state()["videos"]) == 1


def test_no_server_at_all_is_transient(context, video):
    settings = Settings.from_env({"CHAT33_YOUTUBE_API_BASE": "http://127.0.0.1:9"})
    platform = YouTubePlatform(settings)
    with pytest.raises(TransientError):
        platform.publish(context(media=[video], platform=platform, settings=settings)[0])


def test_next_quota_reset_follows_pacific_daylight_saving() -> None:
    winter = datetime(2026, 1, 15, 7, 59, tzinfo=UTC)  # 23:59 PST on the 14th
    assert next_quota_reset(winter) == datetime(2026, 1, 15, 8, 0, tzinfo=UTC)
    summer = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)  # 05:00 PDT
    assert next_quota_reset(summer) == datetime(2026, 7, 2, 7, 0, tzinfo=UTC)


# --- refresh -------------------------------------------------------------------------------


def refresh_context(platform: YouTubePlatform, http: Any) -> RefreshContext:
    account = Account(id="chan_1", org_id="org_1", platform="youtube", name="channel")
    return RefreshContext(account=account, http=http, settings=platform.settings)


def test_refresh_gets_a_new_access_token_and_keeps_the_refresh_token(platform, http, state):
    old = Credentials(access_token="a", refresh_token="refresh-1", extra={"channel": "UC1"})
    fresh = platform.refresh_credentials(old, refresh_context(platform, http))
    [issued] = state()["issuedTokens"]
    assert fresh.access_token == issued["accessToken"]
    assert (issued["refreshToken"], issued["clientId"]) == ("refresh-1", "client-1")
    # Google sent no new refresh token: the stored one stays (the core's rule)
    assert fresh.refresh_token is None and fresh.extra["channel"] == "UC1"
    assert old.replaced_by(fresh).refresh_token == "refresh-1"
    assert fresh.expires_at is not None
    assert timedelta(minutes=59) < fresh.expires_at - utcnow() <= timedelta(seconds=3599)


def test_a_revoked_refresh_token_needs_a_reconnect_naming_the_causes(platform, http,
                                                                     control):
    control("POST", "/_sandbox/tokens", json={"revoked": ["refresh-1"]})
    with pytest.raises(ReconnectRequired) as caught:
        platform.refresh_credentials(Credentials(access_token="a", refresh_token="refresh-1"),
                                     refresh_context(platform, http))
    message = caught.value.message
    assert caught.value.platform_code == "invalid_grant"
    assert "revoked" in message and "6 months" in message and "7 days" in message


def test_a_wrong_client_secret_is_named(platform, http, control):
    control("POST", "/_sandbox/config", json={"clientSecret": "the-right-one"})
    with pytest.raises(ReconnectRequired) as caught:
        platform.refresh_credentials(Credentials(access_token="a", refresh_token="r"),
                                     refresh_context(platform, http))
    assert "CHAT33_YOUTUBE_CLIENT_SECRET" in caught.value.message


def test_a_busy_token_endpoint_is_transient(platform, http, control):
    control("POST", "/_sandbox/faults", json={"path": "^/token", "status": 503, "body": {}})
    with pytest.raises(TransientError):
        platform.refresh_credentials(Credentials(access_token="a", refresh_token="r"),
                                     refresh_context(platform, http))


def test_no_refresh_token_needs_a_reconnect(platform, http):
    with pytest.raises(ReconnectRequired):
        platform.refresh_credentials(Credentials(access_token="a"),
                                     refresh_context(platform, http))


def test_the_token_url_defaults_to_google() -> None:
    from chat33_youtube.platform import TOKEN_URL

    assert TOKEN_URL == "https://oauth2.googleapis.com/token"
    assert YouTubePlatform(Settings.from_env({})).settings.token_url(
        "youtube", TOKEN_URL) == TOKEN_URL


# --- delete ----------------------------------------------------------------------------------


def delete_context(platform: YouTubePlatform, http: Any, ids: list[str],
                   events: list[Any] | None = None) -> DeleteContext:
    sink = events if events is not None else []
    return DeleteContext(
        account=Account(id="chan_1", org_id="org_1", platform="youtube", name="channel"),
        credentials=Credentials(access_token="t"), http=http, settings=platform.settings,
        external_ids=ids, log=lambda event, message, **data: sink.append((event, message)))


def test_delete_removes_the_video(platform, context, video, http, state):
    video_id = platform.publish(context(media=[video])[0]).first.external_id
    platform.delete(delete_context(platform, http, [video_id]))
    assert state()["deleted"] == [video_id] and state()["videos"] == []
    assert state()["quota"]["units"] == 50


def test_deleting_a_video_that_is_gone_succeeds(platform, http):
    events: list[Any] = []
    platform.delete(delete_context(platform, http, ["nope"], events))
    assert "already gone" in events[0][1]


def test_delete_without_quota_defers(platform, http, control):
    control("POST", "/_sandbox/config", json={"unitQuota": 10})
    with pytest.raises(QuotaExceeded):
        platform.delete(delete_context(platform, http, ["x"]))
