"""Logging for every Orbyt process: structured JSON lines carrying the request id, and
redaction of anything key-shaped before a record exists (DESIGN §9).

Redaction is a LogRecord factory, so it covers every logger — Orbyt's, arq's, httpx's,
uvicorn's — whatever handlers they have: the message is formatted, scrubbed, and frozen.
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
import re
import sys
from typing import Any

import orjson

ACCESS_LOGGER = "orbyt.access"  # one line per finished request (api.ledger)

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "orbyt_request_id", default=None
)

# Between a header's name and its value: `name: v`, `name=v`, `'name': 'v'` (dict reprs,
# JSON) or `(b'name', b'v')` (header tuples, as httpcore and h11 show them).
_SEP = r"""(?:['"]?\s*[:=]\s*['"]?|['"]\s*,\s*b?['"])"""

_PATTERNS = [
    # header forms: Authorization: Bearer x / x-api-key: x / x-goog-api-key: x
    (re.compile(r"(?i)(authorization" + _SEP + r"(?:bearer|basic)?\s*)[^\s'\",})]+"), r"\1***"),
    (
        re.compile(r"(?i)((?:x-api-key|x-goog-api-key|api[_-]?key)" + _SEP + r")[^\s'\",})]+"),
        r"\1***",
    ),
    (re.compile(r"(?i)([?&]key=)[^&\s'\"]+"), r"\1***"),
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{8,}"), "Bearer ***"),
    # key shapes: OpenAI/DeepSeek/Anthropic/Orbyt sk-…, Google AIza…/AQ.…
    (re.compile(r"\bsk-[A-Za-z0-9_-]{8,}"), "sk-***"),
    (re.compile(r"\bAIza[0-9A-Za-z_-]{20,}"), "AIza***"),
    (re.compile(r"\bAQ\.[0-9A-Za-z._-]{8,}"), "AQ.***"),
]


# Any of the patterns, case-insensitively (a superset): one search clears most texts.
_SUSPECT = re.compile(
    "|".join(f"(?:{p.pattern.removeprefix('(?i)')})" for p, _ in _PATTERNS), re.IGNORECASE
)


def _clueless(low: str) -> bool:
    """`low` (a lowercased text) holds none of the substrings every match of `_PATTERNS`
    holds. Most texts hold none, and `in` tests are several times cheaper than even the
    combined regex: the access line is redacted field by field on every request."""
    return (
        "sk-" not in low
        and "bearer" not in low
        and "authorization" not in low
        and "api-key" not in low  # x-api-key, x-goog-api-key too
        and "api_key" not in low
        and "apikey" not in low
        and "?key=" not in low
        and "&key=" not in low
        and "aiza" not in low
        and "aq." not in low
    )


def redact(text: str) -> str:
    if _clueless(text.lower()):
        return text
    if _SUSPECT.search(text) is None:
        return text
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def safe_name(model: str) -> str:
    """A model id fit for Redis key names, usage records and logs: as is, unless it looks
    like a key (a caller pasted one into `model`) or is unreasonably long — then a hash."""
    if len(model) <= 128 and redact(model) == model:
        return model
    provider = model.partition("/")[0][:32]
    return f"{redact(provider)}/~{hashlib.sha256(model.encode()).hexdigest()[:16]}"


_base_factory = logging.getLogRecordFactory()


def _redacting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record = _base_factory(*args, **kwargs)
    try:
        message = record.getMessage()
    except Exception:  # a broken format string: keep the template only
        message = str(record.msg)
    record.msg = redact(message)
    record.args = None
    if record.exc_info and record.exc_info[1] is not None:
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        record.exc_info = None
    rid = request_id_var.get()
    if rid:
        record.request_id = rid
    return record


_FIELDS = (
    "event",
    "model",
    "provider",
    "status",
    "attempts",
    "latency_ms",
    "key_source",
    "key_id",
    "key_name",
    "ttft_ms",
    "duration_ms",
    "prompt_tokens",
    "completion_tokens",
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = getattr(record, "request_id", None)
        if rid:
            out["request_id"] = rid
        for field in _FIELDS:
            value = getattr(record, field, None)
            if value is not None:  # `extra` fields bypass the record factory: redact here
                out[field] = redact(value) if isinstance(value, str) else value
        if record.exc_text:
            out["exc"] = record.exc_text
        return orjson.dumps(out).decode()


def install_redaction() -> None:
    if logging.getLogRecordFactory() is not _redacting_factory:
        logging.setLogRecordFactory(_redacting_factory)


def configure(level: str = "warning", json: bool = True) -> None:
    """Root handler on stderr; uvicorn's loggers propagate to it. The access log
    (`ACCESS_LOGGER`, INFO) is shown at `warning` and below, so by default; `error` or
    `critical` silence it too."""
    install_redaction()
    # No LogRecord needs its caller's file and line, thread or process names (neither
    # format shows them): not looking them up saves ~15 % of every line (the logging
    # HOWTO's "Optimization" settings).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if json
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    access = logging.getLogger(ACCESS_LOGGER)
    access.setLevel(min(logging.INFO, root.level) if root.level <= logging.WARNING else root.level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "arq"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
