"""One attempt against one route: send, read, normalise, publish. Raises UpstreamError on
any failure (with `before_content` telling whether the caller has seen content yet)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from shared.contract import ChatJob
from shared.errors import Disposition, UpstreamError
from shared.providers import Target, UpstreamRequest
from shared.sse import SSEDecoder
from worker.publisher import Publisher
from worker.render import ChunkRenderer, completion_body
from worker.routes import Route
from worker.upstream import open_response, read_body, transport_error


@dataclass
class Run:
    """Everything one job carries across its attempts."""

    job: ChatJob
    pub: Publisher
    client: httpx.AsyncClient
    completion_id: str
    created: int
    stall_timeout: float
    attempts: int = 0
    sent: bool = False  # content has reached the caller
    text: list[str] = field(default_factory=list)  # plain text sent so far
    tool_calls_sent: bool = False
    ttft_ms: float | None = None  # of the last successful attempt (stream only)


def route_meta(run: Run, route: Route, usage: Any = None) -> dict[str, Any]:
    out = {"model": route.cand["model"], "provider": route.cand["provider"],
           "attempts": run.attempts, "key_source": route.cand["key_source"]}
    if usage is not None:
        out["usage"] = usage
    return out


async def once_attempt(run: Run, route: Route, target: Target, req: UpstreamRequest,
                       limit: float) -> None:
    provider = route.cand["provider"]
    try:
        async with asyncio.timeout(limit):
            async with open_response(run.client, req, provider) as resp:
                raw = await read_body(resp, provider)
    except TimeoutError:
        raise UpstreamError(f"{provider}: upstream timed out", status=504,
                            disposition=Disposition.FAILOVER, code="upstream_timeout") from None
    if resp.status_code >= 400:
        raise route.adapter.map_error(resp.status_code, resp.headers, raw)
    parsed = route.adapter.parse_response(raw, target)
    payload = completion_body(run.completion_id, run.created, route.cand["model"], parsed)
    await run.pub.done(route_meta(run, route, parsed.get("usage")), payload)


async def stream_attempt(run: Run, route: Route, target: Target, req: UpstreamRequest,
                         first_limit: float, continuation: bool = False) -> None:
    """Stream one attempt. Before the first content token nothing reaches the caller, so a
    failure there can be retried invisibly; `continuation` streams a prefill continuation
    of an answer already partly sent."""
    adapter = route.adapter
    state = adapter.new_stream_state(run.job["body"], target)
    renderer = ChunkRenderer(run.completion_id, run.created, route.cand["model"],
                             continuation=continuation)
    decoder = SSEDecoder()
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + (run.job["deadline"] - time.time())
    pending: list[bytes] = []
    provider = route.cand["provider"]
    try:
        async with asyncio.timeout(started + first_limit) as timer:
            async with open_response(run.client, req, provider) as resp:
                if resp.status_code >= 400:
                    raise adapter.map_error(resp.status_code, resp.headers,
                                            await read_body(resp, provider))
                async for raw in resp.aiter_raw():
                    out = [b for ev in decoder.feed(raw)
                           for c in adapter.parse_event(ev, state) if (b := renderer.render(c))]
                    if out:
                        await _emit(run, route, renderer, pending, out, started)
                    if renderer.content_started:
                        timer.reschedule(min(loop.time() + run.stall_timeout, deadline))
                    if state.done:
                        break
                else:
                    out = [b for ev in decoder.flush()
                           for c in adapter.parse_event(ev, state) if (b := renderer.render(c))]
                    if out:
                        await _emit(run, route, renderer, pending, out, started)
    except TimeoutError:
        what = "stalled mid-stream" if renderer.content_started else "sent no first token in time"
        raise UpstreamError(f"{provider}: upstream {what}", status=504,
                            disposition=Disposition.FAILOVER, code="upstream_timeout",
                            before_content=not run.sent) from None
    except httpx.HTTPError as exc:
        err = transport_error(exc, provider)
        err.before_content = not run.sent
        raise err from None
    except UpstreamError as err:
        err.before_content = not run.sent
        raise
    if not (state.done or renderer.finish_reason):
        raise UpstreamError(f"{provider}: the upstream stream ended before the answer was "
                            "complete", status=502, disposition=Disposition.RETRY,
                            code="upstream_stream_cut", before_content=not run.sent)
    if not run.sent:  # an empty answer is still an answer
        await _emit(run, route, renderer, pending, [], started, force=True)
    tail = renderer.usage_chunk() if run.job["include_usage"] and renderer.usage else b""
    await run.pub.done(route_meta(run, route, renderer.usage), tail)


async def _emit(run: Run, route: Route, renderer: ChunkRenderer, pending: list[bytes],
                out: list[bytes], started: float, force: bool = False) -> None:
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
