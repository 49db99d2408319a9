"""shared.usage with several billed attempts: each model's tokens and cost on its own record,
the request on the model that answered (a stream cut and continued on a fallback)."""

from __future__ import annotations

from typing import Any

from orbyt.shared.catalog import default_catalog
from orbyt.shared.usage import UsageEvent, cost_micros, increments

PRIMARY, FALLBACK = "openai/gpt-5-mini", "anthropic/claude-3-haiku"


def event(status: int, usage: dict[str, Any] | None, key_source: str = "pool") -> UsageEvent:
    return UsageEvent("key_1", FALLBACK, "anthropic", key_source, status, 2, 40.4, usage)


SHARES = {
    "prompt_tokens": 94,
    "completion_tokens": 60,
    "total_tokens": 154,
    "by_model": [
        {
            "model": PRIMARY,
            "key_source": "pool",
            "prompt_tokens": 4,
            "completion_tokens": 40,
            "estimated": True,
        },
        {
            "model": FALLBACK,
            "key_source": "byok",
            "prompt_tokens": 90,
            "completion_tokens": 20,
            "cached_tokens": 30,
        },
    ],
}


def test_each_attempt_is_recorded_on_its_own_model() -> None:
    catalog = default_catalog()
    got = increments(event(200, SHARES, key_source="byok"), catalog)
    assert got == {
        (FALLBACK, "requests"): 1,
        (FALLBACK, "attempts"): 2,
        (FALLBACK, "latency_ms"): 40,
        (FALLBACK, "lat_le_50"): 1,
        (FALLBACK, "byok_requests"): 1,
        (PRIMARY, "prompt_tokens"): 4,
        (PRIMARY, "completion_tokens"): 40,
        (PRIMARY, "cached_tokens"): 0,
        (PRIMARY, "cost_micros"): cost_micros(catalog, PRIMARY, 4, 40),  # the pool paid
        (FALLBACK, "prompt_tokens"): 90,
        (FALLBACK, "completion_tokens"): 20,
        (FALLBACK, "cached_tokens"): 30,
        (FALLBACK, "provider_billed_cost_micros"): cost_micros(catalog, FALLBACK, 90, 20),
    }


def test_a_failed_request_still_records_what_its_cut_attempts_were_billed() -> None:
    cut_only = {**SHARES, "by_model": SHARES["by_model"][:1]}
    got = increments(event(502, cut_only), default_catalog())
    assert got[(FALLBACK, "errors")] == 1 and got[(FALLBACK, "requests")] == 1
    assert got[(PRIMARY, "completion_tokens")] == 40


def test_a_single_attempt_is_recorded_as_before() -> None:
    usage = {"prompt_tokens": 7, "completion_tokens": 3}
    got = increments(event(200, usage), default_catalog())
    assert got[(FALLBACK, "prompt_tokens")] == 7 and got[(FALLBACK, "requests")] == 1
    assert {model for model, _ in got} == {FALLBACK}
    failed = increments(event(503, None), default_catalog())
    assert failed == {
        (FALLBACK, "requests"): 1,
        (FALLBACK, "attempts"): 2,
        (FALLBACK, "latency_ms"): 40,
        (FALLBACK, "lat_le_50"): 1,
        (FALLBACK, "errors"): 1,
    }
