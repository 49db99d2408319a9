"""How one API request ended, written down exactly once: metrics, the access-log line, the
usage record, the request's trace span, and the release of the caller's concurrency slot.
The Prometheus observations (`observe_request`) are here too; `GET /metrics` serves them
(`api.routes.health`).

The access line (logger `orbyt.access`, INFO, shown at the default log level, see
`shared.logs.configure`) carries the request id, the gateway key's id and name (never the
key), the answering model and provider, status, attempts, time to first token, duration
and tokens.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from typing import Any

from orbyt.api.auth import Principal
from orbyt.api.state import AppState
from orbyt.shared import metrics, tracing
from orbyt.shared.catalog import Catalog
from orbyt.shared.contract import Candidate
from orbyt.shared.logs import ACCESS_LOGGER, request_id_var, safe_name
from orbyt.shared.usage import UsageBuffer, UsageEvent, cost_micros

log = logging.getLogger("orbyt.api")
access = logging.getLogger(ACCESS_LOGGER)
_logged: contextvars.ContextVar[str | None] = contextvars.ContextVar("orbyt_logged", default=None)


def log_rejected(rid: str, status: int, started: float) -> None:
    """The access line of a request refused before it had a ledger (authentication, rate
    limit, validation): once, unless a ledger already wrote this request's line."""
    if _logged.get() == rid or not access.isEnabledFor(logging.INFO):
        return
    request_id_var.set(rid)
    duration = round((time.monotonic() - started) * 1000, 1)
    access.info(
        "%s rejected duration_ms=%s",
        status,
        duration,
        extra={"event": "access", "status": status, "duration_ms": duration},
    )


def observe_request(catalog: Catalog, event: UsageEvent) -> None:
    label = metrics.model_label(catalog, event.model)
    child = metrics.child
    child(metrics.REQUESTS, label, event.provider, str(event.status), event.key_source).inc()
    child(metrics.REQUEST_SECONDS, event.provider).observe(event.latency_ms / 1000)
    if event.attempts:
        child(metrics.ATTEMPTS, event.provider).inc(event.attempts)
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
        metrics.child(metrics.TOKENS, model, event.provider, event.key_source, "reasoning").inc(
            reasoning
        )


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
            metrics.child(metrics.TOKENS, label, provider, key_source, kind).inc(value)
    cost = cost_micros(catalog, model, prompt, completion)
    if cost:
        metrics.child(metrics.COST, label, provider, key_source).inc(cost / 1_000_000)


def _provider_of(model: str) -> str:
    """A cut attempt's provider, from its model id (the share names only the model)."""
    return model.partition("/")[0][:40]


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


async def flush_usage(usage: UsageBuffer, interval: float = 1.0) -> None:
    """Write the buffered usage records every `interval` seconds, for the process's life."""
    while True:
        await asyncio.sleep(interval)
        try:
            await usage.flush()
        except Exception as exc:  # Redis away: kept in memory, retried next time
            log.warning("usage flush failed: %s", type(exc).__name__)


class Ledger:
    def __init__(
        self,
        st: AppState,
        principal: Principal,
        rid: str,
        primary: Candidate,
        started: float,
        traceparent: str | None = None,
    ) -> None:
        """`traceparent`: the caller's header, the parent of this request's span."""
        self._st = st
        self._principal = principal
        self._rid = rid
        self._primary = primary  # named in the record until a worker says who answered
        self._started = started  # time.monotonic() when the request was accepted
        self._ttft_ms: float | None = None
        self.closed = False
        self._span = (
            tracing.start_request(safe_name(primary["model"]), rid, traceparent, started)
            if tracing.TRACER is not None
            else None
        )

    @property
    def traceparent(self) -> str | None:
        """What the job carries so the worker's span joins this request's trace."""
        return tracing.traceparent(self._span) if self._span is not None else None

    def first_content(self) -> None:
        """The first content frame reached the API (time to first token)."""
        if self._ttft_ms is None:
            self._ttft_ms = (time.monotonic() - self._started) * 1000

    async def close(self, status: int, meta: dict[str, Any] | None) -> None:
        """Record the outcome (only the first call counts); never raises."""
        if self.closed:
            return
        self.closed = True
        event = self._event(status, meta or {})
        observe_request(self._st.catalog, event)
        self._log(event)
        if self._span is not None:
            tracing.end_request(self._span, event)
        self._st.usage.add(event)
        try:
            await self._st.auth.release(self._principal, self._rid)
        except Exception as exc:  # accounting must never fail a request
            log.warning("concurrency release failed: %s", type(exc).__name__)

    def _log(self, event: UsageEvent) -> None:
        if not access.isEnabledFor(logging.INFO):
            return
        usage = event.usage if isinstance(event.usage, dict) else {}
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
        ttft = round(self._ttft_ms, 1) if self._ttft_ms is not None else None
        duration = round(event.latency_ms, 1)
        name = self._principal.name
        request_id_var.set(self._rid)
        _logged.set(self._rid)
        access.info(
            "%s %s via %s attempts=%d ttft_ms=%s duration_ms=%s tokens=%s+%s key=%s",
            event.status,
            event.model,
            event.provider,
            event.attempts,
            ttft,
            duration,
            prompt if prompt is not None else "-",
            completion if completion is not None else "-",
            f"{event.key_id}({name})" if name else event.key_id,
            extra={
                "event": "access",
                "model": event.model,
                "provider": event.provider,
                "status": event.status,
                "attempts": event.attempts,
                "key_source": event.key_source,
                "key_id": event.key_id,
                "key_name": name or None,
                "ttft_ms": ttft,
                "duration_ms": duration,
                "prompt_tokens": prompt,
                "completion_tokens": completion,
            },
        )

    def _event(self, status: int, meta: dict[str, Any]) -> UsageEvent:
        primary = self._primary
        return UsageEvent(
            self._principal.key_id,
            safe_name(str(meta.get("model") or primary["model"])),
            str(meta.get("provider") or primary["provider"]),
            str(meta.get("key_source") or primary["key_source"]),
            status,
            int(meta.get("attempts") or 0),
            (time.monotonic() - self._started) * 1000,
            meta.get("usage"),
        )
