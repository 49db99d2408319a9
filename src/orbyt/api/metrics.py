"""GET /metrics (Prometheus text) and the per-request observations behind it."""

from __future__ import annotations

import contextlib

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from orbyt.api.state import AppState
from orbyt.shared import metrics
from orbyt.shared.catalog import Catalog
from orbyt.shared.usage import UsageEvent

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


@router.get("/metrics", include_in_schema=False)
async def prometheus(request: Request) -> Response:
    st: AppState = request.app.state.orbyt
    with contextlib.suppress(Exception):  # metrics stay readable while Redis is down
        metrics.QUEUE_DEPTH.set(await st.queue_redis.zcard(st.settings.chat_queue))
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
