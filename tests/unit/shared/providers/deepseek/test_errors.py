"""DeepSeek adapter: error statuses and bodies -> UpstreamError."""

from __future__ import annotations

import orjson
import pytest

from orbyt.shared.errors import Disposition
from orbyt.shared.providers.deepseek import ADAPTER
from tests.unit.shared.providers.deepseek.helpers import (
    KEY,
)


def _err(message: str, etype: str, code: str | None = "invalid_request_error") -> bytes:
    return orjson.dumps({"error": {"message": message, "type": etype, "param": None, "code": code}})


CONTEXT_MSG = (
    "This model's maximum context length is 131072 tokens. However, you requested "
    "140000 tokens (139000 in the messages, 1000 in the completion)."
)
ERRORS: list[tuple[str, int, bytes, Disposition, str | None, str]] = [
    (
        "bad request",
        400,
        _err("Invalid request format.", "invalid_request_error"),
        Disposition.FINAL,
        None,
        "invalid_request_error",
    ),
    (
        "reasoning echo",
        400,
        _err(
            "The reasoning_content in the thinking mode must be passed back to the API.",
            "invalid_request_error",
        ),
        Disposition.FINAL,
        None,
        "invalid_request_error",
    ),
    (
        "context",
        400,
        _err(CONTEXT_MSG, "invalid_request_error"),
        Disposition.CONTEXT,
        "context_length_exceeded",
        "invalid_request_error",
    ),
    (
        "auth",
        401,
        _err("Authentication Fails, Your api key: ****cdef is invalid", "authentication_error"),
        Disposition.AUTH,
        "invalid_api_key",
        "authentication_error",
    ),
    (
        "balance",
        402,
        _err("Insufficient Balance", "unknown_error"),
        Disposition.QUOTA,
        "insufficient_quota",
        "billing_error",
    ),
    (
        "params",
        422,
        _err("Invalid Parameters", "invalid_request_error"),
        Disposition.FINAL,
        None,
        "invalid_request_error",
    ),
    (
        "rate",
        429,
        _err("Rate Limit Reached", "rate_limit_error", "rate_limit_exceeded"),
        Disposition.RETRY,
        "rate_limit_exceeded",
        "rate_limit_error",
    ),
    (
        "server",
        500,
        _err("Server Error", "server_error", "server_error"),
        Disposition.RETRY,
        "server_error",
        "server_error",
    ),
    (
        "overloaded",
        503,
        _err("Server Overloaded", "server_error", "server_overloaded"),
        Disposition.RETRY,
        "server_overloaded",
        "server_error",
    ),
    ("non-json", 502, b"<html>Bad Gateway</html>", Disposition.RETRY, None, "server_error"),
    ("empty", 503, b"\n\n", Disposition.RETRY, None, "server_error"),
]


@pytest.mark.parametrize(
    ("status", "raw", "disposition", "code", "etype"),
    [e[1:] for e in ERRORS],
    ids=[e[0] for e in ERRORS],
)
def test_map_error(
    status: int, raw: bytes, disposition: Disposition, code: str | None, etype: str
) -> None:
    err = ADAPTER.map_error(status, {}, raw)
    assert (err.status, err.disposition, err.code, err.type) == (status, disposition, code, etype)
    assert err.message.startswith("deepseek: ")


def test_map_error_never_echoes_the_key() -> None:
    raw = _err(
        f"Authentication Fails, Your api key: ****{KEY[-4:]} is invalid (got {KEY})",
        "authentication_error",
    )
    err = ADAPTER.map_error(401, {}, raw)
    assert "****" not in err.message and KEY[-4:] not in err.message
    assert err.message == "deepseek: Authentication Fails, Your api key is invalid (got sk-***)"


def test_map_error_quota_is_not_retried_by_sdk() -> None:
    err = ADAPTER.map_error(402, {}, _err("Insufficient Balance", "unknown_error"))
    assert err.response_headers()["x-should-retry"] == "false"


def test_map_error_retry_after() -> None:
    err = ADAPTER.map_error(
        429, {"retry-after-ms": "1500"}, _err("Rate Limit Reached", "rate_limit_error")
    )
    assert err.retry_after == 1.5
