"""Schemathesis against the API's own OpenAPI schema: every operation, a bounded number of
generated requests each (deterministic: derandomized, no example database), all on
loopback — every provider the gateway knows points at a local fake.

What must hold for every request: no 5xx, and every error is OpenAI's shape
`{"error": {"message", "type", "param", "code"}}` (DESIGN §2).

The chat route declares its request body (`openapi_extra`, from `shared.wire.ChatRequest`)
although it reads the body itself. Two steered variants of it send generated requests
further than validation: "routed" draws `model` and `extra.fallback_models` from models
that reach the fakes; "hostile" also draws them from ids that once broke the gateway
(non-ASCII, bidi controls, CR/LF/NUL, 10 kB) and adds pass-through fields nested around
and far beyond `shared.wire.MAX_JSON_DEPTH` (issue 10).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import BaseSchema, GenerationMode
from schemathesis.checks import CheckContext

from orbyt.shared.providers import adapters
from orbyt.shared.wire import MAX_JSON_DEPTH
from tests.fakes import FakeAnthropic, FakeDeepSeek, FakeGemini, FakeMistral, FakeOpenAI
from tests.gateway import GATEWAY_KEY, Gateway, RedisServer

pytestmark = pytest.mark.integration

ADMIN_KEY = "orbyt-fuzz-admin-" + "Xk2Lm9Qp4Rt7Vw1Z" * 2
# per operation and mode; ORBYT_FUZZ_EXAMPLES=1000 ORBYT_FUZZ_SEEDED=0 for a long local hunt
MAX_EXAMPLES = int(os.environ.get("ORBYT_FUZZ_EXAMPLES", "30"))
DERANDOMIZE = os.environ.get("ORBYT_FUZZ_SEEDED", "1") == "1"
CHAT = "/v1/chat/completions"
EMBEDDINGS = "/v1/embeddings"


@pytest.fixture(scope="module")
def fuzz_gateway(redis_server: RedisServer) -> Iterator[Gateway]:
    fakes = [FakeOpenAI(), FakeAnthropic(), FakeGemini(), FakeMistral(), FakeDeepSeek()]
    for fake in fakes:
        fake.start()
    openai, anthropic, gemini, mistral, deepseek = fakes
    env = {
        "ORBYT_ADMIN_KEY": ADMIN_KEY,
        # every built-in provider on loopback: a generated request never leaves the host
        "ORBYT_PROVIDERS__OPENAI__BASE_URL": openai.base_url,
        "ORBYT_PROVIDERS__OPENAI__KEYS": "sk-fuzz-openai-pool-key",
        "ORBYT_PROVIDERS__ANTHROPIC__BASE_URL": anthropic.base_url,
        "ORBYT_PROVIDERS__ANTHROPIC__KEYS": "sk-ant-api03-fuzz-pool-key",
        "ORBYT_PROVIDERS__GOOGLE__BASE_URL": gemini.base_url,
        "ORBYT_PROVIDERS__GOOGLE__KEYS": "AIzaFuzzPoolKeyForTests",
        "ORBYT_PROVIDERS__MISTRAL__BASE_URL": mistral.base_url,
        "ORBYT_PROVIDERS__DEEPSEEK__BASE_URL": deepseek.base_url,
        "ORBYT_PROVIDERS__DEEPSEEK__KEYS": "sk-fuzz-deepseek-pool-key",
        "ORBYT_BACKOFF_BASE": "0.01",
        "ORBYT_BACKOFF_CAP": "0.05",
        "ORBYT_WORKER_METRICS_PORT": "0",
    }
    configured = {k.split("__")[1].lower() for k in env if k.endswith("__BASE_URL")}
    assert set(adapters()) - {"mock"} <= configured, "a provider would be called off-host"
    try:
        with Gateway(redis_server.new_db_url(), env, workers=1) as gw:
            yield gw
    finally:
        for fake in fakes:
            fake.stop()


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """A JSON schema with its references (`#/$defs/X`, `#/components/schemas/X`) replaced
    by the definitions in `defs`."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(("#/$defs/", "#/components/schemas/")):
            return _inline(copy.deepcopy(defs[ref.rsplit("/", 1)[1]]), defs)
        return {k: _inline(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


# Models that route to the loopback fakes, for generated requests that go all the way
# through a worker and an upstream instead of stopping at validation (the built-in mock
# bounds its answer, whatever max_tokens says).
ROUTED_MODELS = [
    "mock/echo",
    "openai/gpt-5-mini",
    "openai/any-model",
    "anthropic/claude-3-haiku",
    "google/gemini-2.5-flash",
    "mistral/mistral-small-latest",
    "deepseek/deepseek-v4-flash",
]

# The same for /v1/embeddings: embedding models of every provider that has them, a model
# not in the catalog, and models that must be refused (chat, a provider without embeddings).
ROUTED_EMBEDDING_MODELS = [
    "openai/text-embedding-3-small",
    "openai/text-embedding-3-large",
    "openai/any-model",
    "google/gemini-embedding-001",
    "mistral/mistral-embed",
    "openai/gpt-5-mini",
    "anthropic/claude-3-haiku",
]


# Model ids that once made a 500 or a dropped connection (issue 10): each must be a 400.
HOSTILE_MODELS = [
    "openai/gpt-5-mini\u4e2d\u6587",
    "openai/gpt-\U0001f600",
    "openai/gpt-5\u202e",
    "openai/gpt-5\r\nx-injected: yes",
    "openai/gpt-5\x00",
    "openai/gpt 5",
    "openai/" + "x" * 10_000,
]


def nested(levels: int) -> Any:
    value: Any = {}
    for i in range(levels - 1):
        value = [value] if i % 2 else {"a": value}
    return value


# Pass-through values nested around the limit and far beyond it (deeper values than these
# break the schema tooling (its limit is about 250 levels), not the gateway).
DEEP = [nested(n) for n in (2, MAX_JSON_DEPTH - 4, MAX_JSON_DEPTH + 1, 200)]


def steer(chat: dict[str, Any], hostile: bool, routed: list[str] = ROUTED_MODELS) -> dict[str, Any]:
    """The request schema with `model` and `extra.fallback_models` drawn from `routed`
    (and HOSTILE_MODELS, with deep pass-through fields, if `hostile`)."""
    chat = copy.deepcopy(chat)
    models = routed + (HOSTILE_MODELS if hostile else [])
    chat["properties"]["model"] = {"type": "string", "enum": models}
    for option in chat["properties"].get("extra", {}).get("anyOf", []):
        if "fallback_models" in option.get("properties", {}):
            option["properties"]["fallback_models"]["items"] = {"type": "string", "enum": models}
    if hostile:
        tools = [[{"type": "function", "function": {"name": "f", "parameters": d}}] for d in DEEP]
        chat["properties"]["metadata"] = {"enum": DEEP}
        chat["properties"]["tools"] = {"enum": tools}
        chat["properties"]["response_format"] = {
            "enum": [
                {"type": "json_schema", "json_schema": {"name": "s", "schema": d}} for d in DEEP
            ]
        }
    return chat


def load_schema(gw: Gateway, steered: str | None, path: str = CHAT) -> BaseSchema:
    raw = httpx.get(gw.url() + "/openapi.json", timeout=10).json()
    chat = raw["paths"][path]["post"] if steered else raw["paths"][CHAT]["post"]
    assert "requestBody" in chat, f"the {path} route no longer declares its request body"
    if steered:
        media = chat["requestBody"]["content"]["application/json"]
        media["schema"] = steer(
            _inline(media["schema"], raw.get("components", {}).get("schemas", {})),
            hostile=steered == "hostile",
            routed=ROUTED_EMBEDDING_MODELS if path == EMBEDDINGS else ROUTED_MODELS,
        )
    return schemathesis.openapi.from_dict(raw)


def _cases() -> list[Any]:
    """(generation mode, steered, operation), from the app's routes (no running API needed):
    valid inputs for every operation; invalid ones for operations that take any input; for
    chat and embeddings, also valid requests whose models route to the fakes."""
    from orbyt.api.main import create_app

    out = []
    for path, ops in create_app().openapi()["paths"].items():
        for method, op in ops.items():
            label = f"{method.upper()} {path}"
            out.append(pytest.param(GenerationMode.POSITIVE, None, label, id=f"valid {label}"))
            queries = [x for x in op.get("parameters", []) if x.get("in") == "query"]
            if queries or op.get("requestBody") or path == CHAT:
                out.append(
                    pytest.param(GenerationMode.NEGATIVE, None, label, id=f"invalid {label}")
                )
            if path in (CHAT, EMBEDDINGS):
                for steered in ("routed", "hostile") if path == CHAT else ("routed",):
                    out.append(
                        pytest.param(
                            GenerationMode.POSITIVE, steered, label, id=f"valid {steered} {label}"
                        )
                    )
    return out


def openai_error_shape(ctx: CheckContext, response: Any, case: Any) -> bool | None:
    """Every error status comes with OpenAI's error object, with a message and a type."""
    if response.status_code < 400:
        return None
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    err = body["error"]
    assert isinstance(err, dict) and set(err) == {"message", "type", "param", "code"}, err
    assert isinstance(err["message"], str) and err["message"], err
    assert isinstance(err["type"], str) and err["type"], err
    return None


def _tiny_deadline(case: Any) -> bool:
    """The request asked for a whole-request deadline too short for any provider."""
    extra = case.body.get("extra") if isinstance(case.body, dict) else None
    timeout = extra.get("timeout") if isinstance(extra, dict) else None
    return isinstance(timeout, int | float) and not isinstance(timeout, bool) and timeout < 1


def no_server_error(ctx: CheckContext, response: Any, case: Any) -> bool | None:
    """No 5xx — except the one a caller asks for: a 504 `deadline_exceeded` for an
    `extra.timeout` under a second (what the gateway must answer then)."""
    if response.status_code == 504 and _tiny_deadline(case):
        assert response.json()["error"]["code"] == "deadline_exceeded", response.text
        return None
    assert response.status_code < 500, (response.status_code, response.text[:500])
    return None


@pytest.mark.parametrize(("mode", "steered", "label"), _cases())
def test_api(mode: GenerationMode, steered: str | None, label: str, fuzz_gateway: Gateway) -> None:
    method, path = label.split(" ", 1)
    operation = load_schema(fuzz_gateway, steered, path)[path][method]
    params: set[str] = set()  # the `param` of every 400, to see which paths were reached

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=DERANDOMIZE,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    def fuzz(case: Any) -> None:  # schemathesis.Case
        key = ADMIN_KEY if path.startswith("/admin") else GATEWAY_KEY
        response = case.call(
            base_url=fuzz_gateway.url(), timeout=30, headers={"Authorization": f"Bearer {key}"}
        )
        case.validate_response(response, checks=[no_server_error, openai_error_shape])
        if response.status_code == 400:
            params.add(str(response.json()["error"]["param"]).split(".")[0].split("[")[0])

    fuzz()
    if steered == "hostile" and DERANDOMIZE:  # the generated requests reached the new checks
        assert "model" in params, params
        assert params & {"metadata", "tools", "response_format"}, params
