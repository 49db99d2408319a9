"""The `orbyt` command line (click): `dev` (everything, offline, one command), `api`,
`worker`, the admin commands `keys` and `usage` (in `cli/admin.py`), and `batch` (a
running gateway's Batch API over HTTP, in `cli/batch.py`).

`main(argv) -> exit code` is the one entry point (console script, `python -m orbyt`,
bench/ablate.py). Every expected failure is one line on stderr: a usage error exits 2, a
runtime error (`CliError`: Redis unreachable, bad config file, port taken) exits 1.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.metadata
import os
import sys

import click

from orbyt.cli import admin as admin_cli
from orbyt.cli import batch as batch_cli
from orbyt.cli.errors import CliError
from orbyt.cli.startup import check_server_settings, load_settings
from orbyt.shared.logs import configure

LOG_LEVELS = click.Choice(["debug", "info", "warning", "error", "critical"], case_sensitive=False)


def _version() -> str:
    try:
        return importlib.metadata.version("orbyt")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree (PYTHONPATH)
        return "unknown (not installed)"


def _tune_gc() -> None:
    """Long-lived servers: freeze what startup allocated and collect young objects less
    often, so full collections (which pause the event loop) are rarer."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 50)


def _configure_logging(level: str) -> None:
    configure(level, json=os.environ.get("ORBYT_LOG_FORMAT", "json") == "json")


def run_api(host: str, port: int, log_level: str, env_check: bool = True) -> None:
    import uvicorn

    _configure_logging(log_level)
    check_server_settings(warn=env_check)
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


def run_worker(log_level: str, burst: bool = False, env_check: bool = True) -> None:
    import uvloop

    from orbyt.worker.app import build_worker

    _configure_logging(log_level)
    check_server_settings(warn=env_check)
    uvloop.install()
    asyncio.set_event_loop(asyncio.new_event_loop())
    worker = build_worker(burst=burst)
    _tune_gc()
    worker.run()


_LOG_LEVEL_HELP = "Log level of the process."
_ENV_CHECK_HELP = "Skip the unknown ORBYT_* variable warnings (orbyt dev warns once)."


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    no_args_is_help=True,
)
@click.version_option(
    _version(), "-V", "--version", prog_name="orbyt", message="%(prog)s %(version)s"
)
def cli() -> None:
    """Orbyt: a queue-backed, OpenAI-compatible LLM gateway.

    Settings come from ORBYT_* environment variables and an optional config file named by
    ORBYT_CONFIG (YAML, TOML or JSON; see orbyt.example.yaml).
    """


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface the API binds.")
@click.option(
    "--port", type=click.IntRange(1, 65535), default=8080, show_default=True, help="API port."
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Worker processes to start.",
)
@click.option(
    "--log-level",
    type=LOG_LEVELS,
    default="warning",
    show_default=True,
    help="Log level of the API and workers.",
)
def dev(host: str, port: int, workers: int, log_level: str) -> int:
    """Run API + workers + an embedded Redis, offline (mock provider).

    Prints a gateway key, the ORBYT_REDIS_URL to export for `orbyt keys` / `orbyt usage`,
    and a first request. Ctrl-C or SIGTERM drains open streams and stops everything; a
    second signal stops at once.
    """
    from orbyt.cli.dev import run_dev

    configure(log_level, json=os.environ.get("ORBYT_LOG_FORMAT", "text") == "json")
    load_settings(warn=True)  # children get ORBYT_ENV=dev: no secret to check here
    return run_dev(host, port, workers, log_level.lower())


@cli.command()
@click.option(
    "--host",
    envvar="ORBYT_HOST",
    default="0.0.0.0",
    show_default=True,
    help="Interface to bind (env: ORBYT_HOST).",
)
@click.option(
    "--port",
    envvar="ORBYT_PORT",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="Port to bind, 0 for any free one (env: ORBYT_PORT).",
)
@click.option(
    "--log-level", type=LOG_LEVELS, default="warning", show_default=True, help=_LOG_LEVEL_HELP
)
@click.option("--no-env-check", is_flag=True, hidden=True, help=_ENV_CHECK_HELP)
def api(host: str, port: int, log_level: str, no_env_check: bool) -> int:
    """Run the HTTP API.

    Configured by ORBYT_* variables and the ORBYT_CONFIG file, like every API and worker.
    """
    run_api(host, port, log_level.lower(), env_check=not no_env_check)
    return 0


@cli.command()
@click.option(
    "--log-level", type=LOG_LEVELS, default="warning", show_default=True, help=_LOG_LEVEL_HELP
)
@click.option("--burst", is_flag=True, help="Exit when the queue is empty.")
@click.option("--no-env-check", is_flag=True, hidden=True, help=_ENV_CHECK_HELP)
@click.option(
    "--check", is_flag=True, help="Exit 0 if a worker on this host is alive, else 1 (health check)."
)
def worker(log_level: str, burst: bool, no_env_check: bool, check: bool) -> int:
    """Run a queue worker.

    Configured by ORBYT_* variables and the ORBYT_CONFIG file, like every API and worker.
    """
    if check:
        from orbyt.worker.app import check as alive

        try:
            ok = asyncio.run(alive())
        except Exception as exc:  # Redis unreachable: unhealthy, one line
            click.echo(f"worker check failed: {type(exc).__name__}", err=True)
            ok = False
        sys.exit(0 if ok else 1)
    run_worker(log_level.lower(), burst, env_check=not no_env_check)
    return 0


admin_cli.register(cli)
batch_cli.register(cli)


def _usage_error(exc: click.UsageError) -> int:
    if isinstance(exc, click.exceptions.NoArgsIsHelpError) and exc.ctx is not None:
        click.echo(exc.ctx.get_help(), err=True)
        return exc.exit_code
    path = exc.ctx.command_path if exc.ctx is not None else "orbyt"
    print(f"{path}: {exc.format_message()} (see `{path} --help`)", file=sys.stderr)
    return exc.exit_code


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (never raises for expected failures)."""
    try:
        result = cli.main(args=argv, prog_name="orbyt", standalone_mode=False)
    except click.UsageError as exc:
        return _usage_error(exc)
    except click.ClickException as exc:
        print(f"orbyt: {exc.format_message()}", file=sys.stderr)
        return exc.exit_code
    except click.exceptions.Abort:
        print("orbyt: aborted", file=sys.stderr)
        return 1
    except CliError as exc:
        print(f"orbyt: {exc}", file=sys.stderr)
        return exc.exit_code
    return result if isinstance(result, int) else 0
