"""Batch line metrics: labels from closed sets only, one count per recorded outcome."""

from __future__ import annotations

from prometheus_client import REGISTRY

from orbyt.shared import metrics
from orbyt.shared.catalog import catalog_for
from orbyt.shared.settings import Settings


def _lines(model: str, provider: str, outcome: str) -> float:
    labels = {"model": model, "provider": provider, "outcome": outcome}
    return REGISTRY.get_sample_value("orbyt_batch_lines_total", labels) or 0.0


def test_answered_and_failed_lines_are_counted_by_model_and_provider() -> None:
    catalog = catalog_for(Settings(redis_url="redis://x"))
    done0 = _lines("openai/gpt-5-mini", "azure", "done")
    failed0 = _lines("openai/gpt-5-mini", "openai", "failed")
    metrics.observe_batch_line(catalog, "openai/gpt-5-mini", "azure", ok=True)
    metrics.observe_batch_line(catalog, "openai/gpt-5-mini", "whatever", ok=False)
    assert _lines("openai/gpt-5-mini", "azure", "done") == done0 + 1
    assert _lines("openai/gpt-5-mini", "openai", "failed") == failed0 + 1


def test_a_model_outside_the_catalog_collapses() -> None:
    catalog = catalog_for(Settings(redis_url="redis://x"))
    metrics.observe_batch_line(catalog, "acme/" + "x" * 300, "acme", ok=False)
    assert _lines("acme/other", "acme", "failed") >= 1
