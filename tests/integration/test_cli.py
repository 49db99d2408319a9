"""The `orbyt` console script as a user runs it: help, --version, one-line errors with an
exit code (1 at run time, 2 for a usage error), validated arguments, and how the admin
commands find their Redis (setting, else a running `orbyt dev` here, else the default)."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.gateway import RedisServer, free_port

pytestmark = pytest.mark.integration

ORBYT = str(Path(sys.executable).parent / "orbyt")
KEY = "sk-or-v1-" + "c" * 64


def run(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("ORBYT_") and k != "REDIS_URL"}
    return subprocess.run(
        [ORBYT, *args],
        env={**base, "ORBYT_WORKER_METRICS_PORT": "0", **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def one_line_error(proc: subprocess.CompletedProcess[str], code: int) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["dev"],
        ["api"],
        ["worker"],
        ["keys"],
        ["keys", "create"],
        ["keys", "list"],
        ["keys", "revoke"],
        ["usage"],
    ],
)
def test_help_on_every_command(command: list[str]) -> None:
    proc = run(*command, "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Usage: orbyt")


def test_version() -> None:
    proc = run("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"orbyt {importlib.metadata.version('orbyt')}"


def test_nothing_listening_is_one_line_naming_the_redis_without_its_password() -> None:
    port = free_port()
    url = f"redis://admin:hunter2-secret@127.0.0.1:{port}/0"
    for args in (["keys", "list"], ["usage", "key_0123abcd"], ["keys", "create", "--name", "x"]):
        line = one_line_error(run(*args, ORBYT_REDIS_URL=url), 1)
        assert line.startswith(f"orbyt: cannot use Redis at redis://admin:***@127.0.0.1:{port}/0")
        assert "hunter2" not in line and "ORBYT_REDIS_URL" in line


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["usage", "key_0123abcd", "--day", "2026-02-30"], "is not a date as YYYY-MM-DD"),
        (["usage", "key_0123abcd", "--day", "yesterday"], "is not a date as YYYY-MM-DD"),
        (["usage", "key_0123abcd", "--day", "20260102"], "is not a date as YYYY-MM-DD"),
        (["usage", "my-key"], "not a key id"),
        (["usage", KEY], "not a key id"),
        (["keys", "revoke", KEY], "not a key id"),
        (["usage"], "Missing argument 'KEY_ID'"),
        (["keys", "create"], "Missing option '--name'"),
        (["keys", "create", "--name", "x", "--rpm", "-1"], "--rpm"),
        (["keys", "create", "--name", "a\nb"], "control or format characters"),
        (["dev", "--port", "70000"], "--port"),
        (["api", "--log-level", "loud"], "--log-level"),
        (["nope"], "No such command 'nope'"),
    ],
)
def test_bad_arguments_are_one_line_usage_errors(args: list[str], expected: str) -> None:
    line = one_line_error(run(*args, ORBYT_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"), 2)
    assert line.startswith("orbyt") and expected in line and "--help" in line
    assert KEY not in line  # a pasted key is never echoed


@pytest.mark.parametrize("command", [["api", "--port", "0"], ["worker"], ["dev"]])
@pytest.mark.parametrize(
    ("name", "text", "reason"),
    [
        ("missing.yaml", None, "no such file"),
        ("bad.yaml", "providers: {openai: [\n", "invalid YAML"),
        ("bad.toml", "redis_url = [\n", "invalid TOML"),
        ("bad.json", "{", "invalid JSON"),
        ("values.yaml", "pickup_timeout: soon\n", "invalid settings: pickup_timeout"),
    ],
)
def test_a_bad_config_file_stops_startup_with_one_line(
    tmp_path: Path, command: list[str], name: str, text: str | None, reason: str
) -> None:
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    line = one_line_error(run(*command, cwd=tmp_path, ORBYT_CONFIG=str(path)), 1)
    assert line.startswith("orbyt: ") and reason in line
    if reason != "invalid settings: pickup_timeout":
        assert str(path) in line


def test_an_unknown_orbyt_variable_is_a_warning(redis_server: RedisServer) -> None:
    proc = run(
        "worker",
        "--burst",
        ORBYT_ENV="test",
        ORBYT_REDIS_URL=redis_server.new_db_url(),
        ORBYT_WORKR_MAX_JOBS="5",
        ORBYT_CONFIG="",
    )
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "ORBYT_WORKR_MAX_JOBS" in line]
    assert len(warnings) == 1
    assert '"level":"warning"' in warnings[0]
    assert "did you mean ORBYT_WORKER_MAX_JOBS?" in warnings[0]


def test_admin_commands_find_the_running_dev_redis(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    url = redis_server.new_db_url()
    state = tmp_path / ".orbyt" / "dev.json"
    state.parent.mkdir()
    # this test process stands in for the live `orbyt dev` that wrote the file
    state.write_text(json.dumps({"redis_url": url, "base_url": "x", "pid": os.getpid()}))
    created = run("keys", "create", "--name", "found-it", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    listed = json.loads(run("keys", "list", cwd=tmp_path).stdout)
    assert [k["name"] for k in listed] == ["found-it"]
    # a configured URL (environment or config file) wins over the state file
    dead = f"redis://127.0.0.1:{free_port()}/0"
    line = one_line_error(run("keys", "list", cwd=tmp_path, ORBYT_REDIS_URL=dead), 1)
    assert dead in line
    config = tmp_path / "orbyt.yaml"
    config.write_text(f"redis_url: {dead}\n")
    line = one_line_error(run("keys", "list", cwd=tmp_path, ORBYT_CONFIG=str(config)), 1)
    assert dead in line
