"""One attempt against one route: send, read, normalise, publish. Raises UpstreamError on
any failure (with `before_content` telling whether the caller has seen content yet).

`Attempt` is a non-stream attempt; `StreamAttempt` adds what a stream carries: the adapter's
stream state, the chunk renderer, the bytes held back until the first content token and the
start time its first-token and stall limits count from. A stream attempt cut after content
reports its bill (`StreamAttempt.bill`) so the caller's usage covers it.
A little over 300 lines: the two attempts share their request, timers and error mapping.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Iterable
from typing import Any

from orbyt.shared.contract import ChatJob
from orbyt.shared.errors import Disposition, OrbytError, UpstreamError
from orbyt.shared.providers import Target, UpstreamRequest
from orbyt.shared.secret import Secret
from orbyt.shared.sse import SSEDecoder, SSEEvent
from orbyt.worker.billing import Billed, cut_usage
from orbyt.worker.deployments import Route
from orbyt.worker.reply import ChunkRenderer, Reply, completion_body
from orbyt.worker.responses import ResponsesReply
from orbyt.worker.upstream import Upstream, UpstreamResponse, timeout_error

# Once the finish reason is in, the answer is complete: the upstream gets only a short grace
# for the usage chunk and the terminator, not the whole stall timeout.
FINISH_GRACE = 1.0  # finish reason seen, usage not yet
TAIL_GRACE = 0.2  # finish reason and usage seen: only the terminator is missing


def target_for(route: Route, key: Secret | None) -> Target:
    return Target(
        provider=route.cand["provider"],
        model=route.cand["model"],
        upstream_model=route.cand["upstream"],
        base_url=route.base_url,
        api_key=key,
        max_output_tokens=route.info.max_output_tokens if route.info else None,
    )


def name_provider(err: UpstreamError, route: Route) -> None:
    """Adapters prefix their messages with their own name; the caller knows the provider
    by the name it was declared under (`wall`, served by the `openai` adapter)."""
    adapter, provider = route.adapter.name, route.cand["provider"]
    prefix = f"{adapter}: "
    if adapter != provider and err.message.startswith(prefix):
        err.message = f"{provider}: {err.message[len(prefix) :]}"
        err.args = (err.message,)


def build_request(route: Route, target: Target, body: dict[str, Any]) -> UpstreamRequest:
    try:
        return route.adapter.build_request(body, target)
    except UpstreamError:
        raise
    except OrbytError as exc:
        raise cannot_express(exc) from None


def cannot_express(exc: OrbytError) -> UpstreamError:
    """An adapter's refusal to build a request (a field this provider cannot take): the
    next route may take it, so the walk fails over instead of ending."""
    return UpstreamError(
        exc.message,
        status=exc.status,
        type=exc.type,
        code=exc.code,
        param=exc.param,
        disposition=Disposition.FAILOVER,
    )


class Attempt:
    """A non-stream attempt: one request, one body, one F frame."""

    def __init__(
        self,
        reply: Reply,
        job: ChatJob,
        client: Upstream,
        route: Route,
        target: Target,
        req: UpstreamRequest,
    ) -> None:
        self.reply = reply
        self.job = job
        self.client = client
        self.route = route
        self.target = target
        self.req = req
        self.provider = route.cand["provider"]
        self.usage: Any = None  # what the upstream reported (non-stream)

    def reported_usage(self) -> Any:
        """The usage this attempt's upstream reported, if any (for its trace span)."""
        return self.usage

    async def fetch(self, limit: float) -> bytes:
        """The whole upstream answer within `limit`; an HTTP error as the adapter maps it."""
        try:
            async with asyncio.timeout(limit):
                async with self.client.open(self.req, self.provider) as resp:
                    raw = await resp.aread()
        except TimeoutError:
            raise timeout_error(self.provider) from None
        if resp.status_code >= 400:
            raise self.route.adapter.map_error(resp.status_code, resp.headers, raw)
        return raw

    async def run(self, limit: float) -> None:
        route = self.route
        parsed = route.adapter.parse_response(await self.fetch(limit), self.target)
        self.usage = parsed.get("usage")
        reply, model = self.reply, route.cand["model"]
        if isinstance(reply, ResponsesReply):
            payload = reply.whole(model, parsed)
        else:
            payload = completion_body(reply.completion_id, reply.created, model, parsed)
        await reply.done(route, reply.settle(route, parsed.get("usage")), payload)


class StreamAttempt(Attempt):
    """A stream attempt. Before the first content token nothing reaches the caller, so a
    failure there can be retried invisibly; `continuation` streams a prefill continuation
    of an answer already partly sent."""

    def __init__(
        self,
        reply: Reply,
        job: ChatJob,
        client: Upstream,
        route: Route,
        target: Target,
        req: UpstreamRequest,
        stall_timeout: float,
        continuation: bool = False,
        body: dict[str, Any] | None = None,
    ) -> None:
        """`body`: the request as sent (a continuation's holds the prefill); default the
        job's."""
        super().__init__(reply, job, client, route, target, req)
        self.body = job["body"] if body is None else body
        self.stall_timeout = stall_timeout
        self.state = route.adapter.new_stream_state(job["body"], target)
        self.parse = route.adapter.parse_event  # upstream event -> normalised items
        self.renderer: ChunkRenderer = (
            reply.renderer(route.cand["model"], continuation)
            if isinstance(reply, ResponsesReply)
            else ChunkRenderer(
                reply.completion_id,
                reply.created,
                route.cand["model"],
                continuation=continuation,
                include_usage=job["include_usage"],
            )
        )
        self.pending: list[bytes] = []  # rendered, held back until the first content token
        self.started = 0.0  # loop time the attempt started
        self.sent_chars = 0  # characters of text this attempt rendered

    async def run(self, limit: float) -> None:
        """Stream the answer; `limit` is the first-token limit."""
        reply, renderer = self.reply, self.renderer
        self.started = asyncio.get_running_loop().time()
        try:
            async with asyncio.timeout_at(self.started + limit) as timer:
                async with self.client.open(self.req, self.provider) as resp:
                    if resp.status_code >= 400:
                        raw = await resp.aread()
                        raise self.route.adapter.map_error(resp.status_code, resp.headers, raw)
                    await self._relay(resp, timer)
        except TimeoutError:
            if not self._finished():  # else: complete, only the terminator is missing
                raise self._timed_out() from None
        except _BodyCut:
            if not self._finished():  # else: complete, only the terminator is missing
                raise stream_cut(self.provider, not reply.sent, "connection lost") from None
        except UpstreamError as err:
            err.before_content = not reply.sent
            raise
        if not (self.state.done or renderer.finish_reason):
            raise stream_cut(self.provider, not reply.sent)
        if not reply.sent:  # an empty answer is still an answer
            await self._emit([], force=True)
        usage = reply.settle(self.route, renderer.usage)
        include_usage = self.job["include_usage"]
        tail = b""
        if (include_usage and usage) or reply.continued or renderer.closes:  # headers name
            tail = renderer.usage_chunk(usage, reply.trailer(self.route))  # the first route
        await reply.done(self.route, usage, tail)

    def reported_usage(self) -> Any:
        return self.renderer.usage

    def bill(self) -> Billed | None:
        """What this attempt cost if it was cut after sending text (None if it sent
        nothing and reported no usage)."""
        reported = self.renderer.usage
        if not self.sent_chars and not reported:
            return None
        usage, estimated = cut_usage(reported, self.body, self.sent_chars)
        cand = self.route.cand
        return Billed(cand["model"], cand["key_source"], usage, estimated)

    def _timed_out(self) -> UpstreamError:
        started = self.renderer.content_started
        what = "stalled mid-stream" if started else "sent no first token in time"
        return timeout_error(self.provider, what, before_content=not self.reply.sent)

    async def _relay(self, resp: UpstreamResponse, timer: asyncio.Timeout) -> None:
        """Read the upstream body, normalise and publish it. `timer` is the first-token limit
        until content starts, then the stall limit, re-armed on every read."""
        decoder = SSEDecoder()
        state, renderer = self.state, self.renderer
        loop = asyncio.get_running_loop()
        deadline = self.started + (self.job["deadline"] - time.time())
        async with contextlib.aclosing(_body(resp)) as body:
            async for raw in body:
                await self._publish(decoder.feed(raw))
                if state.done:
                    return
                if renderer.content_started:
                    _rearm(timer, loop.time(), self._quiet_limit(), deadline)
        await self._publish(decoder.flush())

    async def _publish(self, events: Iterable[SSEEvent]) -> None:
        """Normalise and publish one read's events. Whatever precedes an in-stream error
        event is published before the error propagates: it is part of the answer either
        way, however the bytes happened to be split into reads."""
        out: list[bytes] = []
        parse, render, state = self.parse, self.renderer.render, self.state
        try:
            for ev in events:
                out.extend(b for c in parse(ev, state) if (b := render(c)))
        except UpstreamError:
            if out:
                await self._emit(out)
            raise
        if out:
            await self._emit(out)

    async def _emit(self, out: list[bytes], force: bool = False) -> None:
        """Publish rendered bytes; hold them back until the first content token."""
        reply, renderer = self.reply, self.renderer
        text = renderer.take_text()
        self.sent_chars += sum(map(len, text))
        reply.took(text, not renderer.plain_text_only)
        if reply.sent:
            await reply.delta(b"".join(out))
            return
        pending = self.pending
        pending.extend(out)
        if renderer.content_started or force:
            ttft_ms = (asyncio.get_running_loop().time() - self.started) * 1000
            await reply.first(b"".join(pending), self.route, ttft_ms)
            pending.clear()

    def _finished(self) -> bool:
        """The answer is complete even if the terminator never comes. With n > 1 one
        choice's finish reason says nothing about the others, so only the terminator
        counts."""
        return self.renderer.finish_reason is not None and self.job["body"].get("n") in (None, 1)

    def _quiet_limit(self) -> float:
        """How long the upstream may stay silent from now on."""
        if not self._finished():
            return self.stall_timeout
        return min(self.stall_timeout, TAIL_GRACE if self.renderer.usage else FINISH_GRACE)


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


def _rearm(timer: asyncio.Timeout, now: float, quiet: float, deadline: float) -> None:
    """Push the stall limit out to `quiet` after now. Re-arming a timer costs a heap
    operation, so a read that leaves it at least 90% armed skips it: a stall is still
    caught between 0.9 and 1.0 times the limit, and a shorter limit applies at once."""
    target = min(now + quiet, deadline)
    when = timer.when()
    if when is None or when > target or when < target - 0.1 * quiet:
        timer.reschedule(target)


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
