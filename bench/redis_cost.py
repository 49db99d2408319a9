"""What one request costs Redis: commands and Redis CPU per streamed request (20 tokens)
and per non-streamed request, from `INFO commandstats` and `INFO cpu` around a run.

    python bench/redis_cost.py [--requests 2000] [--concurrency 50]

Starts its own redis-server, a fake OpenAI upstream (tests/fakes) and one API + one worker
process (tests/gateway.py, exactly as the integration tests do), all on 127.0.0.1; prints a
markdown table. Redis CPU is redis-server's own user+sys seconds (its main thread does the
work), so `1 / CPU per request` is how many requests per second one Redis core carries.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

import httpx
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fakes import FakeOpenAI, Reply
from tests.gateway import GATEWAY_KEY, Gateway, RedisServer


def _stats(r: Any) -> tuple[dict[str, int], float]:
    calls = {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in r.info("commandstats").items()}
    cpu = r.info("cpu")
    return calls, float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


async def _load(url: str, n: int, concurrency: int, stream: bool) -> int:
    body = {"model": "openai/gpt-5-mini", "messages": [{"role": "user", "content": "hi"}]}
    body["stream"] = stream
    headers = {"authorization": f"Bearer {GATEWAY_KEY}"}
    ok = 0
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=200)) as c:

        async def one() -> None:
            nonlocal ok
            async with sem, c.stream("POST", url, json=body, headers=headers) as resp:
                await resp.aread()
                ok += resp.status_code == 200

        await asyncio.gather(*(one() for _ in range(n)))
    return ok


def measure(gw: Gateway, r: Any, n: int, concurrency: int, stream: bool) -> dict[str, Any]:
    url = gw.url() + "/v1/chat/completions"
    asyncio.run(_load(url, 50, concurrency, stream))  # warm
    r.config_resetstat()
    before, cpu0 = _stats(r)
    ok = asyncio.run(_load(url, n, concurrency, stream))
    after, cpu1 = _stats(r)
    calls = {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0) > 0}
    calls.pop("info", None)
    calls.pop("config|resetstat", None)
    total = sum(calls.values())
    top = sorted(calls.items(), key=lambda kv: -kv[1])[:6]
    return {
        "kind": "stream (20 tokens)" if stream else "non-stream",
        "ok": ok,
        "commands": total / max(ok, 1),
        "cpu_ms": (cpu1 - cpu0) * 1000 / max(ok, 1),
        "top": ", ".join(f"{k} {v / max(ok, 1):.1f}" for k, v in top),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=50)
    args = p.parse_args()
    server = RedisServer().start()
    try:
        with FakeOpenAI() as fake:
            fake.default = Reply(tokens=20)
            env = {
                "ORBYT_PROVIDERS__OPENAI__BASE_URL": fake.base_url,
                "ORBYT_PROVIDERS__OPENAI__KEYS": "sk-bench",
            }
            with Gateway(server.url(1), env, workers=1, log_level="warning") as gw:
                r = redis.Redis(port=server.port)
                rows = [measure(gw, r, args.requests, args.concurrency, s) for s in (True, False)]
                r.close()
    finally:
        server.stop()
    print(
        "| request | ok | Redis commands / request | Redis CPU ms / request"
        " | requests/s per Redis core | most frequent (per request) |"
    )
    print("|---|---|---|---|---|---|")
    for row in rows:
        per_core = 1000 / row["cpu_ms"] if row["cpu_ms"] else float("inf")
        print(
            f"| {row['kind']} | {row['ok']} | {row['commands']:.1f} | {row['cpu_ms']:.3f} |"
            f" {per_core:,.0f} | {row['top']} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
