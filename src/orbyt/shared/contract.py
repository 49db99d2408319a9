"""The contract between API and workers: the arq job payload and the reply frames.

Job (arq function `chat`, JSON-serialised, nothing secret in it):
    {"rid", "channel", "body", "plan": [Candidate...], "strategy", "key_id", "deadline",
     "byok", "retry", "stream", "include_usage", "kind"?, "responses"?,
     "traceparent"? (when tracing is on)}
`kind` names the endpoint the job serves (`JOB_KINDS`); a job without it is a chat job.
For "responses", `body` is the chat translation of a /v1/responses request and
`responses` the Response's own fields.

Reply frames on `orbyt:reply:{rid}` (pub/sub). Wire form, cheap to parse on the API side:
    <kind byte><seq decimal>|<meta JSON or empty>\\n<payload bytes>
kinds: S start (meta: worker) · D delta (payload: ready-to-send SSE bytes; the first D
carries meta: model, provider, attempts, key_source) · H heartbeat · F done (meta: model,
provider, attempts, key_source, usage; payload: the chat.completion body for non-stream) ·
E error (meta: status, headers, attempts, and usage when an attempt was cut after content;
payload: OpenAI error JSON). A `usage` meta may carry `by_model`: each attempt's share
(`worker.billing`). `seq` counts 0, 1, 2, ... with no gaps; exactly one terminal F or E
ends a reply.

The metas are typed (`StartMeta`, `RouteMeta`, `ErrorMeta`) where they are written; on the
wire they are plain JSON objects and `decode_frame` returns them as plain dicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict

import orjson

from orbyt.shared.responses.output import ResponsesView

START = b"S"
DELTA = b"D"
HEARTBEAT = b"H"
DONE = b"F"
ERROR = b"E"

JOB_FUNCTION = "chat"
CHAT = "chat"  # POST /v1/chat/completions
EMBEDDINGS = "embeddings"  # POST /v1/embeddings: non-stream, one F frame with the list body
RESPONSES = "responses"  # POST /v1/responses: Responses events / a Response object
JOB_KINDS = (CHAT, EMBEDDINGS, RESPONSES)
ARQ_JOB_PREFIX = "arq:job:"


def reply_channel(rid: str) -> str:
    return f"orbyt:reply:{rid}"


def cancel_key(rid: str) -> str:
    return f"orbyt:cancel:{rid}"


def byok_key(rid: str) -> str:
    return f"orbyt:byok:{rid}"


CANCEL_CHANNEL = "orbyt:cancel"
# the API asks for reply frames again after a Redis outage: message `<seq>|<reply channel>`,
# answered by the worker holding that reply (`worker.publisher.Replays`)
RESUME_CHANNEL = "orbyt:resume"


# Route health, written by workers (`worker.health`), read by the admin API (`api.console`)
BREAKER_PREFIX = "orbyt:cb:"  # + route id: hash fails, open_until (ms), probe (ms)
STATS_PREFIX = "orbyt:stats:"  # + route id: hash ttft (EWMA ms), err (EWMA 0..1), n
POOLKEY_PREFIX = "orbyt:poolkey:"  # + provider + ":" + key hash: "cool" or "off"


def wake_channel(queue: str) -> str:
    return f"orbyt:wake:{queue}"


class Candidate(TypedDict):
    model: str  # public id provider/model
    provider: str  # configured provider name
    upstream: str  # upstream model id
    key_source: str  # "byok" or "pool"


class ChatJob(TypedDict):
    rid: str
    channel: str
    body: dict[str, Any]
    plan: list[Candidate]
    strategy: str  # ordered | cheap | fast | reliable | a provider name (ordered by the worker)
    key_id: str
    deadline: float  # unix time
    byok: bool
    retry: int
    stream: bool
    include_usage: bool
    kind: NotRequired[str]  # one of JOB_KINDS; absent: CHAT
    traceparent: NotRequired[str]  # W3C trace context of the API's span (tracing on)
    responses: NotRequired[ResponsesView]  # kind RESPONSES: what the Response repeats


def job_kind(job: ChatJob) -> str:
    return job.get("kind", CHAT)


class StartMeta(TypedDict):
    """Meta of the S frame: which worker picked the job up."""

    worker: str


class RouteMeta(TypedDict):
    """Meta of the first D frame and of the F frame: the route that answered."""

    model: str
    provider: str
    attempts: int
    key_source: str
    usage: NotRequired[dict[str, Any]]  # F frame only, when the provider reported usage


class ErrorMeta(TypedDict):
    """Meta of the E frame: the HTTP status and headers of the error response."""

    status: int
    headers: dict[str, str]
    attempts: int
    usage: NotRequired[dict[str, Any]]  # tokens billed by attempts cut after content


FrameMeta = StartMeta | RouteMeta | ErrorMeta


@dataclass(slots=True)
class Frame:
    kind: bytes
    seq: int
    meta: dict[str, Any] | None
    payload: bytes


def encode_frame(
    kind: bytes, seq: int, meta: FrameMeta | None = None, payload: bytes = b""
) -> bytes:
    head = orjson.dumps(meta) if meta else b""
    return b"%s%d|%s\n%s" % (kind, seq, head, payload)


def decode_frame(data: bytes) -> Frame:
    """Parse one frame; raises ValueError on anything malformed."""
    bar = data.index(b"|")
    newline = data.index(b"\n", bar)
    kind = data[:1]
    if kind not in (START, DELTA, HEARTBEAT, DONE, ERROR):
        raise ValueError(f"unknown frame kind {kind!r}")
    seq = int(data[1:bar])
    head = data[bar + 1 : newline]
    meta = orjson.loads(head) if head else None
    return Frame(kind, seq, meta, data[newline + 1 :])
