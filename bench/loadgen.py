"""Closed-loop load generator for OpenAI-compatible Chat Completions endpoints.

Sends ``--requests`` requests at ``--concurrency`` to one or more base URLs (round robin)
and verifies every answer against the deterministic completion of the mock upstream
(``tok0 tok1 ... tok{n-1} ``): each stream must carry exactly ``n`` content deltas whose
join is the expected text, a ``stop`` finish reason, usage when asked for, and end with
``data: [DONE]``. Any deviation (lost, duplicated or reordered chunks, missing ``[DONE]``,
an in-stream error, an HTTP error, a timeout) counts as an error of a named kind.

The SSE decoder is byte-safe: events may be split across or coalesced within TCP reads,
lines may end in LF, CRLF or CR.

Time to first token (TTFT) is measured to the first non-empty content delta for streams,
and is the total time for non-streaming requests. With ``--procs P`` the load is split
over P processes (each with a share of concurrency and requests) that start together; the
report merges their samples. One JSON object is printed (and written to ``--out``).

Example:
    python bench/loadgen.py --base-url http://127.0.0.1:9100/v1 --key sk-mock \\
        --model gpt-bench --stream --requests 2000 --concurrency 200 --tokens 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import aiohttp
import orjson

MAX_ERROR_SAMPLES = 5


def expected_content(tokens: int) -> str:
    """The deterministic completion text of the mock upstream (see mock_upstream.py)."""
    return "".join(f"tok{i} " for i in range(tokens))


# --------------------------------------------------------------------------- SSE decoding


class SSEDecoder:
    """Incremental text/event-stream decoder returning the ``data`` of each complete event."""

    def __init__(self) -> None:
        self._tail = b""
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[bytes]:
        buf = self._tail + chunk
        hold = b""
        if b"\r" in buf:
            if buf.endswith(b"\r"):  # may be the first half of a CRLF split across reads
                buf, hold = buf[:-1], b"\r"
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buf.split(b"\n")
        self._tail = lines.pop() + hold
        events: list[bytes] = []
        for line in lines:
            if not line:
                if self._data:
                    events.append(b"\n".join(self._data))
                    self._data = []
            elif line.startswith(b"data:"):
                value = line[5:]
                self._data.append(value[1:] if value.startswith(b" ") else value)
            # comments (":...") and event/id/retry fields carry nothing we verify
        return events

    def close(self) -> list[bytes]:
        """Flush at end of stream (a final event without its blank line is still counted)."""
        events = self.feed(b"\n\n") if (self._tail or self._data) else []
        return events


# --------------------------------------------------------------------------- verification


def _snippet(data: bytes, limit: int = 120) -> str:
    return data[:limit].decode("utf-8", "replace")


class VerifyError(Exception):
    """A response that does not match the expected completion; ``kind`` names the defect."""

    def __init__(self, kind: str, detail: str = ""):
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind


@dataclass
class StreamCheck:
    """Accumulates one stream's chunks and checks them against the expectation."""

    tokens: int
    include_usage: bool
    started: float
    ttft: float | None = None
    pieces: list[str] = field(default_factory=list)
    done: bool = False
    saw_role: bool = False
    first_choice_seen: bool = False
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    ids: set[str] = field(default_factory=set)

    def event(self, data: bytes, now: float) -> None:
        if self.done:
            raise VerifyError("data_after_done", _snippet(data))
        if data == b"[DONE]":
            self.done = True
            return
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise VerifyError("bad_json", _snippet(data)) from exc
        if not isinstance(chunk, dict):
            raise VerifyError("bad_chunk", _snippet(data))
        if "error" in chunk:
            raise VerifyError("stream_error", _snippet(orjson.dumps(chunk["error"]), 300))
        chunk_id = chunk.get("id")
        if isinstance(chunk_id, str):
            self.ids.add(chunk_id)
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            self._choice(choice, now)

    def _choice(self, choice: dict[str, Any], now: float) -> None:
        delta = choice.get("delta") or {}
        if not self.first_choice_seen:
            self.first_choice_seen = True
            self.saw_role = delta.get("role") == "assistant"
        content = delta.get("content")
        if content:
            if self.ttft is None:
                self.ttft = now - self.started
            self.pieces.append(content)
        if choice.get("finish_reason"):
            self.finish_reason = choice["finish_reason"]

    def finish(self) -> None:
        if not self.done:
            raise VerifyError("missing_done", f"{len(self.pieces)} content chunks before the end")
        count, want = len(self.pieces), self.tokens
        if count > want:
            raise VerifyError("duplicated_chunks", f"{count} content chunks, want {want}")
        if count < want:
            raise VerifyError("lost_chunks", f"{count} content chunks, want {want}")
        if "".join(self.pieces) != expected_content(want):
            raise VerifyError("content_mismatch", "".join(self.pieces)[:200])
        if not self.saw_role:
            raise VerifyError("missing_role", "first chunk has no assistant role")
        if self.finish_reason != "stop":
            raise VerifyError("bad_finish", f"finish_reason={self.finish_reason!r}")
        if len(self.ids) > 1:
            raise VerifyError("inconsistent_id", f"{len(self.ids)} distinct chunk ids")
        if self.include_usage:
            completion = (self.usage or {}).get("completion_tokens")
            if completion != want:
                raise VerifyError("bad_usage", f"usage={self.usage!r}")


def verify_completion(body: bytes, tokens: int) -> None:
    try:
        doc = orjson.loads(body)
        message = doc["choices"][0]["message"]
        content, finish = message.get("content"), doc["choices"][0].get("finish_reason")
        usage = doc.get("usage") or {}
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise VerifyError("bad_body", body[:200].decode("utf-8", "replace")) from exc
    if content != expected_content(tokens):
        raise VerifyError("content_mismatch", str(content)[:200])
    if finish != "stop":
        raise VerifyError("bad_finish", f"finish_reason={finish!r}")
    if usage.get("completion_tokens") != tokens:
        raise VerifyError("bad_usage", f"usage={usage!r}")


# --------------------------------------------------------------------------- one request


@dataclass
class Outcome:
    ok: bool
    ttft: float
    total: float
    error: str | None = None
    detail: str = ""


@dataclass
class Job:
    urls: list[str]
    headers: dict[str, str]
    body: bytes
    stream: bool
    tokens: int
    include_usage: bool


async def run_one(session: aiohttp.ClientSession, job: Job, url: str) -> Outcome:
    started = time.perf_counter()
    try:
        async with session.post(url, data=job.body, headers=job.headers) as resp:
            if resp.status != 200:
                text = (await resp.read())[:300].decode("utf-8", "replace")
                raise VerifyError(f"http_{resp.status}", text)
            if not job.stream:
                verify_completion(await resp.read(), job.tokens)
                total = time.perf_counter() - started
                return Outcome(True, total, total)
            check = StreamCheck(job.tokens, job.include_usage, started)
            decoder = SSEDecoder()
            async for data in resp.content.iter_any():
                now = time.perf_counter()
                for event in decoder.feed(data):
                    check.event(event, now)
            for event in decoder.close():
                check.event(event, time.perf_counter())
            check.finish()
            total = time.perf_counter() - started
            return Outcome(True, check.ttft if check.ttft is not None else total, total)
    except VerifyError as exc:
        return Outcome(False, 0.0, time.perf_counter() - started, exc.kind, str(exc))
    except TimeoutError as exc:
        return Outcome(False, 0.0, time.perf_counter() - started, "timeout", repr(exc))
    except aiohttp.ClientError as exc:
        elapsed = time.perf_counter() - started
        return Outcome(False, 0.0, elapsed, type(exc).__name__, str(exc)[:300])
    except Exception as exc:  # one odd response must not end the run; count and name it
        elapsed = time.perf_counter() - started
        return Outcome(False, 0.0, elapsed, f"exception_{type(exc).__name__}", repr(exc)[:300])


# --------------------------------------------------------------------------- one process


@dataclass
class Samples:
    """Raw results of one process (merged across processes by the parent)."""

    ttft: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    error_samples: list[str] = field(default_factory=list)
    started_at: float = 0.0
    ended_at: float = 0.0
    issued: int = 0
    cpu_s: float = 0.0
    stopped_by_deadline: bool = False


async def run_batch(
    session: aiohttp.ClientSession,
    job: Job,
    count: int,
    concurrency: int,
    max_seconds: float,
    samples: Samples | None,
) -> None:
    """Run ``count`` requests at ``concurrency``; record into ``samples`` (None: warm-up)."""
    issued = 0
    deadline = time.monotonic() + max_seconds
    errors: Counter[str] = Counter()

    async def worker() -> None:
        nonlocal issued
        while issued < count:
            if time.monotonic() > deadline:
                if samples is not None:
                    samples.stopped_by_deadline = True
                return
            url = job.urls[issued % len(job.urls)]
            issued += 1
            outcome = await run_one(session, job, url)
            if samples is None:
                continue
            if outcome.ok:
                samples.ttft.append(outcome.ttft)
                samples.total.append(outcome.total)
            else:
                errors[outcome.error or "unknown"] += 1
                if len(samples.error_samples) < MAX_ERROR_SAMPLES:
                    samples.error_samples.append(outcome.detail[:400])

    await asyncio.gather(*(worker() for _ in range(min(concurrency, count))))
    if samples is not None:
        samples.issued = issued
        for kind, n in errors.items():
            samples.errors[kind] = samples.errors.get(kind, 0) + n


def make_session(timeout: float) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(
        limit=0, limit_per_host=0, ttl_dns_cache=3600, keepalive_timeout=60, force_close=False
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout, sock_connect=10),
        auto_decompress=False,
        skip_auto_headers=("User-Agent",),
    )


async def run_process(
    job: Job,
    requests: int,
    concurrency: int,
    warmup: int,
    bounds: tuple[float, float, float],
    wait_for_go: Callable[[], None] | None = None,
) -> Samples:
    """Warm up, wait for the start signal, then measure.

    ``bounds``: seconds for the measured run, for the warm-up, and for one request.
    """
    max_seconds, warmup_seconds, timeout = bounds
    samples = Samples()
    async with make_session(timeout) as session:
        if warmup:
            await run_batch(session, job, warmup, concurrency, warmup_seconds, None)
        if wait_for_go is not None:
            await asyncio.get_running_loop().run_in_executor(None, wait_for_go)
        cpu0 = time.process_time()
        samples.started_at = time.time()
        await run_batch(session, job, requests, concurrency, max_seconds, samples)
        samples.ended_at = time.time()
        samples.cpu_s = time.process_time() - cpu0
    return samples


# --------------------------------------------------------------------------- report


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p90": None, "p99": None, "mean": None, "max": None}
    ordered = sorted(values)

    def rank(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 3)

    return {
        "p50": rank(0.50),
        "p90": rank(0.90),
        "p99": rank(0.99),
        "mean": round(sum(ordered) / len(ordered) * 1000, 3),
        "max": round(ordered[-1] * 1000, 3),
    }


def report(config: dict[str, Any], parts: list[Samples]) -> dict[str, Any]:
    ttft = [v for s in parts for v in s.ttft]
    total = [v for s in parts for v in s.total]
    errors: Counter[str] = Counter()
    for s in parts:
        errors.update(s.errors)
    started = min(s.started_at for s in parts)
    elapsed = max(s.ended_at for s in parts) - started
    cpu = sum(s.cpu_s for s in parts)
    done = len(total) + sum(errors.values())
    return {
        "config": config,
        "completed": done,
        "ok": len(total),
        "errors": sum(errors.values()),
        "error_kinds": dict(errors),
        "error_samples": [e for s in parts for e in s.error_samples][:MAX_ERROR_SAMPLES],
        "stopped_by_deadline": any(s.stopped_by_deadline for s in parts),
        "elapsed_s": round(elapsed, 3),
        "rps": round(len(total) / elapsed, 2) if elapsed > 0 else 0.0,
        "ttft_ms": percentiles(ttft),
        "total_ms": percentiles(total),
        "loadgen_cpu_s": round(cpu, 3),
        "loadgen_cpu_util": round(cpu / elapsed, 3) if elapsed > 0 else 0.0,
        "loadgen_cpu_ms_per_req": round(cpu / done * 1000, 3) if done else None,
        "started_at": started,
    }


# --------------------------------------------------------------------------- CLI


def build_job(args: argparse.Namespace) -> Job:
    body: dict[str, Any] = {
        "model": args.model,
        "messages": [{"role": "user", "content": "Count for the benchmark."}],
        "stream": args.stream,
    }
    include_usage = args.stream and not args.no_usage
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    urls = [u.rstrip("/") + "/chat/completions" for u in args.base_url]
    headers = {"Authorization": f"Bearer {args.key}", "Content-Type": "application/json"}
    return Job(urls, headers, orjson.dumps(body), args.stream, args.tokens, include_usage)


def split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def run_children(args: argparse.Namespace, argv: list[str]) -> list[Samples]:
    """Run ``--procs`` child processes with a shared start signal; return their samples."""
    procs: list[subprocess.Popen[bytes]] = []
    tmpdir = tempfile.mkdtemp(prefix="loadgen-")
    outs = [os.path.join(tmpdir, f"child{i}.json") for i in range(args.procs)]
    shares = zip(
        split(args.requests, args.procs),
        split(args.concurrency, args.procs),
        split(args.warmup, args.procs),
        strict=True,
    )
    try:
        for (req_n, conc_n, warm_n), out_path in zip(shares, outs, strict=True):
            child_argv = [
                sys.executable,
                os.path.abspath(__file__),
                *argv,
                "--child",
                "--requests",
                str(req_n),
                "--concurrency",
                str(max(conc_n, 1)),
                "--warmup",
                str(warm_n),
                "--procs",
                "1",
                "--out",
                out_path,
            ]
            procs.append(
                subprocess.Popen(child_argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            )
        for p in procs:  # each child prints READY after its warm-up
            assert p.stdout is not None
            line = p.stdout.readline()
            if line.strip() != b"READY":
                raise RuntimeError(f"loadgen child failed before start: {line!r}")
        if args.sync:
            _ready_and_wait()
        for p in procs:
            assert p.stdin is not None
            p.stdin.write(b"GO\n")
            p.stdin.flush()
        parts = []
        for p, out_path in zip(procs, outs, strict=True):
            p.communicate(timeout=args.max_seconds + args.timeout + 120)
            if p.returncode != 0:
                raise RuntimeError(f"loadgen child exited {p.returncode}")
            with open(out_path) as fh:
                parts.append(Samples(**json.load(fh)))
        return parts
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(tmpdir, ignore_errors=True)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--base-url",
        action="append",
        required=True,
        help="e.g. http://127.0.0.1:9100/v1; repeat to round-robin over several",
    )
    p.add_argument("--key", default="sk-bench", help="bearer key")
    p.add_argument("--model", default="gpt-bench")
    p.add_argument("--stream", action="store_true")
    p.add_argument(
        "--no-usage",
        action="store_true",
        help="streams: do not ask for stream_options.include_usage",
    )
    p.add_argument("--tokens", type=int, default=20, help="tokens the upstream will send")
    p.add_argument("--requests", "-n", type=int, default=1000)
    p.add_argument("--concurrency", "-c", type=int, default=50)
    p.add_argument("--warmup", type=int, default=0, help="unmeasured requests first")
    p.add_argument(
        "--max-seconds", type=float, default=120.0, help="stop issuing new requests after this long"
    )
    p.add_argument("--timeout", type=float, default=60.0, help="per-request timeout, seconds")
    p.add_argument("--procs", type=int, default=1, help="load generator processes")
    p.add_argument("--label", default="")
    p.add_argument("--out", help="also write the JSON report here")
    p.add_argument("--no-uvloop", action="store_true")
    p.add_argument(
        "--sync",
        action="store_true",
        help="print READY after the warm-up and wait for a line on stdin to start",
    )
    p.add_argument("--warmup-seconds", type=float, default=30.0, help="bound on the warm-up")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def _ready_and_wait() -> None:
    """Start protocol: print READY after the warm-up, start measuring on a line on stdin."""
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    sys.stdin.readline()


def _loop_factory(use_uvloop: bool) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if not use_uvloop:
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    _raise_nofile()
    job = build_job(args)
    config = {k: v for k, v in vars(args).items() if k not in ("child", "out", "key", "sync")}

    def run_local(wait: Callable[[], None] | None) -> Samples:
        with asyncio.Runner(loop_factory=_loop_factory(not args.no_uvloop)) as runner:
            bounds = (args.max_seconds, args.warmup_seconds, args.timeout)
            return runner.run(
                run_process(job, args.requests, args.concurrency, args.warmup, bounds, wait)
            )

    if args.child:
        with open(args.out, "w") as fh:  # a file, not stdout: large pipe writes can be cut
            fh.write(json.dumps(asdict(run_local(_ready_and_wait))))
        return 0
    if args.procs > 1:
        parts = run_children(args, [a for a in argv if a != "--sync"])
    else:
        parts = [run_local(_ready_and_wait if args.sync else None)]
    result = report(config, parts)
    text = json.dumps(result, indent=2)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
