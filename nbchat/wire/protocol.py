"""The shape of chat-completions bodies: checks that name the first wrongly typed field.

A server's JSON is untrusted input. Code that folds or shows an answer reads these fields, so
a ``usage`` that is a string or an ``index`` that is ``null`` must be caught here, with a
message such as ``choices[0].delta.content is a list, not text``, instead of surfacing later as
a traceback. Unknown fields are allowed (providers add their own); known ones must have their
documented type, or be ``null`` where the protocol allows it.

The checks return the first problem as a short phrase, or None; callers wrap it in the error
that fits (a `ProtocolError` for a whole completion, a `MalformedStreamError` in a stream).
"""

from __future__ import annotations

import json
from typing import Any

__all__ = [
    "RESERVED_FIELDS",
    "chunk_problem",
    "completion_problem",
    "error_code",
    "error_detail",
    "is_error_body",
    "message_problem",
    "usage_problem",
]

# The roles of the protocol's messages, and the one an answer has.
MESSAGE_ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})
ANSWER_ROLES = frozenset({"assistant"})
# Request fields nbchat builds itself; a user's options must not set them.
RESERVED_FIELDS = frozenset({"model", "messages", "stream", "stream_options"})

_TEXT_META = ("id", "model", "system_fingerprint")
_TEXT_MESSAGE = ("role", "refusal", "reasoning_content", "reasoning")


def _kind(value: Any) -> str:
    """How a JSON value reads in a message: "null", "text", "a number", "a list", ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    return "an object" if isinstance(value, dict) else type(value).__name__


def _not(value: Any, where: str, wanted: str) -> str:
    return f"{where} is {_kind(value)}, not {wanted}"


def _text_fields(obj: dict[str, Any], names: tuple[str, ...], where: str) -> str | None:
    """The first of ``names`` present in ``obj`` that is neither text nor null."""
    for name in names:
        value = obj.get(name)
        if value is not None and not isinstance(value, str):
            return _not(value, where + name, "text")
    return None


def _count_problem(value: Any, where: str, wanted: str = "a count") -> str | None:
    """A non-negative integer (booleans are not integers here)."""
    if not isinstance(value, int) or isinstance(value, bool):
        return _not(value, where, wanted)
    return f"{where} is negative" if value < 0 else None


def _meta_problem(obj: dict[str, Any]) -> str | None:
    created = obj.get("created")
    if created is not None and (isinstance(created, bool) or not isinstance(created, int | float)):
        return _not(created, "created", "a number")
    return _text_fields(obj, _TEXT_META, "")


def usage_problem(obj: Any) -> str | None:
    """The first problem of a ``usage`` object (null, meaning none reported, is fine).

    Every ``*_tokens`` count, at the top or in a ``*_tokens_details`` object, must be a
    non-negative integer or null; other fields (``cost``, ...) are the provider's business.
    """
    if obj is None:
        return None
    if not isinstance(obj, dict):
        return _not(obj, "usage", "an object")
    for name, value in obj.items():
        where = f"usage.{name}"
        if name.endswith("_tokens") and value is not None:
            problem = _count_problem(value, where)
        elif name.endswith("_details") and value is not None:
            problem = _details_problem(value, where)
        else:
            problem = None
        if problem:
            return problem
    return None


def _details_problem(details: Any, where: str) -> str | None:
    if not isinstance(details, dict):
        return _not(details, where, "an object")
    for name, value in details.items():
        if name.endswith("_tokens") and value is not None:
            problem = _count_problem(value, f"{where}.{name}")
            if problem:
                return problem
    return None


def _tool_calls_problem(calls: Any, where: str) -> str | None:
    if calls is None:
        return None
    if not isinstance(calls, list):
        return _not(calls, where, "a list")
    for i, call in enumerate(calls):
        at = f"{where}[{i}]"
        if not isinstance(call, dict):
            return _not(call, at, "an object")
        if "index" in call and (
            problem := _count_problem(call["index"], at + ".index", "an index")
        ):
            return problem
        if problem := _text_fields(call, ("id", "type"), at + "."):
            return problem
        function = call.get("function")
        if function is None:
            continue
        if not isinstance(function, dict):
            return _not(function, at + ".function", "an object")
        if problem := _text_fields(function, ("name", "arguments"), at + ".function."):
            return problem
    return None


def _content_problem(content: Any, where: str) -> str | None:
    """A ``content``: text, null, or a list of typed parts (Mistral's reasoning models answer
    with ``text`` and ``thinking`` parts), each an object whose text nbchat reads is text."""
    if content is None or isinstance(content, str):
        return None
    if not isinstance(content, list):
        return _not(content, where, "text")
    for index, part in enumerate(content):
        at = f"{where}[{index}]"
        if not isinstance(part, dict):
            return _not(part, at, "an object")
        if part.get("type") == "text" and not isinstance(part.get("text"), str):
            return _not(part.get("text"), at + ".text", "text")
        thinking = part.get("thinking")
        if part.get("type") == "thinking" and not isinstance(thinking, str):
            problem = _content_problem(thinking, at + ".thinking")
            if problem or thinking is None:
                return problem or _not(thinking, at + ".thinking", "text")
    return None


def _message_problem(message: Any, where: str, roles: frozenset[str] = ANSWER_ROLES) -> str | None:
    """A ``message`` (whole answer) or a ``delta`` (stream): the fields nbchat reads. A role is
    shown and sent back later, so it must be one the protocol knows (an answer's: assistant)."""
    if not isinstance(message, dict):
        return _not(message, where, "an object")
    if problem := _text_fields(message, _TEXT_MESSAGE, where + "."):
        return problem
    if problem := _content_problem(message.get("content"), where + ".content"):
        return problem
    role = message.get("role")
    if role is not None and role not in roles:
        return f"{where}.role is not one of {', '.join(sorted(roles))}"
    return _tool_calls_problem(message.get("tool_calls"), where + ".tool_calls")


def message_problem(message: Any, where: str = "message") -> str | None:
    """A message of a request (as nbchat stores and sends it): like an answer's message (its
    ``content`` a text or a list of parts: text, images, thinking), its role any of the
    protocol's, an image part's ``image_url`` an object with a ``url``, and a tool result's
    ``tool_call_id`` (and a ``name``) text."""
    if isinstance(message, dict):
        if problem := _text_fields(message, ("name", "tool_call_id"), where + "."):
            return problem
        content = message.get("content")
        for index, part in enumerate(content if isinstance(content, list) else ()):
            if problem := _image_part_problem(part, f"{where}.content[{index}]"):
                return problem
    return _message_problem(message, where, MESSAGE_ROLES)


def _image_part_problem(part: Any, where: str) -> str | None:
    """An ``image_url`` part's image is an object with a ``url`` (other parts are checked with
    the content, or are the provider's business)."""
    if not isinstance(part, dict) or part.get("type") != "image_url":
        return None
    image = part.get("image_url")
    if not isinstance(image, dict):
        return _not(image, where + ".image_url", "an object")
    if not isinstance(image.get("url"), str):
        return _not(image.get("url"), where + ".image_url.url", "text")
    return None


def _choice_problem(choice: Any, where: str, part: str) -> str | None:
    """One choice; ``part`` is "message" (required) or "delta" (may be absent)."""
    if not isinstance(choice, dict):
        return _not(choice, where, "an object")
    if "index" in choice and (
        problem := _count_problem(choice["index"], where + ".index", "an index")
    ):
        return problem
    if problem := _text_fields(choice, ("finish_reason",), where + "."):
        return problem
    logprobs = choice.get("logprobs")
    if logprobs is not None:
        if not isinstance(logprobs, dict):
            return _not(logprobs, where + ".logprobs", "an object")
        content = logprobs.get("content")
        if content is not None and not isinstance(content, list):
            return _not(content, where + ".logprobs.content", "a list")
    body = choice.get(part)
    if body is None:
        return f"{where}.{part} is missing" if part == "message" else None
    return _message_problem(body, f"{where}.{part}")


def _choices_problem(obj: dict[str, Any], part: str) -> str | None:
    choices = obj.get("choices")
    if choices is None and part == "delta":
        return None  # e.g. a usage chunk from a server that omits the empty list
    if not isinstance(choices, list):
        return "choices is missing" if choices is None else _not(choices, "choices", "a list")
    for i, choice in enumerate(choices):
        if problem := _choice_problem(choice, f"choices[{i}]", part):
            return problem
    return None


def completion_problem(obj: Any) -> str | None:
    """The first problem of a ``chat.completion``-shaped dict, or None if it has none."""
    if not isinstance(obj, dict):
        return _not(obj, "the completion", "an object")
    return _meta_problem(obj) or _choices_problem(obj, "message") or usage_problem(obj.get("usage"))


def chunk_problem(obj: Any) -> str | None:
    """The first problem of a ``chat.completion.chunk``-shaped dict, or None if it has none."""
    if not isinstance(obj, dict):
        return _not(obj, "the chunk", "an object")
    return _meta_problem(obj) or _choices_problem(obj, "delta") or usage_problem(obj.get("usage"))


# -- error bodies ----------------------------------------------------------------------------


def is_error_body(payload: Any) -> bool:
    """An ``{"error": ...}`` object where an answer or a chunk was expected."""
    return isinstance(payload, dict) and "error" in payload and "choices" not in payload


def error_detail(body: Any) -> str:
    """What the server said in an error body (OpenAI's ``error.message``, FastAPI's
    ``detail``, a bare ``error`` string), else the error object as compact JSON, else ""."""
    if not isinstance(body, dict):
        return ""
    error = body.get("error", body)
    if isinstance(error, str):
        return error.strip()
    if isinstance(error, dict):
        for name in ("message", "detail"):
            message = error.get(name)
            if isinstance(message, str) and message.strip():
                return message.strip()
    if "error" in body and error is not None:
        return json.dumps(error, ensure_ascii=False, default=str)
    return ""


def error_code(body: Any) -> str:
    """``error.code`` (else ``error.type``) of an OpenAI-style error body, as text."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        return str(error.get("code") or error.get("type") or "")
    return ""
