"""Retry and fallback policy (DESIGN §4.1) as pure functions of the attempt history.

No I/O and no clock reads: callers pass the remaining time and a random source, so every
branch is testable directly.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from orbyt.shared.catalog import ModelInfo
from orbyt.shared.errors import Disposition, UpstreamError


class Verdict(enum.StrEnum):
    """What one attempt says about its route's health (a metrics label and a health
    script argument)."""

    OK = "ok"
    FAIL = "fail"
    NEUTRAL = "neutral"  # the request's fault, not the route's


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Step(enum.Enum):
    RETRY = "retry"  # same candidate after `delay`
    NEXT = "next"  # next candidate now
    STOP = "stop"  # give up: propagate the error


@dataclass(frozen=True, slots=True)
class Action:
    step: Step
    delay: float = 0.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    retries: int = 2  # per candidate
    base: float = 0.5
    cap: float = 8.0
    retry_after_cap: float = 10.0


def backoff(tries: int, policy: RetryPolicy, rand: Callable[[], float]) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**tries)]."""
    return float(rand() * min(policy.cap, policy.base * (2**tries)))


def next_action(
    err: UpstreamError, tries: int, remaining: float, policy: RetryPolicy, rand: Callable[[], float]
) -> Action:
    """What to do after the `tries`-th failure (0-based) of a candidate."""
    if err.disposition is Disposition.FINAL:
        return Action(Step.STOP)
    if err.disposition is not Disposition.RETRY or tries >= policy.retries:
        return Action(Step.NEXT)
    if err.retry_after is not None:
        if err.retry_after > policy.retry_after_cap or err.retry_after >= remaining:
            return Action(Step.NEXT)
        return Action(Step.RETRY, err.retry_after)
    delay = backoff(tries, policy, rand)
    if delay >= remaining:
        return Action(Step.NEXT)
    return Action(Step.RETRY, delay)


def final_error(errors: Sequence[tuple[int, UpstreamError]]) -> UpstreamError:
    """The most informative error of all attempts: the primary's own failure (the first
    route attempted), never a side effect of a later attempt such as a fallback refusing a
    parameter the primary accepted. `errors` holds (route index, error) in attempt order."""
    if not errors:
        raise ValueError("no attempts were made")
    first = errors[0][0]
    return [err for index, err in errors if index == first][-1]


def caller_may_retry(err: UpstreamError, attempts: int) -> bool:
    """`x-should-retry` of the error that ends a request after every route failed. The
    OpenAI SDKs retry whatever says `true`, on top of the gateway's own retries (Node SDK:
    36 upstream calls for one call). So once the gateway has retried or fallen back
    (`attempts` > 1), the caller is told not to, unless a `Retry-After` says when to come
    back; with one attempt (`extra.retry` 0, one route) the SDK's retry is the only one."""
    if not err.should_retry:
        return False
    return err.retry_after is not None or attempts <= 1


def verdict(err: UpstreamError) -> Verdict:
    """Only failures that say something about the route's health count against it."""
    if err.disposition in (Disposition.RETRY, Disposition.FAILOVER):
        return Verdict.FAIL
    return Verdict.NEUTRAL


def stops_walk(err: UpstreamError, primary: bool) -> bool:
    """A final refusal ends the request when the primary gives it; from a fallback it says
    only that this fallback cannot serve the request, so later ones are still tried."""
    return err.disposition is Disposition.FINAL and primary


def skip_route(breaker_state: BreakerState, last: bool) -> bool:
    """Whether a route's breaker keeps it out of this request. An open breaker is skipped
    unless the route is the last option; a half-open one needs a probe claim."""
    return breaker_state != BreakerState.CLOSED and not last


def context_allows(info: ModelInfo | None, floor: int | None) -> bool:
    """After a context-length failure, only routes with a larger known window are tried."""
    if floor is None or info is None or info.context_window is None:
        return True
    return info.context_window > floor


def pick_key(counter: int, healthy: Sequence[bool]) -> int | None:
    """Round-robin over healthy pool keys: the first healthy one from `counter`."""
    n = len(healthy)
    for step in range(n):
        i = (counter + step) % n
        if healthy[i]:
            return i
    return None


def no_route() -> UpstreamError:
    return UpstreamError(
        "No route could serve this request.",
        status=503,
        disposition=Disposition.FAILOVER,
        code="no_route",
    )


def deadline_passed() -> UpstreamError:
    return UpstreamError(
        "The request deadline passed before any provider answered.",
        status=504,
        disposition=Disposition.FAILOVER,
        code="deadline_exceeded",
    )


def pool_exhausted(provider: str) -> UpstreamError:
    return UpstreamError(
        f"{provider}: every gateway key is cooling down",
        status=429,
        disposition=Disposition.FAILOVER,
        code="pool_exhausted",
    )
