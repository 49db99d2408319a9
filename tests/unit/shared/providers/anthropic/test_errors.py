"""Anthropic adapter: error statuses and bodies -> UpstreamError."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from orbyt.shared.errors import Disposition
from orbyt.shared.providers.anthropic import ADAPTER
from tests.unit.shared.providers.anthropic.helpers import (
    read,
)

ERROR_CASES = [
    # file, status, headers -> status, type, code, disposition, retryable, retry_after
    (
        "error_rate_limit.json",
        429,
        {"retry-after": "7"},
        429,
        "rate_limit_error",
        "rate_limit_exceeded",
        Disposition.RETRY,
        True,
        7.0,
    ),
    (
        "error_rate_limit.json",
        429,
        {"Retry-After": "3"},
        429,
        "rate_limit_error",
        "rate_limit_exceeded",
        Disposition.RETRY,
        True,
        3.0,
    ),
    (
        "error_spend_limit.json",
        429,
        {},
        429,
        "insufficient_quota",
        "insufficient_quota",
        Disposition.QUOTA,
        False,
        None,
    ),
    (
        "error_overloaded.json",
        529,
        {},
        503,
        "server_error",
        "overloaded",
        Disposition.RETRY,
        True,
        None,
    ),
    (
        "error_prompt_too_long.json",
        400,
        {},
        400,
        "invalid_request_error",
        "context_length_exceeded",
        Disposition.CONTEXT,
        False,
        None,
    ),
    (
        "error_context_limit.json",
        400,
        {},
        400,
        "invalid_request_error",
        "context_length_exceeded",
        Disposition.CONTEXT,
        False,
        None,
    ),
    (
        "error_authentication.json",
        401,
        {},
        401,
        "authentication_error",
        "invalid_api_key",
        Disposition.AUTH,
        False,
        None,
    ),
    (
        "error_permission.json",
        403,
        {},
        403,
        "permission_error",
        "permission_denied",
        Disposition.AUTH,
        False,
        None,
    ),
    (
        "error_credit_balance.json",
        400,
        {},
        400,
        "insufficient_quota",
        "insufficient_quota",
        Disposition.QUOTA,
        False,
        None,
    ),
    (
        "error_model_not_found.json",
        404,
        {},
        404,
        "invalid_request_error",
        "model_not_found",
        Disposition.FINAL,
        False,
        None,
    ),
    (
        "error_invalid_request.json",
        400,
        {},
        400,
        "invalid_request_error",
        None,
        Disposition.FINAL,
        False,
        None,
    ),
    ("error_api.json", 500, {}, 500, "server_error", None, Disposition.RETRY, True, None),
]


@pytest.mark.parametrize("case", ERROR_CASES, ids=[f"{c[0]}-{c[1]}" for c in ERROR_CASES])
def test_error_transcripts(case: tuple[Any, ...]) -> None:
    name, status, headers, *expected = case
    err = ADAPTER.map_error(status, headers, read(name))
    raw_message = orjson.loads(read(name))["error"]["message"]
    assert err.message == f"anthropic: {raw_message}"
    assert [
        err.status,
        err.type,
        err.code,
        err.disposition,
        err.should_retry,
        err.retry_after,
    ] == expected
    assert err.body()["error"]["code"] == expected[2]


@pytest.mark.parametrize(
    ("status", "raw", "code", "retryable"),
    [
        (529, b"", "overloaded", True),
        (502, b"<html><body>Bad gateway</body></html>", None, True),
        (503, b"upstream connect error or disconnect/reset before headers", "overloaded", True),
        (401, b"Unauthorized", "invalid_api_key", False),
        (413, b"<html>Request Entity Too Large</html>", "request_too_large", False),
        (400, b'{"type":"error","error":"bad"}', None, False),
        (418, b"\xff\xfe", None, False),
    ],
)
def test_non_json_error_bodies_map_cleanly(
    status: int, raw: bytes, code: str | None, retryable: bool
) -> None:
    err = ADAPTER.map_error(status, {}, raw)
    assert err.message.startswith("anthropic: ") and "<html" not in err.message
    assert (err.code, err.should_retry) == (code, retryable)
    assert err.status == (503 if status == 529 else status)
