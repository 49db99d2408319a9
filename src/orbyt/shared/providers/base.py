"""The provider-adapter interface: pure translations between OpenAI's wire format and a provider's.

An adapter does no I/O. The worker builds an `UpstreamRequest` with `build_request`, sends
it, and hands the answer back to `parse_response` (non-stream), to `parse_event` (one SSE
event at a time, with the adapter's own `StreamState`) or to `map_error` (status >= 400).

`Adapter` is generic over its stream state: an `Adapter[AnthropicStreamState]` makes that
state in `new_stream_state` and takes it back in `parse_event`, so the type checker (not a
run-time check) pairs them. Code that holds adapters of several providers uses
`Adapter[Any]` and passes each one's state straight back to it.

Adapters receive the OpenAI request body as a plain dict that the API has already
validated (`shared.wire`), and return OpenAI-shaped dicts: the worker stamps `id`,
`object`, `created` and `model` on them and renders bytes. A chunk dict is
`{"choices": [{"index", "delta", "finish_reason"}], "usage"?: {...}}`; a response dict is
`{"choices": [...], "usage": {...}}`.

Fields an adapter cannot honour are rejected with `InvalidRequest(param=...)` or dropped
(documented in its module docstring). Any other exception out of an adapter is a bug.

Embeddings are an optional role (`EmbeddingsRole`): an adapter whose upstream serves them
adds `build_embeddings_request` / `parse_embeddings_response` (an `embeddings.py` module in
its subpackage) and says whether the upstream takes token arrays as input;
`embeddings_role` finds it. A parsed embeddings answer is `{"data": [{"index",
"embedding"}], "usage": {"prompt_tokens", "total_tokens"}}` in input order, each
`embedding` a list of floats or the base64 of little-endian float32s.

To add a provider: one subpackage here whose `__init__` defines a module-level `ADAPTER`
satisfying `Adapter[ItsStreamState]`, with the four roles in `request.py`, `response.py`,
`stream.py` and `errors.py`; discovery (`shared.providers.get_adapter`) finds it. An
upstream that speaks OpenAI's format subclasses `openai.dialect.OpenAIDialect` and
overrides only the hooks where it differs (see `mistral/`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

from orbyt.shared.errors import UpstreamError
from orbyt.shared.secret import Secret
from orbyt.shared.sse import SSEEvent

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Target:
    """One resolved candidate of a route plan, as the worker calls it."""

    provider: str  # adapter name, e.g. "anthropic" (or a configured upstream such as "myvllm")
    model: str  # public id, "provider/model"
    upstream_model: str  # the part after the first "/"
    base_url: str  # from configuration only, never from a request
    api_key: Secret | None
    max_output_tokens: int | None = None  # catalog default for providers that require one


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    stream: bool


@dataclass(slots=True)
class StreamState:
    """Per-stream mutable state. Adapters subclass it for their own bookkeeping."""

    done: bool = False  # the provider's terminator was seen ([DONE], message_stop)
    finish_reason: str | None = None  # last finish_reason emitted
    malformed: int = 0  # events skipped as malformed
    extra: dict[str, Any] = field(default_factory=dict)


StateT = TypeVar("StateT", bound=StreamState)


class Adapter(Protocol[StateT]):
    """One provider's translations; `StateT` is the stream state it makes and reads."""

    name: ClassVar[str]
    key_env: ClassVar[str]  # documentation: the settings field that holds pool keys
    default_base_url: ClassVar[str]
    needs_key: ClassVar[bool]

    def build_request(self, body: Json, target: Target) -> UpstreamRequest: ...

    def parse_response(self, raw: bytes, target: Target) -> Json: ...

    def new_stream_state(self, body: Json, target: Target) -> StateT: ...

    def parse_event(self, event: SSEEvent, state: StateT) -> list[Json]: ...

    def map_error(self, status: int, headers: Mapping[str, str], raw: bytes) -> UpstreamError: ...


@runtime_checkable
class EmbeddingsRole(Protocol):
    """The optional embeddings role of an adapter (POST /v1/embeddings)."""

    embeddings_tokens: ClassVar[bool]  # the upstream takes token arrays as `input`

    def build_embeddings_request(self, body: Json, target: Target) -> UpstreamRequest: ...

    def parse_embeddings_response(self, raw: bytes, target: Target) -> Json: ...


def embeddings_role(adapter: object) -> EmbeddingsRole | None:
    """The adapter's embeddings role, or None if its upstream serves no embeddings."""
    return adapter if isinstance(adapter, EmbeddingsRole) else None
