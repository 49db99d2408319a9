"""The routing engine: walks a job's route plan with retries and fallback, streams the
answer through the publisher. Policy decisions live in `worker.policy` (pure)."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from shared.catalog import Catalog
from shared.contract import Candidate, ChatJob
from shared.errors import Disposition, OrbytError, UpstreamError
from shared.providers import Adapter, Target, UpstreamRequest, get_adapter
from shared.secret import Secret
from shared.settings import Settings
from shared.sse import SSEDecoder
from worker.policy import RetryPolicy, Step, final_error, next_action
from worker.publisher import Publisher
from worker.render import ChunkRenderer, completion_body
from worker.upstream import open_response, read_body, transport_error


@dataclass
class Deps:
    settings: Settings
    catalog: Catalog
    client: httpx.AsyncClient
    worker_id: str
    rand: random.Random = field(default_factory=random.Random)
    _rr: dict[str, int] = field(default_factory=dict)

    def pool_key(self, provider: str) -> Secret | None:
        keys = self.settings.provider(provider).keys
        if not keys:
            return None
        i = self._rr.get(provider, 0)
        self._rr[provider] = i + 1
        return Secret(keys[i % len(keys)].get_secret_value())


@dataclass
class Run:
    """Everything one job carries across its attempts."""

    job: ChatJob
    pub: Publisher
    completion_id: str
    created: int
    byok: dict[str, Secret]
    attempts: int = 0
    sent: bool = False  # content has reached the caller


def adapter_for(provider: str, settings: Settings) -> Adapter:
    cfg = settings.provider(provider)
    adapter = get_adapter(cfg.adapter or provider)
    if adapter is None:
        raise UpstreamError(f"provider {provider!r} is not configured", status=400,
                            disposition=Disposition.FINAL)
    return adapter


def make_target(cand: Candidate, adapter: Adapter, deps: Deps, run: Run) -> Target:
    cfg = deps.settings.provider(cand["provider"])
    if cand["key_source"] == "byok":
        key = run.byok.get(cand["provider"])
        if key is None:
            raise UpstreamError("The BYOK key for this request is no longer available "
                                "(expired or already used); send the request again.",
                                status=400, disposition=Disposition.FINAL,
                                code="byok_key_unavailable")
    else:
        key = deps.pool_key(cand["provider"])
        # a configured OpenAI-compatible upstream (e.g. self-hosted vLLM) may need no key
        if key is None and adapter.needs_key and cand["provider"] == adapter.name:
            raise UpstreamError(
                f"The gateway has no API key for provider {cand['provider']!r}; pass your own "
                "in extra.byok.", status=400, disposition=Disposition.FAILOVER,
                code="provider_key_missing")
    info = deps.catalog.get(cand["model"])
    return Target(provider=cand["provider"], model=cand["model"], upstream_model=cand["upstream"],
                  base_url=cfg.base_url or adapter.default_base_url, api_key=key,
                  max_output_tokens=info.max_output_tokens if info else None)


def meta(run: Run, cand: Candidate, usage: Any = None) -> dict[str, Any]:
    out = {"model": cand["model"], "provider": cand["provider"], "attempts": run.attempts,
           "key_source": cand["key_source"]}
    if usage is not None:
        out["usage"] = usage
    return out


async def run_chat(job: ChatJob, pub: Publisher, deps: Deps, byok: dict[str, Secret]) -> None:
    run = Run(job, pub, f"chatcmpl-{job['rid']}", int(time.time()), byok)
    policy = RetryPolicy(retries=job["retry"], base=deps.settings.backoff_base,
                         cap=deps.settings.backoff_cap,
                         retry_after_cap=deps.settings.retry_after_cap)
    errors: list[tuple[int, UpstreamError]] = []
    plan = job["plan"]
    for index, cand in enumerate(plan):
        tries = 0
        while True:
            remaining = job["deadline"] - time.time()
            if remaining <= 0:
                errors.append((index, deadline_error()))
                return await fail(run, errors)
            try:
                await attempt(run, cand, deps, remaining, has_next=index + 1 < len(plan))
                return
            except UpstreamError as err:
                if run.sent:  # content already reached the caller: never dress a cut as success
                    errors.append((index, err))
                    return await fail(run, [(index, err)])
                errors.append((index, err))
                action = next_action(err, tries, remaining, policy, deps.rand.random)
            if action.step is Step.STOP:
                return await fail(run, errors)
            if action.step is Step.NEXT:
                break
            tries += 1
            await asyncio.sleep(action.delay)
    await fail(run, errors)


def deadline_error() -> UpstreamError:
    return UpstreamError("The request deadline passed before any provider answered.",
                         status=504, disposition=Disposition.FAILOVER, code="deadline_exceeded")


async def fail(run: Run, errors: list[tuple[int, UpstreamError]]) -> None:
    err = final_error(errors)
    await send_error(run.pub, err, run.attempts)


async def send_error(pub: Publisher, err: OrbytError, attempts: int) -> None:
    await pub.error({"status": err.status, "headers": err.response_headers(),
                     "attempts": attempts}, orjson.dumps(err.body()))


async def attempt(run: Run, cand: Candidate, deps: Deps, remaining: float,
                  has_next: bool) -> None:
    adapter = adapter_for(cand["provider"], deps.settings)
    target = make_target(cand, adapter, deps, run)
    run.attempts += 1
    try:
        req = adapter.build_request(run.job["body"], target)
    except UpstreamError:
        raise
    except OrbytError as exc:  # the adapter cannot express this request: try the next one
        raise UpstreamError(exc.message, status=exc.status, type=exc.type, code=exc.code,
                            param=exc.param, disposition=Disposition.FAILOVER) from None
    if run.job["stream"]:
        limit = deps.settings.ttft_timeout if has_next else remaining
        await stream_attempt(run, cand, adapter, target, req, deps, min(limit, remaining))
    else:
        await once_attempt(run, cand, adapter, target, req, deps, remaining)


async def once_attempt(run: Run, cand: Candidate, adapter: Adapter, target: Target,
                       req: UpstreamRequest, deps: Deps, remaining: float) -> None:
    try:
        async with asyncio.timeout(remaining):
            async with open_response(deps.client, req, cand["provider"]) as resp:
                raw = await read_body(resp, cand["provider"])
    except TimeoutError:
        raise transport_error(httpx.ReadTimeout("timeout"), cand["provider"]) from None
    if resp.status_code >= 400:
        raise adapter.map_error(resp.status_code, resp.headers, raw)
    parsed = adapter.parse_response(raw, target)
    payload = completion_body(run.completion_id, run.created, cand["model"], parsed)
    await run.pub.done(meta(run, cand, parsed.get("usage")), payload)


async def stream_attempt(run: Run, cand: Candidate, adapter: Adapter, target: Target,
                         req: UpstreamRequest, deps: Deps, first_limit: float) -> None:
    state = adapter.new_stream_state(run.job["body"], target)
    renderer = ChunkRenderer(run.completion_id, run.created, cand["model"])
    decoder = SSEDecoder()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + (run.job["deadline"] - time.time())
    stall = deps.settings.stall_timeout
    pending: list[bytes] = []
    provider = cand["provider"]
    try:
        async with asyncio.timeout(loop.time() + first_limit) as timer:
            async with open_response(deps.client, req, provider) as resp:
                if resp.status_code >= 400:
                    raw = await read_body(resp, provider)
                    raise adapter.map_error(resp.status_code, resp.headers, raw)
                async for raw in resp.aiter_raw():
                    out = [b for ev in decoder.feed(raw)
                           for c in adapter.parse_event(ev, state) if (b := renderer.render(c))]
                    if out:
                        await _emit(run, cand, renderer, pending, out)
                    if run.sent:
                        timer.reschedule(min(loop.time() + stall, deadline))
                    if state.done:
                        break
                else:
                    out = [b for ev in decoder.flush()
                           for c in adapter.parse_event(ev, state) if (b := renderer.render(c))]
                    if out:
                        await _emit(run, cand, renderer, pending, out)
    except TimeoutError:
        what = "stalled mid-stream" if run.sent else "sent no first token in time"
        raise UpstreamError(f"{provider}: upstream {what}", status=504,
                            disposition=Disposition.FAILOVER, code="upstream_timeout",
                            before_content=not run.sent) from None
    except httpx.HTTPError as exc:
        raise transport_error(exc, provider) from None
    if not (state.done or renderer.finish_reason):
        raise UpstreamError(f"{provider}: upstream stream ended before completion", status=502,
                            disposition=Disposition.RETRY, code="upstream_stream_cut",
                            before_content=not run.sent)
    if not run.sent:  # an empty answer is still an answer
        await _emit(run, cand, renderer, pending, [], force=True)
    tail = renderer.usage_chunk() if run.job["include_usage"] and renderer.usage else b""
    await run.pub.done(meta(run, cand, renderer.usage), tail)


async def _emit(run: Run, cand: Candidate, renderer: ChunkRenderer, pending: list[bytes],
                out: list[bytes], force: bool = False) -> None:
    """Publish rendered bytes; hold them back until the first content token so a failure
    before it can still be retried invisibly."""
    if run.sent:
        await run.pub.delta(b"".join(out))
        return
    pending.extend(out)
    if renderer.content_started or force:
        run.sent = True
        await run.pub.delta(b"".join(pending), meta(run, cand))
        pending.clear()
