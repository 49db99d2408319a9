"""TLS with a private CA: every client Orbyt opens (redis-py, arq's pool, the fast
connection, the pub/sub hub) verifies the server against `ssl_ca_certs` from the one URL,
and a whole gateway serves its happy path over `rediss://`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from arq.connections import ArqRedis

from orbyt.shared.redis.clients import client
from orbyt.shared.redis.fast import PipelinedConnection
from orbyt.shared.redis.hub import PubSubHub
from orbyt.shared.redis.link import Liveness, command
from tests.fakes import Reply
from tests.gateway import Gateway, RedisServer
from tests.integration.faults_support import MSG, Fakes, read_stream, running_fakes
from tests.integration.faults_support import client as sdk
from tests.integration.redis.certs import private_ca
from tests.integration.redis.load import log_errors

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RedisServer, str]]:
    files = private_ca(tmp_path_factory.mktemp("tls"))
    server = RedisServer(tls=files)
    try:
        server.start()
    except Exception:
        pytest.skip("this redis-server was built without TLS")
    yield server, files[2]
    server.stop()


async def test_every_client_verifies_the_private_ca(tls_server: tuple[RedisServer, str]) -> None:
    server, ca = tls_server
    url = f"{server.url(2)}?ssl_ca_certs={ca}"
    redis = client(url)
    arq = client(url, redis_class=ArqRedis)
    fast = PipelinedConnection(url)
    hub = PubSubHub(url, 8, Liveness())
    try:
        await redis.set("k", "v")
        assert await arq.get("k") == b"v"
        sub = await hub.subscribe("orbyt:tls")
        replies = await fast.execute(command(b"PUBLISH", b"orbyt:tls", b"hi"), command(b"PING"))
        assert replies == [1, b"PONG"]
        assert await sub.next(2) == b"hi"
    finally:
        await hub.close()
        await fast.close()
        await redis.aclose()
        await arq.aclose()


async def test_an_unknown_ca_is_refused_by_every_client(
    tls_server: tuple[RedisServer, str],
) -> None:
    server, _ = tls_server
    url = server.url(2)  # the system trust store does not know the private CA
    fast = PipelinedConnection(url)
    redis = client(url)
    try:
        with pytest.raises(ConnectionError):
            await fast.execute(command(b"PING"))
        with pytest.raises(Exception, match=r"(?i)certificate"):
            await redis.ping()
    finally:
        await fast.close()
        await redis.aclose()


@pytest.fixture(scope="module")
def fakes() -> Iterator[Fakes]:
    with running_fakes() as f:
        yield f


def test_the_gateway_runs_over_rediss(tls_server: tuple[RedisServer, str], fakes: Fakes) -> None:
    server, ca = tls_server
    url = f"{server.url(3)}?ssl_ca_certs={ca}"
    with Gateway(url, fakes.env(), workers=1) as gw:
        fakes.primary.default = Reply(text="over TLS")
        r = sdk(gw).chat.completions.create(model="openai/gpt-5-mini", messages=MSG)
        assert r.choices[0].message.content == "over TLS"
        s = read_stream(
            sdk(gw).chat.completions.create(model="openai/gpt-5-mini", messages=MSG, stream=True)
        )
        assert s.error is None and s.text == r.choices[0].message.content
        assert s.finishes == ["stop"]
        assert not log_errors(gw.all_logs())
