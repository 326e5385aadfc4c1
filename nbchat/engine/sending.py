"""What the session makes of one streamed or whole answer as it arrives: the live sink it goes
to, its timing, and Ctrl-C turned into one error that keeps what had arrived."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from nbchat.engine.tool_loop import ToolSink
from nbchat.errors import StreamInterrupted
from nbchat.wire.redaction import Redactor
from nbchat.wire.stream import parse_event

if TYPE_CHECKING:
    from nbchat.wire.client import ChatStream

__all__ = ["LastStream", "LiveSink", "interrupted", "timing_of"]


class LiveSink(ToolSink, Protocol):
    """Where a streamed answer goes while it arrives (a live view), with its tool calls."""

    def start(self, redact: Callable[[str], str]) -> None:
        """A request is about to be sent; ``redact`` takes its secrets out of what is shown."""

    def on_delta(self, text: str, pieces: int, reasoning: str = "") -> None:
        """The new text of one network read, joining ``pieces`` deltas (about a token each),
        and the new thinking of a reasoning model."""


class LastStream:
    """The raw events of the last streamed answer (strings, parsed on demand) and what redacts
    them; not the stream itself, whose response would keep the request, Authorization header
    included, alive."""

    def __init__(self) -> None:
        self._events: list[str] = []
        self._redactor = Redactor()

    def keep(self, stream: ChatStream) -> None:
        """Remember ``stream``'s events (after it ended, well or not)."""
        self._events, self._redactor = stream.raw_events, stream.redactor

    @property
    def chunks(self) -> list[Any]:
        """The raw chunks, any secret of the request a server echoed redacted."""
        return [parse_event(self._redactor.text(data)) for data in self._events]


def timing_of(started_at: str, start: float, streams: list[ChatStream]) -> dict[str, Any]:
    """When the answer started and ended, its first token, and how long the model thought
    before its final answer."""
    end = time.perf_counter()
    first, last = (streams[0], streams[-1]) if streams else (None, None)
    timing: dict[str, Any] = {
        "started_at": started_at,
        "elapsed_s": round(end - start, 3),
        "first_token_s": (
            round(first.first_token_at - start, 3)
            if first is not None and first.first_token_at is not None
            else None
        ),
        "streamed": bool(streams),
    }
    if last is not None and last.first_thought_at is not None:
        thought_until = last.first_token_at or end
        timing["thinking_s"] = round(thought_until - last.first_thought_at, 3)
    return timing


def interrupted(interrupt: KeyboardInterrupt, stream: Any) -> StreamInterrupted:
    """Ctrl-C as one error that keeps whatever part of the answer had arrived."""
    if isinstance(interrupt, StreamInterrupted):
        return interrupt
    partial = stream.partial() if stream is not None else None
    if stream is None or stream.first_token_at is None:
        return StreamInterrupted(
            "Interrupted before the answer started; nothing was stored.", partial=partial
        )
    return StreamInterrupted(
        "Interrupted: the partial answer is kept but not stored.", partial=partial
    )
