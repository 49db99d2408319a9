"""OpenAI embeddings (`POST {base_url}/embeddings`), also the wire of OpenAI-compatible
upstreams and (with its own hooks) Mistral's.

Request: the validated body as is (`input` as a string, strings or token arrays,
`dimensions`, `encoding_format`, `user`) minus Orbyt's `extra`, `model` replaced with the
upstream id. Response: `data[]` sorted by `index` (each `embedding` a list of floats or a
base64 string, as asked) and `usage` `{prompt_tokens, total_tokens}`; a body without a
`data` list of embeddings is a 502.
"""

from __future__ import annotations

from typing import Any

from orbyt.shared.providers.base import Json, Target, UpstreamRequest
from orbyt.shared.providers.openai.request import GATEWAY_FIELDS, json_post
from orbyt.shared.providers.openai.response import as_int, loads_object, malformed


def embeddings_payload(body: Json, target: Target) -> Json:
    payload = {k: v for k, v in body.items() if k not in GATEWAY_FIELDS and v is not None}
    payload["model"] = target.upstream_model
    return payload


def build_embeddings_request(body: Json, target: Target) -> UpstreamRequest:
    url = target.base_url.rstrip("/") + "/embeddings"
    return json_post(url, embeddings_payload(body, target), target.api_key)


def parse_embeddings_response(provider: str, raw: bytes) -> Json:
    """`{"data": [{"index", "embedding"}], "usage"}` from an OpenAI-shaped answer."""
    body = loads_object(raw.strip())
    data = body.get("data") if body is not None else None
    if not isinstance(data, list):
        raise malformed(provider)
    items = [_item(provider, i, entry) for i, entry in enumerate(data)]
    items.sort(key=lambda item: int(item["index"]))
    assert body is not None
    return {"data": items, "usage": usage(body.get("usage"))}


def _item(provider: str, position: int, entry: Any) -> Json:
    if not isinstance(entry, dict):
        raise malformed(provider)
    vector = entry.get("embedding")
    if not isinstance(vector, list | str):
        raise malformed(provider)
    return {"index": as_int(entry.get("index"), position), "embedding": vector}


def usage(raw: Any) -> Json:
    prompt = as_int(raw.get("prompt_tokens")) if isinstance(raw, dict) else 0
    total = as_int(raw.get("total_tokens"), prompt) if isinstance(raw, dict) else 0
    return {"prompt_tokens": prompt, "total_tokens": total}
