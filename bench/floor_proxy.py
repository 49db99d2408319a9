"""The bare pass-through floor: the cheapest proxy a gateway could be, to measure gateways against.

It is a plain ASGI callable (no framework) served by uvicorn with the loop, HTTP parser and
GC settings of ``orbyt api`` (uvloop, httptools, frozen start-up heap). ``POST
/v1/chat/completions`` is forwarded to ``<upstream>/chat/completions`` through one shared
``aiohttp.ClientSession`` (pool sized for c=1000); status and content-type are copied, an
event stream is relayed chunk by chunk as the upstream's reads return (SSE bytes unchanged),
any other body is read whole and sent. ``GET /health`` answers 200 once the session exists.

It is not a gateway: no auth, no queue, no retries, no accounting, no parsing, no limits.
Whatever a gateway spends above this floor is the price of what it does.

    python bench/floor_proxy.py --port 9200 --upstream http://127.0.0.1:9100/v1
    (or FLOOR_PORT / FLOOR_UPSTREAM in the environment)
"""

from __future__ import annotations

import argparse
import gc
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import aiohttp
import uvicorn

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
POOL = 2000  # upstream connections: scenario d holds 1,000 streams open at once
FORWARDED = (b"authorization", b"content-type")


class FloorProxy:
    def __init__(self, upstream: str) -> None:
        self.url = upstream.rstrip("/") + "/chat/completions"
        self.session: aiohttp.ClientSession | None = None

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            route = (scope["method"], scope["path"])
            if route == ("POST", "/v1/chat/completions") and self.session is not None:
                await self._forward(self.session, scope, receive, send)
            elif route == ("GET", "/health") and self.session is not None:
                await _reply(send, 200, b"text/plain", b"ok")
            else:
                await _reply(send, 404, b"text/plain", b"not found")

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            kind = (await receive())["type"]
            if kind == "lifespan.startup":
                connector = aiohttp.TCPConnector(limit=POOL, limit_per_host=0, keepalive_timeout=60)
                timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
                self.session = aiohttp.ClientSession(connector=connector, timeout=timeout)
                await send({"type": "lifespan.startup.complete"})
            elif kind == "lifespan.shutdown":
                if self.session is not None:
                    await self.session.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _forward(
        self, session: aiohttp.ClientSession, scope: Message, receive: Receive, send: Send
    ) -> None:
        body, more = b"", True
        while more:
            message = await receive()
            body, more = body + message.get("body", b""), message.get("more_body", False)
        headers = {k.decode(): v.decode() for k, v in scope["headers"] if k in FORWARDED}
        started = False
        try:
            async with session.post(self.url, data=body, headers=headers) as resp:
                ctype = resp.headers.get("Content-Type", "application/octet-stream").encode()
                if not ctype.startswith(b"text/event-stream"):
                    await _reply(send, resp.status, ctype, await resp.read())
                    return
                start = {"type": "http.response.start", "status": resp.status}
                started = True
                await send({**start, "headers": [(b"content-type", ctype)]})
                async for chunk in resp.content.iter_any():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b""})
        except (aiohttp.ClientError, TimeoutError) as exc:
            if started:  # mid-stream: let uvicorn drop the connection, as a dead upstream would
                raise
            await _reply(send, 502, b"text/plain", f"upstream: {exc!r}".encode())


async def _reply(send: Send, status: int, ctype: bytes, body: bytes) -> None:
    headers = [(b"content-type", ctype), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=int(os.environ.get("FLOOR_PORT", "9200")))
    p.add_argument(
        "--upstream", default=os.environ.get("FLOOR_UPSTREAM", "http://127.0.0.1:9100/v1")
    )
    args = p.parse_args(argv)
    gc.collect()  # as orbyt.cli.main._tune_gc: fewer full collections pausing the loop
    gc.freeze()
    gc.set_threshold(20_000, 20, 50)
    uvicorn.run(
        FloorProxy(args.upstream),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
