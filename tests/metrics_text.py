"""Reading the Prometheus text the API and the worker serve, in tests."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def families(text: str) -> set[str]:
    """The metric names in ``text`` (a counter as ``..._total``, like PromQL sees it)."""
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name + "_total" if family.type == "counter" else family.name)
    return names


def value(text: str, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels`` (0 when none)."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                total += sample.value
    return total
