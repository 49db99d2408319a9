"""Provider adapters, discovered by subpackage: each provider's `__init__` defines `ADAPTER`.

Every provider has the same layout (`anthropic/`, `google/`, `mistral/`, `deepseek/`,
`openai/`, `mock/`): `__init__.py` holds the field-mapping table as its docstring and the
`ADAPTER`; `request.py` builds the upstream request from an OpenAI body; `response.py`
turns a non-stream answer into an OpenAI dict; `stream.py` holds the stream state and
event parsing; `errors.py` maps an error status/body to an `UpstreamError`. OpenAI-shaped
upstreams (OpenAI and configured compatibles, Mistral, DeepSeek, mock) extend the base in
`openai/dialect.py` and override only what differs. The interface is in `base.py`.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from typing import Any

from orbyt.shared.providers.base import Adapter, StateT, StreamState, Target, UpstreamRequest

__all__ = [
    "Adapter",
    "StateT",
    "StreamState",
    "Target",
    "UpstreamRequest",
    "adapters",
    "get_adapter",
]


@cache
def adapters() -> dict[str, Adapter[Any]]:
    """Every built-in adapter by name: the `ADAPTER` of each subpackage (or module) here."""
    found: dict[str, Adapter[Any]] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_") or info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        adapter = getattr(module, "ADAPTER", None)
        if adapter is not None:
            found[adapter.name] = adapter
    return found


def get_adapter(name: str) -> Adapter[Any] | None:
    return adapters().get(name)
