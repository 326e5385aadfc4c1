"""Streams that break or bend the protocol (`nbchat.wire.client`, `nbchat.wire.stream`): errors
mid-stream, no [DONE], odd splits and malformed events, servers that ignore stream: true or
answer something else, and wrongly typed whole completions."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from nbchat.errors import (
    APIError,
    MalformedStreamError,
    ProtocolError,
    StreamErrorEvent,
    TruncatedStreamError,
)
from nbchat.wire.completion import completion_text, finish_reason

from support.chat_client import BODY, LONG, LONG_PIECES, content_chunk, mock_client, sse, sse_client
from support.fake_openai import Fault, answer_for


def test_error_event_mid_stream(client, fake):
    fake.script(Fault(error_after=2))
    with pytest.raises(StreamErrorEvent) as info:
        list(client.stream(LONG))
    assert info.value.partial_text == "".join(LONG_PIECES[:2])
    assert "The server had an error while processing your request." in str(info.value)
    assert len(fake.chat_requests) == 1


def test_stream_without_done_is_truncated(client, fake):
    fake.script(Fault(no_done=True))
    stream = client.stream(LONG)
    with pytest.raises(TruncatedStreamError, match="DONE") as info:
        list(stream)
    assert info.value.partial_text == answer_for(LONG)
    assert finish_reason(info.value.partial) is None
    assert len(fake.chat_requests) == 1


def test_raw_sse_odd_splits(client, fake):
    base = {"id": "chatcmpl-raw", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    pieces = ["Line\u2028sep ", "para\u2029sep ", "nel\x85 ", '😀 "quoted" ', "end"]

    def event(delta: dict[str, Any], finish: str | None = None, space: str = " ") -> bytes:
        chunk = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return f"data:{space}{json.dumps(chunk, ensure_ascii=False)}\r\n\r\n".encode()

    raw = b"".join(
        [
            b": keep-alive\r\n\r\n",
            event({"role": "assistant", "content": ""}, space=""),
            *(event({"content": p}, space=" " * (i % 2)) for i, p in enumerate(pieces)),
            b": keep-alive\n\n",
            event({}, "stop"),
            b"data:[DONE]\r\n\r\n",
        ]
    )
    assert "\u2028".encode() in raw  # raw, not escaped
    fake.script(Fault(raw_sse=raw, write_sizes=[1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 1, 1]))
    stream = client.stream(BODY)
    assert list(stream) == pieces
    assert completion_text(stream.completion) == "".join(pieces)
    assert stream.completion["id"] == "chatcmpl-raw"


def test_malformed_event(client, fake):
    raw = sse(content_chunk("ok ")) + b"data: {not json\n\n" + sse(content_chunk("never"))
    fake.script(Fault(raw_sse=raw + b"data: [DONE]\n\n"))
    stream = client.stream(BODY)
    received: list[str] = []
    with pytest.raises(MalformedStreamError) as info:
        received.extend(stream)
    assert received == ["ok "]
    assert info.value.partial_text == "ok "
    assert stream._response.is_closed


# -- servers that bend the protocol (MockTransport) ------------------------------------------------


def test_server_ignoring_stream_true_still_yields_the_text():
    completion = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "whole"}}],
    }
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(200, json=completion)

    with mock_client(handler) as client:
        stream = client.stream(BODY)
        assert list(stream) == ["whole"]
    assert stream.completion == completion
    assert seen[0]["stream"] is True


def test_stream_answered_with_non_json():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>hi</html>", headers={"content-type": "text/html"})

    with mock_client(handler) as client, pytest.raises(ProtocolError):
        list(client.stream(BODY))


def test_chat_answered_with_something_else():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"object": "list"})

    with mock_client(handler) as client, pytest.raises(ProtocolError):
        client.chat(BODY)


def test_events_glued_without_blank_lines():
    raw = (
        b"data: " + json.dumps(content_chunk("a ")).encode() + b"\n"
        b"data: " + json.dumps(content_chunk("b")).encode() + b"\n\n"
        b'data: {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}\n\n'
        b"data: [DONE]\n\n"
    )

    with sse_client(raw) as client:
        stream = client.stream(BODY)
        assert list(stream) == ["a ", "b"]
    assert finish_reason(stream.completion) == "stop"


def test_stream_ending_after_finish_reason_without_done_is_accepted():
    raw = sse(content_chunk("x"), {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})

    with sse_client(raw) as client:
        stream = client.stream(BODY)
        assert list(stream) == ["x"]
    assert completion_text(stream.completion) == "x"


def test_last_event_without_blank_line_is_flushed():
    raw = sse(content_chunk("x")) + b'data: {"choices": [{"index": 0, "delta": {"content": "y"}}]}'

    with sse_client(raw) as client:
        stream = client.stream(BODY)
        with pytest.raises(TruncatedStreamError) as info:
            list(stream)
    assert info.value.partial_text == "xy"


@pytest.mark.parametrize(
    "data",
    [b"[1, 2]", b'"text"', b"42", b'{"choices": "oops"}', b'{"choices": [{"delta": "x"}]}'],
)
def test_events_that_are_not_chunks(data):
    raw = sse(content_chunk("ok")) + b"data: " + data + b"\n\ndata: [DONE]\n\n"

    with sse_client(raw) as client:
        stream = client.stream(BODY)
        with pytest.raises(MalformedStreamError) as info:
            list(stream)
    assert info.value.partial_text == "ok"


def test_a_stream_with_no_answer_is_not_a_complete_answer(make_client, fake):
    fake.script(Fault(raw_sse=b"data: [DONE]\n\n"))
    stream = make_client().stream(BODY)
    with pytest.raises(TruncatedStreamError, match="without an answer"):
        list(stream)
    assert stream.completion is None


def test_error_object_in_a_200_body_is_an_api_error_clipped_to_one_line(client, fake):
    message = "quota exceeded\n" + "for this project " * 40
    fake.script(Fault(status=200, body={"error": {"message": message, "type": "quota"}}))
    with pytest.raises(APIError) as info:
        client.chat(BODY)
    assert type(info.value) is APIError
    text = str(info.value)
    assert text.startswith("The server reported an error: quota exceeded for this project")
    assert "\n" not in text and len(text) < 260
    assert info.value.request_id and info.value.request_id in text


def test_error_glued_among_events_is_reported():
    error = {"error": {"message": "overloaded"}}
    raw = (
        b"data: " + json.dumps(content_chunk("a ")).encode() + b"\n"
        b"data: " + json.dumps(error).encode() + b"\n\n"
    )
    with sse_client(raw) as client, pytest.raises(StreamErrorEvent, match="overloaded") as info:
        list(client.stream(BODY))
    assert info.value.partial_text == "a "


@pytest.mark.parametrize("where", ["event", "body"])
def test_json_nested_too_deeply_is_a_protocol_error(where):
    deep = b"[" * 100_000 + b"]" * 100_000
    raw = sse(content_chunk("a ")) + b"data: " + deep + b"\n\n"

    def handler(request: httpx.Request) -> httpx.Response:
        if where == "body":
            return httpx.Response(200, content=deep, headers={"content-type": "application/json"})
        return httpx.Response(200, content=raw, headers={"content-type": "text/event-stream"})

    with mock_client(handler) as client, pytest.raises(ProtocolError) as info:
        list(client.stream(BODY))
    assert "\n" not in str(info.value)
    assert len(str(info.value)) < 300


def test_a_bom_before_the_first_event_keeps_it(client, fake):
    # The byte order mark arrives split over three reads: the first answer chunk must survive.
    raw = b"\xef\xbb\xbf" + sse(content_chunk("first "), content_chunk("second"))
    fake.script(Fault(raw_sse=raw + b"data: [DONE]\n\n", write_sizes=[1, 1, 1, 4]))
    stream = client.stream(BODY)
    assert list(stream) == ["first ", "second"]
    assert completion_text(stream.completion) == "first second"


# -- wrongly typed whole completions ----------------------------------------------------------


def whole(**changes: Any) -> dict[str, Any]:
    """A valid non-streamed completion with ``changes`` applied (dotted paths into choice 0)."""
    completion: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "peer-small",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "hi"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
    for path, value in changes.items():
        *parents, name = path.split("__")
        target = completion
        for parent in parents:
            target = target["choices"][0] if parent == "choice" else target[parent]
        target[name] = value
    return completion


@pytest.mark.parametrize(
    ("completion", "named"),
    [
        (whole(usage={"prompt_tokens": "12"}), "usage.prompt_tokens is text, not a count"),
        (whole(usage="lots"), "usage is text, not an object"),
        (whole(choice__index=None), "choices[0].index is null, not an index"),
        (whole(choice__message__content=["a"]), "message.content[0] is text, not an object"),
        (whole(choice__finish_reason=["stop"]), "choices[0].finish_reason is a list, not text"),
        (whole(choice__message=None), "choices[0].message is missing"),
        (whole(choices={"0": {}}), "choices is an object, not a list"),
    ],
)
@pytest.mark.parametrize("streamed", [False, True], ids=["chat", "stream-ignored"])
def test_a_wrongly_typed_completion_is_a_protocol_error(client, fake, completion, named, streamed):
    fake.script(Fault(status=200, body=completion))
    with pytest.raises(ProtocolError) as info:
        if streamed:  # the server ignores "stream": true and answers a whole completion
            list(client.stream(BODY))
        else:
            client.chat(BODY)
    assert type(info.value) is ProtocolError
    assert named in str(info.value)
    assert "\n" not in str(info.value)
