"""What `orbyt batch` does over HTTP with the official `openai` SDK: `run` (check the input,
upload it, create the batch, follow it with a progress bar, download the results, resume an
interrupted run), and the one place SDK errors become one-line `CliError`s.

Resuming: `run` keeps a small state file next to the output (`<output>.batch.json`: the
input's path and SHA-256, the uploaded file id, the batch id — never a key), written as soon
as each id is known and deleted once the results are downloaded. Running the same command
again re-attaches to that batch (or creates it from the already uploaded file) instead of
uploading again; a changed input is refused unless `--restart`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import openai
import orjson
from openai.types import Batch
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from orbyt.cli.errors import CliError

TERMINAL = ("completed", "failed", "expired", "cancelled")
POLL_RETRY_FOR = 30.0  # seconds a run keeps polling through a gateway restart


class Interrupted(CliError):
    exit_code = 130


@dataclass(frozen=True, slots=True)
class RunOptions:
    input: Path
    output: Path
    errors: Path
    endpoint: str | None
    window: str
    metadata: dict[str, str] | None
    poll_interval: float
    restart: bool
    progress: bool  # the bar and the lines on stderr (not with --quiet)


def client_for(base_url: str, api_key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=2, timeout=60)


def _reason(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    return f"HTTP {exc.status_code}"


@contextlib.contextmanager
def api_errors(base_url: str, batch_id: str | None = None) -> Iterator[None]:
    """SDK errors as one line each; with `batch_id`, how to resume."""
    resume = f"; run the same command again to resume batch {batch_id}" if batch_id else ""
    try:
        yield
    except openai.APIConnectionError as exc:
        cause = exc.__cause__ or exc
        reason = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
        raise CliError(
            f"cannot reach the gateway at {base_url} ({reason}); start `orbyt dev` here, or "
            f"pass --base-url / set ORBYT_BASE_URL{resume}"
        ) from None
    except openai.AuthenticationError:
        raise CliError(
            f"the gateway at {base_url} refused the API key (401); pass --api-key or set "
            "OPENAI_API_KEY to a gateway key"
        ) from None
    except openai.APIStatusError as exc:
        raise CliError(f"the gateway answered {exc.status_code}: {_reason(exc)}") from None


def check_input(path: Path) -> tuple[str, str]:
    """(SHA-256, endpoint of its lines) of a JSONL batch input; `CliError` naming the first
    line that is not a JSON object with `custom_id` and `url` (the gateway checks the rest)."""
    digest = hashlib.sha256()
    urls: set[str] = set()
    with path.open("rb") as f:
        for number, raw in enumerate(f, 1):
            digest.update(raw)
            if not raw.strip():
                continue
            try:
                line = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise CliError(f"{path} line {number}: not valid JSON") from None
            if not isinstance(line, dict) or "custom_id" not in line or "url" not in line:
                raise CliError(f"{path} line {number}: not a batch request (custom_id, url, body)")
            urls.add(str(line["url"]))
    if not urls:
        raise CliError(f"{path} has no request lines")
    if len(urls) > 1:
        raise CliError(f"{path} mixes endpoints ({', '.join(sorted(urls))}); one per batch")
    return digest.hexdigest(), urls.pop()


def state_path(output: Path) -> Path:
    return output.with_name(output.name + ".batch.json")


def _load_state(path: Path) -> dict[str, Any]:
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise CliError(
            f"unreadable state file {path} ({exc}); remove it or pass --restart"
        ) from None
    return state if isinstance(state, dict) else {}


def _save_state(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.replace(path)


def run(client: openai.OpenAI, base_url: str, opts: RunOptions) -> int:
    digest, endpoint = check_input(opts.input)
    spath = state_path(opts.output)
    state = {} if opts.restart else _load_state(spath)
    if state and state.get("sha256") != digest:
        raise CliError(
            f"{spath} belongs to a run of another input (batch {state.get('batch_id')}); "
            "pass --restart to start a new batch"
        )
    state = state or {"input": str(opts.input.resolve()), "sha256": digest}
    with api_errors(base_url, state.get("batch_id")):
        batch = _attach_or_create(client, opts, opts.endpoint or endpoint, state, spath)
    try:
        with api_errors(base_url, batch.id):
            batch = _follow(client, batch, opts)
            return _finish(client, batch, opts, spath)
    except KeyboardInterrupt:
        raise Interrupted(
            f"interrupted; batch {batch.id} keeps running: run the same command again to "
            f"resume, or `orbyt batch cancel {batch.id}`"
        ) from None


def _attach_or_create(
    client: openai.OpenAI, opts: RunOptions, endpoint: str, state: dict[str, Any], spath: Path
) -> Batch:
    if state.get("batch_id"):
        try:
            batch = client.batches.retrieve(state["batch_id"])
        except openai.NotFoundError:
            raise CliError(
                f"batch {state['batch_id']} (named by {spath}) is not on this gateway for this "
                "key; pass --restart to start a new batch"
            ) from None
        _say(opts, f"resuming batch {batch.id} ({batch.status})")
        return batch
    if not state.get("file_id"):
        with opts.input.open("rb") as f:
            state["file_id"] = client.files.create(file=(opts.input.name, f), purpose="batch").id
        _save_state(spath, state)
    batch = client.batches.create(
        input_file_id=state["file_id"],
        endpoint=endpoint,  # type: ignore[arg-type]  # the gateway validates it
        completion_window=opts.window,  # type: ignore[arg-type]
        metadata=opts.metadata,
    )
    state["batch_id"] = batch.id
    _save_state(spath, state)
    _say(opts, f"created batch {batch.id} from {state['file_id']}")
    return batch


def _say(opts: RunOptions, message: str) -> None:
    if opts.progress:
        click.echo(message, err=True)


class RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.1f} lines/s" if speed else "- lines/s", style="progress.data.speed")


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("{task.description} [bold]{task.fields[status]}[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("[red]{task.fields[failed]} failed[/]"),
        RateColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not enabled,
    )


def _counts(batch: Batch) -> tuple[int | None, int, int]:
    c = batch.request_counts
    if c is None:
        return None, 0, 0
    return (c.total or None), c.completed + c.failed, c.failed


def _poll(client: openai.OpenAI, batch_id: str) -> Batch:
    end = time.monotonic() + POLL_RETRY_FOR
    while True:
        try:
            return client.batches.retrieve(batch_id)
        except openai.APIConnectionError:
            if time.monotonic() > end:
                raise
            time.sleep(1.0)


def _follow(client: openai.OpenAI, batch: Batch, opts: RunOptions) -> Batch:
    total, done, failed = _counts(batch)
    with _progress(opts.progress) as progress:
        task = progress.add_task(
            batch.id, total=total, completed=done, failed=failed, status=batch.status
        )
        while batch.status not in TERMINAL:
            time.sleep(opts.poll_interval)
            batch = _poll(client, batch.id)
            total, done, failed = _counts(batch)
            progress.update(task, total=total, completed=done, failed=failed, status=batch.status)
    return batch


def _download(client: openai.OpenAI, file_id: str, path: Path) -> None:
    tmp = path.with_name(path.name + ".part")
    with client.files.with_streaming_response.content(file_id) as resp, tmp.open("wb") as f:
        for chunk in resp.iter_bytes():
            f.write(chunk)
    tmp.replace(path)


def _finish(client: openai.OpenAI, batch: Batch, opts: RunOptions, spath: Path) -> int:
    wrote = []
    if batch.output_file_id:
        _download(client, batch.output_file_id, opts.output)
        wrote.append(f"output {opts.output}")
    if batch.error_file_id:
        _download(client, batch.error_file_id, opts.errors)
        wrote.append(f"errors {opts.errors}")
    spath.unlink(missing_ok=True)
    _, done, failed = _counts(batch)
    took = (batch.completed_at or batch.failed_at or int(time.time())) - batch.created_at
    files = "; ".join(wrote) or "no result files"
    summary = f"{done - failed} done, {failed} failed in {took} s; {files}"
    if batch.status == "completed":
        click.echo(f"batch {batch.id} completed: {summary}")
        return 0
    if batch.status == "failed":
        errors = batch.errors.data if batch.errors and batch.errors.data else []
        first = errors[0] if errors else None
        where = f"line {first.line}: " if first and first.line else ""
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        detail = f": {where}{first.message}{more}" if first else ""
        raise CliError(f"batch {batch.id} failed{detail}")
    raise CliError(f"batch {batch.id} {batch.status}: {summary}")
