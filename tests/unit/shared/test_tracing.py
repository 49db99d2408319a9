"""shared.tracing with the SDK's in-memory exporter: when tracing is on, the span tree of one
request (API span → job traceparent → worker span → attempt spans), GenAI attributes."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from orbyt.shared import tracing
from orbyt.shared.contract import Candidate
from orbyt.shared.usage import UsageEvent

CAND = Candidate(
    model="openai/gpt-5-mini", provider="openai", upstream="gpt-5-mini", key_source="pool"
)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    yield exporter
    tracing.shutdown()
    assert tracing.TRACER is None


@pytest.mark.parametrize(
    ("env", "wanted"),
    [
        ({}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, "otlp"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, "otlp"),
        ({"OTEL_TRACES_EXPORTER": "console"}, "console"),
        ({"OTEL_TRACES_EXPORTER": "otlp,console"}, "otlp"),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"}, None),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ""}, None),
    ],
)
def test_tracing_is_on_only_when_the_otel_environment_asks(
    env: dict[str, str], wanted: str | None
) -> None:
    assert tracing.wanted(env) == wanted


def test_off_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OTEL_TRACES_EXPORTER", *tracing._ENDPOINTS):
        monkeypatch.delenv(name, raising=False)
    assert tracing.TRACER is None
    assert tracing.setup("orbyt-test") is False
    assert tracing.TRACER is None


def test_setup_from_the_environment_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    try:
        assert tracing.setup("orbyt-test") is True
        assert tracing.TRACER is not None
        assert tracing.setup("orbyt-test") is False  # already on: the first caller owns it
    finally:
        tracing.shutdown()
    assert tracing.TRACER is None


def test_setup_leaves_a_provider_installed_by_someone_else(
    spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    tracer = tracing.TRACER
    assert tracing.setup("orbyt-test") is False and tracing.TRACER is tracer


def test_one_connected_trace_from_the_callers_header(spans: InMemorySpanExporter) -> None:
    trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
    api = tracing.start_request(
        CAND["model"], "rid1", f"00-{trace_id}-{parent_id}-01", time.monotonic() - 0.5
    )
    header = tracing.traceparent(api)
    assert header is not None and header.startswith(f"00-{trace_id}-")
    with tracing.job_span("rid1", CAND["model"], header):
        with tracing.attempt_span(CAND, False) as span:
            tracing.attempt_failed(span, 503, "upstream_unavailable", True)
        with tracing.attempt_span(CAND, False) as span:
            tracing.attempt_done(span, CAND["model"], {"prompt_tokens": 9, "completion_tokens": 4})
    event = UsageEvent(
        "key_1", CAND["model"], "openai", "pool", 200, 2, 512.0, {"prompt_tokens": 9}
    )
    tracing.end_request(api, event)
    failed, ok, job, request = spans.get_finished_spans()
    assert {s.context.trace_id for s in (failed, ok, job, request)} == {int(trace_id, 16)}
    assert request.parent is not None and request.parent.span_id == int(parent_id, 16)
    assert request.kind is SpanKind.SERVER and job.kind is SpanKind.CONSUMER
    assert job.parent is not None and job.parent.span_id == request.context.span_id
    for attempt in (failed, ok):
        assert attempt.kind is SpanKind.CLIENT
        assert attempt.parent is not None and attempt.parent.span_id == job.context.span_id
        assert attempt.attributes is not None
        assert attempt.attributes["gen_ai.provider.name"] == "openai"
        assert attempt.attributes["gen_ai.request.model"] == CAND["model"]
    assert failed.status.status_code is StatusCode.ERROR
    assert (
        failed.attributes is not None and failed.attributes["error.type"] == "upstream_unavailable"
    )
    assert ok.attributes is not None and ok.attributes["gen_ai.usage.output_tokens"] == 4
    assert request.attributes is not None
    assert request.attributes["gen_ai.usage.input_tokens"] == 9
    assert "gen_ai.usage.output_tokens" not in request.attributes
    assert request.attributes["orbyt.attempts"] == 2
    assert request.end_time is not None and request.start_time is not None
    assert request.end_time - request.start_time >= 400_000_000  # started at acceptance


@pytest.mark.parametrize("header", [None, "", "garbage", "00-" + "0" * 32 + "-" + "0" * 16 + "-01"])
def test_a_missing_or_invalid_traceparent_starts_a_new_trace(
    spans: InMemorySpanExporter, header: str | None
) -> None:
    api = tracing.start_request(CAND["model"], "rid2", header, time.monotonic())
    tracing.end_request(api, UsageEvent("k", CAND["model"], "openai", "pool", 503, 0, 1.0, None))
    (request,) = spans.get_finished_spans()
    assert request.parent is None and request.context.trace_id != 0
    assert request.status.status_code is StatusCode.ERROR


def test_usage_attributes_take_only_counts() -> None:
    assert tracing.usage_attributes(None) == {}
    assert tracing.usage_attributes({"prompt_tokens": True, "completion_tokens": "7"}) == {}
    assert tracing.usage_attributes({"prompt_tokens": 3, "completion_tokens": 5}) == {
        "gen_ai.usage.input_tokens": 3,
        "gen_ai.usage.output_tokens": 5,
    }


def test_the_environment_names_the_service() -> None:
    assert tracing._service("orbyt-api", {}) == {"service.name": "orbyt-api"}
    assert tracing._service("orbyt-api", {"OTEL_SERVICE_NAME": "gw"}) == {}
    assert tracing._service("orbyt-api", {"OTEL_RESOURCE_ATTRIBUTES": "a=b,service.name=gw"}) == {}
