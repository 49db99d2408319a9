"""An upstream quoting a key back, in any field and any form: the gateway never repeats it
(issue 10, items 4 and 5)."""

from __future__ import annotations

import base64
import urllib.parse

import pytest

from orbyt.shared.errors import Disposition, OrbytError, UpstreamError
from orbyt.shared.secret import Secret
from orbyt.worker.byok import SCRUB_WINDOW, scrub, scrub_error
from tests.integration.leakscan import encodings

OPENAI = "sk-proj-" + "a1B2c3D4e5F6" * 6 + "T3BlbkFJ" + "g7H8i9J0k1L2" * 6
SHAPELESS = "Zq4Wm8Rt2Xy6Kp0Lv3Nb7Hc1Fd5Gs9Jw+/=~%"  # characters URL-encoding changes


def forms(key: str) -> dict[str, str]:
    raw = key.encode()
    out = {
        "plain": key,
        "prefix24": key[:24],
        "suffix24": key[-24:],
        "middle24": key[5:29],
        "url": urllib.parse.quote(key, safe=""),
        "url+": urllib.parse.quote_plus(key),
        "hex": raw.hex(),
        "HEX": raw.hex().upper(),
        "hex prefix": raw[:24].hex(),
    }
    for pad, lead in enumerate((b"", b":", b"k:")):
        out[f"base64@{pad}"] = base64.b64encode(lead + raw).decode()
        out[f"base64url@{pad}"] = base64.urlsafe_b64encode(lead + raw).decode().rstrip("=")
        out[f"base64 prefix@{pad}"] = base64.b64encode(lead + raw[:24]).decode()
    out["basic auth"] = base64.b64encode(b"user:" + raw).decode()
    out["bearer"] = base64.b64encode(b"Authorization: Bearer " + raw).decode()
    return out


def hidden(text: str, key: str) -> bool:
    """No 16-character window of any encoding of the key (leakscan's list) is left."""
    for data in encodings(key).values():
        form = data.decode()
        for i in range(len(form) - SCRUB_WINDOW + 1):
            if form[i : i + SCRUB_WINDOW] in text:
                return False
    return True


@pytest.mark.parametrize("key", [OPENAI, SHAPELESS])
@pytest.mark.parametrize("form", list(forms(OPENAI)))
def test_every_form_and_fragment_is_masked(key: str, form: str) -> None:
    echoed = forms(key)[form]
    text = f"Incorrect API key provided: {echoed}. See https://x/help."
    out = scrub(text, [Secret(key)])
    assert hidden(out, key), out
    assert out.startswith("Incorrect API key provided: ") and out.endswith(". See https://x/help.")
    assert "***" in out


def test_ordinary_text_and_short_stubs_are_left_alone() -> None:
    text = "Rate limit reached for gpt-5-mini in organization org-fake: Limit 30000, Used 29950."
    assert scrub(text, [Secret(OPENAI), Secret(SHAPELESS), None]) == text
    assert scrub("short key abc", [Secret("abc")]) == "short key abc"
    assert scrub("a fragment sk-proj-a1B2c3 is not a window", [Secret(OPENAI)]).endswith(
        "sk-proj-a1B2c3 is not a window"
    )


@pytest.mark.parametrize("status", [400, 401, 403, 429, 500])
@pytest.mark.parametrize("byok", [False, True])
def test_every_field_of_an_error_is_scrubbed(status: int, byok: bool) -> None:
    b64 = base64.b64encode(OPENAI.encode()).decode()
    err = UpstreamError(
        f"openai: bad key {OPENAI[:24]}",
        status=status,
        disposition=Disposition.AUTH if status in (401, 403) else Disposition.FINAL,
        type=f"invalid_request_error {OPENAI}",
        param=urllib.parse.quote(OPENAI, safe=""),
        code=b64,
        headers={"x-echo": OPENAI.encode().hex(), f"x-{OPENAI[:30]}": "1"},
        retry_after=2.0,
    )
    err.add_note(f"upstream said {OPENAI}")
    try:
        raise err from ValueError(OPENAI)
    except UpstreamError:
        pass
    assert scrub_error(err, Secret(OPENAI), byok=byok) is err
    shown = repr(err.body()) + str(err) + repr(err.args) + repr(err.response_headers())
    shown += repr(vars(err)) + err.type
    assert hidden(shown, OPENAI), shown
    assert err.__cause__ is None and err.__context__ is None
    assert err.status == status and err.retry_after == 2.0
    if byok and status in (401, 403):
        assert err.message.startswith("openai: the provider refused the API key given in")
        assert f"(HTTP {status})" in err.message
    else:
        assert err.message.startswith("openai: bad key ***")


def test_a_byok_auth_refusal_keeps_the_providers_status_and_code() -> None:
    err = UpstreamError(
        "Incorrect API key provided: sk-pro************************wxyz.",
        status=401,
        disposition=Disposition.AUTH,
        code="invalid_api_key",
    )
    scrub_error(err, [Secret(OPENAI)], byok=True)
    assert (err.status, err.code, err.type) == (401, "invalid_api_key", "authentication_error")
    assert "wxyz" not in err.message and "extra.byok" in err.message
    pool = UpstreamError(
        "Incorrect API key provided: sk-p***z.", status=401, disposition=Disposition.AUTH
    )
    assert scrub_error(pool, None).message == "Incorrect API key provided: sk-p***z."


def test_any_orbyt_error_and_several_keys() -> None:
    plain = OrbytError(f"x {OPENAI} y {SHAPELESS}", param=SHAPELESS[:20] + "abcd")
    scrub_error(plain, [Secret(OPENAI), None, Secret(SHAPELESS)])
    assert hidden(str(plain) + repr(plain.body()), OPENAI)
    assert hidden(str(plain) + repr(plain.body()), SHAPELESS)
    untouched = OrbytError("no key here", code="c")
    assert scrub_error(untouched, None).message == "no key here"
