"""Validation of `/v1/embeddings` and `/v1/responses` batch lines (`shared.batchlines`):
the interactive endpoints' own rules, line-numbered; BYOK refuses the batch."""

from __future__ import annotations

import json
from typing import Any

import pytest

from orbyt.shared.batchlines import LINE_KINDS, ByokInBatch, validate_input
from orbyt.shared.catalog import load_catalog
from orbyt.shared.settings import Settings

EMB, RESP = "/v1/embeddings", "/v1/responses"
BODIES = {
    EMB: {"model": "openai/text-embedding-3-small", "input": "hello"},
    RESP: {"model": "openai/gpt-5-mini", "input": "hello"},
}


def _line(url: str, cid: str = "a", **body: Any) -> bytes:
    full = {**BODIES[url], **body}
    return json.dumps({"custom_id": cid, "method": "POST", "url": url, "body": full}).encode()


def _errors(url: str, data: bytes) -> list[dict[str, Any]]:
    return validate_input(data, url, load_catalog(None), Settings()).errors


def test_the_three_endpoints_are_registered() -> None:
    assert sorted(LINE_KINDS) == ["/v1/chat/completions", EMB, RESP]


@pytest.mark.parametrize("url", [EMB, RESP])
def test_valid_lines_keep_their_body(url: str) -> None:
    out = validate_input(
        _line(url, "a") + b"\n" + _line(url, "b"), url, load_catalog(None), Settings()
    )
    assert not out.errors and len(out.lines) == 2
    assert json.loads(out.lines[1]) == {"custom_id": "b", "body": BODIES[url]}
    assert out.model == BODIES[url]["model"]


@pytest.mark.parametrize(
    ("url", "body", "code", "param"),
    [
        (EMB, {"input": []}, "invalid_value", "body.input"),
        (EMB, {"dimensions": 0}, None, "body.dimensions"),
        (EMB, {"encoding_format": "int8"}, None, "body.encoding_format"),
        (EMB, {"model": "openai/gpt-5-mini"}, "model_not_supported", "body.model"),
        (
            EMB,
            {"model": "mistral/mistral-embed", "input": [[1, 2]]},
            "unsupported_value",
            "body.input",
        ),
        (EMB, {"stream": True}, "unknown_parameter", "body.stream"),
        (RESP, {"stream": True}, "invalid_value", "body.stream"),
        (RESP, {"model": "openai/nope"}, "model_not_found", "body.model"),
        (RESP, {"input": [{"type": "message", "role": "user", "content": 5}]}, None, None),
        (RESP, {"previous_response_id": "not-an-id"}, None, "body.previous_response_id"),
        (RESP, {"bogus_field": 1}, "unknown_parameter", "body.bogus_field"),
    ],
)
def test_bad_bodies_are_line_errors(
    url: str, body: dict[str, Any], code: str | None, param: str | None
) -> None:
    errors = _errors(url, _line(url, "ok") + b"\n" + _line(url, "bad", **body))
    assert len(errors) == 1 and errors[0]["line"] == 2, errors
    if code:
        assert errors[0]["code"] == code
    if param:
        assert errors[0]["param"] == param


def test_a_line_of_another_endpoint_is_refused() -> None:
    errors = _errors(EMB, _line(EMB) + b"\n" + _line(RESP, "b"))
    assert [(e["line"], e["code"]) for e in errors] == [(2, "mismatched_endpoint")]


@pytest.mark.parametrize("url", [EMB, RESP])
def test_byok_refuses_the_batch(url: str) -> None:
    with pytest.raises(ByokInBatch):
        _errors(url, _line(url, extra={"byok": "sk-secret-0123456789abcdef0123"}))
