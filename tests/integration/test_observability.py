"""Observability through real processes: the access log at the default log level, token and
cost counters on /metrics, one connected OpenTelemetry trace per request exported over
OTLP/HTTP to a real receiver on loopback, and the API docs.

The gateway runs at the default log level (`warning`), with `OTEL_EXPORTER_OTLP_ENDPOINT`
pointing at `tests.otlp.OtlpReceiver`; the upstream is the fake OpenAI server.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes import Error, FakeOpenAI, Reply
from tests.gateway import GATEWAY_KEY, Gateway, RedisServer, free_port
from tests.otlp import OtlpReceiver, ReceivedSpan

pytestmark = pytest.mark.integration

MODEL = "openai/gpt-5-mini"
MSG = [{"role": "user", "content": "Say hi"}]
POOL_KEY = "sk-pool-" + secrets.token_hex(16)
SERVER, CONSUMER, CLIENT = 2, 5, 3  # OTLP span kinds


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    rec = OtlpReceiver().start()
    yield rec
    rec.stop()


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(keys={POOL_KEY}) as f:
        yield f


@pytest.fixture(scope="module")
def gw(redis_server: RedisServer, fake: FakeOpenAI, receiver: OtlpReceiver) -> Iterator[Gateway]:
    env = {
        "ORBYT_PROVIDERS__OPENAI__BASE_URL": fake.base_url,
        "ORBYT_PROVIDERS__OPENAI__KEYS": POOL_KEY,
        **receiver.env(),
    }
    with Gateway(redis_server.new_db_url(), env, workers=1, log_level="warning") as gateway:
        yield gateway


def chat(gw: Gateway, stream: bool = False, **headers: str) -> httpx.Response:
    body: dict[str, Any] = {"model": MODEL, "messages": MSG, "stream": stream}
    return httpx.post(
        gw.base_url + "/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {GATEWAY_KEY}", **headers},
        timeout=20,
    )


def access_lines(gw: Gateway) -> list[dict[str, Any]]:
    out = []
    for line in gw.all_logs().splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("logger") == "orbyt.access":
                out.append(record)
    return out


def wait_access(gw: Gateway, rid: str) -> list[dict[str, Any]]:
    end = time.monotonic() + 5
    while time.monotonic() < end:
        lines = [r for r in access_lines(gw) if r.get("request_id") == rid]
        if lines:
            time.sleep(0.2)  # a second line would be written right after the first
            return [r for r in access_lines(gw) if r.get("request_id") == rid]
        time.sleep(0.05)
    return []


def test_one_access_line_per_request_at_the_default_level(gw: Gateway, fake: FakeOpenAI) -> None:
    fake.script(Reply(usage=(11, 7)), Reply(usage=(5, 3)), Error(400))
    ok = chat(gw)
    streamed = chat(gw, stream=True)
    failed = chat(gw)  # the upstream refuses it: the worker's error
    assert ok.status_code == 200 and streamed.status_code == 200, ok.text
    (line,) = wait_access(gw, ok.headers["x-request-id"])
    assert line["level"] == "info" and line["event"] == "access"
    assert line["model"] == MODEL and line["provider"] == "openai" and line["status"] == 200
    assert line["attempts"] == 1 and line["key_source"] == "pool"
    assert line["key_id"].startswith("env_") and line["key_name"] == "env"
    assert line["prompt_tokens"] == 11 and line["completion_tokens"] == 7
    assert line["duration_ms"] > 0 and "ttft_ms" not in line  # non-stream: no first token
    (line,) = wait_access(gw, streamed.headers["x-request-id"])
    assert line["ttft_ms"] > 0 and line["duration_ms"] >= line["ttft_ms"]
    (line,) = wait_access(gw, failed.headers["x-request-id"])
    assert line["status"] == failed.status_code >= 400
    for model, key, status in (
        (MODEL, "sk-or-v1-" + "0" * 64, 401),  # refused before it had a ledger: still a line
        ("nosuchprovider/model", GATEWAY_KEY, 400),
    ):
        refused = httpx.post(
            gw.base_url + "/chat/completions",
            json={"model": model, "messages": MSG},
            headers={"authorization": f"Bearer {key}"},
            timeout=20,
        )
        assert refused.status_code == status, refused.text
        (line,) = wait_access(gw, refused.headers["x-request-id"])
        assert line["status"] == status and line["duration_ms"] >= 0
    logs = gw.all_logs()
    assert GATEWAY_KEY not in logs and POOL_KEY not in logs
    assert not [r for r in access_lines(gw) if r["level"] != "info"]


def _sample(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line[: line.rindex("}")]))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_token_and_cost_counters_on_metrics(gw: Gateway, fake: FakeOpenAI) -> None:
    before = httpx.get(gw.url() + "/metrics", timeout=10).text
    fake.script(Reply(usage=(1000, 500), cached_tokens=200))
    assert chat(gw).status_code == 200
    time.sleep(0.2)
    after = httpx.get(gw.url() + "/metrics", timeout=10).text
    labels = {"model": MODEL, "provider": "openai", "key_source": "pool"}
    name = "orbyt_tokens_total"
    for kind, expected in (("prompt", 1000), ("completion", 500), ("cached", 200)):
        grown = _sample(after, name, type=kind, **labels)
        grown -= _sample(before, name, type=kind, **labels)
        assert grown == expected, (kind, after)
    cost = _sample(after, "orbyt_cost_usd_total", **labels)
    assert cost > _sample(before, "orbyt_cost_usd_total", **labels), after


def _trace_complete(trace_id: str) -> Any:
    def check(spans: list[ReceivedSpan]) -> bool:
        kinds = {s.kind for s in spans if s.trace_id == trace_id}
        return {SERVER, CONSUMER, CLIENT} <= kinds

    return check


@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
def test_one_connected_trace_per_request_honouring_the_callers(
    gw: Gateway, fake: FakeOpenAI, receiver: OtlpReceiver, stream: bool
) -> None:
    trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
    fake.script(Reply(usage=(9, 4)))
    resp = chat(gw, stream=stream, traceparent=f"00-{trace_id}-{parent_id}-01")
    assert resp.status_code == 200, resp.text
    spans = receiver.wait_for(_trace_complete(trace_id))
    mine = [s for s in spans if s.trace_id == trace_id]
    (api,) = [s for s in mine if s.kind == SERVER]
    (job,) = [s for s in mine if s.kind == CONSUMER]
    (attempt,) = [s for s in mine if s.kind == CLIENT]
    assert api.service == "orbyt-api" and job.service == attempt.service == "orbyt-worker"
    assert api.parent_id == parent_id  # the caller's trace, honoured
    assert job.parent_id == api.span_id and attempt.parent_id == job.span_id
    rid = resp.headers["x-request-id"]
    assert api.attributes["orbyt.request_id"] == rid == job.attributes["orbyt.request_id"]
    for span in (api, attempt):
        attrs = span.attributes
        assert attrs["gen_ai.operation.name"] == "chat"
        assert attrs["gen_ai.request.model"] == MODEL
        assert attrs["gen_ai.response.model"] == MODEL
        assert attrs["gen_ai.provider.name"] == "openai"
        assert attrs["gen_ai.usage.input_tokens"] == 9
        assert attrs["gen_ai.usage.output_tokens"] == 4
    assert api.attributes["http.response.status_code"] == 200
    exported = receiver.data()
    for secret in (GATEWAY_KEY, POOL_KEY, "Say hi"):
        assert secret.encode() not in exported  # no key, no prompt


def test_failed_attempts_are_spans_of_the_same_trace(
    gw: Gateway, fake: FakeOpenAI, receiver: OtlpReceiver
) -> None:
    trace_id = secrets.token_hex(16)
    fake.script(Error(500), Reply(usage=(3, 2)))
    resp = chat(gw, traceparent=f"00-{trace_id}-{secrets.token_hex(8)}-01")
    assert resp.status_code == 200 and resp.headers["x-orbyt-attempts"] == "2"

    def two_attempts(spans: list[ReceivedSpan]) -> bool:
        return len([s for s in spans if s.trace_id == trace_id and s.kind == CLIENT]) == 2

    spans = [s for s in receiver.wait_for(two_attempts) if s.trace_id == trace_id]
    (job,) = [s for s in spans if s.kind == CONSUMER]
    failed, ok = sorted((s for s in spans if s.kind == CLIENT), key=lambda s: s.status_code != 2)
    assert failed.status_code == 2 and failed.attributes["http.response.status_code"] == 500
    assert ok.status_code != 2 and failed.parent_id == ok.parent_id == job.span_id


def test_docs_and_the_openapi_schema(gw: Gateway) -> None:
    for path in ("/docs", "/redoc"):
        page = httpx.get(gw.url() + path, timeout=10)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert "/openapi.json" in page.text
    schema = httpx.get(gw.url() + "/openapi.json", timeout=10).json()
    assert schema["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schema["components"]["securitySchemes"]["bearerAuth"]["description"],
    }
    chat_op = schema["paths"]["/v1/chat/completions"]["post"]
    assert chat_op["security"] == [{"bearerAuth": []}]
    for status in ("400", "401", "403", "404", "413", "429", "500", "502", "503", "504"):
        ref = chat_op["responses"][status]["content"]["application/json"]["schema"]["$ref"]
        assert ref == "#/components/schemas/Error"
    error = schema["components"]["schemas"]["Error"]["properties"]["error"]
    assert error["required"] == ["message", "type", "param", "code"]
    assert schema["paths"]["/v1/models"]["get"]["responses"]["401"]
    assert "security" not in schema["paths"]["/healthz"]["get"]
    for path in ("/v1/embeddings", "/v1/responses"):  # the other queued routes
        operation = schema["paths"][path]["post"]
        body = operation["requestBody"]["content"]["application/json"]["schema"]
        assert "model" in body["properties"] and "$defs" not in json.dumps(body)
        assert operation["security"] == [{"bearerAuth": []}]
        assert operation["responses"]["429"]


DEV_KEY = "sk-or-v1-" + "d" * 64


def _dev_access_lines(tmp_path: Path, *args: str) -> tuple[list[dict[str, Any]], str, str]:
    """Run `orbyt dev [args]`, make one request, stop it: (access lines, request id, output)."""
    port = free_port()
    env = {**os.environ, "ORBYT_DEV_KEY": DEV_KEY, "ORBYT_WORKER_METRICS_PORT": "0"}
    if os.environ.get("ORBYT_REDIS_SERVER"):
        env["PATH"] = os.path.dirname(os.environ["ORBYT_REDIS_SERVER"]) + os.pathsep + env["PATH"]
    out = tmp_path / "dev.log"
    with out.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "orbyt", "dev", "--port", str(port), *args],
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        end = time.monotonic() + 40
        while time.monotonic() < end:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        resp = httpx.post(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            json={"model": "mock/echo", "messages": MSG},
            headers={"authorization": f"Bearer {DEV_KEY}"},
            timeout=20,
        )
        assert resp.status_code == 200, resp.text
        time.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    text = out.read_text(errors="replace")
    lines = [json.loads(x) for x in text.splitlines() if x.startswith("{")]
    return [x for x in lines if x["logger"] == "orbyt.access"], resp.headers["x-request-id"], text


@pytest.mark.parametrize(("args", "lines"), [((), 1), (("--log-level", "error"), 0)])
def test_orbyt_dev_log_level_controls_the_access_log(
    tmp_path: Path, args: tuple[str, ...], lines: int
) -> None:
    access, rid, output = _dev_access_lines(tmp_path, *args)
    assert len(access) == lines, output
    if lines:
        assert access[0]["request_id"] == rid and access[0]["model"] == "mock/echo"
    logged = [x for x in output.splitlines() if x.startswith("{")]  # the banner shows the key
    assert not [x for x in logged if DEV_KEY in x]
