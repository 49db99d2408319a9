"""Stored responses in the durable Redis (`settings.redis_url`): key names and record.

One key per response, `orbyt:response:{id}`, a JSON record with a TTL of
`settings.responses_ttl` seconds:
    {"owner": gateway key id, "response": the Response object,
     "input": the request's input items, "messages": its conversation as chat messages,
     "items": the same conversation as Responses input items}
`messages` (for a translated route) and `items` (for OpenAI's own Responses API) hold
everything a `previous_response_id` continues from (the conversation before this
response, this request's input and the answer), never the `instructions`.
Nothing in a record comes from `extra`, so it never holds a BYOK key. A record whose owner
is another gateway key is as absent as one that never existed.
"""

from __future__ import annotations

from typing import Any

import orjson
from redis.asyncio import Redis

Json = dict[str, Any]


def response_key(response_id: str) -> str:
    return f"orbyt:response:{response_id}"


async def save(redis: Redis, record: Json, ttl: float) -> None:
    key = response_key(record["response"]["id"])
    await redis.set(key, orjson.dumps(record), px=max(1, int(ttl * 1000)))


async def load(redis: Redis, response_id: str, owner: str) -> Json | None:
    """The record of `response_id` if `owner` owns it, else None."""
    raw = await redis.get(response_key(response_id))
    if raw is None:
        return None
    record: Json = orjson.loads(raw)
    return record if record.get("owner") == owner else None


async def delete(redis: Redis, response_id: str, owner: str) -> bool:
    """Delete the record if `owner` owns it; False if there was none to delete."""
    if await load(redis, response_id, owner) is None:
        return False
    return bool(await redis.delete(response_key(response_id)))


def input_items(items: str | list[Json], response_id: str) -> list[Json]:
    """The request's input as the stored list of items, each with an id."""
    if isinstance(items, str):
        items = [{"type": "message", "role": "user", "content": items}]
    out: list[Json] = []
    for i, item in enumerate(items):
        item = dict(item)
        item.setdefault("type", "message")
        if item["type"] == "message" and isinstance(item.get("content"), str):
            kind = "output_text" if item.get("role") == "assistant" else "input_text"
            item["content"] = [{"type": kind, "text": item["content"]}]
        if item["type"] == "message":
            item.setdefault("status", "completed")
        item.setdefault("id", f"in_{response_id.removeprefix('resp_')}_{i}")
        out.append(item)
    return out
