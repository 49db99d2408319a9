"""FakeServer: an aiohttp app on 127.0.0.1 in a background thread, with request
recording, disconnect detection and a scripted-behaviour engine shared by all fakes."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import itertools
import json
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Iterable
from http import HTTPStatus
from types import TracebackType
from typing import Any, ClassVar, Self

from aiohttp import web

from .behaviours import BEHAVIOUR_TYPES, Behaviour, Error, Hang, Reply, Reset, Timing
from .echo import echo_key, echo_key_bytes
from .wire import (
    ALNUM,
    HEX,
    Call,
    ErrorSpec,
    Exchange,
    Frame,
    Recorded,
    malformed,
)


class FakeServer:
    """Base class of the fake upstreams. Use as a context manager or call start()/stop().

    keys:    accepted API keys; None (default) accepts any non-empty key.
    default: the behaviour used when the script is empty (default ``Reply()``).
    port:    fixed port (default: a free one, kept across stop()/start()).
    """

    name = "fake"
    ERRORS: ClassVar[dict[str, ErrorSpec]] = {}  # named error variants (Error.kind)
    STATUS_KINDS: ClassVar[dict[int, str]] = {}  # the variant used for a bare Error(status)
    stream_content_type = "text/event-stream; charset=utf-8"
    stream_keepalive: bytes | None = None  # written during stream pauses (DeepSeek)
    body_keepalive: bytes | None = None  # written before a non-stream body (DeepSeek)
    keepalive_interval = 0.5
    retry_after_header = True

    def __init__(
        self,
        *,
        keys: Iterable[str] | None = None,
        default: Behaviour | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
    ) -> None:
        self.keys: set[str] | None = set(keys) if keys is not None else None
        self.default: Behaviour = default if default is not None else Reply()
        self.host = host
        self._port = port
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._script: deque[Behaviour] = deque()
        self._requests: list[Recorded] = []
        self._disconnects: list[float] = []
        self._exchanges: dict[int, Exchange] = {}  # in-flight requests (server thread only)
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._stopping = False

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Self:
        if self._thread is not None:
            raise RuntimeError(f"{type(self).__name__} already started")
        self._stopping = False
        self._ready.clear()
        self._startup_error = None
        self._thread = threading.Thread(target=self._run, name=f"{self.name}-fake", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._startup_error is not None or not self._ready.is_set():
            self._thread.join(5)
            self._thread = None
            raise RuntimeError(f"{type(self).__name__} failed to start") from self._startup_error
        return self

    def stop(self) -> None:
        thread, loop, event = self._thread, self._loop, self._stop_event
        if thread is None:
            return
        self._stopping = True
        if loop is not None and event is not None and not loop.is_closed():
            loop.call_soon_threadsafe(event.set)
        thread.join(10)
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self) -> None:
        self._stop_event = asyncio.Event()
        runner = web.AppRunner(
            self._make_app(), access_log=None, handler_cancellation=True, shutdown_timeout=0.2
        )
        try:
            await runner.setup()
            site = web.TCPSite(runner, self.host, self._port)
            await site.start()
            self._port = int(runner.addresses[0][1])
        except BaseException as exc:
            self._startup_error = exc
            await runner.cleanup()
            return
        self._ready.set()
        try:
            await self._stop_event.wait()
        finally:
            await runner.cleanup()

    def _make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        self.add_routes(app)
        app.router.add_route("*", "/{tail:.*}", self.not_found)
        return app

    # ------------------------------------------------------------------ addresses
    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("server not started")
        return self._port

    @property
    def url(self) -> str:
        """Root URL, e.g. ``http://127.0.0.1:54321``."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What an SDK or the gateway should use as this provider's base URL."""
        return self.url

    # ------------------------------------------------------------------ scripting
    def script(self, *behaviours: Behaviour) -> Self:
        """Queue behaviours, consumed one per generation request (FIFO)."""
        for b in behaviours:
            if not isinstance(b, BEHAVIOUR_TYPES):
                raise TypeError(f"not a behaviour: {b!r}")
            if isinstance(b, Error) and b.kind is not None and b.kind not in self.ERRORS:
                raise ValueError(
                    f"{type(self).__name__} has no error kind {b.kind!r}: {sorted(self.ERRORS)}"
                )
        with self._lock:
            self._script.extend(behaviours)
        return self

    @property
    def pending(self) -> int:
        """Scripted behaviours not consumed yet."""
        with self._lock:
            return len(self._script)

    def next_behaviour(self) -> Behaviour:
        with self._lock:
            return self._script.popleft() if self._script else self.default

    # ------------------------------------------------------------------ recording
    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._requests)

    @property
    def disconnects(self) -> list[float]:
        """time.monotonic() of each client disconnect seen while a request was in flight."""
        with self._lock:
            return list(self._disconnects)

    @property
    def last(self) -> Recorded:
        with self._lock:
            if not self._requests:
                raise LookupError("no request received")
            return self._requests[-1]

    def reset(self) -> None:
        """Forget recorded requests/disconnects and drop the pending script."""
        with self._lock:
            self._requests.clear()
            self._disconnects.clear()
            self._script.clear()

    def wait_for_requests(self, count: int = 1, timeout: float = 2.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: len(self._requests) >= count, timeout)

    def wait_for_disconnects(self, count: int = 1, timeout: float = 2.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: len(self._disconnects) >= count, timeout)

    def _note_disconnect(self, request: web.Request) -> None:
        state = self.exchange(request)
        if self._stopping or state.closed_by_server or state.disconnect_noted:
            return
        state.disconnect_noted = True
        with self._cond:
            self._disconnects.append(time.monotonic())
            self._cond.notify_all()

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        raw = await request.read()
        try:
            parsed: Any = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        self._exchanges[id(request)] = Exchange(json=parsed)
        headers: dict[str, str] = {}
        for k, v in request.headers.items():
            key = k.lower()
            headers[key] = f"{headers[key]}, {v}" if key in headers else v
        rec = Recorded(
            request.method,
            request.path,
            dict(request.query),
            headers,
            parsed,
            time.monotonic(),
            raw,
        )
        with self._cond:
            self._requests.append(rec)
            self._cond.notify_all()
        try:
            response: web.StreamResponse = await handler(request)
            return response
        except asyncio.CancelledError:
            self._note_disconnect(request)
            raise
        finally:
            del self._exchanges[id(request)]

    def exchange(self, request: web.Request) -> Exchange:
        """Scratch state of an in-flight request."""
        return self._exchanges[id(request)]

    # ------------------------------------------------------------------ provider hooks
    def add_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def make_request_id(self) -> str:
        return "req_" + self.new_id(24, HEX)

    def extra_headers(self, request: web.Request) -> dict[str, str]:
        """Headers the provider sends on every response (request ids, rate limits...)."""
        return {}

    def render_error(
        self,
        request: web.Request,
        status: int,
        spec: ErrorSpec,
        message: str,
        retry_after: float | None,
    ) -> dict[str, Any] | str:
        """The provider's error body for one variant."""
        raise NotImplementedError

    def error_body(
        self,
        request: web.Request,
        status: int,
        kind: str | None,
        message: str | None,
        retry_after: float | None,
    ) -> dict[str, Any] | str:
        kind = kind or self.STATUS_KINDS.get(status)
        spec = self.ERRORS.get(kind) if kind else None
        if spec is None:
            phrase = (
                HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
            )
            spec = ErrorSpec(
                status, phrase, "server_error" if status >= 500 else "invalid_request_error"
            )
        state = self.exchange(request)
        body = state.json
        model = str(body.get("model", "")) if isinstance(body, dict) else ""
        text = (message or spec.message).replace("{model}", model or state.model)
        text = text.replace("{key}", self.mask_key(state.api_key or ""))
        return self.render_error(request, status, spec, text, retry_after)

    def response_body(self, call: Call, reply: Reply) -> dict[str, Any]:
        raise NotImplementedError

    def embeddings_body(self, call: Call, reply: Reply) -> dict[str, Any]:
        """The answer to an embeddings call (``call.kind`` other than "chat")."""
        raise NotImplementedError

    def stream_frames(self, call: Call, reply: Reply) -> list[Frame]:
        raise NotImplementedError

    def stream_error_frame(self, call: Call, reply: Reply) -> bytes:
        raise NotImplementedError

    async def not_found(self, request: web.Request) -> web.StreamResponse:
        return self.error_response(request, Error(404))

    # ------------------------------------------------------------------ helpers
    def new_id(self, length: int, alphabet: str = ALNUM) -> str:
        """A deterministic pseudo-random id (per fake instance, in request order)."""
        seed = hashlib.sha256(f"{self.name}:{next(self._ids)}".encode()).digest()
        num = int.from_bytes(seed, "big")
        out = []
        for _ in range(length):
            num, rem = divmod(num, len(alphabet))
            out.append(alphabet[rem])
        return "".join(out)

    def request_id(self, request: web.Request) -> str:
        state = self.exchange(request)
        if state.request_id is None:
            state.request_id = self.make_request_id()
        return state.request_id

    def mask_key(self, key: str) -> str:
        """An API key masked the way the provider echoes it in 401 messages."""
        return f"{key[:6]}{'*' * (len(key) - 10)}{key[-4:]}" if len(key) > 12 else "*" * len(key)

    def prepare_reply(self, call: Call, reply: Reply) -> Reply:
        """Adjust a scripted reply to the request (e.g. drop reasoning when thinking is off)."""
        return reply

    def key_ok(self, key: str | None) -> bool:
        if not key:
            return False
        return self.keys is None or key in self.keys

    @staticmethod
    def bearer(request: web.Request) -> str | None:
        auth = request.headers.get("Authorization", "")
        return auth[7:].strip() if auth[:7].lower() == "bearer " else None

    def error_response(self, request: web.Request, err: Error) -> web.Response:
        body = err.body
        if body is None:
            body = self.error_body(request, err.status, err.kind, err.message, err.retry_after)
        if isinstance(body, str):
            data, ctype = body.encode(), err.content_type or "text/plain; charset=utf-8"
        else:
            data, ctype = json.dumps(body).encode(), err.content_type or "application/json"
        headers = {**self.extra_headers(request), "Content-Type": ctype}
        if err.retry_after is not None and self.retry_after_header:
            headers["retry-after"] = f"{err.retry_after:g}"
        key = self.exchange(request).api_key  # echoed where the script asks (see echo.py)
        headers.update({k: echo_key(v, key) for k, v in err.headers.items()})
        data = echo_key_bytes(data, key)
        return web.Response(status=err.status, body=data, headers=headers)

    def fail(
        self, request: web.Request, status: int, message: str | None = None, kind: str | None = None
    ) -> web.Response:
        """The provider's own error response (used for auth and validation failures)."""
        return self.error_response(request, Error(status, kind=kind, message=message))

    # ------------------------------------------------------------------ behaviour engine
    async def respond(self, call: Call) -> web.StreamResponse:
        """Answer a validated generation request with the next scripted behaviour."""
        behaviour = self.next_behaviour()
        if isinstance(behaviour, Timing):
            base = self.default if isinstance(self.default, Reply) else Reply()
            behaviour = dataclasses.replace(
                base,
                ttft=behaviour.ttft,
                per_token=behaviour.per_token,
                headers_delay=behaviour.headers_delay,
            )
        if isinstance(behaviour, Reset):
            await asyncio.sleep(behaviour.delay)
            self._drop(call.request, hard=behaviour.hard)
            return web.Response()  # never written: the transport is gone
        if isinstance(behaviour, Hang):
            await asyncio.get_running_loop().create_future()  # cancelled on disconnect/stop
        if isinstance(behaviour, Error):
            await asyncio.sleep(behaviour.delay)
            return self.error_response(call.request, behaviour)
        assert isinstance(behaviour, Reply)
        behaviour = self.prepare_reply(call, behaviour)
        try:
            if call.stream:
                return await self._stream(call, behaviour)
            return await self._body(call, behaviour)
        except ConnectionResetError:
            self._note_disconnect(call.request)
            return web.Response()

    def _drop(self, request: web.Request, hard: bool) -> None:
        self.exchange(request).closed_by_server = True
        transport = request.transport
        if transport is None:
            return
        sock = transport.get_extra_info("socket")
        if hard and sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        else:
            transport.close()

    async def _pause(
        self, resp: web.StreamResponse | None, seconds: float, keepalive: bytes | None
    ) -> None:
        if seconds <= 0:
            return
        if keepalive is None or resp is None:
            await asyncio.sleep(seconds)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (left := deadline - loop.time()) > 0:
            await asyncio.sleep(min(left, self.keepalive_interval))
            if loop.time() < deadline:
                await resp.write(keepalive)

    def stream_ctype(self, call: Call) -> str:
        return self.stream_content_type

    def _headers(self, request: web.Request, reply: Reply, ctype: str) -> dict[str, str]:
        return {**self.extra_headers(request), "Content-Type": ctype, **reply.headers}

    async def _stream(self, call: Call, reply: Reply) -> web.StreamResponse:
        frames = [
            f
            for f in self.stream_frames(call, reply)
            if not (reply.no_terminator and f.kind == "end")
        ]
        await asyncio.sleep(reply.headers_delay)
        resp = web.StreamResponse(
            headers=self._headers(call.request, reply, self.stream_ctype(call))
        )
        resp.headers["Cache-Control"] = "no-cache"
        await resp.prepare(call.request)
        pos, tokens_over = 0, False
        for frame in frames:
            checkpoint = frame.kind == "token" or (
                frame.kind in ("tail", "end") and not tokens_over
            )
            if checkpoint:
                tokens_over = frame.kind != "token"
                if reply.cut_after == pos:
                    self._drop(call.request, hard=False)
                    return resp
                if reply.midstream_error == pos:
                    key = self.exchange(call.request).api_key
                    await resp.write(echo_key_bytes(self.stream_error_frame(call, reply), key))
                    return resp
                if reply.stall_after == pos:
                    await self._pause(resp, reply.stall, self.stream_keepalive)
                delay = (
                    reply.ttft if pos == 0 else (reply.per_token if frame.kind == "token" else 0.0)
                )
                await self._pause(resp, delay, self.stream_keepalive)
                if reply.malformed_at == pos:
                    await resp.write(malformed(frame.data))
                pos += frame.kind == "token"
            await resp.write(frame.data)
        return resp

    async def _body(self, call: Call, reply: Reply) -> web.StreamResponse:
        answer = self.response_body if call.kind == "chat" else self.embeddings_body
        body = json.dumps(answer(call, reply)).encode()
        if reply.malformed_at is not None:
            body = body[: len(body) // 2]
        n = len(reply.text_tokens) + len(reply.reasoning_tokens)
        wait = reply.ttft + reply.per_token * max(0, n - 1)
        headers = self._headers(call.request, reply, "application/json")
        await asyncio.sleep(reply.headers_delay)
        split = reply.cut_after is not None or reply.stall_after is not None
        if self.body_keepalive is None and not split:
            await asyncio.sleep(wait)
            return web.Response(body=body, headers=headers)
        resp = web.StreamResponse(headers=headers)
        if self.body_keepalive is None:
            await asyncio.sleep(wait)
            resp.content_length = len(body)
        await resp.prepare(call.request)
        if self.body_keepalive is not None:
            await resp.write(self.body_keepalive)
            await self._pause(resp, wait, self.body_keepalive)
        if split:
            half = len(body) // 2
            await resp.write(body[:half])
            if reply.cut_after is not None:
                self._drop(call.request, hard=False)
                return resp
            await self._pause(resp, reply.stall, None)
            body = body[half:]
        await resp.write(body)
        return resp
