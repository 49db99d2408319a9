"""The worker's side of an `embeddings` job (`contract.EMBEDDINGS`): the upstream request
from the route's embeddings role, and `EmbeddingsAttempt`, a non-stream attempt whose
answer is OpenAI's embeddings list.

The walk (retries, fallback, breakers, key pools, deadlines) is the chat engine's own
(`worker.engine.Walk`); only the request and the answer differ. A `dimensions` equal to the
size of a model without the `dimensions` capability is left out of its request (a
fallback to `mistral/mistral-embed` for `dimensions: 1024`). Vectors come back in input
order with their `index`, each in the caller's `encoding_format`: a float list, or the
base64 of little-endian float32s (rendered here when the upstream only returns floats, and
decoded here when the caller asked for floats and the upstream sent base64). Usage is the
upstream's, or an estimate where the upstream reports none (Gemini).
"""

from __future__ import annotations

from typing import Any

import orjson

from orbyt.shared.embeddings import decode_base64, encode_base64, estimate_tokens
from orbyt.shared.errors import Disposition, OrbytError, UpstreamError
from orbyt.shared.providers import Target, UpstreamRequest
from orbyt.shared.providers.base import Json, embeddings_role
from orbyt.worker.attempts import Attempt, cannot_express
from orbyt.worker.deployments import Route


def build_embeddings_request(route: Route, target: Target, body: Json) -> UpstreamRequest:
    role = embeddings_role(route.adapter)
    if role is None:  # validated by the API; a worker with older configuration skips it
        raise UpstreamError(
            f"{route.cand['provider']}: serves no embeddings",
            status=400,
            disposition=Disposition.FAILOVER,
            code="model_not_supported",
        )
    info = route.info
    if info and body.get("dimensions") == info.dimensions and not route.can("dimensions"):
        # the model's own size (the API checked it): not sent to a model that refuses it
        body = {k: v for k, v in body.items() if k != "dimensions"}
    try:
        return role.build_embeddings_request(body, target)
    except UpstreamError:
        raise
    except OrbytError as exc:
        raise cannot_express(exc) from None


class EmbeddingsAttempt(Attempt):
    """One embeddings request, one F frame carrying the whole list body."""

    async def run(self, limit: float) -> None:
        route = self.route
        role = embeddings_role(route.adapter)
        assert role is not None  # `build_embeddings_request` made the request
        parsed = role.parse_embeddings_response(await self.fetch(limit), self.target)
        body = self.job["body"]
        usage = parsed.get("usage") or _estimated(body.get("input"))
        reply = self.reply
        payload = embeddings_body(route.cand["model"], parsed["data"], usage, body)
        await reply.done(route, reply.settle(route, usage), payload)


def _estimated(value: Any) -> Json:
    tokens = estimate_tokens(value)
    return {"prompt_tokens": tokens, "total_tokens": tokens}


def embeddings_body(model: str, data: list[Json], usage: Json, body: Json) -> bytes:
    """OpenAI's `list` of `embedding` objects, in the caller's encoding."""
    as_base64 = body.get("encoding_format") == "base64"
    items = [
        {
            "object": "embedding",
            "index": item["index"],
            "embedding": _encoded(item["embedding"], as_base64),
        }
        for item in data
    ]
    out = {"object": "list", "data": items, "model": model, "usage": usage}
    return orjson.dumps(out)


def _encoded(vector: list[float] | str, as_base64: bool) -> list[float] | str:
    if as_base64:
        return vector if isinstance(vector, str) else encode_base64(vector)
    return decode_base64(vector) if isinstance(vector, str) else vector
