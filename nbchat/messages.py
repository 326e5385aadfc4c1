"""Chat messages as nbchat keeps them and as it sends them back.

A turn keeps each message as the provider returned it (a non-streamed answer may carry
``refusal``, ``annotations``, ``audio``; reasoning models add their thinking as
``reasoning_content`` or ``reasoning``). What goes back to a provider as context is the message's
standard fields only (`wire`), plus the reasoning where the provider wants it back: providers
validate message fields, some require the reasoning (DeepSeek's thinking mode) and some refuse
it, and the cache key must not depend on whether an answer was streamed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "REASONING_FIELDS",
    "WIRE_FIELDS",
    "reasoning_of",
    "user_message",
    "wire",
    "wire_turn",
]

# The message fields of the chat-completions protocol that a request may carry.
WIRE_FIELDS = ("role", "content", "name", "tool_calls", "tool_call_id")
# Where providers put a model's thinking: DeepSeek, Qwen on DashScope, llama.cpp and older vLLM
# use the first; OpenRouter and newer vLLM the second.
REASONING_FIELDS = ("reasoning_content", "reasoning")


def reasoning_of(message: Mapping[str, Any] | None) -> tuple[str, str] | None:
    """(field, text) of a message's reasoning, or None when it has none."""
    for field in REASONING_FIELDS:
        text = (message or {}).get(field)
        if isinstance(text, str) and text:
            return field, text
    return None


def wire(message: Mapping[str, Any], *, reasoning: bool = False) -> dict[str, Any]:
    """The message as it is sent in a later request's context (with its reasoning, in the
    field the provider returned it in, when ``reasoning``)."""
    sent = {name: message[name] for name in WIRE_FIELDS if name in message}
    if sent.get("role") == "assistant" and "tool_calls" in sent and not sent["tool_calls"]:
        del sent["tool_calls"]  # an empty list is no tool call, and some servers refuse it
    if sent.get("content") is None and "tool_calls" not in sent:
        sent["content"] = ""
    if reasoning and (found := reasoning_of(message)):
        sent[found[0]] = found[1]
    return sent


def wire_turn(messages: Sequence[Mapping[str, Any]], *, reasoning: bool = False) -> list[dict]:
    """A turn's messages as sent back. Tool calls go back only with their results in the same
    turn: a call nobody answered (nbchat 0.1 did not run tools) would be refused by providers,
    and 0.1 sent such an answer as its text alone."""
    answered = {m.get("tool_call_id") for m in messages if m.get("role") == "tool"}
    sent = []
    for message in messages:
        out = wire(message, reasoning=reasoning)
        calls = out.get("tool_calls")
        if calls and not all(isinstance(c, dict) and c.get("id") in answered for c in calls):
            del out["tool_calls"]
            if out.get("content") is None:
                out["content"] = ""
        sent.append(out)
    return sent


def user_message(content: str | list[dict[str, Any]]) -> dict[str, Any]:
    """A user message."""
    return {"role": "user", "content": content}
