import pytest

from orbyt.shared.contract import DELTA, DONE, ERROR, HEARTBEAT, START, decode_frame, encode_frame


@pytest.mark.parametrize("kind", [START, DELTA, HEARTBEAT, DONE, ERROR])
def test_round_trip(kind: bytes) -> None:
    payload = b'data: {"x":"a|b\\nc"}\n\n'
    frame = decode_frame(encode_frame(kind, 42, {"model": "m|x", "n": 1}, payload))
    assert (frame.kind, frame.seq, frame.meta, frame.payload) == (
        kind,
        42,
        {"model": "m|x", "n": 1},
        payload,
    )


def test_no_meta_and_empty_payload() -> None:
    frame = decode_frame(encode_frame(HEARTBEAT, 0))
    assert frame.meta is None and frame.payload == b""


@pytest.mark.parametrize("raw", [b"", b"X1|\n", b"D|\n", b"Dx|\n", b"D1|{bad\n", b"D1"])
def test_malformed_frames_raise_value_error(raw: bytes) -> None:
    with pytest.raises(ValueError):
        decode_frame(raw)
