"""Ablations: run `orbyt api|worker` with one hand-written fast path swapped back for the
library path it replaced, so `bench/run.py --ablations` can measure what each one buys.

    python bench/ablate.py VARIANT api --host 127.0.0.1 --port 8080
    python bench/ablate.py VARIANT worker

This is measurement tooling, not a way to run Orbyt: a variant either sets a documented
setting or replaces one module attribute before the command starts, in this process only.
A variant whose seam was renamed exits at once naming the attribute, so an ablation run can
never silently measure the unpatched code.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Variant:
    name: str
    replaces: str  # the hand-written path that is switched off
    library_path: str  # what runs instead
    env: dict[str, str] = field(default_factory=dict)  # settings-only variants
    patch: Callable[[], None] | None = None  # in-process variants (see below)


def _no_fast_path() -> None:
    """Serve every route through FastAPI's routing, dependency and middleware layers."""
    import orbyt.api.main as main

    _require(main, "create_asgi")
    main.create_asgi = main.create_app  # type: ignore[assignment]


def _redis_py_publisher() -> None:
    """Publish reply frames with redis-py (one awaited PUBLISH per frame, frames of one
    channel chained so they keep their order) instead of the pipelined RESP connection."""
    import asyncio
    import os

    from redis.asyncio import Redis

    import orbyt.worker.publisher as publisher

    _require(publisher, "publish")
    clients: dict[int, Redis] = {}
    tails: dict[bytes, asyncio.Future[list[int]]] = {}

    def publish(
        conn: object, channel: bytes, payload: bytes, urgent: bool = True
    ) -> asyncio.Future[list[int]]:
        loop = asyncio.get_running_loop()
        client = clients.get(id(loop))
        if client is None:
            client = clients[id(loop)] = Redis.from_url(os.environ["ORBYT_REDIS_URL"])
        before = tails.get(channel)

        async def send() -> list[int]:
            if before is not None and not before.done():
                await asyncio.wait([before])
            return [await client.publish(channel, payload)]

        future = asyncio.ensure_future(send())
        tails[channel] = future
        future.add_done_callback(
            lambda f: tails.pop(channel, None) if tails.get(channel) is f else None
        )
        return future

    publisher.publish = publish  # type: ignore[assignment]


def _streaming_response() -> None:
    """Relay SSE through Starlette's StreamingResponse (an anyio task group per stream with
    its own disconnect listener) instead of writing frames straight to the ASGI `send`."""
    import asyncio

    from starlette.responses import StreamingResponse

    import orbyt.api.endpoint as endpoint
    from orbyt.shared.contract import DELTA
    from orbyt.shared.errors import OrbytError

    for name in ("relay_stream", "SSE_HEADERS", "route_headers"):
        _require(endpoint, name)

    async def relay_stream(ex: Any, frame: Any, send: Any, dialect: Any) -> None:
        async def body() -> Any:
            current = frame
            while True:
                yield dialect.render(current)
                if current.kind != DELTA:
                    return
                try:
                    current = await ex.next()
                except OrbytError as err:
                    yield dialect.broken(err)
                    return

        raw = endpoint.SSE_HEADERS + endpoint.route_headers(ex.job["rid"], frame.meta)
        headers = {k.decode(): v.decode() for k, v in raw if k != b"content-type"}
        response = StreamingResponse(body(), media_type="text/event-stream", headers=headers)
        never = asyncio.Event()  # the exchange already watches the real client

        async def receive() -> dict[str, Any]:
            await never.wait()
            return {"type": "http.disconnect"}

        scope = {"type": "http", "asgi": {"spec_version": "2.3"}}  # the listener runs
        await response(scope, receive, send)

    endpoint.relay_stream = relay_stream  # type: ignore[assignment]


def _frame_per_write() -> None:
    """The stream relay writes every frame on its own, even when several arrived together
    (what it did before `Exchange.ready`)."""
    from orbyt.api import exchange

    _require(exchange.Exchange, "ready")
    exchange.Exchange.ready = lambda self: False  # type: ignore[method-assign]


def _urgent_start_unsubscribe() -> None:
    """The worker's START frame and the API's UNSUBSCRIBE leave at once, each in a write of
    its own (instead of waiting the coalescing window to share one)."""
    from orbyt.shared.contract import START
    from orbyt.shared.redis import fast, hub
    from orbyt.worker import publisher

    _require(publisher, "publish")

    def publish(conn: Any, channel: bytes, payload: bytes, urgent: bool = True) -> Any:
        return fast.publish(conn, channel, payload, urgent or payload[:1] == START)

    publisher.publish = publish  # type: ignore[assignment]
    unsubscribe = hub.PubSubHub.unsubscribe

    def urgent_unsubscribe(self: Any, sub: Any) -> None:
        conn = self.current() if self._subs.get(sub.channel) is sub else None
        unsubscribe(self, sub)
        if conn is not None:
            conn.queue(b"", urgent=True)  # the UNSUBSCRIBE queued above leaves at once

    hub.PubSubHub.unsubscribe = urgent_unsubscribe  # type: ignore[method-assign]


def _no_access_line() -> None:
    """No access line (it is written for every request by default, at INFO)."""
    import logging

    from orbyt.shared.logs import ACCESS_LOGGER

    logging.getLogger(ACCESS_LOGGER).disabled = True


def _require(module: object, name: str) -> None:
    if not hasattr(module, name):
        raise SystemExit(f"ablate: {module!r} has no attribute {name!r}: update bench/ablate.py")


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in [
        Variant("baseline", "–", "–"),
        Variant(
            "httpx",
            "aiohttp upstream client",
            "httpx.AsyncClient (ORBYT_UPSTREAM_CLIENT=httpx)",
            env={"ORBYT_UPSTREAM_CLIENT": "httpx"},
        ),
        Variant(
            "no-fast-path",
            "chat fast path (api/edge.py)",
            "the same handler behind FastAPI's router and middleware stack",
            patch=_no_fast_path,
        ),
        Variant(
            "streaming-response",
            "lean SSE writes (api/endpoint.py `relay_stream`)",
            "Starlette StreamingResponse per stream",
            patch=_streaming_response,
        ),
        Variant(
            "frame-per-write",
            "frames that arrived together in one write (api/endpoint.py `relay_stream`)",
            "one write per frame",
            patch=_frame_per_write,
        ),
        Variant(
            "urgent-start-unsubscribe",
            "START and UNSUBSCRIBE share writes (coalescing window)",
            "each in a write of its own",
            patch=_urgent_start_unsubscribe,
        ),
        Variant(
            "no-access-line",
            "the access line (one JSON line per request, api/ledger.py)",
            "none (a feature's cost, not a fast path's)",
            patch=_no_access_line,
        ),
        Variant(
            "redis-py-publisher",
            "pipelined RESP publisher (shared/redis/fast.py)",
            "redis-py PUBLISH per frame, awaited in order",
            patch=_redis_py_publisher,
        ),
    ]
}


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in VARIANTS:
        print(f"usage: ablate.py {{{','.join(VARIANTS)}}} api|worker [args]", file=sys.stderr)
        return 2
    variant = VARIANTS[argv[0]]
    if variant.patch is not None:
        variant.patch()
    from orbyt.cli.main import main as orbyt_main

    return orbyt_main(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
