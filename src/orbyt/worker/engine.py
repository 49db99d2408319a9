"""The routing engine (DESIGN §4): walks a job's routes with retries, fallback, circuit
breakers and pool-key rotation, and continues a cut stream on a prefill-capable route.
Decisions are pure functions in `worker.policy`; this module is the I/O loop around them."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from orbyt.shared import metrics
from orbyt.shared.catalog import Catalog
from orbyt.shared.contract import ChatJob
from orbyt.shared.errors import Disposition, OrbytError, UpstreamError
from orbyt.shared.providers import Target, UpstreamRequest, adapters
from orbyt.shared.secret import Secret
from orbyt.shared.settings import Settings
from orbyt.worker.attempts import Run, once_attempt, stream_attempt
from orbyt.worker.byok import scrub_error
from orbyt.worker.deployments import Route, expand, order_routes
from orbyt.worker.health import Health
from orbyt.worker.policy import (
    RetryPolicy,
    Step,
    context_allows,
    final_error,
    next_action,
    pick_key,
    skip_route,
    stops_walk,
)
from orbyt.worker.publisher import Publisher
from orbyt.worker.upstream import Upstream

log = logging.getLogger("orbyt.worker.engine")


@dataclass
class Deps:
    settings: Settings
    catalog: Catalog
    client: Upstream
    health: Health
    worker_id: str
    rand: random.Random = field(default_factory=random.Random)
    background: set[asyncio.Task[Any]] = field(default_factory=set)

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)


class NoKey(Exception):
    """Every pool key of a route is cooling down or disabled."""


async def send_error(pub: Publisher, err: OrbytError, attempts: int) -> None:
    await pub.error(
        {"status": err.status, "headers": err.response_headers(), "attempts": attempts},
        orjson.dumps(err.body()),
    )


async def run_chat(job: ChatJob, pub: Publisher, deps: Deps, byok: dict[str, Secret]) -> None:
    settings = deps.settings
    run = Run(
        job, pub, deps.client, f"chatcmpl-{job['rid']}", int(time.time()), settings.stall_timeout
    )
    routes = expand(job["plan"], settings, deps.catalog, adapters())
    routes = await _ordered(routes, job["strategy"], deps)
    breakers = await deps.health.breakers([r.id for r in routes]) if len(routes) > 1 else {}
    policy = RetryPolicy(
        job["retry"], settings.backoff_base, settings.backoff_cap, settings.retry_after_cap
    )
    errors: list[tuple[int, UpstreamError]] = []
    context_floor: int | None = None
    for index, route in enumerate(routes):
        last = index == len(routes) - 1
        if not context_allows(route.info, context_floor):
            continue
        probe = False
        if not route.byok and route.id in breakers:
            state = breakers[route.id].state(_now_ms())
            metrics.BREAKER_OPEN.labels(route.id).set(0 if state == "closed" else 1)
            if skip_route(state, last):
                if state == "open" or not await deps.health.claim_probe(route.id, _now_ms()):
                    continue
                probe = True
        outcome = await _walk_route(
            run,
            route,
            index,
            deps,
            policy,
            byok,
            errors,
            retries=0 if probe else job["retry"],
            last=last,
        )
        if outcome == "done":
            return
        if outcome == "cut":
            return await _continue_or_fail(run, routes, index, deps, byok, errors)
        if errors and errors[-1][1].disposition is Disposition.CONTEXT:
            context_floor = route.info.context_window if route.info else context_floor
        if outcome == "stop" and (
            errors[-1][1].disposition is not Disposition.FINAL
            or stops_walk(errors[-1][1], errors[0][0] == index)
        ):
            break
    if not errors:
        errors.append(
            (
                0,
                UpstreamError(
                    "No route could serve this request.",
                    status=503,
                    disposition=Disposition.FAILOVER,
                    code="no_route",
                ),
            )
        )
    await send_error(pub, final_error(errors), run.attempts)


async def _ordered(routes: list[Route], strategy: str, deps: Deps) -> list[Route]:
    observed: dict[str, float] = {}
    if strategy in ("fast", "reliable") and len(routes) > 1:
        observed = await deps.health.stats(
            [r.id for r in routes], "ttft" if strategy == "fast" else "err"
        )
    return order_routes(routes, strategy, observed)


def _now_ms() -> int:
    return int(time.time() * 1000)


async def _walk_route(
    run: Run,
    route: Route,
    index: int,
    deps: Deps,
    policy: RetryPolicy,
    byok: dict[str, Secret],
    errors: list[tuple[int, UpstreamError]],
    retries: int,
    last: bool,
) -> str:
    """Attempts on one route: 'done', 'cut' (failed after content), 'next' or 'stop'."""
    tries = 0
    policy = RetryPolicy(retries, policy.base, policy.cap, policy.retry_after_cap)
    while True:
        key: Secret | None = None
        remaining = run.job["deadline"] - time.time()
        if remaining <= 0:
            errors.append(
                (
                    index,
                    UpstreamError(
                        "The request deadline passed before any provider answered.",
                        status=504,
                        disposition=Disposition.FAILOVER,
                        code="deadline_exceeded",
                    ),
                )
            )
            return "stop"
        try:
            key = await _key(route, byok, deps)
            await _attempt(run, route, key, deps, remaining, last)
            _record(deps, route, "ok", run.ttft_ms)
            return "done"
        except NoKey:
            errors.append(
                (
                    index,
                    UpstreamError(
                        f"{route.cand['provider']}: every gateway key is cooling down",
                        status=429,
                        disposition=Disposition.FAILOVER,
                        code="pool_exhausted",
                    ),
                )
            )
            return "next"
        except UpstreamError as exc:
            err = exc
        errors.append((index, _pool_view(err) if not route.byok else err))
        if not err.before_content:
            return "cut"
        if not route.byok and await _key_failed(route, key, err, deps):
            continue  # another pool key of this route, at once
        _record(deps, route, _outcome(err), None)
        remaining = run.job["deadline"] - time.time()  # the attempt itself took time
        action = next_action(err, tries, remaining, policy, deps.rand.random)
        if action.step is Step.STOP:
            return "stop"
        if action.step is Step.NEXT:
            metrics.FALLBACKS.labels(route.cand["provider"]).inc()
            return "next"
        metrics.RETRIES.labels(route.cand["provider"]).inc()
        tries += 1
        await asyncio.sleep(action.delay)


def _pool_view(err: UpstreamError) -> UpstreamError:
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


def _outcome(err: UpstreamError) -> str:
    """Only failures that say something about the route's health count against it."""
    return "fail" if err.disposition in (Disposition.RETRY, Disposition.FAILOVER) else "neutral"


def _record(deps: Deps, route: Route, outcome: str, ttft_ms: float | None) -> None:
    provider = route.cand["provider"]
    metrics.WORKER_ATTEMPTS.labels(
        metrics.model_label(deps.catalog, route.cand["model"]), provider, outcome
    ).inc()
    if ttft_ms is not None and outcome == "ok":
        metrics.UPSTREAM_TTFT.labels(provider).observe(ttft_ms / 1000)
    if route.byok:  # a caller's key says nothing about the provider's health
        return
    deps.spawn(_safe(deps.health.record(route.id, outcome, ttft_ms, _now_ms())))


async def _safe(coro: Any) -> None:
    try:
        await coro
    except Exception as exc:  # health bookkeeping must never fail a request
        log.warning("route health update failed: %s", type(exc).__name__)


async def _key(route: Route, byok: dict[str, Secret], deps: Deps) -> Secret | None:
    if route.byok:
        key = byok.get(route.cand["provider"])
        if key is None:
            raise UpstreamError(
                "The BYOK key for this request is no longer available "
                "(expired or already used); send the request again.",
                status=400,
                disposition=Disposition.FINAL,
                code="byok_key_unavailable",
            )
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
    counter, healthy = await deps.health.pool_status(route.pool, route.keys)
    choice = pick_key(counter, healthy)
    if choice is None:
        raise NoKey
    return route.keys[choice]


async def _key_failed(route: Route, key: Secret | None, err: UpstreamError, deps: Deps) -> bool:
    """Cool down or disable a failing pool key; True if another key should be tried now."""
    if key is None or len(route.keys) <= 1:
        return False
    if err.disposition in (Disposition.AUTH, Disposition.QUOTA):
        await deps.health.disable_key(route.pool, key)
        metrics.KEY_COOLDOWNS.labels(route.cand["provider"], "disabled").inc()
    elif err.status == 429:
        await deps.health.cool_key(route.pool, key, err.retry_after or 1.0)
        metrics.KEY_COOLDOWNS.labels(route.cand["provider"], "rate_limited").inc()
    else:
        return False
    _, healthy = await deps.health.pool_status(route.pool, route.keys)
    return any(healthy)


def _target(route: Route, key: Secret | None) -> Target:
    return Target(
        provider=route.cand["provider"],
        model=route.cand["model"],
        upstream_model=route.cand["upstream"],
        base_url=route.base_url,
        api_key=key,
        max_output_tokens=route.info.max_output_tokens if route.info else None,
    )


def _build(route: Route, target: Target, body: dict[str, Any]) -> UpstreamRequest:
    try:
        return route.adapter.build_request(body, target)
    except UpstreamError:
        raise
    except OrbytError as exc:  # this provider cannot express the request: try the next one
        raise UpstreamError(
            exc.message,
            status=exc.status,
            type=exc.type,
            code=exc.code,
            param=exc.param,
            disposition=Disposition.FAILOVER,
        ) from None


async def _attempt(
    run: Run, route: Route, key: Secret | None, deps: Deps, remaining: float, last: bool
) -> None:
    target = _target(route, key)
    req = _build(route, target, run.job["body"])
    run.attempts += 1
    settings = deps.settings
    try:
        if run.job["stream"]:
            first = remaining if last else min(settings.ttft_timeout, remaining)
            await stream_attempt(run, route, target, req, first)
        else:
            limit = remaining if last else min(settings.nonstream_timeout, remaining)
            await once_attempt(run, route, target, req, limit)
    except UpstreamError as err:  # some upstreams quote the key they rejected
        scrub_error(err, key, byok=route.byok)
        raise


async def _continue_or_fail(
    run: Run,
    routes: list[Route],
    index: int,
    deps: Deps,
    byok: dict[str, Secret],
    errors: list[tuple[int, UpstreamError]],
) -> None:
    """Content already reached the caller and the stream broke. Continue on a later
    prefill-capable route with the partial text as assistant prefill, so the caller gets
    one seamless answer; otherwise end with an in-band error naming the original failure."""
    cut = errors[-1][1]
    _record(deps, routes[index], "fail", None)
    partial = "".join(run.text)
    if partial and not run.tool_calls_sent:
        for route in routes[index + 1 :]:
            if not route.can("prefill"):
                continue
            body = dict(run.job["body"])
            body["messages"] = [*body["messages"], {"role": "assistant", "content": partial}]
            remaining = run.job["deadline"] - time.time()
            try:
                key = await _key(route, byok, deps)
                target = _target(route, key)
                req = _build(route, target, body)
                run.attempts += 1
                await stream_attempt(
                    run,
                    route,
                    target,
                    req,
                    min(deps.settings.ttft_timeout, remaining),
                    continuation=True,
                )
                return
            except (UpstreamError, NoKey) as exc:
                log.info("prefill continuation on %s failed: %s", route.id, type(exc).__name__)
                break
    cut.before_content = False
    await send_error(run.pub, cut, run.attempts)
