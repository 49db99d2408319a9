"""`worker.embeddings`: the list body in the caller's encoding, whatever the upstream sent."""

from __future__ import annotations

from typing import Any

import orjson

from orbyt.shared.embeddings import encode_base64
from orbyt.worker.embeddings import embeddings_body

USAGE = {"prompt_tokens": 3, "total_tokens": 3}
FLOATS = [0.5, -0.25]


def body(data: list[dict[str, object]], fmt: str | None) -> dict[str, object]:
    request = (
        {"input": ["a", "b"]} if fmt is None else {"input": ["a", "b"], "encoding_format": fmt}
    )
    return dict(orjson.loads(embeddings_body("openai/e", data, USAGE, request)))


def test_floats_from_an_upstream_that_sends_floats_or_base64() -> None:
    data = [{"index": 0, "embedding": FLOATS}, {"index": 1, "embedding": encode_base64(FLOATS)}]
    out = body(data, None)
    assert out == {
        "object": "list",
        "data": [
            {"object": "embedding", "index": 0, "embedding": FLOATS},
            {"object": "embedding", "index": 1, "embedding": FLOATS},
        ],
        "model": "openai/e",
        "usage": USAGE,
    }
    assert body(data, "float")["data"] == out["data"]


def test_base64_rendered_or_passed_through() -> None:
    data = [{"index": 0, "embedding": FLOATS}, {"index": 1, "embedding": "AAAAPw=="}]
    out: Any = body(data, "base64")
    assert [d["embedding"] for d in out["data"]] == [encode_base64(FLOATS), "AAAAPw=="]
