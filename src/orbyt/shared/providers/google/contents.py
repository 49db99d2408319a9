"""OpenAI `messages` -> Gemini `systemInstruction` + `contents` (see `shared.providers.google`).

Pure and total: any input either translates or raises `InvalidRequest` naming the field.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import orjson

from orbyt.shared.errors import InvalidRequest
from orbyt.shared.providers.base import Json

# Documented placeholder that tells Gemini 3 to skip thought-signature validation.
SKIP_SIGNATURE = "skip_thought_signature_validator"

# Media types guessed from an http(s) URL's extension (Gemini needs `fileData.mimeType`).
URL_MEDIA_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "heic": "image/heic",
    "heif": "image/heif",
    "gif": "image/gif",
}
AUDIO_MEDIA_TYPES = {"wav": "audio/wav", "mp3": "audio/mp3"}
FILES_API_HOST = "generativelanguage.googleapis.com"

_DATA_URL = re.compile(r"data:([\w.+-]+/[\w.+-]+)(?:;[\w.+-]+=[^;,]*)*;base64,", re.ASCII)
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]*={0,2}", re.ASCII)

# tool_call_id -> (assistant message position, call position, function name)
_Calls = dict[str, tuple[int, int, str]]


def invalid(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, param=param, code="invalid_value")


def as_dict(value: Any, param: str) -> Json:
    if not isinstance(value, dict):
        raise invalid(f"{param!r} must be an object.", param)
    return value


def as_str(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise invalid(f"{param!r} must be a string.", param)
    return value


def convert_messages(messages: Any, needs_signature: bool) -> tuple[Json | None, list[Json]]:
    """(systemInstruction or None, contents) for an OpenAI `messages` array."""
    if not isinstance(messages, list) or not messages:
        raise invalid("'messages' must be a non-empty array.", "messages")
    system: list[Json] = []
    turns: list[Json] = []
    calls: _Calls = {}
    results: list[tuple[tuple[int, int], Json]] = []  # pending tool results, flushed together
    for i, raw in enumerate(messages):
        param = f"messages[{i}]"
        msg = as_dict(raw, param)
        role = msg.get("role")
        if role == "tool":
            results.append(_tool_result(msg, param, calls))
            continue
        _flush_results(turns, results)
        content = msg.get("content")
        if role in ("system", "developer"):
            system.extend(_text_parts(content, f"{param}.content", ("text",)))
        elif role == "user":
            _append(turns, "user", _user_parts(content, f"{param}.content"))
        elif role == "assistant":
            _append(turns, "model", _assistant_parts(msg, i, calls, needs_signature))
        else:
            raise invalid("This role is not supported by google models.", f"{param}.role")
    _flush_results(turns, results)
    if not turns:
        raise invalid("google models need at least one user or assistant message.", "messages")
    return ({"parts": system} if system else None), turns


def _append(turns: list[Json], role: str, parts: list[Json]) -> None:
    """Add a turn, merging it into the previous one when the role repeats."""
    if not parts:
        return
    if turns and turns[-1]["role"] == role:
        turns[-1]["parts"].extend(parts)
    else:
        turns.append({"role": role, "parts": parts})


def _flush_results(turns: list[Json], results: list[tuple[tuple[int, int], Json]]) -> None:
    """Consecutive tool messages become one user turn, in the order the calls were made."""
    if results:
        results.sort(key=lambda item: item[0])
        _append(turns, "user", [part for _, part in results])
        results.clear()


def _text_parts(content: Any, param: str, kinds: tuple[str, ...]) -> list[Json]:
    return [{"text": text} for text in _texts(content, param, kinds) if text]


def _texts(content: Any, param: str, kinds: tuple[str, ...]) -> list[str]:
    if content is None:
        return []
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list):
        raise invalid(f"{param!r} must be a string or an array of parts.", param)
    texts: list[str] = []
    for j, raw in enumerate(content):
        part = as_dict(raw, f"{param}[{j}]")
        kind = part.get("type")
        if kind not in kinds:
            raise invalid("This content part type is not supported here.", f"{param}[{j}].type")
        texts.append(as_str(part.get(kind), f"{param}[{j}].{kind}"))
    return texts


def _user_parts(content: Any, param: str) -> list[Json]:
    if not isinstance(content, list):
        return _text_parts(content, param, ("text",))
    parts: list[Json] = []
    for j, raw in enumerate(content):
        where = f"{param}[{j}]"
        part = as_dict(raw, where)
        kind = part.get("type")
        if kind == "text":
            text = as_str(part.get("text"), f"{where}.text")
            parts.extend([{"text": text}] if text else [])
        elif kind == "image_url":
            parts.append(_image(part.get("image_url"), f"{where}.image_url"))
        elif kind == "input_audio":
            parts.append(_audio(part.get("input_audio"), f"{where}.input_audio"))
        elif kind == "file":
            parts.append(_file(part.get("file"), f"{where}.file"))
        else:
            raise invalid(
                "This content part type is not supported by google models.", f"{where}.type"
            )
    return parts


def _inline(url: str, param: str) -> Json:
    """A base64 data URL -> `inlineData`."""
    match = _DATA_URL.match(url)
    data = url[match.end() :] if match else ""
    if match is None or not _BASE64.fullmatch(data):
        raise invalid("Expected a base64 data URL (data:<type>;base64,<data>).", param)
    return {"inlineData": {"mimeType": match.group(1).lower(), "data": data}}


def _image(value: Any, param: str) -> Json:
    if isinstance(value, str):
        url, where = value, param
    else:
        url, where = as_str(as_dict(value, param).get("url"), f"{param}.url"), f"{param}.url"
    if url.startswith("data:"):
        return _inline(url, where)
    try:
        parts = urlsplit(url)
    except ValueError:
        raise invalid("Malformed image URL.", where) from None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise invalid("Image URLs must be http(s) or base64 data URLs.", where)
    filename = parts.path.rpartition("/")[2]
    ext = filename.rpartition(".")[2].lower() if "." in filename else ""
    media_type = URL_MEDIA_TYPES.get(ext)
    if media_type is None and parts.hostname == FILES_API_HOST:
        return {"fileData": {"fileUri": url}}  # a Files API URI: Gemini knows its type
    if media_type is None:
        raise invalid(
            "Cannot tell the image's media type from its URL; use a URL ending in "
            f"one of {sorted(URL_MEDIA_TYPES)} or a data URL.",
            where,
        )
    return {"fileData": {"mimeType": media_type, "fileUri": url}}


def _audio(value: Any, param: str) -> Json:
    audio = as_dict(value, param)
    data = as_str(audio.get("data"), f"{param}.data")
    fmt = audio.get("format")
    media_type = AUDIO_MEDIA_TYPES.get(fmt) if isinstance(fmt, str) else None
    if media_type is None:
        raise invalid(
            f"Audio format must be one of {sorted(AUDIO_MEDIA_TYPES)}.", f"{param}.format"
        )
    if not _BASE64.fullmatch(data):
        raise invalid("Audio data must be base64.", f"{param}.data")
    return {"inlineData": {"mimeType": media_type, "data": data}}


def _file(value: Any, param: str) -> Json:
    file = as_dict(value, param)
    if file.get("file_data") is None:
        raise invalid(
            "google models accept files only as 'file_data' data URLs.", f"{param}.file_data"
        )
    return _inline(as_str(file["file_data"], f"{param}.file_data"), f"{param}.file_data")


def _assistant_parts(msg: Json, i: int, calls: _Calls, needs_signature: bool) -> list[Json]:
    param = f"messages[{i}]"
    if msg.get("function_call") is not None:
        raise invalid(
            "Legacy 'function_call' is not supported; use 'tool_calls'.", f"{param}.function_call"
        )
    parts = _text_parts(msg.get("content"), f"{param}.content", ("text", "refusal"))
    tool_calls = msg.get("tool_calls")
    if tool_calls is None:
        return parts
    if not isinstance(tool_calls, list):
        raise invalid("'tool_calls' must be an array.", f"{param}.tool_calls")
    call_parts = [
        _call_part(raw, f"{param}.tool_calls[{k}]", (i, k), calls)
        for k, raw in enumerate(tool_calls)
    ]
    if needs_signature and call_parts and "thoughtSignature" not in call_parts[0]:
        call_parts[0]["thoughtSignature"] = SKIP_SIGNATURE
    return parts + call_parts


def _call_part(raw: Any, param: str, position: tuple[int, int], calls: _Calls) -> Json:
    call = as_dict(raw, param)
    if call.get("type", "function") != "function":
        raise invalid("Only 'function' tool calls are supported.", f"{param}.type")
    call_id = as_str(call.get("id"), f"{param}.id")
    function = as_dict(call.get("function"), f"{param}.function")
    name = as_str(function.get("name"), f"{param}.function.name")
    args = _arguments(function.get("arguments"), f"{param}.function.arguments")
    calls[call_id] = (position[0], position[1], name)
    part: Json = {"functionCall": {"name": name, "args": args}}
    signature = thought_signature(call)
    if signature:
        part["thoughtSignature"] = signature
    return part


def thought_signature(call: Json) -> str | None:
    """The signature Orbyt put on a tool call: `extra_content.google.thought_signature`."""
    extra = call.get("extra_content")
    google = extra.get("google") if isinstance(extra, dict) else None
    signature = google.get("thought_signature") if isinstance(google, dict) else None
    return signature if isinstance(signature, str) and signature else None


def _arguments(raw: Any, param: str) -> Json:
    if isinstance(raw, dict):
        return raw
    if raw is None or raw == "":
        return {}
    try:
        args = orjson.loads(as_str(raw, param))
    except orjson.JSONDecodeError:
        raise invalid("Tool call arguments must be a JSON object string.", param) from None
    if not isinstance(args, dict):
        raise invalid("Tool call arguments must be a JSON object.", param)
    return args


def _tool_result(msg: Json, param: str, calls: _Calls) -> tuple[tuple[int, int], Json]:
    call_id = as_str(msg.get("tool_call_id"), f"{param}.tool_call_id")
    found = calls.get(call_id)
    if found is None:
        raise invalid(
            "'tool_call_id' matches no tool call of an earlier assistant message.",
            f"{param}.tool_call_id",
        )
    text = "".join(_texts(msg.get("content"), f"{param}.content", ("text",)))
    response = {"name": found[2], "response": _response_object(text)}
    return (found[0], found[1]), {"functionResponse": response}


def _response_object(text: str) -> Json:
    """Gemini wants an object: a JSON object result is sent as is, anything else wrapped."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {"result": text}
    return value if isinstance(value, dict) else {"result": text}
