"""POST /v1/embeddings through Orbyt (issue 13), with the official `openai` SDK as the
client and the OpenAI, Gemini and Mistral fakes as upstreams: what the caller gets (the
SDK's own types, vectors in input order in the asked encoding, usage, `x-orbyt-*`
headers), what each provider got (its own embeddings wire), the 400s of validation, and
the routing fault scenarios (429 with Retry-After, 503 then fallback, hang -> timeout and
failover).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest

from orbyt.shared.catalog import default_catalog
from tests.fakes import Error, FakeGemini, FakeMistral, FakeOpenAI, Hang, Reply, Reset
from tests.fakes.embeddings import vector
from tests.gateway import GATEWAY_KEY, Gateway, RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

KEYS = {
    "openai": "sk-proj-Qx7Lm2Np9Rs4Tv6WbE1aZ0T3BlbkFJYb3Cd5Ef8Gh1Jk0MnPq2Rs",
    "google": "AIzaSyD3Fq8Lm2Np9Rs4Tv6WbE1aZ0Yb3Cd5Ef8",
    "mistral": "Zq8Xw2Lm5Np7Rt4Vy1Bc3Df6Gh9Jk0Ms",
}
BYOK = "sk-proj-Hn3Kp8Wq1Zr6Tv4YbM2aX9T3BlbkFJCd7Ef0Gh5Jk2Lm8Np4Qr1SsZ"
SMALL = "openai/text-embedding-3-small"
LARGE = "openai/text-embedding-3-large"
GEMINI = "google/gemini-embedding-001"
MISTRAL = "mistral/mistral-embed"
ADMIN_KEY = "sk-admin-" + "5" * 40


@dataclass
class Fakes:
    openai: FakeOpenAI
    google: FakeGemini
    mistral: FakeMistral

    def reset(self) -> None:
        for fake in (self.openai, self.google, self.mistral):
            fake.reset()


@pytest.fixture(scope="module")
def fakes() -> Iterator[Fakes]:
    with (
        FakeOpenAI(keys={KEYS["openai"], BYOK, "sk-vllm-local"}) as oai,
        FakeGemini(keys={KEYS["google"]}) as gem,
        FakeMistral(keys={KEYS["mistral"]}) as mis,
    ):
        yield Fakes(oai, gem, mis)


@pytest.fixture(scope="module")
def gw(redis_server: RedisServer, fakes: Fakes) -> Iterator[Gateway]:
    env = {
        "ORBYT_PROVIDERS__OPENAI__BASE_URL": fakes.openai.base_url,
        "ORBYT_PROVIDERS__OPENAI__KEYS": f'["{KEYS["openai"]}"]',
        "ORBYT_PROVIDERS__GOOGLE__BASE_URL": fakes.google.base_url,
        "ORBYT_PROVIDERS__GOOGLE__KEYS": f'["{KEYS["google"]}"]',
        "ORBYT_PROVIDERS__MISTRAL__BASE_URL": fakes.mistral.base_url,
        "ORBYT_PROVIDERS__MISTRAL__KEYS": f'["{KEYS["mistral"]}"]',
        "ORBYT_PROVIDERS__MYVLLM__ADAPTER": "openai",
        "ORBYT_PROVIDERS__MYVLLM__BASE_URL": fakes.openai.base_url,
        "ORBYT_PROVIDERS__MYVLLM__KEYS": '["sk-vllm-local"]',
        "ORBYT_BACKOFF_BASE": "0.05",
        "ORBYT_NONSTREAM_TIMEOUT": "1.5",
        "ORBYT_BREAKER_FAILURES": "1000",
        "ORBYT_ADMIN_KEY": ADMIN_KEY,
    }
    with Gateway(redis_server.new_db_url(), env) as gateway:
        yield gateway


@pytest.fixture
def client(gw: Gateway, fakes: Fakes) -> Iterator[openai.OpenAI]:
    fakes.reset()
    with openai.OpenAI(api_key=GATEWAY_KEY, base_url=gw.base_url, max_retries=0) as c:
        yield c


def close(a: list[float], b: list[float]) -> bool:
    if len(a) != len(b):
        return False
    return all(math.isclose(x, y, rel_tol=1e-6) for x, y in zip(a, b, strict=True))


def post(gw: Gateway, body: dict[str, Any]) -> httpx.Response:
    headers = {"authorization": f"Bearer {GATEWAY_KEY}"}
    return httpx.post(f"{gw.base_url}/embeddings", json=body, headers=headers, timeout=20)


# ------------------------------------------------------------------------- contract
def test_openai_single_base64_by_default(client: openai.OpenAI, fakes: Fakes) -> None:
    raw = client.embeddings.with_raw_response.create(model=SMALL, input="hello")
    res = raw.parse()
    assert res.object == "list" and res.model == SMALL
    assert close(res.data[0].embedding, vector("hello", 1536))
    assert res.usage.prompt_tokens == res.usage.total_tokens > 0
    assert raw.headers["x-orbyt-provider"] == "openai"
    assert raw.headers["x-orbyt-model"] == SMALL
    assert raw.headers["x-orbyt-attempts"] == "1"
    got = fakes.openai.last
    assert got.path == "/v1/embeddings"
    assert got.json == {
        "model": "text-embedding-3-small",
        "input": "hello",
        "encoding_format": "base64",
    }
    assert got.headers["authorization"] == f"Bearer {KEYS['openai']}"


def test_openai_list_float_dimensions_user(client: openai.OpenAI, fakes: Fakes) -> None:
    res = client.embeddings.create(
        model=LARGE, input=["a", "b", "c"], dimensions=8, encoding_format="float", user="u1"
    )
    assert [d.index for d in res.data] == [0, 1, 2]
    assert all(close(d.embedding, vector(t, 8)) for d, t in zip(res.data, "abc", strict=True))
    assert fakes.openai.last.json == {
        "model": "text-embedding-3-large",
        "input": ["a", "b", "c"],
        "dimensions": 8,
        "encoding_format": "float",
        "user": "u1",
    }


def test_openai_token_arrays_and_compatible_upstream(client: openai.OpenAI, fakes: Fakes) -> None:
    model = "myvllm/text-embedding-3-small"  # not in the catalog: sent as asked
    res = client.embeddings.create(model=model, input=[[1, 2, 3], [4]], dimensions=64)
    assert len(res.data) == 2 and close(res.data[1].embedding, vector([4], 64))
    assert fakes.openai.last.json["model"] == "text-embedding-3-small"
    assert fakes.openai.last.json["dimensions"] == 64
    assert fakes.openai.last.headers["authorization"] == "Bearer sk-vllm-local"


def test_gemini_single_and_list(client: openai.OpenAI, fakes: Fakes) -> None:
    one = client.embeddings.create(model=GEMINI, input="a", dimensions=16)
    assert close(one.data[0].embedding, vector("a", 16))  # base64 rendered by Orbyt
    assert one.usage.prompt_tokens > 0  # Gemini reports none: estimated
    got = fakes.google.last
    assert got.path == "/v1beta/models/gemini-embedding-001:embedContent"
    assert got.json == {"content": {"parts": [{"text": "a"}]}, "outputDimensionality": 16}
    assert got.headers["x-goog-api-key"] == KEYS["google"]
    many = client.embeddings.create(model=GEMINI, input=["a", "b"], encoding_format="float")
    assert [d.index for d in many.data] == [0, 1]
    assert close(many.data[1].embedding, vector("b", 3072))
    got = fakes.google.last
    assert got.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert [r["model"] for r in got.json["requests"]] == ["models/gemini-embedding-001"] * 2


def test_mistral_list(client: openai.OpenAI, fakes: Fakes) -> None:
    fakes.mistral.script(Reply(usage=(9, 0)))
    res = client.embeddings.create(model=MISTRAL, input=["x", "y"], user="u1")
    assert close(res.data[0].embedding, vector("x", 1024))
    assert res.usage.prompt_tokens == 9
    assert fakes.mistral.last.json == {"model": "mistral-embed", "input": ["x", "y"]}


# ------------------------------------------------------------------------ validation
@pytest.mark.parametrize(
    ("body", "param", "text"),
    [
        ({"model": "openai/gpt-5-mini", "input": "a"}, "model", "openai/gpt-5-mini"),
        ({"model": "anthropic/claude-haiku-4-5", "input": "a"}, "model", "anthropic"),
        ({"model": GEMINI, "input": [[1, 2]]}, "input", "token arrays"),
        ({"model": MISTRAL, "input": "a", "dimensions": 8}, "dimensions", MISTRAL),
        ({"model": SMALL, "input": ""}, "input", "empty"),
        ({"model": SMALL, "input": "a", "encoding_format": "int8"}, "encoding_format", ""),
        ({"model": SMALL, "input": "a", "temperature": 1}, "temperature", "temperature"),
        (
            {"model": LARGE, "input": "a", "extra": {"fallback_models": [GEMINI, MISTRAL]}},
            "extra.fallback_models",
            MISTRAL,
        ),
        (
            {"model": SMALL, "input": "a", "extra": {"fallback_models": [LARGE]}},
            "extra.fallback_models",
            LARGE,
        ),
    ],
)
def test_invalid_requests(gw: Gateway, body: dict[str, Any], param: str, text: str) -> None:
    resp = post(gw, body)
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["param"] == param and text in error["message"]


def test_models_list_embedding_models(client: openai.OpenAI) -> None:
    entry = client.models.retrieve(GEMINI).model_extra or {}
    assert entry["dimensions"] == 3072 and "embeddings" in entry["capabilities"]


def test_more_inputs_than_a_gemini_batch_holds(gw: Gateway, fakes: Fakes) -> None:
    fakes.reset()
    resp = post(gw, {"model": GEMINI, "input": ["a"] * 101})
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["param"] == "input" and not fakes.google.requests


def test_embedding_model_on_chat(gw: Gateway) -> None:
    body = {"model": SMALL, "messages": [{"role": "user", "content": "hi"}]}
    headers = {"authorization": f"Bearer {GATEWAY_KEY}"}
    resp = httpx.post(f"{gw.base_url}/chat/completions", json=body, headers=headers)
    assert resp.status_code == 400
    assert resp.json()["error"]["param"] == "model" and SMALL in resp.json()["error"]["message"]


# ----------------------------------------------------------------- faults and routing
def test_429_with_retry_after_is_retried(client: openai.OpenAI, fakes: Fakes) -> None:
    fakes.openai.script(Error(429, retry_after=0.3))
    raw = client.embeddings.with_raw_response.create(model=SMALL, input="a")
    assert raw.headers["x-orbyt-attempts"] == "2"
    first, second = fakes.openai.requests[-2:]
    assert second.at - first.at >= 0.3
    assert close(raw.parse().data[0].embedding, vector("a", 1536))


def test_503_then_fallback_across_providers(client: openai.OpenAI, fakes: Fakes) -> None:
    fakes.openai.script(Error(503), Error(503), Error(503))
    raw = client.embeddings.with_raw_response.create(
        model=LARGE,
        input=["a", "b"],
        dimensions=32,
        extra_body={"extra": {"fallback_models": [GEMINI]}},
    )
    res = raw.parse()
    assert raw.headers["x-orbyt-provider"] == "google" and res.model == GEMINI
    assert close(res.data[1].embedding, vector("b", 32))
    assert fakes.google.last.json["requests"][0]["outputDimensionality"] == 32
    assert "extra" not in fakes.google.last.json


def test_fallback_to_a_model_of_that_size_without_dimensions(
    client: openai.OpenAI, fakes: Fakes
) -> None:
    fakes.openai.script(Error(503), Error(503), Error(503))
    raw = client.embeddings.with_raw_response.create(
        model=LARGE,
        input="a",
        dimensions=1024,
        extra_body={"extra": {"fallback_models": [MISTRAL]}},
    )
    assert raw.headers["x-orbyt-provider"] == "mistral"
    assert fakes.mistral.last.json == {"model": "mistral-embed", "input": "a"}
    assert close(raw.parse().data[0].embedding, vector("a", 1024))


def test_hang_times_out_and_fails_over(client: openai.OpenAI, fakes: Fakes) -> None:
    fakes.openai.script(Hang())
    raw = client.embeddings.with_raw_response.create(
        model=SMALL,
        input="a",
        extra_body={"extra": {"fallback_models": ["openai/text-embedding-ada-002"]}},
    )
    assert raw.headers["x-orbyt-model"] == "openai/text-embedding-ada-002"
    assert fakes.openai.wait_for_disconnects(1, timeout=3)
    assert fakes.openai.last.json["model"] == "text-embedding-ada-002"


def test_dropped_connections_are_retried(client: openai.OpenAI, fakes: Fakes) -> None:
    """A reset before any byte, then a body cut half-way: both retried on the same route."""
    fakes.mistral.script(Reset(), Reply(cut_after=0))
    raw = client.embeddings.with_raw_response.create(
        model=MISTRAL, input=["x"], extra_body={"extra": {"retry": 2}}
    )
    assert raw.headers["x-orbyt-attempts"] == "3"
    assert close(raw.parse().data[0].embedding, vector("x", 1024))


def test_upstream_error_reaches_the_caller(client: openai.OpenAI, fakes: Fakes) -> None:
    fakes.openai.script(Error(400, message="bad input"))
    with pytest.raises(openai.BadRequestError, match="bad input"):
        client.embeddings.create(model=SMALL, input="a", extra_body={"extra": {"retry": 0}})


def test_byok_key_goes_upstream(client: openai.OpenAI, fakes: Fakes) -> None:
    client.embeddings.create(model=SMALL, input="a", extra_body={"extra": {"byok": BYOK}})
    assert fakes.openai.last.headers["authorization"] == f"Bearer {BYOK}"
    assert "extra" not in fakes.openai.last.json


# ---------------------------------------------------------------------- usage and cost
def admin(gw: Gateway, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    return httpx.request(method, gw.url() + path, headers=headers, timeout=10, **kwargs)


def test_usage_and_cost_are_recorded(gw: Gateway, fakes: Fakes) -> None:
    fakes.reset()
    created = admin(gw, "POST", "/admin/keys", json={"name": "embeddings-usage"}).json()
    fakes.openai.script(Error(503), Reply(usage=(5000, 0)))
    with openai.OpenAI(api_key=created["key"], base_url=gw.base_url, max_retries=0) as c:
        c.embeddings.create(model=SMALL, input="a", extra_body={"extra": {"retry": 1}})
    info = default_catalog().get(SMALL)
    assert info is not None and info.input_price is not None

    def records() -> dict[str, Any]:
        r = admin(gw, "GET", "/admin/usage", params={"key_id": created["id"]})
        return dict(r.json()["models"])

    end = time.monotonic() + 5
    while not records() and time.monotonic() < end:
        time.sleep(0.05)
    record = records()[SMALL]
    assert record["prompt_tokens"] == 5000 and not record.get("completion_tokens")
    assert record["cost_micros"] == round(5000 * info.input_price) > 0


def test_zz_no_error_in_any_log(gw: Gateway) -> None:
    """Every request of this module, refused or failed over included, is no bug."""
    for line in gw.all_logs().splitlines():
        low = line.lower().replace(" ", "")
        assert '"level":"error"' not in low and '"level":"critical"' not in low, line
        assert "Traceback" not in line, line
