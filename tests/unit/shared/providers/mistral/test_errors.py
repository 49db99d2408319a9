"""Mistral adapter: error statuses and bodies -> UpstreamError."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from orbyt.shared.errors import Disposition
from orbyt.shared.providers.mistral import ADAPTER
from tests.unit.shared.providers.mistral.helpers import (
    KEY,
)


def _flat(message: str, etype: str, code: str | None = None, **extra: Any) -> bytes:
    return orjson.dumps(
        {"object": "error", "message": message, "type": etype, "param": None, "code": code, **extra}
    )


TOOL_ID_MSG = "Tool call id was call_0fypS1hVX but must be a-z, A-Z, 0-9, with a length of 9."
CONTEXT_MSG = (
    "Prompt contains 40015 tokens and 0 draft tokens, too large for model "
    "with 32768 maximum context length"
)
ERRORS: list[tuple[str, int, bytes, int, Disposition, str | None]] = [
    (
        "tool id",
        400,
        _flat(TOOL_ID_MSG, "invalid_function_call", "3280"),
        400,
        Disposition.FINAL,
        "3280",
    ),
    ("auth", 401, b'{"detail":"Unauthorized"}', 401, Disposition.AUTH, None),
    ("forbidden", 403, _flat("Forbidden", "authentication_error"), 403, Disposition.AUTH, None),
    (
        "rate limited",
        429,
        _flat("Rate limit exceeded", "rate_limited", "1300", raw_status_code=429),
        429,
        Disposition.RETRY,
        "1300",
    ),
    (
        "rate limit, bare",
        429,
        b'{"message":"Requests rate limit exceeded"}',
        429,
        Disposition.RETRY,
        None,
    ),
    (
        "rate type on 400",
        400,
        _flat("Too many tokens per minute", "rate_limit_error"),
        429,
        Disposition.RETRY,
        "rate_limit_exceeded",
    ),
    (
        "raw status 5xx",
        400,
        _flat("Upstream model crashed", "server_error", "1000", raw_status_code=503),
        503,
        Disposition.RETRY,
        "1000",
    ),
    (
        "server",
        500,
        _flat("Internal server error", "server_error", "1000"),
        500,
        Disposition.RETRY,
        "1000",
    ),
    (
        "context",
        400,
        _flat(CONTEXT_MSG, "invalid_request_error", "3051"),
        400,
        Disposition.CONTEXT,
        "context_length_exceeded",
    ),
    ("non-json", 502, b"<html><body>502 Bad Gateway</body></html>", 502, Disposition.RETRY, None),
    ("empty", 503, b"", 503, Disposition.RETRY, None),
]


@pytest.mark.parametrize(
    ("status", "raw", "want_status", "disposition", "code"),
    [e[1:] for e in ERRORS],
    ids=[e[0] for e in ERRORS],
)
def test_map_error(
    status: int, raw: bytes, want_status: int, disposition: Disposition, code: str | None
) -> None:
    err = ADAPTER.map_error(status, {}, raw)
    assert (err.status, err.disposition, err.code) == (want_status, disposition, code)
    assert err.message.startswith("mistral: ")
    body = err.body()["error"]
    assert set(body) == {"message", "type", "param", "code"}
    assert body["type"] in {
        "invalid_request_error",
        "authentication_error",
        "permission_error",
        "rate_limit_error",
        "server_error",
    }


def test_map_error_422_detail_without_input() -> None:
    detail = [
        {
            "type": "extra_forbidden",
            "loc": ["body", "store"],
            "msg": "Extra inputs are not permitted",
            "input": f"secret {KEY}",
        },
        {
            "type": "string_type",
            "loc": ["body", "messages", 0, "system", "content", "str"],
            "msg": "Input should be a valid string",
            "input": [{"type": "text"}],
        },
    ]
    nested = orjson.dumps(
        {
            "object": "error",
            "message": {"detail": detail},
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    )
    for raw in (orjson.dumps({"detail": detail}), nested):
        err = ADAPTER.map_error(422, {}, raw)
        assert err.status == 422 and err.disposition is Disposition.FINAL
        assert err.param == "store"
        assert err.message == (
            "mistral: store: Extra inputs are not permitted; "
            "messages[0].system.content.str: Input should be a valid string"
        )
        assert KEY not in err.message


def test_map_error_retry_after() -> None:
    err = ADAPTER.map_error(429, {"retry-after": "3"}, _flat("Rate limit", "rate_limited"))
    assert err.retry_after == 3.0
    assert err.response_headers()["retry-after"] == "3"
