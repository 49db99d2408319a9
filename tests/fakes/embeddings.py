"""Embeddings wires of the fakes: deterministic vectors and each provider's request checks
and answer bodies. Requests go through the same behaviour engine as chat
(``FakeServer.respond``), so ``Error``, ``Hang``, ``Reset`` and ``Reply(ttft=...)`` apply;
``Reply.usage`` sets the prompt tokens.

- OpenAI ``POST /v1/embeddings``: ``input`` a string, strings, a token array or token
  arrays; ``dimensions`` (text-embedding-3 models only); ``encoding_format`` float/base64.
- Mistral ``POST /v1/embeddings``: ``input`` a string or strings, ``output_dimension``
  (not for mistral-embed), ``output_dtype``, ``encoding_format``; unknown fields are a 422.
- Gemini ``:embedContent`` (one ``content``) and ``:batchEmbedContents`` (``requests[]``,
  each naming ``models/{model}`` of the URL), ``outputDimensionality``; ``values`` only.
"""

from __future__ import annotations

import base64
import hashlib
import math
import random
import struct
from typing import Any

from .behaviours import Reply, estimate_tokens
from .wire import Call

OPENAI_SIZES = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072}
GEMINI_SIZES = {"gemini-embedding-001": 3072, "text-embedding-004": 768}
MISTRAL_SIZE = 1024
MISTRAL_FIELDS = frozenset(
    {"model", "input", "metadata", "output_dimension", "output_dtype", "encoding_format"}
)


def vector(item: Any, size: int) -> list[float]:
    """A unit vector of `size` floats determined by `item` (a text or a token array)."""
    seed = hashlib.sha256(repr(item).encode()).digest()
    rng = random.Random(seed)
    values = [rng.uniform(-1.0, 1.0) for _ in range(size)]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [struct.unpack("<f", struct.pack("<f", v / norm))[0] for v in values]  # float32


def as_base64(values: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()


def _items(value: Any) -> list[Any]:
    if isinstance(value, str):
        return [value]
    if value and all(isinstance(t, int) for t in value):
        return [value]  # one token array
    return list(value)


def _prompt(reply: Reply, inputs: Any) -> int:
    return reply.usage[0] if reply.usage is not None else estimate_tokens(inputs)


# ---------------------------------------------------------------------------- OpenAI
def openai_problem(body: dict[str, Any]) -> tuple[str, str | None] | None:
    """(message, param) of OpenAI's 400 for a bad embeddings request, or None."""
    if body.get("model") is None:
        return "you must provide a model parameter", None
    value = body.get("input")
    if value is None:
        return "'input' is a required property", None
    if value in ("", []) or not isinstance(value, str | list):
        return "'$.input' is invalid. Please check the API reference.", None
    if body.get("dimensions") is not None and body["model"] not in OPENAI_SIZES:
        return "This model does not support specifying dimensions.", None
    if body.get("encoding_format") not in (None, "float", "base64"):
        return "'encoding_format' must be one of 'float', 'base64'.", "encoding_format"
    return None


def openai_body(call: Call, reply: Reply, usage_extra: dict[str, Any] | None = None) -> Any:
    body = call.body
    size = body.get("dimensions") or OPENAI_SIZES.get(call.model, 1536)
    encode = body.get("encoding_format") == "base64"
    data = []
    for i, item in enumerate(_items(body["input"])):
        values = vector(item, size)
        data.append(
            {
                "object": "embedding",
                "index": i,
                "embedding": as_base64(values) if encode else values,
            }
        )
    prompt = _prompt(reply, body["input"])
    usage = {"prompt_tokens": prompt, "total_tokens": prompt, **(usage_extra or {})}
    return {"object": "list", "data": data, "model": reply.model or call.model, "usage": usage}


# --------------------------------------------------------------------------- Mistral
def mistral_problem(body: dict[str, Any]) -> tuple[str, str | None] | None:
    """(message, field) of Mistral's error for a bad embeddings request, or None; the
    field is set for the 422 of an unknown field."""
    for name in body:
        if name not in MISTRAL_FIELDS:
            return "Extra inputs are not permitted", name
    value = body.get("input")
    if not (isinstance(value, str) or (isinstance(value, list) and value)) or (
        isinstance(value, list) and not all(isinstance(v, str) for v in value)
    ):
        return "Input should be a valid string", "input"
    if body.get("output_dimension") is not None and body.get("model") == "mistral-embed":
        return "output_dimension is not supported for model mistral-embed", None
    return None


def mistral_body(call: Call, reply: Reply, rid: str) -> Any:
    out = openai_body(call, reply, {"completion_tokens": 0})
    size = call.body.get("output_dimension") or MISTRAL_SIZE
    for item, value in zip(out["data"], _items(call.body["input"]), strict=True):
        item["embedding"] = vector(value, size)
    return {"id": rid, **out}


# ---------------------------------------------------------------------------- Gemini
def _text(content: Any) -> str | None:
    parts = content.get("parts") if isinstance(content, dict) else None
    if not isinstance(parts, list) or not parts:
        return None
    texts = [p.get("text") for p in parts if isinstance(p, dict)]
    return "".join(t for t in texts if isinstance(t, str))


def gemini_requests(model: str, method: str, body: dict[str, Any]) -> list[Any] | str:
    """The embed requests of a call (one for embedContent), or Google's 400 message."""
    if method == "embedContent":
        return [body]
    requests = body.get("requests")
    if not isinstance(requests, list) or not requests:
        return "* BatchEmbedContentsRequest.requests: requests is not specified\n"
    if len(requests) > 100:
        return "* BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch\n"
    for i, req in enumerate(requests):
        if not isinstance(req, dict) or req.get("model") != f"models/{model}":
            return (
                f"* BatchEmbedContentsRequest.requests[{i}].model: Model names in requests must "
                "match the model in the URL.\n"
            )
    return requests


def gemini_problem(requests: list[Any]) -> str | None:
    for req in requests:
        if _text(req.get("content")) is None:
            return "* EmbedContentRequest.content: content is not specified\n"
    return None


def gemini_body(call: Call, method: str, requests: list[Any]) -> Any:
    out = []
    for req in requests:
        size = req.get("outputDimensionality") or GEMINI_SIZES.get(call.model, 768)
        out.append({"values": vector(_text(req["content"]), size)})
    return {"embedding": out[0]} if method == "embedContent" else {"embeddings": out}
