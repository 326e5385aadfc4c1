"""Folding streamed chunks into one chat.completion dict (`CompletionBuilder`)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from nbchat.errors import ProtocolError
from nbchat.wire.completion import CompletionBuilder, completion_text, finish_reason

META = {
    "id": "chatcmpl-9",
    "object": "chat.completion.chunk",
    "created": 1700000009,
    "model": "peer-small",
    "system_fingerprint": "fp_x",
}


def chunk(*choices: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {**META, "choices": list(choices), **extra}


def delta(index: int = 0, finish: str | None = None, **fields: Any) -> dict[str, Any]:
    return {"index": index, "delta": fields, "logprobs": None, "finish_reason": finish}


def fold(*chunks: dict[str, Any]) -> tuple[CompletionBuilder, list[str]]:
    builder = CompletionBuilder()
    texts = [builder.add(c) for c in chunks]
    return builder, texts


def test_text_is_folded_and_deltas_returned():
    builder, texts = fold(
        chunk(delta(role="assistant", content="")),
        chunk(delta(content="Hello")),
        chunk(delta(content=", world")),
        chunk(delta(finish="stop")),
    )
    assert texts == ["", "Hello", ", world", ""]
    assert builder.text == "Hello, world"
    assert builder.finish_reason == "stop"
    result = builder.result()
    assert result["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello, world"},
            "finish_reason": "stop",
            "logprobs": None,
        }
    ]
    assert {k: result[k] for k in ("id", "created", "model", "system_fingerprint")} == {
        k: META[k] for k in ("id", "created", "model", "system_fingerprint")
    }
    assert result["object"] == "chat.completion"
    assert "usage" not in result
    assert completion_text(result) == "Hello, world"
    assert finish_reason(result) == "stop"


def test_role_only_first_delta():
    builder, texts = fold(chunk(delta(role="assistant")))
    assert texts == [""]
    assert builder.text == ""
    assert builder.finish_reason is None
    assert builder.result()["choices"][0]["message"] == {"role": "assistant", "content": ""}


def test_length_finish_reason_is_kept():
    builder, _ = fold(chunk(delta(content="cut")), chunk(delta(finish="length")))
    assert finish_reason(builder.result()) == "length"


def test_usage_chunk_with_empty_choices():
    usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    builder, texts = fold(
        chunk(delta(content="a b"), usage=None),
        chunk(delta(finish="stop"), usage=None),
        chunk(usage=usage),
    )
    assert texts == ["a b", "", ""]
    assert builder.usage == usage
    result = builder.result()
    assert result["usage"] == usage
    assert len(result["choices"]) == 1
    assert completion_text(result) == "a b"


def test_no_chunks_gives_an_empty_completion():
    result = CompletionBuilder().result()
    assert completion_text(result) == ""
    assert finish_reason(result) is None
    assert result["id"] is None


def call(index: int, **fields: Any) -> dict[str, Any]:
    return {"index": index, **fields}


def test_tool_calls_accumulate_by_index_interleaved():
    builder, texts = fold(
        chunk(delta(role="assistant", content=None)),
        chunk(
            delta(
                tool_calls=[
                    call(
                        0,
                        id="call_a",
                        type="function",
                        function={"name": "weather", "arguments": ""},
                    )
                ]
            )
        ),
        chunk(
            delta(
                tool_calls=[
                    call(
                        1, id="call_b", type="function", function={"name": "time", "arguments": ""}
                    )
                ]
            )
        ),
        chunk(delta(tool_calls=[call(0, function={"arguments": '{"city": '})])),
        chunk(delta(tool_calls=[call(1, function={"arguments": '{"tz": "UTC"}'})])),
        chunk(delta(tool_calls=[call(0, function={"arguments": '"Paris"}'})])),
        chunk(delta(finish="tool_calls")),
    )
    assert texts == [""] * 7
    message = builder.result()["choices"][0]["message"]
    assert message == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_a",
                "type": "function",
                "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
            },
            {
                "id": "call_b",
                "type": "function",
                "function": {"name": "time", "arguments": '{"tz": "UTC"}'},
            },
        ],
    }
    assert builder.finish_reason == "tool_calls"


def test_tool_calls_in_one_delta_and_out_of_order_indexes():
    builder, _ = fold(
        chunk(
            delta(
                tool_calls=[
                    call(1, id="b", function={"name": "g", "arguments": "{}"}),
                    call(0, id="a", function={"name": "f", "arguments": "{"}),
                ]
            )
        ),
        chunk(delta(tool_calls=[call(0, function={"arguments": "}"})])),
    )
    calls = builder.result()["choices"][0]["message"]["tool_calls"]
    assert [(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in calls] == [
        ("a", "f", "{}"),
        ("b", "g", "{}"),
    ]


def test_text_and_tool_calls_keep_the_text():
    builder, _ = fold(
        chunk(delta(content="Let me check.")),
        chunk(delta(tool_calls=[call(0, id="c", function={"name": "f", "arguments": "{}"})])),
    )
    message = builder.result()["choices"][0]["message"]
    assert message["content"] == "Let me check."
    assert len(message["tool_calls"]) == 1


def test_refusal():
    builder, texts = fold(
        chunk(delta(role="assistant", refusal="")),
        chunk(delta(refusal="I can't ")),
        chunk(delta(refusal="help with that.")),
        chunk(delta(finish="stop")),
    )
    assert texts == ["", "", "", ""]
    message = builder.result()["choices"][0]["message"]
    assert message == {"role": "assistant", "content": "", "refusal": "I can't help with that."}


def test_two_choices():
    builder, texts = fold(
        chunk(delta(0, role="assistant", content=""), delta(1, role="assistant", content="")),
        chunk(delta(1, content="B1 ")),
        chunk(delta(0, content="A1 ")),
        chunk(delta(0, content="A2"), delta(1, content="B2")),
        chunk(delta(1, finish="length")),
        chunk(delta(0, finish="stop")),
    )
    assert texts == ["", "", "A1 ", "A2", "", ""]  # only choice 0 is shown live
    choices = builder.result()["choices"]
    assert [(c["index"], c["message"]["content"], c["finish_reason"]) for c in choices] == [
        (0, "A1 A2", "stop"),
        (1, "B1 B2", "length"),
    ]


def test_choice_one_only_still_sorted():
    builder, _ = fold(chunk(delta(1, content="x")))
    assert builder.text == ""
    assert [c["index"] for c in builder.result()["choices"]] == [1]


def test_logprobs_are_concatenated():
    lp1 = {"token": "a", "logprob": -0.1}
    lp2 = {"token": "b", "logprob": -0.2}
    first = delta(content="a")
    first["logprobs"] = {"content": [lp1]}
    second = delta(content="b")
    second["logprobs"] = {"content": [lp2]}
    builder, _ = fold(chunk(first), chunk(second))
    assert builder.result()["choices"][0]["logprobs"] == {"content": [lp1, lp2]}


def test_a_server_without_fingerprint_is_not_asked_per_token():
    first = chunk(delta(content="a"))
    del first["system_fingerprint"]
    rest = [dict(first, choices=[{"index": 0, "delta": {"content": "b"}}]) for _ in range(20)]
    builder, _ = fold(first, *rest)
    assert builder._want_meta is False, "gave up looking after a few chunks"
    last = chunk(delta(finish="stop"))
    builder.add(last)
    assert builder.result()["system_fingerprint"] == last["system_fingerprint"]


def test_streamed_fold_has_the_non_streamed_shape():
    text = "Reply #1 to: hi"
    usage = {"prompt_tokens": 1, "completion_tokens": 4, "total_tokens": 5}
    non_streamed = {
        "id": META["id"],
        "object": "chat.completion",
        "created": META["created"],
        "model": META["model"],
        "system_fingerprint": META["system_fingerprint"],
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": usage,
    }
    builder, _ = fold(
        chunk(delta(role="assistant", content="")),
        *(chunk(delta(content=p)) for p in ["Reply ", "#1 ", "to: ", "hi"]),
        chunk(delta(finish="stop")),
        chunk(usage=usage),
    )
    assert builder.result() == non_streamed


def test_late_system_fingerprint_is_picked_up():
    first = chunk(delta(content="a"))
    del first["system_fingerprint"]
    builder, _ = fold(first, chunk(delta(content="b")))
    assert builder.result()["system_fingerprint"] == "fp_x"


def test_completion_helpers_on_odd_shapes():
    assert completion_text({}) == ""
    assert completion_text({"choices": []}) == ""
    assert completion_text({"choices": [{"message": {"content": None}}]}) == ""
    assert finish_reason({"choices": []}) is None


# -- wrongly typed chunks: named, and nothing folded ---------------------------------------------


def warmed() -> CompletionBuilder:
    """A builder past its first chunks, so the per-token fast path is in use."""
    builder, _ = fold(chunk(delta(role="assistant", content="")), chunk(delta(content="a")))
    assert builder._want_meta is False
    return builder


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        (chunk(delta(content=["x"])), "choices[0].delta.content[0] is text, not an object"),
        (chunk(delta(content=5)), "choices[0].delta.content is a number, not text"),
        (chunk({"index": False, "delta": {"content": "x"}}), "choices[0].index is a boolean"),
        (chunk({"index": None, "delta": {"content": "x"}}), "choices[0].index is null"),
        (chunk({"index": 0, "delta": "x"}), "choices[0].delta is text, not an object"),
        (chunk(delta(content="x"), usage="many"), "usage is text, not an object"),
        ({"choices": {"x": 1}}, "choices is an object, not a list"),
        ({"choices": "x"}, "choices is text, not a list"),
        (["not", "a", "chunk"], "the chunk is a list, not an object"),
    ],
)
@pytest.mark.parametrize("fresh", [True, False], ids=["checked-path", "fast-path"])
def test_a_wrongly_typed_chunk_raises_and_changes_nothing(bad, named, fresh):
    builder = CompletionBuilder() if fresh else warmed()
    before = builder.result()
    with pytest.raises(ProtocolError, match=re.escape(named)):
        builder.add(bad)
    assert builder.result() == before


def test_a_boolean_index_never_lands_in_choice_zero():
    builder = warmed()
    with pytest.raises(ProtocolError):
        builder.add(chunk({"index": False, "delta": {"content": "x"}}))
    assert builder.text == "a"


def test_completion_helpers_never_raise_on_odd_types():
    odd: list[Any] = [
        None,
        [],
        "text",
        {"choices": "x"},
        {"choices": [None]},
        {"choices": [{"message": "hi", "finish_reason": ["stop"]}]},
        {"choices": [{"message": {"content": ["part"]}, "finish_reason": 3}]},
    ]
    for completion in odd:
        assert completion_text(completion) == ""
        assert finish_reason(completion) is None


@pytest.mark.parametrize(
    "padding",
    [
        {"content": None},  # DeepSeek: null content beside every piece of thinking
        {"role": "assistant"},  # the role again with every token
        {"content": "", "role": "assistant"},
    ],
)
def test_padded_deltas_take_the_fast_path_and_fold_the_same(padding, monkeypatch):
    stream = [
        chunk({"index": 0, "delta": {"role": "assistant", "content": ""}}),
        *[chunk(delta(reasoning_content=f"t{i} ", **padding)) for i in range(3)],
        *[chunk(delta(**{**padding, "content": f"a{i} "})) for i in range(3)],
        chunk({"index": 0, "delta": {}, "finish_reason": "stop"}),
    ]
    fast = CompletionBuilder()
    texts = [fast.add(piece) for piece in stream]
    checked = CompletionBuilder()
    for piece in stream:
        checked._add_checked(piece)
    assert fast.result() == checked.result()
    assert "".join(texts) == "a0 a1 a2 "
    message = fast.result()["choices"][0]["message"]
    assert message["reasoning_content"] == "t0 t1 t2 "
    checked_calls = []
    original = CompletionBuilder._add_checked

    def counted(self: CompletionBuilder, piece: dict[str, Any]) -> str:
        checked_calls.append(piece)
        return original(self, piece)

    monkeypatch.setattr(CompletionBuilder, "_add_checked", counted)
    fold(*stream)
    # The first text decides whether a <think> tag opens the answer; every padded token after
    # it took the fast path.
    assert checked_calls == [stream[0], stream[4], stream[-1]]
