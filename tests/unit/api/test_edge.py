"""Response headers render whatever the input (issue 10 item 2): a model id in CJK, an
emoji, a bidi control, CR/LF/NUL or 10 kB never turns an answer into a 500."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from orbyt.api.edge import (
    error_response,
    header_list,
    header_value,
    json_response,
    render_exception,
    route_headers,
)
from orbyt.shared.errors import RateLimited

ODD = [
    "模型",
    "gpt-🙂",
    "safe\u202eevil",
    "a\r\nx-injected: 1",
    "nul\x00byte",
    "tab\there",
    "模型%41 (a literal percent, encoded too)",
    "é" * 5000,
    "x" * 10_000,
]


@pytest.mark.parametrize("value", ODD)
def test_any_value_renders_as_visible_ascii_that_decodes_back(value: str) -> None:
    raw = header_value(value)
    assert all(0x20 <= b < 0x7F for b in raw)
    assert unquote(raw.decode()) == value


@pytest.mark.parametrize("value", ["openai/gpt-5-mini", "2", "text with spaces", "a;b=c,d", "100%"])
def test_visible_ascii_goes_out_unchanged(value: str) -> None:
    assert header_value(value) == value.encode()


def test_route_headers_of_any_model_render() -> None:
    meta = {"model": "模型/🙂", "provider": "openai", "attempts": 3, "key_source": "byok"}
    headers = dict(route_headers("rid-1", meta))
    assert unquote(headers[b"x-orbyt-model"].decode()) == "模型/🙂"
    assert headers[b"x-orbyt-attempts"] == b"3" and headers[b"x-request-id"] == b"rid-1"
    assert dict(route_headers("rid-2", None)) == {b"x-request-id": b"rid-2"}


def test_error_and_json_responses_render_any_header() -> None:
    err = RateLimited("slow down", headers={"x-note": "ünïcode ☕"})
    response = error_response(err, "rid-3")
    headers = dict(response.raw_headers)
    assert unquote(headers[b"x-note"].decode()) == "ünïcode ☕"
    assert headers[b"x-request-id"] == b"rid-3"
    plain = json_response(b"{}", 200, {"x-orbyt-model": "gpt-🙂"})
    assert dict(plain.raw_headers)[b"content-type"] == b"application/json"
    assert header_list({"X-Mixed": "ok"}) == [(b"x-mixed", b"ok")]


def test_an_unexpected_exception_is_an_openai_shaped_500() -> None:
    response = render_exception(KeyError("boom"), "/v1/chat/completions", "rid-4")
    assert response.status_code == 500
    assert b"The gateway hit an internal error." in bytes(response.body)
