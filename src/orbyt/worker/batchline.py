"""One batch line through the routing engine, and the registry of line runners.

A line runs as a non-stream job of its endpoint's kind (chat, embeddings, responses: the
same job the interactive endpoint queues) through `engine.run_chat`, the same walk as an
interactive request (fallbacks, retries, strategies, key pools, breakers), with a
`LineReply` as its sink: instead of publishing frames it keeps the answer or the error.
The outcome is an OpenAI batch output line whose body is what the interactive endpoint
answers; a rate limit that outlived the walk's own retries becomes a deferral (the line
runs again later) instead of a failure. A Responses line is stored like an interactive
`store: true` request (owned by the batch's gateway key), and its `previous_response_id`
is loaded with that key (unknown or foreign: a 404 line).

`RUNNERS` maps a batch endpoint to its runner (`runner(make)`: `make` builds the kind's
job and reply); `shared.batchlines.LINE_KINDS` holds the matching validators.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

import orjson

from orbyt.shared.contract import EMBEDDINGS, RESPONSES, ChatJob, RouteMeta
from orbyt.shared.embeddings import parse_embeddings_request
from orbyt.shared.errors import Disposition, OrbytError, UpstreamError
from orbyt.shared.logs import safe_name
from orbyt.shared.responses import store
from orbyt.shared.responses.prepare import chat_body, not_found, responses_view
from orbyt.shared.responses.request import ResponsesRequest
from orbyt.shared.routing import resolve_plan
from orbyt.shared.usage import UsageEvent
from orbyt.shared.wire import Extra, parse_body
from orbyt.worker.context import WorkerContext
from orbyt.worker.deployments import Route
from orbyt.worker.engine import run_chat
from orbyt.worker.publisher import Publisher
from orbyt.worker.reply import Reply
from orbyt.worker.responses import ResponsesReply

MIN_DEFER = 0.5  # seconds a rate-limited line waits at least before it runs again
MAX_DEFER = 60.0
WINDOW_SLACK = 0.5  # seconds: a timeout this close to the window's end is the window's


@dataclass(frozen=True, slots=True)
class BatchInfo:
    """What a line needs of its batch (fixed for the batch's life)."""

    id: str
    owner: str
    endpoint: str
    expires_at: float


@dataclass(slots=True)
class LineOutcome:
    ok: bool
    output: bytes  # the output (ok) or error-file line
    tokens: tuple[int, int] = (0, 0)
    usage: UsageEvent | None = None
    defer: float | None = None  # seconds: run the line again later, record nothing


NO_PUB = cast(Publisher, None)  # a line's reply publishes nothing


class LineReply(Reply):
    """A `Reply` that records instead of publishing (a batch line has no caller waiting):
    build it with `NO_PUB`. The engine only calls `done`/`fail` for non-stream jobs. A kind
    whose interactive reply renders or stores its answer mixes this in after that reply
    (`worker.batchkinds.ResponsesLineReply`)."""

    answer: tuple[RouteMeta, bytes] | None = None
    error: OrbytError | None = None

    async def first(self, payload: bytes, route: Route, ttft_ms: float) -> None:
        raise RuntimeError("batch lines never stream")

    async def delta(self, payload: bytes) -> None:
        raise RuntimeError("batch lines never stream")

    async def done(self, route: Route, usage: dict[str, Any] | None, payload: bytes) -> None:
        self.answer = (self.meta(route, usage), payload)

    async def fail(self, err: OrbytError) -> None:
        self.error = err


def output_line(custom_id: str, rid: str, status: int, body: Any, orbyt: dict[str, Any]) -> bytes:
    """An OpenAI batch output line. `orbyt` carries what the `x-orbyt-*` headers of an
    interactive answer say (model, provider, attempts, key_source); SDKs ignore it."""
    return orjson.dumps(
        {
            "id": "batch_req_" + secrets.token_hex(12),
            "custom_id": custom_id,
            "response": {"status_code": status, "request_id": rid, "body": body, "orbyt": orbyt},
            "error": None,
        }
    )


UNRUN = {
    "cancel": ("batch_cancelled", "This request was not executed because the batch was cancelled."),
    "expire": (
        "batch_expired",
        "This request could not be executed before the completion window expired.",
    ),
}


def unrun_line(custom_id: str, end: str) -> bytes:
    """The error-file line of a request the batch never finished (`end`: cancel | expire)."""
    code, message = UNRUN[end]
    return orjson.dumps(
        {
            "id": "batch_req_" + secrets.token_hex(12),
            "custom_id": custom_id,
            "response": None,
            "error": {"code": code, "message": message},
        }
    )


def chat_job(ctx: WorkerContext, batch: BatchInfo, rid: str, body: dict[str, Any]) -> ChatJob:
    """The line as a non-stream chat job (may raise InvalidRequest if the config changed)."""
    settings = ctx.settings
    body = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
    raw_extra = body.pop("extra", None)
    extra = Extra.model_validate(raw_extra) if raw_extra is not None else None
    plan = resolve_plan(body["model"], extra, ctx.catalog, settings)
    timeout = extra.timeout if extra and extra.timeout else settings.default_timeout
    return ChatJob(
        rid=rid,
        channel="",
        body=body,
        plan=plan,
        strategy=(extra.provider if extra else None) or "ordered",
        key_id=batch.owner,
        deadline=min(time.time() + timeout, batch.expires_at),
        byok=False,
        retry=extra.retry if extra and extra.retry is not None else settings.default_retry,
        stream=False,
        include_usage=False,
    )


def _defer_for(err: OrbytError) -> float | None:
    """A rate limit (not an exhausted quota) slows the batch instead of failing the line."""
    if err.status != 429:
        return None
    if isinstance(err, UpstreamError):
        if err.disposition is Disposition.QUOTA:
            return None
        return min(MAX_DEFER, max(MIN_DEFER, err.retry_after or MIN_DEFER))
    return MIN_DEFER


def _cut_by_window(err: OrbytError, batch: BatchInfo) -> bool:
    """The line failed because the completion window closed (its deadline is the window's
    end; the engine's timers and the wall clock may disagree by a few milliseconds)."""
    now = time.time()
    timed_out = err.status in (408, 504)
    return now >= batch.expires_at or (timed_out and now >= batch.expires_at - WINDOW_SLACK)


JobMaker = Callable[
    [WorkerContext, BatchInfo, str, dict[str, Any]], Awaitable[tuple[ChatJob, LineReply]]
]


async def chat_line(
    ctx: WorkerContext, batch: BatchInfo, rid: str, body: dict[str, Any]
) -> tuple[ChatJob, LineReply]:
    """A chat line's job and reply."""
    reply = LineReply(NO_PUB, f"chatcmpl-{secrets.token_hex(12)}", int(time.time()))
    return chat_job(ctx, batch, rid, body), reply


async def run_line(
    make: JobMaker, ctx: WorkerContext, batch: BatchInfo, index: int, line: dict[str, Any]
) -> LineOutcome:
    """Run line `index` as the job `make` builds: its output line, usage, or deferral."""
    rid = f"{batch.id}-{index}"
    custom_id = line["custom_id"]
    started = time.monotonic()
    reply = LineReply(NO_PUB, "", 0)  # until `make` gives the kind's own
    try:
        job, reply = await make(ctx, batch, rid, dict(line["body"]))
        await run_chat(ctx, job, reply, {})
    except OrbytError as exc:
        reply.error = exc
    latency = (time.monotonic() - started) * 1000
    if reply.answer is not None:
        meta, payload = reply.answer
        usage = meta.get("usage") or {}
        event = UsageEvent(
            batch.owner, meta["model"], meta["provider"], meta["key_source"], 200,
            meta["attempts"], latency, usage, batch=True,
        )  # fmt: skip
        tokens = (int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))
        orbyt = {k: meta[k] for k in ("model", "provider", "attempts", "key_source")}
        body = orjson.Fragment(payload)  # the answer's JSON as rendered, not parsed again
        return LineOutcome(True, output_line(custom_id, rid, 200, body, orbyt), tokens, event)
    return _failed(batch, rid, line, reply, latency)


def runner(make: JobMaker) -> Runner:
    """The runner of a line kind whose job and reply `make` builds."""

    async def run(
        ctx: WorkerContext, batch: BatchInfo, index: int, line: dict[str, Any]
    ) -> LineOutcome:
        return await run_line(make, ctx, batch, index, line)

    return run


def _failed(
    batch: BatchInfo, rid: str, line: dict[str, Any], reply: LineReply, latency: float
) -> LineOutcome:
    """A line the walk could not answer: deferred (rate limit), cut by the completion
    window (answered as `batch_expired`, like the lines that never started), or failed."""
    err = reply.error or OrbytError("The line produced no answer.")
    delay = _defer_for(err)
    if delay is not None and time.time() + delay >= batch.expires_at:
        delay = None  # no time left to try again
    model = safe_name(str(line["body"].get("model", "")))
    provider = model.partition("/")[0]
    event = UsageEvent(
        batch.owner, model, provider, "pool", err.status, reply.attempts, latency, None, batch=True
    )
    if delay is None and _cut_by_window(err, batch):
        return LineOutcome(False, unrun_line(line["custom_id"], "expire"), usage=event)
    orbyt = {"model": model, "provider": provider, "attempts": reply.attempts, "key_source": "pool"}
    output = output_line(line["custom_id"], rid, err.status, err.body(), orbyt)
    return LineOutcome(False, output, usage=event, defer=delay)


async def embeddings_line(
    ctx: WorkerContext, batch: BatchInfo, rid: str, body: dict[str, Any]
) -> tuple[ChatJob, LineReply]:
    """An embeddings line's job: `POST /v1/embeddings`'s (body without nulls, never a stream)."""
    clean, _, _ = parse_embeddings_request(orjson.dumps(body))
    job = chat_job(ctx, batch, rid, clean)
    job["kind"] = EMBEDDINGS
    return job, LineReply(NO_PUB, "", 0)


class ResponsesLineReply(ResponsesReply, LineReply):
    """`ResponsesReply` (the Response rendered, and stored unless `store: false`) that
    records its answer instead of publishing it."""


async def responses_line(
    ctx: WorkerContext, batch: BatchInfo, rid: str, body: dict[str, Any]
) -> tuple[ChatJob, LineReply]:
    """A Responses line's job: `POST /v1/responses`'s, owned by the batch's gateway key (a
    `previous_response_id` is loaded with it; the answer is stored for it)."""
    clean, req = parse_body(orjson.dumps(body), ResponsesRequest)
    job = chat_job(ctx, batch, rid, clean)
    clean = job["body"]  # without `extra` and `stream`
    record = None
    if req.previous_response_id:
        record = await store.load(ctx.state or ctx.redis, req.previous_response_id, batch.owner)
        if record is None:
            raise not_found(req.previous_response_id, "previous_response_id")
    history = record["messages"] if record else []
    job["body"] = chat_body(clean, job["plan"], ctx.settings, history)
    job["kind"] = RESPONSES
    job["responses"] = responses_view(rid, clean, record)
    return job, ResponsesLineReply(NO_PUB, job, ctx.state or ctx.redis, ctx.settings.responses_ttl)


Runner = Callable[[WorkerContext, BatchInfo, int, dict[str, Any]], Awaitable[LineOutcome]]

RUNNERS: dict[str, Runner] = {
    "/v1/chat/completions": runner(chat_line),
    "/v1/embeddings": runner(embeddings_line),
    "/v1/responses": runner(responses_line),
}
