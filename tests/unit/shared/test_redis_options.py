"""The one Redis URL parser: what every client (redis-py, arq, the fast connection) reads."""

from __future__ import annotations

import ssl

import pytest
from arq.connections import ArqRedis
from redis.asyncio import Redis
from redis.asyncio.sentinel import SentinelConnectionPool

from orbyt.shared.redis.clients import client
from orbyt.shared.redis.options import parse
from orbyt.shared.redis.roles import queue_url, shared, state_url
from orbyt.shared.settings import Settings


def test_plain_url_with_acl_credentials_and_db() -> None:
    opts = parse("redis://orbyt:p%40ss@10.0.0.5:6380/3?socket_timeout=2.5")
    assert opts.hosts == (("10.0.0.5", 6380),)
    assert (opts.username, opts.password, opts.db) == ("orbyt", "p@ss", 3)
    assert opts.socket_timeout == 2.5 and not opts.tls and not opts.sentinel
    assert "p@ss" not in repr(opts)


def test_defaults() -> None:
    opts = parse("redis://localhost")
    assert opts.hosts == (("localhost", 6379),)
    assert (opts.db, opts.username, opts.password, opts.connect_timeout) == (0, None, None, 5.0)
    assert opts.socket_timeout == 5.0
    assert opts.ssl_context() is None


def test_password_only_and_user_only() -> None:
    assert parse("redis://:secret@h").password == "secret"
    opts = parse("redis://name@h")  # as redis-py reads it
    assert (opts.username, opts.password) == ("name", None)


def test_tls_options_reach_every_client() -> None:
    url = (
        "rediss://h:6390/1?ssl_ca_certs=/ca.pem&ssl_certfile=/c.pem&ssl_keyfile=/k.pem"
        "&ssl_cert_reqs=required&socket_connect_timeout=1.5"
    )
    opts = parse(url)
    assert opts.tls and opts.ssl_ca_certs == "/ca.pem" and opts.connect_timeout == 1.5
    kwargs = opts.connection_kwargs()
    assert kwargs["ssl"] is True and kwargs["ssl_ca_certs"] == "/ca.pem"
    assert kwargs["ssl_certfile"] == "/c.pem" and kwargs["ssl_keyfile"] == "/k.pem"
    conn = client(url).connection_pool.connection_kwargs
    assert conn["ssl_ca_certs"] == "/ca.pem" and conn["db"] == 1 and conn["port"] == 6390


def test_cert_reqs_none_turns_verification_off_everywhere() -> None:
    context = parse("rediss://h?ssl_cert_reqs=none").ssl_context()
    assert context is not None
    assert context.verify_mode == ssl.CERT_NONE and not context.check_hostname


def test_sentinel_url() -> None:
    opts = parse(
        "rediss+sentinel://u:pw@s1:26379,s2:26380,s3/primary/2?sentinel_password=spw"
        "&ssl_ca_certs=/ca.pem"
    )
    assert opts.hosts == (("s1", 26379), ("s2", 26380), ("s3", 26379))
    assert opts.sentinel_service == "primary" and opts.db == 2 and opts.tls
    assert (opts.username, opts.password, opts.sentinel_password) == ("u", "pw", "spw")
    assert opts.sentinel_kwargs()["password"] == "spw"
    assert opts.sentinel_kwargs()["ssl_ca_certs"] == "/ca.pem"
    assert parse("redis+sentinel://s1").sentinel_service == "mymaster"


def test_sentinel_clients_follow_the_master() -> None:
    url = "redis+sentinel://127.0.0.1:1,127.0.0.1:2/svc/4"
    redis = client(url)
    assert isinstance(redis.connection_pool, SentinelConnectionPool)
    assert redis.connection_pool.service_name == "svc"
    arq = client(url, redis_class=ArqRedis)
    assert isinstance(arq, ArqRedis) and isinstance(arq.connection_pool, SentinelConnectionPool)


def test_plain_client_is_keepalive_redis() -> None:
    redis = client("redis://h:1/2", max_connections=7)
    assert type(redis) is Redis
    assert redis.connection_pool.max_connections == 7
    assert redis.connection_pool.connection_kwargs["socket_keepalive"] is True


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://h", "scheme"),
        ("redis://h/x", "database number"),
        ("redis://h/1?ssl_ca_cert=/ca.pem", "unknown Redis URL options: ssl_ca_cert"),
        ("rediss://h?ssl_cert_reqs=maybe", "ssl_cert_reqs"),
        ("redis://:pw@/0", "no host"),
    ],
)
def test_bad_urls_say_what_is_wrong(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as info:
        parse(url)
    assert "pw" not in str(info.value)


def test_queue_role_defaults_to_the_state_url() -> None:
    one = Settings(redis_url="redis://a:1/0")
    assert queue_url(one) == state_url(one) == "redis://a:1/0" and shared(one)
    two = Settings(redis_url="redis://a:1/0", queue_redis_url="redis://b:2/0")
    assert (state_url(two), queue_url(two), shared(two)) == (
        "redis://a:1/0",
        "redis://b:2/0",
        False,
    )
