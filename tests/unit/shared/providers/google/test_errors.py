"""Gemini adapter: error statuses and bodies -> UpstreamError."""

from __future__ import annotations

import orjson
import pytest

from orbyt.shared.errors import Disposition
from orbyt.shared.providers.google import ADAPTER
from tests.unit.shared.providers.google.helpers import (
    transcript,
)


def test_invalid_key_400_becomes_401_auth() -> None:
    err = ADAPTER.map_error(400, {}, transcript("error_api_key_invalid.json"))
    assert (err.status, err.disposition, err.code) == (401, Disposition.AUTH, "invalid_api_key")
    assert err.type == "authentication_error"
    assert err.message == "google: API key not valid. Please pass a valid API key."


def test_rate_limit_carries_retry_info() -> None:
    err = ADAPTER.map_error(429, {}, transcript("error_rate_limit.json"))
    assert (err.status, err.disposition, err.retry_after) == (429, Disposition.RETRY, 37.0)
    assert err.code == "rate_limit_exceeded" and err.should_retry
    assert err.response_headers()["retry-after"] == "37"


def test_per_day_quota_is_final_for_the_key() -> None:
    err = ADAPTER.map_error(429, {}, transcript("error_quota_per_day.json"))
    assert (err.disposition, err.code, err.retry_after) == (
        Disposition.QUOTA,
        "insufficient_quota",
        1.5,
    )
    assert err.response_headers()["x-should-retry"] == "false"


def test_zero_quota_is_final_for_the_key() -> None:
    body = orjson.loads(transcript("error_rate_limit.json"))
    body["error"]["details"][1]["violations"][0]["quotaValue"] = "0"
    assert ADAPTER.map_error(429, {}, orjson.dumps(body)).disposition is Disposition.QUOTA


def test_token_limit_is_a_context_error() -> None:
    err = ADAPTER.map_error(400, {}, transcript("error_context.json"))
    assert (err.status, err.code, err.disposition) == (
        400,
        "context_length_exceeded",
        Disposition.CONTEXT,
    )


@pytest.mark.parametrize(
    ("status", "name", "disposition"),
    [
        (400, "error_missing_signature.json", Disposition.FINAL),
        (403, "error_permission_denied.json", Disposition.AUTH),
        (503, "error_unavailable.json", Disposition.RETRY),
    ],
)
def test_status_dispositions(status: int, name: str, disposition: Disposition) -> None:
    err = ADAPTER.map_error(status, {}, transcript(name))
    assert (err.status, err.disposition) == (status, disposition)
    assert err.message.startswith("google: ")


@pytest.mark.parametrize("status", [500, 502, 503, 504])
@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"<html><body>Bad gateway</body></html>",
        b"upstream connect error",
        b'{"error": "oops"}',
        b"[]",
    ],
)
def test_non_json_errors_map_cleanly(status: int, raw: bytes) -> None:
    err = ADAPTER.map_error(status, {"retry-after": "2"}, raw)
    assert err.status == status and err.disposition is Disposition.RETRY
    assert err.message.startswith("google: ") and err.retry_after == 2.0
    assert "<html" not in err.message
