"""Added time to first token of `/v1/responses` streaming over chat streaming (issue 13).

Starts a redis-server and one Orbyt API + worker (tests/gateway.py) on the built-in mock
provider (`mock/echo`, no upstream delay), then sends streams one at a time (C=1),
alternating chat and Responses requests so both see the same machine: the time to first
token is taken to the first content delta (`delta.content` / `response.output_text.delta`).
Prints one JSON object: the medians and p90s of both, their difference, and the load.

    ORBYT_REDIS_SERVER=/usr/bin/redis-server .venv/bin/python bench/responses_ttft.py -n 400
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.gateway import GATEWAY_KEY, Gateway, RedisServer

MODEL = "mock/echo"


def first_token(client: httpx.Client, path: str, body: dict[str, object], marker: bytes) -> float:
    """Seconds from sending the request to the first byte chunk holding `marker`; the rest
    of the stream is read to its end."""
    started = time.perf_counter()
    ttft = None
    with client.stream("POST", path, json=body) as resp:
        resp.raise_for_status()
        for chunk in resp.iter_raw():
            if ttft is None and marker in chunk:
                ttft = time.perf_counter() - started
    assert ttft is not None, f"no {marker!r} in the stream of {path}"
    return ttft


def measure(base: str, n: int) -> dict[str, object]:
    headers = {"authorization": f"Bearer {GATEWAY_KEY}"}
    chat_body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    resp_body = {"model": MODEL, "input": "hi", "stream": True, "store": False}
    chat: list[float] = []
    responses: list[float] = []
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        for i in range(n + 20):
            c = first_token(client, "/v1/chat/completions", chat_body, b'"content"')
            r = first_token(client, "/v1/responses", resp_body, b"response.output_text.delta")
            if i >= 20:  # warm-up
                chat.append(c)
                responses.append(r)
    ms = 1000.0

    def p90(xs: list[float]) -> float:
        return sorted(xs)[int(len(xs) * 0.9)] * ms

    return {
        "n": n,
        "concurrency": 1,
        "chat_ttft_ms": {"p50": statistics.median(chat) * ms, "p90": p90(chat)},
        "responses_ttft_ms": {"p50": statistics.median(responses) * ms, "p90": p90(responses)},
        "added_ms_p50": (statistics.median(responses) - statistics.median(chat)) * ms,
        "loadavg": os.getloadavg(),
        "cpus": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=300, help="requests of each kind")
    args = parser.parse_args()
    redis = RedisServer().start()
    try:
        with Gateway(redis.new_db_url(), log_level="warning") as gw:
            print(json.dumps(measure(gw.url(), args.n), indent=2))
    finally:
        redis.stop()


if __name__ == "__main__":
    main()
