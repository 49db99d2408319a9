"""OpenAI embeddings requests (`POST /v1/embeddings`): validation, the route plan's checks,
and the vector encodings. Pure; the API validates with it, the worker renders with it.

- `parse_embeddings_request`: the body without nulls and its typed view. `input` is a
  string, a list of strings, a token array or a list of token arrays (at most
  `MAX_INPUTS`, none empty); `dimensions` a positive integer; `encoding_format` `float`
  or `base64`; `user`; Orbyt's `extra`. Other fields: a 400 (`unknown_parameter`), as for
  chat.
- `check_embeddings_plan`: every candidate is an embedding model of a provider with an
  embeddings role (else a 400 naming it); token arrays only where the upstream takes them
  (else a 400 naming `input`); `dimensions` only where the model takes it, unless it is
  the model's own size; fallbacks only between models whose vectors have the same size
  (the requested `dimensions` counted in), else a 400 naming both. Models missing from the
  catalog are taken on trust (no size known).
- `encode_base64` / `decode_base64`: little-endian float32, as OpenAI's `base64` format.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from orbyt.shared.catalog import Catalog
from orbyt.shared.contract import Candidate
from orbyt.shared.errors import InvalidRequest
from orbyt.shared.providers import Adapter
from orbyt.shared.providers.base import embeddings_role
from orbyt.shared.routing import plan_param
from orbyt.shared.wire import MAX_MODEL_ID, MODEL_ID, Extra, _inline, _invalid, _loads, _shown

MAX_INPUTS = 2048  # OpenAI's own limit on the inputs of one request
EMBEDDINGS_FIELDS = frozenset({"input", "model", "dimensions", "encoding_format", "user", "extra"})
InputKind = Literal["text", "texts", "tokens"]


class EmbeddingsRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: Annotated[str, Field(min_length=1, max_length=MAX_MODEL_ID, pattern=MODEL_ID)]
    input: Any
    dimensions: Annotated[StrictInt, Field(ge=1, le=65536)] | None = None
    encoding_format: Literal["float", "base64"] | None = None
    user: str | None = None
    extra: Extra | None = None


def embeddings_request_schema() -> dict[str, Any]:
    """The request body's JSON schema, self-contained (for the OpenAPI document)."""
    schema = EmbeddingsRequest.model_json_schema()
    schema["properties"]["input"] = {
        "anyOf": [
            {"type": "string", "minLength": 1},
            {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1},
            {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 1},
            {
                "type": "array",
                "items": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                "minItems": 1,
            },
        ]
    }
    schema["additionalProperties"] = False  # unknown fields are a 400
    return dict(_inline(schema, schema.get("$defs", {})))


def parse_embeddings_request(raw: bytes) -> tuple[dict[str, Any], EmbeddingsRequest, InputKind]:
    """Validate a request body: (the caller's JSON without nulls, its typed view, the kind
    of its input). Raises InvalidRequest naming the field; never quotes input values."""
    body = {k: v for k, v in _loads(raw).items() if v is not None}
    try:
        req = EmbeddingsRequest.model_validate(body)
    except ValidationError as exc:
        raise _invalid(exc.errors(include_input=False, include_url=False)[0]) from None
    for name in body:
        if name not in EMBEDDINGS_FIELDS:
            raise _unknown(name)
    return body, req, input_kind(body["input"])


def _unknown(name: str) -> InvalidRequest:
    shown = f": {name}." if _shown(name) else " (its name looks like a key, so it is not shown)."
    return InvalidRequest(
        f"Unrecognized request argument supplied{shown}",
        param=name if _shown(name) else None,
        code="unknown_parameter",
    )


def _bad_input(why: str) -> InvalidRequest:
    return InvalidRequest(f"Invalid 'input': {why}.", param="input", code="invalid_value")


def _is_tokens(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in value)
    )


def input_kind(value: Any) -> InputKind:
    """`text` (one string), `texts` (a list of strings) or `tokens` (token arrays)."""
    if isinstance(value, str):
        if not value:
            raise _bad_input("an empty string cannot be embedded")
        return "text"
    if not isinstance(value, list) or not value:
        raise _bad_input("a string or a non-empty list of strings or token arrays is expected")
    if len(value) > MAX_INPUTS:
        raise _bad_input(f"at most {MAX_INPUTS} inputs per request")
    if all(isinstance(v, str) and v for v in value):
        return "texts"
    if _is_tokens(value) or all(_is_tokens(v) for v in value):
        return "tokens"
    raise _bad_input("each item must be a non-empty string or a non-empty token array")


def estimate_tokens(value: Any) -> int:
    """A prompt-token estimate for upstreams that report none (about 4 characters a token)."""
    if isinstance(value, str):
        return max(1, len(value) // 4)
    if _is_tokens(value):
        return len(value)
    return sum(estimate_tokens(v) for v in value)


# ------------------------------------------------------------------------- route plans
def check_embeddings_plan(
    plan: list[Candidate],
    req: EmbeddingsRequest,
    kind: InputKind,
    catalog: Catalog,
    adapters: Mapping[str, Adapter[Any]],
) -> None:
    """Raise InvalidRequest unless every candidate can serve this embeddings request with
    vectors of one size. `adapters`: provider name -> its adapter."""
    sizes: list[tuple[str, int]] = []
    for i, cand in enumerate(plan):
        role = embeddings_role(adapters.get(cand["provider"]))
        if role is None:
            raise InvalidRequest(
                f"Provider {cand['provider']!r} serves no embeddings ('{cand['model']}').",
                param=plan_param(i),
                code="model_not_supported",
            )
        if kind == "tokens" and not role.embeddings_tokens:
            raise InvalidRequest(
                f"Invalid 'input': {cand['provider']} takes text only, not token arrays "
                f"('{cand['model']}').",
                param="input",
                code="unsupported_value",
            )
        size = _size(cand["model"], req.dimensions, catalog, plan_param(i))
        if size is not None:
            sizes.append((cand["model"], size))
    for model, size in sizes[1:]:
        first, first_size = sizes[0]
        if size != first_size:
            raise InvalidRequest(
                f"Fallback between embedding models of different sizes: '{first}' gives "
                f"{first_size} dimensions, '{model}' {size}.",
                param="extra.fallback_models",
                code="invalid_value",
            )


def _size(model: str, dimensions: int | None, catalog: Catalog, param: str) -> int | None:
    """The size of the vectors `model` returns for this request (None: not known)."""
    info = catalog.get(model)
    if info is None:
        return dimensions
    if "embeddings" not in info.capabilities:
        raise InvalidRequest(
            f"'{model}' is not an embedding model; use it on /v1/chat/completions.",
            param=param,
            code="model_not_supported",
        )
    if dimensions is None or dimensions == info.dimensions:
        return info.dimensions
    if "dimensions" not in info.capabilities:
        raise InvalidRequest(
            f"'{model}' returns {info.dimensions} dimensions and takes no 'dimensions'.",
            param="dimensions",
            code="unsupported_value",
        )
    if info.dimensions is not None and dimensions > info.dimensions:
        raise InvalidRequest(
            f"'{model}' returns at most {info.dimensions} dimensions.",
            param="dimensions",
            code="invalid_value",
        )
    return dimensions


# ----------------------------------------------------------------------------- vectors
def encode_base64(values: list[float]) -> str:
    """OpenAI's `base64` encoding: the vector as little-endian float32s."""
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode("ascii")


def decode_base64(text: str) -> list[float]:
    raw = base64.b64decode(text)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw[: len(raw) // 4 * 4]))
