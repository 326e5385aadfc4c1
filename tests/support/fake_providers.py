"""Provider shapes the fake server answers in, as real providers were recorded answering (see
REFERENCE.md, "Provider shapes"). Each is chosen by the model a request names:

- ``peer-magistral`` (Mistral's reasoning models): ``content`` as typed parts, the thinking in a
  ``thinking`` part of text parts, then the answer (streamed: thinking parts, then the first
  text as a part and the rest as plain text; whole: one list).
- ``peer-gemini`` (Gemini's compatible endpoint): tool calls streamed whole, one per chunk and
  without ``index``; the first carries ``extra_content`` with a thought signature; the finish
  reason is ``stop``, never ``tool_calls``. Like Gemini 3 it refuses a request whose tool calls
  of the current turn come back without their signature.
- ``peer-router`` (OpenRouter): the thinking as ``reasoning`` with ``reasoning_details`` beside
  it, streamed in pieces by ``index`` (a text detail whose signature comes last, an encrypted one).
- ``model-router`` (Azure's model router): the first chunk has ``model: ""``, ``id: ""``,
  ``created: 0`` and no choices; the answering model (`ANSWERING_MODEL`) is named after it.
- ``peer-r1`` (DeepSeek-R1 served without a reasoning parser): the thinking inside
  ``<think>...</think>`` at the start of ``content``, the tags split across chunks.

Faults that apply to any model (fields of ``Fault``): ``chunk_error`` (OpenRouter's mid-stream
failure, an ``error`` object in a chunk that also has choices), ``repeat_tool_names`` (an
upstream that repeats id, type and name in every tool-call delta) and ``split_surrogates`` (a
JavaScript proxy that cuts the stream between the two UTF-16 halves of a character outside the
Basic Multilingual Plane, each half JSON-escaped on its own).
"""

from __future__ import annotations

from typing import Any

from support.fake_shapes import tool_call_deltas

MISTRAL_MODEL = "peer-magistral"
GEMINI_MODEL = "peer-gemini"
ROUTER_MODEL = "peer-router"
AZURE_ROUTER_MODEL = "model-router"
ANSWERING_MODEL = "peer-small-2025-01-01"  # the model Azure's router names as answering
TAGGED_MODEL = "peer-r1"
PROVIDER_MODELS = (MISTRAL_MODEL, GEMINI_MODEL, ROUTER_MODEL, AZURE_ROUTER_MODEL, TAGGED_MODEL)
THINKING_SHAPES = frozenset({MISTRAL_MODEL, ROUTER_MODEL, TAGGED_MODEL})  # they think
SIGNATURE = "sig-"  # + the call's id: Gemini's thought signature, as the fake makes it
DETAIL_SIGNATURE = "sig-router"
ENCRYPTED = "ZW5jcnlwdGVkIHJlYXNvbmluZw=="  # base64, as OpenRouter sends it
NO_SIGNATURE = (
    "Function call is missing a thought_signature in functionCall parts. This is required for "
    "tools to work correctly."
)


# -- streamed -------------------------------------------------------------------------------


def provider_deltas(
    model: str, pieces: list[str], thinking: list[str], tool_calls: list[dict[str, Any]]
) -> list[dict[str, Any]] | None:
    """The deltas of an answer in ``model``'s shape (None: the model has no shape of its own)."""
    if model == MISTRAL_MODEL:
        thought = [
            {"content": [{"type": "thinking", "thinking": [{"type": "text", "text": piece}]}]}
            for piece in thinking
        ]
        text: list[dict[str, Any]] = [{"content": piece} for piece in pieces]
        if text:
            text[0] = {"content": [{"type": "text", "text": pieces[0]}]}
        return thought + text
    if model == GEMINI_MODEL:
        return [{"content": piece} for piece in pieces] + [
            {"tool_calls": [_without_index(call)]} for call in _signed(tool_calls)
        ]
    if model == ROUTER_MODEL:
        text = [{"content": piece} for piece in pieces]
        return _router_thinking(thinking) + text + tool_call_deltas(tool_calls)
    if model == TAGGED_MODEL:
        return [{"content": piece} for piece in _tagged_pieces(thinking, pieces)]
    return None


def _without_index(call: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in call.items() if key != "index"}


def _signed(tool_calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Gemini's calls: the first of a step carries the thought signature."""
    signed = [dict(call) for call in tool_calls]
    if signed:
        thought = {"thought_signature": SIGNATURE + str(signed[0]["id"])}
        signed[0]["extra_content"] = {"google": thought}
    return signed


def _router_thinking(thinking: list[str]) -> list[dict[str, Any]]:
    """OpenRouter's reasoning deltas: each piece as ``reasoning`` and as a detail's text; the
    detail's signature, then an encrypted detail, at the end."""
    deltas: list[dict[str, Any]] = [
        {
            "reasoning": piece,
            "reasoning_details": [{"type": "reasoning.text", "text": piece, "index": 0}],
        }
        for piece in thinking
    ]
    if deltas:
        end = {"type": "reasoning.text", "text": "", "signature": DETAIL_SIGNATURE, "index": 0}
        deltas.append({"reasoning_details": [end]})
        deltas.append({"reasoning_details": [_encrypted()]})
    return deltas


def _encrypted() -> dict[str, Any]:
    return {"type": "reasoning.encrypted", "data": ENCRYPTED, "index": 1}


def _tagged_pieces(thinking: list[str], pieces: list[str]) -> list[str]:
    """The answer's pieces with the thinking inside tags before them, each tag cut in two."""
    if not thinking:
        return pieces
    opened = ["<th", "ink>\n", *thinking]
    if not pieces:  # cut off while thinking: the tag never closes
        return opened
    return [*opened, "\n</", "think>", "\n\n", *pieces]


# -- whole ----------------------------------------------------------------------------------


def provider_message(
    model: str, message: dict[str, Any], thinking: list[str], tool_calls: list[dict[str, Any]]
) -> dict[str, Any]:
    """A whole answer's message in ``model``'s shape (``message`` as any other model has it)."""
    if model not in PROVIDER_MODELS:
        return message
    text, thought = message.get("content") or "", "".join(thinking)
    shaped = {key: value for key, value in message.items() if key != "reasoning_content"}
    if model == MISTRAL_MODEL:
        parts = [{"type": "thinking", "thinking": [{"type": "text", "text": thought}]}]
        shaped["content"] = [*parts, {"type": "text", "text": text}] if text else parts
    elif model == GEMINI_MODEL and tool_calls:
        shaped["tool_calls"] = _signed(tool_calls)
    elif model == ROUTER_MODEL and thought:
        detail = {"type": "reasoning.text", "text": thought, "signature": DETAIL_SIGNATURE}
        shaped["reasoning"] = thought
        shaped["reasoning_details"] = [{**detail, "index": 0}, _encrypted()]
    elif model == TAGGED_MODEL and thought:
        shaped["content"] = "".join(_tagged_pieces(thinking, [text] if text else []))
    return shaped


def provider_finish(model: str, finish: str) -> str:
    """Gemini ends an answer that calls tools with ``stop``."""
    return "stop" if model == GEMINI_MODEL and finish == "tool_calls" else finish


def answering_model(model: str) -> str:
    """The model a chunk or an answer names."""
    return ANSWERING_MODEL if model == AZURE_ROUTER_MODEL else model


def opening_chunk(model: str) -> dict[str, Any] | None:
    """Azure's model router opens with a chunk that names nothing (its content filter's)."""
    if model != AZURE_ROUTER_MODEL:
        return None
    filtered = [{"prompt_index": 0, "content_filter_results": {}}]
    return {
        "id": "",
        "object": "",
        "created": 0,
        "model": "",
        "choices": [],
        **{"prompt_filter_results": filtered},
    }


# -- what a provider refuses ------------------------------------------------------------------


def provider_refusal(model: str, messages: list[dict[str, Any]]) -> str | None:
    """Gemini 3: the tool calls of the current turn must come back with their signature."""
    if model != GEMINI_MODEL:
        return None
    for message in _current_turn(messages):
        calls = message.get("tool_calls") if message.get("role") == "assistant" else None
        if isinstance(calls, list) and calls and not _has_signature(calls[0]):
            return NO_SIGNATURE
    return None


def _current_turn(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    users = [n for n, message in enumerate(messages) if message.get("role") == "user"]
    return messages[users[-1] + 1 :] if users else messages


def _has_signature(call: Any) -> bool:
    extra = call.get("extra_content") if isinstance(call, dict) else None
    google = extra.get("google") if isinstance(extra, dict) else None
    return isinstance(google, dict) and bool(google.get("thought_signature"))


# -- faults for any model -----------------------------------------------------------------------


def error_chunk(error: dict[str, Any], finish: str | None) -> dict[str, Any]:
    """The parts of OpenRouter's mid-stream failure: choices and an ``error`` beside them."""
    choice = {"index": 0, "delta": {"content": ""}, "finish_reason": finish}
    return {"choices": [choice], "error": error}


def repeated_names(deltas: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tool-call deltas with the call's id, type and name repeated in every one."""
    first: dict[int, dict[str, Any]] = {}
    repeated = []
    for delta in deltas:
        calls = []
        for call in delta.get("tool_calls") or []:
            known = first.setdefault(call["index"], call)
            head = {"id": known["id"], "type": "function"}
            function = {"name": known["function"]["name"], **call.get("function", {})}
            calls.append({**call, **head, "function": function})
        repeated.append({**delta, "tool_calls": calls} if calls else delta)
    return repeated


def utf16_units(text: str) -> str:
    """``text`` with each character outside the BMP as its two UTF-16 halves (lone surrogates in
    a Python string, each JSON-escaped on its own)."""
    units = []
    for char in text:
        point = ord(char) - 0x10000
        if point < 0:
            units.append(char)
        else:
            units += [chr(0xD800 + (point >> 10)), chr(0xDC00 + (point & 0x3FF))]
    return "".join(units)


def split_pairs(pieces: list[str]) -> list[str]:
    """The pieces as UTF-16 halves, each piece that holds a pair cut between its halves."""
    cut: list[str] = []
    for piece in pieces:
        units = utf16_units(piece)
        start = 0
        for end, unit in enumerate(units):
            if "\ud800" <= unit <= "\udbff":
                cut.append(units[start : end + 1])
                start = end + 1
        cut.append(units[start:])
    return [piece for piece in cut if piece]


def split_argument_deltas(deltas: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tool-call deltas whose argument pieces are cut between the halves of each pair."""
    split: list[dict[str, Any]] = []
    for delta in deltas:
        (call,) = delta["tool_calls"]
        function = call.get("function") or {}
        pieces = split_pairs([function["arguments"]]) if function.get("arguments") else []
        if len(pieces) <= 1:
            split.append(delta if not pieces else _with_arguments(call, pieces[0]))
            continue
        split += [_with_arguments(call, piece) for piece in pieces]
    return split


def _with_arguments(call: dict[str, Any], arguments: str) -> dict[str, Any]:
    return {"tool_calls": [{**call, "function": {**call["function"], "arguments": arguments}}]}
