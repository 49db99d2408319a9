"""GET /metrics (Prometheus text) and the per-request observations behind it."""

from __future__ import annotations

import contextlib
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from orbyt.api.state import AppState
from orbyt.shared import metrics
from orbyt.shared.catalog import Catalog
from orbyt.shared.usage import UsageEvent, cost_micros

router = APIRouter()


def observe_request(catalog: Catalog, event: UsageEvent) -> None:
    metrics.REQUESTS.labels(
        metrics.model_label(catalog, event.model),
        event.provider,
        str(event.status),
        event.key_source,
    ).inc()
    metrics.REQUEST_SECONDS.labels(event.provider).observe(event.latency_ms / 1000)
    if event.attempts:
        metrics.ATTEMPTS.labels(event.provider).inc(event.attempts)
    if event.usage:
        observe_tokens(catalog, event)


def observe_tokens(catalog: Catalog, event: UsageEvent) -> None:
    """Tokens and cost of every attempt, each on its own model (`usage.by_model`, when an
    answer took more than one attempt), else the answering model's."""
    usage = event.usage or {}
    shares = usage.get("by_model")
    if not isinstance(shares, list) or not shares:
        details = usage.get("prompt_tokens_details")
        cached = details.get("cached_tokens") if isinstance(details, dict) else None
        shares = [
            {
                "model": event.model,
                "key_source": event.key_source,
                "prompt_tokens": usage.get("prompt_tokens"),
                "completion_tokens": usage.get("completion_tokens"),
                "cached_tokens": cached,
            }
        ]
    for share in shares:
        if isinstance(share, dict):
            _observe_share(catalog, event, share)
    details = usage.get("completion_tokens_details")  # totals only: on the answering model
    reasoning = _count(details.get("reasoning_tokens") if isinstance(details, dict) else None)
    if reasoning:
        model = metrics.model_label(catalog, event.model)
        metrics.TOKENS.labels(model, event.provider, event.key_source, "reasoning").inc(reasoning)


def _observe_share(catalog: Catalog, event: UsageEvent, share: dict[str, Any]) -> None:
    model = str(share.get("model") or event.model)
    provider = event.provider if model == event.model else _provider_of(model)
    key_source = "byok" if share.get("key_source") == "byok" else "pool"
    label = metrics.model_label(catalog, model)
    prompt = _count(share.get("prompt_tokens"))
    completion = _count(share.get("completion_tokens"))
    for kind, value in (
        ("prompt", prompt),
        ("completion", completion),
        ("cached", _count(share.get("cached_tokens"))),
    ):
        if value:
            metrics.TOKENS.labels(label, provider, key_source, kind).inc(value)
    cost = cost_micros(catalog, model, prompt, completion)
    if cost:
        metrics.COST.labels(label, provider, key_source).inc(cost / 1_000_000)


def _provider_of(model: str) -> str:
    """A cut attempt's provider, from its model id (the share names only the model)."""
    return model.partition("/")[0][:40]


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


@router.get("/metrics", include_in_schema=False)
async def prometheus(request: Request) -> Response:
    st: AppState = request.app.state.orbyt
    with contextlib.suppress(Exception):  # metrics stay readable while Redis is down
        metrics.QUEUE_DEPTH.set(await st.queue_redis.zcard(st.settings.chat_queue))
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
