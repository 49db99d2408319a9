"""Routes and their keys.

From a job's plan to concrete routes: each candidate expands into its provider's
deployments (base URL + key pool), ordered by the request's strategy. Which key an
attempt on a route uses: the caller's BYOK key, the route's only pool key, or a healthy
pool key chosen round-robin; and what a failing pool key's error does to it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from orbyt.shared import metrics
from orbyt.shared.catalog import Catalog, ModelInfo
from orbyt.shared.contract import Candidate
from orbyt.shared.errors import Disposition, UpstreamError
from orbyt.shared.logs import safe_name
from orbyt.shared.providers import Adapter
from orbyt.shared.routing import order_by_strategy, provider_adapters
from orbyt.shared.secret import Secret
from orbyt.shared.settings import Settings
from orbyt.worker.byok import unavailable
from orbyt.worker.health import Health
from orbyt.worker.policy import pick_key


@dataclass(frozen=True, slots=True)
class Deployment:
    """One place a provider is served from: its adapter, base URL and key pool."""

    adapter: Adapter[Any]  # each route's state goes back to its own adapter
    name: str
    base_url: str
    keys: tuple[Secret, ...]


class Deployments:
    """Each configured provider's deployments, read from the settings once per process
    (settings do not change while a worker runs; building them per request showed up in
    profiles as Secret construction and key reads on every job)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._adapters = provider_adapters(settings)  # provider name -> its adapter
        self._known: dict[str, tuple[Deployment, ...]] = {}

    def of(self, provider: str) -> tuple[Deployment, ...]:
        """Empty for a provider this worker cannot serve (not cached: the table holds
        configured providers only)."""
        known = self._known.get(provider)
        if known is not None:
            return known
        cfg = self._settings.provider(provider)
        adapter = self._adapters.get(provider)
        if adapter is None:
            return ()  # validated by the API; a worker with older configuration skips it
        if cfg.deployments:
            found = tuple(
                Deployment(adapter, dep.name, dep.base_url, _secrets(dep.keys))
                for dep in cfg.deployments
            )
        else:
            base_url = cfg.base_url or adapter.default_base_url
            found = (Deployment(adapter, "default", base_url, _secrets(cfg.keys)),)
        self._known[provider] = found
        return found


def _secrets(keys: Sequence[SecretStr]) -> tuple[Secret, ...]:
    return tuple(Secret(k.get_secret_value()) for k in keys)


@dataclass(frozen=True, slots=True)
class Route:
    cand: Candidate
    adapter: Adapter[Any]  # each route's state goes back to its own adapter
    deployment: str
    base_url: str
    keys: tuple[Secret, ...]
    info: ModelInfo | None
    # Identity for breakers and statistics: (provider, model, deployment); and the key
    # pool's. Computed once: both are read several times per attempt.
    id: str = field(init=False)
    pool: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", f"{safe_name(self.cand['model'])}@{self.deployment}")
        object.__setattr__(self, "pool", f"{self.cand['provider']}@{self.deployment}")

    @property
    def byok(self) -> bool:
        return self.cand["key_source"] == "byok"

    def can(self, capability: str) -> bool:
        return self.info is not None and capability in self.info.capabilities


def expand(plan: list[Candidate], deployments: Deployments, catalog: Catalog) -> list[Route]:
    """Every candidate of `plan` on each of its provider's deployments, in plan order."""
    routes: list[Route] = []
    for cand in plan:
        info = catalog.get(cand["model"])
        for dep in deployments.of(cand["provider"]):
            routes.append(Route(cand, dep.adapter, dep.name, dep.base_url, dep.keys, info))
    return routes


def order_routes(routes: list[Route], strategy: str, observed: Mapping[str, float]) -> list[Route]:
    return order_by_strategy(
        routes,
        strategy,
        price=lambda r: r.info.blended_price if r.info else None,
        provider=lambda r: r.cand["provider"],
        observed=lambda r: observed.get(r.id),
    )


class NoKey(Exception):
    """Every pool key of a route is cooling down or disabled."""


async def choose_key(route: Route, byok: Mapping[str, Secret], health: Health) -> Secret | None:
    """The key for the next attempt on `route`; raises NoKey or a final UpstreamError."""
    if route.byok:
        key = byok.get(route.cand["provider"])
        if key is None:
            raise unavailable("no longer available (expired or already used)")
        return key
    if len(route.keys) <= 1:
        if (
            not route.keys
            and route.adapter.needs_key
            and route.cand["provider"] == route.adapter.name
        ):
            raise UpstreamError(
                f"The gateway has no API key for provider {route.cand['provider']!r}; pass "
                "your own in extra.byok.",
                status=400,
                disposition=Disposition.FAILOVER,
                code="provider_key_missing",
            )
        return route.keys[0] if route.keys else None
    counter, healthy = await health.pool_status(route.pool, route.keys)
    choice = pick_key(counter, healthy)
    if choice is None:
        raise NoKey
    return route.keys[choice]


async def key_failed(route: Route, key: Secret | None, err: UpstreamError, health: Health) -> bool:
    """Cool down or disable a failing pool key; True if another key should be tried now."""
    if key is None or len(route.keys) <= 1:
        return False
    if err.disposition in (Disposition.AUTH, Disposition.QUOTA):
        await health.disable_key(route.pool, key)
        metrics.KEY_COOLDOWNS.labels(route.cand["provider"], "disabled").inc()
    elif err.status == 429:
        await health.cool_key(route.pool, key, err.retry_after or 1.0)
        metrics.KEY_COOLDOWNS.labels(route.cand["provider"], "rate_limited").inc()
    else:
        return False
    _, healthy = await health.pool_status(route.pool, route.keys)
    return any(healthy)


def pool_view(err: UpstreamError) -> UpstreamError:
    """A provider rejecting the gateway's own key is the gateway's problem, not the
    caller's credentials: report 502, not 401/403 (which the SDK would call an auth error)."""
    if err.disposition is not Disposition.AUTH or err.status not in (401, 403):
        return err
    return UpstreamError(
        f"{err.message} (the gateway's provider key was rejected)",
        status=502,
        disposition=Disposition.AUTH,
        type="server_error",
        code="upstream_auth_failed",
    )
