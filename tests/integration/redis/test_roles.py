"""Two Redis roles with real redis-servers: the state Redis (AOF, `appendfsync always`)
keeps gateway keys, revocations and usage through a crash and restart; the queue Redis
(persistence off, and its SAVE/BGSAVE/BGREWRITEAOF disabled as docker-compose runs it)
carries every job and BYOK side-car; after SAVE and BGREWRITEAOF on both while BYOK
traffic runs, no file either wrote contains a BYOK key or a sealed side-car."""

from __future__ import annotations

import secrets
import string
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.fakes import FakeOpenAI, Reply
from tests.gateway import GATEWAY_KEY, ROOT, Gateway, RedisServer, free_port
from tests.integration.leakscan import Needles

pytestmark = pytest.mark.integration

ADMIN_KEY = "orbyt-admin-" + "Vb7nK2xQ9mR4tL8w" * 2
MODEL = "openai/gpt-5-mini"
MSG = [{"role": "user", "content": "Say hi"}]
BYOK = "sk-proj-" + "".join(secrets.choice(string.ascii_letters) for _ in range(60))
# what docker-compose gives the queue Redis: nothing it holds can be written to disk
NO_DISK = [
    *("--rename-command", "SAVE", ""),
    *("--rename-command", "BGSAVE", ""),
    *("--rename-command", "BGREWRITEAOF", ""),
]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as f:
        yield f


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[RedisServer, RedisServer]]:
    state = RedisServer(persist=True).start()
    queue = RedisServer(*NO_DISK).start()
    yield state, queue
    state.stop()
    queue.stop()


@pytest.fixture(scope="module")
def gw(servers: tuple[RedisServer, RedisServer], fake: FakeOpenAI) -> Iterator[Gateway]:
    state, queue = servers
    env = {
        "ORBYT_QUEUE_REDIS_URL": queue.url(1),
        "ORBYT_ADMIN_KEY": ADMIN_KEY,
        "ORBYT_PROVIDERS__OPENAI__BASE_URL": fake.base_url,
        "ORBYT_PROVIDERS__OPENAI__KEYS": "sk-pool-openai-roles",
    }
    with Gateway(state.url(1), env, workers=1) as gateway:
        yield gateway


def admin(gw: Gateway, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    return httpx.request(method, gw.url() + path, headers=headers, timeout=10, **kwargs)


def chat(gw: Gateway, key: str, **body: Any) -> httpx.Response:
    return httpx.post(
        gw.url() + "/v1/chat/completions",
        headers={"authorization": f"Bearer {key}"},
        json={"model": MODEL, "messages": MSG, **body},
        timeout=20,
    )


def keys(server: RedisServer, pattern: str) -> list[bytes]:
    r: Any = redis.Redis(port=server.port, db=1)
    try:
        return list(r.scan_iter(pattern))
    finally:
        r.close()


def wait_for(predicate: Any, timeout: float = 10.0) -> Any:
    end = time.monotonic() + timeout
    while not (value := predicate()) and time.monotonic() < end:
        time.sleep(0.05)
    return value


def test_each_use_goes_to_its_role(
    gw: Gateway, servers: tuple[RedisServer, RedisServer], fake: FakeOpenAI
) -> None:
    state, queue = servers
    fake.default = Reply(text="routed", ttft=0.2)
    done: list[httpx.Response] = []
    runner = threading.Thread(target=lambda: done.append(chat(gw, GATEWAY_KEY)))
    runner.start()
    assert wait_for(lambda: keys(queue, "arq:in-progress:*"), 5)  # the job runs: queue side
    runner.join()
    assert done[0].status_code == 200
    assert not keys(state, "arq:*") and not keys(state, "orbyt:byok:*")
    created = admin(gw, "POST", "/admin/keys", json={"name": "roles"}).json()
    assert keys(state, "orbyt:gk*") and not keys(queue, "orbyt:gk*")
    assert not keys(queue, "orbyt:usage*")
    admin(gw, "POST", f"/admin/keys/{created['id']}/revoke")


def _byok_traffic(gw: Gateway, stop: threading.Event, statuses: list[int]) -> None:
    while not stop.is_set():
        statuses.append(chat(gw, GATEWAY_KEY, extra={"byok": BYOK}).status_code)


def test_no_file_of_either_redis_holds_a_byok_key(
    gw: Gateway, servers: tuple[RedisServer, RedisServer], fake: FakeOpenAI
) -> None:
    state, queue = servers
    fake.default = Reply(text="mine")
    stop, statuses = threading.Event(), []  # type: ignore[var-annotated]
    runners = [threading.Thread(target=_byok_traffic, args=(gw, stop, statuses)) for _ in range(8)]
    for t in runners:
        t.start()
    try:
        assert wait_for(lambda: len(statuses) >= 20)
        s: Any = redis.Redis(port=state.port)
        q: Any = redis.Redis(port=queue.port)
        s.save()
        s.bgrewriteaof()
        for command in ("SAVE", "BGREWRITEAOF", "BGSAVE"):
            with pytest.raises(redis.ResponseError, match="unknown command"):
                q.execute_command(command)
        assert wait_for(lambda: s.info("persistence")["aof_rewrite_in_progress"] == 0)
        s.close()
        q.close()
        time.sleep(0.3)
    finally:
        stop.set()
        for t in runners:
            t.join()
    assert statuses and set(statuses) == {200}
    needles = Needles()
    needles.add("byok", BYOK)
    files = [p for server in servers for p in Path(server.dir).rglob("*") if p.is_file()]
    assert any(p.suffix == ".rdb" for p in files) and any(".aof" in p.name for p in files)
    for path in files:
        data = path.read_bytes()
        assert b"orbyt:byok:" not in data, f"a BYOK side-car reached {path.name}"
        assert not needles.search(data, path.name)
    assert not [p for p in files if p.is_relative_to(queue.dir)]  # the queue wrote nothing


def test_keys_revocations_and_usage_survive_a_state_redis_crash(
    gw: Gateway, servers: tuple[RedisServer, RedisServer], fake: FakeOpenAI
) -> None:
    state, _ = servers
    fake.default = Reply(text="durable", usage=(10, 5))
    kept = admin(gw, "POST", "/admin/keys", json={"name": "kept"}).json()
    gone = admin(gw, "POST", "/admin/keys", json={"name": "gone"}).json()
    assert admin(gw, "POST", f"/admin/keys/{gone['id']}/revoke").status_code == 200
    assert chat(gw, kept["key"]).status_code == 200

    def requests_counted() -> int:
        r = admin(gw, "GET", "/admin/usage", params={"key_id": kept["id"]})
        return int(r.json()["models"].get(MODEL, {}).get("requests", 0))

    assert wait_for(lambda: requests_counted() == 1)
    state.kill()  # SIGKILL: only what the AOF already holds survives
    state.start()
    assert wait_for(lambda: chat(gw, kept["key"]).status_code == 200)
    assert chat(gw, gone["key"]).status_code == 401
    assert wait_for(lambda: requests_counted() == 2)
    listed = {k["id"]: k for k in admin(gw, "GET", "/admin/keys").json()["data"]}
    assert listed[gone["id"]]["revoked"] is True and not listed[kept["id"]]["revoked"]


def test_worker_check_reports_this_hosts_worker(gw: Gateway) -> None:
    def check(env: dict[str, str]) -> int:
        cmd = [sys.executable, "-m", "orbyt", "worker", "--check"]
        return subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, timeout=30).returncode

    assert wait_for(lambda: check(gw.env) == 0)
    assert check({**gw.env, "ORBYT_CHAT_QUEUE": "orbyt:nobody-polls-this"}) == 1
    assert check({**gw.env, "ORBYT_QUEUE_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}) == 1
