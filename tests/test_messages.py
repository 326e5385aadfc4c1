"""Rounds of tool calls among a turn's messages (`wire.messages.tool_rounds`): each call paired
with its result by id, or by position when the ids cannot tell; and what goes back to a
provider (`wire_turn`)."""

from __future__ import annotations

from typing import Any

from nbchat.wire.messages import tool_rounds, wire_turn


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
