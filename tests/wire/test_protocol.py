"""Shape checks (`wire.protocol`), and a stream with wrongly typed fields: one line naming the
field, the partial answer kept, never a traceback."""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx
import pytest

from nbchat.errors import MalformedStreamError
from nbchat.wire.client import ChatClient
from nbchat.wire.completion import completion_text
from nbchat.wire.config import ClientConfig
from nbchat.wire.protocol import (
    RESERVED_FIELDS,
    chunk_problem,
    completion_problem,
    error_code,
    error_detail,
    is_error_body,
    message_problem,
    usage_problem,
)

USAGE = {
    "prompt_tokens": 3,
    "completion_tokens": 2,
    "total_tokens": 5,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": None},
    "completion_tokens_details": {"reasoning_tokens": 1},
    "cost": 0.0001,  # OpenRouter's: not a token count, not checked
    "is_byok": False,
}
COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "m",
    "system_fingerprint": None,
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": None,
                "refusal": None,
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ],
                "reasoning_content": "provider extras are allowed",
            },
            "finish_reason": "tool_calls",
            "logprobs": None,
        }
    ],
    "usage": USAGE,
}
META = {"id": "chatcmpl-1", "created": 1, "model": "m", "system_fingerprint": "fp"}


def chunk(**choice: Any) -> dict[str, Any]:
    return {**META, "object": "chat.completion.chunk", "choices": [{"index": 0, **choice}]}


def test_reserved_fields():
    assert frozenset({"model", "messages", "stream", "stream_options"}) == RESERVED_FIELDS


def test_valid_shapes_have_no_problem():
    assert completion_problem(COMPLETION) is None
    assert usage_problem(USAGE) is None
    assert usage_problem(None) is None
    assert chunk_problem(chunk(delta={"content": "x"}, finish_reason=None)) is None
    assert chunk_problem({"choices": [], "usage": USAGE}) is None
    assert chunk_problem({"usage": USAGE}) is None  # a usage chunk without the empty list
    calls = [{"index": 0, "function": {"arguments": '{"a'}}]
    assert chunk_problem(chunk(delta={"tool_calls": calls})) is None
    assert chunk_problem(chunk(delta={}, logprobs={"content": [{"token": "a"}]})) is None


@pytest.mark.parametrize(
    ("usage", "problem"),
    [
        ("lots", "usage is text, not an object"),
        ([1], "usage is a list, not an object"),
        ({"prompt_tokens": "12"}, "usage.prompt_tokens is text, not a count"),
        ({"total_tokens": 1.5}, "usage.total_tokens is a number, not a count"),
        ({"completion_tokens": True}, "usage.completion_tokens is a boolean, not a count"),
        ({"completion_tokens": -1}, "usage.completion_tokens is negative"),
        ({"prompt_tokens_details": "x"}, "usage.prompt_tokens_details is text, not an object"),
        (
            {"completion_tokens_details": {"reasoning_tokens": "9"}},
            "usage.completion_tokens_details.reasoning_tokens is text, not a count",
        ),
    ],
)
def test_usage_problems(usage, problem):
    assert usage_problem(usage) == problem
    assert completion_problem({**COMPLETION, "usage": usage}) == problem
    assert chunk_problem({"choices": [], "usage": usage}) == problem


def changed(path: str, value: Any, base: dict[str, Any] = COMPLETION) -> dict[str, Any]:
    """A deep copy of ``base`` with the dotted ``path`` (list indexes as numbers) set."""
    result = copy.deepcopy(base)
    *parents, name = path.split(".")
    target: Any = result
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    if value is _DELETE:
        del target[int(name) if name.isdigit() else name]
    else:
        target[int(name) if name.isdigit() else name] = value
    return result


_DELETE = object()


M = "choices[0].message"
CALL = f"{M}.tool_calls[0]"


@pytest.mark.parametrize(
    ("path", "value", "problem"),
    [
        ("choices", None, "choices is missing"),
        ("choices", "x", "choices is text, not a list"),
        ("choices.0", [], "choices[0] is a list, not an object"),
        ("choices.0.index", None, "choices[0].index is null, not an index"),
        ("choices.0.index", "0", "choices[0].index is text, not an index"),
        ("choices.0.index", -1, "choices[0].index is negative"),
        ("choices.0.index", False, "choices[0].index is a boolean, not an index"),
        ("choices.0.message", _DELETE, f"{M} is missing"),
        ("choices.0.message", "hi", f"{M} is text, not an object"),
        ("choices.0.message.content", ["a"], f"{M}.content[0] is text, not an object"),
        (
            "choices.0.message.content",
            [{"type": "text", "text": 5}],
            f"{M}.content[0].text is a number, not text",
        ),
        (
            "choices.0.message.content",
            [{"type": "thinking", "thinking": [{"type": "text", "text": None}]}],
            f"{M}.content[0].thinking[0].text is null, not text",
        ),
        (
            "choices.0.message.content",
            [{"type": "thinking"}],
            f"{M}.content[0].thinking is null, not text",
        ),
        ("choices.0.message.content", 7, f"{M}.content is a number, not text"),
        ("choices.0.message.role", {}, f"{M}.role is an object, not text"),
        ("choices.0.message.refusal", 1, f"{M}.refusal is a number, not text"),
        ("choices.0.message.tool_calls", {}, f"{M}.tool_calls is an object, not a list"),
        ("choices.0.message.tool_calls.0", "f", f"{CALL} is text, not an object"),
        ("choices.0.message.tool_calls.0.id", 5, f"{CALL}.id is a number, not text"),
        ("choices.0.message.tool_calls.0.function", "f", f"{CALL}.function is text, not an object"),
        (
            "choices.0.message.tool_calls.0.function.arguments",
            {"a": 1},
            f"{CALL}.function.arguments is an object, not text",
        ),
        ("choices.0.finish_reason", ["stop"], "choices[0].finish_reason is a list, not text"),
        ("choices.0.logprobs", "x", "choices[0].logprobs is text, not an object"),
        (
            "choices.0.logprobs",
            {"content": 1},
            "choices[0].logprobs.content is a number, not a list",
        ),
        ("id", 12, "id is a number, not text"),
        ("model", ["m"], "model is a list, not text"),
        ("created", "now", "created is text, not a number"),
        ("created", True, "created is a boolean, not a number"),
    ],
)
def test_completion_problems(path, value, problem):
    assert completion_problem(changed(path, value)) == problem


def test_not_an_object():
    assert completion_problem([COMPLETION]) == "the completion is a list, not an object"
    assert chunk_problem("x") == "the chunk is text, not an object"


@pytest.mark.parametrize(
    ("choice", "problem"),
    [
        ({"delta": "x"}, "choices[0].delta is text, not an object"),
        ({"delta": ["x"]}, "choices[0].delta is a list, not an object"),
        ({"delta": {"content": ["a"]}}, "choices[0].delta.content[0] is text, not an object"),
        ({"delta": {"tool_calls": [{"index": None}]}}, "tool_calls[0].index is null, not an index"),
        ({"delta": {"tool_calls": [{"index": -2}]}}, "tool_calls[0].index is negative"),
    ],
)
def test_chunk_problems(choice, problem):
    found = chunk_problem(chunk(**choice))
    assert found is not None and found.endswith(problem)


def test_error_bodies():
    assert is_error_body({"error": {"message": "m"}})
    assert not is_error_body({"error": None, "choices": []})
    assert not is_error_body([{"error": 1}])
    assert error_detail({"error": {"message": " spaced \n"}}) == "spaced"
    assert error_detail({"error": "plain"}) == "plain"
    assert error_detail({"detail": "FastAPI's"}) == "FastAPI's"
    assert error_detail({"error": {"code": 500}}) == '{"code": 500}'
    assert error_detail({"error": 42}) == "42"
    assert error_detail({"error": None}) == ""
    assert error_detail("text") == ""
    assert error_code({"error": {"code": "context_length_exceeded", "type": "x"}}) == (
        "context_length_exceeded"
    )
    assert error_code({"error": {"type": "invalid_request_error"}}) == "invalid_request_error"
    assert error_code({"error": "x"}) == ""


# -- end to end: a stream with a wrongly typed field ---------------------------------------------


def sse_client(raw: bytes) -> ChatClient:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=raw, headers={"content-type": "text/event-stream"})

    config = ClientConfig(base_url="http://mock.test/v1", max_retries=0)
    return ChatClient(config, transport=httpx.MockTransport(handler), sleep=lambda _: None)


def event(obj: Any) -> bytes:
    return f"data: {json.dumps(obj)}\n\n".encode()


def text_chunk(text: str) -> dict[str, Any]:
    return chunk(delta={"content": text}, finish_reason=None)


BAD_CHUNKS = [
    ({"choices": [], "usage": {"prompt_tokens": "12"}}, "usage.prompt_tokens is text, not a count"),
    ({"choices": [], "usage": "lots"}, "usage is text, not an object"),
    ({"choices": [{"index": None, "delta": {"content": "x"}}]}, "choices[0].index is null"),
    ({"choices": [{"index": "0", "delta": {"content": "x"}}]}, "choices[0].index is text"),
    ({"choices": [{"index": -1, "delta": {"content": "x"}}]}, "choices[0].index is negative"),
    ({"choices": [{"index": False, "delta": {"content": "x"}}]}, "choices[0].index is a boolean"),
    ({"choices": [{"index": True, "delta": {"content": "x"}}]}, "choices[0].index is a boolean"),
    (text_chunk(["a", "b"]), "choices[0].delta.content[0] is text, not an object"),
    (text_chunk([{"type": "text", "text": 1}]), "delta.content[0].text is a number, not text"),
    (text_chunk(5), "choices[0].delta.content is a number, not text"),
    (text_chunk({"t": "x"}), "choices[0].delta.content is an object, not text"),
    (chunk(delta={}, finish_reason=["stop"]), "choices[0].finish_reason is a list, not text"),
    (chunk(delta={"role": 1}), "choices[0].delta.role is a number, not text"),
    (chunk(delta={"tool_calls": {"0": {}}}), "delta.tool_calls is an object, not a list"),
    (chunk(delta={"tool_calls": ["f"]}), "choices[0].delta.tool_calls[0] is text, not an object"),
    (chunk(delta={"tool_calls": [{"function": "f"}]}), "tool_calls[0].function is text"),
    (chunk(delta={"content": "x"}, logprobs={"content": "x"}), "logprobs.content is text"),
    (chunk(delta="x"), "choices[0].delta is text, not an object"),
    (chunk(delta=["x"]), "choices[0].delta is a list, not an object"),
    ({"choices": {"0": {"delta": {"content": "x"}}}}, "choices is an object, not a list"),
    ({"choices": "x"}, "choices is text, not a list"),
    ({"choices": [5]}, "choices[0] is a number, not an object"),
]


@pytest.mark.parametrize("first", [False, True], ids=["after-text", "first"])
@pytest.mark.parametrize(("bad", "named"), BAD_CHUNKS)
def test_a_wrongly_typed_chunk_is_one_line_naming_the_field(bad, named, first):
    # After 10 good chunks the per-token fast path is in use; as the first, the checked path.
    good = [] if first else [text_chunk(f"w{i} ") for i in range(10)]
    raw = b"".join(
        map(event, [*good, bad, text_chunk("never"), chunk(delta={}, finish_reason="stop")])
    )
    with sse_client(raw + b"data: [DONE]\n\n") as client:
        stream = client.stream({"model": "m", "messages": []})
        received: list[str] = []
        with pytest.raises(MalformedStreamError) as info:
            received.extend(stream)
    message = str(info.value)
    assert named in message
    assert message.startswith("The server sent a malformed chunk: ")
    assert "\n" not in message
    expected = "".join(f"w{i} " for i in range(len(good)))
    assert "".join(received) == expected
    assert info.value.partial_text == expected
    assert completion_text(stream.partial()) == expected
    assert stream.completion is None


def test_metadata_is_checked_where_it_is_kept():
    # id, created, model and fingerprint are taken from the first chunks (checked); later
    # chunks' copies are never read, so the per-token path does not look at them.
    bad_first = {**text_chunk("x"), "model": ["m"]}
    with sse_client(event(bad_first)) as client, pytest.raises(MalformedStreamError) as info:
        list(client.stream({"model": "m", "messages": []}))
    assert "model is a list, not text" in str(info.value)
    later = [
        text_chunk("a "),
        {**text_chunk("b"), "model": ["m"]},
        chunk(delta={}, finish_reason="stop"),
    ]
    with sse_client(b"".join(map(event, later)) + b"data: [DONE]\n\n") as client:
        stream = client.stream({"model": "m", "messages": []})
        assert list(stream) == ["a ", "b"]
    assert stream.completion is not None and stream.completion["model"] == "m"


def test_a_role_must_be_one_the_protocol_knows():
    # A role is shown (`%chat history`) and sent back: a server cannot invent one.
    hostile = {"choices": [{"index": 0, "delta": {"role": "<img src=x onerror=alert(1)>"}}]}
    assert "role is not one of assistant" in chunk_problem(hostile)
    assert message_problem({"role": "tool", "content": "x", "tool_call_id": "c"}) is None
    assert "role is not one of" in message_problem({"role": "<b>", "content": "x"})
