"""Prometheus metrics shared by API and workers (each process exposes its own registry:
the API on GET /metrics, a worker on its own port). Label values are drawn from closed
sets only — catalog model ids, provider names, statuses — so no caller input, and never
a key, can reach a label."""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

from orbyt.shared.catalog import Catalog

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
FAST_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5)

# API
REQUESTS = Counter(
    "orbyt_requests_total", "Finished chat requests", ["model", "provider", "status", "key_source"]
)
REQUEST_SECONDS = Histogram(
    "orbyt_request_duration_seconds", "Total request latency", ["provider"], buckets=LATENCY_BUCKETS
)
TTFT_SECONDS = Histogram(
    "orbyt_ttft_seconds",
    "Time to first content frame (streams)",
    ["provider"],
    buckets=LATENCY_BUCKETS,
)
PICKUP_SECONDS = Histogram("orbyt_pickup_seconds", "Enqueue to worker start", buckets=FAST_BUCKETS)
ENQUEUE_SECONDS = Histogram(
    "orbyt_enqueue_seconds", "Subscribe + enqueue, API side", buckets=FAST_BUCKETS
)
REPLY_RESUMES = Counter(
    "orbyt_reply_resumes_total",
    "Replies that lost a stretch of frames (a Redis outage or failover) and had it replayed "
    "(resumed) or not within ORBYT_REPLY_RESUME_S (lost)",
    ["outcome"],
)
ACTIVE_STREAMS = Gauge("orbyt_active_streams", "Streams being relayed by this API process")
QUEUE_DEPTH = Gauge("orbyt_queue_depth", "Jobs waiting in the chat queue")
ATTEMPTS = Counter(
    "orbyt_request_attempts_total", "Provider attempts of finished requests", ["provider"]
)
TOKENS = Counter(
    "orbyt_tokens_total",
    "Tokens billed, each attempt's on its own model (type: prompt, completion, cached, "
    "reasoning; cached and reasoning are included in prompt and completion)",
    ["model", "provider", "key_source", "type"],
)
COST = Counter(
    "orbyt_cost_usd_total",
    "Cost at catalog prices, each attempt's on its own model (key_source byok: what the "
    "caller's own provider account pays)",
    ["model", "provider", "key_source"],
)

# worker
WORKER_ATTEMPTS = Counter(
    "orbyt_worker_attempts_total", "Provider attempts", ["model", "provider", "outcome"]
)
RETRIES = Counter("orbyt_worker_retries_total", "Retries on the same route", ["provider"])
FALLBACKS = Counter("orbyt_worker_fallbacks_total", "Moves to a later route", ["provider"])
BREAKER_OPEN = Gauge("orbyt_breaker_open", "1 while a route's breaker is seen open", ["route"])
KEY_COOLDOWNS = Counter(
    "orbyt_pool_key_cooldowns_total", "Pool keys cooled down or disabled", ["provider", "reason"]
)
WORKER_PICKUP = Histogram(
    "orbyt_worker_pickup_seconds", "Enqueue to job start, worker side", buckets=FAST_BUCKETS
)
ACTIVE_JOBS = Gauge("orbyt_worker_active_jobs", "Jobs running in this worker")
UPSTREAM_TTFT = Histogram(
    "orbyt_upstream_ttft_seconds",
    "Upstream time to first token",
    ["provider"],
    buckets=LATENCY_BUCKETS,
)

# worker: batch lines (DESIGN §7)
BATCH_LINES = Counter(
    "orbyt_batch_lines_total",
    "Batch lines answered, counted once when the outcome is recorded (done | failed)",
    ["model", "provider", "outcome"],
)
BATCH_LINES_IN_FLIGHT = Gauge("orbyt_batch_lines_in_flight", "Batch lines running in this worker")
BATCHES = Gauge(
    "orbyt_batches",
    "Batches with lines left to hand out (queued) or output files due (finalizing), "
    "as last sampled by this worker",
    ["state"],
)
BATCHES_FINISHED = Counter(
    "orbyt_batches_finished_total",
    "Batches this worker finalized, by final status (completed | cancelled | expired)",
    ["status"],
)


def observe_batch_line(catalog: Catalog, model: str, provider: str, ok: bool) -> None:
    """A line's recorded outcome. `provider` (the route that answered) is trusted only for
    an answered line; a failed line's is the catalog model's own prefix."""
    label = model_label(catalog, model)
    if not ok:
        provider = label.partition("/")[0]
    BATCH_LINES.labels(label, provider, "done" if ok else "failed").inc()


LOOP_LAG = Histogram(
    "orbyt_event_loop_lag_seconds", "How late a 100 ms timer fires", buckets=FAST_BUCKETS
)


async def watch_loop_lag(interval: float = 0.1) -> None:
    """Event-loop lag, sampled ten times a second: the first thing to read when latency
    grows under load but CPU does not."""
    loop = asyncio.get_running_loop()
    while True:
        started = loop.time()
        await asyncio.sleep(interval)
        LOOP_LAG.observe(max(0.0, loop.time() - started - interval))


def model_label(catalog: Catalog, model: str) -> str:
    """A catalog id as is; anything else collapses to '<provider>/other'."""
    if catalog.get(model) is not None:
        return model
    return model.partition("/")[0][:40] + "/other"


def provider_label(known: set[str] | frozenset[str], provider: str) -> str:
    return provider if provider in known else "other"


_CHILDREN: dict[tuple[MetricWrapperBase, tuple[str, ...]], Any] = {}


def child(metric: MetricWrapperBase, *values: str) -> Any:
    """`metric.labels(*values)`, remembered: prometheus_client takes a lock and checks the
    values on every `labels` call (about 1 us; a request makes about ten). Label values come
    from closed sets (module docstring), so the table stays small; nothing here removes a
    labelled child, so a remembered one is always the registry's."""
    key = (metric, values)
    found = _CHILDREN.get(key)
    if found is None:
        found = _CHILDREN[key] = metric.labels(*values)
    return found
