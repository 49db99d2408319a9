"""Fault injection, part 3: shared route health (DESIGN §4.2, §4.3): a flapping primary and
its circuit breaker, strategies ordering a mixed plan, pool-key rotation on 429/401."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import openai
import pytest

from tests.fakes import Error, Reply
from tests.gateway import Gateway
from tests.integration.faults_support import (
    BREAKER_COOLDOWN,
    MSG,
    Fakes,
    client,
    extra,
    models_seen,
    stream_chat,
)

pytestmark = pytest.mark.integration


def answered_by(gw: Gateway, model: str, fallbacks: list[str], **fields: Any) -> str:
    r = client(gw).chat.completions.with_raw_response.create(
        model=model, messages=MSG, extra_body=extra(fallback_models=fallbacks, **fields)
    )
    return r.headers["x-orbyt-model"]


# 15 ----------------------------------------------------------------------------------
def test_flapping_primary_opens_the_breaker_and_gets_traffic_back(
    gw: Gateway, fakes: Fakes
) -> None:
    fakes.primary.default = Error(503)
    fakes.backup.default = Reply(text="backup")
    served: list[tuple[float, str]] = []

    def one() -> None:
        served.append(
            (time.monotonic(), answered_by(gw, "openai/gpt-5-mini", ["backup/plain"], retry=0))
        )
        time.sleep(0.4)

    outage_end = time.monotonic() + 3.5
    while time.monotonic() < outage_end:
        one()
    recovered_at = time.monotonic()
    fakes.primary.default = Reply(text="primary")
    while time.monotonic() < recovered_at + BREAKER_COOLDOWN + 2:
        one()
        if served[-1][1] == "openai/gpt-5-mini":
            break
    one()
    one()

    outage = [m for t, m in served if t < recovered_at]
    assert len(outage) >= 5 and set(outage) == {"backup/plain"}  # every request served
    hits = [q.at for q in fakes.primary.requests if q.at < recovered_at]
    # three failures open the breaker; while it is open the primary sees only probes
    assert 3 <= len(hits) <= 5, len(hits)
    assert len(hits) < len(outage)
    back = next(t for t, m in served if m == "openai/gpt-5-mini")
    assert back - recovered_at <= BREAKER_COOLDOWN + 1.0
    assert [m for t, m in served if t >= back] == ["openai/gpt-5-mini"] * 3


# 17 ----------------------------------------------------------------------------------
def test_cheap_orders_by_blended_price_unknown_last(gw: Gateway, fakes: Fakes) -> None:
    plan = ("backup/pricey", ["backup/unpriced", "openai/gpt-4o-mini", "backup/cheapo"])
    assert answered_by(gw, *plan, provider="cheap") == "backup/cheapo"
    assert fakes.primary.requests == []
    fakes.reset()
    fakes.primary.default = fakes.backup.default = Error(503)
    with pytest.raises(openai.InternalServerError):
        answered_by(gw, *plan, provider="cheap", retry=0)
    assert models_seen(fakes.primary, fakes.backup) == [
        "cheapo",
        "gpt-4o-mini",
        "pricey",
        "unpriced",
    ]


@pytest.mark.parametrize(
    ("strategy", "order"),
    [
        ("backup", ["plain", "cheapo", "gpt-5-mini", "claude-3-haiku-20240307"]),
        ("anthropic", ["claude-3-haiku-20240307", "gpt-5-mini", "plain", "cheapo"]),
    ],
)
def test_provider_name_puts_that_provider_first(
    gw: Gateway, fakes: Fakes, strategy: str, order: list[str]
) -> None:
    plan = ("openai/gpt-5-mini", ["backup/plain", "anthropic/claude-3-haiku", "backup/cheapo"])
    fakes.primary.default = fakes.backup.default = Error(503)
    fakes.anthropic.default = Error(529)
    with pytest.raises(openai.InternalServerError):
        answered_by(gw, *plan, provider=strategy, retry=0)
    assert models_seen(fakes.primary, fakes.backup, fakes.anthropic) == order


# successes reach the shared statistics in one write per 200 ms (worker/health.py)
HEALTH_PROPAGATION = 0.35


def test_fast_orders_by_observed_ttft(gw: Gateway, fakes: Fakes) -> None:
    for _ in range(2):  # observations, shared through Redis
        fakes.primary.script(Reply(text="slow", ttft=0.4))
        fakes.backup.script(Reply(text="quick", ttft=0.01))
        assert stream_chat(gw, "openai/gpt-5-mini").text == "slow"
        assert stream_chat(gw, "backup/plain").text == "quick"
    time.sleep(HEALTH_PROPAGATION)
    fakes.reset()
    plan = ("openai/gpt-5-mini", ["backup/unpriced", "backup/plain"])
    assert answered_by(gw, *plan, provider="fast") == "backup/plain"
    assert fakes.primary.requests == []
    assert answered_by(gw, *plan) == "openai/gpt-5-mini"  # ordered: as given
    fakes.reset()
    fakes.primary.default = fakes.backup.default = Error(503)
    with pytest.raises(openai.InternalServerError):
        answered_by(gw, *plan, provider="fast", retry=0)
    # observed routes swap places; the unobserved one keeps its slot
    assert models_seen(fakes.primary, fakes.backup) == ["plain", "unpriced", "gpt-5-mini"]


def test_reliable_orders_by_observed_error_rate(gw: Gateway, fakes: Fakes) -> None:
    fakes.primary.script(Error(503), Error(503), Reply())
    for _ in range(3):
        with contextlib.suppress(openai.InternalServerError):
            client(gw).chat.completions.create(
                model="openai/gpt-5-mini", messages=MSG, extra_body=extra(retry=0)
            )
    client(gw).chat.completions.create(model="backup/plain", messages=MSG)
    time.sleep(HEALTH_PROPAGATION)
    fakes.reset()
    plan = ("openai/gpt-5-mini", ["backup/unpriced", "backup/plain"])
    assert answered_by(gw, *plan, provider="reliable") == "backup/plain"
    assert fakes.primary.requests == []
    fakes.reset()
    fakes.primary.default = fakes.backup.default = Error(503)
    with pytest.raises(openai.InternalServerError):
        answered_by(gw, *plan, provider="reliable", retry=0)
    assert models_seen(fakes.primary, fakes.backup) == ["plain", "unpriced", "gpt-5-mini"]


@pytest.mark.parametrize("failure", [Error(429, retry_after=2), Error(429), Error(401)])
def test_pool_key_failure_moves_to_the_next_key_at_once(
    gw: Gateway, fakes: Fakes, failure: Error
) -> None:
    fakes.primary.script(failure, Reply(text="other key"), Reply(text="again"))
    r = client(gw).chat.completions.with_raw_response.create(
        model="pooled/gpt-5-mini", messages=MSG
    )
    assert r.parse().choices[0].message.content == "other key"
    assert r.headers["x-orbyt-attempts"] == "2"
    first, second = fakes.primary.requests
    assert second.at - first.at < 0.3
    keys = {first.headers["authorization"], second.headers["authorization"]}
    assert keys == {"Bearer sk-pool-a", "Bearer sk-pool-b"}
    # the failed key stays out of rotation (cooling down / disabled)
    r2 = client(gw).chat.completions.create(model="pooled/gpt-5-mini", messages=MSG)
    assert r2.choices[0].message.content == "again"
    assert fakes.primary.requests[2].headers["authorization"] == second.headers["authorization"]


def test_pool_keys_rotate_round_robin(gw: Gateway, fakes: Fakes) -> None:
    for _ in range(4):
        client(gw).chat.completions.create(model="pooled/gpt-5-mini", messages=MSG)
    used = [q.headers["authorization"] for q in fakes.primary.requests]
    assert used[0] != used[1] and used[0] == used[2] and used[1] == used[3]
