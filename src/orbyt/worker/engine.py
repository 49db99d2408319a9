"""The routing engine (DESIGN §4): walks a job's routes with retries, fallback, circuit
breakers and pool-key rotation, and continues a cut stream on a prefill-capable route.
Decisions are pure functions in `worker.policy`; this module is the I/O loop around them.

`Walk` holds what the walk itself learns (the errors so far, the context-length floor);
what the caller has been sent belongs to the job's `Reply`. Every job kind takes the same
walk; only its request and attempt differ, and `make_attempt` is the one place a new kind
plugs in:

- chat: `Attempt` (non-stream) or `StreamAttempt`, on the route's own adapter;
- embeddings: `EmbeddingsAttempt` (non-stream), on the adapter's embeddings role;
- responses: on provider `openai` (openai adapter) OpenAI's own Responses API
  (`NativeAttempt` / `NativeStreamAttempt`), elsewhere the chat attempts, whose replies and
  renderers (`worker.responses`) speak Responses.

A little over 300 lines: the walk and the one switch by job kind belong together.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
import time
from collections.abc import Coroutine, Mapping
from typing import Any

from orbyt.shared import metrics, tracing
from orbyt.shared.contract import EMBEDDINGS, ChatJob, job_kind
from orbyt.shared.errors import Disposition, UpstreamError
from orbyt.shared.providers import Target
from orbyt.shared.providers.openai.responses import native_request
from orbyt.shared.secret import Secret
from orbyt.worker.attempts import Attempt, StreamAttempt, build_request, name_provider, target_for
from orbyt.worker.byok import scrub_error
from orbyt.worker.context import WorkerContext
from orbyt.worker.deployments import (
    NoKey,
    Route,
    choose_key,
    expand,
    key_failed,
    order_routes,
    pool_view,
)
from orbyt.worker.embeddings import EmbeddingsAttempt, build_embeddings_request
from orbyt.worker.health import BreakerView
from orbyt.worker.native import NativeAttempt, NativeStreamAttempt, is_native
from orbyt.worker.policy import (
    BreakerState,
    RetryPolicy,
    Step,
    Verdict,
    caller_may_retry,
    context_allows,
    deadline_passed,
    final_error,
    next_action,
    no_route,
    pool_exhausted,
    skip_route,
    stops_walk,
    verdict,
)
from orbyt.worker.reply import Reply
from orbyt.worker.responses import ResponsesReply
from orbyt.worker.upstream import Upstream

log = logging.getLogger("orbyt.worker.engine")


class Outcome(enum.Enum):
    """How the attempts on one route ended."""

    DONE = "done"  # the route answered
    CUT = "cut"  # it failed after content reached the caller
    NEXT = "next"  # try the next route
    STOP = "stop"  # no more attempts on this route; the walk may end (see `Walk._ends`)


async def run_chat(
    ctx: WorkerContext, job: ChatJob, reply: Reply, byok: Mapping[str, Secret]
) -> None:
    """Serve `job` over its routes; every outcome ends in a frame through `reply`."""
    await Walk(ctx, job, reply, byok).run()


class Walk:
    def __init__(
        self, ctx: WorkerContext, job: ChatJob, reply: Reply, byok: Mapping[str, Secret]
    ) -> None:
        self.ctx = ctx
        self.job = job
        self.reply = reply
        self.byok = byok
        s = ctx.settings
        self.policy = RetryPolicy(job["retry"], s.backoff_base, s.backoff_cap, s.retry_after_cap)
        self.errors: list[tuple[int, UpstreamError]] = []  # (route index, error)
        self.context_floor: int | None = None  # after a context-length failure

    async def run(self) -> None:
        routes = await self._routes()
        health = self.ctx.health
        breakers = await health.breakers([r.id for r in routes]) if len(routes) > 1 else {}
        for index, route in enumerate(routes):
            last = index == len(routes) - 1
            if not context_allows(route.info, self.context_floor):
                continue
            retries = await self._admit(route, breakers, last)
            if retries is None:
                continue
            outcome = await self._walk_route(route, index, retries, last)
            if outcome is Outcome.DONE:
                return
            if outcome is Outcome.CUT:
                return await self._continue_or_fail(routes, index)
            if self._ends(route, index, outcome):
                break
        if not self.errors:
            self.errors.append((0, no_route()))
        err = final_error(self.errors)
        err.headers["x-should-retry"] = str(caller_may_retry(err, self.reply.attempts)).lower()
        await self.reply.fail(err)

    async def _routes(self) -> list[Route]:
        ctx, strategy = self.ctx, self.job["strategy"]
        routes = expand(self.job["plan"], ctx.deployments, ctx.catalog)
        observed: dict[str, float] = {}
        if strategy in ("fast", "reliable") and len(routes) > 1:
            observed = await ctx.health.stats(
                [r.id for r in routes], "ttft" if strategy == "fast" else "err"
            )
        return order_routes(routes, strategy, observed)

    async def _admit(
        self, route: Route, breakers: dict[str, BreakerView], last: bool
    ) -> int | None:
        """The retries `route` gets (0 for a half-open probe), or None if its breaker keeps
        it out of this request."""
        view = None if route.byok else breakers.get(route.id)
        if view is None:
            return self.job["retry"]
        state = view.state(_now_ms())
        metrics.child(metrics.BREAKER_OPEN, route.id).set(0 if state == BreakerState.CLOSED else 1)
        if not skip_route(state, last):
            return self.job["retry"]
        if state == BreakerState.OPEN or not await self.ctx.health.claim_probe(route.id, _now_ms()):
            return None
        return 0

    def _ends(self, route: Route, index: int, outcome: Outcome) -> bool:
        """After a route failed: note a context-length floor; True if the walk ends."""
        if self.errors and self.errors[-1][1].disposition is Disposition.CONTEXT:
            self.context_floor = route.info.context_window if route.info else self.context_floor
        if outcome is not Outcome.STOP:
            return False
        err = self.errors[-1][1]
        return err.disposition is not Disposition.FINAL or stops_walk(
            err, self.errors[0][0] == index
        )

    async def _walk_route(self, route: Route, index: int, retries: int, last: bool) -> Outcome:
        """Attempts on one route, with retries and pool-key rotation."""
        tries = 0
        policy = dataclasses.replace(self.policy, retries=retries)
        health = self.ctx.health
        while True:
            key: Secret | None = None
            remaining = self.job["deadline"] - time.time()
            if remaining <= 0:
                self.errors.append((index, deadline_passed()))
                return Outcome.STOP
            try:
                key = await choose_key(route, self.byok, health)
                await self._attempt(route, key, self.job["body"], self._limit(remaining, last))
                self._record(route, Verdict.OK, self.reply.ttft_ms)
                return Outcome.DONE
            except NoKey:
                self.errors.append((index, pool_exhausted(route.cand["provider"])))
                return Outcome.NEXT
            except UpstreamError as exc:
                err = exc
            self.errors.append((index, err if route.byok else pool_view(err)))
            if not err.before_content:
                return Outcome.CUT
            if not route.byok and await key_failed(route, key, err, health):
                continue  # another pool key of this route, at once
            self._record(route, verdict(err), None)
            remaining = self.job["deadline"] - time.time()  # the attempt itself took time
            action = next_action(err, tries, remaining, policy, self.ctx.rand.random)
            if action.step is not Step.RETRY:
                if action.step is Step.NEXT:
                    metrics.child(metrics.FALLBACKS, route.cand["provider"]).inc()
                return Outcome.NEXT if action.step is Step.NEXT else Outcome.STOP
            metrics.child(metrics.RETRIES, route.cand["provider"]).inc()
            tries += 1
            await asyncio.sleep(action.delay)

    def _limit(self, remaining: float, last: bool) -> float:
        """The first-token limit (stream) or the whole-answer limit (non-stream)."""
        if last:
            return remaining
        s = self.ctx.settings
        return min(s.ttft_timeout if self.job["stream"] else s.nonstream_timeout, remaining)

    async def _attempt(
        self,
        route: Route,
        key: Secret | None,
        body: dict[str, Any],
        limit: float,
        continuation: bool = False,
    ) -> None:
        """One attempt (in its own span when tracing is on): the boundary every upstream
        error leaves through, scrubbed (some upstreams quote the key they rejected) and
        naming the provider as declared. The bill of a stream cut after content goes to the
        reply."""
        ctx, reply, job = self.ctx, self.reply, self.job
        attempt: Attempt | None = None
        try:
            target = target_for(route, key)
            stall = ctx.settings.stall_timeout
            attempt = make_attempt(reply, job, ctx.client, route, target, body, stall, continuation)
            ctx.jobs.check(job["rid"])  # a cancel that raced the claim
            reply.count_attempt()
            run = attempt.run(limit)
            if tracing.TRACER is not None:
                run = tracing.traced(route.cand, continuation, attempt, run)
            await run
        except UpstreamError as err:  # some upstreams quote the key they rejected
            scrub_error(err, key, byok=route.byok)
            name_provider(err, route)
            if isinstance(attempt, StreamAttempt) and not err.before_content:
                reply.cut(attempt.bill())
            raise

    async def _continue_or_fail(self, routes: list[Route], index: int) -> None:
        """Content already reached the caller and the stream broke. Continue on a later
        prefill-capable route with the partial text as assistant prefill, so the caller gets
        one seamless answer; otherwise end with an in-band error naming the original
        failure."""
        cut = self.errors[-1][1]
        self._record(routes[index], Verdict.FAIL, None)
        partial = "".join(self.reply.text)
        if partial and not self.reply.tool_calls_sent:
            later = next((r for r in routes[index + 1 :] if r.can("prefill")), None)
            if later is not None and await self._continue_on(later, partial):
                return
        cut.before_content = False
        await self.reply.fail(cut)

    async def _continue_on(self, route: Route, partial: str) -> bool:
        body = dict(self.job["body"])
        body["messages"] = [*body["messages"], {"role": "assistant", "content": partial}]
        remaining = self.job["deadline"] - time.time()
        try:
            key = await choose_key(route, self.byok, self.ctx.health)
            limit = min(self.ctx.settings.ttft_timeout, remaining)
            await self._attempt(route, key, body, limit, continuation=True)
            return True
        except (UpstreamError, NoKey) as exc:
            log.info("prefill continuation on %s failed: %s", route.id, type(exc).__name__)
            return False

    def _record(self, route: Route, outcome: Verdict, ttft_ms: float | None) -> None:
        ctx, provider = self.ctx, route.cand["provider"]
        model = metrics.model_label(ctx.catalog, route.cand["model"])
        metrics.child(metrics.WORKER_ATTEMPTS, model, provider, outcome.value).inc()
        if ttft_ms is not None and outcome is Verdict.OK:
            metrics.child(metrics.UPSTREAM_TTFT, provider).observe(ttft_ms / 1000)
        if route.byok:  # a caller's key says nothing about the provider's health
            return
        ctx.spawn(_safe(ctx.health.record(route.id, outcome, ttft_ms, _now_ms())))


async def _safe(coro: Coroutine[Any, Any, None]) -> None:
    try:
        await coro
    except Exception as exc:  # health bookkeeping must never fail a request
        log.warning("route health update failed: %s", type(exc).__name__)


def _now_ms() -> int:
    return int(time.time() * 1000)


def make_attempt(
    reply: Reply,
    job: ChatJob,
    client: Upstream,
    route: Route,
    target: Target,
    body: dict[str, Any],
    stall_timeout: float,
    continuation: bool,
) -> Attempt:
    """The attempt for `route` (the upstream request built; nothing sent yet)."""
    if job_kind(job) == EMBEDDINGS:
        req = build_embeddings_request(route, target, body)
        return EmbeddingsAttempt(reply, job, client, route, target, req)
    if isinstance(reply, ResponsesReply) and is_native(route, job):
        req = native_request(job["responses"]["request"], target)
        if job["stream"]:
            return NativeStreamAttempt(reply, job, client, route, target, req, stall_timeout)
        return NativeAttempt(reply, job, client, route, target, req)
    req = build_request(route, target, body)
    if job["stream"]:
        return StreamAttempt(
            reply, job, client, route, target, req, stall_timeout, continuation, body
        )
    return Attempt(reply, job, client, route, target, req)
