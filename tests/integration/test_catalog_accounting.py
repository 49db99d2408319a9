"""Custom upstreams and honest accounting, through real API and worker processes (issue 14).

    openai -> FakeOpenAI "primary"   shipped catalog (gpt-5-mini: no prefill)
    wall   -> FakeOpenAI "wall"      OpenAI-compatible, declared in the environment:
                                     wall/llama-3-8b with prefill and prices
    mock   -> the built-in mock provider (in the worker)

The accounting tests assert the caller's usage and the Redis records against what the
fakes billed for every attempt: a primary cut after N tokens (the caller got them; the
upstream sent no usage, so the gateway estimates them at 4 characters per token: every
token here is 4 characters) and the continuation's reported usage.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from orbyt.shared.catalog import default_catalog
from tests.fakes import Error, FakeOpenAI, Reply
from tests.gateway import Gateway, RedisServer
from tests.integration.faults_support import read_stream, wait_until

pytestmark = pytest.mark.integration

ADMIN_KEY = "orbyt-admin-" + "Hc7wQ2nV5xZ8rK3m" * 2
MSG: list[Any] = [{"role": "user", "content": "Say hi"}]  # 6 characters: 2 tokens estimated
PRIMARY, DECLARED = "openai/gpt-5-mini", "wall/llama-3-8b"
LLAMA: dict[str, Any] = {
    "id": "llama-3-8b",
    "context_window": 8192,
    "capabilities": ["prefill"],
    "input_price": 0.1,
    "output_price": 0.2,
}
# 60 tokens of exactly 4 characters each ("tk00", " t01", ... " t59")
TOKENS = ["tk00", *(f" t{i:02d}" for i in range(1, 60))]


@pytest.fixture(scope="module")
def primary() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture(scope="module")
def wall() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture(scope="module")
def gw(redis_server: RedisServer, primary: FakeOpenAI, wall: FakeOpenAI) -> Iterator[Gateway]:
    env = {
        "ORBYT_ADMIN_KEY": ADMIN_KEY,
        "ORBYT_PROVIDERS__OPENAI__BASE_URL": primary.base_url,
        "ORBYT_PROVIDERS__OPENAI__KEYS": "sk-primary",
        "ORBYT_PROVIDERS__WALL__ADAPTER": "openai",
        "ORBYT_PROVIDERS__WALL__BASE_URL": wall.base_url,
        "ORBYT_PROVIDERS__WALL__KEYS": "sk-wall",
        "ORBYT_PROVIDERS__WALL__MODELS": json.dumps([LLAMA]),
        "ORBYT_TTFT_TIMEOUT": "2",
        "ORBYT_BACKOFF_BASE": "0.05",
    }
    with Gateway(redis_server.new_db_url(), env) as gateway:
        yield gateway


@pytest.fixture(autouse=True)
def _reset(primary: FakeOpenAI, wall: FakeOpenAI) -> None:
    for fake in (primary, wall):
        fake.reset()
        fake.default = Reply()


@pytest.fixture
def key(gw: Gateway) -> tuple[str, str]:
    """A fresh gateway key (secret, id): its usage records start empty."""
    r = admin(gw, "POST", "/admin/keys", json={"name": f"acct-{time.monotonic_ns()}"})
    assert r.status_code == 200, r.text
    return r.json()["key"], r.json()["id"]


def admin(gw: Gateway, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    return httpx.request(method, gw.url() + path, headers=headers, timeout=10, **kwargs)


_CLIENTS: dict[tuple[str, str, int], openai.OpenAI] = {}


@pytest.fixture(scope="module", autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    for client in _CLIENTS.values():
        client.close()
    _CLIENTS.clear()


def sdk(gw: Gateway, key: str, max_retries: int = 0) -> openai.OpenAI:
    """One SDK client per (gateway, key, retries), closed with the module."""
    at = (gw.base_url, key, max_retries)
    if at not in _CLIENTS:
        _CLIENTS[at] = openai.OpenAI(
            base_url=gw.base_url, api_key=key, max_retries=max_retries, timeout=20
        )
    return _CLIENTS[at]


def usage_records(gw: Gateway, key_id: str, models: int) -> dict[str, dict[str, int]]:
    def read() -> dict[str, dict[str, int]]:
        r = admin(gw, "GET", "/admin/usage", params={"key_id": key_id})
        assert r.status_code == 200, r.text
        return dict(r.json()["models"])

    wait_until(lambda: len(read()) >= models, timeout=5)
    return read()


def cost(model: str, prompt: int, completion: int) -> int:
    """Micro-dollars at the model's catalog prices (the declared ones for wall/)."""
    if model == DECLARED:
        prices = (float(LLAMA["input_price"]), float(LLAMA["output_price"]))
    else:
        info = default_catalog().get(model)
        assert info is not None and info.input_price is not None
        assert info.output_price is not None
        prices = (info.input_price, info.output_price)
    return round(prompt * prices[0] + completion * prices[1])


def stream(gw: Gateway, key: str, include_usage: bool) -> tuple[Any, dict[str, str], list[Any]]:
    kwargs: dict[str, Any] = {"stream_options": {"include_usage": True}} if include_usage else {}
    with sdk(gw, key).chat.completions.with_streaming_response.create(
        model=PRIMARY,
        messages=MSG,
        stream=True,
        extra_body={"extra": {"fallback_models": [DECLARED]}},
        **kwargs,
    ) as resp:
        chunks = list(resp.parse())
    return read_stream(iter(chunks)), dict(resp.headers), chunks


# ------------------------------------------------------------------ declared models
def test_declared_models_are_listed_with_their_capabilities(gw: Gateway, key: Any) -> None:
    models = {m.id: m for m in sdk(gw, key[0]).models.list()}
    assert DECLARED in models and PRIMARY in models
    entry = models[DECLARED].model_extra or {}
    assert entry["capabilities"] == ["prefill"] and entry["context_window"] == 8192
    assert entry["pricing"] == {"input_per_1m": 0.1, "output_per_1m": 0.2}
    one = sdk(gw, key[0]).models.retrieve(DECLARED)
    assert one.owned_by == "wall"


@pytest.mark.parametrize("include_usage", [True, False])
def test_cut_on_the_primary_continues_on_a_declared_model_and_bills_both(
    gw: Gateway, primary: FakeOpenAI, wall: FakeOpenAI, key: Any, include_usage: bool
) -> None:
    primary.script(Reply(text="".join(TOKENS), cut_after=40))
    wall.script(Reply(text="".join(TOKENS[40:]), usage=(90, 20)))
    got, headers, chunks = stream(gw, key[0], include_usage)
    assert got.error is None and got.text == "".join(TOKENS) and got.finishes == ["stop"]
    last = wall.requests[0].json["messages"][-1]
    assert last == {"role": "assistant", "content": "".join(TOKENS[:40])}  # the prefill
    # what each fake billed: the primary sent 40 tokens for a 2-token prompt (estimated:
    # a cut stream carries no usage); the continuation reported (90, 20)
    primary_share = {"prompt_tokens": 2, "completion_tokens": 40}
    # headers went out with the first token: they name the primary ...
    assert headers["x-orbyt-model"] == PRIMARY and headers["x-orbyt-attempts"] == "1"
    # ... and the last chunk names the route that finished, with every attempt's bill
    orbyt = (chunks[-1].model_extra or {})["orbyt"]
    assert orbyt["model"] == DECLARED and orbyt["provider"] == "wall"
    assert orbyt["attempts"] == 2 and orbyt["key_source"] == "pool"
    assert orbyt["usage_by_model"] == [
        {"model": PRIMARY, "key_source": "pool", **primary_share, "estimated": True},
        {"model": DECLARED, "key_source": "pool", "prompt_tokens": 90, "completion_tokens": 20},
    ]
    if include_usage:
        assert got.usage is not None
        assert (got.usage.prompt_tokens, got.usage.completion_tokens) == (92, 60)
        assert got.usage.total_tokens == 152
    else:
        assert got.usage is None and chunks[-1].choices == []
    records = usage_records(gw, key[1], models=2)
    assert records[PRIMARY] == {
        "prompt_tokens": 2,
        "completion_tokens": 40,
        "cost_micros": cost(PRIMARY, 2, 40),
    }
    assert records[DECLARED]["prompt_tokens"] == 90
    assert records[DECLARED]["completion_tokens"] == 20
    assert records[DECLARED]["cost_micros"] == cost(DECLARED, 90, 20) > 0
    assert records[DECLARED]["requests"] == 1 and records[DECLARED]["attempts"] == 2


def test_a_cut_that_cannot_be_continued_still_records_its_tokens(
    gw: Gateway, primary: FakeOpenAI, key: Any
) -> None:
    primary.script(Reply(text="".join(TOKENS), cut_after=40))
    stream_ = sdk(gw, key[0]).chat.completions.create(model=PRIMARY, messages=MSG, stream=True)
    got = read_stream(stream_)
    assert isinstance(got.error, openai.APIError) and got.text == "".join(TOKENS[:40])
    records = usage_records(gw, key[1], models=1)
    assert records[PRIMARY]["errors"] == 1
    assert records[PRIMARY]["completion_tokens"] == 40 and records[PRIMARY]["prompt_tokens"] == 2


def test_a_single_attempt_is_billed_as_reported(gw: Gateway, primary: FakeOpenAI, key: Any) -> None:
    primary.script(Reply(text="hello there", usage=(11, 2)))
    chunks = list(
        sdk(gw, key[0]).chat.completions.create(
            model=PRIMARY, messages=MSG, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 11
    orbyt = (chunks[-1].model_extra or {})["orbyt"]
    assert orbyt == {"model": PRIMARY, "provider": "openai", "attempts": 1, "key_source": "pool"}
    records = usage_records(gw, key[1], models=1)
    assert records[PRIMARY]["prompt_tokens"] == 11 and records[PRIMARY]["completion_tokens"] == 2


# ------------------------------------------------------------------ errors name the provider
@pytest.mark.parametrize("stream_", [False, True])
def test_errors_of_a_compatible_upstream_name_the_declared_provider(
    gw: Gateway, wall: FakeOpenAI, key: Any, stream_: bool
) -> None:
    wall.script(Error(400, message="Your request was rejected by the safety system."))
    with pytest.raises(openai.BadRequestError) as info:
        sdk(gw, key[0]).chat.completions.create(model=DECLARED, messages=MSG, stream=stream_)
    body: Any = info.value.body
    assert body["message"].startswith("wall: Your request was rejected")
    assert "openai" not in body["message"]


def test_in_stream_errors_of_a_compatible_upstream_name_the_declared_provider(
    gw: Gateway, wall: FakeOpenAI, key: Any
) -> None:
    wall.script(Reply(tokens=10, midstream_error=3))
    got = read_stream(
        sdk(gw, key[0]).chat.completions.create(model=DECLARED, messages=MSG, stream=True)
    )
    assert isinstance(got.error, openai.APIError)
    assert got.error.message.startswith("wall: ")


# ------------------------------------------------------------------ x-should-retry
def test_after_the_gateways_own_retries_the_sdk_is_told_not_to_retry(
    gw: Gateway, primary: FakeOpenAI, key: Any
) -> None:
    primary.default = Error(503)
    with pytest.raises(openai.InternalServerError) as info:
        sdk(gw, key[0]).chat.completions.create(model=PRIMARY, messages=MSG)
    headers = info.value.response.headers
    assert headers["x-orbyt-attempts"] == "3" and headers["x-should-retry"] == "false"
    assert len(primary.requests) == 3
    # an SDK with its default retries makes no further call
    with pytest.raises(openai.InternalServerError):
        sdk(gw, key[0], max_retries=2).chat.completions.create(model=PRIMARY, messages=MSG)
    assert len(primary.requests) == 6


def test_a_retry_after_still_invites_the_sdk_back(
    gw: Gateway, primary: FakeOpenAI, key: Any
) -> None:
    primary.default = Error(429, retry_after=30)  # over the gateway's cap: not waited for
    with pytest.raises(openai.RateLimitError) as info:
        sdk(gw, key[0]).chat.completions.create(model=PRIMARY, messages=MSG)
    headers = info.value.response.headers
    assert headers["x-should-retry"] == "true" and headers["retry-after"] == "30"


def test_one_attempt_leaves_the_retry_to_the_sdk(
    gw: Gateway, primary: FakeOpenAI, key: Any
) -> None:
    primary.default = Error(503)
    with pytest.raises(openai.InternalServerError) as info:
        sdk(gw, key[0]).chat.completions.create(
            model=PRIMARY, messages=MSG, extra_body={"extra": {"retry": 0}}
        )
    assert info.value.response.headers["x-should-retry"] == "true"
    assert len(primary.requests) == 1
