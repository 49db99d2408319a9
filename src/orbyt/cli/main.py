"""Command line: `orbyt dev` (everything, offline, one command), `orbyt api`, `orbyt worker`."""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request

from orbyt.cli import admin as admin_cli
from orbyt.shared.logs import configure
from orbyt.shared.sealing import weak_secret_reason
from orbyt.shared.settings import get_settings

SNIPPET = """\
from openai import OpenAI

client = OpenAI(base_url="{base_url}", api_key="{key}")
response = client.chat.completions.create(
    model="mock/echo",
    messages=[{{"role": "user", "content": "Hello from Orbyt"}}],
    extra_body={{"extra": {{"fallback_models": ["mock/echo-backup"], "provider": "cheap",
                           "retry": 3}}}},
)
print(response.choices[0].message.content)
"""


def _check_production() -> None:
    settings = get_settings()
    if settings.env != "production":
        return
    problem = weak_secret_reason(
        settings.secret_key.get_secret_value() if settings.secret_key else None
    )
    if problem:
        raise SystemExit(
            f"orbyt: {problem}. Set ORBYT_SECRET_KEY to a long random value "
            "(the same on every API and worker), or run `orbyt dev`."
        )


def _tune_gc() -> None:
    """Long-lived servers: freeze what startup allocated and collect young objects less
    often, so full collections (which pause the event loop) are rarer."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 50)


def _configure_logging(level: str) -> None:
    configure(level, json=os.environ.get("ORBYT_LOG_FORMAT", "json") == "json")


def run_api(host: str, port: int, log_level: str) -> None:
    import uvicorn

    _check_production()
    _configure_logging(log_level)
    _tune_gc()
    uvicorn.run(
        "orbyt.api.main:create_asgi",
        factory=True,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        log_level=log_level,
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=30,
    )


def run_worker(log_level: str, burst: bool = False) -> None:
    import uvloop

    from orbyt.worker.app import build_worker

    _check_production()
    _configure_logging(log_level)
    uvloop.install()
    asyncio.set_event_loop(asyncio.new_event_loop())
    worker = build_worker(burst=burst)
    _tune_gc()
    worker.run()


def _wait_ready(url: str, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit("orbyt dev: the gateway did not become ready")


def run_dev(host: str, port: int, workers: int) -> int:
    from orbyt.cli.embedded_redis import EmbeddedRedis

    redis = EmbeddedRedis().start()
    key = os.environ.get("ORBYT_DEV_KEY") or "sk-or-v1-" + secrets.token_hex(32)
    env = dict(os.environ)
    env.update(
        {
            "ORBYT_ENV": "dev",
            "ORBYT_REDIS_URL": redis.url,
            "ORBYT_GATEWAY_KEYS": key,
            "ORBYT_SECRET_KEY": env.get("ORBYT_SECRET_KEY") or secrets.token_urlsafe(48),
        }
    )
    cmd = [sys.executable, "-m", "orbyt"]
    procs = [subprocess.Popen([*cmd, "worker"], env=env) for _ in range(workers)]
    procs.append(subprocess.Popen([*cmd, "api", "--host", host, "--port", str(port)], env=env))
    base = f"http://{host}:{port}"
    try:
        _wait_ready(base)
        print(
            f"\nOrbyt is running (Redis: {redis.kind} on {redis.url}).\n"
            f"  base URL:    {base}/v1\n  gateway key: {key}\n\nTry it:\n\n"
            + SNIPPET.format(base_url=base + "/v1", key=key),
            flush=True,
        )
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        redis.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="orbyt", description="Orbyt LLM gateway")
    sub = parser.add_subparsers(dest="command", required=True)
    dev = sub.add_parser("dev", help="API + worker + embedded Redis, offline mock provider")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=8080)
    dev.add_argument("--workers", type=int, default=1)
    api = sub.add_parser("api", help="run the HTTP API (configured by ORBYT_* env)")
    api.add_argument("--host", default=os.environ.get("ORBYT_HOST", "0.0.0.0"))
    api.add_argument("--port", type=int, default=int(os.environ.get("ORBYT_PORT", "8080")))
    api.add_argument("--log-level", default="warning")
    worker = sub.add_parser("worker", help="run a queue worker (configured by ORBYT_* env)")
    worker.add_argument("--log-level", default="warning")
    worker.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    admin_cli.add_commands(sub)
    args = parser.parse_args(argv)
    if args.command in ("keys", "usage"):
        return admin_cli.run(args)
    if args.command == "dev":
        return run_dev(args.host, args.port, args.workers)
    if args.command == "api":
        run_api(args.host, args.port, args.log_level)
    else:
        run_worker(args.log_level, args.burst)
    return 0
