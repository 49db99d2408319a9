"""Finding secrets wherever a gateway could have written them (DESIGN §5, §9).

A `Needles` table holds, for every secret under watch, every 20-character window of the
secret (after its public prefix: `sk-proj-`, `sk-ant-api03-`, `AIza`, ...) in plain text,
URL-encoded, hex (both cases) and base64 (standard and URL-safe, at each of the three byte
alignments a secret can have inside a larger encoded blob). A haystack is searched by
taking its runs of key-like characters and looking up windows of them in the table, so a
leak of any 23+ contiguous characters of a secret, in any of those encodings, is found —
not only the whole key.

Haystacks: the gateway's log files, the byte stream of a Redis `MONITOR` (every command any
client sent, so every value ever written and every frame ever published, including records
that lived only for milliseconds), a dump of every Redis key and value of every type in
every database, `/metrics` of every process, every HTTP response (status line, headers,
body) the tests received, and every trace span exported (tests.otlp.OtlpReceiver).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis

WINDOW = 20
STEP = 4  # windows are checked at every 4th offset: any leak of WINDOW + STEP - 1 chars hits
_RUN = re.compile(rb"[A-Za-z0-9_\-+/=%%.~]{" + str(WINDOW).encode() + rb",}")


def encodings(secret: str) -> dict[str, bytes]:
    """The forms of one secret that are searched for (name -> bytes)."""
    raw = secret.encode()
    forms = {
        "plain": raw,
        "url": urllib.parse.quote(secret, safe="").encode(),
        "url+": urllib.parse.quote_plus(secret).encode(),
        "hex": binascii.hexlify(raw),
        "HEX": binascii.hexlify(raw).upper(),
    }
    for pad in range(3):  # the secret at each alignment inside a longer base64 blob
        std = base64.b64encode(b"\0" * pad + raw + b"\0\0")
        url = base64.urlsafe_b64encode(b"\0" * pad + raw + b"\0\0")
        forms[f"base64@{pad}"] = std[4:-4]
        forms[f"base64url@{pad}"] = url[4:-4]
    return forms


@dataclass(frozen=True)
class Hit:
    where: str  # which haystack
    secret: str  # the label of the secret (never the secret itself)
    form: str
    context: str  # text around the hit, with the hit itself masked

    def __str__(self) -> str:
        return f"{self.secret} ({self.form}) in {self.where}: …{self.context}…"


# Public prefixes of key shapes: windows are taken from what follows them, so that every
# window is random material (a window of "sk-ant-api03-" and two more characters would
# match any other Anthropic key), and a key whose prefix was redacted is still found.
_PUBLIC_PREFIX = re.compile(r"^(sk-(proj|svcacct|ant-api03|or-v1|admin)-|sk-|AIza|AQ\.)")


class Needles:
    def __init__(self) -> None:
        self._table: dict[bytes, tuple[str, str]] = {}

    def add(self, label: str, secret: str) -> None:
        material = _PUBLIC_PREFIX.sub("", secret)
        assert len(material) >= WINDOW + STEP, "too short to search for reliably"
        for form, data in encodings(material).items():
            for i in range(len(data) - WINDOW + 1):
                self._table.setdefault(data[i : i + WINDOW], (label, form))

    def search(self, haystack: bytes, where: str) -> list[Hit]:
        hits: list[Hit] = []
        seen: set[tuple[str, str, int]] = set()
        table = self._table
        for run in _RUN.finditer(haystack):
            text = run.group()
            for i in range(0, len(text) - WINDOW + 1, STEP):
                found = table.get(text[i : i + WINDOW])
                if found is None or (*found, run.start()) in seen:
                    continue
                seen.add((*found, run.start()))
                # the context masks every long run, so a report never shows key material
                before = _RUN.sub(b"[...]", haystack[max(0, run.start() - 60) : run.start()])
                after = _RUN.sub(b"[...]", haystack[run.end() : run.end() + 40])
                hits.append(
                    Hit(
                        where,
                        found[0],
                        found[1],
                        before.decode("ascii", "replace")
                        + "[…]"
                        + after.decode("ascii", "replace"),
                    )
                )
        return hits


class RedisMonitor:
    """A raw `MONITOR` connection read into a buffer by a thread, for a test's lifetime."""

    def __init__(self, port: int) -> None:
        self._sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self._buf = bytearray()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, name="redis-monitor", daemon=True)

    def start(self) -> RedisMonitor:
        self._sock.sendall(b"MONITOR\r\n")
        self._sock.settimeout(None)
        self._thread.start()
        end = time.monotonic() + 5
        while b"+OK" not in self.data() and time.monotonic() < end:
            time.sleep(0.01)
        assert b"+OK" in self.data(), "MONITOR did not start"
        return self

    def _read(self) -> None:
        while True:
            try:
                chunk = self._sock.recv(1 << 16)
            except OSError:
                return
            if not chunk:
                return
            with self._lock:
                self._buf += chunk

    def data(self) -> bytes:
        with self._lock:
            return bytes(self._buf)

    def mark(self) -> bytes:
        """A unique marker command in the stream (to know that earlier commands are in)."""
        token = f"orbyt-leakscan-mark-{time.monotonic_ns()}".encode()
        r = redis.Redis(port=self._sock.getpeername()[1])
        try:
            r.echo(token)
        finally:
            r.close()
        end = time.monotonic() + 5
        while token not in self.data() and time.monotonic() < end:
            time.sleep(0.01)
        return token

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._thread.join(5)


def redis_dump(port: int) -> bytes:
    """Every key and value of every type, in every non-empty database."""
    out = bytearray()
    admin: Any = redis.Redis(port=port)  # (redis-py's sync types are async-or-not unions)
    try:
        keyspace = admin.info("keyspace")
    finally:
        admin.close()
    for name in keyspace:
        db = int(str(name).removeprefix("db"))
        r: Any = redis.Redis(port=port, db=db)
        try:
            for key in r.scan_iter(count=1000):
                kind = r.type(key).decode()
                value: object
                if kind == "string":
                    value = r.get(key)
                elif kind == "hash":
                    value = r.hgetall(key)
                elif kind == "list":
                    value = r.lrange(key, 0, -1)
                elif kind == "set":
                    value = r.smembers(key)
                elif kind == "zset":
                    value = r.zrange(key, 0, -1, withscores=True)
                elif kind == "stream":
                    value = r.xrange(key)
                else:
                    value = kind
                out += b"db%d %s %s = " % (db, key, kind.encode()) + _flatten(value) + b"\n"
        finally:
            r.close()
    return bytes(out)


def _flatten(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, dict):
        return b" ".join(_flatten(k) + b"=" + _flatten(v) for k, v in value.items())
    if isinstance(value, list | tuple | set):
        return b" ".join(_flatten(v) for v in value)
    return str(value).encode()


def keys_matching(port: int, db: int, pattern: str) -> list[str]:
    r: Any = redis.Redis(port=port, db=db)
    try:
        return sorted(k.decode() for k in r.scan_iter(pattern, count=1000))
    finally:
        r.close()


@dataclass
class Responses:
    """Every HTTP response a test received, as text (status, headers, body)."""

    items: list[bytes] = field(default_factory=list)

    def add(self, resp: Any, body: bytes | None = None) -> None:
        """`resp`: an httpx.Response (or the SDK's, which has the same shape)."""
        head = f"HTTP {resp.status_code}\n" + "".join(
            f"{k}: {v}\n" for k, v in resp.headers.multi_items()
        )
        self.items.append(head.encode() + b"\n" + (resp.content if body is None else body))

    def data(self) -> bytes:
        return b"\n\n".join(self.items)


@dataclass
class Sources:
    """Where to look: log files, the MONITOR stream, Redis, metrics URLs, responses, and the
    trace spans exported (searched whole, as received: protobuf and its JSON rendering)."""

    logdir: Path
    monitor: RedisMonitor
    redis_port: int
    metrics_urls: list[str]
    responses: Responses
    spans: Callable[[], bytes] | None = None  # what an OTLP receiver got (tests.otlp)
    _offsets: dict[str, int] = field(default_factory=dict)

    def _since(self, name: str, data: bytes, since_last: bool) -> bytes:
        """All of `data`, or what came after the previous incremental scan (+ an overlap)."""
        if not since_last:
            return data
        start = max(0, self._offsets.get(name, 0) - 512)
        self._offsets[name] = len(data)
        return data[start:]

    def _logs(self, since_last: bool) -> Iterable[tuple[str, bytes]]:
        for path in sorted(self.logdir.glob("*.log")):
            yield f"log {path.name}", self._since(path.name, path.read_bytes(), since_last)

    def _monitor(self, since_last: bool) -> bytes:
        self.monitor.mark()
        return self._since("monitor", self.monitor.data(), since_last)

    def scan(self, needles: Needles, since_last: bool = True) -> list[Hit]:
        """Search every source; `since_last`: only what is new since the last such scan
        (Redis, metrics and responses are always searched whole)."""
        hits: list[Hit] = []
        for where, data in self._logs(since_last):
            hits += needles.search(data, where)
        hits += needles.search(self._monitor(since_last), "redis MONITOR")
        hits += needles.search(redis_dump(self.redis_port), "redis keys/values")
        for url in self.metrics_urls:
            try:
                text = httpx.get(url, timeout=5).content
            except httpx.HTTPError:
                continue  # a process that is down has no metrics to leak
            hits += needles.search(text, f"metrics {url}")
        hits += needles.search(self.responses.data(), "HTTP responses")
        if self.spans is not None:
            hits += needles.search(self.spans(), "trace spans")
        return hits
