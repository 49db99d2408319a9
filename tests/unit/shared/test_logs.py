"""Log redaction (shared/logs.py, DESIGN §9): whatever a log call is given — a header dict,
a URL, an exception, a bare key — no key reaches a handler, with every logger."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orbyt.shared import logs
from orbyt.shared.logs import JsonFormatter, install_redaction, redact, request_id_var

OPENAI = "sk-proj-" + "Ab3_dE-fG7hJ" * 6 + "T3BlbkFJ" + "kL9mN0pQ-r_s" * 6
ANTHROPIC = "sk-ant-api03-" + "Zx8Yw7Vu6Ts5" * 7 + "R4Qp3On2m" + "AA"
DEEPSEEK = "sk-" + "0123456789abcdef" * 2
GATEWAY = "sk-or-v1-" + "4f" * 32
GOOGLE = "AIza" + "SyD-3x_Q9kLm2Np4Rs6Tu8Vw0Yz1Ab5Cd7E"
GOOGLE_AQ = "AQ." + "Ab8RN6Ix2_tPq-Wz9Lk4Mn.7Yv3Hs5Jd1"
SHAPELESS = "Zq4Wm8Rt2Xy6Kp0Lv3Nb7Hc1Fd5Gs9Jw"  # no known shape: caught only by context
KEYS = [OPENAI, ANTHROPIC, DEEPSEEK, GATEWAY, GOOGLE, GOOGLE_AQ]


_PREFIX = re.compile(r"^(sk-(proj|ant-api03|or-v1)-|sk-|AIza|AQ\.)")


def fragments(text: str) -> list[str]:
    """The keys of which `text` holds any 12-character piece (after the public prefix)."""
    found = []
    for key in [*KEYS, SHAPELESS]:
        body = _PREFIX.sub("", key)
        if any(body[i : i + 12] in text for i in range(len(body) - 11)):
            found.append(key[:12] + "…")
    return found


@pytest.fixture
def log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger writing JSON lines to a buffer, with Orbyt's redaction installed (and the
    previous record factory restored afterwards)."""
    previous = logging.getLogRecordFactory()
    install_redaction()
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("orbyt.test.redaction")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield logger, out
    finally:
        logger.handlers[:] = []
        logging.setLogRecordFactory(previous)


def lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


# ------------------------------------------------------------------------- redact(text)
@pytest.mark.parametrize("key", KEYS)
def test_key_shapes_alone_and_in_text(key: str) -> None:
    for text in (
        key,
        f"key={key}",
        f"using {key}.",
        f'{{"k": "{key}"}}',
        f"'{key}'",
        f"({key})",
        f"[{key}]",
        f"\n{key}\n",
        f"x:{key},y",
    ):
        assert fragments(redact(text)) == [], text


@pytest.mark.parametrize("key", [*KEYS, SHAPELESS])
@pytest.mark.parametrize(
    "template",
    [
        # headers as text
        "Authorization: Bearer {k}",
        "authorization: bearer {k}",
        "AUTHORIZATION=Bearer {k}",
        "x-api-key: {k}",
        "X-Api-Key: {k}",
        "x-goog-api-key: {k}",
        "X-Goog-Api-Key:{k}",
        "api_key={k}",
        "api-key: {k}",
        "apiKey: {k}",
        # headers in dict reprs and JSON
        "{{'authorization': 'Bearer {k}', 'accept': 'application/json'}}",
        '{{"Authorization": "Bearer {k}"}}',
        "{{'x-api-key': '{k}', 'anthropic-version': '2023-06-01'}}",
        '{{"x-goog-api-key": "{k}"}}',
        "{{'api_key': '{k}'}}",
        # headers as (name, value) byte tuples, as httpcore and h11 show them
        "[(b'authorization', b'Bearer {k}'), (b'accept', b'*/*')]",
        "[(b'x-api-key', b'{k}')]",
        "[(b'x-goog-api-key', b'{k}')]",
        "[('x-api-key', '{k}')]",
        # query-string keys
        "GET https://generativelanguage.googleapis.com/v1beta/models?key={k}",
        "POST /v1beta/models/gemini:generateContent?alt=sse&key={k}&x=1",
        "url='https://h/p?KEY={k}'",
        # bearer tokens anywhere
        "sent Bearer {k} upstream",
    ],
)
def test_header_and_url_forms(template: str, key: str) -> None:
    text = template.format(k=key)
    redacted = redact(text)
    assert fragments(redacted) == [], (text, redacted)


def test_what_is_not_a_key_survives() -> None:
    text = (
        "POST https://api.openai.com/v1/chat/completions model=gpt-5-mini status=200 "
        "request_id=9f3c2a1b x-request-id: req_5fc6 key_source=byok ttft_ms=41.2"
    )
    assert redact(text) == text
    assert redact("authorization failed") == "authorization failed"
    assert redact("sk-short") == "sk-short"  # too short to be a key


def test_redaction_is_idempotent() -> None:
    once = redact(f"Authorization: Bearer {OPENAI} ?key={GOOGLE} {ANTHROPIC}")
    assert redact(once) == once and fragments(once) == []


# ---------------------------------------------------------------------- through logging
def test_message_arguments_are_redacted_and_dropped(
    log: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, out = log
    logger.info("calling with %s and %r", OPENAI, {"x-api-key": SHAPELESS})
    logger.warning("headers: %s", {"authorization": f"Bearer {ANTHROPIC}"})
    logger.debug("url %s", f"https://g/v1beta/models/m:streamGenerateContent?key={GOOGLE}")
    logger.error(f"f-string {GATEWAY} {GOOGLE_AQ}")
    text = out.getvalue()
    assert fragments(text) == [], text
    assert len(lines(out)) == 4


def test_a_record_keeps_no_arguments() -> None:
    previous = logging.getLogRecordFactory()
    install_redaction()
    try:
        record = logging.getLogger("x").makeRecord(
            "x", logging.INFO, "f", 1, "k=%s", (OPENAI,), None
        )
    finally:
        logging.setLogRecordFactory(previous)
    assert record.args is None and fragments(str(record.msg)) == []
    assert fragments(repr(record.__dict__)) == []


def test_exceptions_and_tracebacks_are_redacted(log: tuple[logging.Logger, io.StringIO]) -> None:
    logger, out = log
    try:
        raise ValueError(f"upstream said: Incorrect API key provided: {OPENAI}")
    except ValueError:
        logger.exception("request failed")
    try:
        try:
            raise KeyError(f"x-api-key: {SHAPELESS}")
        except KeyError as inner:
            raise RuntimeError(f"wrapped {ANTHROPIC}") from inner
    except RuntimeError as exc:
        logger.error("failed: %s", exc, exc_info=True)
    request = httpx.Request(
        "GET", f"https://g.example/v1beta/models?key={GOOGLE}", headers={"x-goog-api-key": GOOGLE}
    )
    exc2 = httpx.ConnectError(f"cannot reach {request.url}", request=request)
    logger.warning("transport: %r", exc2, exc_info=exc2)
    text = out.getvalue()
    assert fragments(text) == [], text
    records = lines(out)
    assert "ValueError" in records[0]["exc"] and "Traceback" in records[0]["exc"]
    assert "RuntimeError" in records[1]["exc"] and "KeyError" in records[1]["exc"]


def test_structured_fields_are_redacted_too(log: tuple[logging.Logger, io.StringIO]) -> None:
    """`extra` fields the JSON formatter writes (model ids come from callers)."""
    logger, out = log
    logger.info(
        "request finished",
        extra={
            "model": f"myvllm/{OPENAI}",
            "provider": "openai",
            "status": 200,
            "key_id": "key_0123",
            "key_source": "byok",
            "latency_ms": 1.5,
        },
    )
    (record,) = lines(out)
    assert fragments(json.dumps(record)) == []
    assert record["status"] == 200 and record["latency_ms"] == 1.5
    assert record["provider"] == "openai" and record["key_id"] == "key_0123"


def test_every_logger_is_covered_including_third_party(
    log: tuple[logging.Logger, io.StringIO],
) -> None:
    _, out = log
    handler = logging.getLogger("orbyt.test.redaction").handlers[0]
    for name in ("httpx", "httpcore.http11", "arq.worker", "uvicorn.error", "asyncio"):
        other = logging.getLogger(name)
        saved = (other.handlers[:], other.level, other.propagate)
        other.handlers[:] = [handler]
        other.setLevel(logging.DEBUG)
        other.propagate = False
        try:
            other.debug(
                "send_request_headers %r", [(b"authorization", f"Bearer {OPENAI}".encode())]
            )
            other.info("job args %s", {"byok": ANTHROPIC})
        finally:
            other.handlers[:], other.level, other.propagate = saved
    assert len(lines(out)) == 10 and fragments(out.getvalue()) == []


def test_request_id_is_attached(log: tuple[logging.Logger, io.StringIO]) -> None:
    logger, out = log
    token = request_id_var.set("rid-123")
    try:
        logger.info("inside a request")
    finally:
        request_id_var.reset(token)
    logger.info("outside")
    first, second = lines(out)
    assert first["request_id"] == "rid-123" and "request_id" not in second


def test_a_broken_format_string_keeps_the_template(log: tuple[logging.Logger, io.StringIO]) -> None:
    logger, out = log
    logger.info("two %s %s but one", OPENAI)
    (record,) = lines(out)
    assert fragments(record["msg"]) == [] and "two" in record["msg"]


@pytest.mark.parametrize("index", range(len(logs._PATTERNS)))
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_the_clue_prefilter_never_skips_a_text_a_pattern_matches(index: int, data: Any) -> None:
    """`redact` skips the regexes when a text holds none of the clues; every text any
    pattern matches must therefore hold one (case-insensitively)."""
    pattern = logs._PATTERNS[index][0]
    text = data.draw(st.from_regex(pattern))
    assert pattern.search(text)
    assert not logs._clueless(text.lower())
