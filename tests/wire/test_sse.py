"""The byte-level SSE decoder: line endings, split reads, fields, and a property test."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nbchat.wire.sse import BOM, ServerSentEvent, SSEDecoder, iter_sse


def decode(*reads: bytes) -> list[ServerSentEvent]:
    """Feed the reads one by one, then flush, collecting every event."""
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    for read in reads:
        events.extend(decoder.feed(read))
    events.extend(decoder.flush())
    return events


def decode_data(*reads: bytes) -> list[str]:
    """The client's fast path: data only, with the same flush at the end."""
    decoder = SSEDecoder()
    found = [data for read in reads for data in decoder.feed_data(read)]
    return found + [event.data for event in decoder.flush()]


def every_split(data: bytes) -> list[tuple[bytes, bytes]]:
    return [(data[:i], data[i:]) for i in range(len(data) + 1)]


def datas(events: list[ServerSentEvent]) -> list[str]:
    return [e.data for e in events]


STREAM = (
    b'data: {"a": 1}\n\n'
    b": keep-alive\n\n"
    b'data:{"b": "\xc3\xa9\xf0\x9f\x98\x80"}\r\n\r\n'
    b"event: ping\rid: 7\rretry: 1500\rdata: x\r\r"
    b"data: [DONE]\n\n"
)
EXPECTED = [
    ServerSentEvent('{"a": 1}'),
    ServerSentEvent('{"b": "é😀"}'),
    ServerSentEvent("x", event="ping", id="7", retry=1500),
    ServerSentEvent("[DONE]", id="7", retry=1500),  # id and retry persist, event does not
]


def test_whole_stream_decodes():
    assert decode(STREAM) == EXPECTED


@pytest.mark.parametrize("reads", every_split(STREAM), ids=lambda r: str(len(r[0])))
def test_split_at_every_byte(reads):
    assert decode(*reads) == EXPECTED


def test_one_byte_per_read():
    assert decode(*(STREAM[i : i + 1] for i in range(len(STREAM)))) == EXPECTED


def test_events_are_returned_as_soon_as_complete():
    decoder = SSEDecoder()
    assert decoder.feed(b"data: one\n") == []
    assert decoder.feed(b"\ndata: tw") == [ServerSentEvent("one")]
    assert decoder.feed(b"o\n\n") == [ServerSentEvent("two")]
    assert decoder.flush() == []


@pytest.mark.parametrize("line", [b"data: hi", b"data:hi"])
def test_data_with_and_without_space(line):
    assert datas(decode(line + b"\n\n")) == ["hi"]


def test_only_one_space_is_stripped():
    assert datas(decode(b"data:  two spaces\n\ndata:\tTab\n\n")) == [" two spaces", "\tTab"]


def test_comments_and_keep_alives_are_skipped():
    stream = b": keep-alive\n\n:\n\ndata: a\n: in the middle\ndata: b\n\n: bye\n\n"
    assert datas(decode(stream)) == ["a\nb"]


def test_multi_line_data_is_joined_with_newline():
    assert datas(decode(b"data: one\ndata:two\ndata\ndata: \n\n")) == ["one\ntwo\n\n"]


def test_field_without_colon_and_unknown_fields():
    assert datas(decode(b"data\nfoo: bar\nbogus\n\n")) == [""]


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"])
def test_each_line_ending(ending):
    stream = ending.join([b"data: a", b"", b"data: b", b"data: c", b"", b""])
    assert datas(decode(stream)) == ["a", "b\nc"]


def test_cr_at_end_of_read_and_lf_at_start_of_next_is_one_line_ending():
    # "\r" | "\n" is one CRLF: neither a spurious blank line (an early dispatch) nor two.
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\ndata: b\r") == []
    assert decoder.feed(b"\n\r") == []
    assert decoder.feed(b"\n") == [ServerSentEvent("a\nb")]
    assert decoder.flush() == []


def test_cr_line_end_then_crlf_blank_line():
    # "data: a\r" "\r" "\n": the CR ends the data line, then "\r\n" is one blank line.
    assert decode(b"data: a\r", b"\r", b"\n", b"data: b\n\n") == [
        ServerSentEvent("a"),
        ServerSentEvent("b"),
    ]


def test_unicode_line_separators_do_not_split_lines():
    payload = {"content": "a\u2028b\u2029c\x85d"}
    line = "data: " + json.dumps(payload, ensure_ascii=False)
    # str.splitlines would cut this line in pieces (what httpx's iter_lines does) ...
    assert len(line.splitlines()) > 1
    # ... SSE lines end only at CR or LF, so the JSON survives whole.
    events = decode(line.encode() + b"\n\n")
    assert [json.loads(e.data) for e in events] == [payload]


def test_unicode_line_separators_split_across_reads():
    raw = ("data: " + json.dumps({"c": "x\u2028y"}, ensure_ascii=False) + "\n\n").encode()
    for reads in every_split(raw):
        assert [json.loads(e.data) for e in decode(*reads)] == [{"c": "x\u2028y"}]


def test_event_id_retry_fields():
    events = decode(b"event: delta\nid: 42\nretry: 3000\ndata: x\n\ndata: y\n\n")
    assert events == [
        ServerSentEvent("x", event="delta", id="42", retry=3000),
        ServerSentEvent("y", event="message", id="42", retry=3000),
    ]


def test_invalid_retry_and_id_with_nul_are_ignored():
    events = decode(b"retry: soon\nretry: 1\xc2\xb2\nid: a\x00b\ndata: x\n\n")
    assert events == [ServerSentEvent("x")]


def test_event_type_without_data_is_reset_at_blank_line():
    assert decode(b"event: ping\n\ndata: x\n\n") == [ServerSentEvent("x")]


@pytest.mark.parametrize(
    "tail", [b"data: last", b"data: last\n", b"data: last\r", b"data: last\r\n"]
)
def test_event_without_blank_line_is_flushed_at_eof(tail):
    decoder = SSEDecoder()
    assert decoder.feed(b"data: first\n\n" + tail) == [ServerSentEvent("first")]
    assert decoder.flush() == [ServerSentEvent("last")]
    assert decoder.flush() == []


def test_iter_sse_flushes():
    assert datas(list(iter_sse([b"data: a\n\nda", b"ta: b"]))) == ["a", "b"]


def test_empty_input():
    assert decode() == []
    assert decode(b"", b"") == []
    assert decode(b"\n\n\r\n") == []


def test_multibyte_utf8_split_inside_a_character():
    raw = "data: 😀é\n\n".encode()
    for reads in every_split(raw):
        assert datas(decode(*reads)) == ["😀é"]


# -- a byte order mark at the start of the body ---------------------------------------------


def test_bom_constant():
    assert "\ufeff".encode() == BOM


@pytest.mark.parametrize("reads", every_split(BOM + STREAM)[:8], ids=lambda r: str(len(r[0])))
def test_a_leading_bom_is_dropped_however_it_is_split(reads):
    assert decode(*reads) == EXPECTED
    assert decode_data(*reads) == [event.data for event in EXPECTED]


def test_a_bom_split_over_three_reads():
    decoder = SSEDecoder()
    assert decoder.feed_data(BOM[:1]) == []
    assert decoder.feed_data(BOM[1:2]) == []
    assert decoder.feed_data(BOM[2:] + b"data: first\n\n") == ["first"]
    decoder = SSEDecoder()
    assert [decoder.feed(bytes([byte])) for byte in BOM] == [[], [], []]
    assert decoder.feed(b"data: first\n\n") == [ServerSentEvent("first")]


def test_only_the_first_bom_is_dropped():
    # The specification strips one, at the very start; later ones are data.
    assert datas(decode(BOM + BOM + b"data: x\n\n")) == []  # "\ufeffdata" is no field name
    assert datas(decode(b"data: x\n\n" + BOM + b"data: y\n\n")) == ["x"]
    assert datas(decode(b"data: \xef\xbb\xbfx\n\n")) == ["\ufeffx"]


def test_something_like_a_bom_is_not_dropped():
    assert datas(decode(b"\xef\xbb", b"data: x\n\n")) == []  # broken first line, as before
    assert decode(b"\xef") == []  # a body that ends inside a would-be BOM
    assert datas(decode(b"\n", BOM, b"data: x\n\n")) == []  # not at the start


# -- property: any split of a valid stream decodes to the same events -------------------------

TEXT = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from(["\u2028", "\u2029", "\x85", "\r", "\n", '"', "\\", "😀", "\x00"]),
    ),
    max_size=30,
)
# Flat tuples draw much faster than a composite: (texts of the choices, comment line before the
# event or None, blank line after the comment, space after "data:", multi-line data).
EVENT = st.tuples(
    st.lists(TEXT, max_size=3),
    st.sampled_from([None, ": keep-alive", ":", ": ping 😀"]),
    st.booleans(),
    st.booleans(),
    st.booleans(),
)
STREAMS = st.tuples(
    st.lists(EVENT, max_size=8),
    st.sampled_from(["\n", "\r\n", "\r"]),
    st.lists(st.integers(0, 10**6), max_size=12),
    st.booleans(),  # a byte order mark first
)


def render(events: list[tuple], ending: str) -> tuple[list[dict], bytes]:
    """A valid SSE stream of chunk dicts, and the chunks it carries.

    Multi-line events (indented JSON, one ``data:`` line per line) make a spurious dispatch
    between two lines of one event visible as a broken event.
    """
    chunks = []
    lines: list[str] = []
    for texts, comment, blank, space, multiline in events:
        chunk = {"id": "chatcmpl-1", "choices": [{"delta": {"content": t}} for t in texts]}
        chunks.append(chunk)
        if comment is not None:
            lines += [comment, ""] if blank else [comment]
        text = json.dumps(chunk, ensure_ascii=False, indent=1 if multiline else None)
        lines += ["data:" + " " * space + part for part in text.split("\n")]
        lines.append("")
    lines += ["data: [DONE]", ""]
    return chunks, "".join(line + ending for line in lines).encode()


@settings(max_examples=150, deadline=None, database=None)
@given(STREAMS)
def test_property_any_split_decodes_the_same(stream):
    events, ending, positions, bom = stream
    chunks, raw = render(events, ending)
    whole = decode(raw)
    if bom:  # with a BOM first, any split must still decode like the events alone
        raw = BOM + raw
    assert [json.loads(e.data) for e in whole[:-1]] == chunks
    assert whole[-1].data == "[DONE]"
    cuts = sorted(p % (len(raw) + 1) for p in positions)
    bounds = [0, *cuts, len(raw)]
    reads = [raw[a:b] for a, b in itertools.pairwise(bounds)]
    assert decode(*reads) == whole
    assert decode_data(*reads) == [event.data for event in whole]
