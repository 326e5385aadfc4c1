"""What ``%chat history`` shows: the messages a ``%%chat`` cell at that place would send before
its own, one row each, whole.

The messages come from the session (`ChatSession.context_at`): the thread's system prompt, then
the answered turns of the ``%%chat`` cells above the cell, as this session ran them or as the
saved notebook holds them, never a turn below it. Each row keeps its message's whole text, a
tool-calling message's calls (``name(arguments)``) and a tool result's call, so nothing shows as
an empty row; ``preview`` is the one line a table has room for. ``reset_line`` says what a cell
would send after ``%chat reset``. Nothing here displays anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nbchat._text import clip, one_line, plural
from nbchat.store.record import message_text
from nbchat.wire.images import image_from_url, token_estimate
from nbchat.wire.messages import call_shown, reasoning_of, tool_rounds

__all__ = ["HistoryRow", "history_rows", "reset_line"]

PREVIEW_WIDTH = 70


@dataclass(frozen=True, kw_only=True)
class HistoryRow:
    """One message of the context, as it will be sent."""

    number: int  # its place in the request, from 1
    role: str
    text: str  # the whole content as text, each image as ``[PNG image, 640×480, 45 kB]``
    tokens: int  # about how many tokens it costs
    calls: tuple[str, ...] = ()  # an assistant message's tool calls, ``name(arguments)``
    result_of: str | None = None  # a tool message: the call it answers, ``name(arguments)``
    thinking: str = ""  # the earlier thinking sent back with an assistant message

    @property
    def whole(self) -> str:
        """Everything the message carries, on as many lines as it takes."""
        parts = [f"(thinking, sent back) {self.thinking}"] if self.thinking else []
        if self.result_of is not None:
            parts.append(f"result of {self.result_of}:")
        if self.text or not self.calls:
            parts.append(self.text)
        parts += [f"→ {call}" for call in self.calls]
        return "\n".join(parts)

    @property
    def line(self) -> str:
        """The message on one line, whole."""
        head = f"{self.result_of} → " if self.result_of is not None else ""
        calls = " ".join(f"→ {call}" for call in self.calls)
        return one_line(" ".join(part for part in (head + self.text, calls) if part))

    @property
    def preview(self) -> str:
        """The message on one line, clipped for a table."""
        return clip(self.line, PREVIEW_WIDTH)

    @property
    def complete(self) -> bool:
        """Whether the preview is the whole message: nothing clipped, no line break of the text
        lost, no thinking left out."""
        return not self.thinking and "\n" not in self.text.strip() and self.preview == self.line


def history_rows(messages: Sequence[Mapping[str, Any]]) -> list[HistoryRow]:
    """The rows of ``messages``, in the order they are sent."""
    answering = _calls_answered(messages)
    rows = []
    for number, message in enumerate(messages, start=1):
        calls = _calls(message)
        result_of = answering.get(number - 1, "?") if message.get("role") == "tool" else None
        thought = reasoning_of(message)
        rows.append(
            HistoryRow(
                number=number,
                role=str(message.get("role", "?")),
                text=message_text(dict(message)),
                tokens=token_count(message),
                calls=calls,
                result_of=result_of,
                thinking=thought[1] if thought else "",
            )
        )
    return rows


def _calls_answered(messages: Sequence[Mapping[str, Any]]) -> dict[int, str]:
    """The call each tool message answers (``name(arguments)``), by the message's place: paired
    within its round, by position when the calls' ids are repeated or missing."""
    place = {id(message): index for index, message in enumerate(messages)}
    answering = {}
    for found in tool_rounds(messages):
        for call, result in zip(found.calls, found.results, strict=True):
            if result is not None:
                answering[place[id(result)]] = "{}({})".format(*call_shown(call))
    return answering


def _calls(message: Mapping[str, Any]) -> tuple[str, ...]:
    calls = message.get("tool_calls") if message.get("role") == "assistant" else None
    if not isinstance(calls, list):
        return ()
    return tuple("{}({})".format(*call_shown(call)) for call in calls)


def token_count(message: Mapping[str, Any]) -> int:
    """About a quarter of a message's characters (its tool calls' and thinking's too), each
    image counted by its tiles instead."""
    content = message.get("content")
    characters, tokens = 0, 0
    if isinstance(content, list):
        for part in content:
            if not isinstance(part, dict):
                continue
            if part.get("type") == "image_url":
                url = (part.get("image_url") or {}).get("url")
                image = image_from_url(url) if isinstance(url, str) else None
                tokens += token_estimate(image)
            else:
                characters += len(str(part.get("text", "")))
    else:
        characters += len(str(content or ""))
    characters += sum(len(call) for call in _calls(message))
    thought = reasoning_of(message)
    characters += len(thought[1]) if thought else 0
    return max(1, characters // 4 + tokens)


def reset_line(forgot: int, thread: str | None, sends: Mapping[str, int], *, file: bool) -> str:
    """What ``%chat reset`` says: the turns forgotten, and what a ``%%chat`` cell at its place
    now sends of each thread (``sends``: earlier turns by thread)."""
    which = f"thread {thread!r}" if thread is not None else "every thread"
    fallback = (
        "the saved notebook's answers count in their place until the cells run again"
        if file
        else "no saved notebook is read, so those cells count again once they run again"
    )
    counts = ", ".join(
        f"{plural(count, 'earlier turn') if count else 'no earlier turn'} of thread {name!r}"
        for name, count in sends.items()
    )
    return (
        f"Forgot {plural(forgot, 'turn')} of {which} run in this kernel; {fallback}. A %%chat "
        f"cell here would now send {counts or 'no earlier turn'} (%chat history lists them; "
        "%%chat --new starts a thread afresh)."
    )
