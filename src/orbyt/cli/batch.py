"""`orbyt batch run|list|show|cancel`: batches on a running gateway, over HTTP with the
official `openai` SDK (so any OpenAI-compatible Batch API works too).

Which gateway: `--base-url` / `ORBYT_BASE_URL`, else the running `orbyt dev` started in
this directory (`.orbyt/dev.json`), else http://127.0.0.1:8080/v1. Which key: `--api-key` /
`OPENAI_API_KEY` (a gateway key). `run` is in `cli/batchrun.py`; the others print JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from orbyt.cli import devstate
from orbyt.cli.errors import CliError

DEFAULT_BASE_URL = "http://127.0.0.1:8080/v1"
BATCH_ID = re.compile(r"^batch_[A-Za-z0-9_-]{1,64}$")
METADATA_KEY = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")

F = TypeVar("F", bound=Callable[..., Any])


def _base_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str:
    url = value or devstate.running_base_url() or DEFAULT_BASE_URL
    if not re.match(r"^https?://[^/\s]+", url):
        raise click.BadParameter(f"{url!r} is not an http(s) URL")
    return url.rstrip("/")


def _batch_id(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not BATCH_ID.match(value):
        raise click.BadParameter(f"{value!r} is not a batch id (batch_…)")
    return value


def _metadata(
    ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
) -> dict[str, str] | None:
    out = {}
    for item in value:
        key, sep, val = item.partition("=")
        if not sep or not METADATA_KEY.match(key) or len(val) > 512:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE (key ≤ 64, value ≤ 512 chars)")
        out[key] = val
    if len(out) > 16:
        raise click.BadParameter("at most 16 metadata pairs")
    return out or None


def connection(command: F) -> F:
    """The `--base-url` and `--api-key` options every batch command takes."""
    command = click.option(
        "--api-key",
        envvar="OPENAI_API_KEY",
        metavar="KEY",
        help="Gateway key (env: OPENAI_API_KEY).",
    )(command)
    return click.option(
        "--base-url",
        envvar="ORBYT_BASE_URL",
        callback=_base_url,
        metavar="URL",
        help="Gateway URL ending in /v1 (env: ORBYT_BASE_URL; default: the `orbyt dev` "
        f"running here, else {DEFAULT_BASE_URL}).",
    )(command)


def _client(base_url: str, api_key: str | None) -> Any:
    if not api_key:
        raise CliError("no API key: pass --api-key or set OPENAI_API_KEY to a gateway key")
    from orbyt.cli.batchrun import client_for

    return client_for(base_url, api_key)


def _print(out: Any) -> None:
    click.echo(json.dumps(out, indent=2))


@click.group()
def batch() -> None:
    """Run JSONL batches on a gateway and manage them.

    `orbyt batch run input.jsonl -o output.jsonl` uploads, creates, follows and downloads;
    the other commands print the batches as JSON.
    """


@batch.command()
@click.argument(
    "input_path",
    metavar="INPUT",
    type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path),
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Where the output lines go (the batch's output file).",
)
@click.option(
    "-e",
    "--errors",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Where the error lines go [default: OUTPUT's name with .errors.jsonl].",
)
@click.option(
    "--endpoint",
    default=None,
    help="Batch endpoint [default: the `url` of the input's lines].",
)
@click.option("--window", default="24h", show_default=True, help="Completion window of the batch.")
@click.option(
    "--metadata",
    multiple=True,
    callback=_metadata,
    metavar="KEY=VALUE",
    help="Batch metadata; repeat for more pairs (at most 16).",
)
@click.option(
    "--poll-interval",
    type=click.FloatRange(0.1, 60),
    default=1.0,
    show_default=True,
    help="Seconds between progress checks.",
)
@click.option("--restart", is_flag=True, help="Ignore an interrupted run's state: a new batch.")
@click.option(
    "-q", "--quiet", is_flag=True, help="No progress bar, no messages but the result and errors."
)
@connection
def run(
    input_path: Path,
    output: Path,
    errors: Path | None,
    endpoint: str | None,
    window: str,
    metadata: dict[str, str] | None,
    poll_interval: float,
    restart: bool,
    quiet: bool,
    base_url: str,
    api_key: str | None,
) -> int:
    """Run INPUT (JSONL requests) as a batch and download its results.

    Shows done / failed / lines per second / ETA while it runs. Interrupted (Ctrl-C, a
    closed terminal, the gateway away), the batch keeps running on the gateway: run the
    same command again to re-attach to it (state: OUTPUT.batch.json, deleted at the end).
    """
    from orbyt.cli.batchrun import RunOptions
    from orbyt.cli.batchrun import run as run_batch

    if output.resolve() == input_path.resolve():
        raise click.BadParameter("must differ from INPUT", param_hint="'-o' / '--output'")
    if errors is None:
        errors = output.with_name(output.stem + ".errors.jsonl")
    opts = RunOptions(
        input_path, output, errors, endpoint, window, metadata, poll_interval, restart, not quiet
    )
    return run_batch(_client(base_url, api_key), base_url, opts)


def _summary(b: Any) -> dict[str, Any]:
    keys = ("id", "status", "endpoint", "created_at", "request_counts", "output_file_id")
    out = b.model_dump(mode="json")
    return {k: out.get(k) for k in (*keys, "error_file_id")}


@batch.command("list")
@click.option(
    "--limit",
    type=click.IntRange(1, 100),
    default=20,
    show_default=True,
    help="Batches to show (newest first).",
)
@click.option(
    "--after", callback=lambda c, p, v: v and _batch_id(c, p, v), help="Start after this batch id."
)
@connection
def list_batches(limit: int, after: str | None, base_url: str, api_key: str | None) -> int:
    """List this key's batches, newest first: id, status, counts, result files."""
    from orbyt.cli.batchrun import api_errors

    client = _client(base_url, api_key)
    with api_errors(base_url):
        page = client.batches.list(limit=limit, **({"after": after} if after else {}))
    _print({"data": [_summary(b) for b in page.data], "has_more": bool(page.has_more)})
    return 0


@batch.command()
@click.argument("batch_id", callback=_batch_id)
@connection
def show(batch_id: str, base_url: str, api_key: str | None) -> int:
    """Show the batch BATCH_ID (the OpenAI batch object)."""
    from orbyt.cli.batchrun import api_errors

    client = _client(base_url, api_key)
    with api_errors(base_url):
        _print(client.batches.retrieve(batch_id).model_dump(mode="json"))
    return 0


@batch.command()
@click.argument("batch_id", callback=_batch_id)
@connection
def cancel(batch_id: str, base_url: str, api_key: str | None) -> int:
    """Cancel the batch BATCH_ID: lines not yet run are answered batch_cancelled."""
    from orbyt.cli.batchrun import api_errors

    client = _client(base_url, api_key)
    with api_errors(base_url):
        _print(client.batches.cancel(batch_id).model_dump(mode="json"))
    return 0


def register(group: click.Group) -> None:
    group.add_command(batch)
