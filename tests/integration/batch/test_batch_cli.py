"""`orbyt batch run|list|show|cancel` through the console script against a real gateway:
a run to completion, a run interrupted (Ctrl-C, then SIGKILL) and resumed on the same
batch, list/show/cancel, and one-line errors (gateway down, bad file, bad arguments)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.gateway import GATEWAY_KEY, Gateway, RedisServer, free_port
from tests.integration.batch.conftest import assert_no_errors, gateway_env
from tests.integration.batch.support import MarkerOpenAI, client, jsonl, line, submit, wait

pytestmark = pytest.mark.integration

ORBYT = str(Path(sys.executable).parent / "orbyt")


@pytest.fixture(scope="module")
def gateway(redis_server: RedisServer, fake: MarkerOpenAI) -> Iterator[Gateway]:
    env = gateway_env(fake, ORBYT_BATCH_CONCURRENCY="4")  # slow enough to interrupt
    with Gateway(redis_server.new_db_url(), env, workers=1) as gw:
        yield gw
        assert_no_errors(gw)


def cli_env(gw: Gateway | None, **extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ORBYT_", "OPENAI_"))}
    conn = {"ORBYT_BASE_URL": gw.base_url, "OPENAI_API_KEY": GATEWAY_KEY} if gw else {}
    return {**base, **conn, **extra}


def orbyt(
    cwd: Path, *args: str, gw: Gateway | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ORBYT, *args],
        env=cli_env(gw, **env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=90,
    )


def one_line_error(proc: subprocess.CompletedProcess[str], code: int) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def write_input(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_bytes(jsonl(lines))
    return path


def test_run_to_completion(gateway: Gateway, tmp_path: Path) -> None:
    lines = [line(f"req-{i}", f"hello {i}") for i in range(30)]
    lines += [line("bad-1", "FAIL one"), line("bad-2", "FAIL two")]
    write_input(tmp_path / "in.jsonl", lines)
    proc = orbyt(tmp_path, "batch", "run", "in.jsonl", "-o", "out.jsonl", gw=gateway)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "completed: 30 done, 2 failed" in proc.stdout
    out = read_jsonl(tmp_path / "out.jsonl")
    err = read_jsonl(tmp_path / "out.errors.jsonl")
    assert sorted(x["custom_id"] for x in out) == sorted(f"req-{i}" for i in range(30))
    assert sorted(x["custom_id"] for x in err) == ["bad-1", "bad-2"]
    assert all(x["response"]["status_code"] == 200 for x in out)
    assert not (tmp_path / "out.jsonl.batch.json").exists()  # state is gone once downloaded


def _state(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def _start_and_wait_for_batch(cwd: Path, gw: Gateway, state: Path) -> subprocess.Popen[str]:
    args = [ORBYT, "batch", "run", "in.jsonl", "-o", "out.jsonl", "--poll-interval", "0.2"]
    proc = subprocess.Popen(
        args,
        env=cli_env(gw),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    end = time.monotonic() + 20
    while not _state(state).get("batch_id"):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < end, "the run never created its batch"
        time.sleep(0.05)
    time.sleep(0.6)  # a few lines run
    return proc


def test_interrupted_run_resumes_the_same_batch(gateway: Gateway, tmp_path: Path) -> None:
    c = client(gateway.base_url)
    before = {f.id for f in c.files.list(purpose="batch")}
    write_input(tmp_path / "in.jsonl", [line(f"s-{i}", f"SLOW {i}") for i in range(48)])
    state = tmp_path / "out.jsonl.batch.json"

    proc = _start_and_wait_for_batch(tmp_path, gateway, state)
    batch_id = _state(state)["batch_id"]
    proc.send_signal(signal.SIGINT)  # Ctrl-C: says how to resume
    _, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert f"interrupted; batch {batch_id} keeps running" in stderr.strip().splitlines()[-1]
    assert c.batches.retrieve(batch_id).status == "in_progress"

    proc = _start_and_wait_for_batch(tmp_path, gateway, state)
    proc.kill()  # no chance to say anything
    proc.communicate(timeout=20)
    assert _state(state)["batch_id"] == batch_id

    again = orbyt(tmp_path, "batch", "run", "in.jsonl", "-o", "out.jsonl", gw=gateway)
    assert again.returncode == 0, again.stderr
    assert f"resuming batch {batch_id}" in again.stderr
    assert f"batch {batch_id} completed: 48 done, 0 failed" in again.stdout
    ids = Counter(x["custom_id"] for x in read_jsonl(tmp_path / "out.jsonl"))
    assert ids == Counter(f"s-{i}" for i in range(48))
    uploaded = {f.id for f in c.files.list(purpose="batch")} - before
    assert len(uploaded) == 1  # uploaded once, not per run
    assert not state.exists()


def test_changed_input_is_not_resumed(gateway: Gateway, tmp_path: Path) -> None:
    write_input(tmp_path / "in.jsonl", [line("a", "x")])
    (tmp_path / "out.jsonl.batch.json").write_text(
        json.dumps({"sha256": "0" * 64, "batch_id": "batch_old", "file_id": "file-old"})
    )
    args = ("batch", "run", "in.jsonl", "-o", "out.jsonl")
    msg = one_line_error(orbyt(tmp_path, *args, gw=gateway), 1)
    assert "another input" in msg and "--restart" in msg
    proc = orbyt(tmp_path, *args, "--restart", "-q", gw=gateway)
    assert proc.returncode == 0, proc.stderr
    assert [x["custom_id"] for x in read_jsonl(tmp_path / "out.jsonl")] == ["a"]


def test_list_show_cancel(gateway: Gateway, tmp_path: Path) -> None:
    c = client(gateway.base_url)
    slow = submit(c, [line(f"c-{i}", f"SLOW {i}") for i in range(200)], metadata={"k": "v"})
    listed = orbyt(tmp_path, "batch", "list", "--limit", "5", gw=gateway)
    assert listed.returncode == 0, listed.stderr
    page = json.loads(listed.stdout)
    assert page["data"][0]["id"] == slow.id
    assert page["data"][0]["request_counts"]["total"] == 200

    shown = orbyt(tmp_path, "batch", "show", slow.id, gw=gateway)
    assert shown.returncode == 0, shown.stderr
    body = json.loads(shown.stdout)
    assert (body["id"], body["metadata"]) == (slow.id, {"k": "v"})

    cancelled = orbyt(tmp_path, "batch", "cancel", slow.id, gw=gateway)
    assert cancelled.returncode == 0, cancelled.stderr
    assert json.loads(cancelled.stdout)["status"] in ("cancelling", "cancelled")
    assert wait(c, slow.id).status == "cancelled"

    gone = one_line_error(orbyt(tmp_path, "batch", "show", "batch_nope", gw=gateway), 1)
    assert gone.startswith("orbyt: the gateway answered 404")


def test_gateway_down_is_one_line(tmp_path: Path) -> None:
    write_input(tmp_path / "in.jsonl", [line("a", "x")])
    url = f"http://127.0.0.1:{free_port()}/v1"
    env = {"ORBYT_BASE_URL": url, "OPENAI_API_KEY": GATEWAY_KEY}
    for args in (["run", "in.jsonl", "-o", "out.jsonl"], ["show", "batch_abc"]):
        msg = one_line_error(orbyt(tmp_path, "batch", *args, **env), 1)
        assert msg.startswith(f"orbyt: cannot reach the gateway at {url}")
        assert GATEWAY_KEY not in msg


def test_bad_inputs_and_arguments_are_one_line(gateway: Gateway, tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl").write_text('{"custom_id": "a", "url": "/v1/chat/completions"}\nnope\n')
    msg = one_line_error(
        orbyt(tmp_path, "batch", "run", "bad.jsonl", "-o", "o.jsonl", gw=gateway), 1
    )
    assert msg == "orbyt: bad.jsonl line 2: not valid JSON"
    (tmp_path / "empty.jsonl").write_text("\n")
    msg = one_line_error(orbyt(tmp_path, "batch", "run", "empty.jsonl", "-o", "o", gw=gateway), 1)
    assert "no request lines" in msg
    # the gateway's own validation: a model it does not know -> the batch fails
    write_input(tmp_path / "unknown.jsonl", [line("a", "x", model="openai/no-such-model")])
    proc = orbyt(tmp_path, "batch", "run", "unknown.jsonl", "-o", "o.jsonl", "-q", gw=gateway)
    msg = one_line_error(proc, 1)
    assert msg.startswith("orbyt: batch batch_") and "failed: line 1" in msg

    usage = [
        ["run", "missing.jsonl", "-o", "o.jsonl"],
        ["run", "bad.jsonl"],
        ["run", "bad.jsonl", "-o", "bad.jsonl"],
        ["run", "bad.jsonl", "-o", "o", "--metadata", "novalue"],
        ["show", "not-a-batch"],
        ["list", "--limit", "0"],
    ]
    for args in usage:
        one_line_error(orbyt(tmp_path, "batch", *args, gw=gateway), 2)
    assert "no API key" in one_line_error(
        orbyt(tmp_path, "batch", "list", ORBYT_BASE_URL=gateway.base_url), 1
    )
    wrong = orbyt(tmp_path, "batch", "list", gw=gateway, OPENAI_API_KEY="sk-or-v1-" + "0" * 64)
    assert "refused the API key (401)" in one_line_error(wrong, 1)


@pytest.mark.parametrize("command", [[], ["run"], ["list"], ["show"], ["cancel"]])
def test_help(command: list[str], tmp_path: Path) -> None:
    proc = orbyt(tmp_path, "batch", *command, "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Usage: orbyt batch")
