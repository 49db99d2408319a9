"""`shared.embeddings`: request validation, the route plan's rules, the base64 encoding; and
each provider's embeddings role (request built, answer read)."""

from __future__ import annotations

import base64
import struct
from typing import Any

import orjson
import pytest

from orbyt.shared.catalog import load_catalog
from orbyt.shared.contract import Candidate
from orbyt.shared.embeddings import (
    check_embeddings_plan,
    decode_base64,
    encode_base64,
    estimate_tokens,
    input_kind,
    parse_embeddings_request,
)
from orbyt.shared.errors import InvalidRequest, UpstreamError
from orbyt.shared.providers import Target, adapters
from orbyt.shared.providers.base import embeddings_role
from orbyt.shared.routing import check_chat_plan
from orbyt.shared.secret import Secret

CATALOG = load_catalog()
ADAPTERS = {**adapters(), "myvllm": adapters()["openai"]}


def cand(model: str) -> Candidate:
    provider, _, rest = model.partition("/")
    return Candidate(model=model, provider=provider, upstream=rest, key_source="pool")


def check(body: dict[str, Any]) -> None:
    raw = orjson.dumps(body)
    _, req, kind = parse_embeddings_request(raw)
    fallbacks = req.extra.fallback_models if req.extra else []
    plan = [cand(req.model), *(cand(m) for m in fallbacks)]
    check_embeddings_plan(plan, req, kind, CATALOG, ADAPTERS)


def refused(body: dict[str, Any]) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as err:
        check(body)
    return err.value


# ------------------------------------------------------------------------- requests
@pytest.mark.parametrize(
    ("value", "kind"),
    [("a", "text"), (["a", "b"], "texts"), ([1, 2], "tokens"), ([[1], [2, 3]], "tokens")],
)
def test_input_kinds(value: Any, kind: str) -> None:
    assert input_kind(value) == kind


@pytest.mark.parametrize("value", ["", [], [""], ["a", 1], [[]], [True], [[1], "a"], 3, {}])
def test_bad_inputs_name_the_field(value: Any) -> None:
    with pytest.raises(InvalidRequest) as err:
        input_kind(value)
    assert err.value.param == "input"


def test_too_many_inputs() -> None:
    with pytest.raises(InvalidRequest, match="at most 2048"):
        input_kind(["a"] * 2049)


def test_unknown_fields_and_nulls() -> None:
    body, req, _ = parse_embeddings_request(b'{"model": "m/x", "input": "a", "user": null}')
    assert body == {"model": "m/x", "input": "a"} and req.user is None
    with pytest.raises(InvalidRequest) as err:
        parse_embeddings_request(b'{"model": "m/x", "input": "a", "messages": []}')
    assert err.value.param == "messages" and err.value.code == "unknown_parameter"
    with pytest.raises(InvalidRequest) as err:
        parse_embeddings_request(b'{"model": "m/x", "input": "a", "sk-Abc123XyZ987qwe456RTY": 1}')
    assert err.value.param is None and "sk-Abc" not in err.value.message


@pytest.mark.parametrize(
    ("field", "value"), [("dimensions", 0), ("dimensions", "8"), ("encoding_format", "int8")]
)
def test_bad_fields(field: str, value: Any) -> None:
    with pytest.raises(InvalidRequest) as err:
        parse_embeddings_request(orjson.dumps({"model": "m/x", "input": "a", field: value}))
    assert err.value.param == field


def test_estimate() -> None:
    assert estimate_tokens("abcdefgh") == 2 and estimate_tokens([[1, 2, 3]]) == 3
    assert estimate_tokens(["abcd", "efgh"]) == 2


# --------------------------------------------------------------------------- plans
def test_embedding_models_and_providers() -> None:
    check({"model": "openai/text-embedding-3-small", "input": "a"})
    check({"model": "myvllm/anything", "input": [[1, 2]]})  # not in the catalog: trusted
    assert refused({"model": "openai/gpt-5", "input": "a"}).param == "model"
    err = refused({"model": "deepseek/deepseek-chat", "input": "a"})
    assert err.param == "model" and "deepseek" in err.message


def test_token_arrays_only_where_taken() -> None:
    check({"model": "openai/text-embedding-3-small", "input": [1, 2]})
    for model in ("google/gemini-embedding-001", "mistral/mistral-embed"):
        assert refused({"model": model, "input": [[1, 2]]}).param == "input"


def test_dimensions() -> None:
    check({"model": "mistral/mistral-embed", "input": "a", "dimensions": 1024})
    assert refused({"model": "mistral/mistral-embed", "input": "a", "dimensions": 8}).param == (
        "dimensions"
    )
    big = {"model": "openai/text-embedding-3-small", "input": "a", "dimensions": 4096}
    assert refused(big).param == "dimensions"


def test_fallbacks_need_vectors_of_one_size() -> None:
    same = {"extra": {"fallback_models": ["openai/text-embedding-ada-002"]}}
    check({"model": "openai/text-embedding-3-small", "input": "a", **same})
    err = refused(
        {
            "model": "openai/text-embedding-3-large",
            "input": "a",
            "extra": {"fallback_models": ["mistral/mistral-embed"]},
        }
    )
    assert err.param == "extra.fallback_models"
    assert "text-embedding-3-large" in err.message and "mistral-embed" in err.message
    shortened = {"extra": {"fallback_models": ["google/gemini-embedding-001"]}}
    check({"model": "openai/text-embedding-3-large", "input": "a", "dimensions": 256, **shortened})
    fallback = {"extra": {"fallback_models": ["openai/gpt-5-mini"]}}
    err = refused({"model": "openai/text-embedding-3-small", "input": "a", **fallback})
    assert err.param == "extra.fallback_models[0]"


def test_chat_plans_refuse_embedding_models() -> None:
    check_chat_plan([cand("openai/gpt-5"), cand("myvllm/x")], CATALOG)
    with pytest.raises(InvalidRequest) as err:
        check_chat_plan([cand("openai/gpt-5"), cand("mistral/mistral-embed")], CATALOG)
    assert err.value.param == "extra.fallback_models[0]"


def test_base64_is_little_endian_float32() -> None:
    values = [0.5, -1.25, 3.0]
    text = encode_base64(values)
    assert base64.b64decode(text) == struct.pack("<3f", *values)
    assert decode_base64(text) == values


# ------------------------------------------------------------------ provider roles
def target(provider: str, model: str) -> Target:
    return Target(provider, f"{provider}/{model}", model, "http://up.invalid", Secret("k-1"))


def role(name: str) -> Any:
    found = embeddings_role(adapters()[name])
    assert found is not None
    return found


def test_roles_exist_where_upstreams_embed() -> None:
    have = {name for name, a in adapters().items() if embeddings_role(a) is not None}
    assert have == {"openai", "google", "mistral"}


def test_openai_role() -> None:
    body = {"model": "openai/x", "input": ["a"], "dimensions": 8, "encoding_format": "base64"}
    req = role("openai").build_embeddings_request(body, target("openai", "x"))
    assert (
        req.url == "http://up.invalid/embeddings" and req.headers["authorization"] == "Bearer k-1"
    )
    assert orjson.loads(req.body) == {**body, "model": "x"}
    raw = b'{"data": [{"index": 1, "embedding": "AAAA"}, {"index": 0, "embedding": [1.0]}]}'
    parsed = role("openai").parse_embeddings_response(raw, target("openai", "x"))
    assert parsed["data"] == [{"index": 0, "embedding": [1.0]}, {"index": 1, "embedding": "AAAA"}]
    with pytest.raises(UpstreamError) as err:
        role("openai").parse_embeddings_response(b'{"data": {}}', target("openai", "x"))
    assert err.value.status == 502


def test_mistral_role() -> None:
    body = {"model": "mistral/e", "input": "a", "dimensions": 8, "encoding_format": "base64"}
    req = role("mistral").build_embeddings_request(body, target("mistral", "e"))
    assert req.url == "http://up.invalid/v1/embeddings"
    assert orjson.loads(req.body) == {"model": "e", "input": "a", "output_dimension": 8}


def test_google_role() -> None:
    one = role("google").build_embeddings_request(
        {"input": "a", "dimensions": 4}, target("google", "g")
    )
    assert one.url == "http://up.invalid/v1beta/models/g:embedContent"
    assert one.headers["x-goog-api-key"] == "k-1" and "k-1" not in one.url
    assert orjson.loads(one.body) == {
        "content": {"parts": [{"text": "a"}]},
        "outputDimensionality": 4,
    }
    many = role("google").build_embeddings_request({"input": ["a", "b"]}, target("google", "g"))
    assert many.url.endswith(":batchEmbedContents")
    assert [r["model"] for r in orjson.loads(many.body)["requests"]] == ["models/g"] * 2
    parsed = role("google").parse_embeddings_response(
        b'{"embeddings": [{"values": [1]}, {"values": [2]}]}', target("google", "g")
    )
    assert parsed == {"data": [{"index": 0, "embedding": [1]}, {"index": 1, "embedding": [2]}]}
    with pytest.raises(UpstreamError):
        role("google").parse_embeddings_response(b'{"error": {"code": 429}}', target("google", "g"))
    with pytest.raises(InvalidRequest):
        role("google").build_embeddings_request({"input": "a"}, target("google", "../x"))


def test_google_batches_hold_at_most_100_inputs() -> None:
    role("google").build_embeddings_request({"input": ["a"] * 100}, target("google", "g"))
    with pytest.raises(InvalidRequest) as err:
        role("google").build_embeddings_request({"input": ["a"] * 101}, target("google", "g"))
    assert err.value.param == "input"
