"""Which key an attempt on a route uses: the caller's BYOK key, the route's only pool key, or
a healthy pool key chosen round-robin; and what a failing pool key's error does to it."""

from __future__ import annotations

from collections.abc import Mapping

from orbyt.shared import metrics
from orbyt.shared.errors import Disposition, UpstreamError
from orbyt.shared.secret import Secret
from orbyt.worker.byok import unavailable
from orbyt.worker.deployments import Route
from orbyt.worker.health import Health
from orbyt.worker.policy import pick_key


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
