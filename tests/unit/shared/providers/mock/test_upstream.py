"""The mock upstream: unknown models are a 404 like any provider's; the failing models fail
as documented; a prefill continuation gets the rest of the answer."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from orbyt.shared.providers.mock import MockCut, mock_completion, mock_error, mock_stream
from orbyt.shared.providers.mock.upstream import MODELS, mock_tokens

ASK = [{"role": "user", "content": "one two three"}]


def test_unknown_models_are_a_404_model_not_found() -> None:
    failure = mock_error("no-such-model")
    assert failure is not None and failure.status == 404
    err = orjson.loads(failure.body)["error"]
    assert err["code"] == "model_not_found" and err["type"] == "invalid_request_error"
    assert "no-such-model" in err["message"]


@pytest.mark.parametrize("model", ["echo", "echo-backup", "cut"])
def test_answering_models_do_not_fail_up_front(model: str) -> None:
    assert model in MODELS and mock_error(model) is None


def test_failing_models_fail_as_documented() -> None:
    flaky = mock_error("flaky-503")
    assert flaky is not None and flaky.status == 503 and not flaky.headers
    limited = mock_error("rate-limited")
    assert limited is not None and limited.status == 429
    assert limited.headers == {"retry-after": "1"}
    assert orjson.loads(limited.body)["error"]["code"] == "rate_limit_exceeded"
    legacy = mock_error("error-429")
    assert legacy is not None and legacy.status == 429


def test_a_prefill_continuation_gets_the_rest_of_the_answer() -> None:
    full = mock_tokens({"messages": ASK, "max_tokens": 8})
    prefill = "".join(full[:3])
    rest = mock_tokens(
        {"messages": [*ASK, {"role": "assistant", "content": prefill}], "max_tokens": 8}
    )
    assert rest == full[3:]
    body = {"messages": [*ASK, {"role": "assistant", "content": prefill}], "max_tokens": 8}
    usage = orjson.loads(mock_completion(body))["usage"]
    assert usage["completion_tokens"] == 5


async def _drain(model: str) -> tuple[list[bytes], BaseException | None]:
    out: list[bytes] = []
    try:
        async for chunk in mock_stream({"model": model, "messages": ASK, "max_tokens": 10}, 0, 0):
            out.append(chunk)
    except MockCut as exc:
        return out, exc
    return out, None


def test_the_cut_model_drops_its_stream_half_way() -> None:
    chunks, error = asyncio.run(_drain("cut"))
    assert isinstance(error, MockCut)
    assert len(chunks) == 1 + 5  # the role delta, then half of the 10 tokens
    whole, none = asyncio.run(_drain("echo"))
    assert none is None and whole[-1] == b"data: [DONE]\n\n"
