"""chat33_core.metrics: the names list matches the metrics defined, and the delay is
measured from the schedule whatever the datetimes' zones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client import REGISTRY

from chat33_core import metrics


def _delay_sum(platform: str) -> float:
    return REGISTRY.get_sample_value("chat33_publish_delay_seconds_sum",
                                     {"platform": platform}) or 0.0


def test_every_defined_metric_is_named_once() -> None:
    defined = {name for name, kind in metrics.NAMES.items() if name != metrics.QUEUE_POSTS}
    registered = set()
    for collector in (metrics.HTTP_REQUEST_DURATION, metrics.POSTS_CREATED,
                      metrics.PUBLISH_ATTEMPTS, metrics.PUBLISH_DURATION,
                      metrics.PUBLISH_DELAY, metrics.WEBHOOK_DELIVERIES,
                      metrics.TOKEN_REFRESHES, metrics.PLATFORM_LIMIT_WAITS):
        family, = collector.describe()
        registered.add(family.name + "_total" if family.type == "counter" else family.name)
    assert registered == defined
    assert all(name.startswith("chat33_") for name in metrics.NAMES)


def test_the_delay_counts_naive_datetimes_as_utc_and_early_starts_as_zero() -> None:
    due = datetime(2026, 1, 1, 12, 0, 0)
    before = _delay_sum("delaytest")
    metrics.record_delay("delaytest", due, due.replace(tzinfo=UTC) + timedelta(seconds=2))
    assert _delay_sum("delaytest") - before == 2.0
    metrics.record_delay("delaytest", due, due - timedelta(seconds=5))
    assert _delay_sum("delaytest") - before == 2.0
    assert REGISTRY.get_sample_value("chat33_publish_delay_seconds_count",
                                     {"platform": "delaytest"}) == 2


def test_limit_waits_are_counted_by_platform() -> None:
    def waits() -> float:
        return REGISTRY.get_sample_value("chat33_platform_limit_waits_total",
                                         {"platform": "waittest"}) or 0.0

    before = waits()
    metrics.record_limit_wait("waittest")
    metrics.record_limit_wait("waittest")
    assert waits() - before == 2
