"""OpenAI adapter: the masked key OpenAI quotes in 401 messages never reaches a caller."""

from __future__ import annotations

import orjson
import pytest

from orbyt.shared.errors import Disposition, UpstreamError
from orbyt.shared.providers.base import StreamState
from orbyt.shared.providers.openai import ADAPTER
from orbyt.shared.sse import SSEEvent

KEY = "sk-proj-Qx7Lm2Np9Rs4Tv6WbE1aZ0T3BlbkFJYb3Cd5Ef8Gh1Jk0MnPq2Rs"
MASKED = f"{KEY[:6]}{'*' * 40}{KEY[-4:]}"


def _err(message: str) -> bytes:
    return orjson.dumps(
        {
            "error": {
                "message": message,
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_api_key",
            }
        }
    )


def test_401_drops_the_masked_key() -> None:
    raw = _err(
        f"Incorrect API key provided: {MASKED}. You can find your API key at "
        "https://platform.openai.com/account/api-keys."
    )
    err = ADAPTER.map_error(401, {}, raw)
    assert err.status == 401 and err.disposition is Disposition.AUTH
    assert err.code == "invalid_api_key"
    assert err.message == (
        "openai: Incorrect API key provided. You can find your API key at "
        "https://platform.openai.com/account/api-keys."
    )
    assert KEY[-4:] not in err.message and "*" not in err.message


def test_stream_error_drops_the_masked_key() -> None:
    data = orjson.dumps({"error": {"message": f"key {MASKED} revoked"}}).decode()
    with pytest.raises(UpstreamError) as info:
        ADAPTER.parse_event(SSEEvent(None, data), StreamState())
    assert info.value.message == "openai: key revoked"


def test_ordinary_messages_are_untouched() -> None:
    err = ADAPTER.map_error(400, {}, _err("Use **bold** or *italic*: 2 * 3 = 6."))
    assert err.message == "openai: Use **bold** or *italic*: 2 * 3 = 6."
