"""Prometheus observations of a finished request: tokens and cost per model, provider and
key source, each attempt's share on its own model (`usage.by_model`)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import fakeredis
import pytest
from prometheus_client import REGISTRY, generate_latest
from pydantic import SecretStr

from orbyt.api.auth import Authenticator
from orbyt.api.keystore import KeyStore
from orbyt.api.ledger import observe_request
from orbyt.shared import logs
from orbyt.shared.catalog import default_catalog
from orbyt.shared.settings import Settings
from orbyt.shared.usage import UsageEvent, cost_micros

CATALOG = default_catalog()
PRIMARY, FALLBACK = "openai/gpt-5-mini", "anthropic/claude-haiku-4-5"


def tokens(model: str, provider: str, key_source: str, kind: str) -> float:
    value = REGISTRY.get_sample_value(
        "orbyt_tokens_total",
        {"model": model, "provider": provider, "key_source": key_source, "type": kind},
    )
    return value or 0.0


def cost(model: str, provider: str, key_source: str) -> float:
    labels = {"model": model, "provider": provider, "key_source": key_source}
    return REGISTRY.get_sample_value("orbyt_cost_usd_total", labels) or 0.0


def test_catalog_models_are_known() -> None:
    assert CATALOG.get(PRIMARY) is not None and CATALOG.get(FALLBACK) is not None


def test_tokens_and_cost_of_one_attempt() -> None:
    before = {k: tokens(PRIMARY, "openai", "byok", k) for k in ("prompt", "completion", "cached")}
    before_reasoning = tokens(PRIMARY, "openai", "byok", "reasoning")
    before_cost = cost(PRIMARY, "openai", "byok")
    usage = {
        "prompt_tokens": 100,
        "completion_tokens": 40,
        "prompt_tokens_details": {"cached_tokens": 30},
        "completion_tokens_details": {"reasoning_tokens": 25},
    }
    observe_request(CATALOG, UsageEvent("k", PRIMARY, "openai", "byok", 200, 1, 5.0, usage))
    assert tokens(PRIMARY, "openai", "byok", "prompt") - before["prompt"] == 100
    assert tokens(PRIMARY, "openai", "byok", "completion") - before["completion"] == 40
    assert tokens(PRIMARY, "openai", "byok", "cached") - before["cached"] == 30
    assert tokens(PRIMARY, "openai", "byok", "reasoning") - before_reasoning == 25
    expected = cost_micros(CATALOG, PRIMARY, 100, 40) / 1e6
    assert cost(PRIMARY, "openai", "byok") - before_cost == pytest.approx(expected)


def test_every_attempt_is_counted_on_its_own_model() -> None:
    """A stream cut on the primary and continued on a fallback: both shares count."""
    before_primary = tokens(PRIMARY, "openai", "pool", "completion")
    before_fallback = tokens(FALLBACK, "anthropic", "pool", "completion")
    before_cost = cost(PRIMARY, "openai", "pool")
    usage = {
        "prompt_tokens": 190,
        "completion_tokens": 60,
        "by_model": [
            {"model": PRIMARY, "key_source": "pool", "prompt_tokens": 100, "completion_tokens": 40},
            {"model": FALLBACK, "key_source": "pool", "prompt_tokens": 90, "completion_tokens": 20},
        ],
    }
    observe_request(CATALOG, UsageEvent("k", FALLBACK, "anthropic", "pool", 200, 2, 5.0, usage))
    assert tokens(PRIMARY, "openai", "pool", "completion") - before_primary == 40
    assert tokens(FALLBACK, "anthropic", "pool", "completion") - before_fallback == 20
    expected = cost_micros(CATALOG, PRIMARY, 100, 40) / 1e6
    assert cost(PRIMARY, "openai", "pool") - before_cost == pytest.approx(expected)


def test_labels_stay_a_closed_set() -> None:
    """A model the catalog does not know collapses to `<provider>/other`."""
    usage = {"prompt_tokens": 5, "completion_tokens": 5}
    odd = "myvllm/sk-" + "x" * 40
    observe_request(CATALOG, UsageEvent("k", odd, "myvllm", "pool", 200, 1, 1.0, usage))
    assert tokens("myvllm/other", "myvllm", "pool", "prompt") >= 5
    assert b"sk-xxxx" not in generate_latest()


@pytest.fixture
def root_level() -> Iterator[None]:
    root, access = logging.getLogger(), logging.getLogger(logs.ACCESS_LOGGER)
    handlers, level, access_level = list(root.handlers), root.level, access.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    access.setLevel(access_level)


@pytest.mark.parametrize(
    ("level", "shown"),
    [("debug", True), ("info", True), ("warning", True), ("error", False), ("critical", False)],
)
def test_the_access_log_shows_at_the_default_level_and_below(
    root_level: None, level: str, shown: bool
) -> None:
    logs.configure(level)
    out = io.StringIO()
    logging.getLogger().handlers[0].setStream(out)  # type: ignore[attr-defined]
    logging.getLogger(logs.ACCESS_LOGGER).info(
        "200 m via p", extra={"event": "access", "key_name": "ci", "ttft_ms": 1.5}
    )
    logging.getLogger("orbyt.api").info("not at warning")
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    access = [x for x in lines if x["logger"] == logs.ACCESS_LOGGER]
    assert len(access) == (1 if shown else 0)
    if shown:
        assert access[0]["key_name"] == "ci" and access[0]["ttft_ms"] == 1.5
    assert len(lines) - len(access) == (1 if level in ("debug", "info") else 0)


async def test_the_principal_carries_the_keys_name_for_the_access_log() -> None:
    redis = fakeredis.aioredis.FakeRedis()
    static = "sk-or-v1-" + "s" * 64
    auth = Authenticator(Settings(gateway_keys=[SecretStr(static)], redis_url="redis://x"), redis)
    key, record = await KeyStore(redis).create("ci-team", concurrency=2)
    for limits in (True, False):
        principal = await auth.authenticate(f"Bearer {key}", "rid", 5.0, limits=limits)
        assert principal.key_id == record.id and principal.name == "ci-team"
        await auth.release(principal, "rid")
    unnamed, _ = await KeyStore(redis).create("")
    assert (await auth.authenticate(f"Bearer {unnamed}")).name == ""
    assert (await auth.authenticate(f"Bearer {static}")).name == "env"
