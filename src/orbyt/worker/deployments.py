"""From a job's plan to concrete routes: each candidate expands into its provider's
deployments (base URL + key pool), ordered by the request's strategy."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from orbyt.shared.catalog import Catalog, ModelInfo
from orbyt.shared.contract import Candidate
from orbyt.shared.logs import safe_name
from orbyt.shared.providers import Adapter
from orbyt.shared.routing import order_by_strategy
from orbyt.shared.secret import Secret
from orbyt.shared.settings import Settings


@dataclass(frozen=True, slots=True)
class Route:
    cand: Candidate
    adapter: Adapter[Any]  # each route's state goes back to its own adapter
    deployment: str
    base_url: str
    keys: tuple[Secret, ...]
    info: ModelInfo | None

    @property
    def id(self) -> str:
        """Identity for breakers and statistics: (provider, model, deployment)."""
        return f"{safe_name(self.cand['model'])}@{self.deployment}"

    @property
    def pool(self) -> str:
        return f"{self.cand['provider']}@{self.deployment}"

    @property
    def byok(self) -> bool:
        return self.cand["key_source"] == "byok"

    def can(self, capability: str) -> bool:
        return self.info is not None and capability in self.info.capabilities


def expand(
    plan: list[Candidate],
    settings: Settings,
    catalog: Catalog,
    adapters: Mapping[str, Adapter[Any]],
) -> list[Route]:
    routes: list[Route] = []
    for cand in plan:
        cfg = settings.provider(cand["provider"])
        adapter = adapters.get(cfg.adapter or cand["provider"])
        if adapter is None:
            continue  # validated by the API; a worker with older configuration skips it
        info = catalog.get(cand["model"])
        if cfg.deployments:
            for dep in cfg.deployments:
                routes.append(
                    Route(
                        cand,
                        adapter,
                        dep.name,
                        dep.base_url,
                        tuple(Secret(k.get_secret_value()) for k in dep.keys),
                        info,
                    )
                )
        else:
            routes.append(
                Route(
                    cand,
                    adapter,
                    "default",
                    cfg.base_url or adapter.default_base_url,
                    tuple(Secret(k.get_secret_value()) for k in cfg.keys),
                    info,
                )
            )
    return routes


def order_routes(routes: list[Route], strategy: str, observed: Mapping[str, float]) -> list[Route]:
    return order_by_strategy(
        routes,
        strategy,
        price=lambda r: r.info.blended_price if r.info else None,
        provider=lambda r: r.cand["provider"],
        observed=lambda r: observed.get(r.id),
    )
