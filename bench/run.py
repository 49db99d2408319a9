"""Orbyt benchmark: one command that runs every scenario against every target.

    python bench/run.py [--quick] [--only a,b,...] [--targets direct,floor,orbyt,litellm]
                        [--scale]
                        [--quiet-wait SECONDS] [--no-install]

It starts its own redis-server (free port, no persistence), the mock upstream and each
target in turn, runs the scenarios below with bench/loadgen.py, prints a markdown table
and writes bench/results.md plus JSON under bench/out/<run id>/ (logs there too). Every
process it starts is stopped on exit, Ctrl-C or error; everything listens on 127.0.0.1.

Targets: direct (load generator -> mock), floor (bench/floor_proxy.py, a bare aiohttp
pass-through proxy: what any gateway is measured against), orbyt (API + arq worker +
Redis), litellm (LiteLLM proxy, 1 worker, from bench/.venv-litellm). ``--scale``
instead runs scenario (c) on Orbyt with 1 or 2 API processes and 1 or 2 workers.

How Orbyt is started is in one place: ``OrbytLayout`` / ``orbyt_commands`` below.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Self

import ablate
import litellm_proxy

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUT_ROOT = BENCH / "out"
PY = sys.executable
HOST = "127.0.0.1"
# The Orbyt source tree benchmarked: this checkout's src/, or another tree (e.g. a checkout
# of an older commit, for before/after figures) named by ORBYT_BENCH_SRC.
ORBYT_SRC = Path(os.environ.get("ORBYT_BENCH_SRC") or REPO / "src").resolve()

# ----------------------------------------------------------------------------- Orbyt contract

ORBYT_KEY = "sk-or-v1-bench"
ORBYT_MODEL = "openai/gpt-bench"
ORBYT_READY_PATH = "/readyz"
SECRET_KEY = secrets.token_urlsafe(48)


@dataclass(frozen=True)
class OrbytLayout:
    apis: int = 1
    workers: int = 1


def orbyt_commands(api_port: int, variant: str = "baseline") -> tuple[list[str], list[str]]:
    """(API command, worker command). Adjust here if Orbyt's CLI changes. An ablation
    variant with an in-process patch runs through bench/ablate.py."""
    launch = [PY, "-m", "orbyt"]
    if ablate.VARIANTS[variant].patch is not None:
        launch = [PY, str(BENCH / "ablate.py"), variant]
    api = [*launch, "api", "--host", HOST, "--port", str(api_port)]
    worker = [*launch, "worker"]
    return api, worker


def orbyt_env(redis_port: int, mock_url: str) -> dict[str, str]:
    return {
        "ORBYT_REDIS_URL": f"redis://{HOST}:{redis_port}/0",
        "ORBYT_GATEWAY_KEYS": ORBYT_KEY,
        "ORBYT_PROVIDERS__OPENAI__BASE_URL": mock_url,
        "ORBYT_PROVIDERS__OPENAI__KEYS": '["sk-mock"]',
        "ORBYT_SECRET_KEY": SECRET_KEY,  # production mode wants a strong shared secret
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ORBYT_SRC), os.environ.get("PYTHONPATH")])),
    }


def orbyt_available() -> str | None:
    """None when ``python -m orbyt`` can run, else why not."""
    probe = "import importlib.util as u, sys; sys.exit(0 if u.find_spec('orbyt.__main__') else 3)"
    env = {**os.environ, **orbyt_env(0, "")}
    proc = subprocess.run(
        [PY, "-c", probe], cwd=REPO, env=env, capture_output=True, text=True, check=False
    )
    if proc.returncode == 0:
        return None
    if proc.returncode == 3:
        return "src/orbyt/__main__.py not found: `python -m orbyt` is not runnable yet"
    return f"importing orbyt failed: {proc.stderr.strip().splitlines()[-1:]}"


# ----------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    stream: bool
    concurrency: int
    requests: int
    quick_requests: int
    ttft: float = 0.0
    per_token: float = 0.0
    tokens: int = 20
    max_seconds: float = 40.0
    quick_max_seconds: float = 12.0
    loadgen_procs: int = 1
    request_timeout: float = 60.0

    def warmup(self, quick: bool) -> int:
        return min(self.concurrency, 100 if quick else 200)

    def max_seconds_for(self, quick: bool) -> float:
        return self.quick_max_seconds if quick else self.max_seconds


SCENARIOS: dict[str, Scenario] = {
    s.key: s
    for s in [
        Scenario("a", "non-stream, 20 tok, no delay, c=50", False, 50, 5000, 1000),
        Scenario("b", "stream, 20 tok, no delay, c=50", True, 50, 3000, 600),
        Scenario(
            "c",
            "stream, ttft 200 ms + 20 ms/tok, c=200",
            True,
            200,
            2400,
            800,
            ttft=0.2,
            per_token=0.02,
        ),
        Scenario(
            "d",
            "stream, ttft 200 ms + 20 ms/tok, c=1000",
            True,
            1000,
            6000,
            2500,
            ttft=0.2,
            per_token=0.02,
            max_seconds=45.0,
            quick_max_seconds=15.0,
            loadgen_procs=2,
            request_timeout=120.0,
        ),
        Scenario("e", "stream, no delay, c=1 (sequential)", True, 1, 500, 150),
        Scenario(
            "f",
            "stream, ttft 200 ms + 20 ms/tok, c=50",
            True,
            50,
            1500,
            400,
            ttft=0.2,
            per_token=0.02,
        ),
    ]
}


TARGETS = ("direct", "floor", "orbyt", "litellm")  # the default order of a run and its tables

# ----------------------------------------------------------------------------- processes


class Processes:
    """Every child process of this run, each in its own session; stopped on exit."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(
        self, name: str, cmd: list[str], env: dict[str, str] | None = None, cwd: Path = REPO
    ) -> subprocess.Popen[bytes]:
        log = open(self.log_dir / f"{name}.log", "wb")  # noqa: SIM115 - lives with the process
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        self.procs[name] = proc
        return proc

    def alive(self, name: str) -> bool:
        return self.procs[name].poll() is None

    def log_tail(self, name: str, lines: int = 15) -> str:
        path = self.log_dir / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, *names: str, grace: float = 10.0) -> None:
        """Stop the named processes: SIGTERM to each session, SIGKILL after ``grace``."""
        targets = [n for n in names if n in self.procs]
        for name in targets:
            _signal_group(self.procs[name], signal.SIGTERM)
        deadline = time.monotonic() + grace
        for name in targets:
            proc = self.procs.pop(name)
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait(timeout=5)
            _signal_group(proc, signal.SIGKILL)  # leftovers of the session, if any

    def stop_all(self) -> None:
        self.stop(*reversed(list(self.procs)))


def _signal_group(proc: subprocess.Popen[Any], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)  # the group id is the pid: start_new_session=True


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_until(
    check: Callable[[], bool], timeout: float, what: str, alive: Callable[[], bool] = lambda: True
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if not alive():
            raise RuntimeError(f"{what}: process exited during start-up")
        time.sleep(0.2)
    raise RuntimeError(f"{what}: not ready after {timeout:.0f} s")


def http(
    method: str,
    url: str,
    body: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 5.0,
) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError):
        return 0, b""


def _is_ok(url: str) -> bool:
    return http("GET", url)[0] == 200


def redis_command(port: int, *args: str) -> bytes:
    payload = b"*%d\r\n" % len(args) + b"".join(
        b"$%d\r\n%s\r\n" % (len(a.encode()), a.encode()) for a in args
    )
    with socket.create_connection((HOST, port), timeout=2) as s:
        s.sendall(payload)
        return s.recv(65536)


# ----------------------------------------------------------------------------- /proc sampling


def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def process_tree(pids: list[int]) -> list[int]:
    kids, out, todo = _children_map(), [], list(pids)
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(kids.get(pid, []))
    return out


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / os.sysconf("SC_CLK_TCK")


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return round(total / 1024, 1)


def machine_busy_seconds() -> float:
    """CPU seconds all cores have been busy since boot (everything but idle and iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    busy = sum(fields[:8]) - idle  # user nice system idle iowait irq softirq steal
    return busy / os.sysconf("SC_CLK_TCK")


def _reaped_children_cpu() -> float:
    """CPU seconds of this process's children (and theirs) that have exited and been reaped."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wait_for_quiet(max_wait: float, threshold: float = 0.3) -> float:
    """Wait (at most ``max_wait`` s) until the machine uses under ``threshold`` cores; return
    the seconds waited. Other work on a shared machine skews every number."""
    started = time.monotonic()
    while time.monotonic() - started < max_wait:
        busy0 = machine_busy_seconds()
        time.sleep(1.0)
        if machine_busy_seconds() - busy0 < threshold:
            break
    return round(time.monotonic() - started, 1)


class CpuWindow:
    """CPU seconds used by each role's process tree and by the whole machine over a window."""

    def __init__(self, roles: dict[str, list[int]]):
        self.trees = {role: process_tree(pids) for role, pids in roles.items()}
        self.cpu0 = {role: cpu_seconds(pids) for role, pids in self.trees.items()}
        self.busy0, self.wall0 = machine_busy_seconds(), time.monotonic()

    def close(self) -> tuple[dict[str, float], float, float]:
        """(CPU seconds per role, machine busy CPU seconds, wall seconds)."""
        cpu = {role: cpu_seconds(pids) - self.cpu0[role] for role, pids in self.trees.items()}
        return cpu, machine_busy_seconds() - self.busy0, time.monotonic() - self.wall0


class Sampler:
    """Peak RSS per role of a target's processes (and their children) while a run lasts."""

    def __init__(self, roles: dict[str, list[int]], every: float = 0.25):
        self.roles, self.every = roles, every
        self.peak: dict[str, float] = dict.fromkeys(roles, 0.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            for role, pids in self.roles.items():
                self.peak[role] = max(self.peak[role], rss_mb(process_tree(pids)))
            self._stop.wait(self.every)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# ----------------------------------------------------------------------------- targets


@dataclass
class Target:
    name: str
    base_urls: list[str]
    key: str
    model: str
    roles: dict[str, list[int]] = field(default_factory=dict)  # role -> pids (for CPU/RSS)


class Bench:
    def __init__(self, args: argparse.Namespace, run_dir: Path):
        self.args = args
        self.run_dir = run_dir
        self.procs = Processes(run_dir / "logs")
        self.mock_port = 0
        self.redis_port = 0

    # -- infrastructure ------------------------------------------------------------------
    @property
    def mock_url(self) -> str:
        return f"http://{HOST}:{self.mock_port}/v1"

    def start_mock(self) -> None:
        self.mock_port = free_port()
        self.procs.start(
            "mock", [PY, str(BENCH / "mock_upstream.py"), "--port", str(self.mock_port)]
        )
        wait_until(
            lambda: http("GET", f"{self.mock_url}/models")[0] == 200,
            10,
            "mock upstream",
            lambda: self.procs.alive("mock"),
        )

    def start_redis(self) -> None:
        if self.redis_port:
            return
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.redis_port = free_port()
        self.procs.start(
            "redis",
            [
                binary,
                "--port",
                str(self.redis_port),
                "--bind",
                HOST,
                "--save",
                "",
                "--appendonly",
                "no",
                "--loglevel",
                "warning",
                "--maxclients",
                "10000",
            ],
        )

        def pong() -> bool:
            try:
                return redis_command(self.redis_port, "PING").startswith(b"+PONG")
            except OSError:
                return False

        wait_until(pong, 10, "redis-server", lambda: self.procs.alive("redis"))

    def set_profile(self, scenario: Scenario) -> None:
        status, body = http(
            "POST",
            f"http://{HOST}:{self.mock_port}/_bench/profile",
            {"tokens": scenario.tokens, "ttft": scenario.ttft, "per_token": scenario.per_token},
        )
        if status != 200:
            raise RuntimeError(f"mock refused profile: {status} {body!r}")

    def mock_stats(self, reset: bool = False) -> dict[str, Any]:
        path = "/_bench/stats/reset" if reset else "/_bench/stats"
        status, body = http("POST" if reset else "GET", f"http://{HOST}:{self.mock_port}{path}")
        return json.loads(body) if status == 200 else {}

    # -- targets -------------------------------------------------------------------------
    def start_target(
        self, name: str, layout: OrbytLayout = OrbytLayout(), variant: str = "baseline"
    ) -> Target:
        if name == "direct":
            return Target(
                "direct",
                [self.mock_url],
                "sk-mock",
                "gpt-bench",
                {"mock": [self.procs.procs["mock"].pid]},
            )
        if name == "floor":
            return self._start_floor()
        if name == "litellm":
            return self._start_litellm()
        if name == "orbyt":
            return self._start_orbyt(layout, variant)
        raise ValueError(f"unknown target {name}")

    def stop_target(self, target: Target) -> None:
        names = [n for n in self.procs.procs if n.startswith(f"{target.name}-")]
        self.procs.stop(*names)

    def _start_floor(self) -> Target:
        port = free_port()
        cmd = [PY, str(BENCH / "floor_proxy.py"), "--port", str(port), "--upstream", self.mock_url]
        proc = self.procs.start("floor-proxy", cmd)
        base = f"http://{HOST}:{port}"
        wait_until(
            partial(_is_ok, f"{base}/health"),
            30,
            "floor proxy /health",
            partial(self.procs.alive, "floor-proxy"),
        )
        target = Target("floor", [f"{base}/v1"], "sk-floor", "gpt-bench", {"floor": [proc.pid]})
        self._smoke(target)
        return target

    def _start_litellm(self) -> Target:
        if not litellm_proxy.is_installed():
            if self.args.no_install:
                raise SkipTarget("bench/.venv-litellm missing (run bench/litellm_proxy.py install)")
            litellm_proxy.install()
        port = free_port()
        config = litellm_proxy.write_config(self.run_dir / "litellm.yaml", self.mock_url)
        proc = self.procs.start(
            "litellm-proxy",
            litellm_proxy.command(config, port),
            env=litellm_proxy.env(),
            cwd=self.run_dir,
        )
        base = f"http://{HOST}:{port}"
        wait_until(
            lambda: http("GET", f"{base}/health/liveliness")[0] == 200,
            120,
            "litellm proxy",
            lambda: self.procs.alive("litellm-proxy"),
        )
        target = Target(
            "litellm",
            [f"{base}/v1"],
            litellm_proxy.MASTER_KEY,
            litellm_proxy.MODEL,
            {"litellm": [proc.pid]},
        )
        self._smoke(target)
        return target

    def _start_orbyt(self, layout: OrbytLayout, variant: str = "baseline") -> Target:
        reason = orbyt_available()
        if reason:
            raise SkipTarget(reason)
        self.start_redis()
        redis_command(self.redis_port, "FLUSHALL")
        env = {
            **os.environ,
            **orbyt_env(self.redis_port, self.mock_url),
            **ablate.VARIANTS[variant].env,
        }
        ports = [free_port() for _ in range(layout.apis)]
        api_pids, worker_pids = [], []
        for i in range(layout.workers):
            _, worker_cmd = orbyt_commands(0, variant)
            worker_pids.append(self.procs.start(f"orbyt-worker-{i}", worker_cmd, env=env).pid)
        for i, port in enumerate(ports):
            api_cmd, _ = orbyt_commands(port, variant)
            api_pids.append(self.procs.start(f"orbyt-api-{i}", api_cmd, env=env).pid)
        for i, port in enumerate(ports):
            name = f"orbyt-api-{i}"
            ready_url = f"http://{HOST}:{port}{ORBYT_READY_PATH}"
            try:
                wait_until(
                    partial(_is_ok, ready_url),
                    60,
                    f"{name} {ORBYT_READY_PATH}",
                    partial(self.procs.alive, name),
                )
            except RuntimeError as exc:
                tails = "\n".join(
                    f"--- {n}\n{self.procs.log_tail(n)}"
                    for n in [name, *(f"orbyt-worker-{j}" for j in range(layout.workers))]
                )
                raise RuntimeError(f"{exc}\n{tails}") from exc
        if layout.workers > 1:
            time.sleep(2.0)  # readiness needs one live worker; give the others time to join
        target = Target(
            "orbyt",
            [f"http://{HOST}:{p}/v1" for p in ports],
            ORBYT_KEY,
            ORBYT_MODEL,
            {"api": api_pids, "worker": worker_pids, "redis": [self.procs.procs["redis"].pid]},
        )
        try:
            self._smoke(target)
        except RuntimeError as exc:
            tails = "\n".join(
                f"--- {n} log tail\n{self.procs.log_tail(n)}"
                for n in self.procs.procs
                if n.startswith("orbyt-")
            )
            raise RuntimeError(f"{exc}\n{tails}") from exc
        return target

    def _smoke(self, target: Target) -> None:
        body = {"model": target.model, "messages": [{"role": "user", "content": "hi"}]}
        status, answer = http(
            "POST",
            f"{target.base_urls[0]}/chat/completions",
            body,
            {"Authorization": f"Bearer {target.key}"},
            timeout=30,
        )
        if status != 200:
            raise RuntimeError(f"{target.name}: smoke request got {status}: {answer[:300]!r}")

    # -- one measurement -----------------------------------------------------------------
    def loadgen_command(
        self, target: Target, scenario: Scenario, label: str, out: Path
    ) -> list[str]:
        quick = self.args.quick
        cmd = [
            PY,
            str(BENCH / "loadgen.py"),
            "--key",
            target.key,
            "--model",
            target.model,
            "--tokens",
            str(scenario.tokens),
            "--concurrency",
            str(scenario.concurrency),
            "--requests",
            str(scenario.quick_requests if quick else scenario.requests),
            "--warmup",
            str(scenario.warmup(quick)),
            "--max-seconds",
            str(scenario.max_seconds_for(quick)),
            "--warmup-seconds",
            "30",
            "--timeout",
            str(scenario.request_timeout),
            "--procs",
            str(scenario.loadgen_procs),
            "--label",
            label,
            "--out",
            str(out),
            "--sync",
        ]
        for url in target.base_urls:
            cmd += ["--base-url", url]
        if scenario.stream:
            cmd.append("--stream")
        return cmd

    def measure(self, target: Target, scenario: Scenario, label: str) -> dict[str, Any]:
        """Warm up, then run one scenario against one target; return the loadgen report
        extended with the upstream's count and the CPU and memory of every party."""
        self.set_profile(scenario)
        waited = wait_for_quiet(self.args.quiet_wait) if self.args.quiet_wait > 0 else 0.0
        out = self.run_dir / f"{label}.json"
        roles = {**target.roles, "_mock": [self.procs.procs["mock"].pid]}
        reaped0 = _reaped_children_cpu()
        lg = subprocess.Popen(
            self.loadgen_command(target, scenario, label, out),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            assert lg.stdin is not None and lg.stdout is not None
            if lg.stdout.readline().strip() != "READY":
                raise RuntimeError(f"loadgen failed during warm-up for {label}")
            self.mock_stats(reset=True)
            window = CpuWindow(roles)
            loadgen_before = cpu_seconds(process_tree([lg.pid]))  # its warm-up
            with Sampler(target.roles) as sampler:
                lg.stdin.write("GO\n")
                lg.stdin.flush()
                lg.communicate(timeout=scenario.max_seconds_for(self.args.quick) + 300)
            cpu, busy, wall = window.close()
            loadgen_cpu = _reaped_children_cpu() - reaped0 - loadgen_before
        finally:
            if lg.poll() is None:
                _signal_group(lg, signal.SIGKILL)
                lg.wait()
        if lg.returncode != 0:
            raise RuntimeError(f"loadgen exited {lg.returncode} for {label}")
        result: dict[str, Any] = json.loads(out.read_text())
        done = max(result["completed"], 1)
        upstream = self.mock_stats()
        mock_cpu = cpu.pop("_mock")
        sut_cpu = sum(cpu.values()) if target.name != "direct" else 0.0  # direct's SUT: mock
        result.update(
            {
                "target": target.name,
                "scenario": scenario.key,
                "title": scenario.title,
                "upstream_chat_requests": upstream.get("chat_stream", 0)
                + upstream.get("chat_nonstream", 0),
                "sut_cpu_ms_per_req": {r: round(c / done * 1000, 3) for r, c in cpu.items()},
                "sut_cpu_util": {r: round(c / wall, 3) for r, c in cpu.items()},
                "sut_peak_rss_mb": dict(sampler.peak),
                "mock_cpu_util": round(mock_cpu / wall, 3),
                "other_cpu_util": round(
                    max(busy - loadgen_cpu - mock_cpu - sut_cpu, 0.0) / wall, 3
                ),
                "quiet_wait_s": waited,
            }
        )
        out.write_text(json.dumps(result, indent=2) + "\n")
        return result


class SkipTarget(Exception):
    """The target cannot run here (not built yet, not installed); say why and go on."""


# ----------------------------------------------------------------------------- report


def _fmt(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _ratio(a: float | None, b: float | None) -> str:
    return "–" if not a or not b else f"{a / b:.2f}×"


def sut_cpu_ms(r: dict[str, Any]) -> float | None:
    if r["target"] == "direct":
        return None
    return float(sum(r["sut_cpu_ms_per_req"].values()))


def _q(a: float | None, b: float | None) -> float | None:
    return None if not a or not b else round(a / b, 3)


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 2)


def compare(results: list[dict[str, Any]]) -> None:
    """Add to each result its ratios to direct, to the floor and (Orbyt) to LiteLLM in the
    same scenario of the same run: the figures the tables show, kept in the JSON too."""
    by = {(r["scenario"], r["target"]): r for r in results}
    for r in results:
        direct = by.get((r["scenario"], "direct")) if r["target"] != "direct" else None
        floor = by.get((r["scenario"], "floor")) if r["target"] not in ("direct", "floor") else None
        lite = by.get((r["scenario"], "litellm")) if r["target"] == "orbyt" else None
        ttft, cpu = r["ttft_ms"], sut_cpu_ms(r)
        r["sut_cpu_ms_per_req_total"] = None if cpu is None else round(cpu, 3)
        r["vs_direct"] = direct and {
            "rps": _q(r["rps"], direct["rps"]),
            "ttft_p50_added_ms": _minus(ttft["p50"], direct["ttft_ms"]["p50"]),
            "ttft_p99_added_ms": _minus(ttft["p99"], direct["ttft_ms"]["p99"]),
        }
        r["vs_floor"] = floor and {
            "rps": _q(r["rps"], floor["rps"]),
            "cpu_per_req": _q(cpu, sut_cpu_ms(floor)),
            "ttft_p50_over_floor_ms": _minus(ttft["p50"], floor["ttft_ms"]["p50"]),
            "ttft_p99_over_floor_ms": _minus(ttft["p99"], floor["ttft_ms"]["p99"]),
        }
        r["vs_litellm"] = lite and {
            "rps": _q(r["rps"], lite["rps"]),
            "ttft_p50": _q(ttft["p50"], lite["ttft_ms"]["p50"]),
        }


def _x(ratio: float | None) -> str:
    return "–" if ratio is None else f"{ratio:.2f}×"


def _ms(added: float | None) -> str:
    return "–" if added is None else f"{added:+.1f}"


def results_table(results: list[dict[str, Any]]) -> str:
    compare(results)
    head = (
        "| scenario | target | req/s | req/s vs direct | req/s vs floor | TTFT p50 ms "
        "| TTFT p99 ms | +TTFT p50 vs direct ms | +TTFT p99 vs direct ms | total p50 ms "
        "| errors | CPU ms/req by process | CPU ms/req | CPU/req vs floor | peak RSS MB "
        "| req/s vs LiteLLM | TTFT p50 vs LiteLLM |"
    )
    rows = [head, "|" + "---|" * 17]
    for r in results:
        d, f, lite = r["vs_direct"] or {}, r["vs_floor"] or {}, r["vs_litellm"] or {}
        direct = r["target"] == "direct"  # its SUT is the mock: see the harness table
        by_role = " / ".join(f"{k} {v:.2f}" for k, v in r["sut_cpu_ms_per_req"].items())
        rss = None if direct else sum(r["sut_peak_rss_mb"].values())
        errors = str(r["errors"]) + (" ⏱" if r.get("stopped_by_deadline") else "")
        rows.append(
            f"| {r['scenario']} | {r['target']} | {_fmt(r['rps'])} | {_x(d.get('rps'))} "
            f"| {_x(f.get('rps'))} | {_fmt(r['ttft_ms']['p50'])} | {_fmt(r['ttft_ms']['p99'])} "
            f"| {_ms(d.get('ttft_p50_added_ms'))} | {_ms(d.get('ttft_p99_added_ms'))} "
            f"| {_fmt(r['total_ms']['p50'])} | {errors} | {'–' if direct else by_role} "
            f"| {_fmt(r['sut_cpu_ms_per_req_total'], 2)} | {_x(f.get('cpu_per_req'))} "
            f"| {_fmt(rss, 0)} | {_x(lite.get('rps'))} | {_x(lite.get('ttft_p50'))} |"
        )
    return "\n".join(rows)


def harness_table(results: list[dict[str, Any]]) -> str:
    rows = [
        (
            "| scenario | target | ok | upstream calls | loadgen CPU % | mock CPU % "
            "| SUT CPU % by role | other CPU % | SUT peak RSS MB by role | error kinds |"
        ),
        "|" + "---|" * 10,
    ]
    for r in results:
        roles = ", ".join(f"{k} {v * 100:.0f}" for k, v in r["sut_cpu_util"].items())
        rss = ", ".join(f"{k} {v:.0f}" for k, v in r["sut_peak_rss_mb"].items())
        kinds = ", ".join(f"{k}×{v}" for k, v in r["error_kinds"].items()) or "–"
        rows.append(
            f"| {r['scenario']} | {r['target']} | {r['ok']} "
            f"| {r['upstream_chat_requests']} | {r['loadgen_cpu_util'] * 100:.0f} "
            f"| {r['mock_cpu_util'] * 100:.0f} "
            f"| {roles} | {r.get('other_cpu_util', 0) * 100:.0f} | {rss} | {kinds} |"
        )
    return "\n".join(rows)


def machine_line() -> str:
    cpu = "unknown cpu"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (
        f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
        f"LiteLLM {litellm_proxy.version()}"
    )


def render(
    args: argparse.Namespace,
    results: list[dict[str, Any]],
    skipped: dict[str, str],
    extra: str,
    started: float,
    run_dir: Path,
    load_before: float,
) -> str:
    mode = "quick" if args.quick else "full"
    lines = [
        "# Orbyt benchmark results",
        "",
        f"Run {run_dir.name} ({mode} mode, {time.monotonic() - started:.0f} s), "
        f"{machine_line()}; 1-min load average {load_before:.2f} before, "
        f"{os.getloadavg()[0]:.2f} after. Load generator, mock upstream and the system under "
        "test share the cores; 'other CPU %' is what the rest of the machine used meanwhile. "
        "JSON and logs: `bench/out/" + run_dir.name + "/`.",
        "",
        "Scenarios: "
        + "; ".join(f"**{s.key}** {s.title}" for s in SCENARIOS.values() if s.key in args.only)
        + ".",
        "",
    ]
    for name, why in skipped.items():
        lines += [f"> **{name} skipped:** {why}", ""]
    if results:
        lines += [
            "## Throughput and latency",
            "",
            results_table(results),
            "",
            "⏱ = the scenario hit its time bound; req/s counts the requests that finished.",
            "",
            "## Harness load and resources",
            "",
            harness_table(results),
            "",
        ]
    if extra:
        lines += [extra, ""]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- main flows


def run_matrix(
    bench: Bench, args: argparse.Namespace
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    results: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    for name in args.targets:
        print(f"\n== target {name}", flush=True)
        try:
            target = bench.start_target(name)
        except SkipTarget as exc:
            skipped[name] = str(exc)
            print(f"   SKIP {name}: {exc}", flush=True)
            continue
        except RuntimeError as exc:
            skipped[name] = f"failed to start: {str(exc).splitlines()[0]}"
            print(f"   FAILED to start {name}: {exc}", flush=True)
            bench.stop_target(Target(name, [], "", ""))
            continue
        try:
            for key in args.only:
                scenario = SCENARIOS[key]
                print(f"   scenario {key}: {scenario.title} ...", end=" ", flush=True)
                r = bench.measure(target, scenario, f"{name}-{key}")
                results.append(r)
                print(
                    f"{r['rps']:.1f} req/s, TTFT p50 {_fmt(r['ttft_ms']['p50'])} ms, "
                    f"p99 {_fmt(r['ttft_ms']['p99'])} ms, errors {r['errors']}",
                    flush=True,
                )
        finally:
            bench.stop_target(target)
    order = {t: i for i, t in enumerate(args.targets)}
    results.sort(key=lambda r: (r["scenario"], order[r["target"]]))
    return results, skipped


SCALE_LAYOUTS = [OrbytLayout(1, 1), OrbytLayout(1, 2), OrbytLayout(2, 1), OrbytLayout(2, 2)]


def run_scale(bench: Bench) -> tuple[list[dict[str, Any]], dict[str, str], str]:
    scenario = SCENARIOS["c"]
    rows = [
        "## Scale-out (scenario c, Orbyt)",
        "",
        (
            "| APIs | workers | req/s | TTFT p50 ms | TTFT p99 ms | errors | API CPU % "
            "| worker CPU % | redis CPU % | API RSS MB | worker RSS MB |"
        ),
        "|" + "---|" * 11,
    ]
    results: list[dict[str, Any]] = []
    for layout in SCALE_LAYOUTS:
        print(f"\n== orbyt {layout.apis} API / {layout.workers} worker", flush=True)
        try:
            target = bench.start_target("orbyt", layout)
        except SkipTarget as exc:
            return results, {"orbyt": str(exc)}, ""
        try:
            r = bench.measure(target, scenario, f"scale-{layout.apis}api-{layout.workers}w")
        finally:
            bench.stop_target(target)
        r["layout"] = asdict(layout)
        r["target"] = f"orbyt {layout.apis} API/{layout.workers} worker"
        results.append(r)
        util, rss = r["sut_cpu_util"], r["sut_peak_rss_mb"]
        rows.append(
            f"| {layout.apis} | {layout.workers} | {_fmt(r['rps'])} "
            f"| {_fmt(r['ttft_ms']['p50'])} | {_fmt(r['ttft_ms']['p99'])} | {r['errors']} "
            f"| {util['api'] * 100:.0f} | {util['worker'] * 100:.0f} "
            f"| {util['redis'] * 100:.0f} | {rss['api']:.0f} | {rss['worker']:.0f} |"
        )
        print(
            f"   {r['rps']:.1f} req/s, TTFT p50 {_fmt(r['ttft_ms']['p50'])} ms, "
            f"errors {r['errors']}",
            flush=True,
        )
    rows += [
        "",
        (
            "On a 2-core machine that also runs the load generator and the mock, more "
            "processes cannot add CPU; this checks that several APIs and workers share the "
            "load correctly, not how far Orbyt scales."
        ),
    ]
    return results, {}, "\n".join(rows)


def run_ablations(bench: Bench, args: argparse.Namespace) -> tuple[list[dict[str, Any]], str]:
    """Orbyt once per variant of bench/ablate.py, same scenarios, same run."""
    results: list[dict[str, Any]] = []
    for name in args.variants:
        print(f"\n== orbyt, ablation {name}", flush=True)
        target = bench.start_target("orbyt", variant=name)
        try:
            for key in args.only:
                r = bench.measure(target, SCENARIOS[key], f"ablate-{name}-{key}")
                r["variant"] = name
                results.append(r)
                print(
                    f"   {key}: {r['rps']:.1f} req/s, TTFT p50 {_fmt(r['ttft_ms']['p50'])} ms, "
                    f"CPU {_fmt(sut_cpu_ms(r), 2)} ms/req, errors {r['errors']}",
                    flush=True,
                )
        finally:
            bench.stop_target(target)
    return results, ablation_table(results)


def ablation_table(results: list[dict[str, Any]]) -> str:
    base = {r["scenario"]: r for r in results if r["variant"] == "baseline"}
    rows = [
        "## Ablations (each fast path swapped for the library path it replaced)",
        "",
        "| scenario | variant | replaces | req/s | vs baseline | TTFT p50 ms | TTFT p99 ms "
        "| CPU ms/req (api / worker / redis) | CPU vs baseline | errors |",
        "|" + "---|" * 10,
    ]
    for r in sorted(results, key=lambda r: (r["scenario"], r["variant"] != "baseline")):
        b = base.get(r["scenario"])
        cpu = r["sut_cpu_ms_per_req"]
        by_role = " / ".join(_fmt(cpu.get(k), 2) for k in ("api", "worker", "redis"))
        rows.append(
            f"| {r['scenario']} | {r['variant']} | {ablate.VARIANTS[r['variant']].replaces} "
            f"| {_fmt(r['rps'])} | {_ratio(r['rps'], b['rps'] if b else None)} "
            f"| {_fmt(r['ttft_ms']['p50'])} | {_fmt(r['ttft_ms']['p99'])} | {by_role} "
            f"| {_ratio(sut_cpu_ms(r), sut_cpu_ms(b) if b else None)} | {r['errors']} |"
        )
    return "\n".join(rows)


def orbyt_memory_note(results: list[dict[str, Any]]) -> str:
    d = next((r for r in results if r["target"] == "orbyt" and r["scenario"] == "d"), None)
    if d is None:
        return ""
    rss = d["sut_peak_rss_mb"]
    floor = next((r for r in results if r["target"] == "floor" and r["scenario"] == "d"), None)
    floor_rss = f" (the floor proxy: {floor['sut_peak_rss_mb']['floor']:.0f} MB)" if floor else ""
    return (
        f"**Orbyt memory in (d)** (1,000 concurrent streams, peak VmRSS): API "
        f"{rss.get('api', 0):.0f} MB, worker {rss.get('worker', 0):.0f} MB, "
        f"redis {rss.get('redis', 0):.0f} MB{floor_rss}."
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer requests, shorter bounds")
    p.add_argument("--only", default=",".join(SCENARIOS), help="scenarios, e.g. a,b,e")
    p.add_argument(
        "--targets",
        default=",".join(TARGETS),
        help="comma list of " + ", ".join(TARGETS),
    )
    p.add_argument(
        "--scale",
        action="store_true",
        help="Orbyt with 1/2 APIs x 1/2 workers on scenario c (ignores --only)",
    )
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each measurement wait up to this long for the rest of the "
        "machine to fall under 0.3 busy cores (for shared, noisy machines)",
    )
    p.add_argument(
        "--ablations",
        nargs="?",
        const=",".join(ablate.VARIANTS),
        default=None,
        metavar="VARIANTS",
        help="Orbyt once per variant of bench/ablate.py (default: all) on --only "
        "(default b,c,e); writes bench/results-ablations.md",
    )
    p.add_argument(
        "--no-install",
        action="store_true",
        help="skip LiteLLM instead of creating bench/.venv-litellm",
    )
    args = p.parse_args(argv)
    if args.ablations is not None and args.only == ",".join(SCENARIOS):
        args.only = "b,c,e"
    args.variants = [v.strip() for v in (args.ablations or "").split(",") if v.strip()]
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    bad = [s for s in args.only if s not in SCENARIOS]
    bad += [t for t in args.targets if t not in TARGETS]
    bad += [v for v in args.variants if v not in ablate.VARIANTS]
    if bad:
        p.error(f"unknown scenario/target: {', '.join(bad)}")
    if args.scale:
        args.only = ["c"]
    return args


@contextlib.contextmanager
def cleanup_on_signals(procs: Processes) -> Iterator[None]:
    """Turn SIGTERM/SIGHUP into an exception so ``finally`` blocks stop every process."""

    def handler(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        procs.stop_all()
        for s, h in previous.items():
            signal.signal(s, h)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    run_dir = OUT_ROOT / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    (run_dir / "logs").mkdir(parents=True, exist_ok=True)
    started, load_before = time.monotonic(), os.getloadavg()[0]
    bench = Bench(args, run_dir)
    with cleanup_on_signals(bench.procs):
        try:
            bench.start_mock()
            if args.scale:
                results, skipped, extra = run_scale(bench)
            elif args.variants:
                results, extra = run_ablations(bench, args)
                skipped = {}
            else:
                results, skipped = run_matrix(bench, args)
                extra = orbyt_memory_note(results)
        except KeyboardInterrupt:
            print("\ninterrupted; stopping every process", file=sys.stderr)
            return 130
    compare(results)
    (run_dir / "results.json").write_text(
        json.dumps({"args": vars(args), "skipped": skipped, "results": results}, indent=2) + "\n"
    )
    name = "results-scale.md" if args.scale else "results.md"
    if args.variants:  # the ablation table replaces the matrix tables
        name, results = "results-ablations.md", []
    report = render(args, results, skipped, extra, started, run_dir, load_before)
    (run_dir / "results.md").write_text(report)
    (BENCH / name).write_text(report)
    print("\n" + report)
    print(
        f"wrote bench/{name} and {run_dir.relative_to(REPO)}/ in {time.monotonic() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
