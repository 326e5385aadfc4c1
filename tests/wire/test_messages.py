"""Messages as they go back to a provider (`nbchat.wire.messages`): rounds of tool calls, each
call paired with its result by id or by position (`tool_rounds`); the thinking, sent only when
asked and in the field it came in (`reasoning_of`, `wire`, `wire_turn`); provider fields that go
back only with it; and the padding a thinking model needs (`pad_reasoning`)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from nbchat.wire.messages import (
    REASONING_FIELDS,
    WIRE_FIELDS,
    carries_passback,
    pad_reasoning,
    reasoning_of,
    tool_rounds,
    wire,
    wire_turn,
)


def calling(*ids: str | None, name: str = "level") -> dict[str, Any]:
    """An assistant message calling ``name`` once per id (None: a call without an id)."""
    calls = []
    for number, call_id in enumerate(ids):
        call = {"type": "function", "function": {"name": name, "arguments": f'{{"n": {number}}}'}}
        calls.append(call if call_id is None else {"id": call_id, **call})
    return {"role": "assistant", "content": None, "tool_calls": calls}


def result(call_id: Any, content: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "content": content}


ANSWER = {"role": "assistant", "content": "done"}


def contents(messages: list[dict[str, Any]]) -> list[list[str | None]]:
    return [
        [None if found is None else found["content"] for found in round_.results]
        for round_ in tool_rounds(messages)
    ]


def test_unique_ids_pair_by_id_whatever_the_order() -> None:
    messages = [calling("a", "b"), result("b", "B"), result("a", "A"), ANSWER]
    (found,) = tool_rounds(messages)
    assert [r["content"] for r in found.results if r] == ["A", "B"]
    assert found.at == 0 and not found.by_position and found.answered and found.extra == 0


def test_ids_repeated_in_every_round_pair_within_their_round() -> None:
    # Some servers number each round's calls from 0: a later round's result is not this one's.
    first = [calling("call_0"), result("call_0", "first")]
    messages = [*first, calling("call_0"), result("call_0", "second"), ANSWER]
    assert contents(messages) == [["first"], ["second"]]
    assert not any(found.by_position for found in tool_rounds(messages))


def test_repeated_empty_or_missing_ids_pair_by_position_and_say_so() -> None:
    for ids, results in (
        (("dup", "dup"), [result("dup", "1"), result("dup", "2")]),
        (("", ""), [result("", "1"), result("", "2")]),
        ((None, None), [result("", "1"), result("", "2")]),
    ):
        (found,) = tool_rounds([calling(*ids), *results, ANSWER])
        assert [r["content"] for r in found.results if r] == ["1", "2"], ids
        assert found.by_position and found.answered


def test_a_single_call_without_an_id_is_its_results_own() -> None:
    (found,) = tool_rounds([calling(None), result("", "1"), ANSWER])
    assert found.answered and not found.by_position


def test_missing_results_and_results_of_no_call() -> None:
    (short,) = tool_rounds([calling(None, None), result("", "1"), ANSWER])
    assert [r and r["content"] for r in short.results] == ["1", None] and not short.answered
    (unmatched,) = tool_rounds([calling("a"), result("zzz", "?"), ANSWER])
    assert unmatched.results == [None] and unmatched.extra == 1
    (odd,) = tool_rounds([calling("a"), result(["a"], "a list is no id"), ANSWER])
    assert odd.results == [None] and odd.extra == 1


def test_calls_without_ids_go_back_with_their_results() -> None:
    """A server that gives no ids gets its calls back before their results: sending the results
    alone (as before) is a conversation providers refuse."""
    messages = [calling(None, None), result("", "1"), result("", "2"), ANSWER]
    sent = wire_turn(messages)
    assert len(sent[0]["tool_calls"]) == 2
    assert [m["role"] for m in sent] == ["assistant", "tool", "tool", "assistant"]


def test_calls_nobody_answered_go_back_as_text_alone() -> None:
    answered = [calling("a", "b"), result("a", "A"), result("b", "B"), ANSWER]
    assert wire_turn(answered) == answered, "unchanged when every call has its result"
    final = [{"role": "user", "content": "x"}, {**calling("a"), "content": "I would call"}]
    assert "tool_calls" not in wire_turn(final)[1]
    assert wire_turn([calling("a")])[0] == {"role": "assistant", "content": ""}


# -- reasoning_of, wire, wire_turn ------------------------------------------------------------

fields = pytest.mark.parametrize("field", REASONING_FIELDS)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (None, None),
        ({}, None),
        ({"role": "assistant", "content": "hi"}, None),
        ({"reasoning_content": ""}, None),
        ({"reasoning": ["not", "text"]}, None),
        ({"reasoning": "b"}, ("reasoning", "b")),
        ({"reasoning_content": "a", "reasoning": "b"}, ("reasoning_content", "a")),
        ({"reasoning_content": "", "reasoning": "b"}, ("reasoning", "b")),
    ],
)
def test_reasoning_of_finds_the_first_field_with_text(message, expected):
    assert reasoning_of(message) == expected


EVERYTHING = {
    "role": "assistant",
    "content": "The answer.",
    "name": "helper",
    "refusal": None,
    "annotations": [],
    "audio": None,
    "function_call": None,
    "reasoning_content": "Thinking.",
    "reasoning": "Also thinking.",
    "reasoning_details": [{"type": "reasoning.text", "text": "Thinking."}],
    "provider_specific": {"x": 1},
}


def test_wire_never_sends_unknown_fields_and_thinking_only_when_asked():
    original = copy.deepcopy(EVERYTHING)
    plain = wire(EVERYTHING)
    assert plain == {"role": "assistant", "content": "The answer.", "name": "helper"}
    assert set(plain) <= set(WIRE_FIELDS)
    with_it = wire(EVERYTHING, reasoning=True)
    assert with_it == {
        **plain,
        "reasoning_content": "Thinking.",  # one thinking field, the first found
        "reasoning_details": [{"type": "reasoning.text", "text": "Thinking."}],  # OpenRouter's
    }
    assert original == EVERYTHING, "the stored message is not changed"


@fields
def test_wire_sends_the_thinking_back_in_the_field_it_came_in(field):
    message = {"role": "assistant", "content": "4", field: "2 + 2"}
    assert wire(message, reasoning=True) == {"role": "assistant", "content": "4", field: "2 + 2"}
    assert wire(message) == {"role": "assistant", "content": "4"}


def test_wire_with_reasoning_changes_nothing_for_messages_without_thinking():
    for message in (
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "4", "reasoning_content": ""},
        {"role": "tool", "tool_call_id": "call_1", "content": "21.5"},
    ):
        assert wire(message, reasoning=True) == wire(message)
        assert set(wire(message, reasoning=True)) <= set(WIRE_FIELDS)


def test_wire_fills_null_content_unless_there_are_tool_calls():
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    assert wire({"role": "assistant", "content": None}) == {"role": "assistant", "content": ""}
    assert wire({"role": "assistant"}) == {"role": "assistant", "content": ""}
    assert wire({"role": "assistant", "content": None, "tool_calls": [call]}) == {
        "role": "assistant",
        "content": None,
        "tool_calls": [call],
    }
    assert wire({"role": "assistant", "content": None, "tool_calls": []}) == {
        "role": "assistant",
        "content": "",
    }, "an empty list of calls is no call"


def tool_turn(*, answered: bool, thinking: str = "I should look.") -> list[dict[str, Any]]:
    """A turn whose answer called a tool (with or without its result in the turn)."""
    call = {"id": "call_1", "type": "function", "function": {"name": "level", "arguments": "{}"}}
    turn: list[dict[str, Any]] = [
        {"role": "user", "content": "How high?"},
        {"role": "assistant", "content": None, "tool_calls": [call], "reasoning_content": thinking},
    ]
    if answered:
        turn += [
            {"role": "tool", "tool_call_id": "call_1", "content": "4.2"},
            {"role": "assistant", "content": "4.2 m.", "reasoning_content": "Read it."},
        ]
    return turn


def test_wire_turn_keeps_answered_tool_calls_and_their_results():
    turn = tool_turn(answered=True)
    sent = wire_turn(turn)
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "assistant"]
    assert sent[1] == {"role": "assistant", "content": None, "tool_calls": turn[1]["tool_calls"]}
    assert sent[2] == {"role": "tool", "tool_call_id": "call_1", "content": "4.2"}


def test_wire_turn_drops_tool_calls_nobody_answered():
    sent = wire_turn(tool_turn(answered=False))
    assert sent == [
        {"role": "user", "content": "How high?"},
        {"role": "assistant", "content": ""},
    ]


def test_wire_turn_sends_the_thinking_of_every_answer_only_when_asked():
    turn = tool_turn(answered=True)
    without = wire_turn(turn)
    assert not any(reasoning_of(m) for m in without)
    assert all(set(m) <= set(WIRE_FIELDS) for m in without)
    with_it = wire_turn(turn, reasoning=True)
    assert [reasoning_of(m) for m in with_it] == [
        None,
        ("reasoning_content", "I should look."),
        None,
        ("reasoning_content", "Read it."),
    ]
    unanswered = wire_turn(tool_turn(answered=False), reasoning=True)[1]
    assert unanswered == {"role": "assistant", "content": "", "reasoning_content": "I should look."}


# -- provider fields: the two forms of a message -------------------------------------------------

SIGNATURE = {"google": {"thought_signature": "c2ln"}}
CALL = {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}}
SIGNED = {**CALL, "extra_content": SIGNATURE}
TYPED = [
    {"type": "thinking", "thinking": [{"type": "text", "text": "Salt."}]},
    {"type": "text", "text": "Rocks."},
]


def test_a_tool_calls_provider_fields_go_back_only_with_the_thinking():
    message = {"role": "assistant", "content": None, "tool_calls": [SIGNED]}
    assert wire(message)["tool_calls"] == [CALL]
    assert wire(message, reasoning=True)["tool_calls"] == [SIGNED]
    assert message["tool_calls"] == [SIGNED], "the stored message is not changed"
    assert carries_passback(message)
    plain = {"role": "assistant", "content": None, "tool_calls": [{**CALL, "index": 0}]}
    assert not carries_passback(plain) and wire(plain) == wire(plain, reasoning=True)


def test_typed_parts_go_back_as_text_or_as_parts_with_their_thinking():
    message = {"role": "assistant", "content": TYPED}
    assert reasoning_of(message) == ("content", "Salt.")
    assert wire(message) == {"role": "assistant", "content": "Rocks."}
    assert wire(message, reasoning=True) == message, "no thinking field beside the parts"
    text_only = {"role": "assistant", "content": [TYPED[1]]}
    assert wire(text_only, reasoning=True) == {"role": "assistant", "content": "Rocks."}
    user = {"role": "user", "content": [{"type": "text", "text": "Hi"}]}
    assert wire(user) == user, "a user's parts (text, images) are never flattened"


def test_a_turn_with_provider_fields_has_two_forms():
    turn = [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "tool_calls": [SIGNED]},
        {"role": "tool", "tool_call_id": "a", "content": "sunny"},
        {"role": "assistant", "content": "Sunny.", "reasoning_details": [{"type": "x"}]},
    ]
    plain, full = wire_turn(turn), wire_turn(turn, reasoning=True)
    assert plain[1]["tool_calls"] == [CALL] and "reasoning_details" not in plain[3]
    assert full[1]["tool_calls"] == [SIGNED] and full[3]["reasoning_details"] == [{"type": "x"}]


# -- padding ------------------------------------------------------------------------------------


def test_answers_without_thinking_are_padded_and_others_kept():
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "assistant", "content": "4", "reasoning_content": "2 + 2"},
        {"role": "assistant", "content": None, "tool_calls": [CALL], "reasoning_content": ""},
    ]
    padded = pad_reasoning(messages, "reasoning_content")
    assert [m.get("reasoning_content") for m in padded] == [None, " ", "2 + 2", " "]
    assert padded[2] is messages[2] and "reasoning_content" not in messages[1]
