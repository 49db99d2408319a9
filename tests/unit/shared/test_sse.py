from orbyt.shared.sse import SSEDecoder, SSEEvent, encode_data


def feed_all(chunks: list[bytes]) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events = [e for c in chunks for e in decoder.feed(c)]
    return events + decoder.flush()


def test_data_only_events() -> None:
    assert feed_all([b"data: {}\n\ndata: [DONE]\n\n"]) == [
        SSEEvent(None, "{}"),
        SSEEvent(None, "[DONE]"),
    ]


def test_event_lines_and_multiline_data() -> None:
    raw = b"event: message_start\ndata: a\ndata: b\n\n"
    assert feed_all([raw]) == [SSEEvent("message_start", "a\nb")]


def test_split_anywhere_including_crlf_and_utf8() -> None:
    raw = "data: héllo ✓\r\n\r\ndata: two\r\n\r\n".encode()
    expected = [SSEEvent(None, "héllo ✓"), SSEEvent(None, "two")]
    for cut in range(1, len(raw)):
        assert feed_all([raw[:cut], raw[cut:]]) == expected, cut
    assert feed_all([bytes([b]) for b in raw]) == expected


def test_comments_ids_and_cr_only_lines_are_handled() -> None:
    raw = b": keep-alive\r\rid: 7\rretry: 10\rdata: x\r\r"
    assert feed_all([raw]) == [SSEEvent(None, "x")]


def test_unterminated_last_event_is_flushed() -> None:
    assert feed_all([b"data: tail"]) == [SSEEvent(None, "tail")]


def test_encode_is_data_only() -> None:
    assert encode_data(b'{"a":1}') == b'data: {"a":1}\n\n'
