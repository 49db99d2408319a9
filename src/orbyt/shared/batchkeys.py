"""Every Redis key of files and batches, in one place (DESIGN §6, §7). All of them belong
to the durable **state** role (`Settings.redis_url`): a batch and its line outcomes must
survive restarts, so none of these may move to a non-persistent queue Redis.

    orbyt:file:{file_id}            hash   file record (owner, bytes, filename, purpose, ...)
    orbyt:files:{owner}             zset   file ids of one gateway key, by creation (ms)
    orbyt:batch:{batch_id}          hash   batch record, counters and the cursor (`next`)
    orbyt:batch:{batch_id}:out      hash   line index -> recorded outcome (written once)
    orbyt:batch:{batch_id}:retry    zset   line indexes to run again, by ready time (ms)
    orbyt:batches:{owner}           zset   batch ids of one gateway key, by creation (ms)
    {batch_queue}                   zset   batches with lines left to hand out (the queue)
    {batch_queue}:running           zset   "{batch_id}|{line}" by lease expiry (ms)
    {batch_queue}:finalize          zset   batch ids whose output files are due, by ready time

Object names in the file store: `files/{file_id}` (uploaded and generated files) and
`batches/{batch_id}/input.jsonl` (the batch's own copy of its validated input).
"""

from __future__ import annotations

BATCH_PREFIX = "orbyt:batch:"


def file_key(file_id: str) -> str:
    return f"orbyt:file:{file_id}"


def files_index(owner: str) -> str:
    return f"orbyt:files:{owner}"


def batch_key(batch_id: str) -> str:
    return BATCH_PREFIX + batch_id


def outcomes_key(batch_id: str) -> str:
    return f"{BATCH_PREFIX}{batch_id}:out"


def retry_key(batch_id: str) -> str:
    return f"{BATCH_PREFIX}{batch_id}:retry"


def batches_index(owner: str) -> str:
    return f"orbyt:batches:{owner}"


def running_key(queue: str) -> str:
    return f"{queue}:running"


def finalize_key(queue: str) -> str:
    return f"{queue}:finalize"


def line_member(batch_id: str, line: int) -> str:
    return f"{batch_id}|{line}"


def file_object(file_id: str) -> str:
    return f"files/{file_id}"


def batch_input_object(batch_id: str) -> str:
    return f"batches/{batch_id}/input.jsonl"
