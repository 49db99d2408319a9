import json
import pickle

import orjson
import pytest

from orbyt.shared.secret import SealError, Secret, seal, unseal, weak_secret_reason

SECRET = "x" * 8 + "0123456789abcdefghijklmnopqrstuv"
KEY = "sk-ant-api03-" + "A" * 93 + "AA"


def test_secret_never_shows_itself() -> None:
    s = Secret(KEY)
    assert KEY not in repr(s) and KEY not in str(s) and KEY not in f"{s}" and KEY not in f"{s!r}"
    assert KEY not in repr({"k": s}) and s.reveal() == KEY


def test_secret_refuses_serialisation() -> None:
    with pytest.raises(TypeError):
        pickle.dumps(Secret(KEY))
    with pytest.raises(TypeError):
        orjson.dumps({"k": Secret(KEY)})
    with pytest.raises(TypeError):
        json.dumps({"k": Secret(KEY)})


def test_seal_round_trip_binds_the_request_id() -> None:
    blob = seal({"anthropic": KEY}, SECRET, "rid1")
    assert KEY.encode() not in blob
    assert unseal(blob, [SECRET], "rid1")["anthropic"].reveal() == KEY
    with pytest.raises(SealError):
        unseal(blob, [SECRET], "rid2")


def test_rotation_and_tampering() -> None:
    new = "y" * 8 + "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
    blob = seal({"openai": "sk-proj-abc"}, SECRET, "r")
    assert unseal(blob, [new, SECRET], "r")["openai"].reveal() == "sk-proj-abc"
    with pytest.raises(SealError):
        unseal(blob, [new], "r")
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(SealError):
        unseal(tampered, [SECRET], "r")


def test_weak_secrets_are_named() -> None:
    assert weak_secret_reason(None)
    assert weak_secret_reason("short")
    assert weak_secret_reason("a" * 64)
    assert weak_secret_reason(SECRET) is None
