"""Mistral embeddings (`POST {base_url}/v1/embeddings`, Bearer), OpenAI's wire with
Mistral's names. Request mapping (OpenAI -> Mistral):

    input (a string or strings)   input; token arrays are refused by the API (400, `input`)
    dimensions                    output_dimension (models that take it, e.g. codestral-embed)
    encoding_format               always `float` upstream (Mistral's SDK reads only floats);
                                  the worker renders base64 itself
    user                          dropped (Mistral forbids unknown fields)

The answer is OpenAI's shape (`data[]` with `index`, `usage`), read by
`openai.embeddings.parse_embeddings_response`.
"""

from __future__ import annotations

from orbyt.shared.providers.base import Json, Target, UpstreamRequest
from orbyt.shared.providers.openai.request import json_post


def url(base_url: str) -> str:
    base = base_url.rstrip("/")
    return base + ("/embeddings" if base.endswith("/v1") else "/v1/embeddings")


def payload(body: Json, target: Target) -> Json:
    out: Json = {"model": target.upstream_model, "input": body["input"]}
    if body.get("dimensions") is not None:
        out["output_dimension"] = body["dimensions"]
    return out


def build_embeddings_request(body: Json, target: Target) -> UpstreamRequest:
    return json_post(url(target.base_url), payload(body, target), target.api_key)
