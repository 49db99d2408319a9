"""Gemini adapter: non-stream answers -> OpenAI response dicts."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from orbyt.shared.errors import Disposition, UpstreamError
from orbyt.shared.providers.google import ADAPTER
from tests.unit.shared.providers.google.helpers import (
    chat,
    gemini_body,
    target,
    transcript,
)


def test_text_answer_with_thought_summary_and_usage() -> None:
    out = ADAPTER.parse_response(transcript("response_text_thoughts.json"), target())
    assert out["choices"] == [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": 'There are three r\'s in "strawberry".',
                "reasoning_content": "**Counting the letters**\n\nThe user wants the "
                "number of r's in strawberry.",
            },
            "finish_reason": "stop",
            "logprobs": None,
        }
    ]
    assert out["usage"] == {
        "prompt_tokens": 12,
        "completion_tokens": 217,
        "total_tokens": 229,
        "prompt_tokens_details": {"cached_tokens": 4},
        "completion_tokens_details": {"reasoning_tokens": 206},
    }


def test_parallel_tool_calls_carry_the_signature_on_the_first_call() -> None:
    out = ADAPTER.parse_response(transcript("response_parallel_tools.json"), target())
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Checking both cities."
    first, second = choice["message"]["tool_calls"]
    assert first["function"] == {
        "name": "get_weather",
        "arguments": '{"city":"Paris","unit":"celsius"}',
    }
    signature = orjson.loads(transcript("response_parallel_tools.json"))["candidates"][0][
        "content"
    ]["parts"][2]["thoughtSignature"]
    assert first["extra_content"] == {"google": {"thought_signature": signature}}
    assert "extra_content" not in second
    assert first["id"] != second["id"]
    assert all(len(call["id"]) <= 40 and call["type"] == "function" for call in (first, second))
    assert out["usage"]["prompt_tokens"] == 105  # prompt + toolUsePrompt
    assert out["usage"]["completion_tokens"] == 166  # candidates + thoughts


def test_tool_round_trip_restores_the_signature_exactly() -> None:
    raw = transcript("response_parallel_tools.json")
    message = ADAPTER.parse_response(raw, target())["choices"][0]["message"]
    signature = message["tool_calls"][0]["extra_content"]["google"]["thought_signature"]
    results = [
        {"role": "tool", "tool_call_id": call["id"], "content": '{"temp_c": 11}'}
        for call in reversed(message["tool_calls"])
    ]
    body = gemini_body(chat({"role": "user", "content": "Weather?"}, message, *results))
    model_turn, results_turn = body["contents"][1], body["contents"][2]
    assert [p.get("thoughtSignature") for p in model_turn["parts"]] == [None, signature, None]
    assert [p["functionCall"]["args"]["city"] for p in model_turn["parts"][1:]] == [
        "Paris",
        "Tokyo",
    ]
    assert results_turn == {
        "role": "user",
        "parts": [{"functionResponse": {"name": "get_weather", "response": {"temp_c": 11}}}] * 2,
    }


def test_ids_are_deterministic() -> None:
    raw = transcript("response_parallel_tools.json")
    first = ADAPTER.parse_response(raw, target())["choices"][0]["message"]["tool_calls"]
    again = ADAPTER.parse_response(raw, target())["choices"][0]["message"]["tool_calls"]
    assert [c["id"] for c in first] == [c["id"] for c in again]


def test_blocked_prompt_is_a_content_filter_finish() -> None:
    out = ADAPTER.parse_response(transcript("response_blocked.json"), target())
    assert out["choices"][0]["finish_reason"] == "content_filter"
    assert out["choices"][0]["message"]["content"] is None
    assert out["usage"]["prompt_tokens"] == 21


@pytest.mark.parametrize(
    ("reason", "with_call", "expected"),
    [
        ("STOP", False, "stop"),
        ("STOP", True, "tool_calls"),
        ("MAX_TOKENS", False, "length"),
        ("SAFETY", False, "content_filter"),
        ("RECITATION", False, "content_filter"),
        ("BLOCKLIST", False, "content_filter"),
        ("PROHIBITED_CONTENT", False, "content_filter"),
        ("SPII", False, "content_filter"),
        ("IMAGE_SAFETY", False, "content_filter"),
        ("LANGUAGE", False, "content_filter"),
        ("MALFORMED_FUNCTION_CALL", False, "stop"),
        ("UNEXPECTED_TOOL_CALL", False, "stop"),
        ("MISSING_THOUGHT_SIGNATURE", False, "stop"),
        ("OTHER", False, "stop"),
        ("SOMETHING_NEW", False, "stop"),
    ],
)
def test_finish_reasons(reason: str, with_call: bool, expected: str) -> None:
    parts: list[Any] = [{"text": "x"}]
    if with_call:
        parts.append({"functionCall": {"name": "f", "args": {}}})
    raw = orjson.dumps(
        {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": reason}]}
    )
    assert ADAPTER.parse_response(raw, target())["choices"][0]["finish_reason"] == expected


def test_logprobs_are_translated() -> None:
    raw = orjson.dumps(
        {
            "candidates": [
                {
                    "content": {"parts": [{"text": "Hi"}]},
                    "finishReason": "STOP",
                    "logprobsResult": {
                        "topCandidates": [
                            {
                                "candidates": [
                                    {"token": "Hi", "logProbability": -0.1},
                                    {"token": "Hey", "logProbability": -2.5},
                                ]
                            }
                        ],
                        "chosenCandidates": [{"token": "Hi", "logProbability": -0.1}],
                    },
                }
            ]
        }
    )
    logprobs = ADAPTER.parse_response(raw, target())["choices"][0]["logprobs"]
    assert logprobs["content"] == [
        {
            "token": "Hi",
            "logprob": -0.1,
            "bytes": [72, 105],
            "top_logprobs": [
                {"token": "Hi", "logprob": -0.1, "bytes": [72, 105]},
                {"token": "Hey", "logprob": -2.5, "bytes": [72, 101, 121]},
            ],
        }
    ]


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"<html>502</html>",
        b"[]",
        b"{}",
        b'{"candidates": 3}',
        b'{"candidates": [{"content": {"parts": "x"}}]}',
    ],
)
def test_malformed_responses_are_502(raw: bytes) -> None:
    with pytest.raises(UpstreamError) as exc:
        ADAPTER.parse_response(raw, target())
    assert exc.value.status == 502 and exc.value.disposition is Disposition.RETRY
