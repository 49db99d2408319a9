"""Gemini embeddings: one input -> `POST {base}/v1beta/models/{model}:embedContent`,
several -> `:batchEmbedContents`, the key in `x-goog-api-key`. Mapping (OpenAI -> Gemini):

    input "text"                  embedContent {"content": {"parts": [{"text"}]}}
    input ["a", "b", ...]         batchEmbedContents {"requests": [{"model": "models/{m}",
                                  "content": {"parts": [{"text"}]}}, ...]} in input order
    token arrays                  refused by the API (400, `input`): Gemini takes text only
    more than 100 inputs          refused (400, `input`): Gemini's limit for one batch
    dimensions                    outputDimensionality (on each request)
    encoding_format               Gemini returns floats; the worker renders base64 itself
    user                          dropped

Answers: `{"embedding": {"values"}}` or `{"embeddings": [{"values"}, ...]}` in request
order -> `data[]` with `index`; `usageMetadata.promptTokenCount` -> usage when Gemini
reports it (else the worker estimates it). Errors are read by `google.errors`.
"""

from __future__ import annotations

from typing import Any

import orjson

from orbyt.shared.errors import InvalidRequest, UpstreamError, upstream_error
from orbyt.shared.providers.base import Json, Target, UpstreamRequest
from orbyt.shared.providers.google.errors import in_band_error, load_object
from orbyt.shared.providers.google.request import DEFAULT_BASE_URL, upstream_model

MAX_BATCH = 100  # requests in one batchEmbedContents call


def build_embeddings_request(body: Json, target: Target) -> UpstreamRequest:
    model = upstream_model(target.upstream_model)
    texts = body["input"]
    dims = body.get("dimensions")
    if isinstance(texts, str):
        method, payload = "embedContent", _one(texts, dims)
    elif len(texts) > MAX_BATCH:
        raise InvalidRequest(
            f"Invalid 'input': google embeds at most {MAX_BATCH} inputs per request.",
            param="input",
            code="invalid_value",
        )
    else:
        requests = [{"model": f"models/{model}", **_one(text, dims)} for text in texts]
        method, payload = "batchEmbedContents", {"requests": requests}
    headers = {"content-type": "application/json", "accept": "application/json"}
    if target.api_key:
        headers["x-goog-api-key"] = target.api_key.reveal()
    base = (target.base_url or DEFAULT_BASE_URL).rstrip("/")
    return UpstreamRequest(
        method="POST",
        url=f"{base}/v1beta/models/{model}:{method}",
        headers=headers,
        body=orjson.dumps(payload),
        stream=False,
    )


def _one(text: str, dims: Any) -> Json:
    out: Json = {"content": {"parts": [{"text": text}]}}
    if dims is not None:
        out["outputDimensionality"] = dims
    return out


def parse_embeddings_response(raw: bytes) -> Json:
    body = load_object(raw)
    if body is None:
        raise _malformed()
    if "error" in body:
        raise in_band_error(body["error"])
    one = body.get("embedding")
    embeddings = [one] if one is not None else body.get("embeddings")
    if not isinstance(embeddings, list):
        raise _malformed()
    data = [{"index": i, "embedding": _values(e)} for i, e in enumerate(embeddings)]
    out: Json = {"data": data}
    meta = body.get("usageMetadata")
    prompt = meta.get("promptTokenCount") if isinstance(meta, dict) else None
    if isinstance(prompt, int) and not isinstance(prompt, bool):
        out["usage"] = {"prompt_tokens": prompt, "total_tokens": prompt}
    return out


def _values(entry: Any) -> list[Any]:
    values = entry.get("values") if isinstance(entry, dict) else None
    if not isinstance(values, list):
        raise _malformed()
    return values


def _malformed() -> UpstreamError:
    return upstream_error(502, "google: malformed response body", type="server_error")
