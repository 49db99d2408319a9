"""One attempt against one route: send, read, normalise, publish. Raises UpstreamError on
any failure (with `before_content` telling whether the caller has seen content yet)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass, field
from typing import Any

from orbyt.shared.contract import ChatJob
from orbyt.shared.errors import Disposition, UpstreamError
from orbyt.shared.providers import StreamState, Target, UpstreamRequest
from orbyt.shared.sse import SSEDecoder, SSEEvent
from orbyt.worker.deployments import Route
from orbyt.worker.publisher import Publisher
from orbyt.worker.render import ChunkRenderer, completion_body
from orbyt.worker.upstream import Upstream, UpstreamResponse, open_response, read_body


@dataclass
class Run:
    """Everything one job carries across its attempts."""

    job: ChatJob
    pub: Publisher
    client: Upstream
    completion_id: str
    created: int
    stall_timeout: float
    attempts: int = 0
    sent: bool = False  # content has reached the caller
    text: list[str] = field(default_factory=list)  # plain text sent so far
    tool_calls_sent: bool = False
    ttft_ms: float | None = None  # of the last successful attempt (stream only)


def route_meta(run: Run, route: Route, usage: Any = None) -> dict[str, Any]:
    out = {
        "model": route.cand["model"],
        "provider": route.cand["provider"],
        "attempts": run.attempts,
        "key_source": route.cand["key_source"],
    }
    if usage is not None:
        out["usage"] = usage
    return out


async def once_attempt(
    run: Run, route: Route, target: Target, req: UpstreamRequest, limit: float
) -> None:
    provider = route.cand["provider"]
    try:
        async with asyncio.timeout(limit):
            async with open_response(run.client, req, provider) as resp:
                raw = await read_body(resp, provider)
    except TimeoutError:
        raise UpstreamError(
            f"{provider}: upstream timed out",
            status=504,
            disposition=Disposition.FAILOVER,
            code="upstream_timeout",
        ) from None
    if resp.status_code >= 400:
        raise route.adapter.map_error(resp.status_code, resp.headers, raw)
    parsed = route.adapter.parse_response(raw, target)
    payload = completion_body(run.completion_id, run.created, route.cand["model"], parsed)
    await run.pub.done(route_meta(run, route, parsed.get("usage")), payload)


async def stream_attempt(
    run: Run,
    route: Route,
    target: Target,
    req: UpstreamRequest,
    first_limit: float,
    continuation: bool = False,
) -> None:
    """Stream one attempt. Before the first content token nothing reaches the caller, so a
    failure there can be retried invisibly; `continuation` streams a prefill continuation
    of an answer already partly sent."""
    adapter = route.adapter
    state = adapter.new_stream_state(run.job["body"], target)
    renderer = ChunkRenderer(
        run.completion_id,
        run.created,
        route.cand["model"],
        continuation=continuation,
        include_usage=run.job["include_usage"],
    )
    loop = asyncio.get_running_loop()
    started = loop.time()
    pending: list[bytes] = []
    provider = route.cand["provider"]
    try:
        async with asyncio.timeout_at(started + first_limit) as timer:
            async with open_response(run.client, req, provider) as resp:
                if resp.status_code >= 400:
                    raise adapter.map_error(
                        resp.status_code, resp.headers, await read_body(resp, provider)
                    )
                await _relay(run, route, resp, state, renderer, pending, timer, started)
    except TimeoutError:
        if not _finished(run, renderer):  # else: complete, only the terminator is missing
            what = (
                "stalled mid-stream" if renderer.content_started else "sent no first token in time"
            )
            raise UpstreamError(
                f"{provider}: upstream {what}",
                status=504,
                disposition=Disposition.FAILOVER,
                code="upstream_timeout",
                before_content=not run.sent,
            ) from None
    except _BodyCut:
        if not _finished(run, renderer):  # else: complete, only the terminator is missing
            raise stream_cut(provider, not run.sent, "connection lost") from None
    except UpstreamError as err:
        err.before_content = not run.sent
        raise
    if not (state.done or renderer.finish_reason):
        raise stream_cut(provider, not run.sent)
    if not run.sent:  # an empty answer is still an answer
        await _emit(run, route, renderer, pending, [], started, force=True)
    tail = renderer.usage_chunk() if run.job["include_usage"] and renderer.usage else b""
    await run.pub.done(route_meta(run, route, renderer.usage), tail)


class _BodyCut(Exception):
    """The connection failed while the response body was being read."""


async def _body(resp: UpstreamResponse) -> AsyncGenerator[bytes, None]:
    """The raw body; a transport failure while reading it becomes `_BodyCut`, told apart
    from the UpstreamErrors that adapters raise for in-stream error events."""
    try:
        async for raw in resp.aiter_raw():
            yield raw
    except UpstreamError:
        raise _BodyCut from None


async def _relay(
    run: Run,
    route: Route,
    resp: UpstreamResponse,
    state: StreamState,
    renderer: ChunkRenderer,
    pending: list[bytes],
    timer: asyncio.Timeout,
    started: float,
) -> None:
    """Read the upstream body, normalise and publish it. `timer` is the first-token limit
    until content starts, then the stall limit, re-armed on every read."""
    decoder = SSEDecoder()
    loop = asyncio.get_running_loop()
    deadline = started + (run.job["deadline"] - time.time())
    async with contextlib.aclosing(_body(resp)) as body:
        async for raw in body:
            await _publish(run, route, state, renderer, pending, started, decoder.feed(raw))
            if state.done:
                return
            if renderer.content_started:
                _rearm(timer, loop.time(), _quiet_limit(run, renderer), deadline)
    await _publish(run, route, state, renderer, pending, started, decoder.flush())


def _rearm(timer: asyncio.Timeout, now: float, quiet: float, deadline: float) -> None:
    """Push the stall limit out to `quiet` after now. Re-arming a timer costs a heap
    operation, so a read that leaves it at least 90% armed skips it: a stall is still
    caught between 0.9 and 1.0 times the limit, and a shorter limit applies at once."""
    target = min(now + quiet, deadline)
    when = timer.when()
    if when is None or when > target or when < target - 0.1 * quiet:
        timer.reschedule(target)


async def _publish(
    run: Run,
    route: Route,
    state: StreamState,
    renderer: ChunkRenderer,
    pending: list[bytes],
    started: float,
    events: Iterable[SSEEvent],
) -> None:
    """Normalise and publish one read's events. Whatever precedes an in-stream error event
    is published before the error propagates: it is part of the answer either way, however
    the bytes happened to be split into reads."""
    out: list[bytes] = []
    try:
        for ev in events:
            out.extend(b for c in route.adapter.parse_event(ev, state) if (b := renderer.render(c)))
    except UpstreamError:
        if out:
            await _emit(run, route, renderer, pending, out, started)
        raise
    if out:
        await _emit(run, route, renderer, pending, out, started)


# Once the finish reason is in, the answer is complete: the upstream gets only a short grace
# for the usage chunk and the terminator, not the whole stall timeout.
FINISH_GRACE = 1.0  # finish reason seen, usage not yet
TAIL_GRACE = 0.2  # finish reason and usage seen: only the terminator is missing


def _finished(run: Run, renderer: ChunkRenderer) -> bool:
    """The answer is complete even if the terminator never comes. With n > 1 one choice's
    finish reason says nothing about the others, so only the terminator counts."""
    return renderer.finish_reason is not None and run.job["body"].get("n") in (None, 1)


def _quiet_limit(run: Run, renderer: ChunkRenderer) -> float:
    """How long the upstream may stay silent from now on."""
    if not _finished(run, renderer):
        return run.stall_timeout
    return min(run.stall_timeout, TAIL_GRACE if renderer.usage else FINISH_GRACE)


def stream_cut(provider: str, before_content: bool, cause: str | None = None) -> UpstreamError:
    """The upstream stream broke off (connection dropped mid-body, or the body ended with
    neither terminator nor finish reason). Named the same either way, so a caller can tell
    a cut answer from any other failure."""
    why = f" ({cause})" if cause else ""
    return UpstreamError(
        f"{provider}: the upstream stream ended before the answer was complete{why}",
        status=502,
        disposition=Disposition.RETRY,
        code="upstream_stream_cut",
        before_content=before_content,
    )


async def _emit(
    run: Run,
    route: Route,
    renderer: ChunkRenderer,
    pending: list[bytes],
    out: list[bytes],
    started: float,
    force: bool = False,
) -> None:
    """Publish rendered bytes; hold them back until the first content token."""
    run.text.extend(renderer.take_text())
    run.tool_calls_sent = run.tool_calls_sent or not renderer.plain_text_only
    if run.sent:
        await run.pub.delta(b"".join(out))
        return
    pending.extend(out)
    if renderer.content_started or force:
        run.sent = True
        run.ttft_ms = (asyncio.get_running_loop().time() - started) * 1000
        await run.pub.delta(b"".join(pending), route_meta(run, route))
        pending.clear()
