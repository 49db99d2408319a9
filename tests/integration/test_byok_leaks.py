"""BYOK keys are used for one request and written nowhere (DESIGN §5, §9).

One gateway runs with `--log-level debug` while a Redis `MONITOR` records every command of
the whole module. Each test drives BYOK requests through one path — stream, non-stream,
embeddings, upstream 401 and 429, fallback to another provider, client cancellation, a
worker killed mid-job, a side-car that expired before pickup or was withdrawn, a job re-run
without its side-car — and then searches every log line, every command Redis received,
every Redis key and value, `/metrics` of the API and the worker, and every HTTP response for
every key used so far (plain, URL-encoded, hex, base64; any 23+ character fragment; see
leakscan.py).

Keys have realistic shapes (OpenAI `sk-proj-…T3BlbkFJ…`, Anthropic `sk-ant-api03-…AA`,
Google `AIza…`), so redaction by shape is exercised, and one is a shapeless 40-character
key for an OpenAI-compatible upstream: no redaction pattern knows it, so finding it nowhere
proves it was never written at all. Gateway keys (`sk-or-v1-…`) are watched the same way.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import signal
import string
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import orjson
import pytest
import redis
import redis.asyncio as aioredis
from arq.jobs import serialize_job

from orbyt.shared.contract import (
    ARQ_JOB_PREFIX,
    JOB_FUNCTION,
    Candidate,
    ChatJob,
    Frame,
    byok_key,
    decode_frame,
    reply_channel,
    wake_channel,
)
from tests.fakes import Error, FakeAnthropic, FakeGemini, FakeOpenAI, Reply
from tests.gateway import ROOT, Gateway, RedisServer, free_port
from tests.integration.leakscan import (
    Needles,
    RedisMonitor,
    Responses,
    Sources,
    keys_matching,
)
from tests.otlp import OtlpReceiver

pytestmark = pytest.mark.integration

_KEY_CHARS = string.ascii_letters + string.digits + "-_"


def _rand(n: int, alphabet: str = _KEY_CHARS) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def openai_key() -> str:
    return "sk-proj-" + _rand(74) + "T3BlbkFJ" + _rand(74)


def anthropic_key() -> str:
    key = "sk-ant-api03-" + _rand(93) + "AA"
    assert len(key) == 108
    return key


BYOK_OPENAI = openai_key()
BYOK_ANTHROPIC = anthropic_key()
BYOK_GOOGLE = "AIza" + _rand(35)
BYOK_SHAPELESS = _rand(40, string.ascii_letters + string.digits)  # no known shape at all
BAD_OPENAI = openai_key()  # well-formed, but the provider does not know it
BAD_ANTHROPIC = anthropic_key()
# accepted by the fakes, then echoed back by them in error bodies (watched separately)
ECHO_OPENAI = openai_key()
ECHO_SHAPELESS = _rand(40, string.ascii_letters + string.digits)

POOL_OPENAI = ["sk-pool-openai-a-" + _rand(24), "sk-pool-openai-b-" + _rand(24)]
POOL_ANTHROPIC = "sk-ant-api03-pool" + _rand(40)
GATEWAY_KEY = "sk-or-v1-" + secrets.token_hex(32)
WRONG_GATEWAY_KEY = "sk-or-v1-" + secrets.token_hex(32)

WATCHED = {
    "byok openai": BYOK_OPENAI,
    "byok anthropic": BYOK_ANTHROPIC,
    "byok google": BYOK_GOOGLE,
    "byok shapeless": BYOK_SHAPELESS,
    "rejected openai": BAD_OPENAI,
    "rejected anthropic": BAD_ANTHROPIC,
    "gateway key": GATEWAY_KEY,
    "wrong gateway key": WRONG_GATEWAY_KEY,
}

BYOK_TTL = 1.0
PICKUP_TIMEOUT = 3.0
HEARTBEAT_TIMEOUT = 2.0
MSG = [{"role": "user", "content": "Say hi"}]
CHAT_QUEUE = "orbyt:chat"


@dataclass
class Fakes:
    openai: FakeOpenAI
    anthropic: FakeAnthropic
    vllm: FakeOpenAI  # an OpenAI-compatible upstream whose keys have no known shape
    gemini: FakeGemini

    @property
    def all(self) -> list[Any]:
        return [self.openai, self.anthropic, self.vllm, self.gemini]

    def reset(self) -> None:
        for fake in self.all:
            fake.reset()
            fake.default = Reply()


@dataclass
class Env:
    gw: Gateway
    fakes: Fakes
    sources: Sources
    needles: Needles
    responses: Responses
    redis_port: int
    db: int
    worker_metrics: str
    receiver: OtlpReceiver

    @property
    def redis(self) -> Any:  # redis.Redis (its sync types are async-or-not unions)
        return redis.Redis.from_url(self.gw.redis_url)


@pytest.fixture(scope="module")
def fakes() -> Iterator[Fakes]:
    f = Fakes(
        FakeOpenAI(keys={*POOL_OPENAI, BYOK_OPENAI, ECHO_OPENAI}),
        FakeAnthropic(keys={POOL_ANTHROPIC, BYOK_ANTHROPIC}),
        FakeOpenAI(keys={BYOK_SHAPELESS, ECHO_SHAPELESS}),
        FakeGemini(keys={BYOK_GOOGLE}),
    )
    for fake in f.all:
        fake.start()
    try:
        yield f
    finally:
        for fake in f.all:
            fake.stop()


@pytest.fixture(scope="module")
def env(redis_server: RedisServer, fakes: Fakes) -> Iterator[Env]:
    monitor = RedisMonitor(redis_server.port).start()  # before the gateway: sees everything
    receiver = OtlpReceiver().start()  # tracing on: every span exported is searched too
    metrics_port = free_port()
    settings = {
        "ORBYT_GATEWAY_KEYS": GATEWAY_KEY,
        "ORBYT_BYOK_TTL": str(BYOK_TTL),
        "ORBYT_PICKUP_TIMEOUT": str(PICKUP_TIMEOUT),
        "ORBYT_HEARTBEAT_INTERVAL": "0.5",
        "ORBYT_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
        "ORBYT_WORKER_METRICS_PORT": str(metrics_port),
        "ORBYT_WORKER_METRICS_HOST": "127.0.0.1",
        "ORBYT_PROVIDERS__OPENAI__BASE_URL": fakes.openai.base_url,
        "ORBYT_PROVIDERS__OPENAI__KEYS": ",".join(POOL_OPENAI),
        "ORBYT_PROVIDERS__ANTHROPIC__BASE_URL": fakes.anthropic.base_url,
        "ORBYT_PROVIDERS__ANTHROPIC__KEYS": POOL_ANTHROPIC,
        "ORBYT_PROVIDERS__GOOGLE__BASE_URL": fakes.gemini.base_url,
        "ORBYT_PROVIDERS__MYVLLM__ADAPTER": "openai",
        "ORBYT_PROVIDERS__MYVLLM__BASE_URL": fakes.vllm.base_url,
        **receiver.env(),
    }
    url = redis_server.new_db_url()
    gw = Gateway(url, settings, workers=1, log_level="debug")
    try:
        gw.start()
        needles = Needles()
        for label, secret in WATCHED.items():
            needles.add(label, secret)
        responses = Responses()
        worker_metrics = f"http://127.0.0.1:{metrics_port}/metrics"
        sources = Sources(
            gw.logdir,
            monitor,
            redis_server.port,
            [gw.url() + "/metrics", worker_metrics],
            responses,
            receiver.data,
        )
        yield Env(
            gw,
            fakes,
            sources,
            needles,
            responses,
            redis_server.port,
            int(url.rsplit("/", 1)[1]),
            worker_metrics,
            receiver,
        )
    finally:
        gw.stop()
        monitor.stop()
        receiver.stop()


@pytest.fixture(autouse=True)
def _fresh(env: Env) -> Iterator[None]:
    env.fakes.reset()
    _forget_health(env)
    yield
    for proc in env.gw.workers:  # a test that failed while a worker was paused
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)


def _forget_health(env: Env) -> None:
    r = env.redis
    try:
        for pattern in ("orbyt:cb:*", "orbyt:stats:*", "orbyt:poolkey:*", "orbyt:rr:*"):
            keys = list(r.scan_iter(pattern))
            if keys:
                r.delete(*keys)
    finally:
        r.close()


# ------------------------------------------------------------------------------- helpers
@dataclass
class Result:
    status: int
    headers: httpx.Headers
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def rid(self) -> str:
        return self.headers["x-request-id"]

    def events(self) -> list[Any]:
        out = []
        for block in self.body.decode().split("\n\n"):
            for line in block.splitlines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    out.append(json.loads(line[6:]))
        return out

    def text(self) -> str:
        return "".join(
            e["choices"][0]["delta"].get("content") or "" for e in self.events() if e.get("choices")
        )


def body(model: str, byok: Any = None, stream: bool = False, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"model": model, "messages": MSG}
    if stream:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    if byok is not None:
        extra["byok"] = byok
    if extra:
        out["extra"] = extra
    return out


def post(
    env: Env,
    payload: dict[str, Any],
    key: str = GATEWAY_KEY,
    timeout: float = 20,
    path: str = "/v1/chat/completions",
) -> Result:
    headers = {"authorization": f"Bearer {key}"}
    with (
        httpx.Client(timeout=timeout) as c,
        c.stream("POST", env.gw.url() + path, json=payload, headers=headers) as resp,
    ):
        data = resp.read()
    env.responses.add(resp, data)
    return Result(resp.status_code, resp.headers, data)


def error_of(result: Result) -> dict[str, Any]:
    err = result.json["error"]
    assert set(err) == {"message", "type", "param", "code"}
    return dict(err)


def sidecars(env: Env) -> list[str]:
    return keys_matching(env.redis_port, env.db, "orbyt:byok:*")


def wait_until(predicate: Any, timeout: float = 3.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


def assert_clean(env: Env, *rids: str, full: bool = False) -> None:
    """No side-car left (the given requests' nor any other), and no watched key anywhere."""
    assert wait_until(lambda: not sidecars(env)), f"side-cars left: {sidecars(env)}"
    r = env.redis
    try:
        for rid in rids:
            assert not r.exists(byok_key(rid))
        for key in r.scan_iter("arq:result:*"):
            raise AssertionError(f"an arq result record exists: {key!r}")
    finally:
        r.close()
    time.sleep(0.2)  # lines a process writes just after the response
    hits = env.sources.scan(env.needles, since_last=not full)
    assert not hits, "secrets found:\n" + "\n".join(map(str, hits))


def pool_state(env: Env) -> list[str]:
    """What a failure can leave in the shared health state: pool-key cooldowns/disables,
    circuit-breaker failure counts, a non-zero route error rate."""
    out = keys_matching(env.redis_port, env.db, "orbyt:poolkey:*")
    out += keys_matching(env.redis_port, env.db, "orbyt:cb:*")
    r = env.redis
    try:
        for name in keys_matching(env.redis_port, env.db, "orbyt:stats:*"):
            if float(r.hget(name, "err") or 0) > 0:
                out.append(name)
    finally:
        r.close()
    return out


def pool_still_serves(env: Env) -> None:
    """Both OpenAI pool keys are healthy: two pool requests use one each and succeed."""
    env.fakes.openai.reset()
    for _ in range(2):
        r = post(env, body("openai/gpt-5-mini"))
        assert r.status == 200 and r.headers["x-orbyt-key-source"] == "pool"
    used = {q.headers["authorization"] for q in env.fakes.openai.requests}
    assert used == {f"Bearer {k}" for k in POOL_OPENAI}


def worker(env: Env) -> subprocess.Popen[bytes]:
    alive = [p for p in env.gw.workers if p.poll() is None]
    assert len(alive) == 1
    return alive[0]


def cli(env: Env, *args: str) -> Any:
    out = subprocess.run(
        [sys.executable, "-m", "orbyt", *args],
        capture_output=True,
        env={**os.environ, "ORBYT_REDIS_URL": env.gw.redis_url, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        timeout=30,
        check=True,
    )
    return json.loads(out.stdout)


# --------------------------------------------------------------------------- happy paths
def test_openai_byok_stream_and_non_stream(env: Env) -> None:
    r = post(env, body("openai/gpt-5-mini", BYOK_OPENAI))
    assert r.status == 200, r.body
    assert r.headers["x-orbyt-key-source"] == "byok"
    s = post(env, body("openai/gpt-5-mini", BYOK_OPENAI, stream=True))
    assert s.status == 200 and s.text() and s.headers["x-orbyt-key-source"] == "byok"
    seen = env.fakes.openai.requests
    assert [q.headers["authorization"] for q in seen] == [f"Bearer {BYOK_OPENAI}"] * 2
    assert all("extra" not in q.json for q in seen)
    assert_clean(env, r.rid, s.rid)


def test_anthropic_byok_stream_and_non_stream_via_the_sdk(env: Env) -> None:
    sdk = openai.OpenAI(base_url=env.gw.base_url, api_key=GATEWAY_KEY, max_retries=0, timeout=20)
    raw = sdk.chat.completions.with_raw_response.create(
        model="anthropic/claude-3-haiku",
        messages=MSG,  # type: ignore[arg-type]
        extra_body={"extra": {"byok": BYOK_ANTHROPIC}},
    )
    env.responses.add(raw.http_response)
    assert raw.headers["x-orbyt-key-source"] == "byok"
    assert raw.parse().choices[0].message.content
    s = post(env, body("anthropic/claude-3-haiku", {"anthropic": BYOK_ANTHROPIC}, stream=True))
    assert s.status == 200 and s.text()
    seen = env.fakes.anthropic.requests
    assert [q.headers["x-api-key"] for q in seen] == [BYOK_ANTHROPIC] * 2
    assert_clean(env, raw.headers["x-request-id"], s.rid)


def test_shapeless_key_for_an_openai_compatible_upstream(env: Env) -> None:
    r = post(env, body("myvllm/llama-3-8b", BYOK_SHAPELESS))
    s = post(env, body("myvllm/llama-3-8b", {"myvllm": BYOK_SHAPELESS}, stream=True))
    assert r.status == s.status == 200
    assert r.headers["x-orbyt-key-source"] == s.headers["x-orbyt-key-source"] == "byok"
    assert [q.headers["authorization"] for q in env.fakes.vllm.requests] == [
        f"Bearer {BYOK_SHAPELESS}"
    ] * 2
    assert_clean(env, r.rid, s.rid)


def test_google_byok_key(env: Env) -> None:
    r = post(env, body("google/gemini-2.5-flash", BYOK_GOOGLE))
    s = post(env, body("google/gemini-2.5-flash", BYOK_GOOGLE, stream=True))
    assert r.status == s.status == 200, r.body
    assert [
        q.headers.get("x-goog-api-key") or q.query.get("key") for q in env.fakes.gemini.requests
    ] == [BYOK_GOOGLE] * 2
    assert_clean(env, r.rid, s.rid)


def responses_body(model: str, byok: Any, stream: bool = False, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"model": model, "input": "Say hi", "extra": {"byok": byok, **extra}}
    if stream:
        out["stream"] = True
    return out


def test_responses_api_and_its_stored_responses(env: Env) -> None:
    """/v1/responses with BYOK keys, stream and non-stream, a fallback to another
    provider's key, then every stored response and its input items read back."""
    env.fakes.openai.script(Error(503))
    done = [
        post(env, responses_body("openai/gpt-5-mini", BYOK_OPENAI), path="/v1/responses"),
        post(
            env,
            responses_body("anthropic/claude-3-haiku", BYOK_ANTHROPIC, stream=True),
            path="/v1/responses",
        ),
        post(
            env,
            responses_body(
                "openai/gpt-5-mini",
                {"openai": BYOK_OPENAI, "anthropic": BYOK_ANTHROPIC},
                retry=0,
                fallback_models=["anthropic/claude-3-haiku"],
            ),
            path="/v1/responses",
        ),
    ]
    assert [r.status for r in done] == [200] * 3, [r.body for r in done]
    assert all(r.headers["x-orbyt-key-source"] == "byok" for r in done)
    assert done[1].events()[-1]["type"] == "response.completed"
    ids = [done[0].json["id"], done[1].events()[-1]["response"]["id"], done[2].json["id"]]
    headers = {"authorization": f"Bearer {GATEWAY_KEY}"}
    with httpx.Client(timeout=10) as c:
        for rid in ids:
            for tail in ("", "/input_items"):
                got = c.get(f"{env.gw.url()}/v1/responses/{rid}{tail}", headers=headers)
                assert got.status_code == 200, got.text
                env.responses.add(got, got.content)
    stored = keys_matching(env.redis_port, env.db, "orbyt:response:*")
    assert {f"orbyt:response:{rid}" for rid in ids} <= set(stored)
    assert_clean(env, *(r.rid for r in done))


# ------------------------------------------------------------------- provider refusals
def test_byok_401_is_the_callers_and_leaves_the_pool_alone(env: Env) -> None:
    r = post(env, body("openai/gpt-5-mini", BAD_OPENAI, retry=2))
    assert r.status == 401
    err = error_of(r)
    # Orbyt's words (the provider's may quote the key, masked), the provider's code
    assert err["message"].startswith("openai: the provider refused the API key given in extra")
    assert err["code"] == "invalid_api_key" and err["type"] == "invalid_request_error"
    assert r.headers["x-should-retry"] == "false"
    s = post(env, body("openai/gpt-5-mini", BAD_OPENAI, stream=True))
    assert s.status == 401 and error_of(s)["code"] == "invalid_api_key"
    a = post(env, body("anthropic/claude-3-haiku", BAD_ANTHROPIC))
    assert a.status == 401 and "refused the API key given in extra.byok" in error_of(a)["message"]
    assert error_of(a)["type"] == "authentication_error"
    # a bad caller key is tried once, and says nothing about the gateway's keys or routes
    assert len(env.fakes.openai.requests) == 2 and len(env.fakes.anthropic.requests) == 1
    assert pool_state(env) == []
    pool_still_serves(env)
    assert_clean(env, r.rid, s.rid, a.rid)


def test_byok_429_is_the_callers_and_leaves_the_pool_alone(env: Env) -> None:
    env.fakes.openai.script(Error(429, kind="rate_limit", retry_after=30))
    r = post(env, body("openai/gpt-5-mini", BYOK_OPENAI))
    assert r.status == 429
    err = error_of(r)
    assert "Rate limit reached" in err["message"]  # the provider's own reason, as sent
    assert r.headers["retry-after"] == "30" and r.headers["x-should-retry"] == "true"
    env.fakes.openai.script(Error(429, kind="insufficient_quota"))
    q = post(env, body("openai/gpt-5-mini", BYOK_OPENAI, stream=True))
    assert q.status == 429 and error_of(q)["code"] == "insufficient_quota"
    assert q.headers["x-should-retry"] == "false"
    assert pool_state(env) == []
    pool_still_serves(env)
    assert_clean(env, r.rid, q.rid)


# ------------------------------------------------------------------------------ fallback
def test_fallback_to_another_providers_byok_key(env: Env) -> None:
    env.fakes.openai.script(Error(503), Error(503))
    for stream in (False, True):
        r = post(
            env,
            body(
                "openai/gpt-5-mini",
                {"openai": BYOK_OPENAI, "anthropic": BYOK_ANTHROPIC},
                stream=stream,
                fallback_models=["anthropic/claude-3-haiku"],
                retry=0,
            ),
        )
        assert r.status == 200, r.body
        assert r.headers["x-orbyt-provider"] == "anthropic"
        assert r.headers["x-orbyt-key-source"] == "byok"
        assert r.headers["x-orbyt-attempts"] == "2"
    assert [q.headers["authorization"] for q in env.fakes.openai.requests] == [
        f"Bearer {BYOK_OPENAI}"
    ] * 2
    assert [q.headers["x-api-key"] for q in env.fakes.anthropic.requests] == [BYOK_ANTHROPIC] * 2
    assert pool_state(env) == []  # BYOK failures never feed a shared breaker
    assert_clean(env, r.rid)


def test_string_byok_falls_back_to_the_pool_where_allowed(env: Env) -> None:
    env.fakes.openai.script(Error(503))
    r = post(
        env,
        body(
            "openai/gpt-5-mini", BYOK_OPENAI, fallback_models=["anthropic/claude-3-haiku"], retry=0
        ),
    )
    assert r.status == 200, r.body
    assert r.headers["x-orbyt-provider"] == "anthropic"
    assert r.headers["x-orbyt-key-source"] == "pool"
    assert [q.headers["authorization"] for q in env.fakes.openai.requests] == [
        f"Bearer {BYOK_OPENAI}"
    ]
    assert [q.headers["x-api-key"] for q in env.fakes.anthropic.requests] == [POOL_ANTHROPIC]
    assert_clean(env, r.rid)


def test_a_key_without_pool_permission(env: Env) -> None:
    created = cli(env, "keys", "create", "--name", "byok-only", "--no-pool")
    key = created["key"]
    assert created["pool"] is False
    env.needles.add("no-pool gateway key", key)
    ok = post(
        env,
        body("openai/gpt-5-mini", BYOK_OPENAI, fallback_models=["anthropic/claude-3-haiku"]),
        key=key,
    )
    assert ok.status == 200 and ok.headers["x-orbyt-key-source"] == "byok"
    # the primary fails: the pool-backed fallback is not for this key
    env.fakes.openai.script(Error(503))
    failed = post(
        env,
        body(
            "openai/gpt-5-mini", BYOK_OPENAI, retry=0, fallback_models=["anthropic/claude-3-haiku"]
        ),
        key=key,
    )
    assert failed.status == 503 and error_of(failed)
    assert env.fakes.anthropic.requests == []
    # both providers with the caller's own keys: the fallback is used
    env.fakes.openai.script(Error(503))
    both = post(
        env,
        body(
            "openai/gpt-5-mini",
            {"openai": BYOK_OPENAI, "anthropic": BYOK_ANTHROPIC},
            retry=0,
            fallback_models=["anthropic/claude-3-haiku"],
        ),
        key=key,
    )
    assert both.status == 200 and both.headers["x-orbyt-key-source"] == "byok"
    assert both.headers["x-orbyt-provider"] == "anthropic"
    # a plan of pool routes only
    denied = post(env, body("openai/gpt-5-mini"), key=key)
    assert denied.status == 403 and error_of(denied)["code"] == "pool_not_allowed"
    assert [q.headers["x-api-key"] for q in env.fakes.anthropic.requests] == [BYOK_ANTHROPIC]
    assert all(
        q.headers["authorization"] == f"Bearer {BYOK_OPENAI}" for q in env.fakes.openai.requests
    )
    assert_clean(env, ok.rid, failed.rid, both.rid)


# ---------------------------------------------------------------------------- cancellation
def test_client_closes_a_stream_midway(env: Env) -> None:
    env.fakes.openai.script(Reply(tokens=200, per_token=0.03))
    payload = body("openai/gpt-5-mini", BYOK_OPENAI, stream=True)
    with (
        httpx.Client(timeout=20) as c,
        c.stream(
            "POST",
            env.gw.url() + "/v1/chat/completions",
            json=payload,
            headers={"authorization": f"Bearer {GATEWAY_KEY}"},
        ) as resp,
    ):
        got = b""
        for chunk in resp.iter_raw():
            got += chunk
            if got.count(b"data: ") >= 5:
                break
        rid = resp.headers["x-request-id"]
    env.responses.add(resp, got)
    assert env.fakes.openai.wait_for_disconnects(1, timeout=3)
    assert_clean(env, rid)


def test_client_gives_up_on_a_non_stream_request(env: Env) -> None:
    env.fakes.anthropic.script(Reply(text="slow", headers_delay=20))
    with pytest.raises(httpx.ReadTimeout):
        post(env, body("anthropic/claude-3-haiku", BYOK_ANTHROPIC), timeout=1.0)
    assert env.fakes.anthropic.wait_for_disconnects(1, timeout=3)
    assert_clean(env)


# ------------------------------------------------------------------- side-car gone early
def _post_in_thread(env: Env, payload: dict[str, Any]) -> tuple[threading.Thread, list[Result]]:
    out: list[Result] = []
    thread = threading.Thread(target=lambda: out.append(post(env, payload)), daemon=True)
    thread.start()
    return thread, out


def _queued_jobs(env: Env) -> dict[str, Any]:
    """rid -> arq job record, of the jobs waiting in the chat queue."""
    r = env.redis
    try:
        return {
            rid.decode(): orjson.loads(r.get(ARQ_JOB_PREFIX + rid.decode()) or b"null")
            for rid in r.zrange(CHAT_QUEUE, 0, -1)
        }
    finally:
        r.close()


def _job_records(env: Env) -> dict[str, Any]:
    """Every arq job record still in Redis (running, finished or abandoned)."""
    r = env.redis
    try:
        return {k.decode(): orjson.loads(r.get(k) or b"null") for k in r.scan_iter("arq:job:*")}
    finally:
        r.close()


def test_side_car_expired_before_pickup_is_a_clear_error_never_the_pool(env: Env) -> None:
    proc = worker(env)
    proc.send_signal(signal.SIGSTOP)  # the only worker is busy elsewhere, for a while
    try:
        thread, out = _post_in_thread(
            env,
            body("openai/gpt-5-mini", BYOK_OPENAI, fallback_models=["anthropic/claude-3-haiku"]),
        )
        assert wait_until(lambda: bool(sidecars(env) and _queued_jobs(env)), 2)
        jobs = _queued_jobs(env)  # the queued job record: a flag, never the key
        assert len(jobs) == 1
        (job,) = jobs.values()
        assert job["a"][0]["byok"] is True and "extra" not in job["a"][0]["body"]
        assert wait_until(lambda: not sidecars(env), BYOK_TTL + 2)  # expired
        assert len(_queued_jobs(env)) == 1  # ... while the job still waits
    finally:
        proc.send_signal(signal.SIGCONT)
    thread.join(10)
    (r,) = out
    assert r.status == 400
    err = error_of(r)
    assert err["code"] == "byok_key_unavailable" and "send the request again" in err["message"]
    # no silent switch to the pool, on the primary's provider or the fallback's
    assert env.fakes.openai.requests == [] and env.fakes.anthropic.requests == []
    assert_clean(env, r.rid)


def test_side_car_withdrawn_with_an_unclaimed_job(env: Env) -> None:
    proc = worker(env)
    proc.send_signal(signal.SIGSTOP)
    try:
        r = post(env, body("openai/gpt-5-mini", BYOK_OPENAI))
        assert r.status == 503 and error_of(r)["code"] == "no_worker"
        assert sidecars(env) == [] and _queued_jobs(env) == {}
        assert keys_matching(env.redis_port, env.db, ARQ_JOB_PREFIX + r.rid) == []
    finally:
        proc.send_signal(signal.SIGCONT)
    time.sleep(0.5)  # the worker, awake again, finds nothing to run
    assert env.fakes.openai.requests == []
    assert_clean(env, r.rid)


async def test_a_job_run_again_without_its_side_car_fails_clearly(env: Env) -> None:
    """What a re-run after a crash (or a duplicated job) meets: the key was read once."""
    rid = secrets.token_hex(16)
    plan = [
        Candidate(
            model="openai/gpt-5-mini", provider="openai", upstream="gpt-5-mini", key_source="byok"
        ),
        Candidate(
            model="anthropic/claude-3-haiku",
            provider="anthropic",
            upstream="claude-3-haiku",
            key_source="pool",
        ),
    ]
    job = ChatJob(
        rid=rid,
        channel=reply_channel(rid),
        body={"model": "openai/gpt-5-mini", "messages": MSG},
        plan=plan,
        strategy="ordered",
        key_id="test",
        deadline=time.time() + 30,
        byok=True,
        retry=0,
        stream=False,
        include_usage=False,
    )
    data = serialize_job(
        JOB_FUNCTION, (job,), {}, 1, int(time.time() * 1000), serializer=orjson.dumps
    )
    client = aioredis.Redis.from_url(env.gw.redis_url)
    pubsub = client.pubsub()
    try:
        await pubsub.subscribe(reply_channel(rid))
        async with client.pipeline(transaction=True) as pipe:  # the job contract, by hand
            pipe.set(ARQ_JOB_PREFIX + rid, data, px=int(PICKUP_TIMEOUT * 1000) + 1000)
            pipe.zadd(CHAT_QUEUE, {rid: int(time.time() * 1000)})
            pipe.publish(wake_channel(CHAT_QUEUE), b"1")
            await pipe.execute()
        frames: list[Frame] = []
        async with asyncio.timeout(10):
            while not frames or frames[-1].kind not in (b"F", b"E"):
                msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
                if msg is not None:
                    frames.append(decode_frame(msg["data"]))
    finally:
        await pubsub.aclose()
        await client.aclose()
    assert frames[-1].kind == b"E"
    error = orjson.loads(frames[-1].payload)["error"]
    assert error["code"] == "byok_key_unavailable"
    assert (frames[-1].meta or {})["status"] == 400
    assert env.fakes.openai.requests == [] and env.fakes.anthropic.requests == []
    assert_clean(env, rid)


# ---------------------------------------------------------------------------- worker death
def test_worker_killed_mid_stream(env: Env) -> None:
    env.fakes.anthropic.script(Reply(tokens=400, per_token=0.03))
    proc = worker(env)
    payload = body("anthropic/claude-3-haiku", BYOK_ANTHROPIC, stream=True)
    with (
        httpx.Client(timeout=20) as c,
        c.stream(
            "POST",
            env.gw.url() + "/v1/chat/completions",
            json=payload,
            headers={"authorization": f"Bearer {GATEWAY_KEY}"},
        ) as resp,
    ):
        got = b""
        chunks = resp.iter_raw()
        for chunk in chunks:
            got += chunk
            if got.count(b"data: ") >= 5:
                proc.kill()
                proc.wait(5)
                break
        for chunk in chunks:  # the API notices the silence and ends the stream in-band
            got += chunk
        rid = resp.headers["x-request-id"]
    env.responses.add(resp, got)
    last = got.decode().strip().rsplit("\n\n", 1)[-1]
    assert last.startswith("data: ") and "error" in json.loads(last[6:])
    assert b"[DONE]" not in got
    assert env.fakes.anthropic.wait_for_disconnects(1, timeout=3)
    leftovers = {k: v for k, v in _job_records(env).items() if v is not None}
    for record in leftovers.values():  # whatever arq left behind: no key in it
        assert record["a"][0]["byok"] is True and "extra" not in record["a"][0]["body"]
    env.gw.workers.remove(proc)
    env.gw.start_worker()
    assert wait_until(lambda: post(env, body("openai/gpt-5-mini")).status == 200, 20)
    assert_clean(env, rid)


# ----------------------------------------------------------------- what callers get back
def test_invalid_byok_keys_are_never_echoed(env: Env) -> None:
    cases = [
        (body("openai/gpt-5-mini", BYOK_ANTHROPIC), "invalid_byok_key"),  # another's shape
        (body("openai/gpt-5-mini", BYOK_GOOGLE), "invalid_byok_key"),
        (body("anthropic/claude-3-haiku", BYOK_OPENAI), "invalid_byok_key"),
        (body("anthropic/claude-3-haiku", "sk-ant-admin01-" + BYOK_SHAPELESS), "invalid_byok_key"),
        (body("openai/gpt-5-mini", BYOK_SHAPELESS + " x"), "invalid_byok_key"),
        (body("myvllm/llama-3-8b", BYOK_SHAPELESS + "\n"), "invalid_byok_key"),  # header-unsafe
        (body("openai/gpt-5-mini", {"nosuchprovider": BYOK_OPENAI}), None),
        (body("openai/gpt-5-mini", {"openai": [BYOK_OPENAI]}), "invalid_value"),
        ({**body("openai/gpt-5-mini"), "extra": {"byok_key": BYOK_OPENAI}}, "unknown_parameter"),
        (
            {**body("openai/gpt-5-mini"), "extra": {"byok": 12, "fallback_models": [BYOK_OPENAI]}},
            "invalid_value",
        ),
        ({**body("openai/gpt-5-mini", BYOK_OPENAI), "stream": BYOK_SHAPELESS}, "invalid_value"),
    ]
    for payload, code in cases:
        r = post(env, payload)
        assert r.status == 400, (payload, r.body)
        if code:
            assert error_of(r)["code"] == code, r.body
    assert [f.requests for f in env.fakes.all] == [[], [], [], []]
    assert_clean(env)


def test_a_key_pasted_into_another_field_is_not_echoed(env: Env) -> None:
    """DESIGN §9: validation errors never echo secrets, wherever the caller put them."""
    needles = Needles()
    needles.add("pasted", ECHO_SHAPELESS)
    needles.add("pasted openai", ECHO_OPENAI)
    mark = len(env.responses.items)
    cases = [
        {"model": ECHO_OPENAI, "messages": MSG},
        {"model": f"{ECHO_SHAPELESS}/gpt-5-mini", "messages": MSG},
        body("openai/gpt-5-mini", provider=ECHO_SHAPELESS),
        body("openai/gpt-5-mini", {ECHO_OPENAI: "openai"}),  # key and provider swapped
        body("openai/gpt-5-mini", fallback_models=[f"{ECHO_SHAPELESS}/x"]),
    ]
    statuses = [post(env, payload).status for payload in cases]
    assert statuses == [400] * len(cases)
    hits = needles.search(Responses(env.responses.items[mark:]).data(), "HTTP responses")
    assert not hits, "pasted keys echoed:\n" + "\n".join(map(str, hits))


def test_gateway_keys_are_never_written(env: Env) -> None:
    assert post(env, body("openai/gpt-5-mini"), key=WRONG_GATEWAY_KEY).status == 401
    r = httpx.get(
        env.gw.url() + "/v1/models",
        timeout=10,
        headers={"authorization": f"Bearer {WRONG_GATEWAY_KEY}"},
    )
    env.responses.add(r)
    assert r.status_code == 401
    created = cli(env, "keys", "create", "--name", "watched", "--rpm", "100", "--concurrency", "5")
    env.needles.add("created gateway key", created["key"])
    ok = post(env, body("openai/gpt-5-mini", BYOK_OPENAI), key=created["key"])
    assert ok.status == 200
    cli(env, "keys", "revoke", created["id"])
    revoked = post(env, body("openai/gpt-5-mini"), key=created["key"])
    assert revoked.status == 401
    listing = subprocess.run(
        [sys.executable, "-m", "orbyt", "keys", "list"],
        capture_output=True,
        cwd=ROOT,
        timeout=30,
        check=True,
        env={**os.environ, "ORBYT_REDIS_URL": env.gw.redis_url, "PYTHONPATH": str(ROOT)},
    )
    hits = env.needles.search(listing.stdout + listing.stderr, "orbyt keys list")
    assert not hits, hits
    assert_clean(env, ok.rid)


def test_metrics_carry_no_key(env: Env) -> None:
    for url in (env.gw.url() + "/metrics", env.worker_metrics):
        text = httpx.get(url, timeout=5).text
        assert "orbyt_" in text
    assert_clean(env)


def test_the_search_finds_a_planted_key(env: Env) -> None:
    """Positive control: a key planted in each kind of source, in each encoding, is found."""
    canary = openai_key()
    needles = Needles()
    needles.add("canary", canary)
    r = env.redis
    try:
        raw = canary.encode()
        r.set("orbyt:test:canary:b64", b"\x00blob:" + base64.b64encode(b"xy" + raw) + b"\xff")
        r.hset("orbyt:test:canary:hash", "f", f"<{raw.hex()}>")
        r.publish("orbyt:test:canary", b'{"k": "' + raw[5:40] + b'"}')  # a fragment
        hits = env.sources.scan(needles, since_last=False)
        r.delete("orbyt:test:canary:b64", "orbyt:test:canary:hash")
    finally:
        r.close()
    (env.gw.logdir / "canary.log").write_text(f"x=https://h/?key={canary}&y\n")
    env.responses.add(httpx.Response(200, headers={"x-k": canary.encode().hex().upper()}))
    env.receiver.plant("canary.attribute", canary)
    hits += env.sources.scan(needles, since_last=False)
    found = {(h.where, h.form.partition("@")[0]) for h in hits}
    assert {
        ("redis keys/values", "base64"),
        ("redis keys/values", "hex"),
        ("redis MONITOR", "base64"),
        ("redis MONITOR", "hex"),
        ("redis MONITOR", "plain"),  # the 35-character fragment
        ("log canary.log", "plain"),
        ("HTTP responses", "HEX"),
        ("trace spans", "plain"),
    } <= found
    assert all(h.secret == "canary" and canary not in str(h) for h in hits)


def test_an_upstream_echoing_the_key_is_not_repeated(env: Env) -> None:
    """A provider (or a proxy in front of one) that quotes the caller's key in its error
    message: the gateway must not pass the key on, nor publish or log it."""
    needles = Needles()
    needles.add("echoed openai", ECHO_OPENAI)
    needles.add("echoed shapeless", ECHO_SHAPELESS)

    def echo(key: str) -> Error:
        return Error(
            401,
            body={
                "error": {
                    "message": f"Incorrect API key provided: {key}.",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "invalid_api_key",
                }
            },
        )

    env.fakes.openai.script(echo(ECHO_OPENAI))
    env.fakes.vllm.script(
        echo(ECHO_SHAPELESS),
        Reply(
            tokens=5,
            midstream_error=2,
            error_body={
                "error": {
                    "message": f"key {ECHO_SHAPELESS} revoked",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": None,
                }
            },
        ),
    )
    mark = len(env.responses.items)
    a = post(env, body("openai/gpt-5-mini", ECHO_OPENAI))
    b = post(env, body("myvllm/llama-3-8b", ECHO_SHAPELESS))
    c = post(env, body("myvllm/llama-3-8b", ECHO_SHAPELESS, stream=True))
    assert a.status == b.status == 401 and c.status == 200
    assert "error" in c.events()[-1]
    assert wait_until(lambda: not sidecars(env))
    time.sleep(0.2)
    own = Responses(env.responses.items[mark:])
    hits = needles.search(own.data(), "HTTP responses")
    hits += needles.search(env.sources.monitor.data(), "redis MONITOR")
    hits += needles.search(env.receiver.data(), "trace spans")
    for path in sorted(env.gw.logdir.glob("*.log")):
        hits += needles.search(path.read_bytes(), f"log {path.name}")
    assert not hits, "echoed keys found:\n" + "\n".join(map(str, hits))


# ---------------------------------------------------------------------------- embeddings
def embed(model: str, byok: Any = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"model": model, "input": ["Say hi", "again"], "dimensions": 768}
    if byok is not None:
        extra["byok"] = byok
    if extra:
        out["extra"] = extra
    return out


def post_embeddings(env: Env, payload: dict[str, Any]) -> Result:
    return post(env, payload, path="/v1/embeddings")


def test_embeddings_byok_keys(env: Env) -> None:
    sdk = openai.OpenAI(base_url=env.gw.base_url, api_key=GATEWAY_KEY, max_retries=0, timeout=20)
    raw = sdk.embeddings.with_raw_response.create(
        model="openai/text-embedding-3-small",
        input="Say hi",
        extra_body={"extra": {"byok": BYOK_OPENAI}},
    )
    env.responses.add(raw.http_response)
    assert raw.headers["x-orbyt-key-source"] == "byok" and raw.parse().data
    g = post_embeddings(env, embed("google/gemini-embedding-001", BYOK_GOOGLE))
    v = post_embeddings(
        env, {"model": "myvllm/e5", "input": "x", "extra": {"byok": BYOK_SHAPELESS}}
    )
    assert g.status == v.status == 200, g.body
    assert env.fakes.openai.last.headers["authorization"] == f"Bearer {BYOK_OPENAI}"
    assert env.fakes.gemini.last.headers["x-goog-api-key"] == BYOK_GOOGLE
    assert env.fakes.vllm.last.headers["authorization"] == f"Bearer {BYOK_SHAPELESS}"
    assert all("extra" not in q.json for q in env.fakes.openai.requests)
    assert_clean(env, raw.headers["x-request-id"], g.rid, v.rid)


def test_embeddings_byok_401_and_fallback(env: Env) -> None:
    r = post_embeddings(env, embed("openai/text-embedding-3-large", BAD_OPENAI, retry=2))
    assert r.status == 401 and error_of(r)["code"] == "invalid_api_key"
    assert "refused the API key given in extra" in error_of(r)["message"]
    env.fakes.openai.script(Error(503))
    f = post_embeddings(
        env,
        embed(
            "openai/text-embedding-3-large",
            {"openai": BYOK_OPENAI, "google": BYOK_GOOGLE},
            fallback_models=["google/gemini-embedding-001"],
            retry=0,
        ),
    )
    assert f.status == 200 and f.headers["x-orbyt-provider"] == "google", f.body
    assert pool_state(env) == []
    assert_clean(env, r.rid, f.rid)


def test_embeddings_key_pasted_into_another_field_is_not_echoed(env: Env) -> None:
    needles = Needles()
    needles.add("pasted", ECHO_SHAPELESS)
    mark = len(env.responses.items)
    cases = [
        {"model": "openai/text-embedding-3-small", "input": "a", ECHO_SHAPELESS: 1},
        {"model": f"{ECHO_SHAPELESS}/e", "input": "a"},
        {"model": "openai/text-embedding-3-small", "input": "a", "user": 1, "x": ECHO_SHAPELESS},
    ]
    assert [post_embeddings(env, c).status for c in cases] == [400] * len(cases)
    hits = needles.search(Responses(env.responses.items[mark:]).data(), "HTTP responses")
    assert not hits, "pasted keys echoed:\n" + "\n".join(map(str, hits))


def test_spans_of_every_process_were_searched(env: Env) -> None:
    """Tracing is on in this module: the API's and the worker's spans reached the receiver
    (so the searches above covered them)."""
    assert post(env, body("openai/gpt-5-mini", BYOK_OPENAI)).status == 200
    spans = env.receiver.wait_for(
        lambda spans: {"orbyt-api", "orbyt-worker"} <= {s.service for s in spans}
    )
    assert any(s.attributes.get("orbyt.key_source") == "byok" for s in spans)
    assert_clean(env)


def test_zz_the_whole_module_left_no_key_anywhere(env: Env) -> None:
    """Everything again, from the first byte: late log lines, every MONITOR command."""
    assert_clean(env, full=True)
