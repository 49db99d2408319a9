"""The API's span, in-process with the SDK's in-memory exporter (the worker played by the
test, as in test_exchange): the caller's `traceparent` is its parent, the job carries the
span's own `traceparent`, and the span ends with the route, status and tokens."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator

import orjson
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from orbyt.shared import tracing
from orbyt.shared.contract import ARQ_JOB_PREFIX, DONE, START
from tests.integration.test_exchange import MSG, Caller, Env, env, meta, scope

__all__ = ["env"]  # the fixture


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    yield exporter
    tracing.shutdown()


async def _job(env: Env, rid: str) -> dict[str, object]:
    data = await env.redis.get(ARQ_JOB_PREFIX + rid)
    assert data is not None
    job = orjson.loads(data)["a"][0]
    assert isinstance(job, dict)
    return job


async def _answer(env: Env, headers: list[tuple[bytes, bytes]]) -> tuple[Caller, dict[str, object]]:
    caller = Caller({"model": "openai/gpt-5-mini", "messages": MSG})
    request = scope()
    request["headers"] = [*request["headers"], *headers]
    task = asyncio.create_task(env.asgi(request, caller.receive, caller.send))
    rid = await env.claim()
    job = await _job(env, rid)
    usage = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    await env.publish(
        rid, (START, None, b""), (DONE, {**meta(), "usage": usage}, b'{"object":"x"}')
    )
    await asyncio.wait_for(task, 2)
    return caller, job


async def test_the_api_span_joins_the_callers_trace_and_the_job_carries_it(
    env: Env, spans: InMemorySpanExporter
) -> None:
    trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
    caller, job = await _answer(env, [(b"traceparent", f"00-{trace_id}-{parent_id}-01".encode())])
    assert caller.status == 200
    (span,) = spans.get_finished_spans()
    assert span.kind is SpanKind.SERVER
    assert span.context.trace_id == int(trace_id, 16)
    assert span.parent is not None and span.parent.span_id == int(parent_id, 16)
    assert job["traceparent"] == f"00-{trace_id}-{span.context.span_id:016x}-01"
    attrs = span.attributes or {}
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.request.model"] == attrs["gen_ai.response.model"] == "openai/gpt-5-mini"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.usage.input_tokens"] == 7 and attrs["gen_ai.usage.output_tokens"] == 3
    assert attrs["http.response.status_code"] == 200
    assert attrs["orbyt.request_id"] == caller.headers[b"x-request-id"].decode()


async def test_without_a_caller_trace_the_api_span_is_a_root(
    env: Env, spans: InMemorySpanExporter
) -> None:
    _, job = await _answer(env, [])
    (span,) = spans.get_finished_spans()
    assert span.parent is None
    header = str(job["traceparent"])
    assert header.startswith(f"00-{span.context.trace_id:032x}-{span.context.span_id:016x}-")


async def test_tracing_off_adds_nothing_to_the_job(env: Env) -> None:
    assert tracing.TRACER is None
    _, job = await _answer(env, [(b"traceparent", b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01")])
    assert "traceparent" not in job
