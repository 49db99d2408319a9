"""A Responses job on OpenAI's own Responses API: the native route (`is_native`).

For a Responses job whose route is provider `openai` on the openai adapter, the attempt
(chosen in `worker.engine.make_attempt`) sends the caller's Responses body
(`shared.providers.openai.responses`) and relays OpenAI's answer with Orbyt's response id,
public model id and its own sequence numbers (`NativeRenderer`). The native renderer holds
the upstream's `response.completed` back as the stream's closing event, so the Response is
stored before the caller sees it complete. A native stream cut after content is not
continued on another route (its items are OpenAI's own): it ends with `error` and
`response.failed`.
"""

from __future__ import annotations

from typing import Any

import orjson

from orbyt.shared.contract import RESPONSES, ChatJob, job_kind
from orbyt.shared.providers import Target
from orbyt.shared.providers.openai.responses import (
    chat_usage,
    parse_native,
    parse_native_event,
)
from orbyt.worker.attempts import Attempt, StreamAttempt
from orbyt.worker.deployments import Route
from orbyt.worker.responses import ResponsesReply, relabel
from orbyt.worker.upstream import Upstream


def is_native(route: Route, job: ChatJob) -> bool:
    return (
        job_kind(job) == RESPONSES
        and route.cand["provider"] == "openai"
        and route.adapter.name == "openai"
    )


class NativeAttempt(Attempt):
    async def run(self, limit: float) -> None:
        route, reply = self.route, self.reply
        assert isinstance(reply, ResponsesReply)
        response = parse_native(await self.fetch(limit))
        reply.final = relabel(self.job["responses"], route.cand["model"], response)
        usage = reply.settle(route, chat_usage(response.get("usage")))
        await reply.done(route, usage, orjson.dumps(reply.final))


class NativeStreamAttempt(StreamAttempt):
    def __init__(
        self,
        reply: ResponsesReply,
        job: ChatJob,
        client: Upstream,
        route: Route,
        target: Target,
        req: Any,
        stall_timeout: float,
    ) -> None:
        super().__init__(reply, job, client, route, target, req, stall_timeout)
        self.renderer = reply.native_renderer(route.cand["model"])
        self.parse = parse_native_event
