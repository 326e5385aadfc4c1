"""One choice of a streamed answer, folded from its deltas (the rare path of
`nbchat.wire.completion.CompletionBuilder`; plain text deltas take its fast path).

What providers send besides plain text, and how it is folded:

- ``content`` as a list of typed parts (Mistral's reasoning models): ``text`` parts are the
  answer, ``thinking`` parts the thinking; the message keeps the parts, as a whole answer has them.
- ``<think>...</think>`` opening the text (`nbchat.wire.think_tags`): the thinking, kept under
  ``reasoning_content`` as a reasoning parser would have sent it.
- Tool calls by ``index`` (OpenAI), or without one (Gemini): a new id starts a new call, no id
  continues the last one. A name repeated in every delta is taken once; the provider's own
  fields on a call (Gemini's ``extra_content``) are kept.
- The provider's own fields on the delta (OpenRouter's ``reasoning_details``, merged by their
  ``index``) are kept on the message.

Text is repaired of split surrogate pairs when the message is built (`nbchat.wire.surrogates`).
"""

from __future__ import annotations

from typing import Any

from nbchat.wire.messages import REASONING_FIELDS, content_thinking
from nbchat.wire.surrogates import repaired, repaired_json
from nbchat.wire.think_tags import ThinkTags

__all__ = ["TAGGED_FIELD", "ChoiceFold"]

TAGGED_FIELD = "reasoning_content"  # where thinking found between <think> tags is kept
_DELTA_FIELDS = frozenset({"role", "content", "refusal", "tool_calls", "function_call"})
_CALL_FIELDS = frozenset({"index", "id", "type", "function"})


class ChoiceFold:
    """The deltas of one choice so far."""

    __slots__ = (
        "_call_ids",
        "_last_call",
        "extras",
        "finish_reason",
        "index",
        "logprobs",
        "parts",
        "reasoning",
        "reasoning_field",
        "refusal",
        "role",
        "tags",
        "tool_calls",
        "typed",
    )

    def __init__(self, index: int) -> None:
        self.index = index
        self.role = "assistant"
        self.parts: list[str] = []  # the answer's text
        self.reasoning: list[str] = []
        self.reasoning_field: str | None = None  # as the provider spelled it
        self.refusal: list[str] = []
        self.tool_calls: dict[int, dict[str, Any]] = {}
        self.finish_reason: str | None = None
        self.logprobs: list[Any] | None = None
        self.tags: ThinkTags | None = ThinkTags()  # None once the text is plain answer
        self.typed = False  # content came as a list of parts
        self.extras: dict[str, Any] = {}  # the provider's own fields
        self._call_ids: dict[str, int] = {}
        self._last_call: int | None = None

    # -- content --------------------------------------------------------------------------

    def add_content(self, content: Any) -> tuple[str, str]:
        """Fold a delta's ``content`` (text or parts); the new answer text and thinking."""
        if isinstance(content, list):
            return self._add_parts(content)
        if not isinstance(content, str) or not content:
            return "", ""
        if self.tags is None:
            self.parts.append(content)
            return content, ""
        text, thought = self.tags.feed(content)
        if self.tags.done:
            self.tags = None
        if text:
            self.parts.append(text)
        if thought:
            self.add_thought(thought, TAGGED_FIELD)
        return text, thought

    def _add_parts(self, parts: list[Any]) -> tuple[str, str]:
        self.typed, self.tags = True, None
        texts: list[str] = []
        for part in parts:
            if isinstance(part, dict) and part.get("type") == "text":
                texts.append(part.get("text") or "")
        text = "".join(texts)
        thought = content_thinking(parts)
        if text:
            self.parts.append(text)
        if thought:
            self.reasoning.append(thought)
        return text, thought

    def add_thought(self, thought: str, field: str) -> None:
        """Fold thinking that came in ``field``."""
        self.reasoning.append(thought)
        self.reasoning_field = self.reasoning_field or field

    # -- everything else ------------------------------------------------------------------

    def add_rare(self, delta: dict[str, Any]) -> None:
        """Fields other than content and thinking."""
        if delta.get("role"):
            self.role = delta["role"]
        if delta.get("refusal"):
            self.refusal.append(delta["refusal"])
        if delta.get("tool_calls"):
            self.add_tool_calls(delta["tool_calls"])
        for name, value in delta.items():
            if value is not None and name not in _DELTA_FIELDS and name not in REASONING_FIELDS:
                self.extras[name] = _merged(name, self.extras.get(name), value)

    def add_tool_calls(self, deltas: list[dict[str, Any]]) -> None:
        for delta in deltas:
            key = self._call_key(delta)
            call = self.tool_calls.get(key)
            if call is None:
                call = self.tool_calls[key] = {
                    "id": None,
                    "type": "function",
                    "function": {"name": "", "arguments": ""},
                }
            if delta.get("id"):
                call["id"] = delta["id"]
            if delta.get("type"):
                call["type"] = delta["type"]
            function = delta.get("function") or {}
            if function.get("name") and not call["function"]["name"]:
                call["function"]["name"] = function["name"]  # some repeat it in every delta
            if function.get("arguments"):
                call["function"]["arguments"] += function["arguments"]
            for name, value in delta.items():
                if name not in _CALL_FIELDS and value is not None and name not in call:
                    call[name] = value

    def _call_key(self, delta: dict[str, Any]) -> int:
        """Which call a delta continues: its ``index``; else the call its id started, a new
        call for a new id, the last call when it has no id."""
        index = delta.get("index")
        call_id = delta.get("id") or None
        if isinstance(index, int):
            key = index
        elif call_id is not None and call_id in self._call_ids:
            key = self._call_ids[call_id]
        elif call_id is not None or self._last_call is None:
            key = max(self.tool_calls, default=-1) + 1
        else:
            key = self._last_call
        if call_id is not None:
            self._call_ids.setdefault(call_id, key)
        self._last_call = key
        return key

    # -- the result -----------------------------------------------------------------------

    @property
    def has_answer(self) -> bool:
        return bool(
            self.parts
            or self.reasoning
            or self.tool_calls
            or self.refusal
            or self.finish_reason
            or (self.tags is not None and any(self.tags.pending()))
        )

    def message(self) -> dict[str, Any]:
        """The message so far, as a whole answer would have it."""
        held_text, held_thought = self.tags.pending() if self.tags is not None else ("", "")
        text = repaired("".join(self.parts) + held_text)
        thought = repaired("".join(self.reasoning) + held_thought)
        field = self.reasoning_field or (TAGGED_FIELD if held_thought else None)
        content: Any = (_typed_content(text, thought) if self.typed else None) or text
        message: dict[str, Any] = {"role": self.role, "content": content}
        if field and not self.typed:
            message[field] = thought
        if self.refusal:
            message["refusal"] = repaired("".join(self.refusal))
        if self.tool_calls:
            calls = [self.tool_calls[i] for i in sorted(self.tool_calls)]
            message["tool_calls"] = repaired_json(calls)
            if not content:
                message["content"] = None
        for name, value in self.extras.items():
            message.setdefault(name, repaired_json(value))
        return message


def _typed_content(text: str, thought: str) -> list[dict[str, Any]]:
    """Parts as Mistral's whole answers have them: the thinking, then the text."""
    parts: list[dict[str, Any]] = []
    if thought:
        parts.append({"type": "thinking", "thinking": [{"type": "text", "text": thought}]})
    if text:
        parts.append({"type": "text", "text": text})
    return parts


def _merged(name: str, old: Any, new: Any) -> Any:
    """A provider field streamed in pieces: text is joined, lists extended (OpenRouter's
    ``reasoning_details`` by ``index``, their text joined), anything else kept from first."""
    if old is None:
        return (
            [dict(item) if isinstance(item, dict) else item for item in new]
            if isinstance(new, list)
            else new
        )
    if isinstance(old, str) and isinstance(new, str):
        return old + new
    if isinstance(old, list) and isinstance(new, list):
        if name == "reasoning_details":
            return _merged_details(old, new)
        return old + new
    return old


def _merged_details(old: list[Any], new: list[Any]) -> list[Any]:
    """Reasoning details: an item with the ``index`` (and type) of an earlier one continues it."""
    merged = list(old)
    for item in new:
        if not isinstance(item, dict) or not isinstance(item.get("index"), int):
            merged.append(item)
            continue
        earlier = next(
            (
                d
                for d in merged
                if isinstance(d, dict)
                and d.get("index") == item["index"]
                and d.get("type") == item.get("type")
            ),
            None,
        )
        if earlier is None:
            merged.append(dict(item))
            continue
        for key, value in item.items():
            if isinstance(value, str) and isinstance(earlier.get(key), str) and key != "type":
                if key in ("text", "summary", "data"):
                    earlier[key] += value
            elif earlier.get(key) is None:
                earlier[key] = value
    return merged
