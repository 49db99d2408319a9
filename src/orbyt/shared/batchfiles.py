"""File records (OpenAI `file` objects) in the state Redis, their bytes in the file store.

Used by the API (uploads, listing, content, delete) and by the worker (a batch's output and
error files). A file belongs to the gateway key that created it; `get` with another owner
is the same as a missing file.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from redis.asyncio import Redis

from orbyt.shared.batchkeys import file_key, file_object, files_index
from orbyt.shared.filestore import FileStore


def new_file_id() -> str:
    return "file-" + secrets.token_hex(12)


def render(record: dict[str, str]) -> dict[str, Any]:
    """The OpenAI `file` object of a record."""
    return {
        "id": record["id"],
        "object": "file",
        "bytes": int(record["bytes"]),
        "created_at": int(record["created_at"]),
        "filename": record["filename"],
        "purpose": record["purpose"],
        "status": record.get("status") or "processed",
        "expires_at": None,
        "status_details": None,
    }


async def create(
    redis: Redis,
    store: FileStore,
    owner: str,
    filename: str,
    purpose: str,
    data: bytes,
    file_id: str | None = None,
) -> dict[str, str]:
    """Store the bytes, then the record (a record never points at missing bytes)."""
    file_id = file_id or new_file_id()
    now = time.time()
    await store.put(file_object(file_id), data)
    record = {
        "id": file_id,
        "owner": owner,
        "bytes": str(len(data)),
        "created_at": str(int(now)),
        "filename": filename,
        "purpose": purpose,
        "status": "processed",
    }
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(file_key(file_id), mapping=record)
        pipe.zadd(files_index(owner), {file_id: int(now * 1000)})
        await pipe.execute()
    return record


async def get(redis: Redis, file_id: str, owner: str) -> dict[str, str] | None:
    raw = await redis.hgetall(file_key(file_id))  # type: ignore[misc]
    record = {k.decode(): v.decode() for k, v in raw.items()}
    if not record or record.get("owner") != owner:
        return None
    return record


async def list_records(redis: Redis, owner: str, newest_first: bool = True) -> list[dict[str, str]]:
    """The owner's file records, in creation order (one round trip for the records)."""
    ids = await redis.zrange(files_index(owner), 0, -1, desc=newest_first)
    async with redis.pipeline(transaction=False) as pipe:
        for file_id in ids:
            pipe.hgetall(file_key(file_id.decode()))
        raws = await pipe.execute()
    records = [{k.decode(): v.decode() for k, v in raw.items()} for raw in raws]
    return [r for r in records if r.get("owner") == owner]


async def delete(redis: Redis, store: FileStore, file_id: str, owner: str) -> bool:
    """Remove the record, then the bytes. A batch already running on this file keeps its
    own copy of the input and is not affected."""
    if await get(redis, file_id, owner) is None:
        return False
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(file_key(file_id))
        pipe.zrem(files_index(owner), file_id)
        await pipe.execute()
    await store.delete(file_object(file_id))
    return True
