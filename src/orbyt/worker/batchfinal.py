"""Finishing a batch: its output and error files, then its final status.

Runs when every line has an outcome (`completed`), or when a stopping batch has nothing
left in flight (`cancelled` after a cancel or a revoked key, `expired` after its completion
window). Lines that never ran are answered in the error file with `batch_cancelled` /
`batch_expired`. Idempotent: file ids derive from the batch id, and the final status, the
outcomes' deletion and leaving the finalize set are one transaction, so a worker killed
half-way lets another redo it.
"""

from __future__ import annotations

import time

import orjson
from redis.asyncio import Redis

from orbyt.shared import batchfiles, metrics
from orbyt.shared.batchkeys import batch_input_object
from orbyt.shared.batchstate import BatchState
from orbyt.shared.filestore import FileStore
from orbyt.worker.batchline import unrun_line

TERMINAL = ("completed", "failed", "expired", "cancelled")
_FINAL_STATUS = {"": "completed", "cancel": "cancelled", "expire": "expired"}


async def finalize(
    state: BatchState, redis: Redis, store: FileStore, batch_id: str, inputs: list[bytes] | None
) -> None:
    """Write the files and the final status of `batch_id`. `inputs` (the batch's lines) is
    needed only for a stopping batch, to answer the lines that never ran."""
    record = await state.get(batch_id)
    if record is None or record["status"] in TERMINAL:
        await state.drop_final(batch_id)
        return
    end = record.get("end") or ""
    outcomes = await state.outcomes(batch_id)
    good: list[bytes] = []
    bad: list[bytes] = []
    for index in range(int(record["total"])):
        outcome = outcomes.get(index)
        if outcome is not None:
            (good if outcome[:1] == b"1" else bad).append(outcome[1:])
        elif end and inputs is not None:
            bad.append(unrun_line(orjson.loads(inputs[index])["custom_id"], end))
    owner, suffix = record["owner"], batch_id.removeprefix("batch_")
    now = str(int(time.time()))
    status = _FINAL_STATUS[end]
    fields = {"status": status, f"{status}_at": now}
    if not record.get("finalizing_at"):
        fields["finalizing_at"] = now
    for lines, kind, field in ((good, "output", "output_file_id"), (bad, "error", "error_file_id")):
        if lines:
            data = b"\n".join(lines) + b"\n"
            name = f"{batch_id}_{kind}.jsonl"
            file_id = f"file-{suffix}{kind[0]}"
            await batchfiles.create(redis, store, owner, name, "batch_output", data, file_id)
            fields[field] = file_id
    await state.finish(batch_id, fields)
    metrics.BATCHES_FINISHED.labels(status).inc()
    await store.delete(batch_input_object(batch_id))
