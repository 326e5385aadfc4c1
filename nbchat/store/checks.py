"""Checks of a stored record's messages, responses and timing: everything a reader touches.

Anyone can edit a notebook file, so a record is checked when it is read, and a reader (replay,
the threads, ``%chat history``, ``nbchat show``...) never meets a field of the wrong type: a
record with one is skipped, and ``nbchat verify`` names the field. Each check raises
`ValueError` with a short reason (``responses[0].usage.prompt_tokens is text, not a count``).

Besides types, a turn's tool calls must have their results: an assistant message that called
tools (other than the final answer, whose calls nobody ran when no tools were offered) is
followed by one ``tool`` message per call, and every ``tool`` message answers a call. A turn
that breaks this would be sent back to a provider as a conversation it refuses.
"""

from __future__ import annotations

from typing import Any

from nbchat._json import need, required
from nbchat.wire.messages import tool_rounds
from nbchat.wire.protocol import completion_problem, message_problem

__all__ = ["check_messages", "check_responses", "check_timing", "check_tool_results"]

# The timing fields nbchat writes; a newer writer's extra fields are ignored, like its records'.
_TIMING_FIELDS: dict[str, type | tuple[type, ...]] = {
    "started_at": str,
    "elapsed_s": (int, float),
    "first_token_s": (int, float),
    "streamed": bool,
    "thinking_s": (int, float),
    "tool_s": list,
    "batch_id": str,
}


def check_messages(messages: Any) -> None:
    """A non-empty list of messages, each of the protocol's shape, with a role."""
    need(messages, "messages", list)
    if not messages:
        raise ValueError("messages is an empty list")
    for index, message in enumerate(messages):
        problem = message_problem(message, f"messages[{index}]")
        if problem:
            raise ValueError(problem)
        need(required(message, "role", f"messages[{index}]"), f"messages[{index}].role", str)


def check_tool_results(messages: list[dict[str, Any]]) -> None:
    """Every tool call before the final answer has its result, and every result its call."""
    answering: set[int] = set()
    for found in tool_rounds(messages):
        answering.update(range(found.at + 1, found.at + 1 + len(found.results) + found.extra))
        if found.at == len(messages) - 1:
            continue  # the final answer: calls nobody ran, since no tools were offered
        for number, result in enumerate(found.results):
            if result is None:
                raise ValueError(f"messages[{found.at}].tool_calls[{number}] has no result")
        if found.extra:
            raise ValueError(f"messages[{found.at}] is followed by results of no call")
    for index, message in enumerate(messages):
        if message.get("role") == "tool" and index not in answering:
            raise ValueError(f"messages[{index}] is a tool result of no call")


def check_responses(responses: Any) -> None:
    """A non-empty list of completions (each stored without the message of its first choice),
    whose choices are objects: the last one's message is checked with the answer."""
    need(responses, "responses", list)
    if not responses:
        raise ValueError("responses is an empty list")
    for index, response in enumerate(responses):
        where = f"responses[{index}]"
        need(response, where, dict)
        choices = response.get("choices")
        need(choices, f"{where}.choices", list, null=True)
        for number, choice in enumerate(choices or ()):
            need(choice, f"{where}.choices[{number}]", dict)
        if index < len(responses) - 1:
            problem = completion_problem(_with_messages(response))
            if problem:
                raise ValueError(f"{where}: {problem}")


def _with_messages(response: dict[str, Any]) -> dict[str, Any]:
    """A stored response with an empty message in each choice that has none (it is stored
    among the turn's messages), so the rest of it can be checked as a completion."""
    choices = response.get("choices")
    if not isinstance(choices, list):
        return response
    return {**response, "choices": [{"message": {}, **choice} for choice in choices]}


def check_timing(timing: Any) -> None:
    """The timing fields nbchat writes are of their types (or null)."""
    need(timing, "timing", dict)
    for name, value in timing.items():
        if name in _TIMING_FIELDS:
            need(value, f"timing.{name}", _TIMING_FIELDS[name], null=True)
