"""Embeddings throughput: req/s of `POST /v1/embeddings` through Orbyt vs the mock called
directly, closed loop at concurrency C (issue 13's figure; target: Orbyt >= 0.5x direct).

    python bench/embeddings.py [-n 3000] [-c 50] [--inputs 1] [--format base64|float]
                               [--latency 0,0.05]

It reuses bench/run.py's processes (its own redis-server, the mock upstream, one Orbyt API
and one worker, all on 127.0.0.1) and drives both targets from one aiohttp client process.
Each request embeds `--inputs` strings into 1536-dimension vectors (`openai/
text-embedding-3-small`); the mock answers after each `--latency` in turn (0: at once, the
gateway's own cost laid bare; 0.05: a fast real embeddings API). Every answer is checked
(200, one vector per input, in order). Prints a markdown table with the machine's load before and
after, and writes it to bench/results-embeddings.md. Every process is stopped on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import sys
import time
from typing import Any

import aiohttp
import orjson
from run import (
    BENCH,
    OUT_ROOT,
    Bench,
    Scenario,
    Target,
    cleanup_on_signals,
    machine_busy_seconds,
)

MODELS = {"direct": "text-embedding-3-small", "orbyt": "openai/text-embedding-3-small"}
CHAT_MODELS = {"direct": "gpt-bench", "orbyt": "openai/gpt-bench"}
CHAT_BODY = {"messages": [{"role": "user", "content": "Count for the benchmark."}]}


async def _worker(
    session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str], left: list[int]
) -> tuple[int, int]:
    ok = failed = 0
    while left[0] > 0:
        left[0] -= 1
        async with session.post(url, data=body, headers=headers) as resp:
            raw = await resp.read()
        if resp.status == 200 and _valid(raw, body):
            ok += 1
        else:
            failed += 1
    return ok, failed


def _valid(raw: bytes, body: bytes) -> bool:
    answer, request = orjson.loads(raw), orjson.loads(body)
    if "messages" in request:  # the chat reference
        return bool(answer["choices"][0]["message"]["content"])
    data = answer.get("data") or []
    return [d["index"] for d in data] == list(range(len(request["input"])))


async def load(
    target: Target, requests: int, concurrency: int, body: dict[str, Any], chat: bool = False
) -> Any:
    """Closed-loop load: embeddings requests (or, `chat`, non-stream chat completions)."""
    url = target.base_urls[0] + ("/chat/completions" if chat else "/embeddings")
    headers = {"authorization": f"Bearer {target.key}", "content-type": "application/json"}
    model = (CHAT_MODELS if chat else MODELS)[target.name]
    raw = orjson.dumps({**(CHAT_BODY if chat else body), "model": model})
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        warm = [min(concurrency * 4, requests)]
        await asyncio.gather(
            *(_worker(session, url, raw, headers, warm) for _ in range(concurrency))
        )
        left = [requests]
        busy0, started = machine_busy_seconds(), time.monotonic()
        results = await asyncio.gather(
            *(_worker(session, url, raw, headers, left) for _ in range(concurrency))
        )
        elapsed = time.monotonic() - started
        busy = machine_busy_seconds() - busy0
    ok = sum(r[0] for r in results)
    return {
        "target": target.name + (" (chat non-stream, reference)" if chat else ""),
        "ok": ok,
        "errors": sum(r[1] for r in results),
        "rps": ok / elapsed,
        "machine_cpu_pct": 100 * busy / elapsed / (os.cpu_count() or 1),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-n", "--requests", type=int, default=3000)
    p.add_argument("-c", "--concurrency", type=int, default=50)
    p.add_argument("--inputs", type=int, default=1, help="strings embedded per request")
    p.add_argument("--format", choices=("base64", "float"), default="base64")
    p.add_argument("--latency", default="0,0.05", help="upstream latencies (s), comma-separated")
    args = p.parse_args(argv)
    args.quick, args.no_install = False, True  # what run.Bench reads
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run_dir = OUT_ROOT / ("embeddings-" + dt.datetime.now().strftime("%Y%m%d-%H%M%S"))
    (run_dir / "logs").mkdir(parents=True, exist_ok=True)
    body = {"input": [f"text {i}" for i in range(args.inputs)], "encoding_format": args.format}
    load_before = os.getloadavg()[0]
    bench = Bench(args, run_dir)
    latencies = [float(x) for x in args.latency.split(",")]
    results: list[dict[str, Any]] = []
    with cleanup_on_signals(bench.procs):
        bench.start_mock()
        targets = [bench.start_target(name) for name in ("direct", "orbyt")]
        for latency in latencies:
            bench.set_profile(Scenario("emb", "embeddings", False, 1, 1, 1, ttft=latency))
            for target in targets:
                result = asyncio.run(load(target, args.requests, args.concurrency, body))
                results.append({**result, "latency_ms": latency * 1000})
            chat = asyncio.run(load(targets[1], args.requests, args.concurrency, body, chat=True))
            results.append({**chat, "latency_ms": latency * 1000})
        bench.procs.stop_all()
    lines = [
        "# Embeddings throughput",
        "",
        f"`python bench/embeddings.py -n {args.requests} -c {args.concurrency} --inputs "
        f"{args.inputs} --format {args.format}`: {args.inputs} input(s) of 1536 dimensions per "
        f"request, closed loop at C={args.concurrency}; {os.cpu_count()} cores shared by the "
        f"client, the mock and Orbyt; 1-min load average {load_before:.2f} before, "
        f"{os.getloadavg()[0]:.2f} after.",
        "",
        "| upstream latency ms | target | req/s | Orbyt / direct | ok | errors | machine CPU % |",
        "|---|---|---|---|---|---|---|",
        *(_row(r, results) for r in results),
        "",
        "Target: Orbyt >= 0.5x direct at C=50. The reference row is Orbyt's non-stream chat on "
        "the same mock and machine (20-token answers), against the same direct embeddings row.",
        "",
    ]
    report = "\n".join(lines)
    (BENCH / "results-embeddings.md").write_text(report)
    print(report)
    return 0 if not any(r["errors"] for r in results) else 1


def _row(r: dict[str, Any], results: list[dict[str, Any]]) -> str:
    direct = next(
        d for d in results if d["target"] == "direct" and d["latency_ms"] == r["latency_ms"]
    )
    ratio = f"**{r['rps'] / direct['rps']:.2f}x**" if r["target"] != "direct" else "–"
    return (
        f"| {r['latency_ms']:g} | {r['target']} | {r['rps']:.0f} | {ratio} | {r['ok']} | "
        f"{r['errors']} | {r['machine_cpu_pct']:.0f} |"
    )


if __name__ == "__main__":
    sys.exit(main())
