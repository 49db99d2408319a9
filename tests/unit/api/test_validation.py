"""Bad input gets a 4xx OpenAI error, never a 500; nothing reaches the queue."""

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from orbyt.api.main import create_app
from orbyt.shared.settings import Settings

KEY = "sk-or-v1-unit"


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    settings = Settings(
        gateway_keys=[KEY], redis_url="redis://127.0.0.1:1/0", env="test", max_body_bytes=10_000
    )
    with TestClient(create_app(settings)) as c:
        yield c


def post(
    client: TestClient, body: Any, raw: bytes | None = None, headers: dict[str, str] | None = None
) -> Any:
    h = {"authorization": f"Bearer {KEY}", "content-type": "application/json", **(headers or {})}
    if raw is not None:
        return client.post("/v1/chat/completions", content=raw, headers=h)
    return client.post("/v1/chat/completions", json=body, headers=h)


def assert_openai_error(resp: Any, status: int, param: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert isinstance(err["message"], str) and err["message"]
    if param is not None:
        assert err["param"] == param
    return dict(err)


MSG = [{"role": "user", "content": "hi"}]


def nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize("raw", [b"{", b"not json", b"[1,2]", b'"x"', b"\xff\xfe"])
def test_malformed_json(client: TestClient, raw: bytes) -> None:
    assert_openai_error(post(client, None, raw=raw), 400)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": MSG}, "model"),
        ({"model": "openai/gpt-5"}, "messages"),
        ({"model": "openai/gpt-5", "messages": []}, "messages"),
        ({"model": 5, "messages": MSG}, "model"),
        ({"model": "openai/gpt-5", "messages": "hi"}, "messages"),
        (
            {"model": "openai/gpt-5", "messages": [{"role": "wizard", "content": "x"}]},
            "messages[0].role",
        ),
        ({"model": "openai/gpt-5", "messages": MSG, "stream": "yes"}, "stream"),
        ({"model": "openai/gpt-5", "messages": MSG, "temperature": 9}, "temperature"),
        ({"model": "openai/gpt-5", "messages": MSG, "max_tokens": "10"}, "max_tokens"),
        ({"model": "openai/gpt-5", "messages": MSG, "extra": {"colour": "red"}}, "extra.colour"),
        ({"model": "openai/gpt-5", "messages": MSG, "extra": {"retry": 11}}, "extra.retry"),
        ({"model": "openai/gpt-5", "messages": MSG, "extra": {"retry": "2"}}, "extra.retry"),
        (
            {"model": "openai/gpt-5", "messages": MSG, "extra": {"fallback_models": ["nope"]}},
            "extra.fallback_models[0]",
        ),
        ({"model": "nope/x", "messages": MSG}, "model"),
        ({"model": "gpt-5", "messages": MSG}, "model"),
        (
            {"model": "openai/gpt-5", "messages": MSG, "extra": {"fallback_models": ["zzz/y"]}},
            "extra.fallback_models[0]",
        ),
        (
            {"model": "openai/gpt-5", "messages": MSG, "extra": {"provider": "fastest"}},
            "extra.provider",
        ),
    ],
)
def test_invalid_requests_name_the_field(client: TestClient, body: Any, param: str) -> None:
    assert_openai_error(post(client, body), 400, param)


def test_unknown_extra_key_is_named_in_the_message(client: TestClient) -> None:
    err = assert_openai_error(
        post(client, {"model": "openai/gpt-5", "messages": MSG, "extra": {"colour": "red"}}), 400
    )
    assert "colour" in err["message"]


def test_invalid_strategy_lists_valid_values(client: TestClient) -> None:
    err = assert_openai_error(
        post(client, {"model": "openai/gpt-5", "messages": MSG, "extra": {"provider": "fastest"}}),
        400,
    )
    for name in ("ordered", "cheap", "fast", "reliable"):
        assert name in err["message"]


def test_errors_never_echo_values(client: TestClient) -> None:
    secret = "sk-ant-api03-" + "Z" * 93 + "AA"
    resp = post(client, {"model": "openai/gpt-5", "messages": MSG, "temperature": secret})
    assert_openai_error(resp, 400)
    assert secret not in resp.text


def test_byok_key_of_another_provider_is_rejected_without_echo(client: TestClient) -> None:
    secret = "sk-ant-api03-" + "Q" * 93 + "AA"
    resp = post(client, {"model": "openai/gpt-5", "messages": MSG, "extra": {"byok": secret}})
    assert_openai_error(resp, 400, "extra.byok")
    assert secret not in resp.text and "Q" * 20 not in resp.text


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"extras": {"byok": "sk-x"}}, "extras", "unknown_parameter"),
        ({"top_k": 5}, "top_k", "unknown_parameter"),
        ({"model": "openai/gpt-5\r\nx-injected: 1"}, "model", "invalid_value"),
        ({"model": "openai/gpt-5\u202e"}, "model", "invalid_value"),
        ({"extra": {"fallback_models": ["a/\u4e2d"]}}, "extra.fallback_models[0]", "invalid_value"),
        ({"metadata": [{}] * 10 + [nested(200)]}, "metadata[10].a.a.a.a", "invalid_value"),
    ],
)
def test_hardening_limits_answer_a_400_before_the_queue(
    client: TestClient, body: dict[str, Any], param: str, code: str
) -> None:
    """Issue 10: an unknown top-level field, a model id that would break a header, JSON
    nested too deep for the job encoder (this client has no Redis at all)."""
    err = assert_openai_error(
        post(client, {"model": "openai/gpt-5", "messages": MSG, **body}), 400, param
    )
    assert err["code"] == code


def test_body_too_large(client: TestClient) -> None:
    big = {"model": "openai/gpt-5", "messages": [{"role": "user", "content": "x" * 20_000}]}
    assert_openai_error(post(client, big), 413)


@pytest.mark.parametrize("header", [None, "Bearer", "Basic abc", "Bearer wrong-key"])
def test_authentication(client: TestClient, header: str | None) -> None:
    headers = {"content-type": "application/json"}
    if header:
        headers["authorization"] = header
    resp = client.post(
        "/v1/chat/completions", json={"model": "openai/gpt-5", "messages": MSG}, headers=headers
    )
    assert_openai_error(resp, 401)


def test_unknown_route_and_method(client: TestClient) -> None:
    assert_openai_error(client.get("/v1/nothing"), 404)
    assert_openai_error(client.get("/v1/chat/completions"), 405)


def test_models_list_and_get(client: TestClient) -> None:
    h = {"authorization": f"Bearer {KEY}"}
    data = client.get("/v1/models", headers=h).json()
    assert data["object"] == "list"
    ids = {m["id"] for m in data["data"]}
    assert "mock/echo" in ids and "openai/gpt-5-mini" in ids
    one = client.get("/v1/models/openai/gpt-5-mini", headers=h).json()
    assert one["id"] == "openai/gpt-5-mini" and "tools" in one["capabilities"]
    assert_openai_error(client.get("/v1/models/openai/none", headers=h), 404)
