"""Fold streamed ``chat.completion.chunk`` objects into one ``chat.completion`` dict.

A streamed and a non-streamed answer are then stored and shown the same way. Tool calls are
accumulated by ``index`` (``id`` and ``function.name`` arrive first, ``function.arguments`` is a
string to concatenate). A reasoning model's thinking (``delta.reasoning_content`` or
``delta.reasoning``) is folded into the message under the field it came in, apart from the
answer; `CompletionBuilder.take_reasoning` hands the live view what is new of it.
"""

from __future__ import annotations

from typing import Any

from nbchat.errors import ProtocolError
from nbchat.messages import REASONING_FIELDS, reasoning_of
from nbchat.protocol import chunk_problem

__all__ = [
    "CompletionBuilder",
    "completion_reasoning",
    "completion_text",
    "finish_problem",
    "finish_reason",
    "has_answer",
]

# Why an answer that ended this way is not whole: what a failed --map item or a misfit says.
_FINISH_PROBLEMS = {
    "length": "cut off by max_tokens (finish_reason: length): raise --max-tokens",
    "content_filter": "omitted by the provider's content filter (finish_reason: content_filter)",
}


class _Choice:
    __slots__ = (
        "finish_reason",
        "index",
        "logprobs",
        "parts",
        "reasoning",
        "reasoning_field",
        "refusal",
        "role",
        "tool_calls",
    )

    def __init__(self, index: int) -> None:
        self.index = index
        self.role = "assistant"
        self.parts: list[str] = []
        self.reasoning: list[str] = []
        self.reasoning_field: str | None = None  # as the provider spelled it
        self.refusal: list[str] = []
        self.tool_calls: dict[int, dict[str, Any]] = {}
        self.finish_reason: str | None = None
        self.logprobs: list[Any] | None = None

    def add_tool_calls(self, deltas: list[dict[str, Any]]) -> None:
        for position, delta in enumerate(deltas):
            index = delta.get("index", position)
            call = self.tool_calls.setdefault(
                index, {"id": None, "type": "function", "function": {"name": "", "arguments": ""}}
            )
            if delta.get("id"):
                call["id"] = delta["id"]
            if delta.get("type"):
                call["type"] = delta["type"]
            function = delta.get("function") or {}
            if function.get("name"):
                call["function"]["name"] += function["name"]
            if function.get("arguments"):
                call["function"]["arguments"] += function["arguments"]

    def message(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": self.role, "content": "".join(self.parts)}
        if self.reasoning_field:
            message[self.reasoning_field] = "".join(self.reasoning)
        if self.refusal:
            message["refusal"] = "".join(self.refusal)
        if self.tool_calls:
            message["tool_calls"] = [self.tool_calls[i] for i in sorted(self.tool_calls)]
            if not self.parts:
                message["content"] = None
        return message


class CompletionBuilder:
    """Accumulates chunks; `add` returns the text delta of choice 0 (or "") for live display."""

    __slots__ = ("_choices", "_meta", "_meta_checks", "_new_reasoning", "_want_meta", "usage")

    def __init__(self) -> None:
        self._choices: dict[int, _Choice] = {}
        self._meta: dict[str, Any] = {}
        self._want_meta = True
        self._meta_checks = 8
        self._new_reasoning: list[str] = []  # of choice 0, not yet taken by the live view
        self.usage: dict[str, Any] | None = None

    def add(self, chunk: dict[str, Any]) -> str:
        """Fold one chunk in; return the new text of the first choice.

        A chunk with a wrongly typed field raises `ProtocolError` naming it (e.g.
        ``choices[0].delta.content is a list, not text``) and changes nothing.
        """
        if self._want_meta:
            return self._add_checked(chunk)
        # The fast path: one choice (already known) whose delta is only new text, or only new
        # thinking. Anything else, or anything oddly typed, takes the checked path below.
        try:
            choices = chunk.get("choices")
            if len(choices) == 1 and not chunk.get("usage"):
                raw = choices[0]
                delta = raw.get("delta")
                one = delta and (len(delta) == 1 or _carries_one_field(delta))
                if one and raw.get("finish_reason") is None:
                    content = delta.get("content")
                    index = raw.get("index", 0)
                    choice = self._choices.get(index) if type(index) is int else None
                    if choice is not None and not raw.get("logprobs"):
                        if type(content) is str and content:
                            choice.parts.append(content)
                            return content if index == 0 else ""
                        if not content and self._fold_reasoning(choice, delta):
                            return ""
        except (AttributeError, TypeError, KeyError, IndexError):
            pass
        return self._add_checked(chunk)

    def _fold_reasoning(self, choice: _Choice, delta: dict[str, Any]) -> bool:
        """Fold a delta's thinking, if it has some (a non-empty string in a reasoning field)."""
        for field in REASONING_FIELDS:
            thought = delta.get(field)
            if type(thought) is str and (thought or len(delta) == 1):
                if thought:
                    choice.reasoning.append(thought)
                    choice.reasoning_field = choice.reasoning_field or field
                    if choice.index == 0:
                        self._new_reasoning.append(thought)
                return True
        return False

    def take_reasoning(self) -> str:
        """The first choice's thinking that arrived since the last call."""
        if not self._new_reasoning:
            return ""
        new = "".join(self._new_reasoning)
        self._new_reasoning.clear()
        return new

    def _add_checked(self, chunk: dict[str, Any]) -> str:
        problem = chunk_problem(chunk)
        if problem is not None:
            raise ProtocolError(problem)
        if len(self._meta) < 4:
            self._capture_meta(chunk)
        usage = chunk.get("usage")
        if usage:
            self.usage = usage
        choices = chunk.get("choices")
        return self._add_choices(choices) if choices else ""

    def _capture_meta(self, chunk: dict[str, Any]) -> None:
        """Keep the first non-null id, created, model and fingerprint (some send it late)."""
        for field in ("id", "created", "model", "system_fingerprint"):
            if chunk.get(field) is not None and self._meta.get(field) is None:
                self._meta[field] = chunk[field]
        # The first few chunks take the checked path, which looks for these; a server that
        # never sends a field (many send no fingerprint) is not asked again for every token.
        # The last and the usage chunks, off the fast path, fill what is still missing.
        self._meta_checks -= 1
        self._want_meta = len(self._meta) < 4 and self._meta_checks > 0

    def _add_choices(self, choices: list[dict[str, Any]]) -> str:
        text = ""
        for raw in choices:
            index = raw.get("index", 0)
            choice = self._choices.get(index)
            if choice is None:
                choice = self._choices[index] = _Choice(index)
            delta = raw.get("delta") or {}
            content = delta.get("content")
            if content:
                choice.parts.append(content)
                if index == 0:
                    text = content
            if len(delta) > 1 or "content" not in delta:
                self._add_rare(choice, delta)
            if raw.get("finish_reason"):
                choice.finish_reason = raw["finish_reason"]
            if raw.get("logprobs"):
                choice.logprobs = (choice.logprobs or []) + (raw["logprobs"].get("content") or [])
        return text

    def _add_rare(self, choice: _Choice, delta: dict[str, Any]) -> None:
        """Fields other than content: kept off the per-token fast path."""
        self._fold_reasoning(choice, delta)
        if delta.get("role"):
            choice.role = delta["role"]
        if delta.get("refusal"):
            choice.refusal.append(delta["refusal"])
        if delta.get("tool_calls"):
            choice.add_tool_calls(delta["tool_calls"])

    @property
    def text(self) -> str:
        """The text of the first choice so far."""
        choice = self._choices.get(0)
        return "".join(choice.parts) if choice else ""

    @property
    def reasoning(self) -> str:
        """The thinking of the first choice so far."""
        choice = self._choices.get(0)
        return "".join(choice.reasoning) if choice else ""

    @property
    def has_answer(self) -> bool:
        """Whether the first choice got anything: text, thinking, tool calls, a refusal or a
        finish."""
        choice = self._choices.get(0)
        return choice is not None and bool(
            choice.parts
            or choice.reasoning
            or choice.tool_calls
            or choice.refusal
            or choice.finish_reason
        )

    @property
    def finish_reason(self) -> str | None:
        """The finish reason of the first choice, once it has arrived."""
        choice = self._choices.get(0)
        return choice.finish_reason if choice else None

    def result(self) -> dict[str, Any]:
        """The answer so far as a ``chat.completion`` dict."""
        choices = [
            {
                "index": c.index,
                "message": c.message(),
                "finish_reason": c.finish_reason,
                "logprobs": {"content": c.logprobs} if c.logprobs is not None else None,
            }
            for c in sorted(self._choices.values(), key=lambda c: c.index)
        ]
        if not choices:
            choices = [_empty_choice()]
        completion: dict[str, Any] = {
            "id": self._meta.get("id"),
            "object": "chat.completion",
            "created": self._meta.get("created"),
            "model": self._meta.get("model"),
            "system_fingerprint": self._meta.get("system_fingerprint"),
            "choices": choices,
        }
        if self.usage is not None:
            completion["usage"] = self.usage
        return completion


_PADDING = frozenset({"content", "role", *REASONING_FIELDS})


def _carries_one_field(delta: dict[str, Any]) -> bool:
    """Whether a delta carries at most one field beside the padding some servers send with every
    token (DeepSeek's null ``content`` beside the thinking, the ``assistant`` role again), so
    the fast path may fold it."""
    carried = 0
    for name, value in delta.items():
        padding = value is None or value == "" or (name == "role" and value == "assistant")
        if not padding:
            carried += 1
        elif name not in _PADDING:
            return False
    return carried <= 1


def _empty_choice() -> dict[str, Any]:
    return {
        "index": 0,
        "message": {"role": "assistant", "content": ""},
        "finish_reason": None,
        "logprobs": None,
    }


def _first_choice(completion: Any) -> dict[str, Any]:
    """The first choice of a completion, or {} when there is none or it is oddly shaped."""
    choices = completion.get("choices") if isinstance(completion, dict) else None
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        return choices[0]
    return {}


def has_answer(completion: dict[str, Any]) -> bool:
    """Whether a whole completion's first choice holds anything: text, thinking, tool calls, a
    refusal or a finish reason (a 200 with none of them is no answer, and never stored)."""
    choice = _first_choice(completion)
    message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
    fields = ("content", "tool_calls", "refusal", *REASONING_FIELDS)
    return bool(choice.get("finish_reason") or any(message.get(name) for name in fields))


def completion_text(completion: dict[str, Any]) -> str:
    """The text of the first choice of a completion ("" when there is none, or it is not text)."""
    message = _first_choice(completion).get("message")
    content = message.get("content") if isinstance(message, dict) else None
    return content if isinstance(content, str) else ""


def completion_reasoning(completion: dict[str, Any] | None) -> str:
    """The thinking of the first choice of a completion ("" when there is none)."""
    message = _first_choice(completion).get("message")
    found = reasoning_of(message if isinstance(message, dict) else None)
    return found[1] if found else ""


def finish_problem(reason: str | None) -> str | None:
    """Why an answer that ended with ``reason`` is not whole, or None when it is."""
    return _FINISH_PROBLEMS.get(reason or "")


def finish_reason(completion: dict[str, Any]) -> str | None:
    """The finish reason of the first choice (None when there is none, or it is not text)."""
    reason = _first_choice(completion).get("finish_reason")
    return reason if isinstance(reason, str) else None
