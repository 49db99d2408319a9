"""/v1/files: batch input files in, batch output and error files out (OpenAI's Files API).

A file belongs to the gateway key that uploaded it (or, for output and error files, to the
key that created the batch); any other key gets 404. Only `purpose=batch` is accepted.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from orbyt.api.state import AppState
from orbyt.shared import batchfiles
from orbyt.shared.batchkeys import file_object
from orbyt.shared.errors import InvalidRequest, NotFound, RequestTooLarge, shown_id
from orbyt.shared.filestore import FileMissing, FileStore, store_for

router = APIRouter()


async def owner_of(request: Request) -> tuple[AppState, str]:
    """The app state and the calling gateway key's id (401 for a bad or revoked key)."""
    st: AppState = request.app.state.orbyt
    principal = await st.auth.authenticate(request.headers.get("authorization"), limits=False)
    return st, principal.key_id


def file_store(st: AppState) -> FileStore:
    return store_for(st.settings.file_store)


def page(ids: list[str], after: str | None, limit: int) -> tuple[list[str], bool]:
    """OpenAI cursor pagination over ids in list order: (this page, has_more)."""
    if not 1 <= limit <= 10_000:
        raise InvalidRequest("'limit' must be between 1 and 10000.", param="limit")
    if after:
        ids = ids[ids.index(after) + 1 :] if after in ids else []
    return ids[:limit], len(ids) > limit


def listing(data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }


@router.post("/v1/files")
async def upload_file(request: Request) -> dict[str, Any]:
    st, owner = await owner_of(request)
    limit = st.settings.batch_max_file_bytes
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit + 64 * 1024:
        raise RequestTooLarge(f"Files may be at most {limit} bytes.")
    form = await request.form(max_files=1, max_fields=8)
    try:
        upload, purpose = form.get("file"), form.get("purpose")
        if not isinstance(upload, UploadFile):
            raise InvalidRequest("Missing file: send it as multipart field 'file'.", param="file")
        if purpose != "batch":
            raise InvalidRequest("Only purpose 'batch' is supported.", param="purpose")
        data = await upload.read(limit + 1)
        filename = (upload.filename or "input.jsonl")[:256]
    finally:
        await form.close()
    if len(data) > limit:
        raise RequestTooLarge(f"Files may be at most {limit} bytes.")
    record = await batchfiles.create(st.redis, file_store(st), owner, filename, "batch", data)
    return batchfiles.render(record)


@router.get("/v1/files")
async def list_files(
    request: Request,
    purpose: str | None = None,
    after: str | None = None,
    limit: int = 10_000,
    order: str = "desc",
) -> dict[str, Any]:
    st, owner = await owner_of(request)
    if order not in ("asc", "desc"):
        raise InvalidRequest("'order' must be 'asc' or 'desc'.", param="order")
    records = await batchfiles.list_records(st.redis, owner, newest_first=order == "desc")
    if purpose:
        records = [r for r in records if r["purpose"] == purpose]
    chosen, has_more = page([r["id"] for r in records], after, limit)
    keep = set(chosen)
    return listing([batchfiles.render(r) for r in records if r["id"] in keep], has_more)


async def _owned(st: AppState, file_id: str, owner: str) -> dict[str, str]:
    record = await batchfiles.get(st.redis, file_id, owner)
    if record is None:
        raise NotFound(
            f"No such File object: {shown_id(file_id)}", param="id", code="file_not_found"
        )
    return record


@router.get("/v1/files/{file_id}")
async def retrieve_file(request: Request, file_id: str) -> dict[str, Any]:
    st, owner = await owner_of(request)
    return batchfiles.render(await _owned(st, file_id, owner))


@router.get("/v1/files/{file_id}/content")
async def file_content(request: Request, file_id: str) -> Response:
    st, owner = await owner_of(request)
    await _owned(st, file_id, owner)
    try:
        data = await file_store(st).get(file_object(file_id))
    except FileMissing:
        await batchfiles.delete(st.redis, file_store(st), file_id, owner)  # its bytes are gone
        raise NotFound(
            f"No such File object: {shown_id(file_id)}", param="id", code="file_not_found"
        ) from None
    return Response(data, media_type="application/octet-stream")


@router.delete("/v1/files/{file_id}")
async def delete_file(request: Request, file_id: str) -> dict[str, Any]:
    st, owner = await owner_of(request)
    if not await batchfiles.delete(st.redis, file_store(st), file_id, owner):
        raise NotFound(
            f"No such File object: {shown_id(file_id)}", param="id", code="file_not_found"
        )
    return {"id": file_id, "object": "file", "deleted": True}
