"""What providers stream besides plain text, folded by `CompletionBuilder` (its rare path,
`wire.choice_fold`): typed parts, tool calls without index, provider fields, errors beside the
choices, empty meta, thinking between tags, split surrogate pairs."""

from __future__ import annotations

from typing import Any

import pytest

from nbchat.wire.completion import CompletionBuilder, reported_error, whole_completion

META = {"id": "c-1", "object": "chat.completion.chunk", "created": 17, "model": "m"}


def chunk(finish: str | None = None, meta: dict[str, Any] | None = None, **delta: Any) -> dict:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return {**(META if meta is None else meta), "choices": [choice]}


def folded(*chunks: dict[str, Any]) -> tuple[CompletionBuilder, list[str], list[str]]:
    """The builder, the texts `add` returned, and the thinking taken after each chunk."""
    builder = CompletionBuilder()
    texts, thoughts = [], []
    for piece in chunks:
        texts.append(builder.add(piece))
        thoughts.append(builder.take_reasoning())
    return builder, texts, thoughts


def message_of(builder: CompletionBuilder) -> dict[str, Any]:
    return builder.result()["choices"][0]["message"]


# -- content as typed parts --------------------------------------------------------------------


def thinking_part(text: str) -> dict[str, Any]:
    return {"type": "thinking", "thinking": [{"type": "text", "text": text}]}


def test_typed_parts_are_folded_apart_and_kept_as_parts():
    builder, texts, thoughts = folded(
        chunk(role="assistant", content=""),
        chunk(content=[thinking_part("Salt ")]),
        chunk(content=[thinking_part("comes from rocks.")]),
        chunk(content=[{"type": "text", "text": "Rocks "}]),
        chunk(content="erode."),  # later text may come plain
        chunk(finish="stop"),
    )
    assert "".join(texts) == "Rocks erode." and builder.text == "Rocks erode."
    assert "".join(thoughts) == "Salt comes from rocks." == builder.reasoning
    assert message_of(builder) == {
        "role": "assistant",
        "content": [
            thinking_part("Salt comes from rocks."),
            {"type": "text", "text": "Rocks erode."},
        ],
    }


# -- tool calls --------------------------------------------------------------------------------


def call(**fields: Any) -> dict[str, Any]:
    return {"type": "function", **fields}


def test_tool_calls_without_index_start_with_a_new_id_and_continue_without_one():
    builder, _, _ = folded(
        chunk(tool_calls=[call(id="a", function={"name": "f", "arguments": '{"x": '})]),
        chunk(tool_calls=[{"function": {"arguments": "1}"}}]),
        chunk(tool_calls=[call(id="b", function={"name": "g", "arguments": "{}"})]),
        chunk(tool_calls=[{"id": "b", "function": {"arguments": ""}}]),  # its own id again
        chunk(finish="stop"),
    )
    calls = message_of(builder)["tool_calls"]
    assert [(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in calls] == [
        ("a", "f", '{"x": 1}'),
        ("b", "g", "{}"),
    ]


def test_a_name_repeated_in_every_delta_is_taken_once():
    head = {"index": 0, "id": "a", "type": "function"}
    builder, _, _ = folded(
        chunk(tool_calls=[{**head, "function": {"name": "lookup", "arguments": ""}}]),
        chunk(tool_calls=[{**head, "function": {"name": "lookup", "arguments": '{"c": '}}]),
        chunk(tool_calls=[{**head, "function": {"name": "lookup", "arguments": '"x"}'}}]),
    )
    (made,) = message_of(builder)["tool_calls"]
    assert made["function"] == {"name": "lookup", "arguments": '{"c": "x"}'}
    assert (made["id"], made["type"]) == ("a", "function")


FUNCTION = {"name": "f", "arguments": "{}"}


def test_a_tool_calls_provider_fields_are_kept():
    signature = {"google": {"thought_signature": "c2ln"}}
    builder, _, _ = folded(
        chunk(tool_calls=[call(id="a", function=FUNCTION, extra_content=signature)]),
        chunk(tool_calls=[call(id="b", function=FUNCTION)]),
    )
    first, second = message_of(builder)["tool_calls"]
    assert first["extra_content"] == signature and "extra_content" not in second


# -- provider fields on the message -------------------------------------------------------------


def test_reasoning_details_are_merged_by_index_and_kept():
    detail = {"type": "reasoning.text", "index": 0, "format": "x"}
    builder, _, thoughts = folded(
        chunk(reasoning="Think ", reasoning_details=[{**detail, "text": "Think "}]),
        chunk(reasoning="hard.", reasoning_details=[{**detail, "text": "hard."}]),
        chunk(reasoning_details=[{**detail, "text": "", "signature": "sig"}]),
        chunk(reasoning_details=[{"type": "reasoning.encrypted", "data": "ZW5j", "index": 1}]),
        chunk(content="Done.", finish="stop"),
    )
    message = message_of(builder)
    assert message["reasoning"] == "Think hard." == "".join(thoughts)
    assert message["reasoning_details"] == [
        {**detail, "text": "Think hard.", "signature": "sig"},
        {"type": "reasoning.encrypted", "data": "ZW5j", "index": 1},
    ]


# -- errors beside the choices -------------------------------------------------------------------


@pytest.mark.parametrize("finish", [None, "error"])
def test_an_error_beside_the_choices_is_kept_as_the_streams_failure(finish):
    error = {"code": 502, "message": "Token limit reached"}
    builder, texts, _ = folded(
        chunk(content="Partial "),
        {**chunk(content="", finish=finish), "error": error},
    )
    assert builder.error == error
    assert "".join(texts) == builder.text == "Partial "


def test_finish_reason_error_alone_is_a_failure():
    builder, _, _ = folded(chunk(content="Partial"), chunk(finish="error"))
    assert builder.error == {}


def test_a_whole_answer_reports_an_error_beside_its_choices():
    whole = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "x"}}]}
    assert reported_error(whole) is None
    assert reported_error({**whole, "error": {"message": "No"}}) == {"message": "No"}
    failed = {"choices": [{"index": 0, "message": {}, "finish_reason": "error"}]}
    assert reported_error(failed) == {}


# -- empty strings and zeros are missing ----------------------------------------------------------


def test_empty_meta_is_missing_and_the_model_named_later_is_kept():
    empty = {"id": "", "object": "", "created": 0, "model": ""}
    later = {**META, "model": "gpt-5-nano-2025-08-07"}
    builder, _, _ = folded(
        {**empty, "choices": [], "prompt_filter_results": []},
        chunk(meta=later, role="assistant", content=""),
        chunk(meta=later, content="Hi", finish="stop"),
    )
    result = builder.result()
    named = (result["id"], result["created"], result["model"])
    assert named == ("c-1", 17, "gpt-5-nano-2025-08-07")


# -- thinking between tags -------------------------------------------------------------------------


TAGGED = "<think>\nSalt from rocks.\n</think>\n\nRocks erode."


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 8, 100])
def test_thinking_between_tags_is_thinking_however_it_is_cut(size):
    pieces = [TAGGED[i : i + size] for i in range(0, len(TAGGED), size)]
    builder, texts, thoughts = folded(
        chunk(role="assistant", content=""),
        *[chunk(content=piece) for piece in pieces],
        chunk(finish="stop"),
    )
    assert "".join(texts) == "Rocks erode." == builder.text
    assert "".join(thoughts) == "\nSalt from rocks.\n" == builder.reasoning
    assert message_of(builder) == {
        "role": "assistant",
        "content": "Rocks erode.",
        "reasoning_content": "\nSalt from rocks.\n",
    }


@pytest.mark.parametrize(
    ("pieces", "content", "thinking"),
    [
        (["<think>Still thin", "king"], "", "Still thinking"),  # cut off: thinking
        (["<thi"], "<thi", None),  # the answer itself, which ended early
        (["  ", "<b>", "bold"], "  <b>bold", None),  # another tag opens it
        (["Text then <think>x</think>"], "Text then <think>x</think>", None),  # not at the start
    ],
)
def test_only_tags_that_open_the_answer_are_thinking(pieces, content, thinking):
    builder, _, _ = folded(*[chunk(content=piece) for piece in pieces])
    message = message_of(builder)
    assert message["content"] == content
    assert message.get("reasoning_content") == thinking


def test_a_whole_answer_opening_with_tags_is_split_and_others_are_untouched():
    def whole(message: dict[str, Any]) -> dict[str, Any]:
        return {"choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}

    split = whole_completion(whole({"role": "assistant", "content": TAGGED}))
    assert split["choices"][0]["message"] == {
        "role": "assistant",
        "content": "Rocks erode.",
        "reasoning_content": "\nSalt from rocks.\n",
    }
    plain = whole({"role": "assistant", "content": "Rocks erode."})
    assert whole_completion(plain) is plain
    parsed = whole({"role": "assistant", "content": TAGGED, "reasoning_content": "Parsed."})
    assert whole_completion(parsed) is parsed, "a reasoning parser already split it"


# -- split surrogate pairs -------------------------------------------------------------------------


def test_surrogate_halves_in_two_chunks_are_joined_everywhere():
    high, low = "\ud83c", "\udf0a"  # 🌊
    builder, _, _ = folded(
        chunk(reasoning_content=f"Hmm {high}"),
        chunk(reasoning_content=f"{low}."),
        chunk(content=f"Wave {high}"),
        chunk(content=f"{low}!"),
        chunk(tool_calls=[{"index": 0, "id": "a", "function": {"arguments": f'"{high}'}}]),
        chunk(tool_calls=[{"index": 0, "function": {"arguments": f'{low}"'}}]),
        chunk(content=" lone \ud83c end", finish="stop"),
    )
    message = message_of(builder)
    assert message["content"] == "Wave 🌊! lone \ufffd end"
    assert message["reasoning_content"] == "Hmm 🌊."
    assert message["tool_calls"][0]["function"]["arguments"] == '"🌊"'
    assert builder.text == message["content"]
