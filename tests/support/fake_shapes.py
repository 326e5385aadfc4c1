"""What the fake server answers when a request offers tools, asks for a shape or has a canned
answer.

- Tool calls are scripted (``Fault(tool_calls=[("lookup", {"city": "Paris"}), ...])``): the
  answer is an assistant message calling them, ``finish_reason: "tool_calls"``, streamed as
  OpenAI streams them (the id and name first, the arguments in fragments, by ``index``). Their
  ids are unique per request unless scripted (``Fault(tool_call_ids=["a", "a", None])``: ids
  repeated, or none at all, as some servers send them).
- After tool results (the last message is a ``tool`` message) the answer quotes them:
  ``From the tools: 21.5; 7``.
- ``response_format`` ``json_schema``: the answer is the simplest JSON value of the schema (the
  first enum value, ``"<name>"`` for a string, 1 for a number...); ``json_object``:
  ``{"answer": <last user text>}``.
- Canned answers (``FakeOpenAI(responses=...)``, keyed by the last user message's text): a
  value is a text, a step, or a list of steps. A step is a text or an object with any of
  ``"text"``, ``"reasoning"`` (streamed as ``reasoning_content`` before the text) and
  ``"tool_calls"`` (``[[name, {arguments}], ...]``, called after the text). Step *i* answers the
  *i*-th request of the turn, counted by the assistant messages after the last user message (so
  ``[{"tool_calls": [...]}, "the answer"]`` calls the tools, then answers their results); the
  last step answers every request beyond the list.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

ToolCallScript = tuple[str, "dict[str, Any] | str"]  # (name, arguments: a dict, or raw text)
STEP_FIELDS = frozenset({"text", "reasoning", "tool_calls"})


def tool_calls_message(
    calls: list[ToolCallScript], request_number: int, ids: list[str | None] | None = None
) -> list[dict[str, Any]]:
    """The ``tool_calls`` of an assistant message calling ``calls``: ids unique per request, or
    ``ids`` (None: the call has no id)."""
    message = []
    for index, (name, arguments) in enumerate(calls):
        call_id = ids[index] if ids is not None else f"call_{request_number}_{index}"
        text = arguments if isinstance(arguments, str) else json.dumps(arguments)
        call = {"type": "function", "function": {"name": name, "arguments": text}}
        message.append(call if call_id is None else {"id": call_id, **call})
    return message


def tool_call_deltas(tool_calls: list[dict[str, Any]], fragment: int = 7) -> list[dict[str, Any]]:
    """The stream deltas of ``tool_calls``: each call's id, type and name first, then its
    arguments ``fragment`` characters at a time, addressed by ``index``."""
    deltas = []
    for index, call in enumerate(tool_calls):
        function = call["function"]
        head = {"index": index, "type": "function"}
        if "id" in call:
            head["id"] = call["id"]
        head["function"] = {"name": function["name"], "arguments": ""}
        deltas.append({"tool_calls": [head]})
        arguments = function["arguments"]
        for start in range(0, len(arguments), fragment):
            piece = arguments[start : start + fragment]
            deltas.append({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
    return deltas


def tool_results_answer(messages: list[dict[str, Any]]) -> str | None:
    """``From the tools: …`` when the last message is a tool result, else None."""
    results = []
    for message in reversed(messages):
        if message.get("role") != "tool":
            break
        results.append(str(message.get("content")))
    return f"From the tools: {'; '.join(reversed(results))}" if results else None


def shaped_answer(body: dict[str, Any], last_user_text: str) -> str | None:
    """The JSON answer a ``response_format`` asks for, or None when none is asked for."""
    response_format = body.get("response_format")
    if not isinstance(response_format, dict):
        return None
    if response_format.get("type") == "json_object":
        return json.dumps({"answer": last_user_text})
    if response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema") or {}
        return json.dumps(simplest_instance(schema, schema))
    return None


def simplest_instance(schema: Any, root: dict[str, Any], name: str = "value") -> Any:
    """The simplest value of ``schema`` (every property, required or not, is filled in)."""
    if not isinstance(schema, dict):
        return None
    if "$ref" in schema:
        target: Any = root
        for part in str(schema["$ref"]).removeprefix("#").strip("/").split("/"):
            target = target.get(part, {}) if part and isinstance(target, dict) else target
        return simplest_instance(target, root, name)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        options = [o for o in schema.get(key) or [] if o.get("type") != "null"]
        if options:
            return simplest_instance(options[0], root, name)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties") or {}
        return {key: simplest_instance(sub, root, key) for key, sub in properties.items()}
    if kind == "array":
        return [simplest_instance(schema.get("items") or {}, root, name)]
    return {"string": f"<{name}>", "integer": 1, "number": 1.5, "boolean": True}.get(kind)


@dataclass(frozen=True)
class CannedStep:
    """One answer of a canned reply: its thinking, its text, then its tool calls."""

    text: str = ""
    reasoning: str | None = None
    tool_calls: tuple[ToolCallScript, ...] = ()


def canned_steps(value: Any) -> list[CannedStep]:
    """The steps of a canned value (a text, a step, or a non-empty list of steps); a
    ``ValueError`` says what is wrong with it."""
    items = value if isinstance(value, list) else [value]
    if not items:
        raise ValueError("a list of steps must not be empty")
    return [_canned_step(item) for item in items]


def _canned_step(item: Any) -> CannedStep:
    if isinstance(item, str):
        return CannedStep(text=item)
    if not isinstance(item, dict) or not item or not set(item) <= STEP_FIELDS:
        raise ValueError('a step is a text or an object of "text", "reasoning", "tool_calls"')
    text, reasoning, calls = item.get("text", ""), item.get("reasoning"), item.get("tool_calls", [])
    if not isinstance(text, str) or not isinstance(reasoning, str | None):
        raise ValueError('a step\'s "text" and "reasoning" are strings')
    if not isinstance(calls, list | tuple) or not all(_is_call(call) for call in calls):
        raise ValueError('a step\'s "tool_calls" is a list of [name, arguments] pairs')
    if not text and not calls:
        raise ValueError("a step needs a text or tool calls")
    return CannedStep(text, reasoning, tuple((name, arguments) for name, arguments in calls))


def _is_call(call: Any) -> bool:
    return (
        isinstance(call, list | tuple)
        and len(call) == 2
        and isinstance(call[0], str)
        and isinstance(call[1], dict | str)
    )


def step_for(steps: list[CannedStep], messages: list[dict[str, Any]]) -> CannedStep:
    """The step that answers a request: step *i* for the *i*-th request of the turn (the
    assistant messages after the last user message number the requests); the last beyond."""
    answered = 0
    for message in reversed(messages):
        if message.get("role") == "user":
            break
        answered += message.get("role") == "assistant"
    return steps[min(answered, len(steps) - 1)]
