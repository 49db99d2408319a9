"""`orbyt keys create|list|revoke` and `orbyt usage`: admin commands that talk to Redis
directly (ORBYT_REDIS_URL), like the admin HTTP API does."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from redis.asyncio import Redis

from orbyt.api.keystore import KeyStore
from orbyt.api.usage import day, read
from orbyt.shared.settings import get_settings


def add_commands(sub: Any) -> None:
    keys = sub.add_parser("keys", help="manage gateway keys")
    ksub = keys.add_subparsers(dest="keys_command", required=True)
    create = ksub.add_parser("create", help="create a key (shown once)")
    create.add_argument("--name", required=True)
    create.add_argument("--rpm", type=int, default=0, help="requests per minute (0: no limit)")
    create.add_argument("--concurrency", type=int, default=0, help="in flight (0: no limit)")
    create.add_argument(
        "--no-pool", action="store_true", help="BYOK only: may not use the gateway's provider keys"
    )
    ksub.add_parser("list", help="list keys (never the keys themselves)")
    revoke = ksub.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("key_id")
    usage = sub.add_parser("usage", help="usage of a key for a day")
    usage.add_argument("key_id")
    usage.add_argument("--day", default=None, help="YYYY-MM-DD (default: today, UTC)")


async def _run(args: argparse.Namespace) -> int:
    redis = Redis.from_url(get_settings().redis_url)
    try:
        store = KeyStore(redis)
        out: Any
        if args.command == "usage":
            when = args.day or day()
            out = {
                "key_id": args.key_id,
                "day": when,
                "models": await read(redis, args.key_id, when),
            }
        elif args.keys_command == "create":
            key, record = await store.create(
                args.name, args.rpm, args.concurrency, not args.no_pool
            )
            out = {
                **record.public(),
                "key": key,
                "note": "store this key now: it is not shown again",
            }
        elif args.keys_command == "list":
            out = [k.public() for k in await store.list()]
        else:
            if not await store.revoke(args.key_id):
                print(f"no key with id {args.key_id}")
                return 1
            out = {"id": args.key_id, "revoked": True}
        print(json.dumps(out, indent=2))
        return 0
    finally:
        await redis.aclose()


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))
