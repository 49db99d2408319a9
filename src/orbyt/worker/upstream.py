"""The HTTP edge to providers, and the one place where transport exceptions become
`UpstreamError`s.

`Upstream` is the worker's client: one shared connection pool per process. Two
implementations sit behind it: aiohttp (default) and httpx (`ORBYT_UPSTREAM_CLIENT=httpx`).
Measured on the streaming hot path (bench/README.md), httpx/httpcore spent about twice the
worker CPU per relayed stream (anyio cancel scopes and pool bookkeeping on every read),
which capped one worker's throughput; more clients or pool tuning did not close the gap.
The built-in `mock` provider is an httpx transport on the `mock://` scheme, in-process.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Protocol

import aiohttp
import httpx
import orjson

from orbyt.shared.errors import Disposition, UpstreamError
from orbyt.shared.providers.base import UpstreamRequest
from orbyt.shared.providers.mock import (
    MockCut,
    mock_completion,
    mock_cut_body,
    mock_error,
    mock_stream,
)
from orbyt.shared.settings import Settings


class _MockStream(httpx.AsyncByteStream):
    def __init__(self, source: AsyncIterator[bytes]) -> None:
        self._source = source

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._source:
                yield chunk
        except MockCut:  # `mock/cut`: as a dropped connection reaches the client
            raise httpx.RemoteProtocolError("peer closed connection mid-body") from None


class MockTransport(httpx.AsyncBaseTransport):
    """Serves the built-in `mock` provider inside the worker: no socket, no key."""

    def __init__(self, ttft: float, per_token: float) -> None:
        self._ttft = ttft
        self._per_token = per_token

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = orjson.loads(await request.aread())
        failure = mock_error(str(body.get("model", "")))
        if failure is not None:
            headers = {"content-type": "application/json", **failure.headers}
            return httpx.Response(failure.status, content=failure.body, headers=headers)
        if body.get("stream"):
            return httpx.Response(
                200,
                stream=_MockStream(mock_stream(body, self._ttft, self._per_token)),
                headers={"content-type": "text/event-stream"},
            )
        if body.get("model") == "cut":
            return httpx.Response(
                200,
                stream=_MockStream(mock_cut_body(body)),
                headers={"content-type": "application/json"},
            )
        return httpx.Response(
            200, content=mock_completion(body), headers={"content-type": "application/json"}
        )


def timeout_error(
    provider: str, what: str = "timed out", before_content: bool = True
) -> UpstreamError:
    """A silent upstream: fail over at once (a silent route is never retried)."""
    return UpstreamError(
        f"{provider}: upstream {what}",
        status=504,
        disposition=Disposition.FAILOVER,
        code="upstream_timeout",
        before_content=before_content,
    )


def transport_error(exc: BaseException, provider: str) -> UpstreamError:
    """Translate a client library's exception (never shown raw to callers)."""
    if isinstance(exc, httpx.TimeoutException | aiohttp.ServerTimeoutError | TimeoutError):
        return timeout_error(provider)
    kind = type(exc).__name__
    return UpstreamError(
        f"{provider}: upstream connection failed ({kind})",
        status=502,
        disposition=Disposition.RETRY,
        code="upstream_connection_error",
    )


class UpstreamResponse(Protocol):
    status_code: int

    @property
    def headers(self) -> Mapping[str, str]: ...

    def aiter_raw(self) -> AsyncIterator[bytes]: ...

    async def aread(self) -> bytes: ...


class _HttpxResponse:
    __slots__ = ("_provider", "_resp", "status_code")

    def __init__(self, resp: httpx.Response, provider: str) -> None:
        self._resp = resp
        self._provider = provider
        self.status_code = resp.status_code

    @property
    def headers(self) -> Mapping[str, str]:
        return self._resp.headers

    async def aiter_raw(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._resp.aiter_raw():
                yield chunk
        except httpx.HTTPError as exc:
            raise transport_error(exc, self._provider) from None

    async def aread(self) -> bytes:
        try:
            return await self._resp.aread()
        except httpx.HTTPError as exc:
            raise transport_error(exc, self._provider) from None


class _AiohttpResponse:
    __slots__ = ("_provider", "_resp", "status_code")

    def __init__(self, resp: aiohttp.ClientResponse, provider: str) -> None:
        self._resp = resp
        self._provider = provider
        self.status_code = resp.status

    @property
    def headers(self) -> Mapping[str, str]:
        return self._resp.headers

    async def aiter_raw(self) -> AsyncIterator[bytes]:
        content = self._resp.content
        try:
            async for chunk in content.iter_any():
                yield chunk
        except aiohttp.ClientError as exc:
            # aiohttp raises a connection failure before handing out what it had already
            # buffered: an answer cut after 40 tokens would lose the last ones received.
            rest = _buffered(content)
            if rest:
                yield rest
            raise transport_error(exc, self._provider) from None

    async def aread(self) -> bytes:
        try:
            return await self._resp.read()
        except aiohttp.ClientError as exc:
            raise transport_error(exc, self._provider) from None


def _buffered(content: aiohttp.StreamReader) -> bytes:
    """Bytes received but not yet read (aiohttp has no public accessor once the stream
    carries an exception)."""
    read_nowait = getattr(content, "_read_nowait", None)
    try:
        return bytes(read_nowait(-1)) if read_nowait is not None else b""
    except Exception:
        return b""


class Upstream:
    """The worker's shared upstream client (one per process)."""

    def __init__(self, settings: Settings, kind: str | None = None) -> None:
        self.kind = kind or settings.upstream_client
        mock = MockTransport(settings.mock.ttft_ms / 1000, settings.mock.token_ms / 1000)
        self._httpx = httpx.AsyncClient(
            limits=httpx.Limits(
                max_connections=None, max_keepalive_connections=1000, keepalive_expiry=30
            ),
            timeout=httpx.Timeout(connect=settings.connect_timeout, read=None, write=30, pool=None),
            mounts={"mock://": mock},
            follow_redirects=False,
            trust_env=False,
        )
        self._connect_timeout = settings.connect_timeout
        self._aiohttp: aiohttp.ClientSession | None = None

    def _session(self) -> aiohttp.ClientSession:
        if self._aiohttp is None or self._aiohttp.closed:
            connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=30, ttl_dns_cache=300)
            self._aiohttp = aiohttp.ClientSession(
                connector=connector,
                trust_env=False,
                auto_decompress=True,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._connect_timeout),
            )
        return self._aiohttp

    @contextlib.asynccontextmanager
    async def open(self, req: UpstreamRequest, provider: str) -> AsyncIterator[UpstreamResponse]:
        """Send and yield the response; leaving the context releases the connection."""
        if self.kind == "aiohttp" and not req.url.startswith("mock://"):
            try:
                resp = await self._session().request(
                    req.method, req.url, headers=req.headers, data=req.body, allow_redirects=False
                )
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise transport_error(exc, provider) from None
            try:
                yield _AiohttpResponse(resp, provider)
            finally:
                resp.release()
            return
        request = self._httpx.build_request(
            req.method, req.url, headers=req.headers, content=req.body
        )
        try:
            response = await self._httpx.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise transport_error(exc, provider) from None
        try:
            yield _HttpxResponse(response, provider)
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        await self._httpx.aclose()
        if self._aiohttp is not None:
            await self._aiohttp.close()
