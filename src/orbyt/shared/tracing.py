"""OpenTelemetry tracing, opt-in through the standard `OTEL_*` environment variables.

On when `OTEL_TRACES_EXPORTER` names an exporter (`otlp`, `console`) or an OTLP endpoint is
set (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`); off with
`OTEL_TRACES_EXPORTER=none` or `OTEL_SDK_DISABLED=true`. The SDK reads the rest itself
(`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_EXPORTER_OTLP_HEADERS`,
`OTEL_TRACES_SAMPLER`, `OTEL_BSP_*`); spans leave over OTLP/HTTP (protobuf).

Off costs nothing on the hot path: `TRACER` is None and every caller tests it first.

One trace per request: the API's SERVER span (its parent the caller's `traceparent` header,
if any) → the job's `traceparent` field → the worker's CONSUMER span → one CLIENT span per
upstream attempt. Attributes follow the GenAI semantic conventions (operation, request and
response model, provider, token counts) plus statuses and Orbyt's request id: never a
prompt, never a key.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Awaitable, Iterator, Mapping
from typing import Any, Protocol

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from orbyt.shared.contract import Candidate
from orbyt.shared.errors import UpstreamError
from orbyt.shared.usage import UsageEvent

TRACER: Tracer | None = None  # None: tracing is off
_provider: TracerProvider | None = None
_propagator = TraceContextTextMapPropagator()
_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def wanted(env: Mapping[str, str] = os.environ) -> str | None:
    """The exporter the environment asks for (`otlp`, `console`), or None: tracing off."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return None if exporter == "none" else exporter.split(",")[0].strip()
    return "otlp" if any(env.get(name) for name in _ENDPOINTS) else None


def setup(service: str) -> bool:
    """Turn tracing on if the environment asks for it and nothing else did; True if this
    call did (then the caller calls `shutdown()` when it stops)."""
    if TRACER is not None:
        return False
    exporter = wanted()
    if exporter is None:
        return False
    span_exporter: SpanExporter
    if exporter == "console":
        span_exporter = ConsoleSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        span_exporter = OTLPSpanExporter()
    provider = TracerProvider(resource=Resource.create(_service(service)))
    provider.add_span_processor(BatchSpanProcessor(span_exporter))
    install(provider)
    return True


def _service(default: str, env: Mapping[str, str] = os.environ) -> dict[str, str]:
    """`service.name` unless the environment names the service (the SDK reads it then)."""
    named = env.get("OTEL_SERVICE_NAME") or "service.name=" in env.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    )
    return {} if named else {"service.name": default}


def install(provider: TracerProvider | None) -> None:
    """Trace into `provider` (tests: one with an in-memory exporter); None turns it off."""
    global TRACER, _provider
    _provider = provider
    TRACER = provider.get_tracer("orbyt") if provider is not None else None


def shutdown() -> None:
    """Export what is buffered and stop (process exit)."""
    provider = _provider
    install(None)
    if provider is not None:
        provider.shutdown()


def _tracer() -> Tracer:
    assert TRACER is not None, "tracing is off: test tracing.TRACER first"
    return TRACER


def traceparent(span: Span) -> str | None:
    """The W3C `traceparent` that makes the next process's span a child of `span`."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier, context=trace.set_span_in_context(span))
    return carrier.get("traceparent")


def _parent(header: str | None) -> otel_context.Context:
    return _propagator.extract({"traceparent": header}) if header else otel_context.Context()


def start_request(model: str, rid: str, caller: str | None, started: float) -> Span:
    """The API's span of one request (`started`: time.monotonic() at acceptance); its
    parent is the caller's trace when `caller` is a valid `traceparent`."""
    start_ns = time.time_ns() - int((time.monotonic() - started) * 1e9)
    return _tracer().start_span(
        f"chat {model}",
        context=_parent(caller),
        kind=SpanKind.SERVER,
        start_time=start_ns,
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": model,
            "orbyt.request_id": rid,
        },
    )


def usage_attributes(usage: Mapping[str, Any] | None) -> dict[str, int]:
    """GenAI token attributes from an OpenAI usage block (what is there of it)."""
    out: dict[str, int] = {}
    if not usage:
        return out
    for name, field in (
        ("gen_ai.usage.input_tokens", "prompt_tokens"),
        ("gen_ai.usage.output_tokens", "completion_tokens"),
    ):
        value = usage.get(field)
        if isinstance(value, int) and not isinstance(value, bool):
            out[name] = value
    return out


def end_request(span: Span, event: UsageEvent) -> None:
    """Close the API span: the answering route, the status, the tokens."""
    span.set_attributes(
        {
            "gen_ai.response.model": event.model,
            "gen_ai.provider.name": event.provider,
            "orbyt.key_source": event.key_source,
            "orbyt.attempts": event.attempts,
            "http.response.status_code": event.status,
            **usage_attributes(event.usage),
        }
    )
    if event.status >= 500:
        span.set_status(Status(StatusCode.ERROR))
        span.set_attribute("error.type", str(event.status))
    span.end()


@contextlib.contextmanager
def job_span(rid: str, model: str, caller: str | None) -> Iterator[Span]:
    """The worker's span of one job, current for the attempts inside it."""
    with _tracer().start_as_current_span(
        f"orbyt.job chat {model}",
        context=_parent(caller),
        kind=SpanKind.CONSUMER,
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": model,
            "orbyt.request_id": rid,
        },
    ) as span:
        yield span


@contextlib.contextmanager
def attempt_span(cand: Candidate, continuation: bool) -> Iterator[Span]:
    """One upstream attempt, a child of the current (job) span."""
    with _tracer().start_as_current_span(
        f"chat {cand['model']}",
        kind=SpanKind.CLIENT,
        record_exception=False,  # exception messages may quote upstream text
        set_status_on_exception=False,
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": cand["model"],
            "gen_ai.provider.name": cand["provider"],
            "orbyt.upstream_model": cand["upstream"],
            "orbyt.key_source": cand["key_source"],
            "orbyt.continuation": continuation,
        },
    ) as span:
        yield span


class _Attempt(Protocol):
    def reported_usage(self) -> Any: ...


async def traced(
    cand: Candidate, continuation: bool, attempt: _Attempt, run: Awaitable[None]
) -> None:
    """Await one upstream attempt (`worker.attempts`, its `run`) inside its span: the
    tokens it reported, or the status and code of its UpstreamError."""
    with attempt_span(cand, continuation) as span:
        try:
            await run
        except UpstreamError as err:
            attempt_failed(span, err.status, err.code, err.before_content)
            raise
        attempt_done(span, cand["model"], attempt.reported_usage())


def attempt_done(span: Span, model: str, usage: Mapping[str, Any] | None) -> None:
    span.set_attributes({"gen_ai.response.model": model, **usage_attributes(usage)})


def attempt_failed(span: Span, status: int, code: str | None, before_content: bool) -> None:
    """A failed attempt: its status and error code, never its message."""
    span.set_status(Status(StatusCode.ERROR))
    span.set_attributes(
        {
            "error.type": code or str(status),
            "http.response.status_code": status,
            "orbyt.before_content": before_content,
        }
    )
