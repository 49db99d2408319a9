"""The one Redis URL parser: every client Orbyt opens (redis-py, arq's pool, the fast
pipelined connection, the pub/sub hub) reads its address, TLS and credentials from here.

Accepted URLs:
    redis://[user:password@]host[:port][/db][?options]
    rediss://...                                  (TLS)
    redis+sentinel://[user:password@]h1:26379,h2:26379[/service[/db]][?options]
    rediss+sentinel://...                         (TLS to the sentinels and the master)

Options (query string): `ssl_ca_certs`, `ssl_certfile`, `ssl_keyfile`,
`ssl_cert_reqs` (required|optional|none), `ssl_check_hostname` (true|false),
`socket_connect_timeout`, `socket_timeout` (seconds, both 5 by default), and for Sentinel
`sentinel_username`, `sentinel_password` (the sentinels' own ACL; the URL's credentials are
the master's). The service name defaults to `mymaster`. Unknown options are an error: a
typo must not silently drop TLS verification.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

SCHEMES = {
    "redis": (False, False),
    "rediss": (True, False),
    "redis+sentinel": (False, True),
    "rediss+sentinel": (True, True),
}
_CERT_REQS = {"required": ssl.CERT_REQUIRED, "optional": ssl.CERT_OPTIONAL, "none": ssl.CERT_NONE}
_OPTIONS = {
    "ssl_ca_certs",
    "ssl_certfile",
    "ssl_keyfile",
    "ssl_cert_reqs",
    "ssl_check_hostname",
    "socket_connect_timeout",
    "socket_timeout",
    "sentinel_username",
    "sentinel_password",
}


@dataclass(frozen=True, slots=True)
class RedisOptions:
    """Where one Redis role lives and how to reach it (secrets are kept out of `repr`)."""

    hosts: tuple[tuple[str, int], ...]  # the server, or every sentinel
    db: int = 0
    tls: bool = False
    sentinel_service: str | None = None  # set: `hosts` are sentinels
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sentinel_username: str | None = None
    sentinel_password: str | None = field(default=None, repr=False)
    ssl_ca_certs: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_cert_reqs: str = "required"
    ssl_check_hostname: bool = False  # redis-py's and arq's default, kept for all clients
    connect_timeout: float = 5.0
    # redis-py: a reply awaited this long means a dead connection (it is dropped and the
    # command fails), so a silently dropped connection cannot hang a request or the worker
    socket_timeout: float | None = 5.0

    @property
    def sentinel(self) -> bool:
        return self.sentinel_service is not None

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of the fast connection (same verification as redis-py's)."""
        if not self.tls:
            return None
        context = ssl.create_default_context(cafile=self.ssl_ca_certs)
        context.check_hostname = self.ssl_check_hostname and self.ssl_cert_reqs != "none"
        context.verify_mode = _CERT_REQS[self.ssl_cert_reqs]
        if self.ssl_certfile:
            context.load_cert_chain(self.ssl_certfile, self.ssl_keyfile)
        return context

    def connection_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of a redis-py connection to the server (or the master)."""
        kwargs: dict[str, Any] = {
            "db": self.db,
            "username": self.username,
            "password": self.password,
            "socket_connect_timeout": self.connect_timeout,
            "socket_timeout": self.socket_timeout,
            "socket_keepalive": True,
        }
        return kwargs | self.tls_kwargs()

    def tls_kwargs(self) -> dict[str, Any]:
        if not self.tls:
            return {}
        return {
            "ssl": True,
            "ssl_ca_certs": self.ssl_ca_certs,
            "ssl_certfile": self.ssl_certfile,
            "ssl_keyfile": self.ssl_keyfile,
            "ssl_cert_reqs": self.ssl_cert_reqs,
            "ssl_check_hostname": self.ssl_check_hostname,
        }

    def sentinel_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of a redis-py connection to a sentinel."""
        return {
            "username": self.sentinel_username,
            "password": self.sentinel_password,
            "socket_connect_timeout": self.connect_timeout,
            "socket_timeout": self.connect_timeout,
            "socket_keepalive": True,
        } | self.tls_kwargs()


def parse(url: str) -> RedisOptions:
    """Parse a Redis URL (module docstring); ValueError names what is wrong, never a secret."""
    scheme, _, rest = url.partition("://")
    if scheme not in SCHEMES or not rest:
        raise ValueError(f"unsupported Redis URL scheme {scheme!r} (redis, rediss, +sentinel)")
    tls, sentinel = SCHEMES[scheme]
    parts = urlsplit("redis://" + rest)
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    username, password = _credentials(userinfo)
    hosts = tuple(_host(h, 26379 if sentinel else 6379) for h in hostlist.split(","))
    path = [p for p in parts.path.split("/") if p]
    service: str | None = None
    if sentinel:
        service = unquote(path.pop(0)) if path else "mymaster"
    if len(path) > 1 or (path and not path[0].isdigit()):
        raise ValueError("the Redis URL path must be a database number")
    query = dict(parse_qsl(parts.query))
    unknown = set(query) - _OPTIONS
    if unknown:
        raise ValueError(f"unknown Redis URL options: {', '.join(sorted(unknown))}")
    reqs = query.get("ssl_cert_reqs", "required").lower()
    if reqs not in _CERT_REQS:
        raise ValueError("ssl_cert_reqs must be required, optional or none")
    timeout = query.get("socket_timeout")
    return RedisOptions(
        hosts=hosts,
        db=int(path[0]) if path else 0,
        tls=tls,
        sentinel_service=service,
        username=username,
        password=password,
        sentinel_username=query.get("sentinel_username"),
        sentinel_password=query.get("sentinel_password"),
        ssl_ca_certs=query.get("ssl_ca_certs"),
        ssl_certfile=query.get("ssl_certfile"),
        ssl_keyfile=query.get("ssl_keyfile"),
        ssl_cert_reqs=reqs,
        ssl_check_hostname=query.get("ssl_check_hostname", "false").lower() in ("1", "true"),
        connect_timeout=float(query.get("socket_connect_timeout", 5.0)),
        socket_timeout=float(timeout) if timeout else 5.0,
    )


def _credentials(userinfo: str) -> tuple[str | None, str | None]:
    if not userinfo:
        return None, None
    user, colon, password = userinfo.partition(":")
    if not colon:  # redis://name@host: a user name alone, as redis-py reads it
        return unquote(user), None
    return (unquote(user) or None), (unquote(password) or None)


def _host(text: str, default_port: int) -> tuple[str, int]:
    if text.startswith("["):  # [::1]:6379
        host, _, port = text[1:].partition("]")
        port = port.lstrip(":")
    else:
        host, _, port = text.partition(":")
    if not host:
        raise ValueError("the Redis URL has no host")
    return host, int(port) if port else default_port
