"""OpenAI chat `messages` -> Anthropic `system` + alternating user/assistant turns. Pure.

Every refusal is an `InvalidRequest` whose `param` names the field in OpenAI's request
(`messages[2].content[0].image_url.url`) and whose message never echoes the caller's values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from orbyt.shared.errors import InvalidRequest
from orbyt.shared.providers.base import Json

IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
LEGACY_FUNCTIONS = "legacy 'function_call' is not supported by anthropic; use 'tool_choice'."
_BAD_ID_CHARS = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(slots=True)
class Conversation:
    system: list[str]
    messages: list[Json]  # alternating {"role": "user"|"assistant", "content": [blocks]}
    prefill_ws: str  # whitespace stripped off the end of a final assistant message
    open_tool_turn: bool  # an assistant tool_use turn has no user text after it yet

    @property
    def prefill(self) -> bool:
        return bool(self.messages[-1]["role"] == "assistant")


def prefill_whitespace(body: Json) -> str:
    """The whitespace `translate_messages` strips off a final assistant prefill ("" if none)."""
    try:
        return translate_messages(body.get("messages")).prefill_ws
    except InvalidRequest:
        return ""


def translate_messages(messages: Any) -> Conversation:
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty array.", param="messages")
    system: list[str] = []
    turns: list[Json] = []
    for i, msg in enumerate(messages):
        p = f"messages[{i}]"
        if not isinstance(msg, dict):
            raise InvalidRequest("Each message must be an object.", param=p)
        role = msg.get("role")
        if role in ("system", "developer"):
            text = _plain_text(msg.get("content"), f"{p}.content")
            if text.strip():
                system.append(text)
        elif role == "user":
            _append(turns, "user", _user_blocks(msg.get("content"), f"{p}.content"))
        elif role == "assistant":
            _append(turns, "assistant", _assistant_blocks(msg, p))
        elif role == "tool":
            _append(turns, "user", [_tool_result(msg, p)])
        else:
            raise InvalidRequest(
                "anthropic supports the roles system, developer, user, assistant and tool.",
                param=f"{p}.role",
            )
    prefill_ws = _strip_final_assistant(turns)
    if not turns:
        raise InvalidRequest(
            "anthropic needs at least one non-empty user or assistant message.", param="messages"
        )
    return Conversation(system, turns, prefill_ws, _open_tool_turn(messages))


def _append(turns: list[Json], role: str, blocks: list[Json]) -> None:
    """Anthropic wants strictly alternating roles: merge consecutive same-role messages."""
    if not blocks:
        return  # Anthropic rejects empty messages; an empty one carries nothing anyway
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": blocks})


def _strip_final_assistant(turns: list[Json]) -> str:
    """Anthropic rejects a final assistant message that ends in whitespace (400)."""
    if not turns or turns[-1]["role"] != "assistant":
        return ""
    blocks = turns[-1]["content"]
    stripped = ""
    while blocks and blocks[-1]["type"] == "text":
        text = blocks[-1]["text"]
        kept = text.rstrip()
        stripped = text[len(kept) :] + stripped
        if kept:
            blocks[-1]["text"] = kept
            break
        blocks.pop()
    if not blocks:
        turns.pop()
    return stripped


def _open_tool_turn(messages: list[Any]) -> bool:
    for msg in reversed(messages):
        role = msg.get("role")
        if role == "user":
            return False
        if role == "assistant" and msg.get("tool_calls"):
            return True
    return False


def _text_blocks(text: str) -> list[Json]:
    # Anthropic rejects empty and whitespace-only text blocks.
    return [{"type": "text", "text": text}] if text.strip() else []


def _plain_text(content: Any, p: str) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    if not isinstance(content, list):
        raise InvalidRequest("'content' must be a string or an array of parts.", param=p)
    texts = []
    for j, part in enumerate(content):
        if not isinstance(part, dict) or part.get("type") != "text":
            raise InvalidRequest("System messages may only contain text parts.", param=f"{p}[{j}]")
        texts.append(_str(part.get("text"), f"{p}[{j}].text"))
    return "\n".join(texts)


def _user_blocks(content: Any, p: str) -> list[Json]:
    if content is None or isinstance(content, str):
        return _text_blocks(content or "")
    if not isinstance(content, list):
        raise InvalidRequest("'content' must be a string or an array of parts.", param=p)
    blocks: list[Json] = []
    for j, part in enumerate(content):
        blocks.extend(_user_part(part, f"{p}[{j}]"))
    return blocks


def _user_part(part: Any, p: str) -> list[Json]:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text":
        return _text_blocks(_str(part.get("text"), f"{p}.text"))
    if kind == "image_url":
        return [_image_block(part.get("image_url"), f"{p}.image_url")]
    if kind == "file":
        return [_file_block(part.get("file"), f"{p}.file")]
    raise InvalidRequest(
        "anthropic accepts text, image_url and PDF file content parts.",
        param=f"{p}.type" if isinstance(part, dict) else p,
    )


def _image_block(spec: Any, p: str) -> Json:
    url = spec.get("url") if isinstance(spec, dict) else spec
    p = f"{p}.url" if isinstance(spec, dict) else p
    if not isinstance(url, str):
        raise InvalidRequest("'image_url.url' must be a string.", param=p)
    if url[:5].lower() == "data:":
        media, data = _data_url(url, p)
        media = "image/jpeg" if media == "image/jpg" else media
        if media not in IMAGE_TYPES:
            raise InvalidRequest(
                "Unsupported image media type: anthropic accepts image/jpeg, "
                "image/png, image/gif and image/webp.",
                param=p,
            )
        return {"type": "image", "source": {"type": "base64", "media_type": media, "data": data}}
    if url[:8].lower() == "https://" or url[:7].lower() == "http://":
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise InvalidRequest("Image URLs must be http(s) URLs or base64 data URLs.", param=p)


def _file_block(spec: Any, p: str) -> Json:
    data_url = spec.get("file_data") if isinstance(spec, dict) else None
    if not isinstance(data_url, str) or data_url[:5].lower() != "data:":
        raise InvalidRequest(
            "anthropic needs files inline as a base64 data URL in "
            "'file_data' (uploaded file ids are not supported).",
            param=p,
        )
    media, data = _data_url(data_url, f"{p}.file_data")
    if media != "application/pdf":
        raise InvalidRequest("anthropic accepts PDF files only.", param=f"{p}.file_data")
    return {"type": "document", "source": {"type": "base64", "media_type": media, "data": data}}


def _data_url(url: str, p: str) -> tuple[str, str]:
    head, comma, data = url[5:].partition(",")
    media, *params = (x.strip().lower() for x in head.split(";"))
    if not comma or not data or "base64" not in params:
        raise InvalidRequest("Data URLs must be base64-encoded (data:<type>;base64,...).", param=p)
    return media, data


def _assistant_blocks(msg: Json, p: str) -> list[Json]:
    if msg.get("function_call") is not None:
        raise InvalidRequest(LEGACY_FUNCTIONS, param=f"{p}.function_call")
    content = msg.get("content")
    blocks: list[Json] = []
    if content is None or isinstance(content, str):
        blocks = _text_blocks(content or "")
    elif isinstance(content, list):
        for j, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind not in ("text", "refusal"):
                raise InvalidRequest(
                    "Assistant messages may only contain text and refusal parts.",
                    param=f"{p}.content[{j}]",
                )
            blocks.extend(_text_blocks(_str(part.get(kind), f"{p}.content[{j}].{kind}")))
    else:
        raise InvalidRequest(
            "'content' must be a string or an array of parts.", param=f"{p}.content"
        )
    calls = msg.get("tool_calls")
    if calls is not None:
        if not isinstance(calls, list):
            raise InvalidRequest("'tool_calls' must be an array.", param=f"{p}.tool_calls")
        blocks.extend(_tool_use(call, f"{p}.tool_calls[{k}]") for k, call in enumerate(calls))
    return blocks


def _tool_use(call: Any, p: str) -> Json:
    if not isinstance(call, dict) or call.get("type", "function") != "function":
        raise InvalidRequest("anthropic supports function tool calls only.", param=p)
    fn = call.get("function")
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
        raise InvalidRequest("A tool call needs 'function.name'.", param=f"{p}.function.name")
    return {
        "type": "tool_use",
        "id": _tool_id(call.get("id"), f"{p}.id"),
        "name": fn["name"],
        "input": _arguments(fn.get("arguments"), f"{p}.function.arguments"),
    }


def _arguments(raw: Any, p: str) -> Json:
    if isinstance(raw, dict):
        return raw
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}
    if not isinstance(raw, str):
        raise InvalidRequest("Tool call arguments must be a JSON string.", param=p)
    try:
        value = orjson.loads(raw)
    except ValueError:
        raise InvalidRequest("Tool call arguments are not valid JSON.", param=p) from None
    if not isinstance(value, dict):
        raise InvalidRequest("Tool call arguments must encode a JSON object.", param=p)
    return value


def _tool_result(msg: Json, p: str) -> Json:
    block: Json = {
        "type": "tool_result",
        "tool_use_id": _tool_id(msg.get("tool_call_id"), f"{p}.tool_call_id"),
    }
    content = msg.get("content")
    if isinstance(content, str):
        if content.strip():
            block["content"] = content
    elif isinstance(content, list):
        parts = _user_blocks(content, f"{p}.content")
        if parts:
            block["content"] = parts
    elif content is not None:
        raise InvalidRequest(
            "'content' must be a string or an array of parts.", param=f"{p}.content"
        )
    return block


def _tool_id(raw: Any, p: str) -> str:
    if not isinstance(raw, str) or not raw:
        raise InvalidRequest("A tool call id is required.", param=p)
    return _BAD_ID_CHARS.sub("_", raw)  # Anthropic ids match ^[a-zA-Z0-9_-]+$


def _str(value: Any, p: str) -> str:
    if not isinstance(value, str):
        raise InvalidRequest("Expected a string.", param=p)
    return value
