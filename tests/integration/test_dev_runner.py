"""`orbyt dev` as a real process tree: signals drain in order (API, workers, then Redis),
a second signal forces, no child outlives the runner, a taken port fails at once."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.gateway import free_port

pytestmark = pytest.mark.integration

KEY = "sk-or-v1-" + "e" * 64
TOKENS = 20
TOKEN_MS = 120  # a stream of ~2.6 s: long enough to signal in the middle of it


def dev_env(**extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "ORBYT_DEV_KEY": KEY,
        "ORBYT_WORKER_METRICS_PORT": "0",
        "ORBYT_WORKR_MAX_JOBS": "5",  # a typo: warned about once, by the runner
        **extra,
    }
    if os.environ.get("ORBYT_REDIS_SERVER"):
        env["PATH"] = os.path.dirname(os.environ["ORBYT_REDIS_SERVER"]) + os.pathsep + env["PATH"]
    return env


class Dev:
    """One `orbyt dev` process in its own session (so a group signal is a terminal's)."""

    def __init__(self, cwd: Path, preexec: Callable[[], Any] | None = None) -> None:
        self.port = free_port()
        config = cwd / "orbyt.yaml"  # the mock's delays come from a YAML config file
        config.write_text(f"mock:\n  ttft_ms: 100\n  token_ms: {TOKEN_MS}\n")
        self.out = cwd / "dev.log"
        self._log = self.out.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "orbyt", "dev", "--port", str(self.port)],
            env=dev_env(ORBYT_CONFIG=str(config)),
            cwd=cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=preexec,
        )
        self.base = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 40.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            assert self.proc.poll() is None, self.output()
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(self.base + "/readyz", timeout=1) as resp,
            ):
                if resp.status == 200 and "Orbyt is running" in self.output():
                    return
            time.sleep(0.1)
        raise AssertionError("orbyt dev did not become ready:\n" + self.output())

    def output(self) -> str:
        return self.out.read_text(errors="replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self._log.close()


def children(pid: int) -> list[int]:
    """Every descendant of pid, from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for child, ppid in parents.items():
            if ppid == parent:
                found.append(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def answering(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class Stream(threading.Thread):
    """A slow streamed chat completion; records every data line it receives."""

    def __init__(self, base: str) -> None:
        super().__init__(daemon=True)
        self.base = base
        self.lines: list[str] = []
        self.error: BaseException | None = None
        self.first = threading.Event()

    def run(self) -> None:
        body = {
            "model": "mock/echo",
            "stream": True,
            "max_tokens": TOKENS,
            "messages": [{"role": "user", "content": "drain me"}],
        }
        headers = {"authorization": f"Bearer {KEY}"}
        try:
            with httpx.stream(
                "POST", self.base + "/v1/chat/completions", json=body, headers=headers, timeout=30
            ) as resp:
                for line in resp.iter_lines():
                    if line.startswith("data: "):
                        self.lines.append(line[6:])
                        self.first.set()
        except BaseException as exc:
            self.error = exc
        finally:
            self.first.set()

    def content(self) -> str:
        text = ""
        for line in self.lines:
            if line != "[DONE]":
                for choice in json.loads(line).get("choices", []):
                    text += choice.get("delta", {}).get("content") or ""
        return text


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[Dev]:
    runner = Dev(tmp_path)
    try:
        runner.wait_ready()
        yield runner
    finally:
        runner.close()


def assert_all_gone(dev: Dev, tree: list[int], timeout: float = 40.0) -> int:
    code = dev.proc.wait(timeout)
    end = time.monotonic() + 5
    while any(alive(pid) for pid in tree) and time.monotonic() < end:
        time.sleep(0.05)
    assert [pid for pid in tree if alive(pid)] == [], dev.output()
    assert not answering(dev.port)
    return code


def drain_on(dev: Dev, send: Callable[[], None]) -> None:
    tree = children(dev.proc.pid)
    assert len(tree) >= 3  # redis-server, a worker, the API
    stream = Stream(dev.base)
    started = time.monotonic()
    stream.start()
    assert stream.first.wait(10)
    send()
    stream.join(30)
    assert time.monotonic() - started > TOKENS * TOKEN_MS / 1000 * 0.8  # the config's delays
    assert stream.error is None, stream.error
    assert stream.lines[-1] == "[DONE]", stream.lines[-3:]
    assert stream.content() == " ".join(["drain", "me"] * (TOKENS // 2))
    assert assert_all_gone(dev, tree) == 0
    out = dev.output()
    assert "Traceback" not in out and "reply_lost" not in out, out
    assert not (Path(dev.out).parent / ".orbyt" / "dev.json").exists()


def test_sigterm_drains_open_streams_then_stops_every_child(dev: Dev) -> None:
    drain_on(dev, lambda: dev.proc.send_signal(signal.SIGTERM))


def test_sigint_drains_open_streams_then_stops_every_child(dev: Dev) -> None:
    drain_on(dev, lambda: dev.proc.send_signal(signal.SIGINT))


def test_terminal_ctrl_c_reaches_only_the_runner(dev: Dev) -> None:
    """A terminal sends SIGINT to the whole foreground process group: Redis must not die
    first (children run in their own sessions)."""
    drain_on(dev, lambda: os.killpg(dev.proc.pid, signal.SIGINT))


def test_second_signal_forces_a_prompt_exit_without_orphans(dev: Dev) -> None:
    tree = children(dev.proc.pid)
    stream = Stream(dev.base)
    stream.start()
    assert stream.first.wait(10)
    dev.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    started = time.monotonic()
    dev.proc.send_signal(signal.SIGTERM)
    assert_all_gone(dev, tree, timeout=5)
    assert time.monotonic() - started < 5
    stream.join(10)
    assert "[DONE]" not in stream.lines


def test_sigint_is_handled_when_started_in_the_background_with_sigint_ignored(
    tmp_path: Path,
) -> None:
    """A shell starts background jobs of a script with SIGINT ignored."""
    runner = Dev(tmp_path, preexec=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        runner.wait_ready()
        drain_on(runner, lambda: runner.proc.send_signal(signal.SIGINT))
    finally:
        runner.close()


def test_banner_prints_the_redis_url_to_export_and_a_state_file_without_key(dev: Dev) -> None:
    out = dev.output()
    state = json.loads((dev.out.parent / ".orbyt" / "dev.json").read_text())
    assert f"export ORBYT_REDIS_URL={state['redis_url']}" in out
    assert KEY not in json.dumps(state)
    assert state["pid"] == dev.proc.pid
    typo = [line for line in out.splitlines() if "ORBYT_WORKR_MAX_JOBS" in line]
    assert len(typo) == 1 and "did you mean ORBYT_WORKER_MAX_JOBS?" in typo[0], out


def test_taken_port_fails_at_once_with_one_line_suggesting_port(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        env = dev_env()
        env.pop("ORBYT_WORKR_MAX_JOBS")
        proc = subprocess.run(
            [sys.executable, "-m", "orbyt", "dev", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert time.monotonic() - started < 5
    assert proc.returncode == 1
    assert "Orbyt is running" not in proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert f"port {port}" in lines[0] and "--port" in lines[0]


def test_children_stop_even_if_the_runner_is_killed(dev: Dev) -> None:
    """SIGKILL leaves no chance to clean up: the children's parent-death signal does it."""
    tree = children(dev.proc.pid)
    dev.proc.kill()
    dev.proc.wait(5)
    end = time.monotonic() + 30
    while any(alive(pid) for pid in tree) and time.monotonic() < end:
        time.sleep(0.1)
    assert [pid for pid in tree if alive(pid)] == [], dev.output()
    assert not answering(dev.port)


def test_a_child_that_exits_while_starting_fails_at_once(tmp_path: Path) -> None:
    """Here the worker cannot read its catalog; any child's early exit is handled alike."""
    env = dev_env(ORBYT_CATALOG_PATH=str(tmp_path / "no-such-catalog.json"))
    env.pop("ORBYT_WORKR_MAX_JOBS")
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "orbyt", "dev", "--port", str(free_port())],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert time.monotonic() - started < 20
    assert proc.returncode == 1
    assert "Orbyt is running" not in proc.stdout
    ours = [line for line in proc.stderr.splitlines() if line.startswith("orbyt dev: ")]
    assert len(ours) == 1 and "exited while starting" in ours[0], proc.stderr
