"""Route plans (DESIGN §4): resolving model ids to candidates and ordering them by strategy.

Pure functions of (request, catalog, configuration, observed stats); no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from orbyt.shared.catalog import Catalog
from orbyt.shared.contract import Candidate
from orbyt.shared.errors import InvalidRequest
from orbyt.shared.providers import Adapter, adapters
from orbyt.shared.settings import Settings
from orbyt.shared.wire import Extra

STRATEGIES = ("ordered", "cheap", "fast", "reliable")
T = TypeVar("T")


def known_providers(settings: Settings) -> dict[str, str]:
    """provider name -> adapter name, for built-in adapters and configured upstreams."""
    names = {name: name for name in adapters()}
    for name, cfg in settings.providers.items():
        names[name] = cfg.adapter or name
    return {n: a for n, a in names.items() if a in adapters()}


def provider_adapters(settings: Settings) -> dict[str, Adapter[Any]]:
    """provider name -> its adapter, for built-in adapters and configured upstreams."""
    found = adapters()
    return {name: found[a] for name, a in known_providers(settings).items()}


def byok_providers(extra: Extra | None, primary_provider: str) -> set[str]:
    if extra is None or extra.byok is None:
        return set()
    if isinstance(extra.byok, str):
        return {primary_provider}
    return set(extra.byok)


def resolve_candidate(
    model: str, catalog: Catalog, providers: Mapping[str, str], byok: set[str], param: str
) -> Candidate:
    provider, sep, rest = model.partition("/")
    if not sep or not rest:
        raise InvalidRequest(
            f"'{param}' must be 'provider/model', e.g. 'openai/gpt-5-mini'.",
            param=param,
            code="model_not_found",
        )
    if provider not in providers:
        raise InvalidRequest(
            f"Unknown provider in '{param}'. Known providers: {', '.join(sorted(providers))}.",
            param=param,
            code="model_not_found",
        )
    info = catalog.get(model)
    return Candidate(
        model=model,
        provider=provider,
        upstream=info.upstream if info else rest,
        key_source="byok" if provider in byok else "pool",
    )


def resolve_plan(
    model: str, extra: Extra | None, catalog: Catalog, settings: Settings
) -> list[Candidate]:
    providers = known_providers(settings)
    primary_provider = model.partition("/")[0]
    byok = byok_providers(extra, primary_provider)
    for name in byok:
        if name not in providers:
            raise InvalidRequest(
                "'extra.byok' names an unknown provider. Known providers: "
                f"{', '.join(sorted(providers))}.",
                param="extra.byok",
            )
    plan = [resolve_candidate(model, catalog, providers, byok, "model")]
    for i, fallback in enumerate(extra.fallback_models if extra else []):
        plan.append(
            resolve_candidate(fallback, catalog, providers, byok, f"extra.fallback_models[{i}]")
        )
    strategy = (extra.provider if extra else None) or "ordered"
    if strategy not in STRATEGIES and strategy not in providers:
        raise InvalidRequest(
            f"Invalid 'extra.provider'. Valid values: {', '.join(STRATEGIES)}, "
            f"or a provider name ({', '.join(sorted(providers))}).",
            param="extra.provider",
        )
    return plan


def order_by_strategy(
    items: Sequence[T],
    strategy: str,
    *,
    price: Callable[[T], float | None],
    provider: Callable[[T], str],
    observed: Callable[[T], float | None],
) -> list[T]:
    """Order routes by strategy (DESIGN §4.2). Sorting is stable, so ties keep the given
    order. `cheap`: blended catalog price, unknown last. `fast`/`reliable`: the observed
    statistic (TTFT or error rate) among the observed routes; unobserved ones keep their
    place. A provider name: that provider's routes first."""
    if strategy == "cheap":

        def key(item: T) -> tuple[int, float]:
            p = price(item)
            return (1, 0.0) if p is None else (0, p)

        return sorted(items, key=key)
    if strategy in ("fast", "reliable"):
        slots = [i for i, item in enumerate(items) if observed(item) is not None]
        ranked = sorted((items[i] for i in slots), key=lambda item: observed(item) or 0.0)
        out = list(items)
        for slot, item in zip(slots, ranked, strict=True):
            out[slot] = item
        return out
    if strategy in STRATEGIES:
        return list(items)
    return sorted(items, key=lambda item: 0 if provider(item) == strategy else 1)


def plan_param(index: int) -> str:
    """The request field that named a plan's `index`-th candidate (for a 400's `param`)."""
    return "model" if index == 0 else f"extra.fallback_models[{index - 1}]"


def check_chat_plan(plan: list[Candidate], catalog: Catalog) -> None:
    """An embedding model cannot answer a chat request: a 400 naming it."""
    for i, cand in enumerate(plan):
        info = catalog.get(cand["model"])
        if info is not None and "embeddings" in info.capabilities:
            raise InvalidRequest(
                f"'{cand['model']}' is an embedding model; use it on /v1/embeddings.",
                param=plan_param(i),
                code="model_not_supported",
            )
