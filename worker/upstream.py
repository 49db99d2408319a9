"""The HTTP edge to providers: one shared httpx client per worker process, the `mock://`
transport, and the one place where transport exceptions become `UpstreamError`s."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx

from shared.errors import Disposition, UpstreamError
from shared.providers.base import UpstreamRequest
from shared.providers.mock import mock_completion, mock_error, mock_stream
from shared.settings import Settings


class _MockStream(httpx.AsyncByteStream):
    def __init__(self, source: AsyncIterator[bytes]) -> None:
        self._source = source

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._source:
            yield chunk


class MockTransport(httpx.AsyncBaseTransport):
    """Serves the built-in `mock` provider inside the worker: no socket, no key."""

    def __init__(self, ttft: float, per_token: float) -> None:
        self._ttft = ttft
        self._per_token = per_token

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        import orjson

        body = orjson.loads(await request.aread())
        failure = mock_error(str(body.get("model", "")))
        if failure is not None:
            status, payload = failure
            return httpx.Response(status, content=payload,
                                  headers={"content-type": "application/json"})
        if body.get("stream"):
            return httpx.Response(200, stream=_MockStream(
                mock_stream(body, self._ttft, self._per_token)),
                headers={"content-type": "text/event-stream"})
        return httpx.Response(200, content=mock_completion(body),
                              headers={"content-type": "application/json"})


def make_client(settings: Settings) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=1000,
                          keepalive_expiry=30)
    timeout = httpx.Timeout(connect=settings.connect_timeout, read=None, write=30, pool=None)
    mock = MockTransport(settings.mock.ttft_ms / 1000, settings.mock.token_ms / 1000)
    return httpx.AsyncClient(limits=limits, timeout=timeout, mounts={"mock://": mock},
                             follow_redirects=False, trust_env=False)


def transport_error(exc: Exception, provider: str) -> UpstreamError:
    """Translate httpx's exceptions (never shown raw to callers)."""
    if isinstance(exc, httpx.ConnectTimeout):
        return UpstreamError(f"{provider}: connection timed out", status=504,
                             disposition=Disposition.FAILOVER, code="upstream_timeout")
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamError(f"{provider}: upstream timed out", status=504,
                             disposition=Disposition.FAILOVER, code="upstream_timeout")
    kind = type(exc).__name__
    return UpstreamError(f"{provider}: upstream connection failed ({kind})", status=502,
                         disposition=Disposition.RETRY, code="upstream_connection_error")


@contextlib.asynccontextmanager
async def open_response(client: httpx.AsyncClient, req: UpstreamRequest,
                        provider: str) -> AsyncIterator[httpx.Response]:
    """Send and yield the streaming response; closing the context closes the connection."""
    request = client.build_request(req.method, req.url, headers=req.headers, content=req.body)
    try:
        response = await client.send(request, stream=True)
    except httpx.HTTPError as exc:
        raise transport_error(exc, provider) from None
    try:
        yield response
    finally:
        await response.aclose()


async def read_body(response: httpx.Response, provider: str) -> bytes:
    try:
        return await response.aread()
    except httpx.HTTPError as exc:
        raise transport_error(exc, provider) from None
