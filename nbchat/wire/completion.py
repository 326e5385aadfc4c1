"""Fold streamed ``chat.completion.chunk`` objects into one ``chat.completion`` dict.

A streamed and a non-streamed answer are then stored and shown the same way. Tool calls are
accumulated by ``index`` (``id`` and ``function.name`` arrive first, ``function.arguments`` is a
string to concatenate). A reasoning model's thinking (``delta.reasoning_content`` or
``delta.reasoning``) is folded into the message under the field it came in, apart from the
answer; `CompletionBuilder.take_reasoning` hands the live view what is new of it. What providers
send besides (typed parts, ``<think>`` tags, tool calls without ``index``, their own fields) is
folded by `nbchat.wire.choice_fold`, off the per-token path. An ``error`` object in a chunk, or
``finish_reason: "error"``, is kept as `CompletionBuilder.error`: the stream failed.

`whole_completion` gives a non-streamed answer the same treatment (thinking between tags,
split surrogates).
"""

from __future__ import annotations

from typing import Any

from nbchat.errors import ProtocolError
from nbchat.wire.choice_fold import TAGGED_FIELD, ChoiceFold
from nbchat.wire.messages import REASONING_FIELDS, content_text, reasoning_of
from nbchat.wire.protocol import chunk_problem
from nbchat.wire.surrogates import repaired_json
from nbchat.wire.think_tags import split_thinking

__all__ = [
    "CompletionBuilder",
    "completion_reasoning",
    "completion_text",
    "finish_problem",
    "finish_reason",
    "has_answer",
    "reported_error",
    "whole_completion",
]

# Why an answer that ended this way is not whole: what a failed --map item or a misfit says.
_FINISH_PROBLEMS = {
    "length": "cut off by max_tokens (finish_reason: length)",
    "content_filter": "omitted by the provider's content filter (finish_reason: content_filter)",
}


class CompletionBuilder:
    """Accumulates chunks; `add` returns the text delta of choice 0 (or "") for live display."""

    __slots__ = (
        "_answering",
        "_choices",
        "_meta",
        "_meta_checks",
        "_new_reasoning",
        "_want_meta",
        "error",
        "usage",
    )

    def __init__(self) -> None:
        self._choices: dict[int, ChoiceFold] = {}
        # The choices whose text is plain answer (no <think> tag can open it any more): their
        # text deltas take the fast path.
        self._answering: dict[int, ChoiceFold] = {}
        self._meta: dict[str, Any] = {}
        self._want_meta = True
        self._meta_checks = 8
        self._new_reasoning: list[str] = []  # of choice 0, not yet taken by the live view
        self.usage: dict[str, Any] | None = None
        self.error: dict[str, Any] | None = None  # why the stream failed, when a chunk said so

    def add(self, chunk: dict[str, Any]) -> str:
        """Fold one chunk in; return the new text of the first choice.

        A chunk with a wrongly typed field raises `ProtocolError` naming it (e.g.
        ``choices[0].delta.content is a number, not text``) and changes nothing.
        """
        if self._want_meta:
            return self._add_checked(chunk)
        # The fast path: one choice (already known) whose delta is only new text, or only new
        # thinking. Anything else, or anything oddly typed, takes the checked path below.
        try:
            choices = chunk.get("choices")
            if len(choices) == 1 and not chunk.get("usage") and "error" not in chunk:
                raw = choices[0]
                delta = raw.get("delta")
                one = delta and (len(delta) == 1 or _carries_one_field(delta))
                if one and raw.get("finish_reason") is None and not raw.get("logprobs"):
                    content = delta.get("content")
                    index = raw.get("index", 0)
                    if type(content) is str and content:
                        choice = self._answering.get(index) if type(index) is int else None
                        if choice is not None:
                            choice.parts.append(content)
                            return content if index == 0 else ""
                    elif not content:
                        choice = self._choices.get(index) if type(index) is int else None
                        if choice is not None and self._fold_reasoning(choice, delta):
                            return ""
        except (AttributeError, TypeError, KeyError, IndexError):
            pass
        return self._add_checked(chunk)

    def _fold_reasoning(self, choice: ChoiceFold, delta: dict[str, Any]) -> bool:
        """Fold a delta's thinking, if it has some (a non-empty string in a reasoning field)."""
        for field in REASONING_FIELDS:
            thought = delta.get(field)
            if type(thought) is str and (thought or len(delta) == 1):
                if thought:
                    choice.add_thought(thought, field)
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
        text = self._add_choices(choices) if choices else ""
        error = chunk.get("error")
        if error is not None and not self.error:  # OpenRouter's mid-stream failure
            self.error = error if isinstance(error, dict) else {"message": str(error)}
        return text

    def _capture_meta(self, chunk: dict[str, Any]) -> None:
        """Keep the first id, created, model and fingerprint that are there: some send them
        late, and an empty text or a zero is no value (Azure's model router opens with
        ``model: ""``, ``id: ""``, ``created: 0`` and names the answering model later)."""
        for field in ("id", "created", "model", "system_fingerprint"):
            if chunk.get(field) and not self._meta.get(field):
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
                choice = self._choices[index] = ChoiceFold(index)
            delta = raw.get("delta") or {}
            content = delta.get("content")
            if content:
                new, thought = choice.add_content(content)
                if choice.tags is None:
                    self._answering[index] = choice
                if index == 0:
                    text = new
                    if thought:
                        self._new_reasoning.append(thought)
            if len(delta) > 1 or "content" not in delta:
                self._fold_reasoning(choice, delta)
                choice.add_rare(delta)
            finish = raw.get("finish_reason")
            if finish:
                choice.finish_reason = finish
                if finish == "error" and self.error is None:
                    self.error = {}
            if raw.get("logprobs"):
                choice.logprobs = (choice.logprobs or []) + (raw["logprobs"].get("content") or [])
        return text

    @property
    def text(self) -> str:
        """The text of the first choice so far."""
        choice = self._choices.get(0)
        return content_text(choice.message()["content"]) if choice else ""

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
        return choice is not None and choice.has_answer

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
    """The text of the first choice of a completion: its content, or the text parts of a list
    ("" when there is none)."""
    message = _first_choice(completion).get("message")
    return content_text(message.get("content") if isinstance(message, dict) else None)


def reported_error(completion: dict[str, Any]) -> dict[str, Any] | None:
    """The error a whole answer reports beside its choices (OpenRouter's ``error`` object, or
    ``finish_reason: "error"``), or None."""
    error = completion.get("error") if isinstance(completion, dict) else None
    if error is not None:
        return error if isinstance(error, dict) else {"message": str(error)}
    return {} if finish_reason(completion) == "error" else None


def whole_completion(completion: dict[str, Any]) -> dict[str, Any]:
    """A non-streamed answer as nbchat keeps it, like a streamed one: split surrogate pairs
    joined, and thinking that opens the text between ``<think>`` tags moved to
    ``reasoning_content`` (the same object when there was nothing to change)."""
    completion = repaired_json(completion)
    choices = completion.get("choices")
    if not isinstance(choices, list):
        return completion
    split = [_thinking_apart(choice) for choice in choices]
    if all(new is old for new, old in zip(split, choices, strict=True)):
        return completion
    return {**completion, "choices": split}


def _thinking_apart(choice: Any) -> Any:
    message = choice.get("message") if isinstance(choice, dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, str) or reasoning_of(message):
        return choice
    found = split_thinking(content)
    if found is None:
        return choice
    answer, thinking = found
    return {**choice, "message": {**message, "content": answer, TAGGED_FIELD: thinking}}


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
