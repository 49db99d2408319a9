"""The worker's spans, in-process with the SDK's in-memory exporter: one job span, a child of
the API span named by the job's `traceparent`, and one child span per upstream attempt."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from redis.asyncio import Redis

from orbyt.shared import tracing
from orbyt.worker.context import WorkerContext
from orbyt.worker.serve import serve
from tests.fakes import Error, FakeOpenAI, Reply

from .conftest import Frames, chat_job


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    yield exporter
    tracing.shutdown()


@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
async def test_a_job_span_with_one_child_per_attempt(
    context: WorkerContext,
    redis: Redis,
    fake_openai: FakeOpenAI,
    spans: InMemorySpanExporter,
    stream: bool,
) -> None:
    fake_openai.script(Error(500), Reply(usage=(12, 5)))
    trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
    job = chat_job("openai/gpt-4o-mini", stream=stream, retry=1)
    job["traceparent"] = f"00-{trace_id}-{parent_id}-01"
    async with Frames(redis, job["channel"]) as frames:
        await serve(context, job, int(time.time() * 1000))
        await frames.until_end()
    failed, ok, job_span = spans.get_finished_spans()
    assert job_span.kind is SpanKind.CONSUMER
    assert job_span.parent is not None and job_span.parent.span_id == int(parent_id, 16)
    assert job_span.context.trace_id == int(trace_id, 16)
    for attempt in (failed, ok):
        assert attempt.kind is SpanKind.CLIENT
        assert attempt.parent is not None and attempt.parent.span_id == job_span.context.span_id
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes is not None and failed.attributes["http.response.status_code"] == 500
    assert ok.attributes is not None
    assert ok.attributes["gen_ai.usage.input_tokens"] == 12
    assert ok.attributes["gen_ai.usage.output_tokens"] == 5
    assert ok.attributes["gen_ai.response.model"] == "openai/gpt-4o-mini"
    for span in spans.get_finished_spans():
        values = " ".join(str(v) for v in (span.attributes or {}).values())
        assert "sk-pool-openai-1" not in values and "hi" not in values.split()


async def test_a_job_without_traceparent_starts_its_own_trace(
    context: WorkerContext, redis: Redis, spans: InMemorySpanExporter
) -> None:
    job = chat_job("openai/gpt-4o-mini", stream=False)
    async with Frames(redis, job["channel"]) as frames:
        await serve(context, job, int(time.time() * 1000))
        await frames.until_end()
    attempt, job_span = spans.get_finished_spans()
    assert job_span.parent is None
    assert attempt.parent is not None and attempt.parent.span_id == job_span.context.span_id


async def test_no_span_when_tracing_is_off(context: WorkerContext, redis: Redis) -> None:
    assert tracing.TRACER is None
    job = chat_job("openai/gpt-4o-mini", stream=False)
    async with Frames(redis, job["channel"]) as frames:
        await serve(context, job, int(time.time() * 1000))
        assert (await frames.until_end())[-1].meta is not None
