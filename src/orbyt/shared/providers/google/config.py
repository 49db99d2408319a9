"""OpenAI sampling, output, tool and reasoning fields -> Gemini request fields.

See the mapping table in `shared.providers.google`. Pure; raises `InvalidRequest` only.
"""

from __future__ import annotations

import re
from typing import Any

from orbyt.shared.errors import InvalidRequest
from orbyt.shared.providers.base import Json
from orbyt.shared.providers.google.contents import as_dict, as_str, invalid

MAX_STOP_SEQUENCES = 5

# OpenAI fields Gemini has no equivalent for and that change the answer: rejected.
REJECTED_FIELDS = ("audio", "prediction", "web_search_options", "functions", "function_call")

_NUMBERS = (
    ("temperature", "temperature"),
    ("top_p", "topP"),
    ("presence_penalty", "presencePenalty"),
    ("frequency_penalty", "frequencyPenalty"),
)

_TOOL_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}

# reasoning_effort -> thinkingLevel (Gemini 3+) / thinkingBudget in tokens (Gemini 2.5).
_LEVELS = {
    "none": "MINIMAL",  # Gemini 3 cannot switch thinking off; MINIMAL is the least
    "minimal": "MINIMAL",
    "low": "LOW",
    "medium": "MEDIUM",
    "high": "HIGH",
    "xhigh": "HIGH",
}
_BUDGETS = {"none": 0, "minimal": 1024, "low": 1024, "medium": 8192, "high": 24576, "xhigh": 24576}

_GEMINI_VERSION = re.compile(r"gemini-(\d+)(?:\.(\d+))?-", re.ASCII)


def thinking_family(model: str) -> str | None:
    """ "level" (Gemini 3+ and unversioned gemini aliases), "budget" (2.5), None (no thinking)."""
    if not model.startswith("gemini-"):
        return None
    match = _GEMINI_VERSION.match(model + "-")
    if match is None:
        return "level"  # e.g. gemini-flash-latest: assume the current generation
    major, minor = int(match.group(1)), int(match.group(2) or 0)
    if major >= 3:
        return "level"
    return "budget" if (major, minor) == (2, 5) else None


def reject_unsupported(body: Json) -> None:
    for name in REJECTED_FIELDS:
        if body.get(name) is not None:
            raise InvalidRequest(
                f"'{name}' is not supported by google models.",
                param=name,
                code="unsupported_parameter",
            )
    modalities = body.get("modalities")
    if modalities is not None and modalities != ["text"]:
        raise InvalidRequest(
            "google models answer with text only.", param="modalities", code="unsupported_parameter"
        )


def generation_config(body: Json, model: str) -> Json:
    config: Json = {}
    for field, name in _NUMBERS:
        value = body.get(field)
        if value is not None:
            config[name] = _number(value, field)
    limit_field = (
        "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    )
    if body.get(limit_field) is not None:
        config["maxOutputTokens"] = _integer(body[limit_field], limit_field, 1)
    if body.get("seed") is not None:
        config["seed"] = _integer(body["seed"], "seed", None)
    if body.get("n") is not None and _integer(body["n"], "n", 1) > 1:
        config["candidateCount"] = body["n"]
    stops = _stop_sequences(body.get("stop"))
    if stops:
        config["stopSequences"] = stops
    config.update(_logprobs(body))
    config.update(_response_format(body.get("response_format")))
    thinking = _thinking(body.get("reasoning_effort"), model)
    if thinking:
        config["thinkingConfig"] = thinking
    return config


def _number(value: Any, param: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise invalid(f"{param!r} must be a number.", param)
    return value


def _integer(value: Any, param: str, minimum: int | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(f"{param!r} must be an integer.", param)
    if minimum is not None and value < minimum:
        raise invalid(f"{param!r} must be at least {minimum}.", param)
    return value


def _stop_sequences(stop: Any) -> list[str]:
    if stop is None:
        return []
    stops = [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise invalid("'stop' must be a string or an array of strings.", "stop")
    if len(stops) > MAX_STOP_SEQUENCES:
        raise invalid(f"google models accept at most {MAX_STOP_SEQUENCES} stop sequences.", "stop")
    return [s for s in stops if s]


def _logprobs(body: Json) -> Json:
    wanted = body.get("logprobs")
    if wanted is None or wanted is False:
        return {}
    if wanted is not True:
        raise invalid("'logprobs' must be a boolean.", "logprobs")
    config: Json = {"responseLogprobs": True}
    if body.get("top_logprobs") is not None:
        config["logprobs"] = _integer(body["top_logprobs"], "top_logprobs", 0)
    return config


def _response_format(value: Any) -> Json:
    if value is None:
        return {}
    kind = as_dict(value, "response_format").get("type")
    if kind == "text":
        return {}
    if kind == "json_object":
        return {"responseMimeType": "application/json"}
    if kind == "json_schema":
        spec = as_dict(value.get("json_schema"), "response_format.json_schema")
        schema = as_dict(spec.get("schema"), "response_format.json_schema.schema")
        return {"responseMimeType": "application/json", "responseJsonSchema": schema}
    raise invalid(
        "'response_format.type' must be text, json_object or json_schema.", "response_format.type"
    )


def _thinking(effort: Any, model: str) -> Json:
    if effort is None:
        return {}
    if not isinstance(effort, str) or effort not in _BUDGETS:
        raise invalid(f"'reasoning_effort' must be one of {sorted(_BUDGETS)}.", "reasoning_effort")
    family = thinking_family(model)
    if family is None:
        return {}  # the model does not think: nothing to configure
    config: Json = (
        {"thinkingLevel": _LEVELS[effort]}
        if family == "level"
        else {"thinkingBudget": _BUDGETS[effort]}
    )
    if effort != "none":
        config["includeThoughts"] = True
    return config


def tools(body: Json) -> list[Json]:
    """`tools` -> `[{"functionDeclarations": [...]}]` (empty when there are none)."""
    raw = body.get("tools")
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise invalid("'tools' must be an array.", "tools")
    declarations = [_declaration(tool, f"tools[{i}]") for i, tool in enumerate(raw)]
    return [{"functionDeclarations": declarations}] if declarations else []


def _declaration(raw: Any, param: str) -> Json:
    tool = as_dict(raw, param)
    if tool.get("type") != "function":
        raise invalid("google models support only 'function' tools.", f"{param}.type")
    function = as_dict(tool.get("function"), f"{param}.function")
    declaration: Json = {"name": as_str(function.get("name"), f"{param}.function.name")}
    if function.get("description") is not None:
        declaration["description"] = as_str(
            function["description"], f"{param}.function.description"
        )
    if function.get("parameters") is not None:
        declaration["parametersJsonSchema"] = as_dict(
            function["parameters"], f"{param}.function.parameters"
        )
    return declaration


def tool_config(choice: Any) -> Json | None:
    """`tool_choice` -> `toolConfig` (None when absent)."""
    if choice is None:
        return None
    if isinstance(choice, str) and choice in _TOOL_MODES:
        config: Json = {"mode": _TOOL_MODES[choice]}
    elif isinstance(choice, dict) and choice.get("type") == "function":
        function = as_dict(choice.get("function"), "tool_choice.function")
        name = as_str(function.get("name"), "tool_choice.function.name")
        config = {"mode": "ANY", "allowedFunctionNames": [name]}
    else:
        raise invalid(
            "'tool_choice' must be none, auto, required or a named function.", "tool_choice"
        )
    return {"functionCallingConfig": config}
