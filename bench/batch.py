"""Batch benchmark (issue 12): a 10,000-line batch against the mock upstream with 100 ms
upstream latency, with one and with two worker processes.

    python bench/batch.py [--lines 10000] [--workers 1,2] [--inflight 32] [--quiet-wait S]

For each worker count, on the same processes (one API, N workers, one redis-server, the
mock), in this order:

1. idle probe: streamed interactive requests at c=4 for 5 s; TTFT p50/p99;
2. interactive rate: non-streamed requests at c = inflight x workers (the number of batch
   lines in flight below), req/s and CPU per request of API + workers + Redis;
3. batch: upload -> create -> poll (0.2 s) -> output file downloaded; lines per second end
   to end and CPU per line; every custom_id must come back exactly once;
4. the same batch again with the probe of (1) running during it: TTFT p50/p99 under batch.

`--inflight` is `ORBYT_BATCH_CONCURRENCY` (the global cap is inflight x workers) and the
interactive concurrency per worker, so both paths have as many requests in flight and the
rate ratio compares the cost of a batch line with that of an interactive request. Processes,
CPU accounting and the load generator are bench/run.py's. Writes bench/results-batch.md and
JSON under bench/out/<run id>/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import openai
import run as R

LATENCY = 0.1  # seconds the mock takes for every answer
TERMINAL = ("completed", "failed", "expired", "cancelled")
PROBE = R.Scenario("probe", "stream, ttft 100 ms, c=4", True, 4, 100_000, 100_000, ttft=LATENCY,
                   max_seconds=5.0, quick_max_seconds=5.0)  # fmt: skip


def rate_scenario(concurrency: int, requests: int) -> R.Scenario:
    return R.Scenario(
        "rate", f"non-stream, 100 ms, c={concurrency}", False, concurrency, requests, requests,
        ttft=LATENCY, max_seconds=120.0, quick_max_seconds=120.0,
    )  # fmt: skip


def batch_input(lines: int) -> bytes:
    out = []
    for i in range(lines):
        body = {"model": R.ORBYT_MODEL, "messages": [{"role": "user", "content": f"Line {i}."}]}
        line = {"custom_id": f"l-{i}", "method": "POST", "url": "/v1/chat/completions"}
        out.append(json.dumps({**line, "body": body}))
    return ("\n".join(out) + "\n").encode()


def run_batch(target: R.Target, data: bytes, lines: int, mock_pid: int) -> dict[str, Any]:
    """Upload to output downloaded; CPU of the target's processes over that window, and
    what the rest of the machine used meanwhile (other cores)."""
    client = openai.OpenAI(
        base_url=target.base_urls[0], api_key=target.key, max_retries=0, timeout=300
    )
    window = R.CpuWindow({**target.roles, "_mock": [mock_pid]})
    started, own0 = time.monotonic(), time.process_time()
    fid = client.files.create(file=("bench.jsonl", data), purpose="batch").id
    batch = client.batches.create(
        input_file_id=fid, endpoint="/v1/chat/completions", completion_window="24h"
    )
    while batch.status not in TERMINAL:
        time.sleep(0.2)
        batch = client.batches.retrieve(batch.id)
    output = client.files.content(batch.output_file_id).content if batch.output_file_id else b""
    wall = time.monotonic() - started
    cpu, busy, _ = window.close()
    others = busy - sum(cpu.values()) - (time.process_time() - own0)
    cpu.pop("_mock")
    ids = [json.loads(x)["custom_id"] for x in output.splitlines() if x.strip()]
    if batch.status != "completed" or len(ids) != lines or len(set(ids)) != lines:
        raise RuntimeError(f"batch {batch.id} {batch.status}: {len(set(ids))}/{lines} answered")
    return {
        "status": batch.status,
        "lines": lines,
        "seconds": round(wall, 2),
        "lines_per_s": round(lines / wall, 1),
        "cpu_ms_per_line": {r: round(c / lines * 1000, 3) for r, c in cpu.items()},
        "machine_busy_cores": round(busy / wall, 2),
        "other_cpu_util": round(max(others, 0.0) / wall, 2),
        "ended_at": time.monotonic(),
    }


def measure_workers(bench: R.Bench, workers: int, args: argparse.Namespace) -> dict[str, Any]:
    target = bench.start_target("orbyt", R.OrbytLayout(apis=1, workers=workers))
    try:
        data = batch_input(args.lines)
        idle = bench.measure(target, PROBE, f"w{workers}-probe-idle")
        rate = bench.measure(
            target, rate_scenario(args.inflight * workers, args.lines), f"w{workers}-rate"
        )
        bench.set_profile(rate_scenario(1, 1))
        mock = bench.procs.procs["mock"].pid
        clean = run_batch(target, data, args.lines, mock)
        during_batch: dict[str, Any] = {}
        thread = threading.Thread(
            target=lambda: during_batch.update(run_batch(target, data, args.lines, mock))
        )
        thread.start()
        time.sleep(0.5)  # the batch is under way
        during = bench.measure(target, PROBE, f"w{workers}-probe-batch")
        probe_ended = time.monotonic()
        thread.join()
    finally:
        bench.stop_target(target)
    return {
        "workers": workers,
        "idle_probe": idle,
        "interactive": rate,
        "batch": clean,
        "batch_with_probe": during_batch,
        "probe_during_batch": during,
        "probe_inside_batch": bool(during_batch) and probe_ended < during_batch["ended_at"],
    }


def _cpu(per_role: dict[str, float]) -> float:
    return sum(v for k, v in per_role.items() if not k.startswith("_"))


def report(rows: list[dict[str, Any]], args: argparse.Namespace, load: tuple[float, float]) -> str:
    head = (
        "| workers | interactive req/s | batch lines/s | batch / interactive "
        "| CPU ms/request | CPU ms/line | other load, cores (interactive / batch) "
        "| TTFT p50 idle | p50 during batch | Δ p50 | p99 idle | p99 during batch |"
    )
    out = [head, "|" + "---|" * 12]
    for r in rows:
        rate, batch = r["interactive"], r["batch"]
        idle, busy = r["idle_probe"]["ttft_ms"], r["probe_during_batch"]["ttft_ms"]
        note = "" if r["probe_inside_batch"] else " (probe outlived the batch)"
        out.append(
            f"| {r['workers']} | {rate['rps']:.0f} | {batch['lines_per_s']:.0f} "
            f"| {batch['lines_per_s'] / rate['rps']:.2f}× "
            f"| {_cpu(rate['sut_cpu_ms_per_req']):.2f} | {_cpu(batch['cpu_ms_per_line']):.2f} "
            f"| {rate['other_cpu_util']:.2f} / {batch['other_cpu_util']:.2f} "
            f"| {idle['p50']:.1f} | {busy['p50']:.1f}{note} "
            f"| {busy['p50'] - idle['p50']:+.1f} | {idle['p99']:.1f} | {busy['p99']:.1f} |"
        )
    return "\n".join(
        [
            "# Batch benchmark results",
            "",
            f"{args.lines:,}-line batch, mock upstream answering after {LATENCY * 1000:.0f} ms, "
            f"{args.inflight} lines in flight per worker (and interactive c = "
            f"{args.inflight} x workers); {R.machine_line()}; 1-min load average "
            f"{load[0]:.2f} before, {load[1]:.2f} after. One run on a shared, noisy 2-core "
            "machine: load generator, mock, Redis, API and workers share the cores.",
            "",
            *out,
            "",
            "CPU = API + workers + redis-server per request or line. Batch lines/s: upload "
            "to output file downloaded. TTFT (ms): streamed interactive requests at c=4, "
            "idle and while the batch runs. Other load: CPU the rest of the machine (other "
            "users' work, not this benchmark's processes) used meanwhile, in cores of 2.",
        ]
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lines", type=int, default=10_000, help="lines in the batch")
    p.add_argument("--workers", default="1,2", help="worker process counts, e.g. 1,2")
    p.add_argument(
        "--inflight",
        type=int,
        default=32,
        help="batch lines in flight per worker (Orbyt's default: 32)",
    )
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait up to this long for the machine to calm down before each probe",
    )
    args = p.parse_args(argv)
    args.workers = [int(w) for w in args.workers.split(",") if w.strip()]
    args.quick, args.no_install = False, True  # what run.Bench reads
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run_dir = R.OUT_ROOT / ("batch-" + dt.datetime.now().strftime("%Y%m%d-%H%M%S"))
    (run_dir / "logs").mkdir(parents=True, exist_ok=True)
    os.environ["ORBYT_FILE_STORE"] = str(run_dir / "files")  # Orbyt's env is built from ours
    # a batch line's model must be in the catalog: declare the mock's
    os.environ["ORBYT_PROVIDERS__OPENAI__MODELS"] = json.dumps([{"id": "gpt-bench"}])
    os.environ["ORBYT_BATCH_CONCURRENCY"] = str(args.inflight)
    os.environ["ORBYT_BATCH_GLOBAL_CONCURRENCY"] = str(args.inflight * max(args.workers))
    load_before = os.getloadavg()[0]
    bench = R.Bench(args, run_dir)
    rows = []
    with R.cleanup_on_signals(bench.procs):
        bench.start_mock()
        for workers in args.workers:
            rows.append(measure_workers(bench, workers, args))
            print(json.dumps(rows[-1]["batch"]), file=sys.stderr)
    text = report(rows, args, (load_before, os.getloadavg()[0]))
    (run_dir / "results.json").write_text(json.dumps(rows, indent=2) + "\n")
    (R.BENCH / "results-batch.md").write_text(text + "\n")
    print(text)
    print(f"wrote bench/results-batch.md and {Path(run_dir).relative_to(R.REPO)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
