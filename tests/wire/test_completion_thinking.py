"""Streamed thinking folded apart from the answer (`nbchat.wire.completion.CompletionBuilder`,
`has_answer`), in every field providers spell it; a streamed and a whole answer go back alike."""

from __future__ import annotations

from typing import Any

import pytest

from nbchat.errors import ProtocolError
from nbchat.wire.completion import CompletionBuilder, has_answer
from nbchat.wire.messages import REASONING_FIELDS, reasoning_of, wire

# -- CompletionBuilder: thinking folded apart from the answer ---------------------------------

FULL_META = {"id": "chatcmpl-1", "created": 1, "model": "thinker", "system_fingerprint": "fp"}
# No fingerprint: the builder keeps looking for it, so the first chunks take the checked path.
SHORT_META = {"id": "chatcmpl-1", "created": 1, "model": "thinker"}


def chunk(meta: dict[str, Any], index: int = 0, finish: str | None = None, **delta: Any) -> dict:
    choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
    return {**meta, "object": "chat.completion.chunk", "choices": [choice]}


paths = pytest.mark.parametrize("meta", [FULL_META, SHORT_META], ids=["fast-path", "checked-path"])
fields = pytest.mark.parametrize("field", REASONING_FIELDS)


@paths
@fields
def test_interleaved_thinking_and_answer_are_folded_apart(meta, field):
    builder = CompletionBuilder()
    returned = [
        builder.add(chunk(meta, role="assistant", content="")),
        builder.add(chunk(meta, **{field: "Let me "})),
        builder.add(chunk(meta, **{field: "think. "})),
        builder.add(chunk(meta, content="The answer")),
        builder.add(chunk(meta, **{field: "Check it. "})),
        builder.add(chunk(meta, content=" is 4.")),
        builder.add(chunk(meta, finish="stop")),
    ]
    assert returned == ["", "", "", "The answer", "", " is 4.", ""], "add() returns answer text"
    assert builder.text == "The answer is 4."
    assert builder.reasoning == "Let me think. Check it. "
    message = builder.result()["choices"][0]["message"]
    assert message == {
        "role": "assistant",
        "content": "The answer is 4.",
        field: "Let me think. Check it. ",
    }, "kept under the field it came in, and only that one"


@paths
def test_deepseeks_deltas_with_a_null_partner_field_fold_the_same(meta):
    builder = CompletionBuilder()
    builder.add(chunk(meta, role="assistant", content=None, reasoning_content=""))
    builder.add(chunk(meta, content=None, reasoning_content="Hmm. "))
    builder.add(chunk(meta, content=None, reasoning_content="Yes."))
    assert builder.add(chunk(meta, content="4", reasoning_content=None)) == "4"
    builder.add(chunk(meta, content="", reasoning_content=None, finish="stop"))
    message = builder.result()["choices"][0]["message"]
    assert message == {"role": "assistant", "content": "4", "reasoning_content": "Hmm. Yes."}


@paths
@fields
def test_take_reasoning_hands_out_only_what_is_new_of_the_first_choice(meta, field):
    builder = CompletionBuilder()
    builder.add(chunk(meta, role="assistant", content=""))
    assert builder.take_reasoning() == ""
    builder.add(chunk(meta, **{field: "one "}))
    builder.add(chunk(meta, **{field: "two "}))
    builder.add(chunk(meta, index=1, **{field: "elsewhere "}))
    assert builder.take_reasoning() == "one two "
    assert builder.take_reasoning() == "", "taken once"
    builder.add(chunk(meta, content="answer"))
    assert builder.take_reasoning() == "", "answer text is not thinking"
    builder.add(chunk(meta, **{field: "three"}))
    assert builder.take_reasoning() == "three"
    assert builder.reasoning == "one two three", "the whole thinking stays"
    second = builder.result()["choices"][1]["message"]
    assert second[field] == "elsewhere " and builder.text == "answer"


@paths
@fields
def test_a_stream_that_changes_spelling_keeps_one_field_the_first(meta, field):
    other = next(name for name in REASONING_FIELDS if name != field)
    builder = CompletionBuilder()
    builder.add(chunk(meta, role="assistant", content=""))
    builder.add(chunk(meta, **{field: "first "}))
    builder.add(chunk(meta, **{other: "second"}))
    builder.add(chunk(meta, content="done", finish="stop"))
    message = builder.result()["choices"][0]["message"]
    assert message == {"role": "assistant", "content": "done", field: "first second"}


@paths
def test_empty_thinking_adds_no_field(meta):
    builder = CompletionBuilder()
    builder.add(chunk(meta, role="assistant", content=""))
    builder.add(chunk(meta, reasoning_content=""))
    builder.add(chunk(meta, reasoning=""))
    builder.add(chunk(meta, content="plain", finish="stop"))
    message = builder.result()["choices"][0]["message"]
    assert message == {"role": "assistant", "content": "plain"}
    assert reasoning_of(message) is None


@paths
@pytest.mark.parametrize("thought", [["a list"], {"text": "x"}, 7])
def test_thinking_that_is_not_text_is_refused_and_changes_nothing(meta, thought):
    builder = CompletionBuilder()
    builder.add(chunk(meta, role="assistant", content=""))
    builder.add(chunk(meta, reasoning="kept "))
    before = builder.result()
    with pytest.raises(ProtocolError, match="reasoning"):
        builder.add(chunk(meta, reasoning=thought))
    assert builder.result() == before and builder.take_reasoning() == "kept "


@fields
def test_thinking_alone_is_an_answer_but_a_role_alone_is_not(field):
    builder = CompletionBuilder()
    builder.add(chunk(FULL_META, role="assistant", content=""))
    assert not builder.has_answer
    builder.add(chunk(FULL_META, **{field: "cut off while thinking"}))
    assert builder.has_answer, "a reasoning-only answer cut off by max_tokens is still one"
    assert has_answer(builder.result())


@pytest.mark.parametrize(
    ("message", "finish", "expected"),
    [
        ({"role": "assistant", "content": "", "reasoning_content": "thought"}, None, True),
        ({"role": "assistant", "content": None, "reasoning": "thought"}, None, True),
        ({"role": "assistant", "content": "", "reasoning_content": ""}, None, False),
        ({"role": "assistant", "content": "", "reasoning": None}, None, False),
        ({"role": "assistant", "content": ""}, "length", True),
    ],
)
def test_has_answer_of_a_whole_completion_counts_thinking(message, finish, expected):
    completion = {"choices": [{"index": 0, "message": message, "finish_reason": finish}]}
    assert has_answer(completion) is expected


def test_a_streamed_and_a_whole_answer_go_back_the_same():
    builder = CompletionBuilder()
    for piece in ({"role": "assistant", "content": ""}, {"reasoning_content": "Sum. "}):
        builder.add(chunk(FULL_META, **piece))
    builder.add(chunk(FULL_META, content="4", finish="stop"))
    streamed = builder.result()["choices"][0]["message"]
    whole = {
        "role": "assistant",
        "content": "4",
        "reasoning_content": "Sum. ",
        "refusal": None,
        "annotations": [],
    }
    for reasoning in (False, True):
        assert wire(streamed, reasoning=reasoning) == wire(whole, reasoning=reasoning)
