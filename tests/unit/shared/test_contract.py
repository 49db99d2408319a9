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


def test_typed_metas_keep_the_wire_bytes_and_decode_as_plain_dicts() -> None:
    """The metas are TypedDicts where written; the bytes are exactly those of the plain
    dicts the API has always read (key order included)."""
    from orbyt.shared.contract import ErrorMeta, RouteMeta, StartMeta

    start = StartMeta(worker="host:1")
    route = RouteMeta(model="openai/gpt-4o", provider="openai", attempts=2, key_source="byok")
    done = RouteMeta(
        model="openai/gpt-4o",
        provider="openai",
        attempts=1,
        key_source="pool",
        usage={"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8},
    )
    error = ErrorMeta(status=429, headers={"retry-after": "2"}, attempts=3)
    assert encode_frame(START, 0, start) == b'S0|{"worker":"host:1"}\n'
    assert encode_frame(DELTA, 1, route, b"data: x\n\n") == (
        b'D1|{"model":"openai/gpt-4o","provider":"openai","attempts":2,"key_source":"byok"}'
        b"\ndata: x\n\n"
    )
    assert encode_frame(DONE, 2, done) == (
        b'F2|{"model":"openai/gpt-4o","provider":"openai","attempts":1,"key_source":"pool",'
        b'"usage":{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8}}\n'
    )
    assert encode_frame(ERROR, 3, error, b"{}") == (
        b'E3|{"status":429,"headers":{"retry-after":"2"},"attempts":3}\n{}'
    )
    for kind, meta in ((START, start), (DELTA, route), (DONE, done), (ERROR, error)):
        frame = decode_frame(encode_frame(kind, 7, meta))
        assert type(frame.meta) is dict and frame.meta == dict(meta)


def test_a_job_without_a_kind_is_a_chat_job() -> None:
    from orbyt.shared.contract import CHAT, EMBEDDINGS, JOB_KINDS, ChatJob, job_kind

    job = ChatJob(
        rid="r",
        channel="c",
        body={},
        plan=[],
        strategy="ordered",
        key_id="k",
        deadline=0.0,
        byok=False,
        retry=0,
        stream=False,
        include_usage=False,
    )
    assert job_kind(job) == CHAT
    assert job_kind(ChatJob(**{**job, "kind": EMBEDDINGS})) == EMBEDDINGS in JOB_KINDS
