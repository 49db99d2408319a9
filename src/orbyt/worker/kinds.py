"""Which attempt serves a route, by job kind: the one place a new kind plugs into the walk.

- chat: `Attempt` (non-stream) or `StreamAttempt`, on the route's own adapter;
- embeddings: `EmbeddingsAttempt` (non-stream), on the adapter's embeddings role;
- responses: on provider `openai` (openai adapter) OpenAI's own Responses API
  (`NativeAttempt` / `NativeStreamAttempt`), elsewhere the chat attempts, whose replies and
  renderers (`worker.responses`) speak Responses.
"""

from __future__ import annotations

from typing import Any

from orbyt.shared.contract import EMBEDDINGS, ChatJob, job_kind
from orbyt.shared.providers import Target
from orbyt.shared.providers.openai.responses import native_request
from orbyt.worker.attempts import Attempt, StreamAttempt, build_request
from orbyt.worker.deployments import Route
from orbyt.worker.embeddings import EmbeddingsAttempt, build_embeddings_request
from orbyt.worker.native import NativeAttempt, NativeStreamAttempt, is_native
from orbyt.worker.reply import Reply
from orbyt.worker.responses import ResponsesReply
from orbyt.worker.upstream import Upstream


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
