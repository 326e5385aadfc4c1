"""Chat messages as nbchat keeps them and as it sends them back.

A turn keeps each message as the provider returned it (a non-streamed answer may carry
``refusal``, ``annotations``, ``audio``; reasoning models add their thinking). What goes back to a
provider as context is the message's standard fields only (`wire`): providers validate message
fields, and the cache key must not depend on whether an answer was streamed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["WIRE_FIELDS", "user_message", "wire"]

# The message fields of the chat-completions protocol that a request may carry.
WIRE_FIELDS = ("role", "content", "name", "tool_calls", "tool_call_id")


def wire(message: Mapping[str, Any]) -> dict[str, Any]:
    """The message as it is sent in a later request's context."""
    sent = {name: message[name] for name in WIRE_FIELDS if name in message}
    if sent.get("role") == "assistant" and "tool_calls" in sent and not sent["tool_calls"]:
        del sent["tool_calls"]  # an empty list is no tool call, and some servers refuse it
    if sent.get("content") is None and "tool_calls" not in sent:
        sent["content"] = ""
    return sent


def user_message(content: str | list[dict[str, Any]]) -> dict[str, Any]:
    """A user message."""
    return {"role": "user", "content": content}
