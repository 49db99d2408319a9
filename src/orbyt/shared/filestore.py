"""File bytes (batch input, output and error files) behind one small async interface.

`open_store(url)` picks the backend from `ORBYT_FILE_STORE`:

| url                      | backend                                                       |
|--------------------------|---------------------------------------------------------------|
| `file:///abs/dir`, a path | a local directory (dev, single-machine installs)             |
| `s3://bucket/prefix`     | any S3-compatible object store; credentials, region and       |
|                          | endpoint from the standard AWS environment (`AWS_ACCESS_KEY_ID`,|
|                          | `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL`, ...) |

Both are served by `obstore` (a maintained object-store library), so there are no
hand-written S3 calls; its exceptions are translated here and nowhere else. Object names are
plain relative paths chosen by Orbyt (`files/{id}`), never by callers.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

import obstore
from obstore.exceptions import NotFoundError
from obstore.store import LocalStore, S3Store


class FileMissing(Exception):
    """No object under this name."""


class FileStore(Protocol):
    async def put(self, name: str, data: bytes) -> None: ...

    async def get(self, name: str) -> bytes:
        """The object's bytes; raises FileMissing."""
        ...

    async def delete(self, name: str) -> None:
        """Remove the object; a missing object is not an error."""
        ...

    async def exists(self, name: str) -> bool: ...


class ObjectFileStore:
    """`FileStore` over any obstore store (local directory or S3-compatible)."""

    def __init__(self, store: Any, description: str) -> None:
        self._store = store
        self.description = description

    async def put(self, name: str, data: bytes) -> None:
        await obstore.put_async(self._store, name, data)

    async def get(self, name: str) -> bytes:
        try:
            result = await obstore.get_async(self._store, name)
            return bytes(await result.bytes_async())
        except (NotFoundError, FileNotFoundError):
            raise FileMissing(name) from None

    async def delete(self, name: str) -> None:
        try:
            await obstore.delete_async(self._store, name)
        except (NotFoundError, FileNotFoundError):
            return

    async def exists(self, name: str) -> bool:
        try:
            await obstore.head_async(self._store, name)
        except (NotFoundError, FileNotFoundError):
            return False
        return True


def _s3_config() -> dict[str, str]:
    """The standard AWS variables obstore understands (it does not read them all itself)."""
    names = {
        "AWS_ACCESS_KEY_ID": "aws_access_key_id",
        "AWS_SECRET_ACCESS_KEY": "aws_secret_access_key",
        "AWS_SESSION_TOKEN": "aws_session_token",
        "AWS_REGION": "aws_region",
        "AWS_DEFAULT_REGION": "aws_region",
        "AWS_ENDPOINT_URL": "aws_endpoint",
        "AWS_ENDPOINT_URL_S3": "aws_endpoint",
    }
    config: dict[str, str] = {}
    for env, key in names.items():
        value = os.environ.get(env)
        if value and key not in config:
            config[key] = value
    endpoint = config.get("aws_endpoint", "")
    if endpoint.startswith("http://"):
        config["aws_allow_http"] = "true"
    return config


def open_store(url: str) -> ObjectFileStore:
    """The file store named by `url` (see the module docstring)."""
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        prefix = parsed.path.strip("/")
        store = S3Store(parsed.netloc, prefix=prefix or None, config=_s3_config())  # type: ignore[arg-type]
        return ObjectFileStore(store, f"s3://{parsed.netloc}/{prefix}")
    if parsed.scheme not in ("", "file"):
        raise ValueError(f"unsupported file store {parsed.scheme!r} (use file:// or s3://)")
    path = Path(parsed.path if parsed.scheme == "file" else url).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return ObjectFileStore(LocalStore(prefix=path), str(path))


@cache
def store_for(url: str) -> ObjectFileStore:
    """One store per URL and process (obstore clients are safe to share)."""
    return open_store(url)
