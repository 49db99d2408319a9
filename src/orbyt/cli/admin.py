"""`orbyt keys create|list|limits|revoke` and `orbyt usage`: admin commands that talk to Redis
directly, like the admin HTTP API does. Output is JSON on stdout.

Which Redis: `ORBYT_REDIS_URL` / `REDIS_URL` / `redis_url` in the config file if set, else
the running `orbyt dev` started in this directory (`.orbyt/dev.json`), else the default
(`redis://127.0.0.1:6379/0`). An unreachable Redis is one line naming the URL (without
its password), exit 1.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import click
from redis.asyncio import Redis
from redis.exceptions import RedisError

from orbyt.api.keystore import KeyStore, name_problem
from orbyt.cli import devstate
from orbyt.cli.errors import CliError
from orbyt.cli.startup import load_settings
from orbyt.shared.redis.clients import client
from orbyt.shared.usage import day, read

KEY_ID = re.compile(r"^(key|env)_[0-9a-z]{1,64}$")
KEY_ID_HELP = "key_… for keys made by `orbyt keys create`, env_… for ORBYT_GATEWAY_KEYS"


def redis_url() -> str:
    settings = load_settings()
    if "redis_url" in settings.model_fields_set:
        return settings.redis_url
    return devstate.running_redis_url() or settings.redis_url


def _safe_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + netloc))


def _run(action: Callable[[Redis], Awaitable[Any]]) -> Any:
    """Run `action` against the admin Redis; one-line `CliError` if it cannot be reached."""
    url = redis_url()

    async def go() -> Any:
        try:
            redis: Redis = client(url, socket_connect_timeout=5, socket_timeout=10)
        except ValueError as exc:
            raise CliError(f"bad Redis URL {_safe_url(url)}: {exc}") from None
        try:
            return await action(redis)
        except (RedisError, OSError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise CliError(
                f"cannot use Redis at {_safe_url(url)} ({reason}); start `orbyt dev` in "
                "this directory or set ORBYT_REDIS_URL"
            ) from None
        finally:
            await redis.aclose()

    return asyncio.run(go())


def _print(out: Any) -> None:
    click.echo(json.dumps(out, indent=2))


def _key_id(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not KEY_ID.match(value):
        # the value is not echoed: a pasted gateway key must not reach a terminal log
        raise click.BadParameter(f"not a key id ({KEY_ID_HELP})")
    return value


def _day(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        datetime.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date as YYYY-MM-DD") from None
    if len(value) != 10:
        raise click.BadParameter(f"{value!r} is not a date as YYYY-MM-DD")
    return value


@click.group()
def keys() -> None:
    """Create, list and revoke gateway keys.

    Keys are stored in Redis as SHA-256 hashes: a key is shown once, when created.
    """


@keys.command()
@click.option("--name", required=True, help="A label for the key (who or what uses it).")
@click.option(
    "--rpm",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Requests per minute (0: no limit).",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Requests in flight at once (0: no limit).",
)
@click.option("--no-pool", is_flag=True, help="BYOK only: may not use the gateway's provider keys.")
def create(name: str, rpm: int, concurrency: int, no_pool: bool) -> int:
    """Create a key; it is printed once and never again."""
    problem = name_problem(name)
    if problem:
        raise click.BadParameter(problem, param_hint="--name")

    async def action(redis: Redis) -> tuple[str, Any]:
        return await KeyStore(redis).create(name, rpm, concurrency, not no_pool)

    key, record = _run(action)
    _print({**record.public(), "key": key, "note": "store this key now: it is not shown again"})
    return 0


@keys.command("list")
def list_keys() -> int:
    """List keys: ids, names, limits (never the keys themselves)."""

    async def action(redis: Redis) -> Any:
        return [k.public() for k in await KeyStore(redis).list()]

    _print(_run(action))
    return 0


@keys.command()
@click.argument("key_id", callback=_key_id)
@click.option(
    "--rpm", type=click.IntRange(min=0), default=None, help="Requests per minute (0: no limit)."
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=0),
    default=None,
    help="Requests at once (0: no limit).",
)
@click.option("--pool/--no-pool", default=None, help="May use the gateway's provider keys.")
def limits(key_id: str, rpm: int | None, concurrency: int | None, pool: bool | None) -> int:
    """Change the limits of the key KEY_ID (options not given keep their value); in force on
    the next request (as `PATCH /admin/keys/{id}` and the console do)."""

    async def action(redis: Redis) -> Any:
        return await KeyStore(redis).update(key_id, rpm, concurrency, pool)

    found = _run(action)
    if found is None:
        click.echo(f"no key with id {key_id}")
        return 1
    _print(found.public())
    return 0


@keys.command()
@click.argument("key_id", callback=_key_id)
def revoke(key_id: str) -> int:
    """Revoke the key KEY_ID (as `orbyt keys list` shows it); effective on the next request."""

    async def action(redis: Redis) -> bool:
        return await KeyStore(redis).revoke(key_id)

    if not _run(action):
        click.echo(f"no key with id {key_id}")
        return 1
    _print({"id": key_id, "revoked": True})
    return 0


@click.command()
@click.argument("key_id", callback=_key_id)
@click.option("--day", "on", callback=_day, default=None, help="YYYY-MM-DD (default: today, UTC).")
def usage(key_id: str, on: str | None) -> int:
    """Show a key's usage for one day.

    Per model: requests, tokens, cost, for the key KEY_ID (as `orbyt keys list` shows it).
    """
    when = on or day()

    async def action(redis: Redis) -> Any:
        return await read(redis, key_id, when)

    _print({"key_id": key_id, "day": when, "models": _run(action)})
    return 0


def register(group: click.Group) -> None:
    group.add_command(keys)
    group.add_command(usage)
