"""A fast mock of OpenAI's Chat Completions API for benchmarks.

It speaks just enough HTTP/1.1 (keep-alive, Content-Length or chunked request bodies,
chunked responses) on a raw asyncio protocol, so that at 1,000 concurrent streams the
mock is never the bottleneck. Responses are deterministic: a completion of ``n`` tokens
has the content ``"tok0 tok1 ... tok{n-1} "``, streamed as one chunk per token, in the
exact wire format of the OpenAI API (data-only SSE, a first chunk with the role, one
chunk per token, a finish chunk, a usage chunk when ``stream_options.include_usage``,
then ``data: [DONE]``).

Routes:
    POST /v1/chat/completions   stream and non-stream
    POST /v1/embeddings         one fixed vector per input (``dimensions`` or 1536 floats),
                                as floats or base64 (``encoding_format``), after ``ttft``
    GET  /v1/models             OpenAI list shape
    GET  /_bench/profile        the current profile (tokens, ttft, per_token)
    POST /_bench/profile        change the profile at run time (JSON body, any subset)
    GET  /_bench/stats          counters since start or last reset
    POST /_bench/stats/reset    zero the counters

Run: ``python bench/mock_upstream.py --port 9100 --tokens 20 --ttft 0.2 --per-token 0.02``
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import signal
import socket
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, cast

import orjson

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 16 * 1024 * 1024
PROMPT_TOKENS = 10
CREATED = int(time.time())


def expected_content(tokens: int) -> str:
    """The deterministic completion text for ``tokens`` tokens."""
    return "".join(f"tok{i} " for i in range(tokens))


@dataclass
class Profile:
    tokens: int = 20
    ttft: float = 0.0
    per_token: float = 0.0


@dataclass
class Stats:
    requests: int = 0
    chat_stream: int = 0
    chat_nonstream: int = 0
    models: int = 0
    embeddings: int = 0
    errors_4xx: int = 0
    connections_opened: int = 0
    connections_active: int = 0
    streams_active: int = 0
    max_streams_active: int = 0
    cancelled_streams: int = 0
    auth_headers: dict[str, int] = field(default_factory=dict)


PROFILE = Profile()
STATS = Stats()
_request_counter = 0

_REASONS = {
    200: b"OK",
    400: b"Bad Request",
    404: b"Not Found",
    405: b"Method Not Allowed",
    411: b"Length Required",
    413: b"Payload Too Large",
}
_TOKEN_PARTS: list[bytes] = []


def _token_part(i: int) -> bytes:
    """`"choices":[...]` tail of the chunk carrying token ``i`` (cached)."""
    while len(_TOKEN_PARTS) <= i:
        k = len(_TOKEN_PARTS)
        _TOKEN_PARTS.append(
            b'[{"index":0,"delta":{"content":"tok%d "},"logprobs":null,"finish_reason":null}]' % k
        )
    return _TOKEN_PARTS[i]


_ROLE_PART = (
    b'[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},'
    b'"logprobs":null,"finish_reason":null}]'
)
_FINISH_PART = b'[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]'
_DONE_EVENT = b"data: [DONE]\n\n"


def _http_chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def _usage(tokens: int) -> bytes:
    return b'{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}' % (
        PROMPT_TOKENS,
        tokens,
        PROMPT_TOKENS + tokens,
    )


class StreamRender:
    """Pre-renders the SSE events of one streamed completion."""

    def __init__(self, request_id: bytes, model: bytes, include_usage: bool, tokens: int):
        self.head = (
            b'data: {"id":"'
            + request_id
            + b'","object":"chat.completion.chunk","created":'
            + str(CREATED).encode()
            + b',"model":'
            + model
            + b',"system_fingerprint":"fp_bench","choices":'
        )
        self.tail = b',"usage":null}\n\n' if include_usage else b"}\n\n"
        self.include_usage = include_usage
        self.tokens = tokens

    def event(self, choices: bytes) -> bytes:
        return self.head + choices + self.tail

    def first(self) -> bytes:
        return self.event(_ROLE_PART)

    def token(self, i: int) -> bytes:
        return self.event(_token_part(i))

    def ending(self) -> bytes:
        out = self.event(_FINISH_PART)
        if self.include_usage:
            out += self.head + b'[],"usage":' + _usage(self.tokens) + b"}\n\n"
        return out + _DONE_EVENT


def _response_head(status: int, content_type: bytes, length: int | None, keep_alive: bool) -> bytes:
    lines = [
        b"HTTP/1.1 %d %s" % (status, _REASONS.get(status, b"OK")),
        b"Content-Type: " + content_type,
        b"x-request-id: mock",
    ]
    if length is None:
        lines.append(b"Transfer-Encoding: chunked")
        lines.append(b"Cache-Control: no-cache")
    else:
        lines.append(b"Content-Length: %d" % length)
    lines.append(b"Connection: keep-alive" if keep_alive else b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _error_body(message: str, code: str) -> bytes:
    return orjson.dumps(
        {
            "error": {
                "message": message,
                "type": "invalid_request_error",
                "param": None,
                "code": code,
            }
        }
    )


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    keep_alive: bool


class _ParseError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _parse_one(buf: bytearray) -> tuple[Request, int] | None:
    """Parse one request from ``buf``; return it and the bytes consumed, or None if incomplete."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        if len(buf) > MAX_HEADER_BYTES:
            raise _ParseError(413, "headers too large")
        return None
    head = bytes(buf[:end]).decode("latin-1").split("\r\n")
    try:
        method, path, version = head[0].split(" ", 2)
    except ValueError as exc:
        raise _ParseError(400, "bad request line") from exc
    headers: dict[str, str] = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    conn = headers.get("connection", "").lower()
    keep_alive = "close" not in conn if version == "HTTP/1.1" else "keep-alive" in conn
    start = end + 4
    if "chunked" in headers.get("transfer-encoding", "").lower():
        parsed = _parse_chunked(buf, start)
        if parsed is None:
            return None
        body, consumed = parsed
    else:
        length = int(headers.get("content-length", "0") or 0)
        if length > MAX_BODY_BYTES:
            raise _ParseError(413, "body too large")
        if len(buf) < start + length:
            return None
        body, consumed = bytes(buf[start : start + length]), start + length
    return Request(method, path.split("?", 1)[0], headers, body, keep_alive), consumed


def _parse_chunked(buf: bytearray, pos: int) -> tuple[bytes, int] | None:
    body = bytearray()
    while True:
        line_end = buf.find(b"\r\n", pos)
        if line_end < 0:
            return None
        size = int(bytes(buf[pos:line_end]).split(b";", 1)[0], 16)
        pos = line_end + 2
        if size == 0:
            trailer_end = buf.find(b"\r\n\r\n", pos - 2)
            if trailer_end < 0:
                return None
            return bytes(body), trailer_end + 4
        if len(buf) < pos + size + 2:
            return None
        body += buf[pos : pos + size]
        if len(body) > MAX_BODY_BYTES:
            raise _ParseError(413, "body too large")
        pos += size + 2


class MockProtocol(asyncio.Protocol):
    """One client connection. Requests are served in order; a pending stream blocks the next."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.busy = False
        self.closed = False
        self.timer: asyncio.TimerHandle | None = None

    # asyncio.Protocol -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        STATS.connections_opened += 1
        STATS.connections_active += 1
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        STATS.connections_active -= 1
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
            STATS.streams_active -= 1
            STATS.cancelled_streams += 1

    def data_received(self, data: bytes) -> None:
        self.buf += data
        self._process()

    # request handling ---------------------------------------------------------------------
    def _process(self) -> None:
        while not self.busy and not self.closed and self.buf:
            if self.buf.startswith(b"\r\n"):
                del self.buf[:2]
                continue
            try:
                parsed = _parse_one(self.buf)
            except (_ParseError, ValueError) as exc:
                status = exc.status if isinstance(exc, _ParseError) else 400
                self._send_json(status, _error_body(str(exc), "bad_request"), keep_alive=False)
                return
            if parsed is None:
                return
            request, consumed = parsed
            del self.buf[:consumed]
            if request.headers.get("expect", "").lower() == "100-continue":
                self._write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self._dispatch(request)

    def _dispatch(self, req: Request) -> None:
        STATS.requests += 1
        auth = req.headers.get("authorization", "")
        STATS.auth_headers[auth[:24]] = STATS.auth_headers.get(auth[:24], 0) + 1
        route = (req.method, req.path)
        if route == ("POST", "/v1/chat/completions"):
            self._chat(req)
        elif route == ("POST", "/v1/embeddings"):
            self._embeddings(req)
        elif route == ("GET", "/v1/models"):
            STATS.models += 1
            body = orjson.dumps(
                {
                    "object": "list",
                    "data": [
                        {
                            "id": "gpt-bench",
                            "object": "model",
                            "created": CREATED,
                            "owned_by": "mock",
                        }
                    ],
                }
            )
            self._send_json(200, body, req.keep_alive)
        elif req.path == "/_bench/profile":
            self._profile(req)
        elif route == ("GET", "/_bench/stats"):
            self._send_json(200, orjson.dumps(asdict(STATS)), req.keep_alive)
        elif route == ("POST", "/_bench/stats/reset"):
            _reset_stats()
            self._send_json(200, orjson.dumps(asdict(STATS)), req.keep_alive)
        elif req.path in ("/v1/chat/completions", "/v1/models"):
            self._client_error(405, "method not allowed", req.keep_alive)
        else:
            self._client_error(404, f"no route {req.path}", req.keep_alive)

    def _profile(self, req: Request) -> None:
        if req.method == "POST":
            try:
                update = orjson.loads(req.body or b"{}")
                _apply_profile(update)
            except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
                self._client_error(400, f"bad profile: {exc}", req.keep_alive)
                return
        self._send_json(200, orjson.dumps(asdict(PROFILE)), req.keep_alive)

    def _chat(self, req: Request) -> None:
        global _request_counter
        try:
            body = orjson.loads(req.body)
            if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
                raise TypeError("'messages' must be a list")
            model = body.get("model")
            if not isinstance(model, str):
                raise TypeError("'model' must be a string")
        except (orjson.JSONDecodeError, TypeError) as exc:
            self._client_error(400, f"invalid body: {exc}", req.keep_alive)
            return
        _request_counter += 1
        request_id = b"chatcmpl-bench%012d" % _request_counter
        model_json = orjson.dumps(model)
        profile = PROFILE
        if body.get("stream"):
            STATS.chat_stream += 1
            options = body.get("stream_options") or {}
            include_usage = bool(isinstance(options, dict) and options.get("include_usage"))
            self._stream(
                req, StreamRender(request_id, model_json, include_usage, profile.tokens), profile
            )
        else:
            STATS.chat_nonstream += 1
            payload = _completion_body(request_id, model_json, profile.tokens)
            delay = profile.ttft + profile.per_token * max(profile.tokens - 1, 0)
            if delay <= 0:
                self._send_json(200, payload, req.keep_alive)
                return
            self.busy = True
            loop = asyncio.get_running_loop()
            self.timer = loop.call_later(delay, self._finish_delayed, payload, req.keep_alive)
            STATS.streams_active += 1

    def _embeddings(self, req: Request) -> None:
        try:
            body = orjson.loads(req.body)
            inputs = body["input"]
            count = 1 if isinstance(inputs, str) or isinstance(inputs[0], int) else len(inputs)
            size = int(body.get("dimensions") or EMBEDDING_SIZE)
            model_json = orjson.dumps(body["model"])
        except (orjson.JSONDecodeError, TypeError, KeyError, IndexError, ValueError) as exc:
            self._client_error(400, f"invalid body: {exc}", req.keep_alive)
            return
        STATS.embeddings += 1
        vector = _vector_json(size, body.get("encoding_format") == "base64")
        items = b",".join(
            b'{"object":"embedding","index":%d,"embedding":%s}' % (i, vector) for i in range(count)
        )
        usage = b'{"prompt_tokens":%d,"total_tokens":%d}' % (
            PROMPT_TOKENS * count,
            PROMPT_TOKENS * count,
        )
        payload = b'{"object":"list","data":[%s],"model":%s,"usage":%s}' % (
            items,
            model_json,
            usage,
        )
        if PROFILE.ttft <= 0:
            self._send_json(200, payload, req.keep_alive)
            return
        self.busy = True
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(PROFILE.ttft, self._finish_delayed, payload, req.keep_alive)
        STATS.streams_active += 1

    def _finish_delayed(self, payload: bytes, keep_alive: bool) -> None:
        self.timer = None
        STATS.streams_active -= 1
        self.busy = False
        self._send_json(200, payload, keep_alive)
        self._process()

    def _stream(self, req: Request, render: StreamRender, profile: Profile) -> None:
        head = _response_head(200, b"text/event-stream; charset=utf-8", None, req.keep_alive)
        if profile.ttft <= 0 and profile.per_token <= 0:
            parts = [render.first()] + [render.token(i) for i in range(render.tokens)]
            parts.append(render.ending())
            self._write(head + b"".join(_http_chunk(p) for p in parts) + b"0\r\n\r\n")
            if not req.keep_alive:
                self._close()
            return
        self._write(head)
        self.busy = True
        STATS.streams_active += 1
        STATS.max_streams_active = max(STATS.max_streams_active, STATS.streams_active)
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(
            profile.ttft, self._tick, render, 0, profile.per_token, req.keep_alive
        )

    def _tick(self, render: StreamRender, i: int, per_token: float, keep_alive: bool) -> None:
        self.timer = None
        if self.closed:
            return
        out = render.first() if i == 0 else b""
        if i < render.tokens:
            out += render.token(i)
        last = i >= render.tokens - 1
        if last:
            out += render.ending()
            self._write(_http_chunk(out) + b"0\r\n\r\n")
            STATS.streams_active -= 1
            self.busy = False
            if not keep_alive:
                self._close()
                return
            self._process()
            return
        self._write(_http_chunk(out))
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(per_token, self._tick, render, i + 1, per_token, keep_alive)

    # output -----------------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def _send_json(self, status: int, body: bytes, keep_alive: bool) -> None:
        self._write(_response_head(status, b"application/json", len(body), keep_alive) + body)
        if not keep_alive:
            self._close()

    def _client_error(self, status: int, message: str, keep_alive: bool) -> None:
        STATS.errors_4xx += 1
        self._send_json(status, _error_body(message, "bad_request"), keep_alive)


EMBEDDING_SIZE = 1536
_VECTORS: dict[tuple[int, bool], bytes] = {}


def _vector_json(size: int, as_base64: bool) -> bytes:
    """The one vector of `size` every input gets, rendered once: floats or base64 of
    little-endian float32s (OpenAI's two encodings)."""
    key = (size, as_base64)
    if key not in _VECTORS:
        values = [((i * 7919) % 1000) / 1000 - 0.5 for i in range(size)]
        packed = struct.pack(f"<{size}f", *values)
        floats = list(struct.unpack(f"<{size}f", packed))
        _VECTORS[key] = orjson.dumps(base64.b64encode(packed).decode() if as_base64 else floats)
    return _VECTORS[key]


def _completion_body(request_id: bytes, model_json: bytes, tokens: int) -> bytes:
    content = orjson.dumps(expected_content(tokens))
    return (
        b'{"id":"'
        + request_id
        + b'","object":"chat.completion","created":'
        + str(CREATED).encode()
        + b',"model":'
        + model_json
        + b',"system_fingerprint":"fp_bench","choices":[{"index":0,"message":'
        b'{"role":"assistant","content":' + content + b',"refusal":null},'
        b'"logprobs":null,"finish_reason":"stop"}],"usage":'
        + _usage(tokens)
        + b',"service_tier":"default"}'
    )


def _apply_profile(update: Any) -> None:
    if not isinstance(update, dict):
        raise TypeError("profile must be an object")
    unknown = set(update) - {"tokens", "ttft", "per_token"}
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)}")
    tokens = int(update.get("tokens", PROFILE.tokens))
    ttft = float(update.get("ttft", PROFILE.ttft))
    per_token = float(update.get("per_token", PROFILE.per_token))
    if tokens < 1 or ttft < 0 or per_token < 0:
        raise ValueError("tokens must be >= 1, delays >= 0")
    PROFILE.tokens, PROFILE.ttft, PROFILE.per_token = tokens, ttft, per_token


def _reset_stats() -> None:
    active, streams = STATS.connections_active, STATS.streams_active
    fresh = Stats(connections_active=active, streams_active=streams)
    for name, value in asdict(fresh).items():
        setattr(STATS, name, value)


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(MockProtocol, host, port, backlog=4096, reuse_address=True)
    bound = server.sockets[0].getsockname()[1]
    print(
        f"mock upstream listening on http://{host}:{bound}/v1 profile={asdict(PROFILE)}", flush=True
    )
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100, help="0 picks a free port")
    parser.add_argument("--tokens", type=int, default=20, help="completion tokens (default 20)")
    parser.add_argument("--ttft", type=float, default=0.0, help="seconds before the first token")
    parser.add_argument("--per-token", type=float, default=0.0, help="seconds between tokens")
    parser.add_argument("--no-uvloop", action="store_true", help="use the default asyncio loop")
    args = parser.parse_args(argv)
    _apply_profile({"tokens": args.tokens, "ttft": args.ttft, "per_token": args.per_token})
    with asyncio.Runner(loop_factory=loop_factory(not args.no_uvloop)) as runner:
        runner.run(serve(args.host, args.port))


def loop_factory(use_uvloop: bool) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory when asked for and installed, else asyncio's default."""
    if not use_uvloop:
        return None
    try:
        import uvloop
    except ImportError:
        print("uvloop not installed; using asyncio's default loop", file=sys.stderr)
        return None
    return uvloop.new_event_loop


if __name__ == "__main__":
    main()
