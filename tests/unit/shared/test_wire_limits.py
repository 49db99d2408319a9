"""The three limits `shared.wire` puts on a request before anything else sees it (issue 10):
nesting depth, model ids, and top-level fields."""

from __future__ import annotations

import typing
from typing import Any

import orjson
import pytest
from openai.types.chat import completion_create_params
from pydantic import SecretStr

from orbyt.shared.errors import InvalidRequest
from orbyt.shared.settings import ProviderConfig, Settings
from orbyt.shared.wire import (
    CHAT_FIELDS,
    MAX_JSON_DEPTH,
    MAX_MODEL_ID,
    allowed_fields,
    check_fields,
    parse_chat_request,
)

MSG = [{"role": "user", "content": "hi"}]
KEY = "sk-proj-" + "Zq4Wm8Rt2Xy6Kp0Lv3Nb7Hc1Fd5Gs9Jw" * 2


def nested(levels: int) -> Any:
    """`levels` containers, one inside the other (objects and arrays alternating)."""
    value: Any = {}
    for i in range(levels - 1):
        value = [value] if i % 2 else {"a": value}
    return value


def raw_nested(levels: int) -> bytes:
    """The same as JSON text, built without recursion (orjson refuses over 1024)."""
    opens, closes = [], []
    for i in range(levels - 1):
        opens.append(b"[" if (levels - 2 - i) % 2 else b'{"a":')
        closes.append(b"]" if (levels - 2 - i) % 2 else b"}")
    return b"".join(opens) + b"{}" + b"".join(reversed(closes))


def raise_of(raw: bytes) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        parse_chat_request(raw, 100)
    return info.value


HOLE = b'"@@"'  # where the nested value goes
CALL = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "@@"}}
PART = {"role": "user", "content": [{"x": "@@"}]}
ASSISTANT = {"role": "assistant", "tool_calls": [CALL]}
SCHEMA = {"json_schema": {"schema": "@@"}}
# (field path, the request's fields around the nested value, containers above it)
FIELDS = (
    ("metadata", {"metadata": "@@"}, 1),
    ("tools[0].function.parameters", {"tools": [{"function": {"parameters": "@@"}}]}, 4),
    ("response_format.json_schema.schema", {"response_format": SCHEMA}, 3),
    ("messages[1].content[0].x", {"messages": [*MSG, PART]}, 5),
    ("messages[1].tool_calls[0].function", {"messages": [*MSG, ASSISTANT]}, 6),
)


def request_with(fields: dict[str, Any], value: bytes) -> bytes:
    body = {"model": "openai/gpt-5-mini", "messages": MSG, **fields}
    return orjson.dumps(body).replace(HOLE, value)


@pytest.mark.parametrize(("param", "fields", "above"), FIELDS)
@pytest.mark.parametrize("levels", [200, 254, 1000, 1025])
def test_deep_json_is_a_400_naming_the_field(
    param: str, fields: dict[str, Any], above: int, levels: int
) -> None:
    err = raise_of(request_with(fields, raw_nested(levels)))
    assert err.status == 400 and err.code == "invalid_value"
    assert err.param is not None and err.param.startswith(param.split(".")[0]), err.param
    assert err.param.startswith(param) or param.startswith(err.param)
    assert f"deeper than {MAX_JSON_DEPTH} levels" in err.message


@pytest.mark.parametrize(("param", "fields", "above"), FIELDS)
def test_the_limit_itself_passes_and_one_more_level_does_not(
    param: str, fields: dict[str, Any], above: int
) -> None:
    most = MAX_JSON_DEPTH - above  # the body and the containers above the field count
    body, _ = parse_chat_request(request_with(fields, raw_nested(most)), 100)
    assert orjson.loads(orjson.dumps(body)) == body
    assert raise_of(request_with(fields, raw_nested(most + 1))).param


@pytest.mark.parametrize("where", ["arguments", "tool result"])
def test_json_inside_strings_that_adapters_decode_is_held_to_the_limit(where: str) -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    messages: list[dict[str, Any]] = [
        *MSG,
        {"role": "assistant", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "{}"},
    ]
    deep = raw_nested(300).decode()
    if where == "arguments":
        call["function"]["arguments"] = deep
        param = "messages[1].tool_calls[0].function.arguments"
    else:
        messages[2]["content"] = deep
        param = "messages[2].content"
    raw = orjson.dumps({"model": "openai/gpt-5-mini", "messages": messages})
    assert raise_of(raw).param == param
    messages[2]["content"] = call["function"]["arguments"] = "[[[[not json"
    parse_chat_request(orjson.dumps({"model": "openai/x", "messages": messages}), 100)


def test_a_field_name_that_looks_like_a_key_is_never_repeated() -> None:
    raw = b'{"model":"openai/x","messages":[{"role":"user","content":"hi"}],"metadata":{"'
    raw += KEY.encode() + b'":' + raw_nested(300) + b"}}"
    err = raise_of(raw)
    assert err.param == "metadata" and KEY[8:30] not in err.message + str(err.param)
    err = raise_of(raw.replace(raw_nested(300), raw_nested(1100)))
    assert err.param == "metadata" and KEY[8:30] not in err.message


@pytest.mark.parametrize(
    "model",
    [
        "openai/gpt-5-mini\u4e2d\u6587",  # CJK
        "openai/gpt-\U0001f600",  # emoji
        "openai/gpt-5\u202e",  # bidi override
        "openai/gpt-5\u200b",  # zero-width space
        "openai/gpt-5\r\nx-injected: 1",
        "openai/gpt-5\n",
        "openai/gpt-5\x00",
        "openai/gpt-5\x7f",
        "openai/gpt 5",
        "openai/gpt-5\t",
        "openai/caf\u00e9",  # latin-1, still not ASCII
        "openai/" + "x" * 10_000,
        "",
    ],
)
@pytest.mark.parametrize("where", ["model", "extra.fallback_models[1]"])
def test_model_ids_are_printable_ascii(model: str, where: str) -> None:
    body: dict[str, Any] = {"model": "openai/gpt-5-mini", "messages": MSG}
    if where == "model":
        body["model"] = model
    else:
        body["extra"] = {"fallback_models": ["anthropic/claude-3-haiku", model]}
    err = raise_of(orjson.dumps(body))
    assert (err.status, err.code, err.param) == (400, "invalid_value", where)
    assert model not in err.message or not model


@pytest.mark.parametrize(
    "model",
    [
        "openai/gpt-5-mini",
        "myvllm/meta-llama/Llama-3.1-8B-Instruct",
        "openai/ft:gpt-4o-mini:org:custom:abc123",
        "bedrock/anthropic.claude-3-sonnet-20240229-v1:0",
        "vertex/claude-3-haiku@20240307",
        "openai/" + "x" * (MAX_MODEL_ID - 7),
    ],
)
def test_real_model_ids_pass(model: str) -> None:
    body = {"model": model, "messages": MSG, "extra": {"fallback_models": [model]}}
    _, req = parse_chat_request(orjson.dumps(body), 100)
    assert req.model == model


# ------------------------------------------------------------------------ unknown fields
def settings(**providers: ProviderConfig) -> Settings:
    return Settings(redis_url="redis://x", gateway_keys=[SecretStr("k" * 16)], providers=providers)


def test_every_parameter_of_the_openai_sdk_is_known() -> None:
    """So no call an SDK can make is refused (openai's own request type, read live)."""
    for params in (
        completion_create_params.CompletionCreateParamsNonStreaming,
        completion_create_params.CompletionCreateParamsStreaming,
    ):
        assert set(typing.get_type_hints(params)) <= CHAT_FIELDS


@pytest.mark.parametrize(
    ("field", "hint"),
    [
        ("extras", "Did you mean `extra`?"),
        ("Extra", "Did you mean `extra`?"),
        ("extra_body", "Did you mean `extra`?"),
        ("orbyt", "Did you mean `extra`?"),
        ("max_token", "Did you mean `max_tokens`?"),
        ("colour", None),
    ],
)
def test_an_unknown_top_level_field_is_a_400_like_openais(field: str, hint: str | None) -> None:
    with pytest.raises(InvalidRequest) as info:
        check_fields(
            {"model": "openai/x", "messages": MSG, field: {"byok": KEY}}, "openai/x", settings()
        )
    err = info.value
    assert (err.status, err.param, err.code) == (400, field, "unknown_parameter")
    assert err.message.startswith(f"Unrecognized request argument supplied: {field}.")
    assert (hint in err.message) if hint else "Did you mean" not in err.message
    assert KEY[8:30] not in err.message


def test_a_field_named_like_a_key_is_refused_without_its_name() -> None:
    with pytest.raises(InvalidRequest) as info:
        check_fields({"model": "openai/x", KEY: 1}, "openai/x", settings())
    assert info.value.param is None and KEY[:20] not in info.value.message


def test_fields_a_provider_takes_are_allowed_for_it_only() -> None:
    cfg = settings(myvllm=ProviderConfig(adapter="openai", extra_fields=["top_k", "min_p"]))
    body = {"model": "myvllm/llama", "messages": MSG, "top_k": 5, "min_p": 0.1}
    check_fields(body, "myvllm/llama", cfg)
    with pytest.raises(InvalidRequest):
        check_fields(body, "openai/gpt-5-mini", cfg)
    check_fields({"safe_prompt": True, "random_seed": 1}, "mistral/mistral-small-latest", cfg)
    check_fields({"thinking": {"type": "disabled"}}, "deepseek/deepseek-chat", cfg)
    with pytest.raises(InvalidRequest):
        check_fields({"thinking": {"type": "disabled"}}, "openai/gpt-5", cfg)
    assert {"top_k", "min_p"} <= allowed_fields("myvllm/x", cfg)


def test_extra_fields_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORBYT_PROVIDERS__MYVLLM__EXTRA_FIELDS", "top_k,repetition_penalty")
    cfg = Settings(redis_url="redis://x")
    assert cfg.provider("myvllm").extra_fields == ["top_k", "repetition_penalty"]


def test_worker_metrics_listen_on_loopback_by_default() -> None:
    assert Settings(redis_url="redis://x").worker_metrics_host == "127.0.0.1"
