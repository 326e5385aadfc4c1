"""One request of a turn, and what the session makes of its streamed or whole answer as it
arrives: the live sink it goes to, what it cost, its timing, and Ctrl-C turned into one error
that keeps what had arrived."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from nbchat.engine.tool_loop import ToolSink
from nbchat.errors import StreamError, StreamInterrupted, TruncatedStreamError
from nbchat.wire.completion import completion_reasoning, completion_text
from nbchat.wire.redaction import Redactor
from nbchat.wire.stream import parse_event

if TYPE_CHECKING:
    from nbchat.engine.spending import Spending
    from nbchat.engine.threads import Message
    from nbchat.engine.turns import PreparedTurn
    from nbchat.wire.client import ChatClient, ChatStream

__all__ = ["LastStream", "LiveSink", "ask_once", "interrupted", "timing_of"]


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


def ask_once(
    client: ChatClient,
    turn: PreparedTurn,
    added: list[Message],
    sink: LiveSink | None,
    streams: list[ChatStream],
    spending: Spending,
    last_stream: LastStream,
) -> dict[str, Any]:
    """One request of ``turn``, with the messages its earlier rounds ``added``, streamed to
    ``sink`` (each stream added to ``streams`` and kept as the ``last_stream``) and counted by
    ``spending``. This is the one place where Ctrl-C becomes `StreamInterrupted`, carrying
    whatever part of the answer had arrived, wherever it landed (the socket read, the view)."""
    body = turn.body(added)
    spending.before(turn)
    stream = None
    try:
        if not turn.settings.stream:
            completion = client.chat(body)
            if sink is not None:
                thought = completion_reasoning(completion)
                sink.on_delta(completion_text(completion), 1, thought)
        else:
            stream = client.stream(body, keep_chunks=True)
            streams.append(stream)
            completion = _streamed(stream, sink, last_stream)
    except KeyboardInterrupt as interrupt:
        if stream is not None:
            stream.close()
            spending.lost(turn)
        raise interrupted(interrupt, stream) from None
    except StreamError:  # cut off after it started: paid for, the amount unknown
        spending.lost(turn)
        raise
    spending.paid(turn, completion)
    return completion


def _streamed(stream: ChatStream, sink: LiveSink | None, last: LastStream) -> dict[str, Any]:
    try:
        for batch in stream.batches():
            if sink is not None:
                sink.on_delta(batch.text, batch.pieces, batch.reasoning)
    finally:
        last.keep(stream)
    if stream.completion is None:  # every complete path sets it; never store a partial
        raise TruncatedStreamError(
            "The stream ended without a complete answer.", partial=stream.partial()
        )
    return stream.completion
