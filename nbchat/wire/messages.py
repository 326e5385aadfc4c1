"""Chat messages as nbchat keeps them and as it sends them back.

A turn keeps each message as the provider returned it (a non-streamed answer may carry
``refusal``, ``annotations``, ``audio``; reasoning models add their thinking as
``reasoning_content`` or ``reasoning``, Mistral's as a ``thinking`` part of a ``content`` list;
Gemini puts ``extra_content`` on tool calls, OpenRouter ``reasoning_details`` on the message).
What goes back to a provider as context has two forms (`wire`): the protocol's standard fields
only (the answer's text as ``content``, tool calls as ``id``, ``type``, ``function``), or, where
the provider wants it back (`engine.reasoning`), with the thinking and the provider's own fields
as it returned them. Providers validate message fields, some require the thinking (DeepSeek's
thinking mode, Gemini's thought signatures) and some refuse it, and the cache key must not
depend on whether an answer was streamed.

A round of tool calls is an assistant message that calls tools and the ``tool`` messages right
after it, one per call in order (`tool_rounds` pairs them). Results are found by the calls' ids
when every call of the round has its own; when ids are missing or repeated (some servers send
none, some number every round's calls from 0), by position, and the round says so.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nbchat._text import clip, one_line
from nbchat.wire.images import ImagePart

__all__ = [
    "PASSBACK_FIELDS",
    "PREVIEW_WIDTH",
    "REASONING_FIELDS",
    "WIRE_FIELDS",
    "ItemTemplate",
    "ToolRound",
    "call_line",
    "call_shown",
    "carries_passback",
    "content_text",
    "content_thinking",
    "pad_reasoning",
    "reasoning_of",
    "tool_rounds",
    "user_message",
    "wire",
    "wire_turn",
]

PREVIEW_WIDTH = 100  # columns of a tool result's one-line preview
# The message fields of the chat-completions protocol that a request may carry.
WIRE_FIELDS = ("role", "content", "name", "tool_calls", "tool_call_id")
# Where providers put a model's thinking: DeepSeek, Qwen on DashScope, llama.cpp and older vLLM
# use the first; OpenRouter and newer vLLM the second.
REASONING_FIELDS = ("reasoning_content", "reasoning")
# A provider's own message fields that go back with the thinking: OpenRouter's (encrypted)
# reasoning, which its upstreams need to continue a tool-calling turn.
PASSBACK_FIELDS = ("reasoning_details",)
# A tool call's standard fields (``index`` comes with some whole answers too); anything else on
# it (Gemini's ``extra_content``) is the provider's and goes back only with the thinking.
CALL_FIELDS = frozenset({"id", "type", "function", "index"})


def content_text(content: Any) -> str:
    """The answer's text of a ``content``: the text itself, or its ``text`` parts joined."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    parts = (part for part in content if isinstance(part, dict) and part.get("type") == "text")
    return "".join(part["text"] for part in parts if isinstance(part.get("text"), str))


def content_thinking(content: Any) -> str:
    """The thinking of a ``content`` list: its ``thinking`` parts (Mistral's reasoning models
    nest text parts in them; a plain string is read too)."""
    if not isinstance(content, list):
        return ""
    found: list[str] = []
    for part in content:
        if not isinstance(part, dict) or part.get("type") != "thinking":
            continue
        thinking = part.get("thinking")
        if isinstance(thinking, str):
            found.append(thinking)
        elif isinstance(thinking, list):
            found.append(content_text(thinking))
    return "".join(found)


def reasoning_of(message: Mapping[str, Any] | None) -> tuple[str, str] | None:
    """(field, text) of a message's reasoning, or None when it has none; thinking parts of a
    ``content`` list are found as the field ``content``."""
    for field in REASONING_FIELDS:
        text = (message or {}).get(field)
        if isinstance(text, str) and text:
            return field, text
    thinking = content_thinking((message or {}).get("content"))
    return ("content", thinking) if thinking else None


def carries_passback(message: Mapping[str, Any]) -> bool:
    """Whether a message goes back differently with the thinking than without (thinking, a
    provider's fields on it or on its tool calls)."""
    if reasoning_of(message) or any(message.get(name) for name in PASSBACK_FIELDS):
        return True
    calls = message.get("tool_calls")
    return isinstance(calls, list) and any(
        isinstance(call, dict) and not set(call) <= CALL_FIELDS for call in calls
    )


def wire(message: Mapping[str, Any], *, reasoning: bool = False) -> dict[str, Any]:
    """The message as it is sent in a later request's context; with ``reasoning``, with its
    thinking (in the field it came in) and the provider's own fields."""
    sent = {name: message[name] for name in WIRE_FIELDS if name in message}
    assistant = sent.get("role") == "assistant"
    if assistant and "tool_calls" in sent and not sent["tool_calls"]:
        del sent["tool_calls"]  # an empty list is no tool call, and some servers refuse it
    if sent.get("content") is None and "tool_calls" not in sent:
        sent["content"] = ""
    found = reasoning_of(message) if reasoning else None
    parts = assistant and isinstance(sent.get("content"), list)
    if parts and not (found and found[0] == "content"):  # parts go back for their thinking
        sent["content"] = content_text(sent["content"])
    if not reasoning:
        if assistant and isinstance(sent.get("tool_calls"), list):
            sent["tool_calls"] = [_standard_call(call) for call in sent["tool_calls"]]
        return sent
    if found and found[0] != "content":
        sent[found[0]] = found[1]
    for name in PASSBACK_FIELDS:
        if message.get(name):
            sent[name] = message[name]
    return sent


def _standard_call(call: Any) -> Any:
    """A tool call without the provider's own fields."""
    if not isinstance(call, dict) or set(call) <= CALL_FIELDS:
        return call
    return {name: value for name, value in call.items() if name in CALL_FIELDS}


def wire_turn(messages: Sequence[Mapping[str, Any]], *, reasoning: bool = False) -> list[dict]:
    """A turn's messages as sent back. Tool calls go back only with their results in the same
    turn: a call nobody answered (nbchat 0.1 did not run tools) would be refused by providers,
    and 0.1 sent such an answer as its text alone."""
    answered = {r.at for r in tool_rounds(messages) if r.answered}
    sent = []
    for index, message in enumerate(messages):
        out = wire(message, reasoning=reasoning)
        if out.get("tool_calls") and index not in answered:
            del out["tool_calls"]
            if out.get("content") is None:
                out["content"] = ""
        sent.append(out)
    return sent


# What an answer that had no thinking carries where a provider wants every answer's thinking:
# DeepSeek's thinking mode refuses a message without the field and (V4 Pro) an empty one.
NO_THINKING = " "


def pad_reasoning(messages: Sequence[dict[str, Any]], field: str) -> list[dict[str, Any]]:
    """The messages with ``field`` on every assistant message that has no thinking (turns
    answered by a model that did not think, before a switch to one that does)."""
    return [
        {**message, field: NO_THINKING}
        if message.get("role") == "assistant" and not reasoning_of(message)
        else message
        for message in messages
    ]


@dataclass(frozen=True)
class ToolRound:
    """An assistant message that called tools, and the result of each call (its ``tool``
    message, or None when it has none)."""

    at: int  # where the assistant message is among the messages given
    message: Mapping[str, Any]
    calls: list[Any]
    results: list[Mapping[str, Any] | None]
    by_position: bool = False  # several calls whose ids are missing or repeated: paired in order
    extra: int = 0  # tool messages after the calls that answer none of them

    @property
    def answered(self) -> bool:
        """Whether every call is an object and has its result."""
        return all(isinstance(call, Mapping) for call in self.calls) and None not in self.results


def tool_rounds(messages: Sequence[Mapping[str, Any]]) -> list[ToolRound]:
    """Each assistant message among ``messages`` that calls tools, with the results of its calls
    from the ``tool`` messages right after it."""
    rounds = []
    for at, message in enumerate(messages):
        calls = message.get("tool_calls") if message.get("role") == "assistant" else None
        if not isinstance(calls, list) or not calls:
            continue
        end = at + 1
        while end < len(messages) and messages[end].get("role") == "tool":
            end += 1
        rounds.append(_paired(at, message, calls, list(messages[at + 1 : end])))
    return rounds


def _paired(
    at: int, message: Mapping[str, Any], calls: list[Any], results: list[Mapping[str, Any]]
) -> ToolRound:
    ids = [call.get("id") if isinstance(call, Mapping) else None for call in calls]
    if all(isinstance(i, str) and i for i in ids) and len(set(ids)) == len(ids):
        by_id: dict[Any, Mapping[str, Any]] = {}
        for result in results:
            by_id.setdefault(_hashable(result.get("tool_call_id")), result)
        paired = [by_id.get(i) for i in ids]
        extra = len(results) - sum(result is not None for result in paired)
        return ToolRound(at, message, calls, paired, extra=extra)
    paired = [results[n] if n < len(results) else None for n in range(len(calls))]
    extra = max(len(results) - len(calls), 0)
    return ToolRound(at, message, calls, paired, len(calls) > 1, extra)


def _hashable(value: Any) -> Any:
    """A stored id as a dict key (an id that is a list or an object is no call's id)."""
    return value if isinstance(value, str | int | float | bool | None) else None


def user_message(content: str | list[dict[str, Any]]) -> dict[str, Any]:
    """A user message."""
    return {"role": "user", "content": content}


def call_shown(call: Any) -> tuple[str, str]:
    """A tool call's name and arguments as text, whatever shape the model gave them."""
    function = call.get("function") if isinstance(call, dict) else None
    function = function if isinstance(function, dict) else {}
    name = function.get("name")
    arguments = function.get("arguments", "")
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments, ensure_ascii=False, default=str)
    return clip(one_line(name if isinstance(name, str) else "?"), 80), arguments


def call_line(name: str, arguments: str) -> str:
    """``lookup({"city": "Paris"})`` on one line, clipped."""
    return f"{name}({clip(one_line(arguments), 120)})"


@dataclass(frozen=True)
class ItemTemplate:
    """The text a batch's items are sent in, split around their placeholders: each item's
    fills go between the literals (`prompt.template` makes it from a cell, and
    `store.batch_record` stores it)."""

    literals: tuple[str, ...]  # one more than the paths: text before, between and after them
    paths: tuple[str, ...]  # each placeholder's path after "item": "", "[name]", ".name"

    def content(self, fills: Sequence[str | ImagePart]) -> str | list[dict[str, Any]]:
        """The user message's content: text, or text and image parts when a fill is an image."""
        pieces: list[str | ImagePart] = [self.literals[0]]
        for fill, literal in zip(fills, self.literals[1:], strict=True):
            pieces += (fill, literal)
        if all(type(fill) is str for fill in fills):  # a --map cell's thousands of items
            return "".join(pieces)  # type: ignore[arg-type]
        if not any(isinstance(piece, ImagePart) for piece in pieces):
            return "".join(str(piece) for piece in pieces)
        parts: list[dict[str, Any]] = []
        for piece in pieces:
            if isinstance(piece, ImagePart):
                parts.append(piece.part())
            elif piece and parts and parts[-1].get("type") == "text":
                parts[-1]["text"] += piece
            elif piece:
                parts.append({"type": "text", "text": piece})
        return parts

    @property
    def source(self) -> str:
        """The template as text, each placeholder as written (for people and the record)."""
        out = [self.literals[0]]
        for path, literal in zip(self.paths, self.literals[1:], strict=True):
            out += ["{item", path, "}", literal]
        return "".join(out)
