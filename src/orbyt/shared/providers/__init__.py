"""Provider adapters, discovered by module: each module here defines `ADAPTER`."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from orbyt.shared.providers.base import Adapter, StreamState, Target, UpstreamRequest

__all__ = ["Adapter", "StreamState", "Target", "UpstreamRequest", "adapters", "get_adapter"]


@cache
def adapters() -> dict[str, Adapter]:
    found: dict[str, Adapter] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_") or info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        adapter = getattr(module, "ADAPTER", None)
        if adapter is not None:
            found[adapter.name] = adapter
    return found


def get_adapter(name: str) -> Adapter | None:
    return adapters().get(name)
